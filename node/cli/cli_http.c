/* node/cli/cli_http.c: a small blocking HTTP/1.1 client over a TCP socket
 * (one request per connection, "Connection: close") and the response
 * parser (cli.h). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "node/cli/cli.h"

#define RESPONSE_MAX (64u << 20)

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Find "\r\n\r\n" (or "\n\n"); returns the offset after it or 0. */
static size_t header_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n')
            return i + 2;
        if (i + 3 < len && buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
            buf[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

/* Value of header `name` within [buf, end) into out; 1 if found. */
static int header_value(const char *buf, size_t end, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *p = memchr(buf, '\n', end);
    while (p != NULL && (size_t)(p - buf) + 1 < end) {
        const char *line = p + 1;
        size_t rest = end - (size_t)(line - buf);
        const char *eol = memchr(line, '\n', rest);
        size_t llen = eol != NULL ? (size_t)(eol - line) : rest;
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen = llen - nlen - 1;
            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= size)
                vlen = size - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

static int dechunk(char *body, size_t len, size_t *out_len)
{
    size_t r = 0, w = 0;
    for (;;) {
        size_t size = 0;
        int digits = 0;
        while (r < len) {
            char c = body[r];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (size > (SIZE_MAX >> 4))
                return MB_EPROTO;
            size = size * 16 + (size_t)d;
            digits++;
            r++;
        }
        if (digits == 0)
            return MB_EPROTO;
        const char *nl = memchr(body + r, '\n', len - r);
        if (nl == NULL)
            return MB_EPROTO;
        r = (size_t)(nl - body) + 1;
        if (size == 0)
            break;
        if (size > len - r)
            return MB_EPROTO;
        memmove(body + w, body + r, size);
        w += size;
        r += size;
        if (r < len && body[r] == '\r')
            r++;
        if (r < len && body[r] == '\n')
            r++;
    }
    *out_len = w;
    return MB_OK;
}

int cli_http_parse_response(char *buf, size_t len, int *status, size_t *body_off, size_t *body_len)
{
    size_t hend = header_end(buf, len);
    if (hend == 0 || len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return MB_EPROTO;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return MB_EPROTO;
        st = st * 10 + (buf[i] - '0');
    }
    if (st < 100)
        return MB_EPROTO;
    *status = st;
    *body_off = hend;
    char v[64];
    if (header_value(buf, hend, "Transfer-Encoding", v, sizeof(v)) && strcasecmp(v, "chunked") == 0)
        return dechunk(buf + hend, len - hend, body_len);
    if (header_value(buf, hend, "Content-Length", v, sizeof(v))) {
        char *end = NULL;
        errno = 0;
        unsigned long long cl = strtoull(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || cl > len - hend)
            return MB_EPROTO;
        *body_len = (size_t)cl;
        return MB_OK;
    }
    *body_len = len - hend;
    return MB_OK;
}

void cli_response_free(cli_response *r)
{
    free(r->body);
    r->body = NULL;
}

static int wait_fd(int fd, short ev, long long deadline)
{
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0)
            return MB_ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = ev };
        int rv = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (rv > 0)
            return MB_OK;
        if (rv < 0 && errno != EINTR)
            return MB_EIO;
    }
}

static int connect_to(cli_ctx *ctx, long long deadline, int *out, mb_error *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(ctx->host, ctx->port, &hints, &res);
    if (rv != 0)
        return mb_errorf(err, MB_EUNAVAIL, "resolve %s: %s", ctx->host, gai_strerror(rv));
    int last = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            continue;
        }
        if (wait_fd(fd, POLLOUT, deadline) != MB_OK) {
            last = ETIMEDOUT;
            close(fd);
            continue;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0) {
            last = soerr;
            close(fd);
            continue;
        }
        freeaddrinfo(res);
        *out = fd;
        return MB_OK;
    }
    freeaddrinfo(res);
    return mb_errorf(err, MB_EUNAVAIL, "cannot connect to mabeamd at %s:%s: %s (is it running?)",
                     ctx->host, ctx->port, strerror(last != 0 ? last : ECONNREFUSED));
}

int cli_http(cli_ctx *ctx, const char *method, const char *path, const char *body, long timeout_ms,
             cli_response *resp, mb_error *err)
{
    long long deadline = mono_ms() + timeout_ms;
    int fd = -1;
    int rv;
    char *buf = NULL;
    memset(resp, 0, sizeof(*resp));
    if ((rv = connect_to(ctx, deadline, &fd, err)) != MB_OK)
        return rv;
    size_t blen = body != NULL ? strlen(body) : 0;
    char head[1024 + 8192];
    int hl = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: mabeam-cli\r\n"
                      "Accept: application/json\r\nConnection: close\r\n"
                      "%s%s%s"
                      "%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, ctx->host, ctx->port,
                      ctx->token != NULL ? "Authorization: Bearer " : "",
                      ctx->token != NULL ? ctx->token : "", ctx->token != NULL ? "\r\n" : "",
                      body != NULL ? "Content-Type: application/json\r\n" : "", blen);
    if (hl < 0 || (size_t)hl >= sizeof(head)) {
        rv = mb_errorf(err, MB_ETOOBIG, "request line too long");
        goto out;
    }
    const char *parts[2] = { head, body };
    size_t lens[2] = { (size_t)hl, blen };
    for (int k = 0; k < 2; k++) {
        size_t off = 0;
        while (off < lens[k]) {
            ssize_t w = send(fd, parts[k] + off, lens[k] - off, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                if ((rv = wait_fd(fd, POLLOUT, deadline)) != MB_OK) {
                    rv = mb_errorf(err, rv, "send request to %s:%s: timed out", ctx->host,
                                   ctx->port);
                    goto out;
                }
                continue;
            }
            if (w <= 0) {
                rv = mb_errorf(err, MB_EIO, "send request: %s", strerror(errno));
                goto out;
            }
            off += (size_t)w;
        }
    }
    size_t cap = 65536, len = 0;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        rv = mb_errorf(err, MB_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= RESPONSE_MAX) {
                rv = mb_errorf(err, MB_ETOOBIG, "response larger than %u bytes", RESPONSE_MAX);
                goto out;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                rv = mb_errorf(err, MB_ENOMEM, "out of memory");
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno == EAGAIN || errno == EINTR) {
            if ((rv = wait_fd(fd, POLLIN, deadline)) != MB_OK) {
                rv = mb_errorf(err, MB_ETIMEDOUT, "no answer from %s:%s within %ld ms", ctx->host,
                               ctx->port, timeout_ms);
                goto out;
            }
            continue;
        }
        rv = mb_errorf(err, MB_EIO, "read response: %s", strerror(errno));
        goto out;
    }
    size_t off = 0, bl = 0;
    if (cli_http_parse_response(buf, len, &resp->status, &off, &bl) != MB_OK) {
        rv = mb_errorf(err, MB_EPROTO, "malformed HTTP response from %s:%s", ctx->host, ctx->port);
        goto out;
    }
    memmove(buf, buf + off, bl);
    buf[bl] = '\0';
    resp->body = buf;
    resp->body_len = bl;
    buf = NULL;
    rv = MB_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rv;
}

int cli_call_json(cli_ctx *ctx, const char *method, const char *path, const char *body,
                  long timeout_ms, cJSON **out)
{
    cli_response r;
    mb_error e;
    mb_error_clear(&e);
    *out = NULL;
    if (cli_http(ctx, method, path, body, timeout_ms, &r, &e) != MB_OK) {
        fprintf(ctx->err, "mabeam: %s\n", e.msg);
        return CLI_ERROR;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    if (r.status < 200 || r.status > 299) {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(er, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(er, "message");
        if (cJSON_IsString(code) && cJSON_IsString(msg))
            fprintf(ctx->err, "mabeam: %s (HTTP %d, %s)\n", msg->valuestring, r.status,
                    code->valuestring);
        else
            fprintf(ctx->err, "mabeam: HTTP %d from %s %s\n", r.status, method, path);
        cJSON_Delete(j);
        cli_response_free(&r);
        return CLI_ERROR;
    }
    cli_response_free(&r);
    if (j == NULL) {
        fprintf(ctx->err, "mabeam: the node answered %s %s with malformed JSON\n", method, path);
        return CLI_ERROR;
    }
    *out = j;
    return CLI_OK;
}

int cli_path_name_ok(cli_ctx *ctx, const char *what, const char *noun, const char *name, size_t max)
{
    if (name[0] == '\0' || strlen(name) > max || strpbrk(name, "/?#% ") != NULL) {
        fprintf(ctx->err, "mabeam %s: bad %s '%s'\n", what, noun, name);
        return 0;
    }
    return 1;
}

void cli_print_json(cli_ctx *ctx, const cJSON *j)
{
    char *s = cJSON_Print(j);
    if (s != NULL) {
        fprintf(ctx->out, "%s\n", s);
        free(s);
    }
}

int cli_watch_loop(cli_ctx *ctx, const char *path_prefix, unsigned long long version,
                   unsigned long long want, long timeout_ms, const char *items,
                   const char *last_key, void (*print)(cli_ctx *ctx, const cJSON *item, void *arg),
                   void *arg)
{
    unsigned long long got = 0;
    for (;;) {
        char path[1024];
        snprintf(path, sizeof(path), "%sfrom_version=%llu&timeout_ms=%ld", path_prefix, version,
                 timeout_ms);
        cJSON *j;
        int rv = cli_call_json(ctx, "GET", path, NULL, timeout_ms + 10000, &j);
        if (rv != CLI_OK)
            return rv;
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, items))
        {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "version");
            if (!cJSON_IsNumber(v) || (unsigned long long)v->valuedouble <= version)
                continue; /* never twice */
            version = (unsigned long long)v->valuedouble;
            print(ctx, it, arg);
            fflush(ctx->out);
            if (want != 0 && ++got >= want) {
                cJSON_Delete(j);
                return CLI_OK;
            }
        }
        const cJSON *lv = cJSON_GetObjectItemCaseSensitive(j, last_key);
        if (cJSON_IsNumber(lv) && (unsigned long long)lv->valuedouble > version)
            version = (unsigned long long)lv->valuedouble;
        cJSON_Delete(j);
    }
}
