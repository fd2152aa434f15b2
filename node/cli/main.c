/* node/cli/main.c: `mabeam` — global options, then the subcommand. */
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

#define MABEAM_CLI_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mabeam [--addr HOST:PORT] [--token TOKEN] [--json] COMMAND [ARGS]\n"
            "       mabeam COMMAND --help\n\n"
            "A client of a mabeamd node's HTTP API.\n\n"
            "  --addr HOST:PORT  node address (env MABEAM_ADDR, default " CLI_DEFAULT_ADDR ")\n"
            "  --token TOKEN     API bearer token (env MABEAM_TOKEN)\n"
            "  --json            machine-readable JSON output\n\n"
            "commands:\n");
    for (size_t i = 0; cli_commands[i] != NULL; i++)
        fprintf(out, "  %-10s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
    fprintf(out, "\nexit status: 0 ok, 1 error, 2 usage\n");
}

int main(int argc, char **argv)
{
    cli_ctx ctx = { .out = stdout, .err = stderr };
    int first, help, version;
    mb_error e;
    mb_error_clear(&e);
    if (cli_parse_globals(argc, argv, getenv("MABEAM_ADDR"), getenv("MABEAM_TOKEN"), &ctx, &first,
                          &help, &version, &e) != CLI_OK) {
        fprintf(stderr, "mabeam: %s\n", e.msg);
        usage(stderr);
        return CLI_USAGE;
    }
    if (version) {
        printf("mabeam %s\n", MABEAM_CLI_VERSION);
        return CLI_OK;
    }
    if (first >= argc) {
        usage(help ? stdout : stderr);
        return help ? CLI_OK : CLI_USAGE;
    }
    const char *name = argv[first];
    if (strcmp(name, "help") == 0) {
        if (first + 1 < argc) {
            const cli_cmd *c = cli_command_find(argv[first + 1]);
            if (c == NULL) {
                fprintf(stderr, "mabeam: unknown command '%s'\n", argv[first + 1]);
                return CLI_USAGE;
            }
            c->help(stdout);
        } else {
            usage(stdout);
        }
        return CLI_OK;
    }
    const cli_cmd *cmd = cli_command_find(name);
    if (cmd == NULL) {
        fprintf(stderr, "mabeam: unknown command '%s'\n", name);
        usage(stderr);
        return CLI_USAGE;
    }
    if (help) {
        cmd->help(stdout);
        return CLI_OK;
    }
    int rv = cmd->run(&ctx, argc - first, argv + first);
    if (fflush(stdout) != 0 && rv == CLI_OK)
        rv = CLI_ERROR;
    return rv;
}
