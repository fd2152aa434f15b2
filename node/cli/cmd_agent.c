/* node/cli/cmd_agent.c: `mabeam agent spawn|list|info|stop|kill|restart|
 * send|checkpoint` — the agent API (/v1/agents) from the command line. */
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

#define AGENT_TIMEOUT_MS 15000

static void agent_help(FILE *out)
{
    fprintf(out, "usage: mabeam [--addr A] [--token T] [--json] agent COMMAND [options]\n\n"
                 "Manage the agents of a node. AGENT is a 16-digit hex id or a registered\n"
                 "name (in --namespace, default \"default\").\n\n"
                 "  spawn KIND [options] [-- PROGRAM ARGS...]\n"
                 "      --placement P        a cluster agent, replicated and placed on a node:\n"
                 "                           any (least loaded live node), node:N, spread:load,\n"
                 "                           spread:cap=X (fewest agents with capability X);\n"
                 "                           --name is then its cluster id. Without it the\n"
                 "                           agent is local to the node at --addr.\n"
                 "      --name N             register the agent under N\n"
                 "      --namespace NS       registry namespace (default \"default\")\n"
                 "      --config TEXT        config handed to init (text; JSON is passed as is)\n"
                 "      --caps A,B           capabilities to register\n"
                 "      --supervisor S       root (default), none, or a supervisor AGENT\n"
                 "      --restart T          permanent (default), transient or temporary\n"
                 "      --mailbox-max N      bound the mailbox; --overflow reject|crash\n"
                 "      --mem-mb N --cpu-s N port agents: process limits\n"
                 "      PROGRAM ARGS after -- make a port agent (kind port):\n"
                 "        mabeam agent spawn port --name py -- python3 agent.py\n"
                 "  list [--kind K] [--status running|exiting] [--name PREFIX] [--cap C]\n"
                 "       [--namespace NS] [--limit N] [--offset N]\n"
                 "  list --cluster [--node N] [--kind K] [--status placed|running|crashed]\n"
                 "       [--cap C] [--limit N] [--offset N]\n"
                 "      the replicated agents: node, generation, status, restarts, checkpoint\n"
                 "  info AGENT            status, mailbox, restarts, last error, usage\n"
                 "  stop AGENT            normal stop (terminate runs)\n"
                 "  kill AGENT            brutal kill (a crash: its supervisor restarts it)\n"
                 "  restart AGENT         re-initialise in place from its last checkpoint\n"
                 "  send AGENT [--tag N] [--data TEXT | --b64 BASE64 | --json JSON]\n"
                 "       [--wait MS]      wait up to MS for the agent's reply and print it\n"
                 "  checkpoint AGENT      its last stored checkpoint (base64)\n\n"
                 "Exit codes: 0 ok, 1 error (e.g. no such agent), 2 usage.\n");
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* "/v1/agents/<ref>[/suffix]" with ref percent-encoded, plus ?namespace=. */
static int agent_path(char *buf, size_t size, const char *ref, const char *suffix, const char *ns)
{
    size_t k = (size_t)snprintf(buf, size, "/v1/agents/");
    for (const char *p = ref; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        if (k + 4 >= size)
            return MB_ETOOBIG;
        k += (size_t)snprintf(buf + k, size - k, plain ? "%c" : "%%%02X", ch);
    }
    if (suffix != NULL && k + strlen(suffix) + 2 < size)
        k += (size_t)snprintf(buf + k, size - k, "/%s", suffix);
    if (ns != NULL)
        return cli_query_add(buf, size, "namespace", ns);
    return MB_OK;
}

static void print_row_header(cli_ctx *ctx)
{
    fprintf(ctx->out, "%-16s  %-12s  %3s  %-20s  %-8s  %8s  %7s  %9s\n", "ID", "KIND", "VER",
            "NAME", "STATUS", "RESTARTS", "MAILBOX", "MESSAGES");
}

static void print_row(cli_ctx *ctx, const cJSON *a)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(a, "usage");
    fprintf(ctx->out, "%-16s  %-12s  %3.0f  %-20s  %-8s  %8.0f  %7.0f  %9.0f\n", str(a, "id"),
            str(a, "kind"), num(a, "version"), str(a, "name"), str(a, "status"), num(a, "restarts"),
            num(a, "mailbox_len"), num(u, "messages"));
}

static int usage_err(cli_ctx *ctx, const char *sub, const char *msg)
{
    fprintf(ctx->err, "mabeam agent %s: %s\n", sub, msg);
    return CLI_USAGE;
}

static int do_spawn(cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *ns = NULL, *config = NULL, *caps = NULL, *sup = NULL, *restart = NULL,
               *mmax = NULL, *overflow = NULL, *mem = NULL, *cpu = NULL, *placement = NULL;
    const cli_opt opts[] = {
        { "placement", 1, &placement }, { "name", 1, &name },        { "namespace", 1, &ns },
        { "config", 1, &config },       { "caps", 1, &caps },        { "supervisor", 1, &sup },
        { "restart", 1, &restart },     { "mailbox-max", 1, &mmax }, { "overflow", 1, &overflow },
        { "mem-mb", 1, &mem },          { "cpu-s", 1, &cpu },
    };
    const char *pos[64];
    size_t npos;
    int orv = cli_open_sub(ctx, "agent spawn", argc, argv, opts, sizeof(opts) / sizeof(opts[0]),
                           pos, 64, &npos, agent_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    if (npos < 1)
        return usage_err(ctx, "spawn", "missing KIND (see `mabeam kind list`)");
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "kind", pos[0]);
    if (name != NULL)
        cJSON_AddStringToObject(b, "name", name);
    if (placement != NULL)
        cJSON_AddStringToObject(b, "placement", placement);
    if (ns != NULL)
        cJSON_AddStringToObject(b, "namespace", ns);
    if (config != NULL)
        cJSON_AddStringToObject(b, "config", config);
    if (sup != NULL)
        cJSON_AddStringToObject(b, "supervisor", sup);
    if (restart != NULL)
        cJSON_AddStringToObject(b, "restart", restart);
    if (caps != NULL) {
        cJSON *arr = cJSON_AddArrayToObject(b, "capabilities");
        char *copy = strdup(caps), *save = NULL;
        for (char *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL;
             t = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(arr, cJSON_CreateString(t));
        free(copy);
    }
    if (npos > 1) {
        cJSON *cmd = cJSON_AddArrayToObject(b, "cmd");
        for (size_t i = 1; i < npos; i++)
            cJSON_AddItemToArray(cmd, cJSON_CreateString(pos[i]));
    }
    cJSON *lim = NULL;
    const char *const lim_keys[3] = { "mailbox_max", "mem_mb", "cpu_s" };
    const char *lim_vals[3] = { mmax, mem, cpu };
    for (int i = 0; i < 3; i++) {
        if (lim_vals[i] == NULL)
            continue;
        char *end;
        double v = strtod(lim_vals[i], &end);
        if (*end != '\0' || end == lim_vals[i] || v < 0) {
            cJSON_Delete(b);
            return usage_err(ctx, "spawn", "limits must be non-negative numbers");
        }
        if (lim == NULL)
            lim = cJSON_AddObjectToObject(b, "limits");
        cJSON_AddNumberToObject(lim, lim_keys[i], v);
    }
    if (overflow != NULL) {
        if (lim == NULL)
            lim = cJSON_AddObjectToObject(b, "limits");
        cJSON_AddStringToObject(lim, "overflow", overflow);
    }
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    cJSON *j = NULL;
    int rv = cli_call_json(ctx, "POST", "/v1/agents", body, AGENT_TIMEOUT_MS, &j);
    free(body);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, j);
    else if (placement != NULL)
        fprintf(ctx->out, "%s placed on node %.0f (generation %.0f)\n", str(j, "id"),
                num(j, "node"), num(j, "generation"));
    else
        fprintf(ctx->out, "%s\n", str(j, "id"));
    cJSON_Delete(j);
    return CLI_OK;
}

/* `agent list --cluster`: the replicated table. */
static int list_cluster(cli_ctx *ctx, const char *node, const char *kind, const char *status,
                        const char *cap, const char *limit, const char *offset)
{
    char path[2048] = "/v1/cluster/agents";
    const char *keys[] = { "node", "kind", "status", "capability", "limit", "offset" };
    const char *vals[] = { node, kind, status, cap, limit, offset };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (vals[i] != NULL && cli_query_add(path, sizeof(path), keys[i], vals[i]) != MB_OK)
            return usage_err(ctx, "list", "options too long");
    cJSON *j = NULL;
    int rv = cli_call_json(ctx, "GET", path, NULL, AGENT_TIMEOUT_MS, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        fprintf(ctx->out, "%-32s  %-12s  %4s  %4s  %-8s  %8s  %10s\n", "ID", "KIND", "NODE", "GEN",
                "STATUS", "RESTARTS", "CHECKPOINT");
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "agents"))
        {
            const cJSON *cb = cJSON_GetObjectItemCaseSensitive(a, "checkpoint_bytes");
            char ck[32] = "-";
            if (cJSON_IsNumber(cb))
                snprintf(ck, sizeof(ck), "%.0f B", cb->valuedouble);
            fprintf(ctx->out, "%-32s  %-12s  %4.0f  %4.0f  %-8s  %8.0f  %10s\n", str(a, "id"),
                    str(a, "kind"), num(a, "node"), num(a, "generation"), str(a, "status"),
                    num(a, "restarts"), ck);
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "next_offset");
        if (cJSON_IsNumber(next))
            fprintf(ctx->err, "next: --offset %.0f (of %.0f)\n", next->valuedouble,
                    num(j, "total"));
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int do_list(cli_ctx *ctx, int argc, char **argv)
{
    const char *kind = NULL, *status = NULL, *name = NULL, *cap = NULL, *ns = NULL, *limit = NULL,
               *offset = NULL, *cluster = NULL, *node = NULL;
    const cli_opt opts[] = {
        { "kind", 1, &kind },     { "status", 1, &status },   { "name", 1, &name },
        { "cap", 1, &cap },       { "namespace", 1, &ns },    { "limit", 1, &limit },
        { "offset", 1, &offset }, { "cluster", 0, &cluster }, { "node", 1, &node },
    };
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, "agent list", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos,
                           0, &npos, agent_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    if (cluster != NULL || node != NULL)
        return list_cluster(ctx, node, kind, status, cap, limit, offset);
    char path[2048] = "/v1/agents";
    const char *keys[] = { "kind", "status", "name", "capability", "namespace", "limit", "offset" };
    const char *vals[] = { kind, status, name, cap, ns, limit, offset };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (vals[i] != NULL && cli_query_add(path, sizeof(path), keys[i], vals[i]) != MB_OK)
            return usage_err(ctx, "list", "options too long");
    cJSON *j = NULL;
    int rv = cli_call_json(ctx, "GET", path, NULL, AGENT_TIMEOUT_MS, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        print_row_header(ctx);
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "agents")) print_row(ctx, a);
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "next_offset");
        if (cJSON_IsNumber(next))
            fprintf(ctx->err, "next: --offset %.0f (of %.0f)\n", next->valuedouble,
                    num(j, "total"));
    }
    cJSON_Delete(j);
    return CLI_OK;
}

/* info, stop, kill, restart, checkpoint, send: one AGENT positional. */
static int do_one(cli_ctx *ctx, int argc, char **argv)
{
    const char *sub = argv[0];
    const char *ns = NULL, *tag = NULL, *data = NULL, *b64 = NULL, *json = NULL, *wait = NULL;
    int is_send = strcmp(sub, "send") == 0;
    const cli_opt opts[] = {
        { "namespace", 1, &ns }, { "tag", 1, &tag },   { "data", 1, &data },
        { "b64", 1, &b64 },      { "json", 1, &json }, { "wait", 1, &wait },
    };
    char what[32];
    snprintf(what, sizeof(what), "agent %s", sub);
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, what, argc, argv, opts, is_send ? 6 : 1, pos, 1, &npos, agent_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    if (npos != 1)
        return usage_err(ctx, sub, "missing AGENT (an id or a name)");
    const char *method = "POST", *suffix = sub;
    if (strcmp(sub, "info") == 0) {
        method = "GET";
        suffix = NULL;
    } else if (strcmp(sub, "checkpoint") == 0) {
        method = "GET";
    } else if (is_send) {
        suffix = "messages";
    }
    char path[1024];
    if (agent_path(path, sizeof(path), pos[0], suffix, ns) != MB_OK)
        return usage_err(ctx, sub, "AGENT is too long");
    char *body = NULL;
    if (is_send) {
        if ((data != NULL) + (b64 != NULL) + (json != NULL) > 1)
            return usage_err(ctx, sub, "give at most one of --data, --b64, --json");
        cJSON *b = cJSON_CreateObject();
        if (tag != NULL) {
            char *end;
            unsigned long long t = strtoull(tag, &end, 10);
            if (*end != '\0' || end == tag || t > 0xFFFFFFFFull || tag[0] == '-') {
                cJSON_Delete(b);
                return usage_err(ctx, sub, "--tag must be an integer 0..4294967295");
            }
            cJSON_AddNumberToObject(b, "tag", (double)t);
        }
        long wait_ms = 0;
        if (wait != NULL) {
            char *end;
            wait_ms = strtol(wait, &end, 10);
            if (*end != '\0' || end == wait || wait_ms <= 0 || wait_ms > 300000) {
                cJSON_Delete(b);
                return usage_err(ctx, sub, "--wait must be a number of ms in 1..300000");
            }
            cJSON_AddNumberToObject(b, "wait_ms", (double)wait_ms);
        }
        if (data != NULL)
            cJSON_AddStringToObject(b, "data", data);
        if (b64 != NULL)
            cJSON_AddStringToObject(b, "data_b64", b64);
        if (json != NULL) {
            cJSON *v = cJSON_Parse(json);
            if (v == NULL) {
                cJSON_Delete(b);
                return usage_err(ctx, sub, "--json is not valid JSON");
            }
            cJSON_AddItemToObject(b, "json", v);
        }
        body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
    } else if (strcmp(method, "POST") == 0) {
        body = strdup("{}");
    }
    cJSON *j = NULL;
    long timeout = AGENT_TIMEOUT_MS;
    if (wait != NULL)
        timeout += strtol(wait, NULL, 10);
    int rv = cli_call_json(ctx, method, path, body, timeout, &j);
    free(body);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json || strcmp(sub, "checkpoint") == 0) {
        if (!ctx->json && strcmp(sub, "checkpoint") == 0)
            fprintf(ctx->out, "%s\n", str(j, "data_b64"));
        else
            cli_print_json(ctx, j);
    } else if (strcmp(sub, "info") == 0) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
        fprintf(ctx->out,
                "id:          %s\nkind:        %s (version %.0f)\nname:        %s/%s\n"
                "status:      %s\nparent:      %s\nrestarts:    %.0f\nmailbox:     %.0f\n"
                "last error:  %s %s\nmessages:    %.0f\nmemory:      %.0f bytes\n"
                "cpu:         %.3f ms\n",
                str(j, "id"), str(j, "kind"), num(j, "version"), str(j, "namespace"),
                str(j, "name"), str(j, "status"), str(j, "parent"), num(j, "restarts"),
                num(j, "mailbox_len"), str(j, "last_error"), str(j, "last_error_msg"),
                num(u, "messages"), num(u, "memory_bytes"), num(u, "cpu_ns") / 1e6);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "port")))
            fprintf(ctx->out, "os pid:      %.0f\n", num(j, "os_pid"));
    } else if (is_send) {
        fprintf(ctx->out, "sent %.0f bytes with tag %.0f to %s (from %s)\n", num(j, "bytes"),
                num(j, "tag"), str(j, "id"), str(j, "from"));
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "reply");
        if (cJSON_IsObject(r)) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "data");
            fprintf(ctx->out, "reply from %s, tag %.0f, %.0f bytes: %s%s\n", str(r, "from"),
                    num(r, "tag"), num(r, "bytes"), cJSON_IsString(d) ? "" : "(base64) ",
                    cJSON_IsString(d) ? d->valuestring : str(r, "data_b64"));
        }
    } else {
        fprintf(ctx->out, "%s: %s requested\n", str(j, "id"), str(j, "action"));
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int agent_run(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_cmd subs[] = {
        { .name = "spawn", .run = do_spawn }, { .name = "list", .run = do_list },
        { .name = "info", .run = do_one },    { .name = "stop", .run = do_one },
        { .name = "kill", .run = do_one },    { .name = "restart", .run = do_one },
        { .name = "send", .run = do_one },    { .name = "checkpoint", .run = do_one },
    };
    return cli_run_subcmds(ctx, "agent", argc, argv, subs, sizeof(subs) / sizeof(subs[0]),
                           agent_help);
}

const cli_cmd cli_cmd_agent = {
    .name = "agent",
    .summary = "spawn, list, inspect, stop, kill, restart and message agents",
    .run = agent_run,
    .help = agent_help,
};
