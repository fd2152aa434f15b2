/* node/cli/cmd_config.c: `mabeam config get [KEY]`, `config set KEY
 * VALUE`, `config watch` (GET/PUT /v1/config..., long-poll watch). */
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

static void config_help(FILE *out)
{
    fprintf(out, "usage: mabeam [--addr A] [--token T] [--json] config get [KEY]\n"
                 "       mabeam [--addr A] [--token T] [--json] config set KEY VALUE\n"
                 "       mabeam [--addr A] [--token T] [--json] config watch [--from-version N]\n"
                 "                                             [--count N] [--timeout-ms T]\n\n"
                 "get    without KEY: every key with its value and source; with KEY: the\n"
                 "       value alone (secrets are shown as <redacted>)\n"
                 "set    change a reloadable key at runtime (validated by the node)\n"
                 "watch  print every configuration change, in order, as it happens, until\n"
                 "       interrupted; --from-version N starts after version N (default: the\n"
                 "       current version), --count N stops after N changes\n");
}

static int config_get(cli_ctx *ctx, const char *key)
{
    char path[512] = "/v1/config";
    if (key != NULL) {
        /* Keys are [a-z_-]; anything else is refused by the node anyway. */
        if (strlen(key) > 200 || strchr(key, '/') != NULL || strchr(key, '?') != NULL) {
            fprintf(ctx->err, "mabeam config get: bad key '%s'\n", key);
            return CLI_USAGE;
        }
        snprintf(path, sizeof(path), "/v1/config/%s", key);
    }
    cJSON *j;
    int rv = cli_call_json(ctx, "GET", path, NULL, 10000, &j);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else if (key != NULL) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
        if (cJSON_IsString(v)) {
            fprintf(ctx->out, "%s\n", v->valuestring);
        } else {
            char *s = cJSON_PrintUnformatted(v);
            fprintf(ctx->out, "%s\n", s != NULL ? s : "");
            free(s);
        }
    } else {
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(j, "values");
        const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(j, "sources");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
        fprintf(ctx->out, "%-20s  %-8s  %s\n", "KEY", "SOURCE", "VALUE");
        const cJSON *v;
        cJSON_ArrayForEach(v, vals)
        {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(srcs, v->string);
            char *text = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
            fprintf(ctx->out, "%-20s  %-8s  %s\n", v->string,
                    cJSON_IsString(s) ? s->valuestring : "",
                    cJSON_IsString(v) ? v->valuestring : (text != NULL ? text : ""));
            free(text);
        }
        if (cJSON_IsNumber(ver))
            fprintf(ctx->out, "(configuration version %.0f)\n", ver->valuedouble);
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static int config_set(cli_ctx *ctx, const char *key, const char *value)
{
    char path[512];
    if (strlen(key) > 200 || strchr(key, '/') != NULL || strchr(key, '?') != NULL) {
        fprintf(ctx->err, "mabeam config set: bad key '%s'\n", key);
        return CLI_USAGE;
    }
    snprintf(path, sizeof(path), "/v1/config/%s", key);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "value", value);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (text == NULL) {
        fprintf(ctx->err, "mabeam: out of memory\n");
        return CLI_ERROR;
    }
    cJSON *j;
    int rv = cli_call_json(ctx, "PUT", path, text, 10000, &j);
    free(text);
    if (rv != CLI_OK)
        return rv;
    if (ctx->json) {
        cli_print_json(ctx, j);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "changed");
        char *s = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
        fprintf(ctx->out, "%s = %s (version %.0f%s)\n", key,
                cJSON_IsString(v) ? v->valuestring : (s != NULL ? s : ""),
                cJSON_IsNumber(ver) ? ver->valuedouble : 0, cJSON_IsTrue(ch) ? "" : ", unchanged");
        free(s);
    }
    cJSON_Delete(j);
    return CLI_OK;
}

static void print_change(cli_ctx *ctx, const cJSON *ch, void *arg)
{
    (void)arg;
    if (ctx->json) {
        char *s = cJSON_PrintUnformatted(ch);
        fprintf(ctx->out, "%s\n", s != NULL ? s : "{}");
        free(s);
        return;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ch, "version");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(ch, "key");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(ch, "old");
    const cJSON *nw = cJSON_GetObjectItemCaseSensitive(ch, "new");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(ch, "source");
    char *os = cJSON_IsString(o) ? NULL : cJSON_PrintUnformatted(o);
    char *ns = cJSON_IsString(nw) ? NULL : cJSON_PrintUnformatted(nw);
    fprintf(ctx->out, "version %llu  %s: %s -> %s (%s)\n",
            (unsigned long long)(cJSON_IsNumber(v) ? v->valuedouble : 0),
            cJSON_IsString(k) ? k->valuestring : "?",
            cJSON_IsString(o) ? o->valuestring : (os != NULL ? os : ""),
            cJSON_IsString(nw) ? nw->valuestring : (ns != NULL ? ns : ""),
            cJSON_IsString(src) ? src->valuestring : "");
    free(os);
    free(ns);
}

static int config_watch(cli_ctx *ctx, const char *from, const char *count, const char *timeout)
{
    unsigned long long version, want;
    long tmo;
    int has_from;
    int rv0 =
        cli_watch_opts(ctx, "config watch", from, count, timeout, &version, &has_from, &want, &tmo);
    if (rv0 != CLI_OK)
        return rv0;
    if (!has_from) {
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", "/v1/config", NULL, 10000, &j);
        if (rv != CLI_OK)
            return rv;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
        version = cJSON_IsNumber(v) ? (unsigned long long)v->valuedouble : 0;
        cJSON_Delete(j);
    }
    if (!ctx->json)
        fprintf(ctx->err, "watching configuration changes after version %llu\n", version);
    return cli_watch_loop(ctx, "/v1/config/watch?", version, want, tmo, "changes", "version",
                          print_change, NULL);
}

typedef struct config_opts {
    const char *from, *count, *timeout; /* watch only */
} config_opts;

static int bad_watch_opts(cli_ctx *ctx, const char *act, const config_opts *o)
{
    if (o->from == NULL && o->count == NULL && o->timeout == NULL)
        return 0;
    fprintf(ctx->err, "mabeam config %s: --from-version, --count and --timeout-ms are for watch\n",
            act);
    config_help(ctx->err);
    return 1;
}

static int act_get(cli_ctx *ctx, const cli_action_call *ac)
{
    if (bad_watch_opts(ctx, ac->act, ac->opts))
        return CLI_USAGE;
    return config_get(ctx, ac->nargs == 1 ? ac->args[0] : NULL);
}

static int act_set(cli_ctx *ctx, const cli_action_call *ac)
{
    if (bad_watch_opts(ctx, ac->act, ac->opts))
        return CLI_USAGE;
    return config_set(ctx, ac->args[0], ac->args[1]);
}

static int act_watch(cli_ctx *ctx, const cli_action_call *ac)
{
    const config_opts *o = ac->opts;
    return config_watch(ctx, o->from, o->count, o->timeout);
}

static int config_run(cli_ctx *ctx, int argc, char **argv)
{
    config_opts o = { 0 };
    const cli_opt opts[] = { { "from-version", 1, &o.from },
                             { "count", 1, &o.count },
                             { "timeout-ms", 1, &o.timeout } };
    static const cli_action acts[] = {
        { "get", 0, 1, act_get },
        { "set", 2, 2, act_set },
        { "watch", 0, 0, act_watch },
    };
    return cli_run_actions(ctx, "config", argc, argv, opts, 3, acts, 3, &o, config_help);
}

const cli_cmd cli_cmd_config = { "config", "get, set or watch the node's configuration", config_run,
                                 config_help };
