/* node/cli/cmd_var.c: `mabeam var define|get|set|cas|delete|list|watch|
 * history` — the typed shared variables (/v1/vars..., docs/cli.md). */
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

static void var_help(FILE *out)
{
    fprintf(out, "usage: mabeam [global options] var define NAME TYPE [--min X] [--max X]\n"
                 "                 [--options a,b,..] [--dim N] [--policy P] [--value V]\n"
                 "                 [--spec JSON]\n"
                 "       mabeam var get NAME [--stale]\n"
                 "       mabeam var set NAME VALUE [--request-id ID]\n"
                 "       mabeam var cas NAME VALUE --expected-version N\n"
                 "       mabeam var delete NAME [--expected-version N]\n"
                 "       mabeam var list [--stale]\n"
                 "       mabeam var watch NAME [--from-version N] [--count N] [--timeout-ms T]\n"
                 "       mabeam var history NAME [--limit N]\n\n"
                 "TYPE is float, int, bool, choice, probability, distribution, embedding or\n"
                 "tensor (docs/variables.md). VALUE is JSON (0.5, true, [1,2], \"x\"); a word\n"
                 "that is not JSON is taken as a string. --spec adds raw JSON fields to the\n"
                 "definition. Reads are linearizable unless --stale (local, possibly old).\n"
                 "watch prints every version after --from-version (default: the current\n"
                 "one), in order, until --count versions or interrupted.\n"
                 "Exit status: 0 ok, 1 error (the node's message on stderr), 2 usage.\n");
}

/* VALUE text -> JSON (a bare word becomes a string). Owned by the caller. */
static cJSON *parse_value(const char *text)
{
    cJSON *v = cJSON_Parse(text);
    return v != NULL ? v : cJSON_CreateString(text);
}

static int name_ok(cli_ctx *ctx, const char *name)
{
    return cli_path_name_ok(ctx, "var", "variable name", name, 200);
}

static void print_value(cli_ctx *ctx, const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    fprintf(ctx->out, "%s", s != NULL ? s : "null");
    free(s);
}

static int send_json(cli_ctx *ctx, const char *method, const char *path, cJSON *body, cJSON **out)
{
    char *text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    int rv = cli_call_json(ctx, method, path, text, 15000, out);
    free(text);
    return rv;
}

static int print_version(cli_ctx *ctx, cJSON *j, const char *what, const char *name)
{
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
        fprintf(ctx->out, "%s %s: version %.0f\n", what, name,
                cJSON_IsNumber(v) ? v->valuedouble : 0);
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int var_define(cli_ctx *ctx, const char *name, const char *type, const char *const *o)
{
    /* o: min, max, options, dim, policy, value, spec */
    cJSON *b = o[6] != NULL ? cJSON_Parse(o[6]) : cJSON_CreateObject();
    if (!cJSON_IsObject(b)) {
        cJSON_Delete(b);
        fprintf(ctx->err, "mabeam var define: --spec must be a JSON object\n");
        return CLI_USAGE;
    }
    cJSON_DeleteItemFromObject(b, "name");
    cJSON_DeleteItemFromObject(b, "type");
    cJSON_AddStringToObject(b, "name", name);
    cJSON_AddStringToObject(b, "type", type);
    const char *num_keys[] = { "min", "max", NULL, "dim" };
    for (int i = 0; i < 4; i++) {
        if (num_keys[i] == NULL || o[i] == NULL)
            continue;
        char *end;
        double d = strtod(o[i], &end);
        if (*end != '\0' || o[i][0] == '\0') {
            cJSON_Delete(b);
            fprintf(ctx->err, "mabeam var define: --%s must be a number\n", num_keys[i]);
            return CLI_USAGE;
        }
        cJSON_DeleteItemFromObject(b, num_keys[i]);
        cJSON_AddNumberToObject(b, num_keys[i], d);
    }
    if (o[2] != NULL) {
        cJSON *a = cJSON_CreateArray();
        char *copy = strdup(o[2]);
        for (char *save = NULL, *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL;
             t = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(a, cJSON_CreateString(t));
        free(copy);
        cJSON_DeleteItemFromObject(b, "options");
        cJSON_AddItemToObject(b, "options", a);
    }
    if (o[4] != NULL) {
        cJSON_DeleteItemFromObject(b, "policy");
        cJSON_AddStringToObject(b, "policy", o[4]);
    }
    if (o[5] != NULL) {
        cJSON_DeleteItemFromObject(b, "value");
        cJSON_AddItemToObject(b, "value", parse_value(o[5]));
    }
    cJSON *j;
    int rv = send_json(ctx, "POST", "/v1/vars", b, &j);
    if (rv != CLI_OK)
        return rv;
    return print_version(ctx, j, "defined", name);
}

static int var_get(cli_ctx *ctx, const char *name, int stale)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/vars/%s%s", name, stale ? "?consistency=stale" : "");
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(j, "changed_by");
        fprintf(ctx->out, "%s (%s) = ", name, cJSON_IsString(t) ? t->valuestring : "?");
        print_value(ctx, v);
        fprintf(ctx->out, "  version %.0f%s%s%s\n", cJSON_IsNumber(ver) ? ver->valuedouble : 0,
                cJSON_IsString(by) && by->valuestring[0] ? "  by " : "",
                cJSON_IsString(by) ? by->valuestring : "", stale ? "  (stale read)" : "");
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int var_list(cli_ctx *ctx, int stale)
{
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", stale ? "/v1/vars?consistency=stale" : "/v1/vars", NULL,
                           15000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        fprintf(ctx->out, "%-24s %-12s %-10s %-10s %s\n", "NAME", "TYPE", "POLICY", "VERSION",
                "VALUE");
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(j, "vars"))
        {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(v, "name");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "policy");
            const cJSON *ver = cJSON_GetObjectItemCaseSensitive(v, "version");
            fprintf(
                ctx->out, "%-24s %-12s %-10s %-10.0f ", cJSON_IsString(nm) ? nm->valuestring : "?",
                cJSON_IsString(t) ? t->valuestring : "?", cJSON_IsString(p) ? p->valuestring : "?",
                cJSON_IsNumber(ver) ? ver->valuedouble : 0);
            print_value(ctx, cJSON_GetObjectItemCaseSensitive(v, "value"));
            fprintf(ctx->out, "\n");
        }
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static void print_event(cli_ctx *ctx, const char *name, const cJSON *ev)
{
    if (ctx->json) {
        char *s = cJSON_PrintUnformatted(ev);
        fprintf(ctx->out, "%s\n", s != NULL ? s : "{}");
        free(s);
        return;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(ev, "version");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
    fprintf(ctx->out, "version %-8.0f %-11s %s = ", cJSON_IsNumber(ver) ? ver->valuedouble : 0,
            cJSON_IsString(t) ? t->valuestring : "?", name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, "value");
    if (v != NULL)
        print_value(ctx, v);
    else
        fprintf(ctx->out, "(deleted)");
    fprintf(ctx->out, "\n");
}

static int var_history(cli_ctx *ctx, const char *name, const char *limit)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/vars/%s/history", name);
    if (limit != NULL && cli_query_add(path, sizeof(path), "limit", limit) != MB_OK)
        return CLI_USAGE;
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(j, "events"))
        print_event(ctx, name, ev);
    cJSON_Delete(j);
    return CLI_OK;
}

static void print_watch_event(cli_ctx *ctx, const cJSON *ev, void *arg)
{
    print_event(ctx, arg, ev);
}

static int var_watch(cli_ctx *ctx, const char *name, const char *from, const char *count,
                     const char *timeout)
{
    unsigned long long version, want;
    long tmo;
    int has_from;
    int rv0 =
        cli_watch_opts(ctx, "var watch", from, count, timeout, &version, &has_from, &want, &tmo);
    if (rv0 != CLI_OK)
        return rv0;
    if (!has_from) {
        char path[512];
        snprintf(path, sizeof(path), "/v1/vars/%s?consistency=stale", name);
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", path, NULL, 15000, &j);
        if (rv != CLI_OK)
            return rv;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
        version = cJSON_IsNumber(v) ? (unsigned long long)v->valuedouble : 0;
        cJSON_Delete(j);
    }
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "/v1/vars/%s/watch?", name);
    return cli_watch_loop(ctx, prefix, version, want, tmo, "events", "last_version",
                          print_watch_event, (void *)name);
}

typedef struct var_opts {
    const char *o[7]; /* define: min, max, options, dim, policy, value, spec */
    const char *stale, *rid, *expv, *from, *count, *timeout, *limit;
} var_opts;

static int act_list(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    return var_list(ctx, o->stale != NULL);
}

static int act_define(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    if (!name_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    return var_define(ctx, ac->args[0], ac->args[1], o->o);
}

static int act_get(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    if (!name_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    return var_get(ctx, ac->args[0], o->stale != NULL);
}

/* set and cas */
static int act_set(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    const char *name = ac->args[0];
    if (!name_ok(ctx, name))
        return CLI_USAGE;
    int cas = strcmp(ac->act, "cas") == 0;
    double ev = -1;
    if (cas) {
        char *end;
        ev = o->expv != NULL ? strtod(o->expv, &end) : -1;
        if (o->expv == NULL || *end != '\0' || ev < 0) {
            fprintf(ctx->err, "mabeam var cas: --expected-version N is required\n");
            return CLI_USAGE;
        }
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "value", parse_value(ac->args[1]));
    if (o->rid != NULL)
        cJSON_AddStringToObject(b, "request_id", o->rid);
    if (cas)
        cJSON_AddNumberToObject(b, "expected_version", ev);
    char path[512];
    snprintf(path, sizeof(path), "/v1/vars/%s%s", name, cas ? "/cas" : "");
    cJSON *j;
    int rv = send_json(ctx, cas ? "POST" : "PUT", path, b, &j);
    if (rv != CLI_OK)
        return rv;
    return print_version(ctx, j, "set", name);
}

static int act_delete(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    const char *name = ac->args[0];
    if (!name_ok(ctx, name))
        return CLI_USAGE;
    char path[512];
    snprintf(path, sizeof(path), "/v1/vars/%s", name);
    if (o->expv != NULL && cli_query_add(path, sizeof(path), "expected_version", o->expv) != MB_OK)
        return CLI_USAGE;
    cJSON *j;
    int rv = cli_call_json(ctx, "DELETE", path, NULL, 15000, &j);
    if (rv != CLI_OK)
        return rv;
    return print_version(ctx, j, "deleted", name);
}

static int act_watch(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    if (!name_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    return var_watch(ctx, ac->args[0], o->from, o->count, o->timeout);
}

static int act_history(cli_ctx *ctx, const cli_action_call *ac)
{
    const var_opts *o = ac->opts;
    if (!name_ok(ctx, ac->args[0]))
        return CLI_USAGE;
    return var_history(ctx, ac->args[0], o->limit);
}

static int var_run(cli_ctx *ctx, int argc, char **argv)
{
    var_opts v = { 0 };
    const cli_opt opts[] = {
        { "min", 1, &v.o[0] },           { "max", 1, &v.o[1] },
        { "options", 1, &v.o[2] },       { "dim", 1, &v.o[3] },
        { "policy", 1, &v.o[4] },        { "value", 1, &v.o[5] },
        { "spec", 1, &v.o[6] },          { "stale", 0, &v.stale },
        { "request-id", 1, &v.rid },     { "expected-version", 1, &v.expv },
        { "from-version", 1, &v.from },  { "count", 1, &v.count },
        { "timeout-ms", 1, &v.timeout }, { "limit", 1, &v.limit },
    };
    static const cli_action acts[] = {
        { "list", 0, 0, act_list },   { "define", 2, 2, act_define },
        { "get", 1, 1, act_get },     { "set", 2, 2, act_set },
        { "cas", 2, 2, act_set },     { "delete", 1, 1, act_delete },
        { "watch", 1, 1, act_watch }, { "history", 1, 1, act_history },
    };
    return cli_run_actions(ctx, "var", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), acts,
                           sizeof(acts) / sizeof(acts[0]), &v, var_help);
}

const cli_cmd cli_cmd_var = { "var", "define, read, change and watch shared variables", var_run,
                              var_help };
