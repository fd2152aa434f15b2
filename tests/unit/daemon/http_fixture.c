/* tests/unit/daemon/http_fixture.c: see http_fixture.h. */
#include "http_fixture.h"

#include <stdio.h>
#include <string.h>

static void stop_cb(uv_async_t *a)
{
    http_fixture *f = a->data;
    http_server_close(f->srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    http_fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

int http_fixture_start(http_fixture *f, const api_route *routes, size_t n_routes,
                       size_t body_limit_bytes, size_t parked_max)
{
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    uv_async_init(&f->loop, &f->stop, stop_cb);
    f->stop.data = f;
    api_router_add(&f->router, routes, n_routes);
    http_server_opts o = {
        .listen = "127.0.0.1:0",
        .body_limit_bytes = body_limit_bytes,
        .router = &f->router,
        .loop = &f->loop,
        .parked_max = parked_max,
        .unanswered_ms = HTTP_FIXTURE_UNANSWERED_MS,
    };
    mb_error e;
    if (http_server_start(&o, &f->srv, &e) != MB_OK) {
        fprintf(stderr, "start: %s\n", e.msg);
        return -1;
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_server_port(f->srv));
    f->ctx.out = stdout;
    f->ctx.err = stderr;
    cli_set_addr(&f->ctx, addr, NULL);
    return pthread_create(&f->thread, NULL, loop_main, f) == 0 ? 0 : -1;
}

void http_fixture_stop(http_fixture *f)
{
    uv_async_send(&f->stop);
    pthread_join(f->thread, NULL);
    f->loop_close_rv = uv_loop_close(&f->loop);
}

int http_fixture_request(http_fixture *f, const char *method, const char *path, const char *body,
                         long timeout_ms, cli_response *r)
{
    mb_error e;
    return cli_http(&f->ctx, method, path, body, timeout_ms, r, &e);
}
