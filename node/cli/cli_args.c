/* node/cli/cli_args.c: pure option parsing of the mabeam CLI (cli.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

int cli_set_addr(cli_ctx *ctx, const char *addr, mb_error *err)
{
    const char *a = addr;
    if (strncmp(a, "http://", 7) == 0)
        a += 7;
    size_t len = strcspn(a, "/");
    char tmp[300];
    if (len == 0 || len >= sizeof(tmp))
        return mb_errorf(err, MB_EINVAL, "bad address '%s' (want host:port)", addr);
    memcpy(tmp, a, len);
    tmp[len] = '\0';
    char *host = tmp;
    char *colon;
    if (tmp[0] == '[') {
        char *close = strchr(tmp, ']');
        if (close == NULL || (close[1] != ':' && close[1] != '\0'))
            return mb_errorf(err, MB_EINVAL, "bad address '%s' (want [v6]:port)", addr);
        *close = '\0';
        host = tmp + 1;
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(tmp, ':');
    }
    const char *port = "7700";
    if (colon != NULL) {
        *colon = '\0';
        port = colon + 1;
    }
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
        return mb_errorf(err, MB_EINVAL, "bad port in address '%s'", addr);
    size_t hlen = strlen(host);
    if (hlen == 0 || hlen >= sizeof(ctx->host))
        return mb_errorf(err, MB_EINVAL, "bad host in address '%s'", addr);
    memcpy(ctx->host, host, hlen + 1); /* (snprintf trips -Wformat-truncation at -O0) */
    snprintf(ctx->port, sizeof(ctx->port), "%s", port);
    return MB_OK;
}

/* Match "--name" or "--name=value"; returns the value pointer, "" when no
 * '=' (the caller then takes the next argument), or NULL if no match. */
static const char *match_long(const char *arg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
        return NULL;
    if (arg[2 + n] == '\0')
        return "";
    if (arg[2 + n] == '=')
        return arg + 3 + n;
    return NULL;
}

int cli_parse_globals(int argc, char **argv, const char *env_addr, const char *env_token,
                      cli_ctx *ctx, int *first, int *want_help, int *want_version, mb_error *err)
{
    *want_help = *want_version = 0;
    ctx->json = 0;
    ctx->token = env_token != NULL && env_token[0] != '\0' ? env_token : NULL;
    if (cli_set_addr(ctx, env_addr != NULL && env_addr[0] != '\0' ? env_addr : CLI_DEFAULT_ADDR,
                     err) != MB_OK) {
        mb_errorf(err, MB_EINVAL, "MABEAM_ADDR: %s", err != NULL ? err->msg : "bad address");
        return CLI_USAGE;
    }
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *want_help = 1;
        } else if (strcmp(a, "--version") == 0) {
            *want_version = 1;
        } else if (strcmp(a, "--json") == 0) {
            ctx->json = 1;
        } else if ((v = match_long(a, "addr")) != NULL || (v = match_long(a, "token")) != NULL) {
            int is_addr = a[2] == 'a';
            if (v[0] == '\0' && strchr(a, '=') == NULL) {
                if (i + 1 >= argc) {
                    mb_errorf(err, MB_EINVAL, "%s needs a value", a);
                    return CLI_USAGE;
                }
                v = argv[++i];
            }
            if (is_addr) {
                if (cli_set_addr(ctx, v, err) != MB_OK)
                    return CLI_USAGE;
            } else {
                ctx->token = v[0] != '\0' ? v : NULL;
            }
        } else {
            mb_errorf(err, MB_EINVAL, "unknown global option '%s'", a);
            return CLI_USAGE;
        }
    }
    *first = i;
    return CLI_OK;
}

int cli_parse_opts(int argc, char **argv, const cli_opt *opts, size_t nopts, const char **pos,
                   size_t max_pos, size_t *npos, int *help, mb_error *err)
{
    *npos = 0;
    *help = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            *help = 1;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            size_t k = 0;
            const char *v = NULL;
            for (; k < nopts; k++)
                if ((v = match_long(a, opts[k].name)) != NULL)
                    break;
            if (k == nopts) {
                mb_errorf(err, MB_EINVAL, "unknown option '%s'", a);
                return CLI_USAGE;
            }
            if (!opts[k].has_arg) {
                if (v[0] != '\0') {
                    mb_errorf(err, MB_EINVAL, "option --%s takes no value", opts[k].name);
                    return CLI_USAGE;
                }
                *opts[k].value = "1";
                continue;
            }
            if (v[0] == '\0' && strchr(a, '=') == NULL) {
                if (i + 1 >= argc) {
                    mb_errorf(err, MB_EINVAL, "option --%s needs a value", opts[k].name);
                    return CLI_USAGE;
                }
                v = argv[++i];
            }
            *opts[k].value = v;
            continue;
        }
        if (*npos >= max_pos) {
            mb_errorf(err, MB_EINVAL, "unexpected argument '%s'", a);
            return CLI_USAGE;
        }
        pos[(*npos)++] = a;
    }
    return CLI_OK;
}

const cli_cmd *cli_command_find(const char *name)
{
    for (size_t i = 0; cli_commands[i] != NULL; i++)
        if (strcmp(cli_commands[i]->name, name) == 0)
            return cli_commands[i];
    return NULL;
}

int cli_query_add(char *buf, size_t size, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(buf);
    size_t need = len + 1 + strlen(key) + 1 + 3 * strlen(value) + 1;
    if (need > size)
        return MB_ETOOBIG;
    buf[len++] = strchr(buf, '?') != NULL ? '&' : '?';
    for (const char *k = key; *k; k++)
        buf[len++] = *k;
    buf[len++] = '=';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf[len++] = (char)*p;
        } else {
            buf[len++] = '%';
            buf[len++] = hex[*p >> 4];
            buf[len++] = hex[*p & 15];
        }
    }
    buf[len] = '\0';
    return MB_OK;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int cli_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    size_t len = strlen(s);
    if (len == 0 || len > 40)
        return MB_EINVAL;
    size_t nd = strspn(s, "0123456789");
    if (nd == len && nd <= 18) {
        *out_ms = strtoll(s, NULL, 10);
        return MB_OK;
    }
    /* A duration ago. */
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
    if (nd > 0 && nd <= 12) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(s + nd, units[i].unit) == 0) {
                int64_t v = strtoll(s, NULL, 10) * units[i].ms;
                *out_ms = now_ms - v;
                return MB_OK;
            }
    }
    /* RFC 3339: YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm] */
    int Y, M, D, h, mi, sec;
    if (len < 19 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return MB_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return MB_EINVAL;
    const char *p = s + 19;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        int64_t scale = 100;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                frac_ms += (*p - '0') * scale;
            scale /= 10;
            n++;
            p++;
        }
        if (n == 0)
            return MB_EINVAL;
    }
    int64_t offset_ms = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return MB_EINVAL;
        offset_ms = ((int64_t)oh * 60 + om) * 60000 * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return MB_EINVAL;
    }
    if (*p != '\0')
        return MB_EINVAL;
    /* Days from the civil date (proleptic Gregorian), no libc time zone. */
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *out_ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac_ms - offset_ms;
    return MB_OK;
}

int cli_watch_opts(cli_ctx *ctx, const char *what, const char *from, const char *count,
                   const char *timeout, unsigned long long *version, int *has_from,
                   unsigned long long *want, long *timeout_ms)
{
    char *end;
    *version = 0;
    *want = 0;
    *timeout_ms = 30000;
    *has_from = from != NULL;
    if (count != NULL && (*want = strtoull(count, &end, 10), *end != '\0' || *want == 0)) {
        fprintf(ctx->err, "mabeam %s: --count must be a positive integer\n", what);
        return CLI_USAGE;
    }
    if (timeout != NULL &&
        (*timeout_ms = strtol(timeout, &end, 10), *end != '\0' || *timeout_ms <= 0)) {
        fprintf(ctx->err, "mabeam %s: --timeout-ms must be a positive integer\n", what);
        return CLI_USAGE;
    }
    if (from != NULL) {
        *version = strtoull(from, &end, 10);
        if (*end != '\0' || from[0] == '\0') {
            fprintf(ctx->err, "mabeam %s: --from-version must be an integer\n", what);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

int cli_open_sub(cli_ctx *ctx, const char *what, int argc, char **argv, const cli_opt *opts,
                 size_t nopts, const char **pos, size_t max_pos, size_t *npos,
                 void (*help)(FILE *out))
{
    int want_help;
    mb_error e;
    if (cli_parse_opts(argc, argv, opts, nopts, pos, max_pos, npos, &want_help, &e) != CLI_OK) {
        fprintf(ctx->err, "mabeam %s: %s\n", what, e.msg);
        return CLI_USAGE;
    }
    if (want_help) {
        help(ctx->out);
        return CLI_HELPED;
    }
    return CLI_OK;
}

/* "a, b or c" of the action names, for messages. */
static void print_action_names(FILE *f, const cli_action *acts, size_t nacts)
{
    for (size_t i = 0; i < nacts; i++)
        fprintf(f, "%s%s", i == 0 ? "" : i + 1 == nacts ? " or " : ", ", acts[i].name);
}

int cli_run_actions(cli_ctx *ctx, const char *what, int argc, char **argv, const cli_opt *opts,
                    size_t nopts, const cli_action *acts, size_t nacts, const void *o,
                    void (*help)(FILE *out))
{
    enum { POS_MAX = 8 };
    size_t max_pos = 1;
    for (size_t i = 0; i < nacts; i++) {
        assert(acts[i].max_args < POS_MAX && acts[i].min_args <= acts[i].max_args);
        if (acts[i].max_args + 1 > max_pos)
            max_pos = acts[i].max_args + 1;
    }
    const char *pos[POS_MAX];
    size_t npos;
    int orv = cli_open_sub(ctx, what, argc, argv, opts, nopts, pos, max_pos, &npos, help);
    if (orv != CLI_OK)
        return orv == CLI_HELPED ? CLI_OK : orv;
    const cli_action *a = NULL;
    for (size_t i = 0; npos > 0 && i < nacts && a == NULL; i++)
        if (strcmp(pos[0], acts[i].name) == 0)
            a = &acts[i];
    if (a == NULL) {
        if (npos == 0)
            fprintf(ctx->err, "mabeam %s: missing action (", what);
        else
            fprintf(ctx->err, "mabeam %s: unknown action '%s' (expected ", what, pos[0]);
        print_action_names(ctx->err, acts, nacts);
        fprintf(ctx->err, ")\n");
        help(ctx->err);
        return CLI_USAGE;
    }
    size_t nargs = npos - 1;
    if (nargs < a->min_args || nargs > a->max_args) {
        fprintf(ctx->err, "mabeam %s %s: expects %zu", what, a->name, a->min_args);
        if (a->max_args != a->min_args)
            fprintf(ctx->err, " to %zu", a->max_args);
        fprintf(ctx->err, " argument%s, got %zu\n", a->max_args == 1 ? "" : "s", nargs);
        help(ctx->err);
        return CLI_USAGE;
    }
    cli_action_call ac = { .act = a->name, .args = pos + 1, .nargs = nargs, .opts = o };
    return a->run(ctx, &ac);
}

int cli_run_subcmds(cli_ctx *ctx, const char *what, int argc, char **argv, const cli_cmd *subs,
                    size_t nsubs, void (*help)(FILE *out))
{
    if (argc < 2) {
        help(ctx->err);
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        help(ctx->out);
        return CLI_OK;
    }
    for (size_t i = 0; i < nsubs; i++)
        if (strcmp(sub, subs[i].name) == 0)
            return subs[i].run(ctx, argc - 1, argv + 1);
    fprintf(ctx->err, "mabeam %s: unknown command '%s' (see mabeam %s --help)\n", what, sub, what);
    return CLI_USAGE;
}
