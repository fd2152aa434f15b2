/* node/cli/cmd_kind.c: `mabeam kind list|load` — the agent kinds of a node
 * (GET/POST /v1/kinds). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

static void kind_help(FILE *out)
{
    fprintf(out, "usage: mabeam [--addr A] [--token T] [--json] kind COMMAND\n\n"
                 "  list          kinds known to the node: name, version, library, agents\n"
                 "  load PATH     load a kind library (.so exporting mb_agent_kind_v1) on the\n"
                 "                node; a higher version of a loaded kind hot-swaps its running\n"
                 "                agents at their next message. PATH is made absolute here and\n"
                 "                must exist on the node's machine.\n\n"
                 "Exit codes: 0 ok, 1 error, 2 usage.\n");
}

static void print_kinds(cli_ctx *ctx, const cJSON *j)
{
    fprintf(ctx->out, "%-16s  %7s  %6s  %s\n", "KIND", "VERSION", "AGENTS", "LIBRARY");
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(j, "kinds"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(k, "name");
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(k, "version");
        const cJSON *ag = cJSON_GetObjectItemCaseSensitive(k, "agents");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(k, "path");
        fprintf(
            ctx->out, "%-16s  %7.0f  %6.0f  %s\n", cJSON_IsString(name) ? name->valuestring : "",
            cJSON_IsNumber(ver) ? ver->valuedouble : 0, cJSON_IsNumber(ag) ? ag->valuedouble : 0,
            cJSON_IsString(path) && path->valuestring[0] != '\0' ? path->valuestring
                                                                 : "(built in)");
    }
}

static int kind_run(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        kind_help(ctx->err);
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    const char *pos[1];
    size_t npos;
    int help;
    mb_error e;
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        kind_help(ctx->out);
        return CLI_OK;
    }
    int is_load = strcmp(sub, "load") == 0;
    if (!is_load && strcmp(sub, "list") != 0) {
        fprintf(ctx->err, "mabeam kind: unknown command '%s' (see mabeam kind --help)\n", sub);
        return CLI_USAGE;
    }
    if (cli_parse_opts(argc - 1, argv + 1, NULL, 0, pos, is_load ? 1 : 0, &npos, &help, &e) !=
        CLI_OK) {
        fprintf(ctx->err, "mabeam kind %s: %s\n", sub, e.msg);
        return CLI_USAGE;
    }
    if (help) {
        kind_help(ctx->out);
        return CLI_OK;
    }
    cJSON *j = NULL;
    int rv;
    if (is_load) {
        if (npos != 1) {
            fprintf(ctx->err, "mabeam kind load: missing PATH\n");
            return CLI_USAGE;
        }
        char abs[PATH_MAX];
        const char *path = realpath(pos[0], abs) != NULL ? abs : pos[0];
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "path", path);
        char *body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        rv = cli_call_json(ctx, "POST", "/v1/kinds", body, 15000, &j);
        free(body);
    } else {
        rv = cli_call_json(ctx, "GET", "/v1/kinds", NULL, 10000, &j);
    }
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, j);
    else
        print_kinds(ctx, j);
    cJSON_Delete(j);
    return CLI_OK;
}

const cli_cmd cli_cmd_kind = {
    .name = "kind",
    .summary = "list agent kinds, load a kind library (hot swap)",
    .run = kind_run,
    .help = kind_help,
};
