/* node/cli/cli.h: the `mabeam` command-line client — a thin client of the
 * node's HTTP API. Shared pieces: global options, the subcommand table,
 * option parsing, a small blocking HTTP/1.1 client and output helpers.
 *
 * Subcommands live in their own files (cmd_status.c, cmd_events.c,
 * cmd_config.c, later cmd_var.c, cmd_agent.c, ...) and each exports one
 * `const cli_cmd`; cli_commands.c lists them.
 *
 * Exit codes: 0 ok, 1 error (message on stderr), 2 usage. */
#ifndef MB_NODE_CLI_H
#define MB_NODE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <mabeam/error.h>

#define CLI_OK    0
#define CLI_ERROR 1
#define CLI_USAGE 2

#define CLI_DEFAULT_ADDR "127.0.0.1:7700"

typedef struct cli_ctx {
    char host[256]; /* from --addr / MABEAM_ADDR */
    char port[16];
    const char *token; /* --token / MABEAM_TOKEN, NULL if none */
    int json;          /* --json: machine output */
    FILE *out, *err;
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    /* argv[0] is the subcommand's name. Returns a CLI_* exit code. */
    int (*run)(cli_ctx *ctx, int argc, char **argv);
    /* Full help of the subcommand (for --help and `mabeam help NAME`). */
    void (*help)(FILE *out);
} cli_cmd;

/* The subcommands, NULL-terminated (cli_commands.c). */
extern const cli_cmd *const cli_commands[];
const cli_cmd *cli_command_find(const char *name);

/* Parse the global options before the subcommand: --addr A, --token T,
 * --json, --help/-h, --version (also as --opt=value). Defaults from the
 * environment `env_addr`/`env_token` (may be NULL). On success *first is
 * the index of the subcommand (== argc if none). Returns CLI_OK, or
 * CLI_USAGE with a message in err; *want_help / *want_version are set for
 * those flags. Pure: no I/O. */
int cli_parse_globals(int argc, char **argv, const char *env_addr, const char *env_token,
                      cli_ctx *ctx, int *first, int *want_help, int *want_version, mb_error *err);

/* Split "host:port", "[v6]:port", "http://host:port/" into ctx. */
int cli_set_addr(cli_ctx *ctx, const char *addr, mb_error *err);

/* One option of a subcommand. `value` receives the argument (or "1" for a
 * flag without argument); positionals are collected in order. */
typedef struct cli_opt {
    const char *name; /* long name without "--" */
    int has_arg;
    const char **value;
} cli_opt;

/* What cli_open_sub returns when it printed the help: the caller returns
 * CLI_OK. */
#define CLI_HELPED (-1)

/* The opening of a subcommand: parse argv against `opts` (cli_parse_opts).
 * A bad option prints "mabeam WHAT: <why>" on ctx->err and returns
 * CLI_USAGE; --help prints help(ctx->out) and returns CLI_HELPED; otherwise
 * CLI_OK with the positionals in pos[0..*npos). Strings are borrowed. */
int cli_open_sub(cli_ctx *ctx, const char *what, int argc, char **argv, const cli_opt *opts,
                 size_t nopts, const char **pos, size_t max_pos, size_t *npos,
                 void (*help)(FILE *out));

/* What an action of a subcommand is run with (see cli_run_actions); all
 * borrowed for the call. */
typedef struct cli_action_call {
    const char *act;         /* the action word, e.g. "acquire" */
    const char *const *args; /* the positionals after it */
    size_t nargs;
    const void *opts; /* the subcommand's struct of parsed option values */
} cli_action_call;

/* One action of a subcommand whose options may stand anywhere ("mabeam
 * lease acquire NAME --holder A"): the action word, how many positionals
 * follow it, and the function that runs it (returns a CLI_* code). */
typedef struct cli_action {
    const char *name;
    size_t min_args, max_args;
    int (*run)(cli_ctx *ctx, const cli_action_call *ac);
} cli_action;

/* Open the subcommand with `opts` (cli_open_sub) and run the action named
 * by the first positional with the rest. No action, an unknown one or a
 * wrong number of arguments prints "mabeam WHAT: ..." and help(ctx->err)
 * and returns CLI_USAGE; --help prints help(ctx->out) and returns CLI_OK.
 * `o` (usually the struct the option values in `opts` point into) is
 * passed to the action. All borrowed. */
int cli_run_actions(cli_ctx *ctx, const char *what, int argc, char **argv, const cli_opt *opts,
                    size_t nopts, const cli_action *acts, size_t nacts, const void *o,
                    void (*help)(FILE *out));

/* A subcommand whose actions take options of their own ("mabeam agent
 * spawn KIND --name N"): run the entry of `subs` named argv[1] with
 * argv[1..argc) (its argv[0] is the action word; it opens itself with
 * cli_open_sub). "help", "--help" and "-h" print help(ctx->out) and return
 * CLI_OK; no action prints help(ctx->err) and an unknown one "mabeam WHAT:
 * unknown command", both CLI_USAGE. */
int cli_run_subcmds(cli_ctx *ctx, const char *what, int argc, char **argv, const cli_cmd *subs,
                    size_t nsubs, void (*help)(FILE *out));

/* Options shared by the watch subcommands: --from-version (NULL: not given,
 * *has_from = 0), --count (0 = unlimited) and --timeout-ms (default 30000).
 * All strings are borrowed. Prints "mabeam WHAT: ..." on ctx->err and
 * returns CLI_USAGE for a bad value, CLI_OK otherwise. */
int cli_watch_opts(cli_ctx *ctx, const char *what, const char *from, const char *count,
                   const char *timeout, unsigned long long *version, int *has_from,
                   unsigned long long *want, long *timeout_ms);

/* The long-poll loop of the watch subcommands. Repeats GET `path_prefix`
 * + "from_version=V&timeout_ms=T" (path_prefix ends with '?' or '&'), takes
 * each element of the answer's array `items` whose "version" is above V,
 * in order and never twice, hands it to `print` (borrowed for the call),
 * then moves V to the answer's `last_key` number when that is higher.
 * Stops after `want` items (0 = never) or on an error of the call, whose
 * code it returns. All strings are borrowed. */
int cli_watch_loop(cli_ctx *ctx, const char *path_prefix, unsigned long long version,
                   unsigned long long want, long timeout_ms, const char *items,
                   const char *last_key, void (*print)(cli_ctx *ctx, const cJSON *item, void *arg),
                   void *arg);

/* Parse argv[1..argc) against `opts` ("--name value", "--name=value",
 * "--" ends options). Positionals go to pos (at most max_pos). Returns
 * CLI_OK, or CLI_USAGE with a message (unknown option, missing argument,
 * too many positionals). "--help"/"-h" sets *help. Pure. */
int cli_parse_opts(int argc, char **argv, const cli_opt *opts, size_t nopts, const char **pos,
                   size_t max_pos, size_t *npos, int *help, mb_error *err);

/* Parse a point in time for --since/--until into ms since the epoch:
 * an integer (already ms since the epoch), a duration ago ("90s", "10m",
 * "2h", "1d", "500ms"), or an RFC 3339 UTC time ("2026-11-25T22:09:02Z",
 * optional ".123" fraction, optional "+hh:mm" offset). Returns MB_OK or
 * MB_EINVAL. Pure. */
int cli_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* --- HTTP --- */
typedef struct cli_response {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
} cli_response;

/* Parse a complete HTTP/1.x response (as read until the server closed).
 * Handles Content-Length and chunked bodies. *body_off/body_len locate the
 * body (for chunked, the body is de-chunked in place). Returns MB_OK or
 * MB_EPROTO. Pure; fuzzed. */
int cli_http_parse_response(char *buf, size_t len, int *status, size_t *body_off, size_t *body_len);

/* Send one request and read the whole response. `body` may be NULL.
 * `timeout_ms` bounds connect + each read. Errors: MB_EUNAVAIL (cannot
 * connect), MB_ETIMEDOUT, MB_EPROTO, MB_ENOMEM. On success resp->body is
 * owned by the caller (cli_response_free). */
int cli_http(cli_ctx *ctx, const char *method, const char *path, const char *body, long timeout_ms,
             cli_response *resp, mb_error *err);
void cli_response_free(cli_response *r);

/* Request + JSON decode + error reporting: on a 2xx JSON answer returns
 * CLI_OK with *out owned by the caller; otherwise prints the server's
 * {"error":...} (or the transport error) to ctx->err and returns
 * CLI_ERROR. */
int cli_call_json(cli_ctx *ctx, const char *method, const char *path, const char *body,
                  long timeout_ms, cJSON **out);

/* Append "key=value" to a query string being built in buf (percent-
 * encoding value); buf starts as the path. Returns MB_ETOOBIG if full. */
int cli_query_add(char *buf, size_t size, const char *key, const char *value);

/* Print a JSON value pretty on ctx->out. */
void cli_print_json(cli_ctx *ctx, const cJSON *j);

/* Whether `name` (borrowed) can go into a URL path as one segment: 1 to
 * `max` bytes, none of "/?#% ". Otherwise says "mabeam WHAT: bad NOUN
 * 'name'" on ctx->err and returns 0. */
int cli_path_name_ok(cli_ctx *ctx, const char *what, const char *noun, const char *name,
                     size_t max);

#endif /* MB_NODE_CLI_H */
