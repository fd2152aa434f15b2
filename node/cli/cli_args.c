/* node/cli/cli_args.c: pure option parsing of the mabeam CLI (cli.h). */
#include <stdio.h>
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
    if (host[0] == '\0' || strlen(host) >= sizeof(ctx->host))
        return mb_errorf(err, MB_EINVAL, "bad host in address '%s'", addr);
    snprintf(ctx->host, sizeof(ctx->host), "%s", host);
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
