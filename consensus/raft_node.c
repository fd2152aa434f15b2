/* The raft glue: libraft 0.15 with the libuv backend and TCP transport on
 * the caller's loop; proposals with results, barriers, membership, the
 * state monitor (0.15 has no leader callback), the "no quorum" deadline and
 * the close sequence of LIBS.md §1. Loop thread only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus/consensus.h"

#define PROPOSAL_MAX_BYTES (16u << 20)

typedef enum req_kind {
    REQ_APPLY = 1,
    REQ_BARRIER = 2,
} req_kind;

/* One proposal or barrier that raft holds until its callback fires. */
typedef struct pending {
    struct raft_apply apply;
    struct raft_barrier barrier;
    req_kind kind;
    consensus_raft *owner;
    consensus_done_cb cb; /* NULL once answered early (no quorum) */
    void *arg;
    uint64_t deadline_ms;
    struct pending *prev, *next;
} pending;

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
    int raft_inited, started, closing, raft_close_called;
    pending *pending_head;
    unsigned n_pending; /* requests raft still holds (incl. change, transfer) */

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

    consensus_status last_status;
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

static void monitor_closed_cb(uv_handle_t *h)
{
    consensus_raft *r = h->data;
    void (*cb)(void *) = r->close_cb;
    void *arg = r->close_arg;
    consensus_fsm_free(r->fsm);
    free(r->address);
    free(r->data_dir);
    free_peers(r);
    free(r);
    if (cb != NULL)
        cb(arg);
}

static void raft_closed_cb(struct raft *raft)
{
    consensus_raft *r = raft->data;
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    uv_close((uv_handle_t *)&r->monitor, monitor_closed_cb);
}

/* Once nothing is in flight (or the deadline passed), close raft. Waiting
 * first avoids the double free of 0.15 on close with applies in flight.
 * Called only from the monitor timer, never from inside a raft callback
 * (raft_close while raft is applying entries is not safe). */
static void maybe_finish_close(consensus_raft *r)
{
    if (!r->closing || r->raft_close_called)
        return;
    if (r->n_pending > 0 && uv_now(r->loop) < r->close_deadline_ms)
        return;
    r->raft_close_called = 1;
    uv_timer_stop(&r->monitor);
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
    r->n_pending--;
}

static void pending_link(consensus_raft *r, pending *p)
{
    p->prev = NULL;
    p->next = r->pending_head;
    if (r->pending_head != NULL)
        r->pending_head->prev = p;
    r->pending_head = p;
    r->n_pending++;
}

static void finish_request(pending *p, int status, const consensus_result *applied)
{
    consensus_raft *r = p->owner;
    consensus_result res;
    memset(&res, 0, sizeof(res));
    if (status == 0 && applied != NULL) {
        res = *applied;
    } else if (status == RAFT_LEADERSHIPLOST) {
        result_error(&res, MB_EUNKNOWN, "%s",
                     "leadership lost before the entry committed: outcome unknown, retry with "
                     "the same id");
    } else if (status != 0) {
        result_error(&res,
                     status == RAFT_SHUTDOWN || status == RAFT_CANCELED ? MB_EUNKNOWN
                                                                        : from_raft(status),
                     "raft: %s", raft_strerror(status));
    }
    pending_unlink(r, p);
    if (p->cb != NULL)
        p->cb(p->arg, &res);
    free(p);
}

static void apply_done_cb(struct raft_apply *req, int status, void *result)
{
    finish_request(req->data, status, result);
}

static void barrier_done_cb(struct raft_barrier *req, int status)
{
    pending *p = req->data;
    consensus_result ok;
    memset(&ok, 0, sizeof(ok));
    ok.version = raft_last_applied(&p->owner->raft);
    finish_request(p, status, &ok);
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
    p->apply.data = p;
    p->barrier.data = p;
    p->deadline_ms = uv_now(r->loop) + r->cfg.quorum_timeout_ms;
    return p;
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
    struct raft_buffer buf = { 0 };
    if (p == NULL || consensus_entry_frame(cmd, len, raft_malloc, &buf.base, &buf.len) != MB_OK) {
        free(p);
        result_error(now, MB_ENOMEM, "%s", "propose: out of memory");
        return MB_ENOMEM;
    }
    int rv = raft_apply(&r->raft, &p->apply, &buf, 1, apply_done_cb);
    if (rv != 0) {
        /* Before the entry is in the log raft does not own the buffer;
         * NOTLEADER and NOMEM come from there. */
        if (rv == RAFT_NOTLEADER || rv == RAFT_NOMEM)
            raft_free(buf.base);
        free(p);
        if (rv == RAFT_NOTLEADER)
            return not_leader(r, now);
        result_error(now, from_raft(rv), "raft_apply: %s", raft_strerror(rv));
        return from_raft(rv);
    }
    pending_link(r, p);
    return MB_OK;
}

int consensus_raft_barrier(consensus_raft *r, consensus_done_cb cb, void *arg,
                           consensus_result *now)
{
    int rc = refuse_if_unusable(r, now);
    if (rc != MB_OK)
        return rc;
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
                        consensus_done_cb cb, void *arg, consensus_result *now)
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
        rv = raft_assign(&r->raft, &r->change, id, r->change_role = RAFT_VOTER, change_done_cb);
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
    return change_begin(r, CHANGE_ADD, id, address, cb, arg, now);
}

int consensus_raft_promote(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                           consensus_result *now)
{
    return change_begin(r, CHANGE_ASSIGN, id, NULL, cb, arg, now);
}

int consensus_raft_remove(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                          consensus_result *now)
{
    return change_begin(r, CHANGE_REMOVE, id, NULL, cb, arg, now);
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

/* ---------------- status monitor ---------------- */

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
    out->pending = r->n_pending;
    out->last_index = raft_last_index(raft); /* wiring (repl_commit_nudge) */
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
    if (r->closing) {
        maybe_finish_close(r);
        return;
    }
    if (!r->cfg.disable_proposal_expiry && now >= r->last_expiry_ms + 1000 &&
        raft_state(&r->raft) == RAFT_LEADER) {
        r->last_expiry_ms = now;
        expire_proposals(r);
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
    r->cfg.snapshot_threshold = cfg->snapshot_threshold ? cfg->snapshot_threshold : 1024;
    r->cfg.snapshot_trailing = cfg->snapshot_trailing ? cfg->snapshot_trailing : 8192;
    r->cfg.quorum_timeout_ms = cfg->quorum_timeout_ms ? cfg->quorum_timeout_ms : 5000;
    r->cfg.monitor_interval_ms = cfg->monitor_interval_ms ? cfg->monitor_interval_ms : 50;
    r->cfg.max_voters = cfg->max_voters ? cfg->max_voters : 3;
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
    rv = raft_uv_init(&r->io, loop, r->data_dir, &r->transport);
    if (rv != 0) {
        rc =
            mb_errorf(err, from_raft(rv), "raft io init at %s: %s", r->data_dir, raft_strerror(rv));
        goto err_transport;
    }
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
    raft_set_snapshot_threshold(&r->raft, r->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&r->raft, r->cfg.snapshot_trailing);
    uv_timer_init(loop, &r->monitor);
    r->monitor.data = r;
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
    if (rv != 0)
        return mb_errorf(err, from_raft(rv), "raft start in %s: %s", r->data_dir,
                         raft_errmsg(&r->raft));
    r->started = 1;
    uv_timer_start(&r->monitor, monitor_cb, r->cfg.monitor_interval_ms, r->cfg.monitor_interval_ms);
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
    uv_timer_start(&r->monitor, monitor_cb, 0, r->cfg.monitor_interval_ms);
}
