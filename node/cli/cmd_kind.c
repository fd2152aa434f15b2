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

/* The answer of GET or POST /v1/kinds, printed. */
static int print_answer(cli_ctx *ctx, int rv, cJSON *j)
{
    if (rv != CLI_OK)
        return rv;
    if (ctx->json)
        cli_print_json(ctx, j);
    else
        print_kinds(ctx, j);
    cJSON_Delete(j);
    return CLI_OK;
}

static int kind_list(cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, "kind list", argc, argv, NULL, 0, pos, 0, &npos, kind_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    cJSON *j = NULL;
    int rv = cli_call_json(ctx, "GET", "/v1/kinds", NULL, 10000, &j);
    return print_answer(ctx, rv, j);
}

static int kind_load(cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int orv = cli_open_sub(ctx, "kind load", argc, argv, NULL, 0, pos, 1, &npos, kind_help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
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
    cJSON *j = NULL;
    int rv = cli_call_json(ctx, "POST", "/v1/kinds", body, 15000, &j);
    free(body);
    return print_answer(ctx, rv, j);
}

static int kind_run(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_cmd subs[] = {
        { .name = "list", .run = kind_list },
        { .name = "load", .run = kind_load },
    };
    return cli_run_subcmds(ctx, "kind", argc, argv, subs, 2, kind_help);
}

const cli_cmd cli_cmd_kind = {
    .name = "kind",
    .summary = "list agent kinds, load a kind library (hot swap)",
    .run = kind_run,
    .help = kind_help,
};
