/* node/http_server.h: the HTTP/1.1 front door of mabeamd, on the control
 * loop (libuv TCP).
 *
 * Threads: everything runs on the loop thread. A request is read, parsed,
 * routed, authenticated and its body checked there, then its route handler
 * runs at once (no queue, no thread hop); it answers with api_reply_*
 * (loop thread) now, or parks the call and answers later. Connections are
 * persistent (HTTP/1.1 keep-alive); pipelined requests on one connection
 * are handled one after the other. Idle connections close after 120 s,
 * half-sent requests after 30 s.
 *
 * Shutdown (http_server_close, loop thread): the listener closes, parked
 * calls are answered 503 MB_ECLOSED, answers still being written get a
 * 100 ms grace, then every connection and loop handle is closed. */
#ifndef MB_NODE_HTTP_SERVER_H
#define MB_NODE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "node/api.h"

typedef struct http_server http_server;

/* Called once per answered request, on the loop thread. `route` is NULL for requests answered
 * before routing (404, 400 on the target). */
typedef void (*http_observe_fn)(void *arg, const api_route *route, int status, uint64_t elapsed_ns);

/* Called on the loop thread when `route`'s handler returned without
 * answering or parking its call, or a parked call's expiry callback
 * returned without answering: a bug in that route's code, counted
 * (http_server_handler_bugs) in every build type. After a handler, the
 * server parks the call itself: it is answered by the handler if it does
 * so later, else with 500 MB_EINTERNAL after unanswered_ms, or 503 at
 * shutdown. */
typedef void (*http_bug_fn)(void *arg, const api_route *route);

typedef struct http_server_opts {
    const char *listen;       /* "127.0.0.1:7700"; port 0 picks a free port */
    size_t body_limit_bytes;  /* larger bodies get 413 */
    const api_router *router; /* borrowed; must outlive the server */
    uv_loop_t *loop;          /* the control loop (borrowed) */
    struct node *node;        /* passed to handlers (borrowed) */
    size_t parked_max;        /* most parked long-polls; 0 = 1024 */
    http_observe_fn observe;  /* may be NULL */
    void *observe_arg;
    http_bug_fn bug; /* may be NULL */
    void *bug_arg;
    uint64_t unanswered_ms; /* see http_bug_fn; 0 = 300000 */
} http_server_opts;

/* Start listening. On success *out is owned by the caller and released by
 * http_server_close (loop thread). MB_EBUSY when the address is in use,
 * MB_EINVAL for a bad address, MB_EIO otherwise. */
int http_server_start(const http_server_opts *o, http_server **out, mb_error *err);

/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *s);

/* Set (copy) the bearer token; NULL or "" disables auth. Any thread. */
int http_server_set_token(http_server *s, const char *token);

/* Change the request body limit (config reload). Any thread. */
void http_server_set_body_limit(http_server *s, size_t bytes);

/* Loop thread: answer everything pending with 503, stop NNG's server, and
 * close the loop handles; the memory is freed from the last close callback,
 * so the loop must run until its handles are closed. */
void http_server_close(http_server *s);

/* Number of calls currently parked (long-polls); loop thread. */
size_t http_server_parked(const http_server *s);

/* Number of contract breaks (see http_bug_fn: a handler that neither
 * answered nor parked, an expiry that did not answer) since the start;
 * any thread. */
uint64_t http_server_handler_bugs(const http_server *s);

#endif /* MB_NODE_HTTP_SERVER_H */
