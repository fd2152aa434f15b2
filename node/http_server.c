/* node/http_server.c: the HTTP/1.1 server of mabeamd on the control loop
 * (libuv TCP), and the api_call answers (see http_server.h and api.h).
 *
 * Everything runs on the loop thread: a request is read, parsed, routed,
 * authenticated and handed to its route handler without a thread hop, and
 * the answer is written with uv_write. Connections are persistent (HTTP/1.1
 * keep-alive; HTTP/1.0 only with "Connection: keep-alive"); pipelined
 * requests on one connection are handled one after the other. */
#include "node/http_server.h"

#include <assert.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Grace given at shutdown to the writes of answers still in flight. */
#define HTTP_CLOSE_GRACE_MS 100
/* Default most long-polls parked at once; more are refused (MB_EFULL). */
#define HTTP_PARKED_MAX 1024
/* A call its handler left neither answered nor parked is answered 500
 * after this long, unless the handler answers it first. */
#define HTTP_UNANSWERED_MS 300000
/* Largest request head (request line + headers). */
#define HTTP_HEAD_MAX (16u << 10)
/* Connections idle this long (nothing outstanding) are closed, and so are
 * connections in the middle of sending a request for this long. */
#define HTTP_IDLE_MS    120000
#define HTTP_PARTIAL_MS 30000
#define HTTP_SWEEP_MS   5000

typedef struct conn conn;

struct api_call {
    http_server *srv;
    conn *conn; /* NULL once the connection is gone: the answer is dropped */
    int answered;
    int close_conn; /* the request asked for (or forces) a close after it */
    char method[16];
    http_target target;
    const api_route *route;
    const char *params[HTTP_PARAMS_MAX];
    size_t nparams;
    char *body;
    size_t body_len;
    cJSON *json;
    uint64_t start_ns;
    /* parked list */
    api_call *pprev, *pnext;
    int parked;
    int timer_init;
    uv_timer_t timer;
    api_expire_fn expire_cb;
    void *expire_arg;
};

struct conn {
    uv_tcp_t tcp;
    http_server *srv;
    conn *prev, *next; /* srv->conns */
    char *buf;         /* received, not yet consumed */
    size_t len, cap;
    api_call *call; /* request being handled (not answered yet) */
    int closing;
    int close_after_write;
    int reading;
    unsigned writes; /* uv_write in flight */
    int sent_continue;
    int queued;     /* in srv->ready (buffered requests to handle) */
    int processing; /* inside conn_process */
    conn *rnext;
    uint64_t last_ms;
};

struct http_server {
    http_server_opts o;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    uv_idle_t ready_idle; /* handles pipelined requests after an answer */
    conn *ready;
    int port;
    pthread_mutex_t mtx;
    char *token;       /* under mtx */
    size_t body_limit; /* under mtx */
    int closing;
    unsigned handles; /* open loop handles (listener, timer, idle, conns) */
    conn *conns;
    api_call *parked;
    size_t nparked;
    api_call *current; /* call being handled by a route handler */
    int current_done;
    uint64_t handler_bugs; /* atomic: read from any thread */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void server_unref(http_server *s);
static void conn_process(conn *c);

/* ---------------- connections ---------------- */

static void conn_closed_cb(uv_handle_t *h)
{
    conn *c = h->data;
    http_server *s = c->srv;
    free(c->buf);
    free(c);
    server_unref(s);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    http_server *s = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->call != NULL) {
        c->call->conn = NULL; /* answered later into the void */
        c->call = NULL;
    }
    if (c->queued) {
        for (conn **pp = &s->ready; *pp != NULL; pp = &(*pp)->rnext)
            if (*pp == c) {
                *pp = c->rnext;
                break;
            }
        c->queued = 0;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

typedef struct write_req {
    uv_write_t req;
    conn *c;
    char data[];
} write_req;

static void write_cb(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    conn *c = w->c;
    free(w);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0 || (c->close_after_write && c->writes == 0))
        conn_close(c);
}

/* Queue `len` bytes (copied) for the peer. */
static int conn_write(conn *c, const char *head, size_t head_len, const void *body, size_t body_len)
{
    write_req *w = malloc(sizeof(*w) + head_len + body_len);
    if (w == NULL)
        return -1;
    w->c = c;
    memcpy(w->data, head, head_len);
    if (body_len > 0)
        memcpy(w->data + head_len, body, body_len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(head_len + body_len));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
        free(w);
        return -1;
    }
    c->writes++;
    return 0;
}

/* ---------------- calls ---------------- */

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

static void call_release(api_call *c)
{
    if (c->timer_init) {
        uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
        return;
    }
    call_free_mem(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void ready_idle_cb(uv_idle_t *h)
{
    http_server *s = h->data;
    while (s->ready != NULL) {
        conn *c = s->ready;
        s->ready = c->rnext;
        c->queued = 0;
        conn_process(c);
    }
    uv_idle_stop(h);
}

/* Build and send the response, then release the call. Loop thread. */
static void call_answer(api_call *c, int status, const char *ctype, const void *body, size_t len,
                        const char *allow, int close_conn)
{
    http_server *s = c->srv;
    conn *k = c->conn;
    assert(!c->answered);
    c->answered = 1;
    if (s->o.observe != NULL)
        s->o.observe(s->o.observe_arg, c->route, status, now_ns() - c->start_ns);
    if (k != NULL && !k->closing) {
        int close_after = close_conn || c->close_conn || s->closing;
        char head[512];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d %s\r\n%s%s%s%s%s%s%sCache-Control: no-store\r\n"
                         "Content-Length: %zu\r\n%s\r\n",
                         status, http_reason(status), ctype != NULL ? "Content-Type: " : "",
                         ctype != NULL ? ctype : "", ctype != NULL ? "\r\n" : "",
                         allow != NULL ? "Allow: " : "", allow != NULL ? allow : "",
                         allow != NULL ? "\r\n" : "",
                         status == 401 ? "WWW-Authenticate: Bearer realm=\"mabeam\"\r\n" : "", len,
                         close_after ? "Connection: close\r\n" : "");
        k->call = NULL;
        /* HEAD: the headers of the GET answer, no body. */
        size_t body_len = strcmp(c->method, "HEAD") == 0 ? 0 : len;
        if (n <= 0 || (size_t)n >= sizeof(head) ||
            conn_write(k, head, (size_t)n, body, body_len) != 0) {
            conn_close(k);
        } else if (close_after) {
            k->close_after_write = 1;
            uv_read_stop((uv_stream_t *)&k->tcp);
            k->reading = 0;
        } else if (!k->reading) {
            if (uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb) == 0)
                k->reading = 1;
            else
                conn_close(k);
        }
        if (!k->closing && !k->close_after_write && k->len > 0 && !k->queued && !k->processing) {
            /* A pipelined request is waiting: handle it from the idle
             * handle, not from inside whatever callback answered this. */
            k->queued = 1;
            k->rnext = s->ready;
            s->ready = k;
            uv_idle_start(&s->ready_idle, ready_idle_cb);
        }
    }
    c->conn = NULL;
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

static void unanswered_expired(struct node *n, api_call *c, void *arg, int code)
{
    (void)n;
    (void)arg;
    if (code == MB_ECLOSED)
        api_reply_error(c, MB_ECLOSED, "node is shutting down");
    else
        api_reply_error(c, MB_EINTERNAL,
                        "internal error: this route's handler never answered (see the node log)");
}

/* A handler or an expiry callback broke the answer-or-park contract. */
static void handler_bug(http_server *s, api_call *c)
{
    __atomic_fetch_add(&s->handler_bugs, 1, __ATOMIC_RELAXED);
    if (s->o.bug != NULL)
        s->o.bug(s->o.bug_arg, c->route);
}

static void run_handler(http_server *s, api_call *c)
{
    s->current = c;
    s->current_done = 0;
    c->route->fn(s->o.node, c);
    s->current = NULL;
    if (s->current_done || c->parked)
        return;
    /* A handler answers now or parks; anything else is a bug. It is
     * counted and reported in every build type (tests look for it), and
     * the call is parked so that it is answered in the end and freed:
     * by the handler if it still answers, else by the timeout or the
     * shutdown. When even that fails the call stays as it was left. */
    handler_bug(s, c);
    uint64_t ms = s->o.unanswered_ms != 0 ? s->o.unanswered_ms : HTTP_UNANSWERED_MS;
    (void)api_call_park(s->o.node, c, ms, unanswered_expired, NULL);
}

uint64_t http_server_handler_bugs(const http_server *s)
{
    return __atomic_load_n(&s->handler_bugs, __ATOMIC_RELAXED);
}

/* ---------------- request parsing ---------------- */

static void consume(conn *k, size_t n)
{
    memmove(k->buf, k->buf + n, k->len - n);
    k->len -= n;
}

/* Route, authenticate and dispatch a complete request (call owns body). */
static void dispatch(http_server *s, api_call *c, const http_request_head *h)
{
    mb_error e;
    mb_error_clear(&e);
    if (http_target_parse(h->uri, &c->target, &e) != MB_OK) {
        call_answer_error(c, 400, e.code, e.msg, NULL, 0);
        return;
    }
    char allow[HTTP_ALLOW_MAX];
    switch (api_router_match(s->o.router, c->method, &c->target, &c->route, c->params, &c->nparams,
                             allow)) {
    case API_MATCH:
        break;
    case API_BAD_METHOD:
        snprintf(e.msg, sizeof(e.msg), "method %s not allowed here; allowed: %s", c->method, allow);
        call_answer_error(c, 405, MB_EINVAL, e.msg, allow, 0);
        return;
    default:
        call_answer_error(c, 404, MB_ENOTFOUND, "no such API route", NULL, 0);
        return;
    }
    if (!(c->route->flags & API_NO_AUTH)) {
        int ok = 1;
        pthread_mutex_lock(&s->mtx);
        if (s->token != NULL)
            ok = http_bearer_ok(h->authorization, s->token);
        pthread_mutex_unlock(&s->mtx);
        if (!ok) {
            call_answer_error(c, 401, MB_EAUTH,
                              "missing or wrong bearer token (Authorization: Bearer <token>)", NULL,
                              0);
            return;
        }
    }
    if (c->route->flags & API_BODY) {
        if (http_json_object_parse(c->body, c->body_len, &c->json, &e) != MB_OK) {
            call_answer_error(c, 400, e.code, e.msg, NULL, 0);
            return;
        }
    }
    if (s->closing) {
        call_answer_error(c, 503, MB_ECLOSED, "node is shutting down", NULL, 1);
        return;
    }
    run_handler(s, c);
}

/* Answer a request that cannot be read further, then close. */
static void reject(conn *k, int status, int code, const char *msg)
{
    api_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        conn_close(k);
        return;
    }
    c->srv = k->srv;
    c->conn = k;
    c->start_ns = now_ns();
    k->call = c;
    k->len = 0;
    call_answer_error(c, status, code, msg, NULL, 1);
}

/* Handle the complete requests in the buffer, one at a time. */
static void conn_process_requests(conn *k)
{
    http_server *s = k->srv;
    while (!k->closing && k->call == NULL && !k->close_after_write && k->len > 0) {
        size_t head_len = http_request_head_end(k->buf, k->len);
        if (head_len == 0) {
            if (k->len > HTTP_HEAD_MAX)
                reject(k, 431, MB_ETOOBIG, "request head too large");
            return;
        }
        /* Parse a copy: the head stays intact until the body is here. */
        char hcopy[HTTP_HEAD_MAX + 8];
        if (head_len > HTTP_HEAD_MAX) {
            reject(k, 431, MB_ETOOBIG, "request head too large");
            return;
        }
        memcpy(hcopy, k->buf, head_len);
        http_request_head h;
        if (http_request_head_parse(hcopy, head_len, &h) != MB_OK) {
            reject(k, 400, MB_EINVAL, "malformed HTTP request");
            return;
        }
        uint64_t body_len = 0;
        if (h.transfer_encoding != NULL) {
            reject(k, 411, MB_EINVAL,
                   "chunked request bodies are not supported; send Content-Length");
            return;
        }
        if (h.content_length != NULL &&
            (h.dup_length || http_parse_content_length(h.content_length, &body_len) != MB_OK)) {
            reject(k, 400, MB_EINVAL, "malformed Content-Length");
            return;
        }
        pthread_mutex_lock(&s->mtx);
        size_t limit = s->body_limit;
        pthread_mutex_unlock(&s->mtx);
        if (body_len > limit) {
            char msg[160];
            snprintf(msg, sizeof(msg), "request body of %llu bytes exceeds the limit of %zu bytes",
                     (unsigned long long)body_len, limit);
            reject(k, 413, MB_ETOOBIG, msg);
            return;
        }
        if (k->len - head_len < body_len) {
            /* A client that asked to wait for "100 Continue" (curl does
             * for bodies over 1 KiB) would otherwise pause first. */
            if (!k->sent_continue && h.expect != NULL &&
                strcasecmp(h.expect, "100-continue") == 0 && !h.http10) {
                static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
                k->sent_continue = 1;
                if (conn_write(k, line, sizeof(line) - 1, NULL, 0) != 0)
                    conn_close(k);
            }
            return;
        }
        k->sent_continue = 0;
        api_call *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            conn_close(k);
            return;
        }
        c->srv = s;
        c->conn = k;
        c->start_ns = now_ns();
        snprintf(c->method, sizeof(c->method), "%s", h.method);
        c->close_conn = h.http10
                            ? !(h.connection != NULL && strcasecmp(h.connection, "keep-alive") == 0)
                            : (h.connection != NULL && strcasecmp(h.connection, "close") == 0);
        c->body_len = (size_t)body_len;
        c->body = malloc(c->body_len + 1);
        if (c->body == NULL) {
            free(c);
            conn_close(k);
            return;
        }
        memcpy(c->body, k->buf + head_len, c->body_len);
        c->body[c->body_len] = '\0';
        /* The URI points into hcopy, which dispatch() parses at once. */
        consume(k, head_len + c->body_len);
        k->call = c;
        dispatch(s, c, &h);
    }
}

static void conn_process(conn *k)
{
    k->processing = 1;
    conn_process_requests(k);
    k->processing = 0; /* k is freed by its close callback, never before */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *k = h->data;
    (void)suggested;
    if (k->cap - k->len < 4096) {
        size_t ncap = k->cap != 0 ? k->cap * 2 : 8192;
        char *nb = realloc(k->buf, ncap);
        if (nb == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        k->buf = nb;
        k->cap = ncap;
    }
    *buf = uv_buf_init(k->buf + k->len, (unsigned)(k->cap - k->len));
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *k = st->data;
    (void)buf;
    if (nread < 0) {
        conn_close(k);
        return;
    }
    if (nread == 0)
        return;
    k->len += (size_t)nread;
    k->last_ms = uv_now(k->srv->loop);
    /* Bound what a client may send ahead of our answers. */
    pthread_mutex_lock(&k->srv->mtx);
    size_t limit = k->srv->body_limit;
    pthread_mutex_unlock(&k->srv->mtx);
    if (k->len > limit + 2 * HTTP_HEAD_MAX) {
        if (k->call == NULL) {
            reject(k, 413, MB_ETOOBIG, "request too large");
            return;
        }
        uv_read_stop(st);
        k->reading = 0;
    }
    conn_process(k);
    if (!k->closing && !k->reading && k->call == NULL && !k->close_after_write) {
        if (uv_read_start(st, alloc_cb, read_cb) == 0)
            k->reading = 1;
    }
}

static void connection_cb(uv_stream_t *server, int status)
{
    http_server *s = server->data;
    if (status < 0)
        return;
    conn *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return;
    k->srv = s;
    if (uv_tcp_init(s->loop, &k->tcp) != 0) {
        free(k);
        return;
    }
    k->tcp.data = k;
    s->handles++;
    k->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = k;
    s->conns = k;
    k->last_ms = uv_now(s->loop);
    if (uv_accept(server, (uv_stream_t *)&k->tcp) != 0 || s->closing) {
        conn_close(k);
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    if (uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb) != 0) {
        conn_close(k);
        return;
    }
    k->reading = 1;
}

static void sweep_cb(uv_timer_t *t)
{
    http_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (conn *k = s->conns, *next; k != NULL; k = next) {
        next = k->next;
        if (k->call != NULL || k->writes > 0)
            continue;
        uint64_t idle = now - k->last_ms;
        if (idle > HTTP_IDLE_MS || (k->len > 0 && idle > HTTP_PARTIAL_MS))
            conn_close(k);
    }
}

/* --- parking --- */

/* The call is about to be answered by a handler. */
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

static void park_timer_cb(uv_timer_t *t)
{
    api_call *c = t->data;
    http_server *s = c->srv;
    unpark(c);
    s->current = c;
    s->current_done = 0;
    c->expire_cb(s->o.node, c, c->expire_arg, MB_ETIMEDOUT);
    if (!s->current_done) /* an expiry must answer */
        handler_bug(s, c);
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
        int rv = uv_timer_init(s->loop, &c->timer);
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

static int uv_to_mb(int rv)
{
    switch (rv) {
    case UV_EADDRINUSE:
        return MB_EBUSY;
    case UV_EADDRNOTAVAIL:
    case UV_EINVAL:
    case UV_EAI_NONAME:
        return MB_EINVAL;
    case UV_ENOMEM:
        return MB_ENOMEM;
    case UV_EACCES:
    case UV_EPERM:
        return MB_EPERM;
    default:
        return MB_EIO;
    }
}

/* "host:port" (IPv4 literal, [IPv6], "localhost" or a resolvable name;
 * empty host or "*" = any IPv4 address) into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, mb_error *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon[1] == '\0' || (size_t)(colon - listen) >= sizeof(host))
        return mb_errorf(err, MB_EINVAL, "HTTP listen address '%s': expected host:port", listen);
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535)
        return mb_errorf(err, MB_EINVAL, "HTTP listen address '%s': bad port", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']')
            return mb_errorf(err, MB_EINVAL, "HTTP listen address '%s': bad IPv6", listen);
        host[hl - 1] = '\0';
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) != 0)
            return mb_errorf(err, MB_EINVAL, "HTTP listen address '%s': bad IPv6", listen);
        return MB_OK;
    }
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return MB_OK;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int rv = getaddrinfo(host, NULL, &hints, &ai);
    if (rv != 0 || ai == NULL)
        return mb_errorf(err, MB_EINVAL, "HTTP listen address '%s': %s", listen,
                         rv != 0 ? gai_strerror(rv) : "no address");
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(ai);
    return MB_OK;
}

static void server_free(http_server *s)
{
    pthread_mutex_destroy(&s->mtx);
    if (s->token != NULL)
        memset(s->token, 0, strlen(s->token));
    free(s->token);
    free(s);
}

/* Every loop handle of the server (and of its connections) ends here;
 * the last one frees the server once it is closing. */
static void server_unref(http_server *s)
{
    if (--s->handles == 0 && s->closing)
        server_free(s);
}

static void srv_handle_closed_cb(uv_handle_t *h)
{
    server_unref(h->data);
}

int http_server_start(const http_server_opts *o, http_server **out, mb_error *err)
{
    struct sockaddr_storage ss;
    int rc = parse_listen(o->listen, &ss, err);
    if (rc != MB_OK)
        return rc;
    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "start HTTP server: out of memory");
    s->o = *o;
    s->loop = o->loop;
    s->body_limit = o->body_limit_bytes;
    pthread_mutex_init(&s->mtx, NULL);
    int rv = uv_tcp_init(s->loop, &s->listener);
    if (rv != 0) {
        server_free(s);
        return mb_errorf(err, uv_to_mb(rv), "HTTP server on %s: %s", o->listen, uv_strerror(rv));
    }
    s->listener.data = s;
    uv_timer_init(s->loop, &s->sweep);
    s->sweep.data = s;
    uv_idle_init(s->loop, &s->ready_idle);
    s->ready_idle.data = s;
    s->handles = 3;
    rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->listener, 511, connection_cb);
    if (rv != 0) {
        rc = mb_errorf(err, uv_to_mb(rv), "listen for HTTP on %s: %s", o->listen,
                       rv == UV_EADDRINUSE ? "Address in use" : uv_strerror(rv));
        /* The handles close through the loop, which frees s. */
        s->closing = 1;
        uv_close((uv_handle_t *)&s->listener, srv_handle_closed_cb);
        uv_close((uv_handle_t *)&s->sweep, srv_handle_closed_cb);
        uv_close((uv_handle_t *)&s->ready_idle, srv_handle_closed_cb);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_start(&s->sweep, sweep_cb, HTTP_SWEEP_MS, HTTP_SWEEP_MS);
    *out = s;
    return MB_OK;
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

/* After the grace: close what is still open (a peer that does not read). */
static void grace_cb(uv_timer_t *t)
{
    http_server *s = t->data;
    while (s->conns != NULL)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->sweep, srv_handle_closed_cb);
}

void http_server_close(http_server *s)
{
    s->closing = 1;
    uv_close((uv_handle_t *)&s->listener, srv_handle_closed_cb);
    uv_close((uv_handle_t *)&s->ready_idle, srv_handle_closed_cb);
    s->ready = NULL;
    for (conn *k = s->conns; k != NULL; k = k->next)
        k->queued = 0;
    while (s->parked != NULL) {
        api_call *c = s->parked;
        unpark(c);
        s->current = c;
        s->current_done = 0;
        c->expire_cb(s->o.node, c, c->expire_arg, MB_ECLOSED);
        if (!s->current_done)
            handler_bug(s, c);
        s->current = NULL;
    }
    /* Idle connections close now; those with an answer being written get
     * a short, bounded grace (the sweep timer becomes the grace timer). */
    int writing = 0;
    for (conn *k = s->conns, *next; k != NULL; k = next) {
        next = k->next;
        if (k->writes > 0) {
            k->close_after_write = 1;
            writing = 1;
        } else {
            conn_close(k);
        }
    }
    uv_timer_stop(&s->sweep);
    if (writing)
        uv_timer_start(&s->sweep, grace_cb, HTTP_CLOSE_GRACE_MS, 0);
    else
        grace_cb(&s->sweep);
}
