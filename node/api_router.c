/* node/api_router.c: the route table and its matcher (pure; see api.h). */
#include <assert.h>
#include <string.h>

#include "node/api.h"

void api_router_add(api_router *r, const api_route *routes, size_t n)
{
    assert(r->n + n <= API_ROUTES_MAX);
    for (size_t i = 0; i < n; i++)
        r->routes[r->n++] = &routes[i];
}

static void allow_append(char *allow, const char *method)
{
    /* No duplicates ("GET" from two tables). */
    size_t mlen = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += mlen)
        if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            return;
    size_t used = strlen(allow);
    if (used + mlen + 3 > HTTP_ALLOW_MAX)
        return;
    if (used > 0) {
        memcpy(allow + used, ", ", 2);
        used += 2;
    }
    memcpy(allow + used, method, mlen + 1);
}

api_match_result api_router_match(const api_router *r, const char *method, const http_target *t,
                                  const api_route **route, const char **vals, size_t *nvals,
                                  char *allow)
{
    int path_exists = 0;
    if (allow != NULL)
        allow[0] = '\0';
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < r->n; i++) {
        const char *v[HTTP_PARAMS_MAX];
        size_t nv = 0;
        if (!http_pattern_match(r->routes[i]->pattern, t, v, &nv))
            continue;
        if (strcmp(r->routes[i]->method, want) == 0) {
            *route = r->routes[i];
            memcpy(vals, v, nv * sizeof(v[0]));
            *nvals = nv;
            return API_MATCH;
        }
        path_exists = 1;
        if (allow != NULL) {
            allow_append(allow, r->routes[i]->method);
            if (strcmp(r->routes[i]->method, "GET") == 0)
                allow_append(allow, "HEAD");
        }
    }
    return path_exists ? API_BAD_METHOD : API_NO_ROUTE;
}
