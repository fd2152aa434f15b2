/* Fuzz target of the HTTP API's request parsing: the first line of the
 * input is a request target, the second an Authorization header, the
 * third a Content-Length value, the rest a JSON body. Every piece goes
 * through the pure parsers the NNG handler uses; none may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/api.h"
#include "node/http_parse.h"

static void h_none(struct node *n, api_call *c)
{
    (void)n;
    (void)c;
}

static const api_route routes[] = {
    { "GET", "/v1/config/{key}", h_none, 0, "a" },
    { "PUT", "/v1/config/{key}", h_none, API_BODY, "b" },
    { "GET", "/v1/{a}/{b}/{c}/{d}/{e}", h_none, 0, "c" },
    { "GET", "/v1/health", h_none, API_NO_AUTH, "d" },
};

static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *start = *p;
    const char *nl = memchr(start, '\n', (size_t)(end - start));
    const char *stop = nl != NULL ? nl : end;
    *len = (size_t)(stop - start);
    *p = nl != NULL ? nl + 1 : end;
    return start;
}

/* Copy n bytes into a NUL-terminated string (strndup would scan the
 * unterminated input for a NUL, which strict ASan string checks refuse). */
static char *copy(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *end = p + size;
    size_t l1, l2, l3;
    const char *s1 = next_line(&p, end, &l1);
    const char *s2 = next_line(&p, end, &l2);
    const char *s3 = next_line(&p, end, &l3);
    char *uri = copy(s1, l1);
    char *auth = copy(s2, l2);
    char *cl = copy(s3, l3);
    if (uri == NULL || auth == NULL || cl == NULL)
        goto out;

    http_target t;
    mb_error e;
    if (http_target_parse(uri, &t, &e) == MB_OK) {
        api_router r = { 0 };
        api_router_add(&r, routes, sizeof(routes) / sizeof(routes[0]));
        const api_route *route;
        const char *vals[HTTP_PARAMS_MAX];
        size_t nv;
        char allow[HTTP_ALLOW_MAX];
        static const char *const methods[] = { "GET", "PUT", "HEAD", "DELETE" };
        for (size_t m = 0; m < 4; m++)
            if (api_router_match(&r, methods[m], &t, &route, vals, &nv, allow) == API_MATCH)
                for (size_t i = 0; i < nv; i++)
                    (void)strlen(vals[i]);
        for (size_t i = 0; i < t.nquery; i++) {
            uint64_t u;
            int64_t v;
            int b;
            (void)http_parse_u64(t.query[i].val, &u);
            (void)http_parse_i64(t.query[i].val, &v);
            (void)http_parse_bool(t.query[i].val, &b);
            (void)http_target_query(&t, t.query[i].key);
        }
    }
    http_target_free(&t);
    (void)http_bearer_ok(auth, "token-123");
    uint64_t len;
    (void)http_parse_content_length(cl, &len);
    cJSON *j = NULL;
    if (http_json_object_parse(p, (size_t)(end - p), &j, &e) == MB_OK)
        cJSON_Delete(j);
    char *msg = http_error_json(MB_EINVAL, uri);
    free(msg);
out:
    free(uri);
    free(auth);
    free(cl);
    return 0;
}
