/* The raft glue: libraft 0.15 with the libuv backend and TCP transport on
 * the caller's loop; proposals with results, barriers, membership, the
 * state monitor (0.15 has no leader callback), the "no quorum" deadline and
 * the close sequence of LIBS.md §1. Loop thread only. */
#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

#define PROPOSAL_MAX_BYTES (16u << 20)

typedef enum req_kind {
    REQ_APPLY = 1,
    REQ_BARRIER = 2,
} req_kind;

struct batch;

/* One proposal or barrier waiting for its result. A proposal is first
 * queued (framed buffer kept here), then submitted with the others of the
 * same loop iteration in one raft_apply (a batch); its result comes from
 * the FSM's per-entry hook when its index is applied. */
typedef struct pending {
    struct raft_barrier barrier;
    req_kind kind;
    consensus_raft *owner;
    consensus_done_cb cb; /* NULL once answered early (no quorum) */
    void *arg;
    uint64_t deadline_ms;
    struct pending *prev, *next; /* every waiting request (monitor sweep) */
    /* REQ_APPLY */
    struct raft_buffer buf;        /* while queued: the framed entry */
    uint64_t index;                /* once submitted: its raft index */
    struct batch *batch;           /* NULL once the batch's request ended */
    struct pending *qnext;         /* submission queue */
    struct pending *fprev, *fnext; /* submitted, waiting for the apply */
} pending;

/* One raft_apply of several entries: raft holds `req` until its callback,
 * which 0.15 fires once, after the batch's first entry is applied. */
typedef struct batch {
    struct raft_apply req;
    consensus_raft *owner;
} batch;

/* Most entries and bytes submitted in one raft_apply. */
#define BATCH_MAX_ENTRIES 256
#define BATCH_MAX_BYTES   (4u << 20)

typedef enum change_stage {
    CHANGE_IDLE = 0,
    CHANGE_ADD,    /* raft_add in flight */
    CHANGE_ASSIGN, /* raft_assign in flight */
    CHANGE_REMOVE, /* raft_remove in flight */
} change_stage;

struct consensus_raft {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    consensus_fsm *fsm;
    consensus_raft_config cfg; /* strings below are our copies */
    char *address;
    char *data_dir;
    consensus_peer *peers;
    uv_timer_t monitor;
    int raft_inited, started, closing, raft_close_called, closed;
    struct raft spent;     /* zeroed: where a repeated I/O close callback of raft lands */
    pending *pending_head; /* every waiting proposal and barrier */
    unsigned n_waiting;    /* entries in that list */
    unsigned n_pending;    /* request structs raft still holds (batches,
                              barriers, change, transfer) */
    pending *queue_head, *queue_tail; /* proposals not yet submitted */
    pending *fifo_head, *fifo_tail;   /* submitted, by raft index */
    uv_check_t flush_check;           /* submits the queue after each poll */
    uv_idle_t flush_idle;             /* active while the queue is non-empty:
                                         keeps the loop from blocking first */
    unsigned handles_open;

    struct raft_change change;
    change_stage change_stage;
    uint64_t change_id;
    int change_role;
    consensus_done_cb change_cb;
    void *change_arg;

    struct raft_transfer transfer;
    int transfer_busy;
    consensus_done_cb transfer_cb;
    void *transfer_arg;

    /* The TCP transport's own listen and connect, wrapped to turn Nagle off
     * (libraft 0.15 never sets TCP_NODELAY; see nodelay_stream). */
    int (*tcp_listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
    int (*tcp_connect)(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                       const char *address, raft_uv_connect_cb cb);
    raft_uv_accept_cb raft_accept_cb;

    /* raftperf2: raft's I/O start and tick callback (consensus_raft_send_commit) */
    int (*io_start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv);
    raft_io_tick_cb tick_cb;
    raft_io_recv_cb recv_cb;             /* raft's, wrapped by recv_capture */
    uint64_t clipped;                    /* AppendEntries clipped to the snapshot */
    void (*append_result_cb)(void *arg); /* consensus_raft_on_append_result */
    void *append_result_arg;
    struct told { /* per follower: commit index it could apply from our last round */
        uint64_t id, commit;
    } told[16];
    uint64_t told_term;

    consensus_status last_status;
    /* idle: raft's role, leader and term as last seen by status_poll */
    int seen_state;
    raft_id seen_leader;
    raft_term seen_term;
    unsigned monitor_ms;     /* the monitor's period now (see monitor_plan) */
    uint64_t last_expiry_ms; /* loop time of the last expiry sweep */
    uint64_t close_deadline_ms;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static int from_raft(int rv)
{
    switch (rv) {
    case 0:
        return MB_OK;
    case RAFT_NOMEM:
        return MB_ENOMEM;
    case RAFT_NOTLEADER:
        return MB_ENOTLEADER;
    case RAFT_LEADERSHIPLOST:
        return MB_EUNKNOWN;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return MB_ECLOSED;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY:
        return MB_EBUSY;
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE:
    case RAFT_INVALID:
    case RAFT_NAMETOOLONG:
        return MB_EINVAL;
    case RAFT_NOCONNECTION:
        return MB_EUNAVAIL;
    case RAFT_TOOBIG:
        return MB_ETOOBIG;
    case RAFT_CORRUPT:
    case RAFT_MALFORMED:
        return MB_ECORRUPT;
    case RAFT_IOERR:
        return MB_EIO;
    case RAFT_NOSPACE:
        return MB_ENOSPC;
    case RAFT_NOTFOUND:
        return MB_ENOTFOUND;
    default:
        return MB_EINTERNAL;
    }
}

static char *dup_str(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void free_peers(consensus_raft *r)
{
    for (size_t i = 0; r->peers != NULL && i < r->cfg.n_peers; i++)
        free((char *)r->peers[i].address);
    free(r->peers);
    r->peers = NULL;
}

static void result_error(consensus_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result_error(consensus_result *res, int code, const char *fmt, ...)
{
    if (res == NULL)
        return;
    va_list ap;
    memset(res, 0, sizeof(*res));
    res->code = code;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
    va_end(ap);
}

/* MB_ENOTLEADER with the leader we know of (if any). */
static int not_leader(consensus_raft *r, consensus_result *res)
{
    if (res != NULL) {
        raft_id id = 0;
        const char *addr = NULL;
        memset(res, 0, sizeof(*res));
        res->code = MB_ENOTLEADER;
        raft_leader(&r->raft, &id, &addr);
        res->leader_id = id;
        if (addr != NULL)
            snprintf(res->leader_addr, sizeof(res->leader_addr), "%s", addr);
        if (id != 0)
            snprintf(res->msg, sizeof(res->msg), "not the leader: node %llu at %s leads",
                     (unsigned long long)id, res->leader_addr);
        else
            snprintf(res->msg, sizeof(res->msg), "not the leader: no leader known yet");
    }
    return MB_ENOTLEADER;
}

static int refuse_if_unusable(consensus_raft *r, consensus_result *now)
{
    if (r->closing || !r->started) {
        result_error(now, MB_ECLOSED, "%s",
                     r->closing ? "raft glue is closing" : "raft not started");
        return MB_ECLOSED;
    }
    if (raft_state(&r->raft) != RAFT_LEADER)
        return not_leader(r, now);
    return MB_OK;
}

/* ---------------- close sequence ---------------- */

static void handle_closed_cb(uv_handle_t *h)
{
    consensus_raft *r = h->data;
    if (--r->handles_open > 0)
        return;
    r->closed = 1;
    if (r->close_cb != NULL)
        r->close_cb(r->close_arg);
}

static void raft_closed_cb(struct raft *raft)
{
    consensus_raft *r = raft->data;
    /* libraft 0.15 reports its I/O closed while a finalized segment's writer
     * may still be closing its handles; that writer's close callback then
     * checks again and calls raft's I/O close callback a second time. Point
     * the I/O at an empty raft so the repeat frees nothing and calls no one;
     * the I/O state itself is freed by consensus_raft_free, after the loop
     * has run out of handles. */
    r->io.data = &r->spent;
    uv_close((uv_handle_t *)&r->monitor, handle_closed_cb);
    uv_close((uv_handle_t *)&r->flush_check, handle_closed_cb);
    uv_close((uv_handle_t *)&r->flush_idle, handle_closed_cb);
}

void consensus_raft_free(consensus_raft *r)
{
    if (r == NULL)
        return;
    assert(r->closed);
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    /* The writers' AIO contexts this node handed off are destroyed before
     * it is gone, and the helper thread ends with it (a node still running
     * in this process starts a new one when it needs it). */
    consensus_aio_reap_drain();
    consensus_fsm_free(r->fsm);
    free(r->address);
    free(r->data_dir);
    free_peers(r);
    free(r);
}

static void entry_fail(consensus_raft *r, pending *p, int status);
static void pending_answer(consensus_raft *r, pending *p, const consensus_result *res);

/* Once nothing is in flight (or the deadline passed), close raft. Waiting
 * first avoids the double free of 0.15 on close with applies in flight.
 * Called only from the monitor timer, never from inside a raft callback
 * (raft_close while raft is applying entries is not safe). */
static void maybe_finish_close(consensus_raft *r)
{
    if (!r->closing || r->raft_close_called)
        return;
    if ((r->n_pending > 0 || r->queue_head != NULL || r->fifo_head != NULL) &&
        uv_now(r->loop) < r->close_deadline_ms)
        return;
    r->raft_close_called = 1;
    uv_timer_stop(&r->monitor);
    uv_check_stop(&r->flush_check);
    uv_idle_stop(&r->flush_idle);
    /* Never submitted, or submitted in a batch raft no longer reports on:
     * the outcome of the latter is unknown. */
    while (r->queue_head != NULL) {
        pending *p = r->queue_head;
        r->queue_head = p->qnext;
        raft_free(p->buf.base);
        consensus_result res;
        result_error(&res, MB_ECLOSED, "%s", "raft glue closed before the proposal was sent");
        pending_answer(r, p, &res);
    }
    r->queue_tail = NULL;
    for (pending *p = r->fifo_head, *next; p != NULL; p = next) {
        next = p->fnext;
        if (p->batch == NULL)
            entry_fail(r, p, RAFT_SHUTDOWN);
    }
    raft_close(&r->raft, raft_closed_cb);
}

/* ---------------- requests ---------------- */

static void pending_unlink(consensus_raft *r, pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        r->pending_head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    r->n_waiting--;
}

static void monitor_cb(uv_timer_t *t);

/* idle: the monitor sweeps every monitor_interval_ms while something waits
 * for raft, and only for the leader's proposal expiry (every
 * MONITOR_IDLE_MS) otherwise; status changes need no timer (status_poll). */
#define MONITOR_IDLE_MS 1000u
static void monitor_plan(consensus_raft *r)
{
    int busy = r->n_waiting > 0 || r->n_pending > 0 || r->queue_head != NULL ||
               r->fifo_head != NULL || r->closing;
    unsigned every = busy ? r->cfg.monitor_interval_ms : MONITOR_IDLE_MS;
    if (every != r->monitor_ms && !r->raft_close_called) {
        r->monitor_ms = every;
        uv_timer_start(&r->monitor, monitor_cb, every, every);
    }
}

static void pending_link(consensus_raft *r, pending *p)
{
    p->prev = NULL;
    p->next = r->pending_head;
    if (r->pending_head != NULL)
        r->pending_head->prev = p;
    r->pending_head = p;
    r->n_waiting++;
    monitor_plan(r);
}

static void fifo_remove(consensus_raft *r, pending *p)
{
    if (p->fprev != NULL)
        p->fprev->fnext = p->fnext;
    else
        r->fifo_head = p->fnext;
    if (p->fnext != NULL)
        p->fnext->fprev = p->fprev;
    else
        r->fifo_tail = p->fprev;
    p->fprev = p->fnext = NULL;
}

static void fifo_push(consensus_raft *r, pending *p)
{
    p->fnext = NULL;
    p->fprev = r->fifo_tail;
    if (r->fifo_tail != NULL)
        r->fifo_tail->fnext = p;
    else
        r->fifo_head = p;
    r->fifo_tail = p;
    monitor_plan(r);
}

/* The result for a raft status code (0 with `applied` = success). */
static void status_result(int status, const consensus_result *applied, consensus_result *res)
{
    memset(res, 0, sizeof(*res));
    if (status == 0 && applied != NULL) {
        *res = *applied;
    } else if (status == RAFT_LEADERSHIPLOST) {
        result_error(res, MB_EUNKNOWN, "%s",
                     "leadership lost before the entry committed: outcome unknown, retry with "
                     "the same id");
    } else if (status != 0) {
        result_error(res,
                     status == RAFT_SHUTDOWN || status == RAFT_CANCELED ? MB_EUNKNOWN
                                                                        : from_raft(status),
                     "raft: %s", raft_strerror(status));
    }
}

/* Answer (unless answered early) and free a request that left raft. */
static void pending_answer(consensus_raft *r, pending *p, const consensus_result *res)
{
    pending_unlink(r, p);
    if (p->cb != NULL)
        p->cb(p->arg, res);
    free(p);
}

/* A submitted entry whose outcome will not be reported by raft any more. */
static void entry_fail(consensus_raft *r, pending *p, int status)
{
    consensus_result res;
    status_result(status, NULL, &res);
    fifo_remove(r, p);
    pending_answer(r, p, &res);
}

/* FSM hook (raft-perf): entry `index` was applied with `res`. Entries of
 * one batch apply in order, so the waiting entry is at the FIFO head. */
static void entry_applied_cb(void *arg, uint64_t index, const consensus_result *res)
{
    consensus_raft *r = arg;
    while (r->fifo_head != NULL && r->fifo_head->index < index)
        entry_fail(r, r->fifo_head, RAFT_LEADERSHIPLOST); /* skipped: cannot happen */
    pending *p = r->fifo_head;
    if (p == NULL || p->index != index)
        return; /* not ours (a follower's, or an earlier term's) */
    fifo_remove(r, p);
    pending_answer(r, p, res);
}

static void batch_done_cb(struct raft_apply *req, int status, void *result)
{
    batch *b = req->data;
    consensus_raft *r = b->owner;
    (void)result; /* delivered per entry by entry_applied_cb */
    r->n_pending--;
    for (pending *p = r->fifo_head, *next; p != NULL; p = next) {
        next = p->fnext;
        if (p->batch != b)
            continue;
        if (status != 0)
            entry_fail(r, p, status);
        else
            p->batch = NULL; /* applied in the same raft pass, just after */
    }
    free(b);
}

static void barrier_done_cb(struct raft_barrier *req, int status)
{
    pending *p = req->data;
    consensus_raft *r = p->owner;
    consensus_result ok, res;
    memset(&ok, 0, sizeof(ok));
    ok.version = raft_last_applied(&r->raft);
    status_result(status, &ok, &res);
    r->n_pending--;
    pending_answer(r, p, &res);
}

static pending *pending_new(consensus_raft *r, req_kind kind, consensus_done_cb cb, void *arg)
{
    pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->kind = kind;
    p->owner = r;
    p->cb = cb;
    p->arg = arg;
    p->barrier.data = p;
    p->deadline_ms = uv_now(r->loop) + r->cfg.quorum_timeout_ms;
    return p;
}

/* Submit up to BATCH_MAX_ENTRIES queued proposals in one raft_apply. */
static void flush_one_batch(consensus_raft *r)
{
    struct raft_buffer bufs[BATCH_MAX_ENTRIES];
    pending *taken = r->queue_head;
    unsigned n = 0;
    size_t bytes = 0;
    pending *p = taken, *last = NULL;
    while (p != NULL && n < BATCH_MAX_ENTRIES &&
           (n == 0 || bytes + p->buf.len <= BATCH_MAX_BYTES)) {
        bufs[n++] = p->buf;
        bytes += p->buf.len;
        last = p;
        p = p->qnext;
    }
    r->queue_head = p;
    if (p == NULL)
        r->queue_tail = NULL;
    last->qnext = NULL;
    batch *b = calloc(1, sizeof(*b));
    raft_index last_before = raft_last_index(&r->raft);
    if (b != NULL) {
        b->req.data = b;
        b->owner = r;
    }
    int rv = b != NULL ? raft_apply(&r->raft, &b->req, bufs, n, batch_done_cb) : RAFT_NOMEM;
    if (rv != 0) {
        free(b);
        /* 0.15 appends the entries one by one and does not take back the
         * ones appended before a NOMEM: those stay in the log (raft owns
         * their buffers, and they may still commit: outcome unknown). */
        unsigned appended = 0;
        if (rv == RAFT_NOMEM && raft_last_index(&r->raft) > last_before)
            appended = (unsigned)(raft_last_index(&r->raft) - last_before);
        consensus_result res;
        if (rv == RAFT_NOTLEADER)
            not_leader(r, &res);
        else
            result_error(&res, from_raft(rv), "raft_apply: %s", raft_strerror(rv));
        unsigned i = 0;
        for (p = taken; p != NULL; i++) {
            pending *next = p->qnext;
            if (i < appended) {
                consensus_result unknown;
                result_error(&unknown, MB_EUNKNOWN, "%s",
                             "raft ran out of memory after appending this entry: it may still "
                             "commit, retry with the same id");
                pending_answer(r, p, &unknown);
                p = next;
                continue;
            }
            /* Before the entries are in the log raft does not own the
             * buffers; NOTLEADER and NOMEM come from there. Later errors
             * discard the appended entries and free them in raft. */
            if (rv == RAFT_NOTLEADER || rv == RAFT_NOMEM)
                raft_free(p->buf.base);
            pending_answer(r, p, &res);
            p = next;
        }
        return;
    }
    r->n_pending++;
    uint64_t index = b->req.index;
    for (p = taken; p != NULL; p = p->qnext) {
        p->buf.base = NULL;
        p->index = index++;
        p->batch = b;
        fifo_push(r, p);
    }
}

/* Submit every queued proposal (in batches). Loop thread; also fine from
 * inside raft callbacks (raft_apply appends and triggers replication). */
static void flush_queue(consensus_raft *r)
{
    while (r->queue_head != NULL)
        flush_one_batch(r);
    uv_idle_stop(&r->flush_idle);
}

static void status_poll(consensus_raft *r);

static void flush_check_cb(uv_check_t *h)
{
    flush_queue(h->data);
    status_poll(h->data);
}

static void flush_idle_cb(uv_idle_t *h)
{
    flush_queue(h->data);
}

int consensus_raft_propose(consensus_raft *r, const void *cmd, size_t len, consensus_done_cb cb,
                           void *arg, consensus_result *now)
{
    int rc = refuse_if_unusable(r, now);
    if (rc != MB_OK)
        return rc;
    if (len == 0 || len > PROPOSAL_MAX_BYTES) {
        result_error(now, len == 0 ? MB_EINVAL : MB_ETOOBIG, "%s",
                     len == 0 ? "empty proposal" : "proposal above 16 MiB");
        return len == 0 ? MB_EINVAL : MB_ETOOBIG;
    }
    pending *p = pending_new(r, REQ_APPLY, cb, arg);
    if (p == NULL ||
        consensus_entry_frame(cmd, len, raft_malloc, &p->buf.base, &p->buf.len) != MB_OK) {
        free(p);
        result_error(now, MB_ENOMEM, "%s", "propose: out of memory");
        return MB_ENOMEM;
    }
    /* Queued: every proposal of this loop iteration goes to raft in one
     * raft_apply from the check handle (one log append, one message per
     * follower for all of them). */
    p->qnext = NULL;
    if (r->queue_tail != NULL)
        r->queue_tail->qnext = p;
    else
        r->queue_head = p;
    r->queue_tail = p;
    pending_link(r, p);
    if (r->queue_head == p)
        uv_idle_start(&r->flush_idle, flush_idle_cb);
    return MB_OK;
}

int consensus_raft_barrier(consensus_raft *r, consensus_done_cb cb, void *arg,
                           consensus_result *now)
{
    int rc = refuse_if_unusable(r, now);
    if (rc != MB_OK)
        return rc;
    /* Proposals made before the barrier go into the log before it. */
    flush_queue(r);
    pending *p = pending_new(r, REQ_BARRIER, cb, arg);
    if (p == NULL) {
        result_error(now, MB_ENOMEM, "%s", "barrier: out of memory");
        return MB_ENOMEM;
    }
    int rv = raft_barrier(&r->raft, &p->barrier, barrier_done_cb);
    if (rv != 0) {
        free(p);
        if (rv == RAFT_NOTLEADER)
            return not_leader(r, now);
        result_error(now, from_raft(rv), "raft_barrier: %s", raft_strerror(rv));
        return from_raft(rv);
    }
    pending_link(r, p);
    r->n_pending++;
    return MB_OK;
}

const consensus_sm *consensus_raft_sm(const consensus_raft *r)
{
    return consensus_fsm_sm(r->fsm);
}

/* ---------------- membership ---------------- */

static unsigned count_voters(const struct raft *raft)
{
    unsigned n = 0;
    for (unsigned i = 0; i < raft->configuration.n; i++)
        n += raft->configuration.servers[i].role == RAFT_VOTER;
    return n;
}

static void change_finish(consensus_raft *r, int status)
{
    consensus_result res;
    memset(&res, 0, sizeof(res));
    if (status != 0)
        result_error(&res, from_raft(status), "membership change: %s", raft_strerror(status));
    else if (r->change_stage == CHANGE_ASSIGN)
        res.version = r->change_role == RAFT_VOTER ? 1 : 2;
    consensus_done_cb cb = r->change_cb;
    void *arg = r->change_arg;
    r->change_stage = CHANGE_IDLE;
    r->change_cb = NULL;
    r->n_pending--;
    if (cb != NULL)
        cb(arg, &res);
}

static void change_done_cb(struct raft_change *req, int status)
{
    consensus_raft *r = req->data;
    if (status == 0 && r->change_stage == CHANGE_ADD && !r->closing) {
        /* Voter while the group is small, else standby (log only). */
        r->change_role = count_voters(&r->raft) < r->cfg.max_voters ? RAFT_VOTER : RAFT_STANDBY;
        r->change_stage = CHANGE_ASSIGN;
        int rv = raft_assign(&r->raft, &r->change, r->change_id, r->change_role, change_done_cb);
        if (rv == 0)
            return;
        status = rv;
    }
    change_finish(r, status);
}

static int change_begin(consensus_raft *r, change_stage stage, uint64_t id, const char *address,
                        int role, consensus_done_cb cb, void *arg, consensus_result *now)
{
    int rc = refuse_if_unusable(r, now);
    if (rc != MB_OK)
        return rc;
    if (r->change_stage != CHANGE_IDLE) {
        result_error(now, MB_EBUSY, "%s", "another membership change is in progress");
        return MB_EBUSY;
    }
    if (id == 0) {
        result_error(now, MB_EINVAL, "%s", "node id 0 is not valid");
        return MB_EINVAL;
    }
    r->change.data = r;
    r->change_id = id;
    r->change_cb = cb;
    r->change_arg = arg;
    r->change_stage = stage;
    int rv;
    if (stage == CHANGE_ADD)
        rv = raft_add(&r->raft, &r->change, id, address, change_done_cb);
    else if (stage == CHANGE_ASSIGN)
        rv = raft_assign(&r->raft, &r->change, id, r->change_role = role, change_done_cb);
    else
        rv = raft_remove(&r->raft, &r->change, id, change_done_cb);
    if (rv != 0) {
        r->change_stage = CHANGE_IDLE;
        r->change_cb = NULL;
        if (rv == RAFT_NOTLEADER)
            return not_leader(r, now);
        result_error(now, from_raft(rv), "membership change: %s", raft_strerror(rv));
        return from_raft(rv);
    }
    r->n_pending++;
    return MB_OK;
}

int consensus_raft_add(consensus_raft *r, uint64_t id, const char *address, consensus_done_cb cb,
                       void *arg, consensus_result *now)
{
    if (address == NULL || strlen(address) > CONSENSUS_ADDR_MAX) {
        result_error(now, MB_EINVAL, "%s", "add: address missing or too long");
        return MB_EINVAL;
    }
    return change_begin(r, CHANGE_ADD, id, address, 0, cb, arg, now);
}

int consensus_raft_promote(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                           consensus_result *now)
{
    return change_begin(r, CHANGE_ASSIGN, id, NULL, RAFT_VOTER, cb, arg, now);
}

int consensus_raft_demote(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                          consensus_result *now)
{
    return change_begin(r, CHANGE_ASSIGN, id, NULL, RAFT_STANDBY, cb, arg, now);
}

int consensus_raft_remove(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                          consensus_result *now)
{
    return change_begin(r, CHANGE_REMOVE, id, NULL, 0, cb, arg, now);
}

static void transfer_done_cb(struct raft_transfer *req)
{
    consensus_raft *r = req->data;
    consensus_result res;
    raft_id id = 0;
    const char *addr = NULL;
    memset(&res, 0, sizeof(res));
    raft_leader(&r->raft, &id, &addr);
    res.leader_id = id;
    if (addr != NULL)
        snprintf(res.leader_addr, sizeof(res.leader_addr), "%s", addr);
    consensus_done_cb cb = r->transfer_cb;
    void *arg = r->transfer_arg;
    r->transfer_busy = 0;
    r->transfer_cb = NULL;
    r->n_pending--;
    if (cb != NULL)
        cb(arg, &res);
}

int consensus_raft_transfer(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                            consensus_result *now)
{
    int rc = refuse_if_unusable(r, now);
    if (rc != MB_OK)
        return rc;
    if (r->transfer_busy) {
        result_error(now, MB_EBUSY, "%s", "a leadership transfer is in progress");
        return MB_EBUSY;
    }
    r->transfer.data = r;
    r->transfer_cb = cb;
    r->transfer_arg = arg;
    int rv = raft_transfer(&r->raft, &r->transfer, id, transfer_done_cb);
    if (rv != 0) {
        r->transfer_cb = NULL;
        result_error(now, from_raft(rv), "transfer: %s", raft_strerror(rv));
        return from_raft(rv);
    }
    r->transfer_busy = 1;
    r->n_pending++;
    return MB_OK;
}

/* ---------------- transport: no Nagle ----------------
 *
 * libraft 0.15's TCP transport leaves Nagle's algorithm on. A follower's
 * 40-byte AppendEntries result written while its previous one is not yet
 * acknowledged then waits for the leader's delayed ACK (up to 40 ms on
 * Linux), and so does a small AppendEntries behind a large one: writes
 * under load had a p99 of about 45 ms whatever the batch. Every stream the
 * transport hands to raft gets TCP_NODELAY first. */

static void nodelay_stream(struct uv_stream_s *stream)
{
    if (stream != NULL && stream->type == UV_TCP)
        (void)uv_tcp_nodelay((uv_tcp_t *)stream, 1); /* only a latency hint */
}

static consensus_raft *of_transport(struct raft_uv_transport *t)
{
    return (consensus_raft *)((char *)t - offsetof(consensus_raft, transport));
}

static consensus_raft *of_io(struct raft_io *io)
{
    return (consensus_raft *)((char *)io - offsetof(consensus_raft, io));
}

static void nodelay_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                              struct uv_stream_s *stream)
{
    nodelay_stream(stream);
    of_transport(t)->raft_accept_cb(t, id, address, stream);
}

static int nodelay_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    consensus_raft *r = of_transport(t);
    r->raft_accept_cb = cb;
    return r->tcp_listen(t, nodelay_accept_cb);
}

/* One connect attempt: raft's request, answered once ours completes. */
typedef struct nd_connect {
    struct raft_uv_connect inner;
    struct raft_uv_connect *outer;
    raft_uv_connect_cb outer_cb;
} nd_connect;

static void nodelay_connect_cb(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    nd_connect *c = req->data;
    struct raft_uv_connect *outer = c->outer;
    raft_uv_connect_cb cb = c->outer_cb;
    free(c);
    if (status == 0)
        nodelay_stream(stream);
    outer->cb = cb;
    cb(outer, stream, status);
}

static int nodelay_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                           const char *address, raft_uv_connect_cb cb)
{
    nd_connect *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return RAFT_NOMEM;
    c->inner.data = c;
    c->outer = req;
    c->outer_cb = cb;
    int rv = of_transport(t)->tcp_connect(t, &c->inner, id, address, nodelay_connect_cb);
    if (rv != 0)
        free(c);
    return rv;
}

/* ---------------- status monitor ---------------- */

/* Free what entries[0..n) of a received message hold: their batches (the
 * entries of a batch are adjacent), except `spare`, still held elsewhere,
 * or, without a batch, their buffers. */
static void free_received_entries(const struct raft_entry *entries, size_t n, const void *spare)
{
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->batch == NULL)
            raft_free(e->buf.base);
        else if ((i == 0 || e->batch != entries[i - 1].batch) && e->batch != spare)
            raft_free(e->batch);
    }
}

int consensus_raft_clip_compacted(const struct raft_log *log, struct raft_append_entries *a)
{
    raft_index s = log->snapshot.last_index;
    if (a->prev_log_index != 0 || a->n_entries == 0 || log->offset == 0 || s == 0)
        return 0;
    /* The snapshot's entry is committed, so any current leader has it with
     * the same term; a message saying otherwise is left to raft. */
    if (a->n_entries >= s && a->entries[s - 1].term != log->snapshot.last_term)
        return 0;
    size_t n = a->n_entries;
    size_t keep = n > s ? n - (size_t)s : 0;
    struct raft_entry *kept = NULL;
    if (keep > 0) {
        kept = raft_malloc(keep * sizeof(*kept));
        if (kept == NULL)
            return -1;
        memcpy(kept, a->entries + s, keep * sizeof(*kept));
    }
    /* A batch shared with the kept entries is the first kept one's. */
    free_received_entries(a->entries, n - keep, keep > 0 ? kept[0].batch : NULL);
    raft_free(a->entries);
    a->entries = kept;
    a->n_entries = (unsigned)keep;
    a->prev_log_index = s;
    a->prev_log_term = log->snapshot.last_term;
    /* Nothing past the snapshot: the message vouches for no entry of ours
     * after it, so it commits none (raft would take its commit index up to
     * the last entry it stored). */
    if (keep == 0 && a->leader_commit > s)
        a->leader_commit = s;
    return 1;
}

/* Every message raft receives; AppendEntries from index 1 clipped to this
 * node's snapshot (consensus_raft_clip_compacted); after an AppendEntries
 * result, the hook of consensus_raft_on_append_result. */
static void recv_capture(struct raft_io *io, struct raft_message *m)
{
    consensus_raft *r = of_io(io);
    int result = m->type == RAFT_IO_APPEND_ENTRIES_RESULT;
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        int rc = consensus_raft_clip_compacted(&r->raft.log, &m->append_entries);
        if (rc < 0) {
            /* Out of memory: lose the message; the leader sends again. */
            free_received_entries(m->append_entries.entries, m->append_entries.n_entries, NULL);
            raft_free(m->append_entries.entries);
            return;
        }
        r->clipped += rc == 1;
    }
    r->recv_cb(io, m);
    if (result && r->append_result_cb != NULL && !r->closing)
        r->append_result_cb(r->append_result_arg);
}

/* raftperf2: raft's I/O start, intercepted to learn raft's tick callback
 * (and to see its incoming messages). */
static int io_start_capture(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                            raft_io_recv_cb recv)
{
    consensus_raft *r = of_io(io);
    r->tick_cb = tick;
    r->recv_cb = recv;
    return r->io_start(io, msecs, tick, recv_capture);
}

void consensus_raft_on_append_result(consensus_raft *r, void (*cb)(void *arg), void *arg)
{
    r->append_result_cb = cb;
    r->append_result_arg = arg;
}

static struct told *told_of(consensus_raft *r, uint64_t id)
{
    struct told *free_slot = NULL;
    for (size_t i = 0; i < sizeof(r->told) / sizeof(r->told[0]); i++) {
        if (r->told[i].id == id)
            return &r->told[i];
        if (r->told[i].id == 0 && free_slot == NULL)
            free_slot = &r->told[i];
    }
    if (free_slot != NULL)
        *free_slot = (struct told){ .id = id, .commit = 0 };
    return free_slot; /* NULL: more followers than slots, always told */
}

int consensus_raft_send_commit(consensus_raft *r, int *sent, int *lagging)
{
    struct raft *raft = &r->raft;
    *sent = 0;
    *lagging = 0;
    if (!r->started || r->raft_close_called || r->tick_cb == NULL ||
        raft_state(raft) != RAFT_LEADER)
        return MB_ENOTLEADER;
    if (r->told_term != raft->current_term) {
        memset(r->told, 0, sizeof(r->told));
        r->told_term = raft->current_term;
    }
    /* A follower can apply min(commit, what it stored): worth a round when
     * that is more than our last round told it. */
    raft_index commit = raft->commit_index;
    int need = 0;
    for (unsigned i = 0; i < raft->configuration.n; i++) {
        const struct raft_server *sv = &raft->configuration.servers[i];
        if (sv->id == raft->id)
            continue;
        raft_index match = raft->leader_state.progress[i].match_index;
        raft_index can = match < commit ? match : commit;
        struct told *t = told_of(r, sv->id);
        if (t == NULL || can > t->commit)
            need = 1;
        if (match < commit)
            *lagging = 1;
    }
    if (!need)
        return MB_OK;
    /* One tick with a zero heartbeat interval: raft 0.15 sends every
     * follower an AppendEntries now (empty when it is up to date) with the
     * commit index; everything else a tick does is time-based. */
    unsigned hb = raft->heartbeat_timeout;
    raft_set_heartbeat_timeout(raft, 0);
    r->tick_cb(&r->io);
    raft_set_heartbeat_timeout(raft, hb);
    if (raft_state(raft) != RAFT_LEADER)
        return MB_ENOTLEADER;
    *sent = 1;
    for (unsigned i = 0; i < raft->configuration.n; i++) {
        const struct raft_server *sv = &raft->configuration.servers[i];
        if (sv->id == raft->id)
            continue;
        raft_index match = raft->leader_state.progress[i].match_index;
        struct told *t = told_of(r, sv->id);
        if (t != NULL)
            t->commit = match < commit ? match : commit;
    }
    return MB_OK;
}

void consensus_raft_status(const consensus_raft *r, consensus_status *out)
{
    struct raft *raft = (struct raft *)&r->raft;
    raft_id id = 0;
    const char *addr = NULL;
    memset(out, 0, sizeof(*out));
    if (!r->started || r->raft_close_called) {
        out->role = CONSENSUS_UNAVAILABLE;
        return;
    }
    switch (raft_state(raft)) {
    case RAFT_FOLLOWER:
        out->role = CONSENSUS_FOLLOWER;
        break;
    case RAFT_CANDIDATE:
        out->role = CONSENSUS_CANDIDATE;
        break;
    case RAFT_LEADER:
        out->role = CONSENSUS_LEADER;
        break;
    default:
        out->role = CONSENSUS_UNAVAILABLE;
        break;
    }
    raft_leader(raft, &id, &addr);
    out->leader_id = id;
    if (addr != NULL)
        snprintf(out->leader_addr, sizeof(out->leader_addr), "%s", addr);
    out->term = raft->current_term;
    out->commit_index = raft->commit_index;
    out->applied_index = raft_last_applied(raft);
    out->voters = count_voters(raft);
    out->pending = r->n_waiting;
    out->last_index = raft_last_index(raft); /* wiring (repl_commit_nudge) */
    out->snapshot_index = raft->log.snapshot.last_index;
    out->snapshots_deferred = consensus_fsm_snapshots_deferred(r->fsm);
    out->appends_clipped = r->clipped;
    consensus_aio_reap_counts ac;
    consensus_aio_reap_stats(&ac);
    out->aio_destroys_deferred = ac.deferred;
    out->aio_destroys_synchronous = ac.synchronous;
}

static void expiry_done_cb(void *arg, const consensus_result *res)
{
    (void)arg;
    (void)res; /* a proposal decided meanwhile gives ENOTFOUND: fine */
}

/* Propose closing every open proposal past its deadline (at most once a
 * second; a duplicate close is refused harmlessly by the state machine). */
static void expire_proposals(consensus_raft *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    const consensus_sm *sm = consensus_fsm_sm(r->fsm);
    for (size_t i = 0; i < consensus_sm_proposal_count(sm); i++) {
        const consensus_proposal *p = consensus_sm_proposal_at(sm, i);
        if (p->deadline_ms <= 0 || p->deadline_ms > wall_ms)
            continue;
        consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_CLOSE,
                            .proposal_id = p->id,
                            .outcome = CONSENSUS_PROPOSAL_EXPIRED,
                            .by = "leader" };
        void *buf;
        size_t len;
        if (consensus_cmd_encode(&c, NULL, &buf, &len, NULL) != MB_OK)
            return;
        consensus_raft_propose(r, buf, len, expiry_done_cb, NULL, NULL);
        free(buf);
    }
}

static void monitor_cb(uv_timer_t *t)
{
    consensus_raft *r = t->data;
    uint64_t now = uv_now(r->loop);
    /* Proposals that did not commit in time: answer now, let raft keep
     * the request until it fires (then it is dropped silently). */
    for (pending *p = r->pending_head; p != NULL; p = p->next) {
        if (p->cb == NULL || now < p->deadline_ms)
            continue;
        consensus_result res;
        memset(&res, 0, sizeof(res));
        res.code = MB_ENOQUORUM;
        snprintf(res.msg, sizeof(res.msg),
                 "no quorum: %s not committed within %u ms; it may still commit, retry with the "
                 "same id",
                 p->kind == REQ_APPLY ? "proposal" : "barrier", r->cfg.quorum_timeout_ms);
        consensus_done_cb cb = p->cb;
        p->cb = NULL;
        cb(p->arg, &res);
    }
    /* Entries of a finished batch not applied by now, after a step down:
     * raft will not report on them. */
    if (r->fifo_head != NULL && raft_state(&r->raft) != RAFT_LEADER) {
        for (pending *p = r->fifo_head, *next; p != NULL; p = next) {
            next = p->fnext;
            if (p->batch == NULL)
                entry_fail(r, p, RAFT_LEADERSHIPLOST);
        }
    }
    if (r->closing) {
        maybe_finish_close(r);
        return;
    }
    if (!r->cfg.disable_proposal_expiry && now >= r->last_expiry_ms + 1000 &&
        raft_state(&r->raft) == RAFT_LEADER) {
        r->last_expiry_ms = now;
        expire_proposals(r);
    }
    status_poll(r);
    monitor_plan(r);
}

/* idle: role, leader and term change only inside raft's callbacks, so
 * comparing them after every loop iteration (flush_check) sees each change
 * at once without a timer; the full status only when one changed. */
static void status_poll(consensus_raft *r)
{
    if (r->started && !r->raft_close_called) {
        raft_id id = 0;
        const char *addr = NULL;
        raft_leader(&r->raft, &id, &addr);
        int state = raft_state(&r->raft);
        if (state == r->seen_state && id == r->seen_leader && r->raft.current_term == r->seen_term)
            return;
        r->seen_state = state;
        r->seen_leader = id;
        r->seen_term = r->raft.current_term;
    }
    consensus_status st;
    consensus_raft_status(r, &st);
    if (st.role != r->last_status.role || st.leader_id != r->last_status.leader_id ||
        st.term != r->last_status.term) {
        r->last_status = st;
        if (r->cfg.on_status != NULL)
            r->cfg.on_status(r->cfg.status_arg, &st);
    }
}

/* ---------------- lifecycle ---------------- */

int consensus_raft_init(uv_loop_t *loop, const consensus_raft_config *cfg, consensus_raft **out,
                        mb_error *err)
{
    *out = NULL;
    if (cfg->id == 0 || cfg->address == NULL || cfg->data_dir == NULL)
        return mb_errorf(err, MB_EINVAL, "raft config needs an id > 0, an address and a data dir");
    if (cfg->max_voters != 0 && cfg->max_voters != 3 && cfg->max_voters != 5)
        return mb_errorf(err, MB_EINVAL, "max_voters must be 3 or 5");
    consensus_raft *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return mb_errorf(err, MB_ENOMEM, "raft init");
    r->loop = loop;
    r->cfg = *cfg;
    r->cfg.election_timeout_ms = cfg->election_timeout_ms ? cfg->election_timeout_ms : 3000;
    r->cfg.heartbeat_timeout_ms = cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 500;
    r->cfg.snapshot_threshold = cfg->snapshot_threshold ? cfg->snapshot_threshold : 65536;
    r->cfg.snapshot_trailing = cfg->snapshot_trailing ? cfg->snapshot_trailing : 8192;
    r->cfg.snapshot_max_bytes = cfg->snapshot_max_bytes ? cfg->snapshot_max_bytes : 64u << 20;
    r->cfg.quorum_timeout_ms = cfg->quorum_timeout_ms ? cfg->quorum_timeout_ms : 5000;
    r->cfg.monitor_interval_ms = cfg->monitor_interval_ms ? cfg->monitor_interval_ms : 50;
    r->cfg.max_voters = cfg->max_voters ? cfg->max_voters : 3;
    consensus_aio_reap_set(!cfg->sync_aio_destroy);
    r->address = dup_str(cfg->address);
    r->data_dir = dup_str(cfg->data_dir);
    r->cfg.address = r->address;
    r->cfg.data_dir = r->data_dir;
    int rc = MB_ENOMEM;
    if (r->address == NULL || r->data_dir == NULL)
        goto err_free;
    if (r->cfg.heartbeat_timeout_ms >= r->cfg.election_timeout_ms) {
        rc = mb_errorf(err, MB_EINVAL, "heartbeat timeout must be below the election timeout");
        goto err_free;
    }
    if (cfg->n_peers > 0) {
        r->peers = calloc(cfg->n_peers, sizeof(*r->peers));
        if (r->peers == NULL)
            goto err_free;
        r->cfg.peers = r->peers;
        for (size_t i = 0; i < cfg->n_peers; i++) {
            r->peers[i].id = cfg->peers[i].id;
            if ((r->peers[i].address = dup_str(cfg->peers[i].address)) == NULL)
                goto err_free;
        }
    }
    consensus_sm_options opts = { .dedup_capacity = cfg->dedup_capacity };
    if ((rc = consensus_fsm_new(&opts, cfg->on_effects, cfg->effects_arg, cfg->skip_effects_through,
                                &r->fsm)) != MB_OK)
        goto err_free;
    int rv = raft_uv_tcp_init(&r->transport, loop);
    if (rv != 0) {
        rc = mb_errorf(err, from_raft(rv), "raft transport init: %s", raft_strerror(rv));
        goto err_fsm;
    }
    r->tcp_listen = r->transport.listen;
    r->tcp_connect = r->transport.connect;
    r->transport.listen = nodelay_listen;
    r->transport.connect = nodelay_connect;
    rv = raft_uv_init(&r->io, loop, r->data_dir, &r->transport);
    if (rv != 0) {
        rc =
            mb_errorf(err, from_raft(rv), "raft io init at %s: %s", r->data_dir, raft_strerror(rv));
        goto err_transport;
    }
    r->io_start = r->io.start;
    r->io.start = io_start_capture;
    rv = raft_init(&r->raft, &r->io, consensus_fsm_raft(r->fsm), cfg->id, r->address);
    if (rv != 0) {
        rc = mb_errorf(err, from_raft(rv), "raft init at %s: %s", r->data_dir, raft_strerror(rv));
        goto err_io;
    }
    r->raft.data = r;
    r->raft_inited = 1;
    consensus_fsm_attach(r->fsm, &r->raft);
    raft_set_election_timeout(&r->raft, r->cfg.election_timeout_ms);
    raft_set_heartbeat_timeout(&r->raft, r->cfg.heartbeat_timeout_ms);
    raft_set_pre_vote(&r->raft, !cfg->disable_pre_vote);
    consensus_fsm_set_snapshot_policy(r->fsm, r->cfg.snapshot_threshold, r->cfg.snapshot_trailing,
                                      r->cfg.snapshot_max_bytes);
    /* Voters apply the same entries at about the same time: with one
     * threshold they would all snapshot (finalize a segment, write and sync
     * files) at once, and a write then waits for the slowest disk of a
     * majority. Node ids 1, 2, 3 take phases a third apart. */
    consensus_fsm_set_snapshot_phase(r->fsm, (unsigned)(r->cfg.id % 3), 3);
    consensus_fsm_set_applied_cb(r->fsm, entry_applied_cb, r);
    uv_timer_init(loop, &r->monitor);
    r->monitor.data = r;
    uv_check_init(loop, &r->flush_check);
    r->flush_check.data = r;
    uv_idle_init(loop, &r->flush_idle);
    r->flush_idle.data = r;
    r->handles_open = 3;
    *out = r;
    return MB_OK;

err_io:
    raft_uv_close(&r->io);
err_transport:
    raft_uv_tcp_close(&r->transport);
err_fsm:
    consensus_fsm_free(r->fsm);
err_free:
    free(r->address);
    free(r->data_dir);
    free_peers(r);
    free(r);
    if (rc == MB_ENOMEM)
        mb_errorf(err, rc, "raft init: out of memory");
    return rc;
}

int consensus_raft_start(consensus_raft *r, mb_error *err)
{
    if (r->started || r->closing)
        return mb_errorf(err, MB_ESTATE, "raft already started or closing");
    if (r->cfg.n_peers > 0) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        int rv = 0;
        for (size_t i = 0; i < r->cfg.n_peers && rv == 0; i++)
            rv = raft_configuration_add(&conf, r->peers[i].id, r->peers[i].address, RAFT_VOTER);
        if (rv == 0)
            rv = raft_bootstrap(&r->raft, &conf);
        raft_configuration_close(&conf);
        /* CANTBOOTSTRAP: the directory already has state; that is a restart. */
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP)
            return mb_errorf(err, from_raft(rv), "raft bootstrap in %s: %s", r->data_dir,
                             raft_strerror(rv));
    }
    int rv = raft_start(&r->raft);
    if (rv != 0) {
        /* libraft 0.15 leaves its message empty when the transport cannot
         * listen (the usual cause: raft_address in use). */
        const char *msg = raft_errmsg(&r->raft);
        return mb_errorf(err, from_raft(rv), "raft start in %s (raft_address %s): %s", r->data_dir,
                         r->address != NULL ? r->address : "?",
                         msg != NULL && msg[0] != '\0' ? msg : raft_strerror(rv));
    }
    r->started = 1;
    uv_check_start(&r->flush_check, flush_check_cb);
    r->monitor_ms = r->cfg.monitor_interval_ms;
    uv_timer_start(&r->monitor, monitor_cb, r->monitor_ms, r->monitor_ms);
    return MB_OK;
}

void consensus_raft_close(consensus_raft *r, void (*cb)(void *arg), void *arg)
{
    if (r->closing)
        return;
    r->closing = 1;
    r->close_cb = cb;
    r->close_arg = arg;
    /* Pending work drains by commit or by the leader stepping down (one
     * election timeout without a majority); past this, close anyway. */
    r->close_deadline_ms =
        uv_now(r->loop) + r->cfg.quorum_timeout_ms + 2ull * r->cfg.election_timeout_ms;
    /* Continue from the monitor on the next loop iteration: close may be
     * called from a callback that raft is running. */
    r->monitor_ms = r->cfg.monitor_interval_ms;
    uv_timer_start(&r->monitor, monitor_cb, 0, r->monitor_ms);
}
