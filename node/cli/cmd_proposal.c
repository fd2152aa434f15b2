/* node/cli/cmd_proposal.c: `mabeam propose VAR VALUE ...` and `mabeam
 * proposal list|show|watch` — consensus on variables (/v1/proposals,
 * docs/proposals.md, docs/cli.md). */
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

static void propose_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] propose VAR VALUE (--voters a,b,.. | --caps x,y)\n"
                 "                 [--rule R] [--fraction F] [--f N] [--weights a=1,b=2,..]\n"
                 "                 [--deadline DURATION] [--id ID] [--by NAME] [--wait]\n\n"
                 "Open a proposal to set the consensus-policy variable VAR to VALUE (JSON, or a\n"
                 "bare word taken as a string). The eligible voters are the cluster agents\n"
                 "named by --voters, or every live cluster agent having all --caps. R is\n"
                 "majority (default), supermajority (with --fraction in (0.5,1]), unanimous,\n"
                 "weighted (with --weights) or byzantine (with --f: needs 3f+1 voters, decides\n"
                 "at floor(2n/3)+1 yes). --deadline (e.g. 500ms, 5s, 2m; default 60s, 0 =\n"
                 "none): an undecided proposal expires then. Prints the proposal id; with\n"
                 "--wait, waits for the outcome and exits 0 if accepted, 1 otherwise.\n");
}

static void proposal_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] proposal list [--variable VAR]\n"
                 "       mabeam proposal show ID\n"
                 "       mabeam proposal watch ID [--timeout-ms T]\n\n"
                 "list: the open proposals of this node's state. show: one proposal, open\n"
                 "(with its votes) or decided (from the event log). watch: wait until ID is\n"
                 "decided and print its outcome (exit 0 accepted, 1 otherwise).\n"
                 "See also: mabeam propose, mabeam events --subject VAR (the audit trail).\n");
}

/* "1500", "1500ms", "5s", "2m", "1h" -> ms. */
static int parse_duration(const char *s, long long *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    double mult = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    if (v * mult > 1e12)
        return -1;
    *ms = (long long)(v * mult);
    return 0;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static double num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static cJSON *split_list(const char *s)
{
    cJSON *a = cJSON_CreateArray();
    char *copy = strdup(s);
    for (char *save = NULL, *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL;
         t = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(a, cJSON_CreateString(t));
    free(copy);
    return a;
}

static int id_ok(cli_ctx *ctx, const char *id)
{
    return cli_path_name_ok(ctx, "proposal", "proposal id", id, 128);
}

/* Print an outcome line (or the JSON) and give the exit code. */
static int print_outcome(cli_ctx *ctx, const cJSON *j)
{
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "outcome");
    const char *o = cJSON_IsString(out) ? out->valuestring : "?";
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        const cJSON *var = cJSON_GetObjectItemCaseSensitive(j, "variable");
        const cJSON *yes = cJSON_GetObjectItemCaseSensitive(j, "yes");
        const cJSON *no = cJSON_GetObjectItemCaseSensitive(j, "no");
        const cJSON *nv = cJSON_GetObjectItemCaseSensitive(j, "voters");
        double voters = cJSON_IsNumber(nv)  ? nv->valuedouble
                        : cJSON_IsArray(nv) ? (double)cJSON_GetArraySize(nv)
                                            : 0;
        fprintf(ctx->out, "proposal %s on %s: %s (yes %.0f, no %.0f, voters %.0f)\n",
                cJSON_IsString(id) ? id->valuestring : "?",
                cJSON_IsString(var) ? var->valuestring : "?", o,
                cJSON_IsNumber(yes) ? yes->valuedouble : 0,
                cJSON_IsNumber(no) ? no->valuedouble : 0, voters);
    }
    return strcmp(o, "accepted") == 0 ? CLI_OK : CLI_ERROR;
}

/* Long-poll until decided (or timeout_ms, 0 = forever). */
static int watch_until_decided(cli_ctx *ctx, const char *id, long timeout_ms)
{
    long left = timeout_ms;
    for (;;) {
        long chunk = timeout_ms == 0 || left > 30000 ? 30000 : left;
        char path[256];
        snprintf(path, sizeof(path), "/v1/proposals/%s/watch?timeout_ms=%ld", id, chunk);
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", path, NULL, chunk + 10000, &j);
        if (rv != CLI_OK)
            return rv;
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "outcome");
        int open = cJSON_IsString(out) && strcmp(out->valuestring, "open") == 0;
        if (!open || (timeout_ms != 0 && (left -= chunk) <= 0)) {
            rv = print_outcome(ctx, j);
            cJSON_Delete(j);
            return rv;
        }
        cJSON_Delete(j);
    }
}

static int propose_run(cli_ctx *ctx, int argc, char **argv)
{
    const char *voters = NULL, *caps = NULL, *rule = NULL, *fraction = NULL, *f = NULL,
               *weights = NULL, *deadline = NULL, *id = NULL, *by = NULL, *wait = NULL;
    const cli_opt opts[] = {
        { "voters", 1, &voters },     { "caps", 1, &caps }, { "rule", 1, &rule },
        { "fraction", 1, &fraction }, { "f", 1, &f },       { "weights", 1, &weights },
        { "deadline", 1, &deadline }, { "id", 1, &id },     { "by", 1, &by },
        { "wait", 0, &wait },
    };
    const char *pos[3];
    size_t npos;
    int orv = cli_open_sub(ctx, "propose", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), pos, 3,
                           &npos, propose_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    if (npos != 2 || (voters == NULL) == (caps == NULL)) {
        fprintf(ctx->err, "mabeam propose: needs VAR VALUE and one of --voters or --caps\n");
        propose_help(ctx->err);
        return CLI_USAGE;
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "variable", pos[0]);
    cJSON *v = cJSON_Parse(pos[1]);
    cJSON_AddItemToObject(b, "value", v != NULL ? v : cJSON_CreateString(pos[1]));
    cJSON_AddItemToObject(b, voters != NULL ? "voters" : "caps",
                          split_list(voters != NULL ? voters : caps));
    if (rule != NULL)
        cJSON_AddStringToObject(b, "rule", rule);
    int usage = 0;
    if (fraction != NULL) {
        char *end;
        double x = strtod(fraction, &end);
        usage |= *end != '\0';
        cJSON_AddNumberToObject(b, "fraction", x);
    }
    if (f != NULL) {
        char *end;
        long x = strtol(f, &end, 10);
        usage |= *end != '\0' || x < 0;
        cJSON_AddNumberToObject(b, "f", (double)x);
    }
    if (weights != NULL) {
        cJSON *w = cJSON_AddObjectToObject(b, "weights");
        char *copy = strdup(weights);
        for (char *save = NULL, *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '='), *end;
            if (eq == NULL) {
                usage = 1;
                break;
            }
            *eq = '\0';
            double x = strtod(eq + 1, &end);
            usage |= *end != '\0';
            cJSON_AddNumberToObject(w, t, x);
        }
        free(copy);
    }
    long long deadline_ms = 60000;
    if (deadline != NULL && parse_duration(deadline, &deadline_ms) != 0)
        usage = 1;
    cJSON_AddNumberToObject(b, "timeout_ms", (double)deadline_ms);
    if (id != NULL)
        cJSON_AddStringToObject(b, "id", id);
    if (by != NULL)
        cJSON_AddStringToObject(b, "by", by);
    if (usage) {
        cJSON_Delete(b);
        fprintf(ctx->err, "mabeam propose: bad --fraction, --f, --weights (a=1,b=2) or "
                          "--deadline (500ms, 5s, 2m)\n");
        return CLI_USAGE;
    }
    char *text = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    cJSON *j;
    int rv = cli_call_json(ctx, "POST", "/v1/proposals", text, 15000, &j);
    free(text);
    if (rv != CLI_OK)
        return rv;
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(j, "id");
    char idbuf[160];
    snprintf(idbuf, sizeof(idbuf), "%s", cJSON_IsString(pid) ? pid->valuestring : "");
    if (wait == NULL) {
        if (ctx->json)
            cli_print_json(ctx, j);
        else
            fprintf(ctx->out, "proposal %s opened on %s\n", idbuf, pos[0]);
        cJSON_Delete(j);
        return CLI_OK;
    }
    cJSON_Delete(j);
    return watch_until_decided(ctx, idbuf, 0);
}

typedef struct proposal_opts {
    const char *variable, *timeout;
} proposal_opts;

static int act_list(cli_ctx *ctx, const cli_action_call *ac)
{
    const char *variable = ((const proposal_opts *)ac->opts)->variable;
    char path[300] = "/v1/proposals";
    if (variable != NULL && cli_query_add(path, sizeof(path), "variable", variable) != MB_OK)
        return CLI_USAGE;
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "proposals"))
        {
            char *val = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(p, "value"));
            fprintf(ctx->out, "%-20s %-20s %-14s %-10s yes %.0f no %.0f of %.0f deadline %.0f\n",
                    str_of(p, "id"), str_of(p, "variable"), val != NULL ? val : "?",
                    str_of(p, "rule"), num_of(p, "yes"), num_of(p, "no"), num_of(p, "n_voters"),
                    num_of(p, "deadline_ms"));
            free(val);
        }
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int act_show(cli_ctx *ctx, const cli_action_call *ac)
{
    if (!id_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    char path[256];
    snprintf(path, sizeof(path), "/v1/proposals/%s", ac->args[0]);
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    cli_print_json(ctx, j);
    cJSON_Delete(j);
    return CLI_OK;
}

static int act_watch(cli_ctx *ctx, const cli_action_call *ac)
{
    const char *timeout = ((const proposal_opts *)ac->opts)->timeout;
    if (!id_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    long tmo = 0;
    if (timeout != NULL) {
        char *end;
        tmo = strtol(timeout, &end, 10);
        if (*end != '\0' || tmo < 0) {
            fprintf(ctx->err, "mabeam proposal watch: bad --timeout-ms\n");
            return CLI_USAGE;
        }
    }
    return watch_until_decided(ctx, ac->args[0], tmo);
}

static int proposal_run(cli_ctx *ctx, int argc, char **argv)
{
    proposal_opts o = { 0 };
    const cli_opt opts[] = { { "variable", 1, &o.variable }, { "timeout-ms", 1, &o.timeout } };
    static const cli_action acts[] = {
        { "list", 0, 0, act_list },
        { "show", 1, 1, act_show },
        { "watch", 1, 1, act_watch },
    };
    return cli_run_actions(ctx, "proposal", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), acts,
                           sizeof(acts) / sizeof(acts[0]), &o, proposal_help);
}

const cli_cmd cli_cmd_propose = { "propose", "propose a value for a consensus variable",
                                  propose_run, propose_help };
const cli_cmd cli_cmd_proposal = { "proposal", "list, show and watch proposals", proposal_run,
                                   proposal_help };
