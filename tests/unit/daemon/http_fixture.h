/* tests/unit/daemon/http_fixture.h: the HTTP front door (node/http_server.c)
 * with a table of test routes, on a libuv loop running in its own thread,
 * and a client for it (the CLI's HTTP client). Shared by test_http_server
 * and test_api_park. */
#ifndef MB_TEST_HTTP_FIXTURE_H
#define MB_TEST_HTTP_FIXTURE_H

#include <pthread.h>
#include <stddef.h>

#include <uv.h>

#include "node/api.h"
#include "node/cli/cli.h"
#include "node/http_server.h"

typedef struct http_fixture {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    http_server *srv;
    api_router router;
    cli_ctx ctx;       /* the client, pointed at the server */
    int loop_close_rv; /* uv_loop_close after http_fixture_stop: 0 when clean */
} http_fixture;

/* The fixture's server answers a call its handler neither answered nor
 * parked (a handler bug) with 500 after this long. */
#define HTTP_FIXTURE_UNANSWERED_MS 300

/* Start a server on 127.0.0.1 (a free port) with `routes` (borrowed:
 * static storage), the body limit and the parked-call limit (0: the
 * default), and run its loop in a new thread. `f` is zeroed first.
 * Returns 0, or -1 with a message on stderr. */
int http_fixture_start(http_fixture *f, const api_route *routes, size_t n_routes,
                       size_t body_limit_bytes, size_t parked_max);

/* Close the server from its loop (parked calls are refused), join the
 * thread and close the loop (result in f->loop_close_rv). */
void http_fixture_stop(http_fixture *f);

/* One request with the fixture's client (cli_http); `body` may be NULL.
 * On MB_OK *r is the caller's to free (cli_response_free). */
int http_fixture_request(http_fixture *f, const char *method, const char *path, const char *body,
                         long timeout_ms, cli_response *r);

#endif /* MB_TEST_HTTP_FIXTURE_H */
