/* node/api.h: the HTTP API's route table and the request ("call") objects
 * that route handlers see on the control loop.
 *
 * Each API area lives in its own file (node/api_node.c, api_events.c,
 * api_config.c, later api_vars.c, api_agents.c, ...) and exports one
 * `void api_xxx_register(api_router *)` that adds a static table of routes.
 * node/api_modules.c lists those register functions: a new module adds one
 * line there and never touches a dispatcher.
 *
 * Threads: routing, auth, body parsing and the route handlers all run on
 * the control loop thread (see http_server.h), where handlers may touch
 * node state. A handler must answer the call exactly once
 * (api_reply_*), now or later; to answer later (long-poll) it parks the call
 * with api_call_park and answers when the awaited thing happens or the park
 * callback fires. A handler that returns without either, or a park callback
 * that does not answer, is a bug: the server counts and logs it in every
 * build type (http_bug_fn in http_server.h), and the integration tests fail
 * on that log line. */
#ifndef MB_NODE_API_H
#define MB_NODE_API_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <mabeam/error.h>

#include "node/http_parse.h"

struct node;
typedef struct api_call api_call;

typedef void (*api_handler_fn)(struct node *n, api_call *call);

enum {
    API_NO_AUTH = 1u << 0, /* answer without a bearer token (health) */
    API_BODY = 1u << 1,    /* the handler expects a JSON object body */
};

typedef struct api_route {
    const char *method;  /* "GET", "PUT", "POST", "DELETE" */
    const char *pattern; /* "/v1/config/{key}"; {x} matches one segment */
    api_handler_fn fn;
    unsigned flags;   /* API_* */
    const char *name; /* label in metrics, e.g. "config_get" */
} api_route;

#define API_ROUTES_MAX 128

/* The routes of a node, filled once before the HTTP server starts and
 * read-only afterwards. */
typedef struct api_router {
    const api_route *routes[API_ROUTES_MAX];
    size_t n;
} api_router;

/* Add `n` routes; the table is borrowed (static storage). Asserts on
 * overflow: the table size is a build-time fact. */
void api_router_add(api_router *r, const api_route *routes, size_t n);

typedef enum api_match_result {
    API_MATCH = 0,
    API_NO_ROUTE = 1,  /* 404 */
    API_BAD_METHOD = 2 /* 405; allow holds the methods that exist */
} api_match_result;

/* Find the route for `method` and the parsed target. HEAD matches GET
 * routes. On API_MATCH *route is set and the {param} values are stored in
 * vals/nvals (borrowed from t). On API_BAD_METHOD `allow` (HTTP_ALLOW_MAX
 * bytes) receives e.g. "GET, PUT". Pure: safe from any thread. */
api_match_result api_router_match(const api_router *r, const char *method, const http_target *t,
                                  const api_route **route, const char **vals, size_t *nvals,
                                  char *allow);

/* Register every API module's routes (node/api_modules.c). */
void api_register_all(api_router *r);

/* --- Accessors for handlers (control loop thread). Borrowed pointers,
 * valid until the call is answered. --- */
const char *api_call_method(const api_call *c);
const api_route *api_call_route(const api_call *c);
/* Value of the i-th {placeholder} of the route pattern, or NULL. */
const char *api_call_param(const api_call *c, size_t i);
/* Query parameter by name, or NULL. */
const char *api_call_query(const api_call *c, const char *key);
/* Parsed JSON body (routes with API_BODY), or NULL. */
const cJSON *api_call_json(const api_call *c);

/* Query parameter helpers: absent -> *out = dflt and MB_OK; present but
 * malformed -> MB_EINVAL and the call is answered with a 400 naming the
 * parameter (the handler must then return without answering). */
int api_query_u64(api_call *c, const char *key, uint64_t dflt, uint64_t *out);
int api_query_i64(api_call *c, const char *key, int64_t dflt, int64_t *out);

/* --- Answers. Each answers the call exactly once and releases it; the
 * call pointer is invalid afterwards. --- */
/* JSON answer; takes ownership of `body` (may be NULL for an empty object). */
void api_reply_json(api_call *c, int status, cJSON *body);
/* Any content type; copies `body`. */
void api_reply_raw(api_call *c, int status, const char *content_type, const char *body, size_t len);
/* {"error":{...}} with the status mapped from `code` (http_status_for_err). */
void api_reply_error(api_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same with an explicit status (405, 413 ...). */
void api_reply_error_status(api_call *c, int status, int code, const char *msg);

/* Long-poll. Park the call: when `timeout_ms` passes, or the node shuts
 * down, `expire_cb(n, c, arg, code)` runs on the loop thread with code
 * MB_ETIMEDOUT or MB_ECLOSED and must answer the call (after forgetting it
 * in its own lists). A handler that answers a parked call earlier just
 * calls api_reply_* as usual: the park ends with it. */
/* Errors: MB_EFULL when too many calls are parked already (1024), MB_EIO;
 * the call is then still the handler's to answer. */
typedef void (*api_expire_fn)(struct node *n, api_call *c, void *arg, int code);
int api_call_park(struct node *n, api_call *c, uint64_t timeout_ms, api_expire_fn expire_cb,
                  void *arg);

#endif /* MB_NODE_API_H */
