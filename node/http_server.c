/* node/http_server.c: NNG HTTP server glue, the command queue into the
 * control loop, and the api_call answers (see http_server.h and api.h). */
#include "node/http_server.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

/* Grace given at shutdown to the writes of answers to parked calls. */
#define HTTP_CLOSE_GRACE_MS 100
/* Default most long-polls parked at once; more are refused (MB_EFULL). */
#define HTTP_PARKED_MAX 1024

struct api_call {
    http_server *srv;
    nng_aio *aio; /* NNG's handler aio: finished exactly once */
    nng_http_conn *conn;
    nng_aio *body_aio;    /* ours, while reading the body */
    int sending_continue; /* body_aio is writing "100 Continue" first */
    char method[16];
    http_target target;
    const api_route *route;
    const char *params[HTTP_PARAMS_MAX];
    size_t nparams;
    char *body;
    size_t body_len;
    cJSON *json;
    uint64_t start_ns;
    api_call *next; /* command queue (under srv->mtx) */
    /* Loop thread only. */
    api_call *pprev, *pnext; /* parked list */
    int parked;
    int timer_init;
    uv_timer_t timer;
    api_expire_fn expire_cb;
    void *expire_arg;
};

struct http_server {
    http_server_opts o;
    nng_http_server *ns;
    nng_http_handler *h;
    int port;
    pthread_mutex_t mtx;
    api_call *qhead, *qtail; /* under mtx */
    int closing;             /* under mtx */
    char *token;             /* under mtx */
    size_t body_limit;       /* under mtx */
    uv_async_t wake;
    api_call *parked; /* loop thread */
    size_t nparked;
    api_call *current; /* call being handled by a route handler (loop) */
    int current_done;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void call_free_mem(api_call *c)
{
    http_target_free(&c->target);
    cJSON_Delete(c->json);
    free(c->body);
    free(c);
}

static void timer_closed_cb(uv_handle_t *h)
{
    call_free_mem(h->data);
}

/* Release a call after its aio was finished. */
static void call_release(api_call *c)
{
    if (c->body_aio != NULL) {
        /* May run inside the body aio's own callback: reap, don't free. */
        nng_aio_reap(c->body_aio);
        c->body_aio = NULL;
    }
    if (c->timer_init) {
        uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
        return;
    }
    call_free_mem(c);
}

/* Build and send the response, then release the call. Any thread. */
static void call_answer(api_call *c, int status, const char *ctype, const void *body, size_t len,
                        const char *allow, int close_conn)
{
    http_server *s = c->srv;
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0)
        rv = nng_http_res_set_status(res, (uint16_t)status);
    if (rv == 0)
        rv = nng_http_res_set_reason(res, http_reason(status));
    if (rv == 0 && ctype != NULL)
        rv = nng_http_res_set_header(res, "Content-Type", ctype);
    if (rv == 0 && allow != NULL)
        rv = nng_http_res_set_header(res, "Allow", allow);
    if (rv == 0 && status == 401)
        rv = nng_http_res_set_header(res, "WWW-Authenticate", "Bearer realm=\"mabeam\"");
    if (rv == 0 && close_conn)
        rv = nng_http_res_set_header(res, "Connection", "close");
    if (rv == 0)
        rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
    if (rv == 0)
        rv = nng_http_res_copy_data(res, body, len);
    if (s->o.observe != NULL)
        s->o.observe(s->o.observe_arg, c->route, rv == 0 ? status : 500, now_ns() - c->start_ns);
    if (rv != 0) {
        if (res != NULL)
            nng_http_res_free(res);
        nng_aio_finish(c->aio, rv); /* NNG hard-closes the connection */
    } else {
        nng_aio_set_output(c->aio, 0, res);
        nng_aio_finish(c->aio, 0);
    }
    c->aio = NULL;
    call_release(c);
}

static void call_answer_error(api_call *c, int status, int code, const char *msg, const char *allow,
                              int close_conn)
{
    char *j = http_error_json(code, msg);
    if (j == NULL) {
        call_answer(c, 500, "text/plain", "out of memory\n", 14, NULL, 1);
        return;
    }
    call_answer(c, status, "application/json", j, strlen(j), allow, close_conn);
    free(j);
}

/* NNG thread: the request is complete and valid; hand it to the loop. */
static void call_enqueue(api_call *c)
{
    http_server *s = c->srv;
    if (c->route->flags & API_BODY) {
        mb_error e;
        mb_error_clear(&e);
        if (http_json_object_parse(c->body, c->body_len, &c->json, &e) != MB_OK) {
            call_answer_error(c, 400, e.code, e.msg, NULL, 0);
            return;
        }
    }
    pthread_mutex_lock(&s->mtx);
    if (s->closing) {
        pthread_mutex_unlock(&s->mtx);
        call_answer_error(c, 503, MB_ECLOSED, "node is shutting down", NULL, 1);
        return;
    }
    c->next = NULL;
    if (s->qtail != NULL)
        s->qtail->next = c;
    else
        s->qhead = c;
    s->qtail = c;
    /* Sent under the lock: once `closing` is set (under the lock) nobody
     * touches the wake handle again, so the loop may close it. */
    uv_async_send(&s->wake);
    pthread_mutex_unlock(&s->mtx);
}

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void body_read_start(api_call *c)
{
    nng_iov iov = { .iov_buf = c->body, .iov_len = c->body_len };
    nng_aio_set_iov(c->body_aio, 1, &iov);
    nng_aio_set_timeout(c->body_aio, 30000);
    nng_http_conn_read_all(c->conn, c->body_aio);
}

static void body_read_cb(void *arg)
{
    api_call *c = arg;
    if (nng_aio_result(c->body_aio) == 0 && c->sending_continue) {
        c->sending_continue = 0;
        body_read_start(c);
        return;
    }
    if (nng_aio_result(c->body_aio) != 0) {
        /* The peer went away or the server is stopping: hard close. */
        if (c->srv->o.observe != NULL)
            c->srv->o.observe(c->srv->o.observe_arg, c->route, 400, now_ns() - c->start_ns);
        nng_aio_finish(c->aio, nng_aio_result(c->body_aio));
        c->aio = NULL;
        call_release(c);
        return;
    }
    call_enqueue(c);
}

static void handler_cb(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    http_server *s = nng_http_handler_get_data(h);
    api_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    c->srv = s;
    c->aio = aio;
    c->conn = nng_aio_get_input(aio, 2);
    c->start_ns = now_ns();
    snprintf(c->method, sizeof(c->method), "%s", nng_http_req_get_method(req));

    const char *cl = nng_http_req_get_header(req, "Content-Length");
    const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
    uint64_t body_len = 0;
    int has_body = cl != NULL || te != NULL;
    mb_error e;
    mb_error_clear(&e);

    if (http_target_parse(nng_http_req_get_uri(req), &c->target, &e) != MB_OK) {
        call_answer_error(c, 400, e.code, e.msg, NULL, has_body);
        return;
    }
    char allow[HTTP_ALLOW_MAX];
    switch (api_router_match(s->o.router, c->method, &c->target, &c->route, c->params, &c->nparams,
                             allow)) {
    case API_MATCH:
        break;
    case API_BAD_METHOD:
        snprintf(e.msg, sizeof(e.msg), "method %s not allowed here; allowed: %s", c->method, allow);
        call_answer_error(c, 405, MB_EINVAL, e.msg, allow, has_body);
        return;
    default:
        call_answer_error(c, 404, MB_ENOTFOUND, "no such API route", NULL, has_body);
        return;
    }
    if (!(c->route->flags & API_NO_AUTH)) {
        int ok = 1;
        pthread_mutex_lock(&s->mtx);
        if (s->token != NULL)
            ok = http_bearer_ok(nng_http_req_get_header(req, "Authorization"), s->token);
        pthread_mutex_unlock(&s->mtx);
        if (!ok) {
            call_answer_error(c, 401, MB_EAUTH,
                              "missing or wrong bearer token (Authorization: Bearer <token>)", NULL,
                              has_body);
            return;
        }
    }
    if (te != NULL) {
        call_answer_error(c, 411, MB_EINVAL,
                          "chunked request bodies are not supported; send Content-Length", NULL, 1);
        return;
    }
    if (cl != NULL && http_parse_content_length(cl, &body_len) != MB_OK) {
        call_answer_error(c, 400, MB_EINVAL, "malformed Content-Length", NULL, 1);
        return;
    }
    pthread_mutex_lock(&s->mtx);
    size_t limit = s->body_limit;
    pthread_mutex_unlock(&s->mtx);
    if (body_len > limit) {
        snprintf(e.msg, sizeof(e.msg), "request body of %llu bytes exceeds the limit of %zu bytes",
                 (unsigned long long)body_len, limit);
        call_answer_error(c, 413, MB_ETOOBIG, e.msg, NULL, 1);
        return;
    }
    if (body_len == 0) {
        call_enqueue(c);
        return;
    }
    c->body_len = (size_t)body_len;
    c->body = malloc(c->body_len + 1);
    if (c->body == NULL || nng_aio_alloc(&c->body_aio, body_read_cb, c) != 0) {
        call_answer_error(c, 500, MB_ENOMEM, "out of memory for the request body", NULL, 1);
        return;
    }
    c->body[c->body_len] = '\0';
    /* A client that asked to wait for "100 Continue" (curl does for bodies
     * over 1 KiB) would otherwise pause a second before sending. */
    const char *expect = nng_http_req_get_header(req, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
        c->sending_continue = 1;
        nng_iov iov = { .iov_buf = (void *)continue_line, .iov_len = sizeof(continue_line) - 1 };
        nng_aio_set_iov(c->body_aio, 1, &iov);
        nng_aio_set_timeout(c->body_aio, 30000);
        nng_http_conn_write_all(c->conn, c->body_aio);
        return;
    }
    body_read_start(c);
}

/* --- control loop side --- */

/* Loop thread: the call is about to be answered by a handler. */
static void unpark(api_call *c)
{
    http_server *s = c->srv;
    if (s->current == c)
        s->current_done = 1;
    if (!c->parked)
        return;
    if (c->pprev != NULL)
        c->pprev->pnext = c->pnext;
    else
        s->parked = c->pnext;
    if (c->pnext != NULL)
        c->pnext->pprev = c->pprev;
    c->pprev = c->pnext = NULL;
    c->parked = 0;
    s->nparked--;
    uv_timer_stop(&c->timer);
}

static void run_handler(http_server *s, api_call *c)
{
    s->current = c;
    s->current_done = 0;
    c->route->fn(s->o.node, c);
    /* A handler answers now or parks; anything else is a bug. */
    assert(s->current_done || c->parked);
    s->current = NULL;
}

static void wake_cb(uv_async_t *a)
{
    http_server *s = a->data;
    pthread_mutex_lock(&s->mtx);
    api_call *c = s->qhead;
    s->qhead = s->qtail = NULL;
    int closing = s->closing;
    pthread_mutex_unlock(&s->mtx);
    while (c != NULL) {
        api_call *next = c->next;
        if (closing)
            call_answer_error(c, 503, MB_ECLOSED, "node is shutting down", NULL, 1);
        else
            run_handler(s, c);
        c = next;
    }
}

static void park_timer_cb(uv_timer_t *t)
{
    api_call *c = t->data;
    http_server *s = c->srv;
    unpark(c);
    s->current = c;
    s->current_done = 0;
    c->expire_cb(s->o.node, c, c->expire_arg, MB_ETIMEDOUT);
    assert(s->current_done);
    s->current = NULL;
}

int api_call_park(struct node *n, api_call *c, uint64_t timeout_ms, api_expire_fn expire_cb,
                  void *arg)
{
    http_server *s = c->srv;
    (void)n;
    assert(!c->parked);
    if (s->nparked >= (s->o.parked_max != 0 ? s->o.parked_max : HTTP_PARKED_MAX))
        return MB_EFULL;
    if (!c->timer_init) {
        int rv = uv_timer_init(s->o.loop, &c->timer);
        if (rv != 0)
            return MB_EIO;
        c->timer_init = 1;
        c->timer.data = c;
    }
    c->expire_cb = expire_cb;
    c->expire_arg = arg;
    c->parked = 1;
    c->pprev = NULL;
    c->pnext = s->parked;
    if (s->parked != NULL)
        s->parked->pprev = c;
    s->parked = c;
    s->nparked++;
    uv_timer_start(&c->timer, park_timer_cb, timeout_ms, 0);
    return MB_OK;
}

size_t http_server_parked(const http_server *s)
{
    return s->nparked;
}

/* --- answers (loop thread) --- */

void api_reply_raw(api_call *c, int status, const char *content_type, const char *body, size_t len)
{
    unpark(c);
    call_answer(c, status, content_type, body, len, NULL, 0);
}

void api_reply_json(api_call *c, int status, cJSON *body)
{
    unpark(c);
    char *text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL) {
        if (body != NULL) {
            call_answer_error(c, 500, MB_ENOMEM, "out of memory rendering JSON", NULL, 0);
            return;
        }
        call_answer(c, status, "application/json", "{}", 2, NULL, 0);
        return;
    }
    call_answer(c, status, "application/json", text, strlen(text), NULL, 0);
    free(text);
}

void api_reply_error_status(api_call *c, int status, int code, const char *msg)
{
    unpark(c);
    call_answer_error(c, status, code, msg, NULL, 0);
}

void api_reply_error(api_call *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_reply_error_status(c, http_status_for_err(code), code, msg);
}

const char *api_call_method(const api_call *c)
{
    return c->method;
}

const api_route *api_call_route(const api_call *c)
{
    return c->route;
}

const char *api_call_param(const api_call *c, size_t i)
{
    return i < c->nparams ? c->params[i] : NULL;
}

const char *api_call_query(const api_call *c, const char *key)
{
    return http_target_query(&c->target, key);
}

const cJSON *api_call_json(const api_call *c)
{
    return c->json;
}

int api_query_u64(api_call *c, const char *key, uint64_t dflt, uint64_t *out)
{
    const char *v = http_target_query(&c->target, key);
    if (v == NULL) {
        *out = dflt;
        return MB_OK;
    }
    if (http_parse_u64(v, out) != MB_OK) {
        api_reply_error(c, MB_EINVAL,
                        "query parameter '%s' must be a non-negative integer, got '%.64s'", key, v);
        return MB_EINVAL;
    }
    return MB_OK;
}

int api_query_i64(api_call *c, const char *key, int64_t dflt, int64_t *out)
{
    const char *v = http_target_query(&c->target, key);
    if (v == NULL) {
        *out = dflt;
        return MB_OK;
    }
    if (http_parse_i64(v, out) != MB_OK) {
        api_reply_error(c, MB_EINVAL, "query parameter '%s' must be an integer, got '%.64s'", key,
                        v);
        return MB_EINVAL;
    }
    return MB_OK;
}

/* --- lifecycle --- */

static int nng_to_mb(int rv)
{
    switch (rv) {
    case NNG_EADDRINUSE:
        return MB_EBUSY;
    case NNG_EADDRINVAL:
    case NNG_EINVAL:
        return MB_EINVAL;
    case NNG_ENOMEM:
        return MB_ENOMEM;
    case NNG_EPERM:
        return MB_EPERM;
    default:
        return MB_EIO;
    }
}

static void wake_closed_cb(uv_handle_t *h);

int http_server_start(const http_server_opts *o, http_server **out, mb_error *err)
{
    char url_text[300];
    nng_url *url = NULL;
    int rv;
    int code;
    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "start HTTP server: out of memory");
    s->o = *o;
    s->body_limit = o->body_limit_bytes;
    pthread_mutex_init(&s->mtx, NULL);
    snprintf(url_text, sizeof(url_text), "http://%s", o->listen);
    if ((rv = nng_url_parse(&url, url_text)) != 0) {
        code =
            mb_errorf(err, MB_EINVAL, "HTTP listen address '%s': %s", o->listen, nng_strerror(rv));
        goto fail_mutex;
    }
    if ((rv = nng_http_server_hold(&s->ns, url)) != 0) {
        code = mb_errorf(err, nng_to_mb(rv), "HTTP server on %s: %s", o->listen, nng_strerror(rv));
        goto fail_url;
    }
    if ((rv = nng_http_handler_alloc(&s->h, "", handler_cb)) != 0 ||
        (rv = nng_http_handler_set_method(s->h, NULL)) != 0 ||
        (rv = nng_http_handler_set_tree(s->h)) != 0 ||
        (rv = nng_http_handler_collect_body(s->h, false, 0)) != 0 ||
        (rv = nng_http_handler_set_data(s->h, s, NULL)) != 0) {
        code = mb_errorf(err, nng_to_mb(rv), "HTTP handler: %s", nng_strerror(rv));
        goto fail_handler;
    }
    if ((rv = nng_http_server_add_handler(s->ns, s->h)) != 0) {
        code = mb_errorf(err, nng_to_mb(rv), "HTTP handler: %s", nng_strerror(rv));
        goto fail_handler;
    }
    if ((rv = uv_async_init(o->loop, &s->wake, wake_cb)) != 0) {
        code = mb_errorf(err, MB_EIO, "HTTP wake-up handle: %s", uv_strerror(rv));
        goto fail_server; /* handler now owned by the server */
    }
    s->wake.data = s;
    if ((rv = nng_http_server_start(s->ns)) != 0) {
        code =
            mb_errorf(err, nng_to_mb(rv), "listen for HTTP on %s: %s", o->listen, nng_strerror(rv));
        goto fail_async;
    }
    nng_sockaddr sa;
    if (nng_http_server_get_addr(s->ns, &sa) == 0 && sa.s_family == NNG_AF_INET)
        s->port = ntohs(sa.s_in.sa_port);
    else if (nng_http_server_get_addr(s->ns, &sa) == 0 && sa.s_family == NNG_AF_INET6)
        s->port = ntohs(sa.s_in6.sa_port);
    nng_url_free(url);
    *out = s;
    return MB_OK;

fail_async:
    /* The async handle is closed by the caller's loop teardown: closing it
     * here needs a callback, so free s from there. */
    nng_http_server_release(s->ns);
    nng_url_free(url);
    s->ns = NULL;
    uv_close((uv_handle_t *)&s->wake, wake_closed_cb);
    return code;
fail_handler:
    if (s->h != NULL)
        nng_http_handler_free(s->h);
fail_server:
    nng_http_server_release(s->ns);
fail_url:
    nng_url_free(url);
fail_mutex:
    pthread_mutex_destroy(&s->mtx);
    free(s);
    return code;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

int http_server_set_token(http_server *s, const char *token)
{
    char *copy = NULL;
    if (token != NULL && token[0] != '\0') {
        copy = strdup(token);
        if (copy == NULL)
            return MB_ENOMEM;
    }
    pthread_mutex_lock(&s->mtx);
    char *old = s->token;
    s->token = copy;
    pthread_mutex_unlock(&s->mtx);
    if (old != NULL) {
        memset(old, 0, strlen(old));
        free(old);
    }
    return MB_OK;
}

void http_server_set_body_limit(http_server *s, size_t bytes)
{
    pthread_mutex_lock(&s->mtx);
    s->body_limit = bytes;
    pthread_mutex_unlock(&s->mtx);
}

static void wake_closed_cb(uv_handle_t *h)
{
    http_server *s = h->data;
    pthread_mutex_destroy(&s->mtx);
    if (s->token != NULL)
        memset(s->token, 0, strlen(s->token));
    free(s->token);
    free(s);
}

void http_server_close(http_server *s)
{
    pthread_mutex_lock(&s->mtx);
    s->closing = 1;
    pthread_mutex_unlock(&s->mtx);
    /* Whatever is queued now is answered by the drain (it sees closing). */
    wake_cb(&s->wake);
    int answered = s->parked != NULL;
    while (s->parked != NULL) {
        api_call *c = s->parked;
        unpark(c);
        s->current = c;
        s->current_done = 0;
        c->expire_cb(s->o.node, c, c->expire_arg, MB_ECLOSED);
        assert(s->current_done);
        s->current = NULL;
    }
    /* NNG writes the answers on its threads and stopping the server aborts
     * unfinished writes; give them a short, bounded grace first. */
    if (answered) {
        struct timespec grace = { 0, HTTP_CLOSE_GRACE_MS * 1000000L };
        nanosleep(&grace, NULL);
    }
    /* Stops accepting, closes connections, waits for them: every handler
     * aio has been finished (or is finished by an NNG thread that sees
     * `closing`), so this cannot wait on the loop. */
    nng_http_server_stop(s->ns);
    nng_http_server_release(s->ns);
    s->ns = NULL;
    /* A request may have been queued between the drain and the stop. */
    wake_cb(&s->wake);
    uv_close((uv_handle_t *)&s->wake, wake_closed_cb);
}
