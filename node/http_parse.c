/* node/http_parse.c: pure parsing helpers of the HTTP API (see the header). */
#include "node/http_parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode src[0..len) into dst (which has room for len+1 bytes).
 * Returns the decoded length or -1 on a bad escape, a NUL or a control
 * character. */
static long decode(const char *src, size_t len, char *dst, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hexval((unsigned char)src[i + 1]);
            int lo = hi < 0 ? -1 : hexval((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (long)o;
}

void http_target_free(http_target *t)
{
    if (t == NULL)
        return;
    free(t->buf);
    memset(t, 0, sizeof(*t));
}

int http_target_parse(const char *uri, http_target *t, mb_error *err)
{
    memset(t, 0, sizeof(*t));
    if (uri == NULL || uri[0] != '/')
        return mb_errorf(err, MB_EINVAL, "request target must start with '/'");
    size_t len = strnlen(uri, HTTP_URI_MAX + 1);
    if (len > HTTP_URI_MAX)
        return mb_errorf(err, MB_ETOOBIG, "request target longer than %d bytes", HTTP_URI_MAX);
    const char *q = memchr(uri, '?', len);
    const char *hash = memchr(uri, '#', len);
    size_t end = hash != NULL ? (size_t)(hash - uri) : len;
    size_t path_len = q != NULL && (size_t)(q - uri) < end ? (size_t)(q - uri) : end;

    /* Decoded text is never longer than the input; one NUL per piece. */
    t->buf = malloc(2 * len + 2);
    if (t->buf == NULL)
        return mb_errorf(err, MB_ENOMEM, "parse request target: out of memory");
    char *out = t->buf;

    size_t i = 1;
    while (i <= path_len) {
        size_t j = i;
        while (j < path_len && uri[j] != '/')
            j++;
        if (j > i) {
            if (t->nsegs == HTTP_SEGS_MAX) {
                http_target_free(t);
                return mb_errorf(err, MB_ETOOBIG, "more than %d path segments", HTTP_SEGS_MAX);
            }
            long n = decode(uri + i, j - i, out, 0);
            if (n < 0) {
                http_target_free(t);
                return mb_errorf(err, MB_EINVAL, "bad percent-escape or control byte in path");
            }
            if (strcmp(out, "..") == 0 || strcmp(out, ".") == 0) {
                http_target_free(t);
                return mb_errorf(err, MB_EINVAL, "dot segments are not allowed in paths");
            }
            t->segs[t->nsegs++] = out;
            out += n + 1;
        }
        i = j + 1;
    }

    if (q != NULL && (size_t)(q - uri) < end) {
        size_t k = (size_t)(q - uri) + 1;
        while (k < end) {
            size_t amp = k;
            while (amp < end && uri[amp] != '&')
                amp++;
            if (amp > k) {
                if (t->nquery == HTTP_QUERY_MAX) {
                    http_target_free(t);
                    return mb_errorf(err, MB_ETOOBIG, "more than %d query parameters",
                                     HTTP_QUERY_MAX);
                }
                const char *eq = memchr(uri + k, '=', amp - k);
                size_t klen = eq != NULL ? (size_t)(eq - (uri + k)) : amp - k;
                long n = decode(uri + k, klen, out, 1);
                if (n <= 0) {
                    http_target_free(t);
                    return mb_errorf(err, MB_EINVAL, "bad or empty query parameter name");
                }
                t->query[t->nquery].key = out;
                out += n + 1;
                if (eq != NULL) {
                    size_t vlen = amp - (size_t)(eq + 1 - uri);
                    n = decode(eq + 1, vlen, out, 1);
                    if (n < 0) {
                        mb_errorf(err, MB_EINVAL, "bad percent-escape in query parameter '%.64s'",
                                  t->query[t->nquery].key);
                        http_target_free(t);
                        return MB_EINVAL;
                    }
                } else {
                    n = 0;
                    out[0] = '\0';
                }
                t->query[t->nquery].val = out;
                out += n + 1;
                t->nquery++;
            }
            k = amp + 1;
        }
    }
    return MB_OK;
}

const char *http_target_query(const http_target *t, const char *key)
{
    for (size_t i = 0; i < t->nquery; i++)
        if (strcmp(t->query[i].key, key) == 0)
            return t->query[i].val;
    return NULL;
}

int http_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || s[0] == '\0')
        return MB_EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return MB_EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return MB_ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return MB_OK;
}

int http_parse_i64(const char *s, int64_t *out)
{
    if (s == NULL)
        return MB_EINVAL;
    int neg = s[0] == '-';
    uint64_t mag;
    int rv = http_parse_u64(s + neg, &mag);
    if (rv != MB_OK)
        return rv;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return MB_ERANGE;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return MB_ERANGE;
        *out = (int64_t)mag;
    }
    return MB_OK;
}

int http_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    if (s == NULL)
        return MB_EINVAL;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return MB_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return MB_OK;
        }
    }
    return MB_EINVAL;
}

int http_parse_content_length(const char *s, uint64_t *out)
{
    if (s == NULL || strlen(s) > 19)
        return MB_EINVAL;
    return http_parse_u64(s, out);
}

int http_json_object_parse(const void *body, size_t len, cJSON **out, mb_error *err)
{
    *out = NULL;
    if (body == NULL || len == 0)
        return mb_errorf(err, MB_EINVAL, "request body is empty; a JSON object is expected");
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (j == NULL) {
        size_t at =
            end != NULL && end >= (const char *)body ? (size_t)(end - (const char *)body) : 0;
        return mb_errorf(err, MB_EINVAL, "malformed JSON in request body near byte %zu", at);
    }
    /* Only whitespace may follow the value. */
    const char *p = end;
    const char *lim = (const char *)body + len;
    while (p != NULL && p < lim && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p != NULL && p < lim) {
        cJSON_Delete(j);
        return mb_errorf(err, MB_EINVAL, "trailing data after the JSON value at byte %zu",
                         (size_t)(p - (const char *)body));
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return mb_errorf(err, MB_EINVAL, "request body must be a JSON object");
    }
    *out = j;
    return MB_OK;
}

int http_pattern_match(const char *pattern, const http_target *t, const char **vals, size_t *nvals)
{
    size_t seg = 0;
    size_t nv = 0;
    const char *p = pattern;
    while (*p == '/')
        p++;
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t plen = e != NULL ? (size_t)(e - p) : strlen(p);
        if (seg >= t->nsegs)
            return 0;
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (nv < HTTP_PARAMS_MAX)
                vals[nv++] = t->segs[seg];
        } else if (strlen(t->segs[seg]) != plen || memcmp(t->segs[seg], p, plen) != 0) {
            return 0;
        }
        seg++;
        p += plen;
        while (*p == '/')
            p++;
    }
    if (seg != t->nsegs)
        return 0;
    *nvals = nv;
    return 1;
}

int http_bearer_ok(const char *header, const char *token)
{
    if (header == NULL || token == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const unsigned char *got = (const unsigned char *)header + 7;
    while (*got == ' ')
        got++;
    size_t glen = strlen((const char *)got);
    while (glen > 0 && (got[glen - 1] == ' ' || got[glen - 1] == '\t'))
        glen--;
    size_t tlen = strlen(token);
    /* Same work whatever the content; only the configured length shows. */
    volatile unsigned diff = glen != tlen;
    for (size_t i = 0; i < tlen; i++) {
        unsigned char g = i < glen ? got[i] : 0;
        diff |= (unsigned)(g ^ (unsigned char)token[i]);
    }
    return tlen > 0 && diff == 0;
}

int http_status_for_err(int code)
{
    switch (code) {
    case MB_OK:
        return 200;
    case MB_EINVAL:
    case MB_ECONSTRAINT:
    case MB_ERANGE:
    case MB_EPROTO:
        return 400;
    case MB_EAUTH:
        return 401;
    case MB_EPERM:
        return 403;
    case MB_ENOTFOUND:
    case MB_ENOAGENT:
        return 404;
    case MB_EEXIST:
    case MB_ECONFLICT:
    case MB_ESTATE:
        return 409;
    case MB_ETOOBIG:
        return 413;
    case MB_EFULL:
        return 429;
    case MB_ENOTSUP:
        return 501;
    case MB_EBUSY:
    case MB_ENOQUORUM:
    case MB_ENOTLEADER:
    case MB_EUNAVAIL:
    case MB_ECLOSED:
        return 503;
    case MB_ETIMEDOUT:
    case MB_EUNKNOWN:
        return 504;
    case MB_ENOSPC:
        return 507;
    default:
        return 500;
    }
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 507:
        return "Insufficient Storage";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

char *http_error_json(int code, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    char *out = NULL;
    if (e != NULL && cJSON_AddStringToObject(e, "code", mb_errname(code)) != NULL &&
        cJSON_AddStringToObject(e, "message",
                                message != NULL && message[0] != '\0' ? message
                                                                      : mb_strerror(code)) != NULL)
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* ---- request head (raft-perf: the HTTP server on the loop) ---- */

size_t http_request_head_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

static int head_name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

int http_request_head_parse(char *p, size_t len, http_request_head *h)
{
    memset(h, 0, sizeof(*h));
    char *end = p + len;
    char *eol = memchr(p, '\r', len);
    if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
        return MB_EINVAL;
    *eol = '\0';
    if (memchr(p, '\0', (size_t)(eol - p)) != NULL)
        return MB_EINVAL;
    char *sp1 = strchr(p, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == p || (size_t)(sp1 - p) >= sizeof(h->method) ||
        sp2 == sp1 + 1)
        return MB_EINVAL;
    memcpy(h->method, p, (size_t)(sp1 - p));
    h->method[sp1 - p] = '\0';
    *sp2 = '\0';
    h->uri = sp1 + 1;
    if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
        h->http10 = 0;
    else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
        h->http10 = 1;
    else
        return MB_EINVAL;
    for (p = eol + 2; p < end;) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
            return MB_EINVAL;
        if (eol == p)
            return MB_OK; /* the empty line ends the head */
        *eol = '\0';
        if (memchr(p, '\0', (size_t)(eol - p)) != NULL)
            return MB_EINVAL;
        char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p)
            return MB_EINVAL;
        size_t nlen = (size_t)(colon - p);
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        for (char *t = eol - 1; t >= v && (*t == ' ' || *t == '\t'); t--)
            *t = '\0';
        if (head_name_is(p, nlen, "Content-Length")) {
            h->dup_length |= h->content_length != NULL;
            h->content_length = v;
        } else if (head_name_is(p, nlen, "Transfer-Encoding")) {
            h->transfer_encoding = v;
        } else if (head_name_is(p, nlen, "Authorization")) {
            h->authorization = v;
        } else if (head_name_is(p, nlen, "Expect")) {
            h->expect = v;
        } else if (head_name_is(p, nlen, "Connection")) {
            h->connection = v;
        }
        p = eol + 2;
    }
    return MB_EINVAL; /* no empty line */
}
