/* The mesh endpoint: one rep0 listener per node, one req0 socket per peer,
 * authenticated envelopes, RPC with a dedup cache, heartbeats feeding the
 * failure detector, joining through seeds, leader gossip and ordered
 * at-most-once agent message channels.
 *
 * Threads: all state below belongs to the loop thread. NNG aio callbacks
 * only move an object into the event queue (mesh_post) and wake the loop;
 * mesh_send_agent() only appends to the outbox under `lock`. */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cluster/closer.h"
#include "cluster/cluster.h"
#include "cluster/wire.h"

/* Methods of the mesh itself (below MESH_METHOD_USER_MIN). */
enum { METHOD_HEARTBEAT = 1, METHOD_JOIN = 2, METHOD_AGENT = 3 };

#define SP_FRAMING_BYTES     12u /* 8-byte length prefix + 4-byte request id */
#define DEDUP_MAX_WAITERS    4
#define AGENT_BATCH_BYTES    (256u * 1024u)
#define AGENT_BATCH_MSGS     1024u
#define REFUSAL_LOGS_PER_SEC 20

/* ---- objects ------------------------------------------------------------ */

/* Something an NNG callback hands to the loop. */
typedef struct mesh_event {
    struct mesh_event *next;
    int queued; /* under mesh.lock */
    int is_call;
} mesh_event;

typedef enum slot_state {
    SLOT_RECEIVING,
    SLOT_QUEUED,   /* a request waits in the event queue */
    SLOT_HANDLING, /* the loop owns it until a reply is sent */
    SLOT_SENDING,
    SLOT_STOPPED,
} slot_state;

/* One server context: receives one request at a time and replies to it. */
typedef struct srv_slot {
    mesh_event ev; /* first member */
    struct mesh *m;
    nng_ctx ctx;
    nng_aio *aio;
    slot_state state;
    nng_msg *msg; /* received, while QUEUED */
    int rv;
} srv_slot;

struct peer;
struct mesh_callx;
typedef void (*call_done_fn)(struct mesh_callx *c, int status, const void *payload, size_t len);

typedef enum call_state { CALL_SENDING, CALL_RECEIVING, CALL_QUEUED } call_state;

/* One outgoing call (a req0 context), retried until answered or expired. */
typedef struct mesh_callx {
    mesh_event ev; /* first member */
    struct mesh *m;
    struct peer *peer;
    nng_ctx ctx;
    nng_aio *aio;
    call_state state;
    nng_msg *reply;
    int rv;
    nng_time attempt_deadline; /* nng_clock() ms */
    int64_t deadline_ms;       /* mesh_now_ms() */
    uint32_t attempt_ms;
    int64_t sent_ns; /* last attempt, for the RTT */
    uint64_t request_id;
    uint32_t method;
    uint8_t *payload;
    size_t len;
    call_done_fn done; /* internal completion, or NULL for a user call */
    mesh_call_cb cb;
    void *user;
    struct mesh_callx *prev, *next; /* mesh.calls */
} mesh_callx;

typedef struct agent_msg {
    struct agent_msg *next;
    uint64_t peer_id;
    uint64_t seq;
    char *from, *to;
    uint8_t *payload;
    size_t len;
} agent_msg;

typedef struct peer {
    uint64_t node_id; /* 0 for a seed not yet identified */
    char url[WIRE_URL_MAX + 1];
    nng_socket sock;
    int sock_open;
    /* Open connections; written by NNG pipe callbacks (atomics). On the
     * heap: a callback may still run after the peer is freed, until its
     * socket's close (on the closer's thread) returns; freed there. */
    int *pipes;
    uint64_t tx_counter;
    mesh_callx *hb_call, *join_call, *agent_call;
    /* idle: when this peer's own heartbeat call last reached us, and our
     * heartbeat rounds it let us skip since (see hb_needed) */
    int64_t hb_in_ms;
    unsigned hb_skipped;
    /* outgoing agent channel */
    agent_msg *q_head, *q_tail;
    size_t q_len;
    agent_msg *inflight; /* the batch being sent, in order */
    size_t inflight_n;
    uint64_t next_seq;
} peer;

/* What we remember about a sender (after its MAC was verified). */
typedef struct sender_state {
    uint64_t node_id;
    wire_replay direct, anon;
    uint64_t agent_incarnation;
    uint64_t agent_expected; /* next sequence to deliver; 0 = any */
} sender_state;

typedef struct dedup_entry {
    uint64_t sender, incarnation, request_id;
    int done;
    int status;
    uint8_t *reply;
    size_t reply_len;
    srv_slot *waiters[DEDUP_MAX_WAITERS];
    int n_waiters;
    struct mesh_request *req; /* while pending */
    struct dedup_entry *hnext;
    struct dedup_entry *fprev, *fnext; /* FIFO of answered entries */
} dedup_entry;

struct mesh_request {
    struct mesh *m;
    dedup_entry *e;
    Mabeam__Mesh__Request *r;
};

/* A hook call waiting for a safe point (see notices_flush). */
typedef enum notice_kind { NOTICE_STATUS, NOTICE_JOINED, NOTICE_LEADER } notice_kind;
typedef struct notice {
    notice_kind kind;
    uint64_t id;
    cluster_peer_status from, to;
    uint64_t term;
    char url[WIRE_URL_MAX + 1];
} notice;

typedef struct handler {
    uint32_t method;
    mesh_handler_fn fn;
    void *user;
} handler;

struct mesh {
    uv_loop_t *loop;
    /* Replaced and removed peers' sockets are closed off the loop thread
     * (cluster/closer.h: libnng 1.5.2's close can hang). NULL until open
     * and when its thread could not start: then they close here. */
    sock_closer *closer;
    /* NNG threads -> loop: an eventfd the loop polls, not a uv_async_t:
     * libuv 1.44's loop side spins while a sender is inside
     * uv_async_send, and on 2 busy cores the woken loop often preempts
     * that sender (idle: a fifth of the loop thread's CPU). */
    uv_poll_t wake;
    int wake_fd;             /* eventfd, -1 until opened */
    int wake_armed;          /* a write to wake_fd is not yet consumed (atomic) */
    uint64_t status_changes; /* detector transitions so far (mesh_status_changes) */
    uv_timer_t timer;
    int handles_open;
    int closing;
    void (*close_done)(void *);
    void *close_user;

    uint64_t node_id;
    uint64_t incarnation;
    char url[WIRE_URL_MAX + 1];
    uint8_t *secret;
    size_t secret_len;
    mesh_config cfg; /* copied; strings below */
    mesh_callbacks cb;
    char *tls_cert_key_file, *tls_ca_file, *tls_server_name;
    nng_tls_config *tls_server, *tls_client;

    nng_socket rep;
    int rep_open;
    srv_slot *slots;
    size_t n_slots;

    fd *fd;
    peer **peers;
    size_t n_peers, cap_peers;
    peer **seeds;
    size_t n_seeds;
    int joined;
    uint64_t *removed; /* ids removed with mesh_remove_peer */
    size_t n_removed;

    sender_state *senders;
    size_t n_senders, cap_senders;

    handler *handlers;
    size_t n_handlers;

    dedup_entry **dedup_buckets;
    size_t dedup_nbuckets;
    dedup_entry *fifo_head, *fifo_tail;
    size_t fifo_len;
    uint64_t next_request_id;

    mesh_callx *calls;

    uint64_t term, leader_id;
    char leader_url[WIRE_URL_MAX + 1];

    int64_t last_heartbeat_ms;

    /* refusal log rate limit */
    int64_t refusal_window_ms;
    int refusals_in_window;
    uint64_t refusals_suppressed;

    mesh_stats stats;

    notice *notices;
    size_t n_notices, cap_notices;

    /* shared with NNG threads and mesh_send_agent callers */
    pthread_mutex_t lock;
    mesh_event *q_head, *q_tail;
    agent_msg *outbox_head, *outbox_tail;
    size_t agent_pending; /* outbox + peer queues + in flight */
};

/* ---- small helpers -------------------------------------------------------- */

static int64_t mesh_now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* How long closing the mesh waits for its sockets' closes (closer.h). */
#define CLOSER_WAIT_MS 5000

static void mesh_log(mesh *m, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mesh_log(mesh *m, int level, const char *fmt, ...)
{
    if (m->cb.log == NULL || level < m->cfg.log_level)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    m->cb.log(m->cb.user, level, buf);
}

static int nng_to_mb(int rv)
{
    switch (rv) {
    case 0:
        return MB_OK;
    case NNG_ENOMEM:
        return MB_ENOMEM;
    case NNG_ETIMEDOUT:
        return MB_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return MB_ECLOSED;
    case NNG_EADDRINUSE:
        return MB_EBUSY;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
        return MB_EINVAL;
    case NNG_ENOTSUP:
        return MB_ENOTSUP;
    case NNG_EMSGSIZE:
        return MB_ETOOBIG;
    case NNG_EPEERAUTH:
    case NNG_ECRYPTO:
        return MB_EAUTH;
    default:
        return MB_EIO;
    }
}

/* A refusal of incoming traffic: counted, and logged at most
 * REFUSAL_LOGS_PER_SEC times a second so that a flood cannot flood the log. */
static void mesh_refuse(mesh *m, int replay, const char *what)
{
    if (replay)
        m->stats.refused_replay++;
    else
        m->stats.refused_auth++;
    int64_t now = mesh_now_ms();
    if (now - m->refusal_window_ms >= 1000) {
        if (m->refusals_suppressed > 0)
            mesh_log(m, MESH_LOG_WARN, "mesh: %" PRIu64 " more refusals not logged",
                     m->refusals_suppressed);
        m->refusal_window_ms = now;
        m->refusals_in_window = 0;
        m->refusals_suppressed = 0;
    }
    if (m->refusals_in_window++ < REFUSAL_LOGS_PER_SEC)
        mesh_log(m, MESH_LOG_WARN, "mesh: refused %s: %s",
                 replay ? "replayed or stale envelope" : "unauthenticated envelope", what);
    else
        m->refusals_suppressed++;
}

/* ---- hooks ------------------------------------------------------------------ */

/* Hooks are not called in the middle of mesh work (a hook may close the mesh
 * or remove a peer): they are queued here and run by notices_flush() from
 * the top of a loop callback. */
static void notice_push(mesh *m, const notice *n)
{
    if (m->n_notices == m->cap_notices) {
        size_t cap = m->cap_notices ? m->cap_notices * 2 : 8;
        notice *p = realloc(m->notices, cap * sizeof(*p));
        if (p == NULL) {
            mesh_log(m, MESH_LOG_ERROR, "mesh: out of memory: a notification is lost");
            return;
        }
        m->notices = p;
        m->cap_notices = cap;
    }
    m->notices[m->n_notices++] = *n;
}

static void notices_flush(mesh *m)
{
    for (size_t i = 0; !m->closing && i < m->n_notices; i++) {
        notice n = m->notices[i]; /* a hook may push more (and move the array) */
        switch (n.kind) {
        case NOTICE_STATUS:
            if (m->cb.peer_status)
                m->cb.peer_status(m->cb.user, n.id, n.from, n.to);
            break;
        case NOTICE_JOINED:
            if (m->cb.peer_joined)
                m->cb.peer_joined(m->cb.user, n.id, n.url);
            break;
        case NOTICE_LEADER:
            if (m->cb.leader_changed)
                m->cb.leader_changed(m->cb.user, n.term, n.id, n.url);
            break;
        }
    }
    m->n_notices = 0;
}

/* ---- event queue (NNG threads -> loop) ----------------------------------- */

/* Wake the loop (any thread): one eventfd write until the loop has run
 * wake_cb, which clears wake_armed before it looks at the queues. */
static void mesh_wake(mesh *m)
{
    if (__atomic_exchange_n(&m->wake_armed, 1, __ATOMIC_SEQ_CST) != 0)
        return;
    uint64_t one = 1;
    while (write(m->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    /* any other failure: EAGAIN means the counter is full and readable */
}

static void mesh_post(mesh *m, mesh_event *ev)
{
    pthread_mutex_lock(&m->lock);
    assert(!ev->queued);
    ev->queued = 1;
    ev->next = NULL;
    if (m->q_tail)
        m->q_tail->next = ev;
    else
        m->q_head = ev;
    m->q_tail = ev;
    pthread_mutex_unlock(&m->lock);
    mesh_wake(m);
}

/* Take `ev` out of the queue if it is there (after its aio was stopped). */
static void mesh_unpost(mesh *m, mesh_event *ev)
{
    pthread_mutex_lock(&m->lock);
    if (ev->queued) {
        mesh_event **pp = &m->q_head, *prev = NULL;
        while (*pp != ev) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = ev->next;
        if (m->q_tail == ev)
            m->q_tail = prev;
        ev->queued = 0;
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- sending ------------------------------------------------------------- */

/* Seal `body` for `receiver` into a new NNG message. */
static int mesh_seal_msg(mesh *m, uint64_t receiver, uint64_t counter, uint32_t kind,
                         const void *body, size_t body_len, nng_msg **out)
{
    wire_header h = { .version = WIRE_VERSION,
                      .sender_id = m->node_id,
                      .sender_incarnation = m->incarnation,
                      .receiver_id = receiver,
                      .counter = counter,
                      .timestamp_ms = wall_ms(),
                      .kind = kind };
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = wire_seal(m->secret, m->secret_len, &h, body, body_len, &buf, &len);
    if (rc != MB_OK)
        return rc;
    if (len > m->cfg.max_message_bytes) {
        free(buf);
        return MB_ETOOBIG;
    }
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, 0);
    if (rv == 0 && (rv = nng_msg_append(msg, buf, len)) != 0)
        nng_msg_free(msg);
    free(buf);
    if (rv != 0)
        return nng_to_mb(rv);
    m->stats.tx_msgs++;
    m->stats.tx_bytes += len + SP_FRAMING_BYTES;
    *out = msg;
    return MB_OK;
}

/* ---- server slots ---------------------------------------------------------- */

/* Any thread: let `s` receive the next request. */
static void slot_recv(srv_slot *s)
{
    s->state = SLOT_RECEIVING;
    nng_ctx_recv(s->ctx, s->aio);
}

/* Loop thread: the same, unless a hook closed the mesh meanwhile. */
static void slot_rearm(srv_slot *s)
{
    if (!s->m->closing)
        slot_recv(s);
}

static void slot_cb(void *arg)
{
    srv_slot *s = arg;
    int rv = nng_aio_result(s->aio);
    if (s->state == SLOT_SENDING) {
        if (rv != 0)
            nng_msg_free(nng_aio_get_msg(s->aio));
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            s->state = SLOT_STOPPED;
            return;
        }
        slot_recv(s);
        return;
    }
    assert(s->state == SLOT_RECEIVING);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        s->state = SLOT_STOPPED;
        return;
    }
    if (rv != 0) {
        slot_recv(s);
        return;
    }
    s->msg = nng_aio_get_msg(s->aio);
    s->state = SLOT_QUEUED;
    mesh_post(s->m, &s->ev);
}

/* Answer the request held by slot `s`, then let it receive again. */
static void slot_reply(srv_slot *s, uint64_t to, uint64_t to_incarnation, uint64_t request_id,
                       int status, const void *payload, size_t len)
{
    mesh *m = s->m;
    if (m->closing)
        return; /* a hook closed the mesh */
    assert(s->state == SLOT_HANDLING);
    Mabeam__Mesh__Reply r = MABEAM__MESH__REPLY__INIT;
    r.request_id = request_id;
    r.requester_incarnation = to_incarnation;
    r.status = status;
    r.payload.data = (uint8_t *)payload;
    r.payload.len = len;
    size_t n = mabeam__mesh__reply__get_packed_size(&r);
    uint8_t *body = malloc(n ? n : 1);
    nng_msg *msg = NULL;
    int rc = body ? MB_OK : MB_ENOMEM;
    if (rc == MB_OK) {
        mabeam__mesh__reply__pack(&r, body);
        rc = mesh_seal_msg(m, to, 0, WIRE_KIND_REPLY, body, n, &msg);
    }
    free(body);
    if (rc != MB_OK) {
        mesh_log(m, MESH_LOG_ERROR, "mesh: cannot build reply to node %" PRIu64 ": %s", to,
                 mb_strerror(rc));
        slot_rearm(s); /* the requester will retry */
        return;
    }
    s->state = SLOT_SENDING;
    nng_aio_set_msg(s->aio, msg);
    nng_ctx_send(s->ctx, s->aio);
}

/* ---- dedup cache ------------------------------------------------------------ */

static size_t dedup_hash(const mesh *m, uint64_t sender, uint64_t inc, uint64_t rid)
{
    uint64_t h = sender * 0x9E3779B97F4A7C15ull ^ inc * 0xC2B2AE3D27D4EB4Full ^ rid;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (size_t)(h & (m->dedup_nbuckets - 1));
}

static dedup_entry *dedup_find(mesh *m, uint64_t sender, uint64_t inc, uint64_t rid)
{
    for (dedup_entry *e = m->dedup_buckets[dedup_hash(m, sender, inc, rid)]; e; e = e->hnext)
        if (e->sender == sender && e->incarnation == inc && e->request_id == rid)
            return e;
    return NULL;
}

static void dedup_unlink(mesh *m, dedup_entry *e)
{
    dedup_entry **pp = &m->dedup_buckets[dedup_hash(m, e->sender, e->incarnation, e->request_id)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->done) {
        if (e->fprev)
            e->fprev->fnext = e->fnext;
        else
            m->fifo_head = e->fnext;
        if (e->fnext)
            e->fnext->fprev = e->fprev;
        else
            m->fifo_tail = e->fprev;
        m->fifo_len--;
    }
}

static void dedup_free(dedup_entry *e)
{
    free(e->reply);
    free(e);
}

/* ---- peers ------------------------------------------------------------------ */

static peer *peer_find(const mesh *m, uint64_t node_id)
{
    for (size_t i = 0; i < m->n_peers; i++)
        if (m->peers[i]->node_id == node_id)
            return m->peers[i];
    return NULL;
}

static sender_state *sender_get(mesh *m, uint64_t node_id)
{
    for (size_t i = 0; i < m->n_senders; i++)
        if (m->senders[i].node_id == node_id)
            return &m->senders[i];
    if (m->n_senders == m->cap_senders) {
        size_t cap = m->cap_senders ? m->cap_senders * 2 : 8;
        sender_state *p = realloc(m->senders, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        m->senders = p;
        m->cap_senders = cap;
    }
    sender_state *s = &m->senders[m->n_senders++];
    memset(s, 0, sizeof(*s));
    s->node_id = node_id;
    return s;
}

/* NNG thread, socket lock held: only count. */
static void peer_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    int *pipes = arg;
    (void)pipe;
    if (ev == NNG_PIPE_EV_ADD_POST)
        __atomic_add_fetch(pipes, 1, __ATOMIC_RELEASE);
    else if (ev == NNG_PIPE_EV_REM_POST)
        __atomic_sub_fetch(pipes, 1, __ATOMIC_RELEASE);
}

static int peer_open_socket(mesh *m, peer *p, mb_error *err)
{
    if (p->pipes == NULL && (p->pipes = calloc(1, sizeof(*p->pipes))) == NULL)
        return mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
    int rv = nng_req0_open(&p->sock);
    if (rv != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: open req socket for %s: %s", p->url,
                         nng_strerror(rv));
    p->sock_open = 1;
    /* Retries are ours (fresh envelope, same request id): NNG's resends would
     * repeat a counter the peer's replay window already holds. */
    nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, m->cfg.max_message_bytes + 64);
    nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_POST, peer_pipe_cb, p->pipes);
    nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, peer_pipe_cb, p->pipes);
    nng_dialer d;
    if ((rv = nng_dialer_create(&d, p->sock, p->url)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: dialer for %s: %s", p->url, nng_strerror(rv));
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 50);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 500);
    nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, m->cfg.max_message_bytes + 64);
    if (strncmp(p->url, "tls+tcp://", 10) == 0 && m->tls_client != NULL &&
        (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, m->tls_client)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: TLS config for %s: %s", p->url,
                         nng_strerror(rv));
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: dial %s: %s", p->url, nng_strerror(rv));
    return MB_OK;
}

static void call_cancel(mesh_callx *c);
static void call_move(mesh_callx *c, struct peer *np);
static void agent_flush(mesh *m, peer *p);

static void agent_msgs_free(mesh *m, agent_msg *a, int dropped)
{
    size_t n = 0;
    while (a) {
        agent_msg *next = a->next;
        free(a);
        a = next;
        n++;
    }
    if (n == 0)
        return;
    if (dropped)
        m->stats.agent_dropped += n;
    pthread_mutex_lock(&m->lock);
    assert(m->agent_pending >= n);
    m->agent_pending -= n;
    pthread_mutex_unlock(&m->lock);
}

/* Close a socket none of the mesh's aios or contexts use any more, then
 * free `after` (what its pipe callbacks use, or NULL). */
static void mesh_close_socket(mesh *m, nng_socket s, void *after)
{
    if (m->closer != NULL) {
        sock_closer_submit(m->closer, s, after);
        return;
    }
    if (m->cfg.close_socket != NULL)
        m->cfg.close_socket(s);
    else
        nng_close(s);
    free(after);
}

static void peer_free(mesh *m, peer *p)
{
    if (p == NULL)
        return;
    /* only the mesh's own calls are left here (heartbeat, join, agent
     * batch): user calls were cancelled or moved by the caller */
    for (mesh_callx *c = m->calls; c;) {
        if (c->peer == p) {
            assert(c->done != NULL);
            call_cancel(c);
            c = m->calls;
        } else {
            c = c->next;
        }
    }
    if (p->sock_open)
        mesh_close_socket(m, p->sock, p->pipes);
    else
        free(p->pipes);
    agent_msgs_free(m, p->inflight, 1);
    agent_msgs_free(m, p->q_head, 1);
    free(p);
}

static peer *peer_new(mesh *m, uint64_t node_id, const char *url, mb_error *err)
{
    peer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
        return NULL;
    }
    p->node_id = node_id;
    snprintf(p->url, sizeof(p->url), "%s", url);
    p->next_seq = 1;
    if (peer_open_socket(m, p, err) != MB_OK) {
        peer_free(m, p);
        return NULL;
    }
    return p;
}

static int is_removed(const mesh *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_removed; i++)
        if (m->removed[i] == id)
            return 1;
    return 0;
}

/* Add or update a peer; `announce` calls the peer_joined hook for a new one. */
static int mesh_add_peer_(mesh *m, uint64_t node_id, const char *url, int announce, mb_error *err)
{
    if (node_id == 0 || node_id == m->node_id || !wire_url_ok(url))
        return mb_errorf(err, MB_EINVAL, "mesh: bad peer %" PRIu64 " '%s'", node_id,
                         url ? url : "(null)");
    peer *p = peer_find(m, node_id);
    if (p != NULL) {
        if (strcmp(p->url, url) == 0)
            return MB_OK;
        mesh_log(m, MESH_LOG_INFO, "mesh: node %" PRIu64 " moved from %s to %s", node_id, p->url,
                 url);
        /* re-dial: replace the socket, keep the channel state */
        peer *np = peer_new(m, node_id, url, err);
        if (np == NULL)
            return err ? err->code : MB_EIO;
        if (p->hb_call)
            call_cancel(p->hb_call);
        if (p->agent_call)
            call_cancel(p->agent_call);
        np->q_head = p->q_head;
        np->q_tail = p->q_tail;
        np->q_len = p->q_len;
        np->next_seq = p->next_seq;
        np->tx_counter = p->tx_counter;
        /* the batch in flight goes back to the front of the queue */
        if (p->inflight) {
            agent_msg *last = p->inflight;
            while (last->next)
                last = last->next;
            last->next = np->q_head;
            np->q_head = p->inflight;
            if (np->q_tail == NULL)
                np->q_tail = last;
            np->q_len += p->inflight_n;
        }
        p->inflight = NULL;
        p->q_head = p->q_tail = NULL;
        /* user calls in progress continue on the new connection */
        for (mesh_callx *c = m->calls; c; c = c->next)
            if (c->peer == p && c->done == NULL)
                call_move(c, np);
        for (size_t i = 0; i < m->n_peers; i++)
            if (m->peers[i] == p)
                m->peers[i] = np;
        peer_free(m, p);
        if (np->q_head != NULL && np->agent_call == NULL)
            agent_flush(m, np);
        return MB_OK;
    }
    if (m->n_peers == m->cap_peers) {
        size_t cap = m->cap_peers ? m->cap_peers * 2 : 8;
        peer **pp = realloc(m->peers, cap * sizeof(*pp));
        if (pp == NULL)
            return mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
        m->peers = pp;
        m->cap_peers = cap;
    }
    p = peer_new(m, node_id, url, err);
    if (p == NULL)
        return err ? err->code : MB_EIO;
    int rc = fd_add(m->fd, node_id, mesh_now_ms());
    if (rc != MB_OK) {
        peer_free(m, p);
        return mb_errorf(err, rc, "mesh: failure detector add %" PRIu64, node_id);
    }
    m->peers[m->n_peers++] = p;
    for (size_t i = 0; i < m->n_removed; i++) {
        if (m->removed[i] == node_id) {
            m->removed[i] = m->removed[--m->n_removed];
            break;
        }
    }
    mesh_log(m, MESH_LOG_INFO, "mesh: peer %" PRIu64 " at %s", node_id, url);
    if (announce) {
        notice n = { .kind = NOTICE_JOINED, .id = node_id };
        snprintf(n.url, sizeof(n.url), "%s", url);
        notice_push(m, &n);
    }
    return MB_OK;
}

/* ---- outgoing calls ----------------------------------------------------------- */

static void call_cb(void *arg)
{
    mesh_callx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (c->state == CALL_SENDING) {
        if (rv == 0) {
            c->state = CALL_RECEIVING;
            nng_time now = nng_clock();
            nng_duration left =
                c->attempt_deadline > now ? (nng_duration)(c->attempt_deadline - now) : 1;
            nng_aio_set_timeout(c->aio, left);
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        nng_msg_free(nng_aio_get_msg(c->aio));
        nng_aio_set_msg(c->aio, NULL);
        c->reply = NULL;
    } else {
        c->reply = rv == 0 ? nng_aio_get_msg(c->aio) : NULL;
    }
    c->rv = rv;
    c->state = CALL_QUEUED;
    mesh_post(c->m, &c->ev);
}

/* Send one attempt of `c` with a fresh envelope. */
static int call_attempt(mesh_callx *c)
{
    mesh *m = c->m;
    peer *p = c->peer;
    Mabeam__Mesh__Request r = MABEAM__MESH__REQUEST__INIT;
    r.request_id = c->request_id;
    r.method = c->method;
    r.payload.data = c->payload;
    r.payload.len = c->len;
    size_t n = mabeam__mesh__request__get_packed_size(&r);
    uint8_t *body = malloc(n ? n : 1);
    if (body == NULL)
        return MB_ENOMEM;
    mabeam__mesh__request__pack(&r, body);
    nng_msg *msg;
    int rc = mesh_seal_msg(m, p->node_id, ++p->tx_counter, WIRE_KIND_REQUEST, body, n, &msg);
    free(body);
    if (rc != MB_OK)
        return rc;
    int64_t left = c->deadline_ms - mesh_now_ms();
    uint32_t attempt = c->attempt_ms;
    if (left < (int64_t)attempt)
        attempt = left > 0 ? (uint32_t)left : 1;
    c->attempt_deadline = nng_clock() + attempt;
    c->sent_ns = (int64_t)uv_hrtime();
    c->state = CALL_SENDING;
    nng_aio_set_timeout(c->aio, (nng_duration)attempt);
    nng_aio_set_msg(c->aio, msg);
    nng_ctx_send(c->ctx, c->aio);
    return MB_OK;
}

static void call_unlink(mesh_callx *c)
{
    mesh *m = c->m;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_free(mesh_callx *c)
{
    if (c->aio != NULL)
        nng_aio_free(c->aio);
    nng_ctx_close(c->ctx);
    free(c->payload);
    free(c);
}

/* Finish `c`: its aio is idle or stopped and it is not queued. */
static void call_complete(mesh_callx *c, int status, const void *payload, size_t len)
{
    if (status == MB_ETIMEDOUT)
        c->m->stats.calls_timed_out++;
    /* out of the list first: the callback may close the mesh */
    call_unlink(c);
    if (c->done)
        c->done(c, status, payload, len);
    else
        c->cb(c->user, status, payload, len);
    call_free(c);
}

static void call_cancel(mesh_callx *c)
{
    if (c->aio != NULL) /* NULL after a failed call_move */
        nng_aio_stop(c->aio);
    mesh_unpost(c->m, &c->ev);
    nng_msg *msg = c->aio != NULL ? nng_aio_get_msg(c->aio) : NULL;
    if (msg != NULL && c->state == CALL_SENDING)
        nng_msg_free(msg);
    if (c->reply)
        nng_msg_free(c->reply);
    c->reply = NULL;
    call_complete(c, MB_ECLOSED, NULL, 0);
}

/* Re-home `c` on peer `np` (same node, new connection) and send it again
 * with the same request id. Calls no user code: a failure is reported
 * through the event queue. */
static void call_move(mesh_callx *c, peer *np)
{
    mesh *m = c->m;
    nng_aio_stop(c->aio);
    mesh_unpost(m, &c->ev);
    if (c->state == CALL_SENDING) {
        nng_msg *msg = nng_aio_get_msg(c->aio);
        if (msg != NULL)
            nng_msg_free(msg);
    }
    if (c->reply)
        nng_msg_free(c->reply);
    c->reply = NULL;
    nng_aio_free(c->aio); /* a stopped aio cannot start new operations */
    c->aio = NULL;
    nng_ctx_close(c->ctx);
    c->peer = np;
    int rv = nng_ctx_open(&c->ctx, np->sock);
    if (rv == 0)
        rv = nng_aio_alloc(&c->aio, call_cb, c);
    if (rv == 0 && call_attempt(c) == MB_OK)
        return;
    c->rv = NNG_ECLOSED;
    c->state = CALL_QUEUED;
    mesh_post(m, &c->ev);
}

static int call_start(mesh *m, peer *p, uint32_t method, const void *payload, size_t len,
                      uint32_t timeout_ms, uint32_t attempt_ms, uint64_t request_id,
                      call_done_fn done, mesh_call_cb cb, void *user, mesh_callx **out)
{
    mesh_callx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return MB_ENOMEM;
    c->ev.is_call = 1;
    c->m = m;
    c->peer = p;
    c->method = method;
    c->request_id = request_id ? request_id : ++m->next_request_id;
    c->deadline_ms = mesh_now_ms() + timeout_ms;
    c->attempt_ms = attempt_ms ? attempt_ms : timeout_ms;
    c->done = done;
    c->cb = cb;
    c->user = user;
    if (len > 0) {
        c->payload = malloc(len);
        if (c->payload == NULL) {
            free(c);
            return MB_ENOMEM;
        }
        memcpy(c->payload, payload, len);
        c->len = len;
    }
    int rv = nng_ctx_open(&c->ctx, p->sock);
    if (rv != 0) {
        free(c->payload);
        free(c);
        return nng_to_mb(rv);
    }
    if ((rv = nng_aio_alloc(&c->aio, call_cb, c)) != 0) {
        nng_ctx_close(c->ctx);
        free(c->payload);
        free(c);
        return nng_to_mb(rv);
    }
    c->next = m->calls;
    if (m->calls)
        m->calls->prev = c;
    m->calls = c;
    int rc = call_attempt(c);
    if (rc != MB_OK) {
        call_unlink(c);
        call_free(c);
        return rc;
    }
    if (out)
        *out = c;
    return MB_OK;
}

/* The loop's handling of a finished attempt. */
static void call_event(mesh *m, mesh_callx *c)
{
    int rv = c->rv;
    if (rv == 0) {
        nng_msg *msg = c->reply;
        c->reply = NULL;
        size_t len = nng_msg_len(msg);
        m->stats.rx_msgs++;
        m->stats.rx_bytes += len + SP_FRAMING_BYTES;
        wire_header h;
        Mabeam__Mesh__Envelope *env = NULL;
        Mabeam__Mesh__Reply *r = NULL;
        mb_error e;
        mb_error_clear(&e);
        int rc = wire_open(m->secret, m->secret_len, nng_msg_body(msg), len, &h, &env, &e);
        if (rc == MB_OK && (h.kind != WIRE_KIND_REPLY || h.receiver_id != m->node_id ||
                            (c->peer->node_id != 0 && h.sender_id != c->peer->node_id)))
            rc = mb_errorf(&e, MB_EAUTH, "reply from node %" PRIu64 " not meant for this call",
                           h.sender_id);
        if (rc == MB_OK && wire_check_time(h.timestamp_ms, wall_ms(), m->cfg.max_clock_skew_ms))
            rc = mb_errorf(&e, MB_EAUTH, "reply timestamp outside the allowed clock skew");
        if (rc == MB_OK && (r = wire_decode_reply(env->body.data, env->body.len, &e)) == NULL)
            rc = MB_ECORRUPT;
        if (rc == MB_OK &&
            (r->request_id != c->request_id || r->requester_incarnation != m->incarnation))
            rc = mb_errorf(&e, MB_EAUTH, "reply to another request");
        nng_msg_free(msg);
        if (rc == MB_OK) {
            if (c->peer->node_id != 0) {
                double rtt = (double)((int64_t)uv_hrtime() - c->sent_ns) / 1e6;
                fd_heard(m->fd, c->peer->node_id, mesh_now_ms(), rtt);
            }
            call_complete(c, r->status, r->payload.data, r->payload.len);
            mabeam__mesh__reply__free_unpacked(r, NULL);
            wire_envelope_free(env);
            return;
        }
        mesh_refuse(m, 0, e.msg);
        if (r)
            mabeam__mesh__reply__free_unpacked(r, NULL);
        wire_envelope_free(env);
        rv = NNG_ETIMEDOUT; /* treat as a lost answer */
    }
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        call_complete(c, MB_ECLOSED, NULL, 0);
        return;
    }
    if (rv == NNG_EMSGSIZE) {
        call_complete(c, MB_ETOOBIG, NULL, 0);
        return;
    }
    if (mesh_now_ms() < c->deadline_ms) {
        int rc = call_attempt(c);
        if (rc == MB_OK)
            return;
        call_complete(c, rc, NULL, 0);
        return;
    }
    call_complete(c, MB_ETIMEDOUT, NULL, 0);
}

/* ---- leader gossip ------------------------------------------------------------ */

static void mesh_learn_leader(mesh *m, uint64_t term, uint64_t leader, const char *url)
{
    if (term < m->term || (term == m->term && (leader == m->leader_id || leader == 0)))
        return;
    m->term = term;
    m->leader_id = leader;
    m->leader_url[0] = '\0';
    if (leader == m->node_id) {
        snprintf(m->leader_url, sizeof(m->leader_url), "%s", m->url);
    } else if (leader != 0) {
        peer *p = peer_find(m, leader);
        snprintf(m->leader_url, sizeof(m->leader_url), "%s", p ? p->url : (url ? url : ""));
    }
    mesh_log(m, MESH_LOG_INFO, "mesh: leader of term %" PRIu64 " is node %" PRIu64 " (%s)", term,
             leader, m->leader_url);
    notice n = { .kind = NOTICE_LEADER, .id = leader, .term = term };
    snprintf(n.url, sizeof(n.url), "%s", m->leader_url);
    notice_push(m, &n);
}

/* ---- incoming requests --------------------------------------------------------- */

static uint8_t *pack_heartbeat(mesh *m, size_t *len)
{
    Mabeam__Mesh__Heartbeat hb = MABEAM__MESH__HEARTBEAT__INIT;
    hb.url = m->url;
    hb.term = m->term;
    hb.leader_id = m->leader_id;
    hb.leader_url = m->leader_url;
    size_t n = mabeam__mesh__heartbeat__get_packed_size(&hb);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf)
        *len = mabeam__mesh__heartbeat__pack(&hb, buf);
    return buf;
}

/* A verified heartbeat from `sender` (request or reply). */
static void heard_heartbeat(mesh *m, uint64_t sender, const Mabeam__Mesh__Heartbeat *hb)
{
    if (peer_find(m, sender) == NULL && !is_removed(m, sender))
        mesh_add_peer_(m, sender, hb->url, 1, NULL);
    mesh_learn_leader(m, hb->term, hb->leader_id, hb->leader_url);
}

static void handle_heartbeat(mesh *m, srv_slot *s, const wire_header *h,
                             const Mabeam__Mesh__Request *r)
{
    mb_error e;
    Mabeam__Mesh__Heartbeat *hb = wire_decode_heartbeat(r->payload.data, r->payload.len, &e);
    if (hb == NULL) {
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_ECORRUPT, NULL, 0);
        return;
    }
    heard_heartbeat(m, h->sender_id, hb);
    peer *from = peer_find(m, h->sender_id);
    if (from != NULL) {
        from->hb_in_ms = mesh_now_ms();
        fd_heard(m->fd, h->sender_id, from->hb_in_ms, -1);
    }
    mabeam__mesh__heartbeat__free_unpacked(hb, NULL);
    size_t len = 0;
    uint8_t *out = pack_heartbeat(m, &len);
    slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, out ? MB_OK : MB_ENOMEM, out,
               out ? len : 0);
    free(out);
}

static void handle_join(mesh *m, srv_slot *s, const wire_header *h, const Mabeam__Mesh__Request *r)
{
    mb_error e;
    Mabeam__Mesh__JoinRequest *j = wire_decode_join_request(r->payload.data, r->payload.len, &e);
    if (j == NULL) {
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_ECORRUPT, NULL, 0);
        return;
    }
    int rc = MB_OK;
    if (h->sender_id == m->node_id)
        rc = MB_EEXIST; /* another node uses our id */
    else
        rc = mesh_add_peer_(m, h->sender_id, j->url, 1, NULL);
    mabeam__mesh__join_request__free_unpacked(j, NULL);
    if (rc != MB_OK) {
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, rc, NULL, 0);
        return;
    }
    size_t n = 1 + m->n_peers;
    Mabeam__Mesh__Member *mem = calloc(n, sizeof(*mem));
    Mabeam__Mesh__Member **ptrs = calloc(n, sizeof(*ptrs));
    uint8_t *out = NULL;
    size_t len = 0;
    if (mem && ptrs) {
        for (size_t i = 0; i < n; i++) {
            mabeam__mesh__member__init(&mem[i]);
            ptrs[i] = &mem[i];
            mem[i].node_id = i == 0 ? m->node_id : m->peers[i - 1]->node_id;
            mem[i].url = i == 0 ? m->url : m->peers[i - 1]->url;
        }
        Mabeam__Mesh__JoinReply jr = MABEAM__MESH__JOIN_REPLY__INIT;
        jr.n_members = n > WIRE_MEMBERS_MAX ? WIRE_MEMBERS_MAX : n;
        jr.members = ptrs;
        jr.term = m->term;
        jr.leader_id = m->leader_id;
        len = mabeam__mesh__join_reply__get_packed_size(&jr);
        out = malloc(len ? len : 1);
        if (out)
            mabeam__mesh__join_reply__pack(&jr, out);
    }
    slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, out ? MB_OK : MB_ENOMEM, out,
               out ? len : 0);
    free(out);
    free(ptrs);
    free(mem);
}

static void handle_agent_batch(mesh *m, srv_slot *s, const wire_header *h,
                               const Mabeam__Mesh__Request *r, sender_state *ss)
{
    mb_error e;
    Mabeam__Mesh__AgentBatch *b = wire_decode_agent_batch(r->payload.data, r->payload.len, &e);
    if (b == NULL) {
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_ECORRUPT, NULL, 0);
        return;
    }
    if (h->sender_incarnation < ss->agent_incarnation) {
        mabeam__mesh__agent_batch__free_unpacked(b, NULL);
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_ESTATE, NULL, 0);
        return;
    }
    if (h->sender_incarnation > ss->agent_incarnation) {
        ss->agent_incarnation = h->sender_incarnation;
        ss->agent_expected = 0;
    }
    for (size_t i = 0; i < b->n_messages; i++) {
        uint64_t seq = b->first_seq + i;
        if (ss->agent_expected != 0 && seq < ss->agent_expected) {
            m->stats.agent_duplicates++;
            continue;
        }
        ss->agent_expected = seq + 1;
        m->stats.agent_delivered++;
        const Mabeam__Mesh__AgentMessage *am = b->messages[i];
        if (m->cb.agent_message)
            m->cb.agent_message(m->cb.user, h->sender_id, am->from_agent, am->to_agent,
                                am->payload.data, am->payload.len);
        if (m->closing) {
            mabeam__mesh__agent_batch__free_unpacked(b, NULL);
            return;
        }
    }
    Mabeam__Mesh__AgentAck ack = MABEAM__MESH__AGENT_ACK__INIT;
    ack.through_seq = ss->agent_expected - 1;
    uint8_t buf[16];
    size_t len = mabeam__mesh__agent_ack__pack(&ack, buf);
    mabeam__mesh__agent_batch__free_unpacked(b, NULL);
    slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_OK, buf, len);
}

static handler *handler_find(mesh *m, uint32_t method)
{
    for (size_t i = 0; i < m->n_handlers; i++)
        if (m->handlers[i].method == method)
            return &m->handlers[i];
    return NULL;
}

static void handle_user_request(mesh *m, srv_slot *s, const wire_header *h,
                                Mabeam__Mesh__Request *r)
{
    dedup_entry *e = dedup_find(m, h->sender_id, h->sender_incarnation, r->request_id);
    if (e != NULL) {
        m->stats.dedup_hits++;
        if (e->done) {
            slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, e->status, e->reply,
                       e->reply_len);
        } else {
            if (e->n_waiters == DEDUP_MAX_WAITERS) {
                /* the oldest copy is given up: its requester has retried */
                slot_rearm(e->waiters[0]);
                memmove(&e->waiters[0], &e->waiters[1],
                        (DEDUP_MAX_WAITERS - 1) * sizeof(e->waiters[0]));
                e->n_waiters--;
            }
            e->waiters[e->n_waiters++] = s;
        }
        mabeam__mesh__request__free_unpacked(r, NULL);
        return;
    }
    handler *hd = handler_find(m, r->method);
    if (hd == NULL) {
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_ENOTSUP, NULL, 0);
        mabeam__mesh__request__free_unpacked(r, NULL);
        return;
    }
    e = calloc(1, sizeof(*e));
    struct mesh_request *req = calloc(1, sizeof(*req));
    if (e == NULL || req == NULL) {
        free(e);
        free(req);
        slot_reply(s, h->sender_id, h->sender_incarnation, r->request_id, MB_ENOMEM, NULL, 0);
        mabeam__mesh__request__free_unpacked(r, NULL);
        return;
    }
    e->sender = h->sender_id;
    e->incarnation = h->sender_incarnation;
    e->request_id = r->request_id;
    e->waiters[e->n_waiters++] = s;
    e->req = req;
    size_t b = dedup_hash(m, e->sender, e->incarnation, e->request_id);
    e->hnext = m->dedup_buckets[b];
    m->dedup_buckets[b] = e;
    req->m = m;
    req->e = e;
    req->r = r;
    hd->fn(hd->user, m, req);
}

/* The loop's handling of one received request. */
static void slot_event(mesh *m, srv_slot *s)
{
    nng_msg *msg = s->msg;
    s->msg = NULL;
    s->state = SLOT_HANDLING;
    size_t len = nng_msg_len(msg);
    m->stats.rx_msgs++;
    m->stats.rx_bytes += len + SP_FRAMING_BYTES;
    wire_header h;
    Mabeam__Mesh__Envelope *env = NULL;
    Mabeam__Mesh__Request *r = NULL;
    mb_error e;
    mb_error_clear(&e);
    int rc = wire_open(m->secret, m->secret_len, nng_msg_body(msg), len, &h, &env, &e);
    nng_msg_free(msg);
    if (rc != MB_OK) {
        mesh_refuse(m, 0, e.msg);
        goto drop;
    }
    if (h.kind != WIRE_KIND_REQUEST || (h.receiver_id != 0 && h.receiver_id != m->node_id)) {
        mesh_refuse(m, 0, "envelope not addressed to this node");
        goto drop;
    }
    if (wire_check_time(h.timestamp_ms, wall_ms(), m->cfg.max_clock_skew_ms) != MB_OK) {
        snprintf(e.msg, sizeof(e.msg), "node %" PRIu64 ": timestamp %" PRIu64 " outside the skew",
                 h.sender_id, h.timestamp_ms);
        mesh_refuse(m, 1, e.msg);
        goto drop;
    }
    r = wire_decode_request(env->body.data, env->body.len, &e);
    if (r == NULL) {
        mesh_refuse(m, 0, e.msg);
        goto drop;
    }
    if (h.receiver_id == 0 && r->method != METHOD_JOIN) {
        mesh_refuse(m, 0, "anonymous envelope for a method other than join");
        goto drop;
    }
    sender_state *ss = sender_get(m, h.sender_id);
    if (ss == NULL)
        goto drop;
    if (wire_replay_accept(h.receiver_id ? &ss->direct : &ss->anon, h.sender_incarnation,
                           h.counter) != MB_OK) {
        wire_replay *w = h.receiver_id ? &ss->direct : &ss->anon;
        if (h.sender_incarnation < w->incarnation)
            snprintf(e.msg, sizeof(e.msg),
                     "node %" PRIu64 " incarnation %" PRIu64 " is older than %" PRIu64
                     " (a replay, or the node restarted with its clock behind)",
                     h.sender_id, h.sender_incarnation, w->incarnation);
        else
            snprintf(e.msg, sizeof(e.msg),
                     "node %" PRIu64 " incarnation %" PRIu64 " counter %" PRIu64 " already seen",
                     h.sender_id, h.sender_incarnation, h.counter);
        mesh_refuse(m, 1, e.msg);
        goto drop;
    }
    wire_envelope_free(env);
    env = NULL;
    switch (r->method) {
    case METHOD_HEARTBEAT:
        handle_heartbeat(m, s, &h, r);
        break;
    case METHOD_JOIN:
        handle_join(m, s, &h, r);
        break;
    case METHOD_AGENT:
        handle_agent_batch(m, s, &h, r, ss);
        break;
    default:
        if (r->method < MESH_METHOD_USER_MIN) {
            slot_reply(s, h.sender_id, h.sender_incarnation, r->request_id, MB_ENOTSUP, NULL, 0);
            break;
        }
        handle_user_request(m, s, &h, r); /* takes r */
        return;
    }
    mabeam__mesh__request__free_unpacked(r, NULL);
    return;
drop:
    if (r)
        mabeam__mesh__request__free_unpacked(r, NULL);
    wire_envelope_free(env);
    slot_rearm(s);
}

/* ---- the loop's wake-up --------------------------------------------------------- */

static void agent_flush(mesh *m, peer *p);

static void drain_outbox(mesh *m)
{
    pthread_mutex_lock(&m->lock);
    agent_msg *a = m->outbox_head;
    m->outbox_head = m->outbox_tail = NULL;
    pthread_mutex_unlock(&m->lock);
    while (a) {
        agent_msg *next = a->next;
        a->next = NULL;
        peer *p = peer_find(m, a->peer_id);
        if (p == NULL) {
            mesh_log(m, MESH_LOG_DEBUG, "mesh: agent message to unknown node %" PRIu64 " dropped",
                     a->peer_id);
            agent_msgs_free(m, a, 1);
        } else {
            a->seq = p->next_seq++;
            if (p->q_tail)
                p->q_tail->next = a;
            else
                p->q_head = a;
            p->q_tail = a;
            p->q_len++;
        }
        a = next;
    }
    for (size_t i = 0; i < m->n_peers; i++)
        if (m->peers[i]->q_head && m->peers[i]->agent_call == NULL)
            agent_flush(m, m->peers[i]);
}

static void wake_cb(uv_poll_t *h, int status, int events)
{
    mesh *m = h->data;
    (void)status;
    (void)events;
    uint64_t count;
    while (read(m->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    /* after the read: a post from now on writes again (and wakes us) */
    __atomic_store_n(&m->wake_armed, 0, __ATOMIC_SEQ_CST);
    /* the whole queue, one event at a time: a callback may close the mesh
     * or cancel a queued call; the cap only keeps a flood from starving the
     * loop (the rest is handled on the next wake-up) */
    size_t budget = 4 * (m->n_slots + 1024);
    while (!m->closing && budget > 0) {
        pthread_mutex_lock(&m->lock);
        mesh_event *ev = m->q_head;
        if (ev != NULL) {
            m->q_head = ev->next;
            if (m->q_head == NULL)
                m->q_tail = NULL;
            ev->queued = 0;
        }
        pthread_mutex_unlock(&m->lock);
        if (ev == NULL)
            break;
        budget--;
        if (ev->is_call)
            call_event(m, (mesh_callx *)ev);
        else
            slot_event(m, (srv_slot *)ev);
        notices_flush(m);
    }
    if (m->closing)
        return;
    if (budget == 0)
        mesh_wake(m);
    drain_outbox(m);
}

/* ---- agent channels -------------------------------------------------------------- */

static void agent_done(mesh_callx *c, int status, const void *payload, size_t len)
{
    mesh *m = c->m;
    peer *p = c->peer;
    p->agent_call = NULL;
    if (status == MB_ECLOSED)
        return; /* the peer or the mesh is going away; it frees the queues */
    mb_error e;
    Mabeam__Mesh__AgentAck *ack = NULL;
    if (status == MB_OK && (ack = wire_decode_agent_ack(payload, len, &e)) != NULL) {
        /* everything up to through_seq is handled */
        while (p->inflight && p->inflight->seq <= ack->through_seq) {
            agent_msg *a = p->inflight;
            p->inflight = a->next;
            p->inflight_n--;
            a->next = NULL;
            m->stats.agent_acked++;
            agent_msgs_free(m, a, 0);
        }
        mabeam__mesh__agent_ack__free_unpacked(ack, NULL);
    }
    fd_peer_view v;
    int down = fd_get(m->fd, p->node_id, &v) == MB_OK && v.status == CLUSTER_PEER_DOWN;
    if (p->inflight && (down || status == MB_ESTATE || status == MB_ECORRUPT)) {
        /* at most once: what the peer may not have seen is given up */
        mesh_log(m, MESH_LOG_WARN, "mesh: %zu agent messages to node %" PRIu64 " dropped (%s)",
                 p->inflight_n + (down ? p->q_len : 0), p->node_id,
                 down ? "peer down" : mb_strerror(status));
        agent_msgs_free(m, p->inflight, 1);
        p->inflight = NULL;
        p->inflight_n = 0;
        if (down) {
            agent_msgs_free(m, p->q_head, 1);
            p->q_head = p->q_tail = NULL;
            p->q_len = 0;
        }
    }
    if (!m->closing && (p->inflight || p->q_head))
        agent_flush(m, p);
}

/* Send the batch in flight again, or the next one from the queue. */
static void agent_flush(mesh *m, peer *p)
{
    assert(p->agent_call == NULL);
    if (p->inflight == NULL) {
        size_t bytes = 0;
        agent_msg **tail = &p->inflight;
        while (p->q_head && p->inflight_n < AGENT_BATCH_MSGS && bytes < AGENT_BATCH_BYTES) {
            agent_msg *a = p->q_head;
            p->q_head = a->next;
            if (p->q_head == NULL)
                p->q_tail = NULL;
            p->q_len--;
            a->next = NULL;
            *tail = a;
            tail = &a->next;
            p->inflight_n++;
            bytes += a->len + strlen(a->from) + strlen(a->to) + 8;
        }
    }
    if (p->inflight == NULL)
        return;
    Mabeam__Mesh__AgentMessage *msgs = calloc(p->inflight_n, sizeof(*msgs));
    Mabeam__Mesh__AgentMessage **ptrs = calloc(p->inflight_n, sizeof(*ptrs));
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = MB_ENOMEM;
    if (msgs && ptrs) {
        size_t i = 0;
        for (agent_msg *a = p->inflight; a; a = a->next, i++) {
            mabeam__mesh__agent_message__init(&msgs[i]);
            msgs[i].from_agent = a->from;
            msgs[i].to_agent = a->to;
            msgs[i].payload.data = a->payload;
            msgs[i].payload.len = a->len;
            ptrs[i] = &msgs[i];
        }
        Mabeam__Mesh__AgentBatch b = MABEAM__MESH__AGENT_BATCH__INIT;
        b.first_seq = p->inflight->seq;
        b.n_messages = p->inflight_n;
        b.messages = ptrs;
        len = mabeam__mesh__agent_batch__get_packed_size(&b);
        buf = malloc(len ? len : 1);
        if (buf) {
            mabeam__mesh__agent_batch__pack(&b, buf);
            m->stats.agent_batches_sent++;
            rc = call_start(m, p, METHOD_AGENT, buf, len, m->cfg.down_after_ms * 2,
                            m->cfg.rpc_attempt_ms, 0, agent_done, NULL, NULL, &p->agent_call);
        }
    }
    free(buf);
    free(ptrs);
    free(msgs);
    if (rc != MB_OK) {
        mesh_log(m, MESH_LOG_ERROR, "mesh: agent batch to node %" PRIu64 " not sent: %s",
                 p->node_id, mb_strerror(rc));
        agent_msgs_free(m, p->inflight, 1);
        p->inflight = NULL;
        p->inflight_n = 0;
    }
}

int mesh_send_agent(mesh *m, uint64_t peer_id, const char *from_agent, const char *to_agent,
                    const void *payload, size_t len, mb_error *err)
{
    if (from_agent == NULL || to_agent == NULL || to_agent[0] == '\0' ||
        strlen(from_agent) > WIRE_AGENT_ID_MAX || strlen(to_agent) > WIRE_AGENT_ID_MAX ||
        (payload == NULL && len > 0))
        return mb_errorf(err, MB_EINVAL, "mesh: bad agent message arguments");
    if (len > m->cfg.max_message_bytes / 2)
        return mb_errorf(err, MB_ETOOBIG, "mesh: agent message of %zu bytes too large", len);
    size_t lf = strlen(from_agent) + 1, lt = strlen(to_agent) + 1;
    agent_msg *a = malloc(sizeof(*a) + lf + lt + len);
    if (a == NULL)
        return mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
    a->next = NULL;
    a->peer_id = peer_id;
    a->seq = 0;
    a->from = (char *)(a + 1);
    a->to = a->from + lf;
    a->payload = (uint8_t *)a->to + lt;
    a->len = len;
    memcpy(a->from, from_agent, lf);
    memcpy(a->to, to_agent, lt);
    if (len)
        memcpy(a->payload, payload, len);
    pthread_mutex_lock(&m->lock);
    if (m->agent_pending >= m->cfg.agent_queue_max) {
        pthread_mutex_unlock(&m->lock);
        free(a);
        return mb_errorf(err, MB_EFULL, "mesh: %zu agent messages already queued",
                         (size_t)m->cfg.agent_queue_max);
    }
    m->agent_pending++;
    if (m->outbox_tail)
        m->outbox_tail->next = a;
    else
        m->outbox_head = a;
    m->outbox_tail = a;
    pthread_mutex_unlock(&m->lock);
    mesh_wake(m);
    return MB_OK;
}

/* ---- heartbeats and joining --------------------------------------------------------- */

static void hb_done(mesh_callx *c, int status, const void *payload, size_t len)
{
    mesh *m = c->m;
    c->peer->hb_call = NULL;
    if (status != MB_OK)
        return;
    mb_error e;
    Mabeam__Mesh__Heartbeat *hb = wire_decode_heartbeat(payload, len, &e);
    if (hb == NULL) {
        mesh_log(m, MESH_LOG_WARN, "mesh: node %" PRIu64 ": %s", c->peer->node_id, e.msg);
        return;
    }
    heard_heartbeat(m, c->peer->node_id, hb);
    mabeam__mesh__heartbeat__free_unpacked(hb, NULL);
}

static void join_done(mesh_callx *c, int status, const void *payload, size_t len)
{
    mesh *m = c->m;
    c->peer->join_call = NULL;
    if (status != MB_OK) {
        if (status != MB_ECLOSED && status != MB_ETIMEDOUT)
            mesh_log(m, MESH_LOG_WARN, "mesh: join through %s refused: %s", c->peer->url,
                     mb_strerror(status));
        return;
    }
    mb_error e;
    Mabeam__Mesh__JoinReply *jr = wire_decode_join_reply(payload, len, &e);
    if (jr == NULL) {
        mesh_log(m, MESH_LOG_WARN, "mesh: join through %s: %s", c->peer->url, e.msg);
        return;
    }
    for (size_t i = 0; i < jr->n_members; i++) {
        uint64_t id = jr->members[i]->node_id;
        if (id != m->node_id)
            mesh_add_peer_(m, id, jr->members[i]->url, 0, NULL);
    }
    mesh_log(m, MESH_LOG_INFO, "mesh: joined through %s (%zu members)", c->peer->url,
             jr->n_members);
    m->joined = 1;
    mesh_learn_leader(m, jr->term, jr->leader_id, NULL);
    mabeam__mesh__join_reply__free_unpacked(jr, NULL);
}

/* idle: one heartbeat call per pair of nodes and interval is enough, as
 * the request tells the callee and the reply tells the caller that the
 * other is alive (both carry a heartbeat). The node with the lower id
 * calls every interval; the higher one skips its call while that peer's
 * calls keep coming (within 1.5 intervals), but still makes every
 * HB_SKIP_MAX+1-th one (its RTT estimate and the other direction's
 * connection stay fresh). Detection is not slower: silence is measured
 * from the last sign of life either way, and a peer that stops calling is
 * called again from the next round on. */
#define HB_SKIP_MAX 9
static int hb_needed(mesh *m, peer *p, int64_t now)
{
    int64_t period = m->cfg.heartbeat_interval_ms;
    if (m->node_id < p->node_id || p->hb_in_ms == 0 || now - p->hb_in_ms > period + period / 2 ||
        p->hb_skipped >= HB_SKIP_MAX) {
        p->hb_skipped = 0;
        m->stats.hb_calls++;
        return 1;
    }
    p->hb_skipped++;
    m->stats.hb_skipped++;
    return 0;
}

static void timer_cb(uv_timer_t *t);
static void timer_tick(mesh *m);

/* The grid of the mesh's timer: it fires on multiples of this in loop time
 * (idle: other periodic timers of the node fire in the same wake-up of the
 * loop, see node_aligned_delay), which also bounds how late after its
 * deadline a DOWN is seen. */
static uint64_t tick_ms(const mesh *m)
{
    return m->cfg.heartbeat_interval_ms >= 40 ? m->cfg.heartbeat_interval_ms / 4 : 10;
}

/* Arm the timer for the first grid point at or after the next thing it has
 * to do: the next heartbeat round, or the failure detector's next possible
 * transition (fd_next_deadline), or, until joined, the next grid point (join
 * retries). Peers heard in time push the detector's deadline past the next
 * round, so an idle mesh wakes once per heartbeat interval, not four times. */
static void timer_arm(mesh *m)
{
    uint64_t grid = tick_ms(m), loop_now = uv_now(m->loop);
    uint64_t delay = 1;
    if (m->joined) {
        int64_t now = mesh_now_ms(), period = m->cfg.heartbeat_interval_ms;
        int64_t next = m->last_heartbeat_ms != 0 ? m->last_heartbeat_ms + period - period / 8 : now;
        int64_t deadline = fd_next_deadline(m->fd);
        if (deadline < next)
            next = deadline;
        if (next > now)
            delay = (uint64_t)(next - now);
    }
    uint64_t at = (loop_now + delay + grid - 1) / grid * grid;
    uv_timer_start(&m->timer, timer_cb, at > loop_now ? at - loop_now : grid, 0);
}

static void timer_cb(uv_timer_t *t)
{
    mesh *m = t->data;
    if (m->closing)
        return;
    /* re-armed on every way out, once this tick's heartbeats and
     * transitions are known */
    timer_tick(m);
    if (!m->closing)
        timer_arm(m);
}

static void timer_tick(mesh *m)
{
    m->stats.ticks++;
    int64_t now = mesh_now_ms();
    for (size_t i = 0; i < m->n_peers; i++)
        fd_set_connected(m->fd, m->peers[i]->node_id,
                         __atomic_load_n(m->peers[i]->pipes, __ATOMIC_ACQUIRE) > 0);
    fd_tick(m->fd, now);
    notices_flush(m);
    if (m->closing)
        return;
    int64_t period = m->cfg.heartbeat_interval_ms;
    if (m->last_heartbeat_ms != 0 && now - m->last_heartbeat_ms < period - period / 8)
        return;
    m->last_heartbeat_ms = now;
    size_t len = 0;
    uint8_t *hb = pack_heartbeat(m, &len);
    if (hb == NULL)
        return;
    for (size_t i = 0; i < m->n_peers; i++) {
        peer *p = m->peers[i];
        if (p->hb_call == NULL && hb_needed(m, p, now))
            call_start(m, p, METHOD_HEARTBEAT, hb, len, m->cfg.down_after_ms,
                       2 * m->cfg.heartbeat_interval_ms, 0, hb_done, NULL, NULL, &p->hb_call);
    }
    free(hb);
    if (m->joined) {
        /* the seed connections have served their purpose */
        for (size_t i = 0; i < m->n_seeds; i++)
            peer_free(m, m->seeds[i]);
        m->n_seeds = 0;
        return;
    }
    Mabeam__Mesh__JoinRequest jr = MABEAM__MESH__JOIN_REQUEST__INIT;
    jr.url = m->url;
    uint8_t buf[WIRE_URL_MAX + 16];
    size_t jl = mabeam__mesh__join_request__pack(&jr, buf);
    for (size_t i = 0; i < m->n_seeds; i++) {
        peer *p = m->seeds[i];
        if (p->join_call == NULL)
            call_start(m, p, METHOD_JOIN, buf, jl, 2000, 0, 0, join_done, NULL, NULL,
                       &p->join_call);
    }
    notices_flush(m);
}

/* ---- public API ---------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int mesh_setup_tls(mesh *m, mb_error *err)
{
    int rv;
    if (m->tls_cert_key_file == NULL)
        return mb_errorf(err, MB_EINVAL, "mesh: tls+tcp needs tls_cert_key_file");
    if ((rv = nng_tls_config_alloc(&m->tls_server, NNG_TLS_MODE_SERVER)) != 0 ||
        (rv = nng_tls_config_alloc(&m->tls_client, NNG_TLS_MODE_CLIENT)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: TLS config: %s", nng_strerror(rv));
    if ((rv = nng_tls_config_cert_key_file(m->tls_server, m->tls_cert_key_file, NULL)) != 0 ||
        (rv = nng_tls_config_cert_key_file(m->tls_client, m->tls_cert_key_file, NULL)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: TLS certificate/key %s: %s",
                         m->tls_cert_key_file, nng_strerror(rv));
    if (m->tls_ca_file != NULL) {
        if ((rv = nng_tls_config_ca_file(m->tls_server, m->tls_ca_file)) != 0 ||
            (rv = nng_tls_config_ca_file(m->tls_client, m->tls_ca_file)) != 0)
            return mb_errorf(err, nng_to_mb(rv), "mesh: TLS CA %s: %s", m->tls_ca_file,
                             nng_strerror(rv));
        nng_tls_config_auth_mode(m->tls_server, NNG_TLS_AUTH_MODE_REQUIRED);
        nng_tls_config_auth_mode(m->tls_client, NNG_TLS_AUTH_MODE_REQUIRED);
    } else {
        mesh_log(m, MESH_LOG_WARN,
                 "mesh: TLS without a CA file: traffic is encrypted but peers' certificates "
                 "are not verified (the cluster secret still authenticates every envelope)");
        nng_tls_config_auth_mode(m->tls_server, NNG_TLS_AUTH_MODE_NONE);
        nng_tls_config_auth_mode(m->tls_client, NNG_TLS_AUTH_MODE_NONE);
    }
    if (m->tls_server_name != NULL &&
        (rv = nng_tls_config_server_name(m->tls_client, m->tls_server_name)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: TLS server name: %s", nng_strerror(rv));
    return MB_OK;
}

static int mesh_listen(mesh *m, const char *listen_url, const char *advertise, mb_error *err)
{
    int rv = nng_rep0_open(&m->rep);
    if (rv != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: open rep socket: %s", nng_strerror(rv));
    m->rep_open = 1;
    nng_listener l;
    if ((rv = nng_listener_create(&l, m->rep, listen_url)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: listen on %s: %s", listen_url,
                         nng_strerror(rv));
    nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, m->cfg.max_message_bytes + 64);
    if (strncmp(listen_url, "tls+tcp://", 10) == 0 &&
        (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, m->tls_server)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: TLS on %s: %s", listen_url, nng_strerror(rv));
    if ((rv = nng_listener_start(l, 0)) != 0)
        return mb_errorf(err, nng_to_mb(rv), "mesh: listen on %s: %s", listen_url,
                         nng_strerror(rv));
    if (advertise != NULL) {
        snprintf(m->url, sizeof(m->url), "%s", advertise);
    } else {
        snprintf(m->url, sizeof(m->url), "%s", listen_url);
        const char *colon = strrchr(listen_url, ':');
        int port;
        if (colon && strcmp(colon, ":0") == 0 &&
            nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
            snprintf(m->url, sizeof(m->url), "%.*s:%d", (int)(colon - listen_url), listen_url,
                     port);
    }
    m->n_slots = m->cfg.server_contexts;
    m->slots = calloc(m->n_slots, sizeof(*m->slots));
    if (m->slots == NULL)
        return mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
    for (size_t i = 0; i < m->n_slots; i++) {
        srv_slot *s = &m->slots[i];
        s->m = m;
        s->state = SLOT_STOPPED;
        if ((rv = nng_ctx_open(&s->ctx, m->rep)) != 0 ||
            (rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
            m->n_slots = i + (s->aio != NULL);
            return mb_errorf(err, nng_to_mb(rv), "mesh: server context: %s", nng_strerror(rv));
        }
    }
    /* the contexts start receiving in mesh_open(), once the wake-up handle
     * their callbacks use exists */
    return MB_OK;
}

static void fd_changed_cb(void *user, uint64_t node_id, cluster_peer_status from,
                          cluster_peer_status to)
{
    mesh *m = user;
    m->status_changes++;
    mesh_log(m, to == CLUSTER_PEER_ALIVE ? MESH_LOG_INFO : MESH_LOG_WARN,
             "mesh: node %" PRIu64 " %s -> %s", node_id, cluster_peer_status_name(from),
             cluster_peer_status_name(to));
    notice_push(m, &(notice){ .kind = NOTICE_STATUS, .id = node_id, .from = from, .to = to });
}

static void mesh_free_all(mesh *m);

int mesh_open(uv_loop_t *loop, const mesh_config *cfg, mesh **out, mb_error *err)
{
    if (loop == NULL || cfg == NULL || out == NULL || cfg->node_id == 0 ||
        !wire_url_ok(cfg->listen_url) ||
        (cfg->advertise_url != NULL && !wire_url_ok(cfg->advertise_url)))
        return mb_errorf(err, MB_EINVAL,
                         "mesh: node id and a tcp://, tls+tcp:// or ipc:// "
                         "listen URL are required");
    if (cfg->secret == NULL || cfg->secret_len < 16)
        return mb_errorf(err, MB_EINVAL, "mesh: the cluster secret must be at least 16 bytes");
    mesh *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
    m->wake_fd = -1;
    int rc;
    m->loop = loop;
    m->cfg = *cfg;
    m->cb = cfg->cb;
    m->node_id = cfg->node_id;
    pthread_mutex_init(&m->lock, NULL);
    if (sock_closer_open(&m->closer, cfg->close_socket) != MB_OK) {
        m->closer = NULL; /* sockets then close on the loop thread */
        mesh_log(m, MESH_LOG_WARN, "mesh: no closer thread; sockets close on the loop thread");
    }
    mesh_config *c = &m->cfg;
    c->seeds = NULL;
    c->n_seeds = 0;
    if (!c->heartbeat_interval_ms)
        c->heartbeat_interval_ms = 200;
    if (!c->suspect_after_ms)
        c->suspect_after_ms = FD_DEFAULT_SUSPECT_AFTER_MS;
    if (!c->down_after_ms)
        c->down_after_ms = FD_DEFAULT_DOWN_AFTER_MS;
    if (!c->down_connected_after_ms)
        c->down_connected_after_ms = c->down_after_ms > 5000 ? c->down_after_ms : 5000;
    if (!c->rpc_attempt_ms)
        c->rpc_attempt_ms = 500;
    if (!c->max_clock_skew_ms)
        c->max_clock_skew_ms = 30000;
    if (!c->server_contexts)
        c->server_contexts = 256;
    if (!c->dedup_entries)
        c->dedup_entries = 4096;
    if (!c->max_message_bytes)
        c->max_message_bytes = 4u << 20;
    if (!c->agent_queue_max)
        c->agent_queue_max = 65536;
    /* distinct on every start: a restarted node's request ids and counters
     * never collide with its previous life's */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->incarnation = cfg->incarnation
                         ? cfg->incarnation
                         : (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    m->secret = malloc(cfg->secret_len);
    m->tls_cert_key_file = dup_or_null(cfg->tls_cert_key_file);
    m->tls_ca_file = dup_or_null(cfg->tls_ca_file);
    m->tls_server_name = dup_or_null(cfg->tls_server_name);
    m->dedup_nbuckets = 16;
    while (m->dedup_nbuckets < (size_t)c->dedup_entries * 2)
        m->dedup_nbuckets *= 2;
    m->dedup_buckets = calloc(m->dedup_nbuckets, sizeof(*m->dedup_buckets));
    if (m->secret == NULL || m->dedup_buckets == NULL ||
        (cfg->tls_cert_key_file && !m->tls_cert_key_file) ||
        (cfg->tls_ca_file && !m->tls_ca_file) || (cfg->tls_server_name && !m->tls_server_name)) {
        rc = mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
        goto fail;
    }
    memcpy(m->secret, cfg->secret, cfg->secret_len);
    m->secret_len = cfg->secret_len;
    c->secret = NULL;
    c->tls_cert_key_file = c->tls_ca_file = c->tls_server_name = NULL;
    c->listen_url = c->advertise_url = NULL;

    /* the detector ticks at least once per heartbeat interval (timer_arm,
     * rounded up to the grid): a gap of one and a half intervals between
     * ticks is a stall of this loop */
    fd_config fc = { c->suspect_after_ms, c->down_after_ms, c->down_connected_after_ms,
                     c->heartbeat_interval_ms > 40 ? c->heartbeat_interval_ms * 3 / 2 : 60 };
    if ((rc = fd_new(&fc, fd_changed_cb, m, &m->fd, err)) != MB_OK)
        goto fail;
    int uses_tls = strncmp(cfg->listen_url, "tls+tcp://", 10) == 0;
    for (size_t i = 0; i < cfg->n_seeds; i++)
        uses_tls |= cfg->seeds[i] && strncmp(cfg->seeds[i], "tls+tcp://", 10) == 0;
    if (uses_tls && (rc = mesh_setup_tls(m, err)) != MB_OK)
        goto fail;
    if ((rc = mesh_listen(m, cfg->listen_url, cfg->advertise_url, err)) != MB_OK)
        goto fail;
    if (cfg->n_seeds > 0) {
        m->seeds = calloc(cfg->n_seeds, sizeof(*m->seeds));
        if (m->seeds == NULL) {
            rc = mb_errorf(err, MB_ENOMEM, "mesh: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < cfg->n_seeds; i++) {
            if (!wire_url_ok(cfg->seeds[i])) {
                rc = mb_errorf(err, MB_EINVAL, "mesh: bad seed URL '%s'",
                               cfg->seeds[i] ? cfg->seeds[i] : "(null)");
                goto fail;
            }
            if (strcmp(cfg->seeds[i], m->url) == 0)
                continue; /* ourselves */
            peer *p = peer_new(m, 0, cfg->seeds[i], err);
            if (p == NULL) {
                rc = err ? err->code : MB_EIO;
                goto fail;
            }
            m->seeds[m->n_seeds++] = p;
        }
    }
    m->joined = m->n_seeds == 0;
    if ((m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = mb_errorf(err, MB_EIO, "mesh: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (uv_poll_init(loop, &m->wake, m->wake_fd) != 0 || uv_timer_init(loop, &m->timer) != 0) {
        rc = mb_errorf(err, MB_EIO, "mesh: libuv handles");
        goto fail; /* uv_timer_init cannot fail; uv_poll_init only on fd exhaustion */
    }
    m->wake.data = m;
    m->timer.data = m;
    m->handles_open = 2;
    uv_poll_start(&m->wake, UV_READABLE, wake_cb);
    for (size_t i = 0; i < m->n_slots; i++)
        slot_rearm(&m->slots[i]);
    uv_timer_start(&m->timer, timer_cb, 0, 0);
    mesh_log(m, MESH_LOG_INFO, "mesh: node %" PRIu64 " listening on %s", m->node_id, m->url);
    *out = m;
    return MB_OK;
fail:
    mesh_free_all(m);
    return rc;
}

static void close_cb(uv_handle_t *h)
{
    mesh *m = h->data;
    if (--m->handles_open > 0)
        return;
    void (*done)(void *) = m->close_done;
    void *user = m->close_user;
    close(m->wake_fd);
    pthread_mutex_destroy(&m->lock);
    free(m->slots);
    free(m);
    if (done)
        done(user);
}

/* Stop and free everything but the uv handles and `m` itself. */
static void mesh_free_all(mesh *m)
{
    m->closing = 1;
    for (size_t i = 0; i < m->n_slots; i++)
        if (m->slots[i].aio)
            nng_aio_stop(m->slots[i].aio);
    while (m->calls)
        call_cancel(m->calls);
    for (size_t i = 0; i < m->n_slots; i++) {
        srv_slot *s = &m->slots[i];
        mesh_unpost(m, &s->ev);
        if (s->msg)
            nng_msg_free(s->msg);
        s->msg = NULL;
        if (s->aio) {
            nng_aio_free(s->aio);
            nng_ctx_close(s->ctx);
            s->aio = NULL;
        }
    }
    assert(m->q_head == NULL);
    free(m->notices);
    m->notices = NULL;
    m->n_notices = m->cap_notices = 0;
    for (size_t i = 0; i < m->n_seeds; i++)
        peer_free(m, m->seeds[i]);
    free(m->seeds);
    for (size_t i = 0; i < m->n_peers; i++)
        peer_free(m, m->peers[i]);
    free(m->peers);
    if (m->rep_open)
        mesh_close_socket(m, m->rep, NULL);
    if (m->closer != NULL &&
        sock_closer_close(m->closer, CLOSER_WAIT_MS) != MB_OK) /* frees it, or leaves it */
        mesh_log(m, MESH_LOG_ERROR,
                 "mesh: a socket close did not finish in %d ms and is left behind (libnng 1.5.2 "
                 "can lose a pipe's receive when it closes during a message, nanomsg/nng#1636)",
                 CLOSER_WAIT_MS);
    m->closer = NULL;
    agent_msgs_free(m, m->outbox_head, 1);
    m->outbox_head = m->outbox_tail = NULL;
    for (size_t b = 0; m->dedup_buckets && b < m->dedup_nbuckets; b++) {
        dedup_entry *e = m->dedup_buckets[b];
        while (e) {
            dedup_entry *next = e->hnext;
            if (e->req) {
                mabeam__mesh__request__free_unpacked(e->req->r, NULL);
                free(e->req);
            }
            dedup_free(e);
            e = next;
        }
    }
    free(m->dedup_buckets);
    if (m->tls_server)
        nng_tls_config_free(m->tls_server);
    if (m->tls_client)
        nng_tls_config_free(m->tls_client);
    fd_free(m->fd);
    free(m->senders);
    free(m->handlers);
    free(m->removed);
    free(m->secret);
    free(m->tls_cert_key_file);
    free(m->tls_ca_file);
    free(m->tls_server_name);
    if (m->handles_open == 0) {
        if (m->wake_fd >= 0)
            close(m->wake_fd);
        pthread_mutex_destroy(&m->lock);
        free(m->slots);
        free(m);
    }
}

void mesh_close(mesh *m, void (*done)(void *user), void *user)
{
    if (m == NULL) {
        if (done)
            done(user);
        return;
    }
    assert(!m->closing);
    m->close_done = done;
    m->close_user = user;
    assert(m->handles_open == 2);
    mesh_free_all(m);
    uv_close((uv_handle_t *)&m->timer, close_cb);
    uv_close((uv_handle_t *)&m->wake, close_cb);
}

const char *mesh_url(const mesh *m)
{
    return m->url;
}

uint64_t mesh_node_id(const mesh *m)
{
    return m->node_id;
}

int mesh_add_peer(mesh *m, uint64_t node_id, const char *url, mb_error *err)
{
    if (m->closing)
        return mb_errorf(err, MB_ECLOSED, "mesh: closing");
    return mesh_add_peer_(m, node_id, url, 0, err);
}

int mesh_remove_peer(mesh *m, uint64_t node_id)
{
    for (size_t i = 0; i < m->n_peers; i++) {
        if (m->peers[i]->node_id != node_id)
            continue;
        peer *p = m->peers[i];
        m->peers[i] = m->peers[--m->n_peers];
        fd_remove(m->fd, node_id);
        uint64_t *r = realloc(m->removed, (m->n_removed + 1) * sizeof(*r));
        if (r != NULL) {
            m->removed = r;
            m->removed[m->n_removed++] = node_id;
        }
        /* user calls to this peer fail with MB_ECLOSED */
        for (mesh_callx *c = m->calls; c;) {
            if (c->peer == p && c->done == NULL) {
                call_cancel(c); /* its callback may change the list */
                if (m->closing)
                    return MB_OK;
                c = m->calls;
            } else {
                c = c->next;
            }
        }
        peer_free(m, p);
        return MB_OK;
    }
    return MB_ENOTFOUND;
}

uint64_t mesh_status_changes(const mesh *m)
{
    return m->status_changes;
}

int mesh_peer(const mesh *m, uint64_t node_id, fd_peer_view *out)
{
    return fd_get(m->fd, node_id, out);
}

int mesh_peer_connected(const mesh *m, uint64_t node_id)
{
    peer *p = peer_find(m, node_id);
    if (p == NULL)
        return -1;
    return __atomic_load_n(p->pipes, __ATOMIC_ACQUIRE) > 0;
}

size_t mesh_peer_count(const mesh *m)
{
    return m->n_peers;
}

void mesh_set_leader(mesh *m, uint64_t term, uint64_t leader_id)
{
    mesh_learn_leader(m, term, leader_id, NULL);
    notices_flush(m);
}

void mesh_leader(const mesh *m, uint64_t *term, uint64_t *leader_id, char *url_buf, size_t url_size)
{
    if (term)
        *term = m->term;
    if (leader_id)
        *leader_id = m->leader_id;
    if (url_buf && url_size)
        snprintf(url_buf, url_size, "%s", m->leader_url);
}

char *mesh_view_json(const mesh *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *peers = NULL;
    char *out = NULL;
    if (root == NULL)
        return NULL;
    if (!cJSON_AddNumberToObject(root, "node_id", (double)m->node_id) ||
        !cJSON_AddStringToObject(root, "url", m->url) ||
        !cJSON_AddNumberToObject(root, "term", (double)m->term) ||
        !cJSON_AddNumberToObject(root, "leader_id", (double)m->leader_id) ||
        !cJSON_AddStringToObject(root, "leader_url", m->leader_url) ||
        (peers = cJSON_AddArrayToObject(root, "peers")) == NULL)
        goto out;
    int64_t now = mesh_now_ms();
    for (size_t i = 0; i < fd_count(m->fd); i++) {
        fd_peer_view v;
        fd_at(m->fd, i, &v);
        peer *p = peer_find(m, v.node_id);
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(peers, o))
            goto out;
        if (!cJSON_AddNumberToObject(o, "node_id", (double)v.node_id) ||
            !cJSON_AddStringToObject(o, "url", p ? p->url : "") ||
            !cJSON_AddStringToObject(o, "status", cluster_peer_status_name(v.status)) ||
            !cJSON_AddBoolToObject(o, "connected", mesh_peer_connected(m, v.node_id) == 1) ||
            !cJSON_AddNumberToObject(o, "last_heard_ms_ago", (double)(now - v.last_heard_ms)) ||
            !(v.rtt_ms >= 0 ? cJSON_AddNumberToObject(o, "rtt_ms", v.rtt_ms)
                            : cJSON_AddNullToObject(o, "rtt_ms")))
            goto out;
    }
    out = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return out;
}

int mesh_register(mesh *m, uint32_t method, mesh_handler_fn fn, void *user)
{
    if (method < MESH_METHOD_USER_MIN || fn == NULL)
        return MB_EINVAL;
    if (handler_find(m, method))
        return MB_EEXIST;
    handler *h = realloc(m->handlers, (m->n_handlers + 1) * sizeof(*h));
    if (h == NULL)
        return MB_ENOMEM;
    m->handlers = h;
    m->handlers[m->n_handlers++] = (handler){ method, fn, user };
    return MB_OK;
}

uint64_t mesh_request_sender(const mesh_request *req)
{
    return req->e->sender;
}

uint64_t mesh_request_id(const mesh_request *req)
{
    return req->e->request_id;
}

uint32_t mesh_request_method(const mesh_request *req)
{
    return req->r->method;
}

const void *mesh_request_payload(const mesh_request *req, size_t *len)
{
    if (len)
        *len = req->r->payload.len;
    return req->r->payload.data;
}

void mesh_reply(mesh_request *req, int status, const void *payload, size_t len)
{
    mesh *m = req->m;
    dedup_entry *e = req->e;
    assert(!e->done && e->req == req);
    e->done = 1;
    e->status = status;
    e->req = NULL;
    if (len > 0) {
        e->reply = malloc(len);
        if (e->reply == NULL) {
            e->status = MB_ENOMEM;
        } else {
            memcpy(e->reply, payload, len);
            e->reply_len = len;
        }
    }
    for (int i = 0; i < e->n_waiters; i++)
        slot_reply(e->waiters[i], e->sender, e->incarnation, e->request_id, e->status, e->reply,
                   e->reply_len);
    e->n_waiters = 0;
    mabeam__mesh__request__free_unpacked(req->r, NULL);
    free(req);
    /* remember the answer; forget the oldest beyond the bound */
    e->fnext = NULL;
    e->fprev = m->fifo_tail;
    if (m->fifo_tail)
        m->fifo_tail->fnext = e;
    else
        m->fifo_head = e;
    m->fifo_tail = e;
    m->fifo_len++;
    while (m->fifo_len > m->cfg.dedup_entries) {
        dedup_entry *old = m->fifo_head;
        dedup_unlink(m, old);
        dedup_free(old);
    }
}

int mesh_call(mesh *m, const mesh_call_args *a, uint64_t *request_id, mb_error *err)
{
    if (m->closing)
        return mb_errorf(err, MB_ECLOSED, "mesh: closing");
    if (a == NULL || a->cb == NULL || a->method < MESH_METHOD_USER_MIN ||
        (a->payload == NULL && a->len > 0))
        return mb_errorf(err, MB_EINVAL, "mesh_call: a callback and a user method are required");
    if (a->len > m->cfg.max_message_bytes)
        return mb_errorf(err, MB_ETOOBIG, "mesh_call: payload of %zu bytes too large", a->len);
    peer *p = peer_find(m, a->peer_id);
    if (p == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "mesh_call: unknown node %" PRIu64, a->peer_id);
    mesh_callx *c;
    int rc = call_start(m, p, a->method, a->payload, a->len, a->timeout_ms ? a->timeout_ms : 5000,
                        m->cfg.rpc_attempt_ms, a->request_id, NULL, a->cb, a->user, &c);
    if (rc != MB_OK)
        return mb_errorf(err, rc, "mesh_call to node %" PRIu64 ": %s", a->peer_id, mb_strerror(rc));
    if (request_id)
        *request_id = c->request_id;
    return MB_OK;
}

void mesh_get_stats(const mesh *m, mesh_stats *out)
{
    *out = m->stats;
}
