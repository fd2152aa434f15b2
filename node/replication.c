/* node/replication.c: raft + mesh wired into mabeamd (see replication.h
 * and docs/variables.md). */
#include "node/replication.h"
#include "node/studies.h"
#include "node/coord.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "cluster/cluster.h"
#include "node/cluster_ops.h"
#include "node/forward.h"
#include "node/http_server.h"
#include "node/node.h"
#include "node/proposals.h"

/* Mesh methods of this module. */
enum {
    /* MESH_METHOD_USER_MIN + 0: single forwarded writes, replaced by
     * M_PROPOSE_BATCH (raftperf2) */
    M_READ = MESH_METHOD_USER_MIN + 1,   /* name ("" = list) -> JSON text */
    M_JOIN = MESH_METHOD_USER_MIN + 2,   /* {"id","raft","mesh","api"} -> status */
    M_STATUS = MESH_METHOD_USER_MIN + 3, /* "" -> this node's raft status JSON */
    M_LEAVE = MESH_METHOD_USER_MIN + 4,  /* {"id"} -> status */
    /* raftperf2: ForwardBatch -> ForwardResults (node/forward.h) */
    M_PROPOSE_BATCH = MESH_METHOD_USER_MIN + 5,
    /* raftperf2: "" -> "": this follower has watchers (see repl_commit_nudge_watched) */
    M_WATCHING = MESH_METHOD_USER_MIN + 6,
};

#define TICK_MS          20
#define RETRY_MS         40
#define SLOW_TICK_MS     250
#define STATUS_RPC_MS    600
#define META_APPLIED     "raft.applied"
#define ATTEMPT_MAX_MS   2000
#define NUDGE_RECHECK_MS 2
#define NUDGE_LAG_MS     200 /* rechecks for a follower still storing entries */
/* raftperf2: a follower with watchers says so to the leader every
 * INTEREST_REFRESH_MS; the leader forgets it after INTEREST_TTL_MS. */
#define INTEREST_REFRESH_MS 1000
#define INTEREST_TTL_MS     3000
#define INTEREST_CHECK_MS   5
#define INTEREST_MAX        16

typedef enum op_kind { OP_WRITE, OP_READ, OP_STATUS, OP_LEAVE } op_kind;

/* An op's completion is owed to exactly one of: an API call (`call`,
 * answered through `done`, deadline = the call's park) or an internal
 * submitter (`scb`, repl_submit, deadline = `deadline`). Both are NULL
 * once completed; the op then lives on only until its outstanding
 * callbacks have come back (op_idle). */
typedef struct op {
    struct op *next, *prev;
    repl *r;
    api_call *call;     /* NULL once answered */
    repl_submit_cb scb; /* internal completion; NULL once called */
    void *sarg;
    uint64_t deadline; /* internal: loop ms when MB_ENOQUORUM is reported */
    int in_submit;     /* inside repl_submit: never call scb synchronously */
    op_kind kind;
    void *cmd; /* WRITE: encoded command; READ: name ("" = list) */
    size_t cmd_len;
    repl_done_fn done;
    void *arg;
    int inflight;         /* the current attempt's callback will come */
    unsigned gen;         /* forward attempts: a callback of an older one is ignored */
    unsigned outstanding; /* forward callbacks still to come (any attempt) */
    uint64_t fwd_to;      /* peer of the current forward attempt (0 = local) */
    int finished;         /* result known, waiting for the local apply */
    int unknown;          /* some attempt ended with an unknown outcome */
    uint64_t retry_at;
    consensus_result res;
    char last[300]; /* last transient failure, for the 503 message */
    /* WRITE prepared late (repl_write_prepare) */
    repl_prepare_fn prep;
    void *prep_arg;
    void (*prep_free)(void *);
    char *sync_name; /* variable the preparation needs to see locally */
    int sync;        /* the current attempt is the leader read of sync_name */
    int synced_once;
    /* STATUS: fan-out */
    cJSON *nodes;
    unsigned waiting;
} op;

struct repl {
    node *n;
    consensus_raft *raft;
    mesh *m;
    uint64_t id;
    char raft_addr[64], mesh_url[320], api_addr[300];
    int has_seeds;
    int64_t write_timeout_ms;
    uv_timer_t tick;
    uint64_t tick_ms; /* its period: TICK_MS while ops are open, SLOW_TICK_MS when none */
    uint64_t interest_checked_ms;
    int tick_open;
    uint64_t last_slow;
    int closing;
    int raft_closed;
    op *ops;
    uint64_t client_id; /* idempotency ids of this process */
    uint64_t next_seq;
    uint64_t nudge_since_ms; /* repl_commit_nudge: when the last one was asked */
    uv_timer_t *nudge_timer; /* own allocation: closed with free() */
    int join_inflight, selfreg_inflight, join_srv_busy;
    int leaving;
    int promote_inflight;
    uint64_t promote_id;
    mesh_request *join_req; /* leader: join being served */
    uint64_t join_id;
    char join_mesh[320], join_api[300], join_raft[CONSENSUS_ADDR_MAX + 1];
    uint64_t applied; /* highest index applied locally with effects */
    /* raft-perf (membership edges): voters seen down by this leader, since
     * when (loop ms), and the demotion in flight. */
    struct down_voter {
        uint64_t id;
        uint64_t since_ms;
    } down_voters[16];
    unsigned n_down_voters;
    int demote_inflight;
    uint64_t demote_id;
    /* raft-perf: events of the entries applied in this loop iteration,
     * written to the event log in one storage batch (with the applied
     * index) from a check handle; watchers are woken after that write. */
    storage_event *evq;
    size_t evq_n, evq_cap;
    struct watch_note {
        char *name;
    } * wq;
    size_t wq_n, wq_cap;
    uint64_t evq_index; /* highest applied index in the batch */
    int evq_dirty;      /* something to write (events or the index) */
    uv_check_t evq_check;
    uv_idle_t evq_idle; /* active while dirty: the loop must not block */
    int evq_handles;
    /* raftperf2: writes to forward, sent as one mesh request per loop
     * iteration (flush_forwards). */
    struct attempt *fwdq;
    size_t fwdq_n, fwdq_bytes;
    uint64_t fwdq_to; /* leader they go to */
    /* raftperf2: followers that have watchers (leader side), and when
     * this follower last said it has some (follower side). */
    struct interest {
        uint64_t node_id;
        uint64_t until_ms;
    } interest[INTEREST_MAX];
    uint64_t interest_sent_ms, interest_sent_to;
    int interest_inflight;
    /* raftperf2: counters shown in the node's cluster status */
    uint64_t stat_fwd_batches, stat_fwd_writes, stat_nudges;
};

static node *N(repl *r)
{
    return r->n;
}

static void rlog(repl *r, nc_log_level lvl, const char *msg, const char *k, const char *v)
{
    NC_LOGKV(r->n->log, lvl, "cluster", msg, NC_F_STR(k, v != NULL ? v : ""));
}

/* ---- idempotency ids ---- */

static uint64_t fnv64(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void repl_request_id(const char *request_id, uint64_t *client_id, uint64_t *seq)
{
    /* High bit set: never collides with node-assigned client ids. */
    *client_id = fnv64(request_id, 14695981039346656037ull) | (1ull << 63);
    *seq = fnv64(request_id, 0x9e3779b97f4a7c15ull) | 1;
}

/* ---- ops ---- */

static void op_free(op *o)
{
    repl *r = o->r;
    if (o->prev != NULL)
        o->prev->next = o->next;
    else
        r->ops = o->next;
    if (o->next != NULL)
        o->next->prev = o->prev;
    free(o->cmd);
    cJSON_Delete(o->nodes);
    if (o->prep_free != NULL)
        o->prep_free(o->prep_arg);
    free(o->sync_name);
    free(o);
}

static void tick_cb(uv_timer_t *t);

/* idle: the tick runs every TICK_MS only while some op may need it
 * (deadlines, retries, waiting for the local apply). */
static void tick_set(repl *r, uint64_t every_ms)
{
    if (r->tick_ms == every_ms || !r->tick_open || r->closing)
        return;
    r->tick_ms = every_ms;
    if (every_ms == SLOW_TICK_MS) /* one-shot, re-armed on the grid by tick_cb */
        uv_timer_start(&r->tick, tick_cb, node_aligned_delay(&r->n->loop, every_ms), 0);
    else
        uv_timer_start(&r->tick, tick_cb, every_ms, every_ms);
}

static op *op_new(repl *r, api_call *c, op_kind kind)
{
    op *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->r = r;
    o->call = c;
    o->kind = kind;
    o->next = r->ops;
    if (r->ops != NULL)
        r->ops->prev = o;
    r->ops = o;
    tick_set(r, TICK_MS);
    return o;
}

/* Whether the op still owes its completion (API answer or callback). */
static int op_waiting(const op *o)
{
    return o->call != NULL || o->scb != NULL;
}

/* Complete an internal op with `res` (borrowed). */
static void op_submit_complete(op *o, const consensus_result *res)
{
    repl_submit_cb cb = o->scb;
    o->scb = NULL;
    cb(o->sarg, res);
}

/* Answer the op's call with its final result. */
static void op_finish(op *o, const char *json)
{
    if (o->scb != NULL) {
        op_submit_complete(o, &o->res);
        return;
    }
    if (o->call == NULL)
        return;
    api_call *c = o->call;
    o->call = NULL;
    o->done(N(o->r), c, &o->res, json, o->arg);
}

typedef struct attempt {
    op *o;
    unsigned gen;
} attempt;

static int op_idle(const op *o)
{
    return !op_waiting(o) && !o->inflight && o->outstanding == 0;
}

/* At the deadline: may the op's write still be applied? (partition suite) */
static int op_outcome_unknown(const op *o)
{
    /* A write still pending (proposed here, or forwarded and not answered)
     * may yet be applied, like one whose attempt had an unknown outcome. */
    return o->unknown || (o->kind == OP_WRITE && (o->inflight || o->outstanding > 0));
}

/* An internal op's deadline passed (MB_ENOQUORUM) or the module closes
 * (MB_ECLOSED): complete it as op_expire does for API calls. */
static void op_expire_internal(op *o, int code)
{
    consensus_result res;
    if (o->finished) {
        op_submit_complete(o, &o->res);
    } else {
        memset(&res, 0, sizeof(res));
        res.code = code;
        if (code == MB_ECLOSED)
            snprintf(res.msg, sizeof(res.msg), "node is shutting down");
        else
            snprintf(res.msg, sizeof(res.msg), "no quorum: write not committed in time (%.150s)%s",
                     o->last[0] != '\0' ? o->last : "no leader",
                     op_outcome_unknown(o) ? "; outcome unknown" : "");
        op_submit_complete(o, &res);
    }
    if (op_idle(o))
        op_free(o);
}

static void op_expire(node *n, api_call *c, void *arg, int code)
{
    op *o = arg;
    (void)n;
    o->call = NULL;
    if (o->finished) {
        o->done(o->r->n, c, &o->res, NULL, o->arg);
    } else if (code == MB_ECLOSED) {
        api_reply_error(c, MB_ECLOSED, "node is shutting down");
    } else if (o->kind == OP_STATUS) {
        api_reply_error(c, MB_ETIMEDOUT, "cluster status: peers did not answer");
    } else if (o->kind == OP_LEAVE) {
        api_reply_error(c, MB_ENOQUORUM, "no quorum: leave not completed within %lld ms (%s)",
                        (long long)o->r->write_timeout_ms,
                        o->last[0] != '\0' ? o->last : "no leader");
    } else {
        int unknown = op_outcome_unknown(o);
        api_reply_error(c, MB_ENOQUORUM, "no quorum: %s not committed within %lld ms (%s)%s",
                        o->kind == OP_READ ? "read" : "write", (long long)o->r->write_timeout_ms,
                        o->last[0] != '\0' ? o->last : "no leader",
                        unknown ? "; outcome unknown: retry with the same request_id" : "");
    }
    if (op_idle(o))
        op_free(o);
}

static int transient(int code)
{
    return code == MB_ENOTLEADER || code == MB_EUNKNOWN || code == MB_ECLOSED || code == MB_EBUSY ||
           code == MB_ENOQUORUM || code == MB_ETIMEDOUT || code == MB_EUNAVAIL;
}

/* An attempt ended; decide between retry and the final answer. */
static void op_result(op *o, const consensus_result *res, const char *json)
{
    repl *r = o->r;
    o->inflight = 0;
    if (!op_waiting(o)) {
        if (op_idle(o))
            op_free(o);
        return;
    }
    if (transient(res->code) && !r->closing) {
        /* Leadership lost, not committed in time (raft keeps the entry), a
         * forward not answered: the write may still be applied. */
        if (res->code == MB_EUNKNOWN ||
            (o->kind == OP_WRITE && (res->code == MB_ENOQUORUM || res->code == MB_ETIMEDOUT)))
            o->unknown = 1;
        snprintf(o->last, sizeof(o->last), "%s: %s", mb_errname(res->code), res->msg);
        o->retry_at = uv_now(&N(r)->loop) + RETRY_MS;
        return;
    }
    if (o->sync && res->code == MB_OK) {
        /* The leader has the variable: wait for it here, then prepare. */
        o->sync = 0;
        o->kind = OP_WRITE;
        free(o->cmd);
        o->cmd = NULL;
        o->retry_at = uv_now(&N(r)->loop) + 1;
        return;
    }
    o->res = *res;
    if ((o->kind == OP_WRITE && res->code == MB_OK && res->version > r->applied) || o->in_submit) {
        o->finished = 1; /* the tick answers once applied here (or, for a
                            result known inside repl_submit, next tick) */
        return;
    }
    op_finish(o, json);
    if (op_idle(o)) /* else an abandoned forward's callback frees it */
        op_free(o);
}

static void op_fail_now(op *o, int code, const char *msg)
{
    consensus_result res;
    memset(&res, 0, sizeof(res));
    res.code = code;
    snprintf(res.msg, sizeof(res.msg), "%s", msg);
    o->inflight = 1; /* op_result clears it */
    op_result(o, &res, NULL);
}

/* Read JSON of the local state (after a barrier on the leader). */
static char *read_json(repl *r, const char *name, consensus_result *res)
{
    const consensus_sm *sm = consensus_raft_sm(r->raft);
    cJSON *j = NULL;
    memset(res, 0, sizeof(*res));
    if (name[0] != '\0') {
        const consensus_var *v = consensus_sm_var_get(sm, name);
        if (v == NULL) {
            res->code = MB_ENOTFOUND;
            snprintf(res->msg, sizeof(res->msg), "variable \"%s\" not found", name);
            return NULL;
        }
        if (consensus_var_to_json(v, &j) != MB_OK)
            goto nomem;
    } else {
        j = cJSON_CreateObject();
        cJSON *a = j != NULL ? cJSON_AddArrayToObject(j, "vars") : NULL;
        if (a == NULL)
            goto nomem;
        for (size_t i = 0; i < consensus_sm_var_count(sm); i++) {
            cJSON *v = NULL;
            if (consensus_var_to_json(consensus_sm_var_at(sm, i), &v) != MB_OK)
                goto nomem;
            cJSON_AddItemToArray(a, v);
        }
        cJSON_AddNumberToObject(j, "applied_index", (double)consensus_sm_applied_index(sm));
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text == NULL)
        goto nomem;
    return text;
nomem:
    cJSON_Delete(j);
    res->code = MB_ENOMEM;
    snprintf(res->msg, sizeof(res->msg), "out of memory");
    return NULL;
}

static void local_write_done(void *arg, const consensus_result *res)
{
    op_result(arg, res, NULL);
}

static void local_read_done(void *arg, const consensus_result *res)
{
    op *o = arg;
    if (res->code != MB_OK || !op_waiting(o)) {
        op_result(o, res, NULL);
        return;
    }
    consensus_result rr;
    char *text = read_json(o->r, o->cmd, &rr);
    op_result(o, &rr, text);
    free(text);
}

/* A forward callback: the op if it is the current attempt, else NULL
 * (and the op freed if nothing else holds it). */
static op *attempt_end_at(op *o, unsigned gen)
{
    o->outstanding--;
    if (gen == o->gen && o->inflight)
        return o;
    if (op_idle(o))
        op_free(o);
    return NULL;
}

static op *attempt_end(attempt *a)
{
    op *o = a->o;
    unsigned gen = a->gen;
    free(a);
    return attempt_end_at(o, gen);
}

/* ---- raftperf2: forwarded writes, batched ----
 * A follower queues the writes it forwards during one loop iteration and
 * sends them to the leader in one mesh request (M_PROPOSE_BATCH) from the
 * check handle; the leader proposes them in the same iteration, so they
 * join one raft batch, and answers with one result per write. */

typedef struct fwd_call {
    size_t n;
    attempt items[];
} fwd_call;

static void evq_idle_cb(uv_idle_t *h);

/* The forward of `a` ended without an answer from the leader. */
static void fwd_item_failed(attempt *a, int code, const char *what)
{
    op *o = attempt_end_at(a->o, a->gen);
    if (o == NULL)
        return;
    consensus_result res;
    memset(&res, 0, sizeof(res));
    res.code = code;
    snprintf(res.msg, sizeof(res.msg), "forward to leader: %s", what);
    op_result(o, &res, NULL);
}

static void fwd_batch_done(void *user, int status, const void *payload, size_t len)
{
    fwd_call *fc = user;
    consensus_result *res = NULL;
    if (status == MB_OK) {
        res = malloc(fc->n * sizeof(*res));
        if (res == NULL || fwd_results_decode(payload, len, fc->n, res) != MB_OK) {
            status = res == NULL ? MB_ENOMEM : MB_EPROTO;
        }
    }
    for (size_t i = 0; i < fc->n; i++) {
        if (status != MB_OK) {
            fwd_item_failed(&fc->items[i], status, mb_strerror(status));
            continue;
        }
        op *o = attempt_end_at(fc->items[i].o, fc->items[i].gen);
        if (o != NULL)
            op_result(o, &res[i], NULL);
    }
    free(res);
    free(fc);
}

/* Send the queued forwards as one request. */
static void flush_forwards(repl *r)
{
    size_t n = r->fwdq_n;
    if (n == 0)
        return;
    attempt q[FWD_BATCH_MAX]; /* failures below may queue new forwards */
    memcpy(q, r->fwdq, n * sizeof(attempt));
    r->fwdq_n = 0;
    r->fwdq_bytes = 0;
    fwd_call *fc = malloc(sizeof(*fc) + n * sizeof(attempt));
    fwd_item items[FWD_BATCH_MAX];
    void *buf = NULL;
    size_t len = 0;
    int rc = MB_ENOMEM;
    if (fc == NULL)
        goto fail;
    fc->n = n;
    memcpy(fc->items, q, n * sizeof(attempt));
    for (size_t i = 0; i < n; i++)
        items[i] = (fwd_item){ .data = q[i].o->cmd, .len = q[i].o->cmd_len };
    if ((rc = fwd_batch_encode(items, n, &buf, &len)) != MB_OK)
        goto fail;
    int64_t left = r->write_timeout_ms;
    mesh_call_args a = {
        .peer_id = r->fwdq_to,
        .method = M_PROPOSE_BATCH,
        .payload = buf,
        .len = len,
        .timeout_ms = (uint32_t)(left < ATTEMPT_MAX_MS ? left : ATTEMPT_MAX_MS),
        .cb = fwd_batch_done,
        .user = fc,
    };
    mb_error e;
    mb_error_clear(&e);
    rc = mesh_call(r->m, &a, NULL, &e);
    free(buf);
    if (rc == MB_OK) {
        r->stat_fwd_batches++;
        r->stat_fwd_writes += n;
        return;
    }
    free(fc);
    for (size_t i = 0; i < n; i++)
        fwd_item_failed(&q[i], MB_EUNAVAIL, e.msg);
    return;
fail:
    free(fc);
    for (size_t i = 0; i < n; i++)
        fwd_item_failed(&q[i], rc, mb_strerror(rc));
}

/* Queue the forward of write `o` to leader `lid`. */
static int fwd_enqueue(repl *r, op *o, uint64_t lid)
{
    if (r->fwdq_n > 0 && (r->fwdq_to != lid || r->fwdq_n == FWD_BATCH_MAX ||
                          r->fwdq_bytes + o->cmd_len > FWD_BATCH_BYTES))
        flush_forwards(r);
    if (r->fwdq == NULL && (r->fwdq = malloc(FWD_BATCH_MAX * sizeof(attempt))) == NULL)
        return MB_ENOMEM;
    r->fwdq_to = lid;
    r->fwdq[r->fwdq_n++] = (attempt){ .o = o, .gen = ++o->gen };
    r->fwdq_bytes += o->cmd_len;
    o->inflight = 1;
    o->outstanding++;
    o->fwd_to = lid;
    if (r->evq_handles)
        uv_idle_start(&r->evq_idle, evq_idle_cb); /* the loop must not block before the flush */
    return MB_OK;
}

static void fwd_read_done(void *user, int status, const void *payload, size_t len)
{
    op *o = attempt_end(user);
    if (o == NULL)
        return;
    consensus_result res;
    memset(&res, 0, sizeof(res));
    res.code = status;
    if (status != MB_OK) {
        snprintf(res.msg, sizeof(res.msg), "%.*s", (int)(len < 255 ? len : 255),
                 payload != NULL ? (const char *)payload : "");
        op_result(o, &res, NULL);
        return;
    }
    char *text = malloc(len + 1);
    if (text == NULL) {
        res.code = MB_ENOMEM;
        op_result(o, &res, NULL);
        return;
    }
    memcpy(text, payload, len);
    text[len] = '\0';
    op_result(o, &res, text);
    free(text);
}

/* Make sure the mesh can reach `id` (from the replicated node table). */
static int ensure_peer(repl *r, uint64_t id)
{
    fd_peer_view v;
    if (mesh_peer(r->m, id, &v) == MB_OK)
        return 1;
    const consensus_node *cn = consensus_sm_node_get(consensus_raft_sm(r->raft), id);
    if (cn == NULL || cn->mesh_addr == NULL || cn->mesh_addr[0] == '\0')
        return 0;
    mb_error e;
    mb_error_clear(&e);
    return mesh_add_peer(r->m, id, cn->mesh_addr, &e) == MB_OK;
}

static uint64_t leader_of(repl *r, consensus_status *st)
{
    consensus_raft_status(r->raft, st);
    if (st->leader_id != 0)
        return st->leader_id;
    uint64_t term, lid;
    mesh_leader(r->m, &term, &lid, NULL, 0);
    return lid;
}

/* Build a late-prepared command. 1: ready; 0: waiting; -1: answered. */
static int op_prepare(op *o)
{
    consensus_result res;
    memset(&res, 0, sizeof(res));
    int rv =
        o->prep(o->r->n, consensus_raft_sm(o->r->raft), o->prep_arg, &o->cmd, &o->cmd_len, &res);
    if (rv == MB_OK) {
        o->prep_free(o->prep_arg);
        o->prep_free = NULL;
        o->prep_arg = NULL;
        return 1;
    }
    if (rv == MB_ENOTFOUND && o->sync_name != NULL) {
        if (o->kind == OP_WRITE && o->res.code == 0 && o->cmd == NULL && !o->synced_once) {
            /* Maybe only this node has not applied it yet: ask the leader. */
            o->synced_once = 1;
            o->sync = 1;
            o->kind = OP_READ;
            o->cmd = strdup(o->sync_name);
            o->cmd_len = o->cmd != NULL ? strlen(o->cmd) : 0;
            if (o->cmd == NULL) {
                op_fail_now(o, MB_ENOMEM, "out of memory");
                return -1;
            }
            return 1;
        }
        o->retry_at = uv_now(&o->r->n->loop) + RETRY_MS / 4;
        snprintf(o->last, sizeof(o->last), "variable not applied on this node yet");
        return 0;
    }
    if (res.code == 0)
        res.code = rv;
    op_fail_now(o, res.code, res.msg);
    return -1;
}

static void op_attempt(op *o)
{
    repl *r = o->r;
    consensus_status st;
    if (o->kind == OP_WRITE && o->cmd == NULL) {
        if (op_prepare(o) != 1)
            return;
    }
    consensus_result now;
    memset(&now, 0, sizeof(now));
    uint64_t lid = leader_of(r, &st);
    o->retry_at = 0;
    if (st.role == CONSENSUS_LEADER) {
        int rv = o->kind == OP_WRITE ? consensus_raft_propose(r->raft, o->cmd, o->cmd_len,
                                                              local_write_done, o, &now)
                                     : consensus_raft_barrier(r->raft, local_read_done, o, &now);
        if (rv == MB_OK) {
            o->inflight = 1;
            o->fwd_to = 0;
            return;
        }
        if (now.code == 0)
            now.code = rv;
        o->inflight = 1;
        op_result(o, &now, NULL);
        return;
    }
    if (lid == 0 || lid == r->id || !ensure_peer(r, lid)) {
        snprintf(o->last, sizeof(o->last), "no leader known");
        o->retry_at = uv_now(&N(r)->loop) + RETRY_MS;
        return;
    }
    if (o->kind == OP_WRITE) {
        if (fwd_enqueue(r, o, lid) != MB_OK) {
            snprintf(o->last, sizeof(o->last), "forward: out of memory");
            o->retry_at = uv_now(&N(r)->loop) + RETRY_MS;
        }
        return;
    }
    int64_t left = r->write_timeout_ms;
    attempt *at = malloc(sizeof(*at));
    if (at == NULL) {
        o->retry_at = uv_now(&N(r)->loop) + RETRY_MS;
        return;
    }
    at->o = o;
    at->gen = ++o->gen;
    mesh_call_args a = {
        .peer_id = lid,
        .method = M_READ,
        .payload = o->cmd,
        .len = o->cmd_len,
        .timeout_ms = (uint32_t)(left < ATTEMPT_MAX_MS ? left : ATTEMPT_MAX_MS),
        .cb = fwd_read_done,
        .user = at,
    };
    mb_error e;
    mb_error_clear(&e);
    if (mesh_call(r->m, &a, NULL, &e) != MB_OK) {
        free(at);
        snprintf(o->last, sizeof(o->last), "forward: %s", e.msg);
        o->retry_at = uv_now(&N(r)->loop) + RETRY_MS;
        return;
    }
    o->inflight = 1;
    o->outstanding++;
    o->fwd_to = lid;
}

static op *op_start(repl *r, api_call *c, op_kind kind, repl_done_fn done, void *arg)
{
    if (r->closing) {
        api_reply_error(c, MB_ECLOSED, "node is shutting down");
        return NULL;
    }
    op *o = op_new(r, c, kind);
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return NULL;
    }
    o->done = done;
    o->arg = arg;
    int rv = api_call_park(N(r), c, (uint64_t)r->write_timeout_ms, op_expire, o);
    if (rv != MB_OK) {
        o->call = NULL;
        op_free(o);
        api_reply_error(c, rv, "too many requests waiting");
        return NULL;
    }
    return o;
}

void repl_new_id(repl *r, uint64_t *client_id, uint64_t *seq)
{
    *client_id = r->client_id;
    *seq = ++r->next_seq;
}

void repl_write(repl *r, api_call *c, consensus_cmd *cmd, repl_done_fn done, void *arg)
{
    if (cmd->client_id == 0)
        repl_new_id(r, &cmd->client_id, &cmd->request_seq);
    void *buf = NULL;
    size_t len = 0;
    mb_error e;
    mb_error_clear(&e);
    if (consensus_cmd_encode(cmd, NULL, &buf, &len, &e) != MB_OK) {
        api_reply_error(c, e.code, "%s", e.msg);
        return;
    }
    op *o = op_start(r, c, OP_WRITE, done, arg);
    if (o == NULL) {
        free(buf);
        return;
    }
    o->cmd = buf;
    o->cmd_len = len;
    op_attempt(o);
}

int repl_submit(repl *r, consensus_cmd *cmd, uint64_t timeout_ms, repl_submit_cb cb, void *arg)
{
    assert(cb != NULL);
    if (r->closing)
        return MB_ECLOSED;
    if (cmd->client_id == 0)
        repl_new_id(r, &cmd->client_id, &cmd->request_seq);
    void *buf = NULL;
    size_t len = 0;
    mb_error e;
    mb_error_clear(&e);
    int rv = consensus_cmd_encode(cmd, NULL, &buf, &len, &e);
    if (rv != MB_OK)
        return rv;
    op *o = op_new(r, NULL, OP_WRITE);
    if (o == NULL) {
        free(buf);
        return MB_ENOMEM;
    }
    o->scb = cb;
    o->sarg = arg;
    o->deadline =
        uv_now(&N(r)->loop) + (timeout_ms != 0 ? timeout_ms : (uint64_t)r->write_timeout_ms);
    o->cmd = buf;
    o->cmd_len = len;
    o->in_submit = 1;
    op_attempt(o);
    o->in_submit = 0;
    return MB_OK;
}

void repl_write_prepare(repl *r, api_call *c, const char *var, repl_prepare_fn prep, void *prep_arg,
                        void (*prep_free)(void *), repl_done_fn done, void *arg)
{
    char *nm = var != NULL ? strdup(var) : NULL;
    op *o = op_start(r, c, OP_WRITE, done, arg);
    if (o == NULL) {
        free(nm);
        prep_free(prep_arg);
        return;
    }
    o->prep = prep;
    o->prep_arg = prep_arg;
    o->prep_free = prep_free;
    o->sync_name = nm;
    op_attempt(o);
}

void repl_read(repl *r, api_call *c, const char *name, repl_done_fn done, void *arg)
{
    char *nm = strdup(name != NULL ? name : "");
    if (nm == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    op *o = op_start(r, c, OP_READ, done, arg);
    if (o == NULL) {
        free(nm);
        return;
    }
    o->cmd = nm;
    o->cmd_len = strlen(nm);
    op_attempt(o);
}

const consensus_sm *repl_sm(const repl *r)
{
    return consensus_raft_sm(r->raft);
}

/* coordination (piece: agents/coord) */
int repl_is_leader(const repl *r)
{
    consensus_status st;
    if (r == NULL || r->closing)
        return 0;
    consensus_raft_status(r->raft, &st);
    return st.role == CONSENSUS_LEADER;
}

uint64_t repl_tick_ms(const repl *r)
{
    return r->tick_ms;
}

mesh *repl_mesh(repl *r)
{
    return r->m;
}

static void nudge(repl *r, int from_timer);

static void nudge_timer_cb(uv_timer_t *t)
{
    nudge(t->data, 1);
}

/* Look again in NUDGE_RECHECK_MS. */
static void nudge_later(repl *r)
{
    if (r->nudge_timer == NULL) {
        uv_timer_t *t = malloc(sizeof(*t));
        if (t == NULL || uv_timer_init(&r->n->loop, t) != 0) {
            free(t);
            return;
        }
        t->data = r;
        r->nudge_timer = t;
    }
    if (!uv_is_active((uv_handle_t *)r->nudge_timer))
        uv_timer_start(r->nudge_timer, nudge_timer_cb, NUDGE_RECHECK_MS, 0);
}

/* raftperf2: the nudge is a heartbeat round sent now
 * (consensus_raft_send_commit), not a barrier entry: no log entry, no disk
 * write, and a follower applies on receipt instead of after storing one
 * more entry. */
static void nudge(repl *r, int from_timer)
{
    if (r == NULL || r->closing)
        return;
    uint64_t now_ms = uv_now(&r->n->loop);
    if (!from_timer)
        r->nudge_since_ms = now_ms;
    consensus_status st;
    consensus_raft_status(r->raft, &st);
    if (st.role != CONSENSUS_LEADER || consensus_sm_node_count(consensus_raft_sm(r->raft)) <= 1)
        return;
    if (st.last_index > st.commit_index) {
        /* Entries in flight: look again once they may have committed. */
        nudge_later(r);
        return;
    }
    int sent = 0, lagging = 0;
    if (consensus_raft_send_commit(r->raft, &sent, &lagging) != MB_OK)
        return;
    r->stat_nudges += (uint64_t)sent;
    /* A follower still storing the entries gets a round once it stored
     * them; for at most NUDGE_LAG_MS (then the regular heartbeat). */
    if (lagging && now_ms - r->nudge_since_ms < NUDGE_LAG_MS)
        nudge_later(r);
}

void repl_commit_nudge(repl *r)
{
    nudge(r, 0);
}

/* A follower answered an AppendEntries: if a nudge waits for a follower
 * still storing entries, that may be this one; look now rather than at the
 * next recheck (NUDGE_RECHECK_MS is the fallback). */
static void nudge_on_append_result(void *arg)
{
    repl *r = arg;
    if (r->nudge_timer != NULL && uv_is_active((uv_handle_t *)r->nudge_timer)) {
        uv_timer_stop(r->nudge_timer);
        nudge(r, 1);
    }
}

/* ---- raftperf2: commit nudges only for followers that wait ---- */

static struct interest *interest_find(repl *r, uint64_t node_id)
{
    for (size_t i = 0; i < INTEREST_MAX; i++)
        if (r->interest[i].node_id == node_id)
            return &r->interest[i];
    return NULL;
}

/* Whether some follower said it has watchers within INTEREST_TTL_MS. */
static int followers_watching(repl *r)
{
    uint64_t now = uv_now(&r->n->loop);
    for (size_t i = 0; i < INTEREST_MAX; i++)
        if (r->interest[i].node_id != 0 && r->interest[i].until_ms > now)
            return 1;
    return 0;
}

void repl_commit_nudge_watched(repl *r)
{
    if (r != NULL && followers_watching(r))
        repl_commit_nudge(r);
}

/* Leader: a follower has watchers. */
static void h_watching(void *user, mesh *m, mesh_request *req)
{
    repl *r = user;
    (void)m;
    uint64_t from = mesh_request_sender(req), now = uv_now(&r->n->loop);
    struct interest *in = interest_find(r, from);
    int fresh = in == NULL || in->until_ms <= now;
    if (in == NULL) {
        /* A free or expired slot (the oldest expiry otherwise). */
        in = &r->interest[0];
        for (size_t i = 1; i < INTEREST_MAX && in->until_ms > now; i++)
            if (r->interest[i].until_ms < in->until_ms)
                in = &r->interest[i];
        in->node_id = from;
    }
    in->until_ms = now + INTEREST_TTL_MS;
    mesh_reply(req, MB_OK, NULL, 0);
    if (fresh)
        repl_commit_nudge(r); /* a change committed just before it is seen now */
}

static void watching_done(void *user, int status, const void *payload, size_t len)
{
    repl *r = user;
    (void)payload;
    (void)len;
    r->interest_inflight = 0;
    if (status != MB_OK)
        r->interest_sent_to = 0; /* try again at the next tick */
}

/* Follower: whether something here waits for changes to be applied soon
 * (parked API long-polls, agents' variable watches). */
static int local_watchers(repl *r)
{
    node *n = r->n;
    return (n->http != NULL && http_server_parked(n->http) > 0) ||
           node_cluster_watching(n->cluster);
}

/* Follower: tell the leader about our watchers (every INTEREST_REFRESH_MS
 * while there are some, at once for a new leader). */
static void interest_tick(repl *r, uint64_t now)
{
    consensus_status st;
    if (r->interest_inflight || r->closing || !local_watchers(r))
        return;
    uint64_t lid = leader_of(r, &st);
    if (st.role == CONSENSUS_LEADER || lid == 0 || lid == r->id)
        return;
    if (lid == r->interest_sent_to && now < r->interest_sent_ms + INTEREST_REFRESH_MS)
        return;
    if (!ensure_peer(r, lid))
        return;
    mesh_call_args a = {
        .peer_id = lid,
        .method = M_WATCHING,
        .timeout_ms = INTEREST_REFRESH_MS,
        .cb = watching_done,
        .user = r,
    };
    mb_error e;
    mb_error_clear(&e);
    if (mesh_call(r->m, &a, NULL, &e) != MB_OK)
        return;
    r->interest_inflight = 1;
    r->interest_sent_to = lid;
    r->interest_sent_ms = now;
}

/* ---- leader side of forwarded requests ---- */

/* raftperf2: a batch of forwarded writes (M_PROPOSE_BATCH). Every command
 * is proposed now, so they join the raft batch of this loop iteration; the
 * answer goes once all have a result. */
typedef struct srv_batch srv_batch;
typedef struct srv_item {
    srv_batch *b;
    size_t i;
} srv_item;
struct srv_batch {
    repl *r;
    mesh_request *req;
    size_t n, pending;
    srv_item *items;
    consensus_result *res;
};

static void srv_batch_step(srv_batch *b)
{
    if (--b->pending > 0)
        return;
    repl *r = b->r;
    void *buf = NULL;
    size_t len = 0;
    int ok = 0;
    for (size_t i = 0; i < b->n; i++)
        ok |= b->res[i].code == MB_OK;
    if (fwd_results_encode(b->res, b->n, &buf, &len) != MB_OK)
        mesh_reply(b->req, MB_ENOMEM, NULL, 0);
    else
        mesh_reply(b->req, MB_OK, buf, len);
    free(buf);
    free(b->items);
    free(b->res);
    free(b);
    /* The follower answers its client once it applied the write itself:
     * let it learn the commit index now, not at the next heartbeat. */
    if (ok)
        repl_commit_nudge(r);
}

static void srv_item_done(void *arg, const consensus_result *res)
{
    srv_item *it = arg;
    it->b->res[it->i] = *res;
    srv_batch_step(it->b);
}

static void h_propose_batch(void *user, mesh *m, mesh_request *req)
{
    repl *r = user;
    (void)m;
    size_t len = 0;
    const void *p = mesh_request_payload(req, &len);
    fwd_batch *fb = NULL;
    int rc = fwd_batch_decode(p, len, &fb);
    if (rc != MB_OK) {
        mesh_reply(req, rc, NULL, 0);
        return;
    }
    size_t n = fwd_batch_count(fb);
    srv_batch *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->items = calloc(n, sizeof(*b->items))) == NULL ||
        (b->res = calloc(n, sizeof(*b->res))) == NULL) {
        if (b != NULL)
            free(b->items);
        free(b);
        fwd_batch_free(fb);
        mesh_reply(req, MB_ENOMEM, NULL, 0);
        return;
    }
    b->r = r;
    b->req = req;
    b->n = n;
    b->pending = n + 1; /* + this loop: no answer before every command is in */
    for (size_t i = 0; i < n; i++) {
        fwd_item it = fwd_batch_item(fb, i);
        b->items[i] = (srv_item){ .b = b, .i = i };
        consensus_result now;
        memset(&now, 0, sizeof(now));
        int rv =
            consensus_raft_propose(r->raft, it.data, it.len, srv_item_done, &b->items[i], &now);
        if (rv != MB_OK) {
            if (now.code == 0)
                now.code = rv;
            srv_item_done(&b->items[i], &now);
        }
    }
    fwd_batch_free(fb);
    srv_batch_step(b);
}

static void srv_read_done(void *arg, const consensus_result *res)
{
    void **a = arg;
    mesh_request *req = a[0];
    repl *r = a[1];
    char *name = a[2];
    free(a);
    if (res->code != MB_OK) {
        mesh_reply(req, res->code, res->msg, strlen(res->msg));
        free(name);
        return;
    }
    consensus_result rr;
    char *text = read_json(r, name, &rr);
    free(name);
    if (text == NULL) {
        mesh_reply(req, rr.code, rr.msg, strlen(rr.msg));
        return;
    }
    mesh_reply(req, MB_OK, text, strlen(text));
    free(text);
}

static void h_read(void *user, mesh *m, mesh_request *req)
{
    repl *r = user;
    (void)m;
    size_t len = 0;
    const char *p = mesh_request_payload(req, &len);
    void **a = calloc(3, sizeof(void *));
    char *name = malloc(len + 1);
    if (a == NULL || name == NULL) {
        free(a);
        free(name);
        mesh_reply(req, MB_ENOMEM, NULL, 0);
        return;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    a[0] = req;
    a[1] = r;
    a[2] = name;
    consensus_result now;
    memset(&now, 0, sizeof(now));
    int rv = consensus_raft_barrier(r->raft, srv_read_done, a, &now);
    if (rv != MB_OK) {
        free(a);
        free(name);
        mesh_reply(req, rv, now.msg, strlen(now.msg));
    }
}

/* ---- membership ---- */

static void propose_node_add(repl *r, uint64_t id, const char *raft_addr, const char *mesh_addr,
                             const char *api_addr, consensus_node_role role, consensus_done_cb cb,
                             void *arg, consensus_result *now)
{
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_NODE_ADD;
    cmd.node.id = id;
    cmd.node.raft_addr = (char *)raft_addr;
    cmd.node.mesh_addr = (char *)mesh_addr;
    cmd.node.api_addr = (char *)api_addr;
    cmd.node.role = role;
    cmd.node.status = CONSENSUS_NODE_UP;
    void *buf = NULL;
    size_t len = 0;
    mb_error e;
    mb_error_clear(&e);
    memset(now, 0, sizeof(*now));
    if (consensus_cmd_encode(&cmd, NULL, &buf, &len, &e) != MB_OK) {
        now->code = e.code;
        snprintf(now->msg, sizeof(now->msg), "%s", e.msg);
        cb(arg, now);
        return;
    }
    int rv = consensus_raft_propose(r->raft, buf, len, cb, arg, now);
    free(buf);
    if (rv != MB_OK) {
        if (now->code == 0)
            now->code = rv;
        cb(arg, now);
    }
}

static void selfreg_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    r->selfreg_inflight = 0;
    if (res->code != MB_OK && res->code != MB_EEXIST)
        rlog(r, NC_LOG_WARN, "cannot register this node in the node table", "error", res->msg);
}

static void join_srv_node_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    mesh_request *req = r->join_req;
    r->join_req = NULL;
    r->join_srv_busy = 0;
    int code = res->code == MB_EEXIST ? MB_OK : res->code;
    mesh_reply(req, code, res->msg, strlen(res->msg));
}

static void join_srv_add_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    consensus_result now;
    if (res->code != MB_OK && res->code != MB_EINVAL) {
        join_srv_node_done(r, res);
        return;
    }
    propose_node_add(r, r->join_id, r->join_raft, r->join_mesh, r->join_api,
                     res->version == 2 ? CONSENSUS_ROLE_STANDBY : CONSENSUS_ROLE_VOTER,
                     join_srv_node_done, r, &now);
}

static void h_join(void *user, mesh *m, mesh_request *req)
{
    repl *r = user;
    (void)m;
    size_t len = 0;
    const char *p = mesh_request_payload(req, &len);
    cJSON *j = cJSON_ParseWithLength(p, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "raft");
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(j, "mesh");
    const cJSON *aa = cJSON_GetObjectItemCaseSensitive(j, "api");
    if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > 9007199254740992.0 ||
        !cJSON_IsString(ra) || !cJSON_IsString(ma) || !cJSON_IsString(aa) ||
        strlen(ra->valuestring) > CONSENSUS_ADDR_MAX || strlen(ma->valuestring) > 95 ||
        strlen(aa->valuestring) > 299) {
        cJSON_Delete(j);
        mesh_reply(req, MB_EPROTO, "bad join request", 16);
        return;
    }
    uint64_t nid = (uint64_t)id->valuedouble;
    consensus_status st;
    consensus_raft_status(r->raft, &st);
    if (st.role != CONSENSUS_LEADER) {
        cJSON_Delete(j);
        mesh_reply(req, MB_ENOTLEADER, "not the leader", 14);
        return;
    }
    if (consensus_sm_node_get(consensus_raft_sm(r->raft), nid) != NULL) {
        cJSON_Delete(j);
        mesh_reply(req, MB_OK, NULL, 0);
        return;
    }
    if (r->join_srv_busy) {
        cJSON_Delete(j);
        mesh_reply(req, MB_EBUSY, "another join in progress", 24);
        return;
    }
    r->join_srv_busy = 1;
    r->join_req = req;
    r->join_id = nid;
    snprintf(r->join_mesh, sizeof(r->join_mesh), "%s", ma->valuestring);
    snprintf(r->join_api, sizeof(r->join_api), "%s", aa->valuestring);
    snprintf(r->join_raft, sizeof(r->join_raft), "%s", ra->valuestring);
    const char *raddr = r->join_raft;
    cJSON_Delete(j);
    rlog(r, NC_LOG_INFO, "adding a node to the cluster", "raft", raddr);
    consensus_result now;
    memset(&now, 0, sizeof(now));
    int rv = consensus_raft_add(r->raft, nid, raddr, join_srv_add_done, r, &now);
    if (rv != MB_OK) {
        if (now.code == 0)
            now.code = rv;
        join_srv_add_done(r, &now);
    }
}

static void join_call_done(void *user, int status, const void *payload, size_t len)
{
    repl *r = user;
    r->join_inflight = 0;
    if (status != MB_OK) {
        /* The reply's text is not NUL-terminated: copy what fits. */
        char msg[200];
        size_t n = len < sizeof(msg) - 1 ? len : sizeof(msg) - 1;
        if (n > 0)
            memcpy(msg, payload, n);
        msg[n] = '\0';
        NC_LOGKV(r->n->log, NC_LOG_DEBUG, "cluster", "join attempt failed",
                 NC_F_STR("code", mb_errname(status)), NC_F_STR("msg", msg));
    }
}

static void try_join(repl *r)
{
    consensus_status st;
    uint64_t lid = leader_of(r, &st);
    if (lid == 0 || lid == r->id || !ensure_peer(r, lid))
        return;
    char body[900];
    snprintf(body, sizeof(body), "{\"id\":%llu,\"raft\":\"%s\",\"mesh\":\"%s\",\"api\":\"%s\"}",
             (unsigned long long)r->id, r->raft_addr, r->mesh_url, r->api_addr);
    mesh_call_args a = { .peer_id = lid,
                         .method = M_JOIN,
                         .payload = body,
                         .len = strlen(body),
                         .timeout_ms = 10000,
                         .cb = join_call_done,
                         .user = r };
    mb_error e;
    mb_error_clear(&e);
    if (mesh_call(r->m, &a, NULL, &e) == MB_OK)
        r->join_inflight = 1;
}

/* ---- status ---- */

static const char *role_name(consensus_role role)
{
    switch (role) {
    case CONSENSUS_LEADER:
        return "leader";
    case CONSENSUS_FOLLOWER:
        return "follower";
    case CONSENSUS_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

static cJSON *local_status(repl *r)
{
    consensus_status st;
    consensus_raft_status(r->raft, &st);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", (double)r->id);
    cJSON_AddStringToObject(j, "raft_state", role_name(st.role));
    cJSON_AddNumberToObject(j, "term", (double)st.term);
    cJSON_AddNumberToObject(j, "leader_id", (double)st.leader_id);
    cJSON_AddNumberToObject(j, "commit_index", (double)st.commit_index);
    cJSON_AddNumberToObject(j, "applied_index", (double)st.applied_index);
    cJSON_AddNumberToObject(j, "voters", st.voters);
    cJSON_AddStringToObject(j, "api", r->api_addr);
    /* raftperf2: the write path's counters (docs/consensus.md §4) */
    cJSON_AddNumberToObject(j, "last_index", (double)st.last_index);
    cJSON_AddNumberToObject(j, "forward_batches", (double)r->stat_fwd_batches);
    cJSON_AddNumberToObject(j, "forwarded_writes", (double)r->stat_fwd_writes);
    cJSON_AddNumberToObject(j, "commit_nudges", (double)r->stat_nudges);
    /* libraft 0.15 workarounds (docs/consensus.md §4) */
    cJSON_AddNumberToObject(j, "snapshot_index", (double)st.snapshot_index);
    cJSON_AddNumberToObject(j, "snapshots_deferred", (double)st.snapshots_deferred);
    cJSON_AddNumberToObject(j, "appends_clipped", (double)st.appends_clipped);
    cJSON_AddNumberToObject(j, "aio_destroys_deferred", (double)st.aio_destroys_deferred);
    cJSON_AddNumberToObject(j, "aio_destroys_synchronous", (double)st.aio_destroys_synchronous);
    cJSON *w = cJSON_AddArrayToObject(j, "followers_watching");
    uint64_t now = uv_now(&r->n->loop);
    for (size_t i = 0; w != NULL && i < INTEREST_MAX; i++)
        if (r->interest[i].node_id != 0 && r->interest[i].until_ms > now)
            cJSON_AddItemToArray(w, cJSON_CreateNumber((double)r->interest[i].node_id));
    return j;
}

/* Fields of a node's status copied into GET /v1/cluster's node entries. */
static const char *const status_keys[] = {
    "raft_state",
    "term",
    "leader_id",
    "commit_index",
    "applied_index",
    "last_index",
    "forward_batches",
    "forwarded_writes",
    "commit_nudges",
    "followers_watching",
    "snapshot_index",
    "snapshots_deferred",
    "appends_clipped",
    "aio_destroys_deferred",
    "aio_destroys_synchronous",
};

static void h_status(void *user, mesh *m, mesh_request *req)
{
    repl *r = user;
    (void)m;
    cJSON *j = local_status(r);
    char *t = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (t == NULL) {
        mesh_reply(req, MB_ENOMEM, NULL, 0);
        return;
    }
    mesh_reply(req, MB_OK, t, strlen(t));
    free(t);
}

static void status_reply(op *o)
{
    repl *r = o->r;
    consensus_status st;
    consensus_raft_status(r->raft, &st);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "node_id", (double)r->id);
    cJSON_AddNumberToObject(j, "leader_id", (double)st.leader_id);
    cJSON_AddNumberToObject(j, "term", (double)st.term);
    cJSON_AddItemToObject(j, "nodes", o->nodes);
    o->nodes = NULL;
    char *mv = mesh_view_json(r->m);
    cJSON *mj = mv != NULL ? cJSON_Parse(mv) : NULL;
    free(mv);
    cJSON_AddItemToObject(j, "mesh", mj != NULL ? mj : cJSON_CreateNull());
    api_call *c = o->call;
    o->call = NULL;
    api_reply_json(c, 200, j);
}

static void status_rpc_done(void *user, int status, const void *payload, size_t len)
{
    void **a = user;
    op *o = a[0];
    cJSON *entry = a[1];
    free(a);
    cJSON *s = status == MB_OK ? cJSON_ParseWithLength(payload, len) : NULL;
    if (s != NULL) {
        for (size_t i = 0; i < sizeof(status_keys) / sizeof(status_keys[0]); i++) {
            cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(s, status_keys[i]);
            if (it != NULL)
                cJSON_AddItemToObject(entry, status_keys[i], it);
        }
        cJSON_AddBoolToObject(entry, "reachable", 1);
        cJSON_Delete(s);
    } else {
        cJSON_AddBoolToObject(entry, "reachable", 0);
        cJSON_AddStringToObject(entry, "error", mb_errname(status));
    }
    if (--o->waiting == 0 && o->call != NULL) {
        o->inflight = 0;
        status_reply(o);
    }
    if (o->waiting == 0) {
        o->inflight = 0;
        op_free(o);
    }
}

static void status_done_unused(node *n, api_call *c, const consensus_result *res, const char *json,
                               void *arg)
{
    (void)n;
    (void)json;
    (void)arg;
    api_reply_error(c, res->code, "%s", res->msg);
}

void repl_cluster_status(repl *r, api_call *c)
{
    op *o = op_start(r, c, OP_STATUS, status_done_unused, NULL);
    if (o == NULL)
        return;
    const consensus_sm *sm = consensus_raft_sm(r->raft);
    o->nodes = cJSON_CreateArray();
    int self_listed = 0;
    size_t count = consensus_sm_node_count(sm);
    for (size_t i = 0; i <= count; i++) {
        const consensus_node *cn = i < count ? consensus_sm_node_at(sm, i) : NULL;
        if (cn == NULL && self_listed)
            break;
        uint64_t id = cn != NULL ? cn->id : r->id;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", (double)id);
        if (cn != NULL) {
            cJSON_AddStringToObject(e, "role",
                                    cn->role == CONSENSUS_ROLE_VOTER ? "voter" : "standby");
            cJSON_AddStringToObject(e, "mesh", cn->mesh_addr != NULL ? cn->mesh_addr : "");
            cJSON_AddStringToObject(e, "api", cn->api_addr != NULL ? cn->api_addr : "");
        } else {
            cJSON_AddStringToObject(e, "role", "joining");
        }
        fd_peer_view pv;
        if (id != r->id && mesh_peer(r->m, id, &pv) == MB_OK)
            cJSON_AddStringToObject(e, "detector", cluster_peer_status_name(pv.status));
        cJSON_AddItemToArray(o->nodes, e);
        if (id == r->id) {
            self_listed = 1;
            cJSON *s = local_status(r);
            for (size_t k = 0; k < sizeof(status_keys) / sizeof(status_keys[0]); k++) {
                cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(s, status_keys[k]);
                if (it != NULL)
                    cJSON_AddItemToObject(e, status_keys[k], it);
            }
            cJSON_AddBoolToObject(e, "reachable", 1);
            cJSON_Delete(s);
            continue;
        }
        void **a = calloc(2, sizeof(void *));
        mesh_call_args ca = {
            .peer_id = id, .method = M_STATUS, .timeout_ms = STATUS_RPC_MS, .cb = status_rpc_done
        };
        mb_error err;
        mb_error_clear(&err);
        if (a == NULL || !ensure_peer(r, id)) {
            free(a);
            cJSON_AddBoolToObject(e, "reachable", 0);
            continue;
        }
        a[0] = o;
        a[1] = e;
        ca.user = a;
        if (mesh_call(r->m, &ca, NULL, &err) != MB_OK) {
            free(a);
            cJSON_AddBoolToObject(e, "reachable", 0);
            continue;
        }
        o->waiting++;
        o->inflight = 1;
    }
    if (o->waiting == 0) {
        status_reply(o);
        op_free(o);
    }
}

/* ---- leave ---- */

static void leave_srv_done(void *arg, const consensus_result *res)
{
    mesh_request *req = arg;
    mesh_reply(req, res->code, res->msg, strlen(res->msg));
}

static void leave_srv_removed(void *arg, const consensus_result *res)
{
    void **a = arg;
    mesh_request *req = a[0];
    repl *r = a[1];
    uint64_t id = (uint64_t)(uintptr_t)a[2];
    free(a);
    if (res->code != MB_OK && res->code != MB_EINVAL) {
        leave_srv_done(req, res);
        return;
    }
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_NODE_REMOVE;
    cmd.node.id = id;
    void *buf = NULL;
    size_t len = 0;
    mb_error e;
    mb_error_clear(&e);
    consensus_result now;
    memset(&now, 0, sizeof(now));
    if (consensus_cmd_encode(&cmd, NULL, &buf, &len, &e) != MB_OK) {
        mesh_reply(req, e.code, e.msg, strlen(e.msg));
        return;
    }
    int rv = consensus_raft_propose(r->raft, buf, len, leave_srv_done, req, &now);
    free(buf);
    if (rv != MB_OK)
        mesh_reply(req, rv, now.msg, strlen(now.msg));
}

static void h_leave(void *user, mesh *m, mesh_request *req)
{
    repl *r = user;
    (void)m;
    uint64_t id = mesh_request_sender(req);
    void **a = calloc(3, sizeof(void *));
    if (a == NULL) {
        mesh_reply(req, MB_ENOMEM, NULL, 0);
        return;
    }
    a[0] = req;
    a[1] = r;
    a[2] = (void *)(uintptr_t)id;
    consensus_result now;
    memset(&now, 0, sizeof(now));
    int rv = consensus_raft_remove(r->raft, id, leave_srv_removed, a, &now);
    if (rv != MB_OK) {
        free(a);
        mesh_reply(req, rv, now.msg, strlen(now.msg));
    }
}

static void stop_cb(uv_timer_t *t)
{
    node *n = t->data;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    node_stop(n);
}

static void leave_call_done(void *user, int status, const void *payload, size_t len)
{
    op *o = user;
    consensus_result res;
    memset(&res, 0, sizeof(res));
    res.code = status;
    snprintf(res.msg, sizeof(res.msg), "%.*s", (int)(len < 255 ? len : 255),
             payload != NULL ? (const char *)payload : "");
    if (status == MB_OK && o->call != NULL) {
        repl *r = o->r;
        o->inflight = 0;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "node_id", (double)r->id);
        cJSON_AddStringToObject(j, "status", "left");
        api_call *c = o->call;
        o->call = NULL;
        api_reply_json(c, 200, j);
        op_free(o);
        uv_timer_t *t = malloc(sizeof(*t));
        if (t != NULL && uv_timer_init(&r->n->loop, t) == 0) {
            t->data = r->n;
            uv_timer_start(t, stop_cb, 50, 0);
        } else {
            free(t);
        }
        return;
    }
    op_result(o, &res, NULL);
}

static void leave_attempt(op *o)
{
    repl *r = o->r;
    consensus_status st;
    uint64_t lid = leader_of(r, &st);
    o->retry_at = uv_now(&r->n->loop) + 100;
    if (st.role == CONSENSUS_LEADER) {
        if (st.voters <= 1) {
            o->retry_at = 0;
            op_fail_now(o, MB_ESTATE, "the only voter cannot leave; stop the node instead");
            return;
        }
        consensus_result now;
        consensus_raft_transfer(r->raft, 0, NULL, NULL, &now);
        snprintf(o->last, sizeof(o->last), "transferring leadership");
        return;
    }
    if (lid == 0 || lid == r->id || !ensure_peer(r, lid))
        return;
    mesh_call_args a = {
        .peer_id = lid, .method = M_LEAVE, .timeout_ms = 3000, .cb = leave_call_done, .user = o
    };
    mb_error e;
    mb_error_clear(&e);
    if (mesh_call(r->m, &a, NULL, &e) == MB_OK) {
        o->inflight = 1;
        o->retry_at = 0;
    }
}

static void leave_done_unused(node *n, api_call *c, const consensus_result *res, const char *json,
                              void *arg)
{
    (void)n;
    (void)json;
    (void)arg;
    api_reply_error(c, res->code, "leave: %s", res->msg);
}

void repl_leave(repl *r, api_call *c)
{
    op *o = op_start(r, c, OP_LEAVE, leave_done_unused, NULL);
    if (o == NULL)
        return;
    leave_attempt(o);
}

/* ---- standby promotion (leader) ---- */

static void promote_node_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    r->promote_inflight = 0;
    if (res->code != MB_OK)
        rlog(r, NC_LOG_WARN, "cannot record a promotion", "error", res->msg);
}

/* Record node `id`'s new raft role in the replicated nodes table (after
 * raft's own configuration change succeeded); `done` gets the result. */
static int propose_role(repl *r, uint64_t id, consensus_node_role role, consensus_done_cb done)
{
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_NODE_UPDATE;
    cmd.node.id = id;
    cmd.node.role = role;
    cmd.node_fields = CONSENSUS_NODE_SET_ROLE;
    void *buf = NULL;
    size_t len = 0;
    mb_error e;
    mb_error_clear(&e);
    consensus_result now;
    memset(&now, 0, sizeof(now));
    int rc = consensus_cmd_encode(&cmd, NULL, &buf, &len, &e);
    if (rc == MB_OK)
        rc = consensus_raft_propose(r->raft, buf, len, done, r, &now);
    free(buf);
    return rc;
}

static void promote_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    if (res->code != MB_OK || r->closing) {
        r->promote_inflight = 0;
        return;
    }
    NC_LOGKV(r->n->log, NC_LOG_INFO, "cluster", "standby promoted to voter",
             NC_F_U64("id", r->promote_id));
    if (propose_role(r, r->promote_id, CONSENSUS_ROLE_VOTER, promote_node_done) != MB_OK)
        r->promote_inflight = 0;
}

/* Leader: fewer voters than max_voters and a live standby: promote it. */
static void maybe_promote(repl *r, const consensus_status *st)
{
    unsigned max = (unsigned)nc_config_int(r->n->cfg, NC_CFG_MAX_VOTERS);
    if (r->promote_inflight || r->demote_inflight || st->voters >= max || r->join_srv_busy)
        return;
    const consensus_sm *sm = consensus_raft_sm(r->raft);
    for (size_t i = 0; i < consensus_sm_node_count(sm); i++) {
        const consensus_node *cn = consensus_sm_node_at(sm, i);
        fd_peer_view pv;
        if (cn->role != CONSENSUS_ROLE_STANDBY || cn->id == r->id ||
            mesh_peer(r->m, cn->id, &pv) != MB_OK || pv.status != CLUSTER_PEER_ALIVE)
            continue;
        consensus_result now;
        memset(&now, 0, sizeof(now));
        r->promote_id = cn->id;
        r->promote_inflight = 1;
        if (consensus_raft_promote(r->raft, cn->id, promote_done, r, &now) != MB_OK)
            r->promote_inflight = 0;
        return;
    }
}

/* ---- dead voter replacement (leader; raft-perf, membership edges) ---- */

static void demote_node_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    r->demote_inflight = 0;
    if (res->code != MB_OK)
        rlog(r, NC_LOG_WARN, "cannot record a demotion", "error", res->msg);
}

static void demote_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    if (res->code != MB_OK || r->closing) {
        if (res->code != MB_OK)
            rlog(r, NC_LOG_WARN, "cannot demote a dead voter", "error", res->msg);
        r->demote_inflight = 0;
        return;
    }
    NC_LOGKV(r->n->log, NC_LOG_WARN, "cluster", "dead voter demoted to standby",
             NC_F_U64("id", r->demote_id));
    if (propose_role(r, r->demote_id, CONSENSUS_ROLE_STANDBY, demote_node_done) != MB_OK)
        r->demote_inflight = 0;
}

/* Leader: a voter the failure detector has shown down for at least
 * voter_replace_after, while a live standby exists, is demoted to standby;
 * maybe_promote then promotes the standby (voters back to max_voters).
 * Demoting first keeps every step a single raft configuration change. The
 * "down since" clock is this leader's own: a new leader starts it anew. */
static void maybe_replace_dead_voter(repl *r)
{
    int64_t after = nc_config_duration_ms(r->n->cfg, NC_CFG_VOTER_REPLACE_AFTER);
    if (after <= 0 || r->promote_inflight || r->demote_inflight || r->join_srv_busy)
        return;
    const consensus_sm *sm = consensus_raft_sm(r->raft);
    uint64_t now = uv_now(&r->n->loop);
    int live_standby = 0;
    uint64_t victim = 0;
    unsigned n_down = 0;
    struct down_voter down[sizeof(r->down_voters) / sizeof(r->down_voters[0])];
    for (size_t i = 0; i < consensus_sm_node_count(sm); i++) {
        const consensus_node *cn = consensus_sm_node_at(sm, i);
        fd_peer_view pv;
        if (cn->id == r->id || mesh_peer(r->m, cn->id, &pv) != MB_OK)
            continue;
        if (cn->role == CONSENSUS_ROLE_STANDBY) {
            live_standby |= pv.status == CLUSTER_PEER_ALIVE;
            continue;
        }
        if (pv.status != CLUSTER_PEER_DOWN || n_down == sizeof(down) / sizeof(down[0]))
            continue;
        down[n_down].id = cn->id;
        down[n_down].since_ms = now;
        for (unsigned k = 0; k < r->n_down_voters; k++)
            if (r->down_voters[k].id == cn->id)
                down[n_down].since_ms = r->down_voters[k].since_ms;
        if (victim == 0 && now - down[n_down].since_ms >= (uint64_t)after)
            victim = cn->id;
        n_down++;
    }
    memcpy(r->down_voters, down, n_down * sizeof(down[0]));
    r->n_down_voters = n_down;
    if (victim == 0 || !live_standby)
        return;
    consensus_result res;
    memset(&res, 0, sizeof(res));
    NC_LOGKV(r->n->log, NC_LOG_WARN, "cluster", "demoting a voter that has been down too long",
             NC_F_U64("id", victim));
    r->demote_id = victim;
    r->demote_inflight = 1;
    if (consensus_raft_demote(r->raft, victim, demote_done, r, &res) != MB_OK) {
        r->demote_inflight = 0;
        rlog(r, NC_LOG_WARN, "cannot demote a dead voter", "error", res.msg);
    }
}

/* ---- tick ---- */

static void tick_body(repl *r);

static void tick_cb(uv_timer_t *t)
{
    repl *r = t->data;
    tick_body(r);
    if (r->tick_ms == SLOW_TICK_MS && r->tick_open && !r->closing &&
        !uv_is_active((uv_handle_t *)&r->tick))
        uv_timer_start(&r->tick, tick_cb, node_aligned_delay(&r->n->loop, SLOW_TICK_MS), 0);
}

static void tick_body(repl *r)
{
    uint64_t now = uv_now(&r->n->loop);
    for (op *o = r->ops, *next; o != NULL; o = next) {
        next = o->next;
        if (o->scb != NULL && now >= o->deadline) {
            op_expire_internal(o, MB_ENOQUORUM);
            continue;
        }
        if (o->inflight || !op_waiting(o))
            continue;
        if (o->finished) {
            if (r->applied >= o->res.version) {
                op_finish(o, NULL);
                if (op_idle(o))
                    op_free(o);
            }
            continue;
        }
        if (o->retry_at != 0 && now >= o->retry_at) {
            if (o->kind == OP_LEAVE)
                leave_attempt(o);
            else if (o->kind == OP_WRITE || o->kind == OP_READ)
                op_attempt(o);
        }
    }
    interest_tick(r, now);
    tick_set(r, r->ops != NULL ? TICK_MS : SLOW_TICK_MS);
    if (r->tick_ms != SLOW_TICK_MS && now - r->last_slow < SLOW_TICK_MS)
        return;
    r->last_slow = now;
    const consensus_sm *sm = consensus_raft_sm(r->raft);
    int member = consensus_sm_node_get(sm, r->id) != NULL;
    consensus_status st;
    consensus_raft_status(r->raft, &st);
    if (!member && st.role == CONSENSUS_LEADER && !r->selfreg_inflight && !r->leaving) {
        consensus_result res;
        r->selfreg_inflight = 1;
        char *raft_addr = r->raft_addr;
        propose_node_add(r, r->id, raft_addr, r->mesh_url, r->api_addr, CONSENSUS_ROLE_VOTER,
                         selfreg_done, r, &res);
    } else if (!member && st.role != CONSENSUS_LEADER && r->has_seeds && !r->join_inflight) {
        try_join(r);
    } else if (st.role == CONSENSUS_LEADER && !r->closing) {
        maybe_promote(r, &st);
        maybe_replace_dead_voter(r);
    } else {
        r->n_down_voters = 0; /* the clock restarts with the next term as leader */
    }
}

/* ---- raft and mesh callbacks ---- */

uint64_t repl_event_seq(uint64_t index, size_t i, const char *type)
{
    /* partition suite: the marker of a snapshot install takes the entry's
     * last slot, so it never has the seq of that entry's own first event
     * on the nodes that applied it. */
    if (type != NULL && strcmp(type, "state.restore") == 0)
        i = REPL_SEQ_PER_ENTRY - 1;
    return index * REPL_SEQ_PER_ENTRY + (i < REPL_SEQ_PER_ENTRY ? i : REPL_SEQ_PER_ENTRY - 1);
}

/* raft-perf: writes whose result is known and that waited for the local
 * apply (forwarded from this follower) are answered as soon as it
 * happened, not at the next tick. */
static void answer_applied_ops(repl *r)
{
    for (op *o = r->ops, *next; o != NULL; o = next) {
        next = o->next;
        if (o->inflight || !op_waiting(o) || !o->finished || r->applied < o->res.version)
            continue;
        op_finish(o, NULL);
        if (op_idle(o))
            op_free(o);
    }
}

/* Write the queued events and the applied index in one storage batch, then
 * wake the watchers of the variables they changed. */
static void flush_events(repl *r)
{
    if (!r->evq_dirty)
        return;
    node *n = r->n;
    uint64_t be = 0;
    for (int i = 0; i < 8; i++)
        ((unsigned char *)&be)[i] = (unsigned char)(r->evq_index >> (56 - 8 * i));
    mb_error err;
    mb_error_clear(&err);
    uint64_t t0 = uv_hrtime();
    if (storage_append_meta(n->store, r->evq, r->evq_n, META_APPLIED, &be, sizeof(be), &err) !=
        MB_OK)
        rlog(r, NC_LOG_ERROR, "cannot append replicated events", "error", err.msg);
    nc_hist_record(n->event_log_append, uv_hrtime() - t0);
    for (size_t i = 0; i < r->evq_n; i++)
        free((void *)r->evq[i].type); /* one block per event */
    r->evq_n = 0;
    r->evq_dirty = 0;
    if (r->evq_handles && r->fwdq_n == 0)
        uv_idle_stop(&r->evq_idle);
    /* Notify after the write: a watcher reads the log. Take the list
     * first: a notification may answer calls that apply nothing, but keep
     * the list consistent anyway. */
    size_t wn = r->wq_n;
    r->wq_n = 0;
    for (size_t i = 0; i < wn; i++) {
        char *name = r->wq[i].name;
        int dup = 0;
        for (size_t k = 0; k < i && !dup; k++)
            dup = r->wq[k].name != NULL && strcmp(r->wq[k].name, name) == 0;
        if (!dup)
            api_vars_notify(n, name, 0);
    }
    for (size_t i = 0; i < wn; i++)
        free(r->wq[i].name);
    answer_applied_ops(r);
}

int repl_log_query(repl *r, const struct storage_query *q, storage_event_cb cb, void *arg,
                   uint64_t *next_cursor, mb_error *err)
{
    flush_events(r);
    return node_log_query(r->n->store, 1, q, cb, arg, next_cursor, err);
}

/* Once per loop iteration (and before the loop would block): forwards
 * queued in this iteration go out, then the applied entries' events. */
static void loop_flush(repl *r)
{
    flush_forwards(r);
    flush_events(r);
    if (r->evq_handles && !r->evq_dirty && r->fwdq_n == 0)
        uv_idle_stop(&r->evq_idle);
}

static void evq_check_cb(uv_check_t *h)
{
    repl *r = h->data;
    loop_flush(r);
    /* idle: watchers that appeared, or a new leader, are told to the
     * leader within INTEREST_CHECK_MS of the loop's next wake-up, not at
     * the next (slow) tick */
    uint64_t now = uv_now(&r->n->loop);
    if (now - r->interest_checked_ms >= INTEREST_CHECK_MS && !r->interest_inflight) {
        r->interest_checked_ms = now;
        interest_tick(r, now);
    }
}

static void evq_idle_cb(uv_idle_t *h)
{
    loop_flush(h->data);
}

/* Queue one event (strings copied into one block owned by the queue). */
static int evq_push(repl *r, uint64_t seq, const char *type, const char *subject,
                    const char *payload, int64_t now)
{
    if (r->evq_n == r->evq_cap) {
        size_t ncap = r->evq_cap != 0 ? r->evq_cap * 2 : 64;
        storage_event *ne = realloc(r->evq, ncap * sizeof(*ne));
        if (ne == NULL)
            return MB_ENOMEM;
        r->evq = ne;
        r->evq_cap = ncap;
    }
    size_t tl = strlen(type) + 1, sl = strlen(subject) + 1;
    size_t pl = payload != NULL ? strlen(payload) : 0;
    char *blk = malloc(tl + sl + pl + 1);
    if (blk == NULL)
        return MB_ENOMEM;
    memcpy(blk, type, tl);
    memcpy(blk + tl, subject, sl);
    if (pl > 0)
        memcpy(blk + tl + sl, payload, pl);
    blk[tl + sl + pl] = '\0';
    r->evq[r->evq_n++] = (storage_event){
        .seq = seq,
        .type = blk,
        .subject = blk + tl,
        .time_ms = now,
        .payload = pl > 0 ? blk + tl + sl : NULL,
        .payload_len = pl,
    };
    return MB_OK;
}

static void on_effects(void *arg, uint64_t index, const consensus_effects *fx)
{
    repl *r = arg;
    int64_t now = node_wall_ms();
    int study = 0;
    /* One pass over the effects (raftperf2). Events of consecutive entries
     * join one storage batch: the sequence order is the index order, so
     * the batch stays increasing. */
    for (size_t i = 0; i < fx->n; i++) {
        const consensus_effect *e = &fx->items[i];
        if (e->kind == CONSENSUS_FX_EVENT) {
            uint64_t seq = repl_event_seq(index, i, e->type);
            if (evq_push(r, seq, e->type, e->subject != NULL ? e->subject : "", e->payload, now) !=
                MB_OK) {
                /* Out of memory: write what we have, then this one alone. */
                flush_events(r);
                storage_event one = { .seq = seq,
                                      .type = e->type,
                                      .subject = e->subject != NULL ? e->subject : "",
                                      .time_ms = now,
                                      .payload = e->payload,
                                      .payload_len = e->payload != NULL ? strlen(e->payload) : 0 };
                mb_error err;
                mb_error_clear(&err);
                if (storage_append(r->n->store, &one, 1, &err) != MB_OK)
                    rlog(r, NC_LOG_ERROR, "cannot append replicated events", "error", err.msg);
            }
            if (e->type != NULL &&
                (strncmp(e->type, "trial.", 6) == 0 || strncmp(e->type, "study.", 6) == 0))
                study = 1;
        } else if (e->kind == CONSENSUS_FX_WATCH && e->subject != NULL) {
            if (r->wq_n == r->wq_cap) {
                size_t ncap = r->wq_cap != 0 ? r->wq_cap * 2 : 16;
                struct watch_note *nw = realloc(r->wq, ncap * sizeof(*nw));
                if (nw != NULL) {
                    r->wq = nw;
                    r->wq_cap = ncap;
                }
            }
            if (r->wq_n < r->wq_cap && (r->wq[r->wq_n].name = strdup(e->subject)) != NULL)
                r->wq_n++;
            /* Agents' watches read the state machine, not the event log: now. */
            node_cluster_var_changed(r->n->cluster, e->subject, e->version);
        }
    }
    if (index > r->evq_index)
        r->evq_index = index;
    if (!r->evq_dirty && r->evq_handles)
        uv_idle_start(&r->evq_idle, evq_idle_cb);
    r->evq_dirty = 1;
    if (index > r->applied)
        r->applied = index;
    if (study)
        studies_notify(r->n);                              /* piece "studies" */
    node_proposals_on_effects(r->n->proposals, index, fx); /* proposals piece */
    node_coord_effects(r->n, fx);                          /* coordination (piece: agents/coord) */
    if (!r->evq_handles)
        flush_events(r); /* before the loop handles exist (restore at open) */
}

/* piece "studies" */
uint64_t repl_node_id(const repl *r)
{
    return r->id;
}

uint64_t repl_peer_changes(const repl *r)
{
    return r->m != NULL ? mesh_status_changes(r->m) : 0;
}

int repl_peer_status(const repl *r, uint64_t node_id)
{
    fd_peer_view pv;
    if (node_id == r->id)
        return CLUSTER_PEER_ALIVE;
    if (r->m == NULL || mesh_peer(r->m, node_id, &pv) != MB_OK)
        return -1;
    return (int)pv.status;
}

static void on_status(void *arg, const consensus_status *st)
{
    repl *r = arg;
    if (r->m != NULL)
        mesh_set_leader(r->m, st->term, st->role == CONSENSUS_LEADER ? r->id : st->leader_id);
    if (st->applied_index > r->applied)
        r->applied = st->applied_index;
    /* Forwards to a node that is no longer the leader: retry now at the new
     * one (same idempotency id) instead of waiting for their timeout. The
     * new leader may be this node: the retry then proposes here. */
    if (st->leader_id != 0) {
        for (op *o = r->ops; o != NULL; o = o->next)
            if (o->inflight && o->fwd_to != 0 && o->fwd_to != st->leader_id &&
                (o->kind == OP_WRITE || o->kind == OP_READ)) {
                o->inflight = 0;
                o->gen++;
                o->unknown = o->kind == OP_WRITE;
                o->retry_at = uv_now(&r->n->loop) + 1;
            }
    }
    NC_LOGKV(r->n->log, NC_LOG_INFO, "cluster", "raft state", NC_F_STR("role", role_name(st->role)),
             NC_F_U64("term", st->term), NC_F_U64("leader", st->leader_id));
}

/* ---- placement accessors ---- */

void repl_raft_status(repl *r, consensus_status *out)
{
    consensus_raft_status(r->raft, out);
}

static void mesh_log(void *user, int level, const char *msg)
{
    repl *r = user;
    nc_log_level lvl = (nc_log_level)(level + 1);
    NC_LOGKV(r->n->log, lvl, "mesh", msg, NC_F_U64("node", r->id));
}

static void mesh_agent_message(void *user, uint64_t from_node, const char *from_agent,
                               const char *to_agent, const void *payload, size_t len)
{
    repl *r = user;
    node_cluster_agent_message(r->n->cluster, from_node, from_agent, to_agent, payload, len);
}

/* ---- open / close ---- */

static int mkdir_p(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

int repl_open(node *n, mb_error *err)
{
    int rv;
    char raft_dir[4300], listen[300], seeds[4096], secret[512];
    repl *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return mb_errorf(err, MB_ENOMEM, "out of memory");
    r->n = n;
    r->id = n->node_id;
    r->write_timeout_ms = nc_config_duration_ms(n->cfg, NC_CFG_WRITE_TIMEOUT);
    nc_config_get_text(n->cfg, NC_CFG_RAFT_ADDRESS, r->raft_addr, sizeof(r->raft_addr));
    nc_config_get_text(n->cfg, NC_CFG_MESH_ADDRESS, listen, sizeof(listen));
    snprintf(r->mesh_url, sizeof(r->mesh_url), "tcp://%s", listen);
    snprintf(r->api_addr, sizeof(r->api_addr), "%s", n->http_addr);
    nc_config_get_text(n->cfg, NC_CFG_SEEDS, seeds, sizeof(seeds));
    nc_config_get_text(n->cfg, NC_CFG_CLUSTER_SECRET, secret, sizeof(secret));
    r->has_seeds = seeds[0] != '\0';
    if (getrandom(&r->client_id, sizeof(r->client_id), 0) != sizeof(r->client_id))
        r->client_id = (uint64_t)node_wall_ms() * 2654435761u;
    r->client_id &= ~(1ull << 63);
    r->client_id |= 1;

    size_t secret_len = strlen(secret);
    if (secret_len == 0 && r->has_seeds) {
        rv = mb_errorf(err, MB_EINVAL, "cluster_secret is required to join through seeds");
        goto fail;
    }
    if (secret_len == 0) {
        /* A one-node cluster nobody can join: a random secret. */
        unsigned char rnd[24];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
            rv = mb_errorf(err, MB_EIO, "getrandom failed");
            goto fail;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(secret + 2 * i, 3, "%02x", rnd[i]);
        secret_len = strlen(secret);
    } else if (secret_len < 16) {
        rv = mb_errorf(err, MB_EINVAL, "cluster_secret must have at least 16 characters");
        goto fail;
    }

    snprintf(raft_dir, sizeof(raft_dir), "%s/raft", n->data_dir);
    if (mkdir_p(raft_dir) != 0) {
        rv = mb_errorf(err, MB_EIO, "create %s: %s", raft_dir, strerror(errno));
        goto fail;
    }
    uint64_t skip = 0;
    void *meta = NULL;
    size_t meta_len = 0;
    if (storage_meta_get(n->store, META_APPLIED, &meta, &meta_len, err) == MB_OK && meta != NULL &&
        meta_len == 8) {
        for (int i = 0; i < 8; i++)
            skip = skip << 8 | ((unsigned char *)meta)[i];
    }
    free(meta);
    mb_error_clear(err);
    r->applied = skip;

    int64_t election = nc_config_duration_ms(n->cfg, NC_CFG_ELECTION_TIMEOUT);
    consensus_peer self = { .id = r->id, .address = r->raft_addr };
    consensus_raft_config rc = {
        .id = r->id,
        .address = r->raft_addr,
        .data_dir = raft_dir,
        .peers = r->has_seeds ? NULL : &self,
        .n_peers = r->has_seeds ? 0 : 1,
        .election_timeout_ms = (unsigned)election,
        /* A quarter: a follower's timeout (one to two election timeouts)
         * still spans four heartbeats, and an idle node wakes for raft a
         * third less often than at a sixth (docs/BENCHMARKS.md, suite
         * `cluster`, session 7). Followers learn the commit index of an
         * idle write with the next heartbeat unless someone there waits
         * for it (commit nudges, docs/consensus.md §4). */
        .heartbeat_timeout_ms = (unsigned)(election / 4 > 10 ? election / 4 : 10),
        .quorum_timeout_ms = (unsigned)r->write_timeout_ms,
        .monitor_interval_ms = 20,
        .max_voters = (unsigned)nc_config_int(n->cfg, NC_CFG_MAX_VOTERS),
        .snapshot_threshold = (unsigned)nc_config_int(n->cfg, NC_CFG_SNAPSHOT_THRESHOLD),
        .snapshot_trailing = (unsigned)nc_config_int(n->cfg, NC_CFG_SNAPSHOT_TRAILING),
        .snapshot_max_bytes = nc_config_size_bytes(n->cfg, NC_CFG_SNAPSHOT_MAX_BYTES),
        .sync_aio_destroy = !nc_config_bool(n->cfg, NC_CFG_RAFT_DEFER_AIO_DESTROY),
        .on_effects = on_effects,
        .effects_arg = r,
        .skip_effects_through = skip,
        .on_status = on_status,
        .status_arg = r,
    };
    if ((rv = consensus_raft_init(&n->loop, &rc, &r->raft, err)) != MB_OK)
        goto fail;
    consensus_raft_on_append_result(r->raft, nudge_on_append_result, r);

    const char *seed_urls[32];
    char seed_buf[32][300];
    size_t n_seeds = 0;
    for (char *save = NULL, *tok = strtok_r(seeds, ", ", &save); tok != NULL && n_seeds < 32;
         tok = strtok_r(NULL, ", ", &save)) {
        snprintf(seed_buf[n_seeds], sizeof(seed_buf[n_seeds]), "tcp://%s", tok);
        seed_urls[n_seeds] = seed_buf[n_seeds];
        n_seeds++;
    }
    int64_t hb = nc_config_duration_ms(n->cfg, NC_CFG_HEARTBEAT_INTERVAL);
    int64_t down = nc_config_duration_ms(n->cfg, NC_CFG_FAILURE_TIMEOUT);
    mesh_config mc = {
        .node_id = r->id,
        .listen_url = r->mesh_url,
        .secret = secret,
        .secret_len = secret_len,
        .seeds = n_seeds > 0 ? seed_urls : NULL,
        .n_seeds = n_seeds,
        .heartbeat_interval_ms = (uint32_t)hb,
        /* suspect after half the failure timeout, but not before 2.5
         * heartbeat intervals (one late heartbeat is no suspicion) */
        .suspect_after_ms = (uint32_t)(down / 2 > hb * 5 / 2   ? down / 2
                                       : hb * 5 / 2 < down - 1 ? hb * 5 / 2
                                                               : down - 1),
        .down_after_ms = (uint32_t)down,
        .down_connected_after_ms =
            (uint32_t)nc_config_duration_ms(n->cfg, NC_CFG_UNRESPONSIVE_TIMEOUT),
        .log_level = MESH_LOG_INFO,
        .cb = { .user = r, .log = mesh_log, .agent_message = mesh_agent_message },
    };
    rv = mesh_open(&n->loop, &mc, &r->m, err);
    memset(secret, 0, sizeof(secret));
    if (rv != MB_OK) {
        consensus_raft_close(r->raft, NULL, NULL);
        n->raft_spent = r->raft;
        r->raft = NULL;
        goto fail;
    }
    mesh_register(r->m, M_PROPOSE_BATCH, h_propose_batch, r);
    mesh_register(r->m, M_WATCHING, h_watching, r);
    mesh_register(r->m, M_READ, h_read, r);
    mesh_register(r->m, M_JOIN, h_join, r);
    mesh_register(r->m, M_STATUS, h_status, r);
    mesh_register(r->m, M_LEAVE, h_leave, r);
    if ((rv = consensus_raft_start(r->raft, err)) != MB_OK) {
        mesh_close(r->m, NULL, NULL);
        consensus_raft_close(r->raft, NULL, NULL);
        n->raft_spent = r->raft;
        goto fail;
    }
    uv_check_init(&n->loop, &r->evq_check);
    r->evq_check.data = r;
    uv_idle_init(&n->loop, &r->evq_idle);
    r->evq_idle.data = r;
    uv_check_start(&r->evq_check, evq_check_cb);
    r->evq_handles = 2;
    uv_timer_init(&n->loop, &r->tick);
    r->tick.data = r;
    r->tick_open = 1;
    tick_set(r, TICK_MS);
    n->repl = r;
    NC_LOGKV(n->log, NC_LOG_INFO, "cluster", "raft and mesh started", NC_F_U64("id", r->id),
             NC_F_STR("raft", r->raft_addr), NC_F_STR("mesh", r->mesh_url),
             NC_F_STR("mode", r->has_seeds ? "join" : "bootstrap"));
    return MB_OK;
fail:
    free(r);
    return rv;
}

static void repl_free(repl *r)
{
    while (r->ops != NULL) {
        r->ops->call = NULL;
        r->ops->scb = NULL;
        op_free(r->ops);
    }
    r->n->repl = NULL;
    r->n->raft_spent = r->raft; /* node_close frees it once the loop is done */
    free(r->evq);
    free(r->wq);
    free(r->fwdq);
    free(r);
}

static void maybe_free(repl *r)
{
    if (r->raft_closed && !r->tick_open && r->evq_handles == 0)
        repl_free(r);
}

static void tick_closed(uv_handle_t *h)
{
    repl *r = h->data;
    r->tick_open = 0;
    maybe_free(r);
}

static void evq_closed(uv_handle_t *h)
{
    repl *r = h->data;
    r->evq_handles--;
    maybe_free(r);
}

static void mesh_closed(void *user)
{
    repl *r = user;
    r->raft_closed = 1;
    maybe_free(r);
}

static void raft_closed(void *arg)
{
    repl *r = arg;
    /* Nothing is applied any more: write what is queued, then close. */
    flush_events(r);
    uv_close((uv_handle_t *)&r->evq_check, evq_closed);
    uv_close((uv_handle_t *)&r->evq_idle, evq_closed);
    mesh_close(r->m, mesh_closed, r);
}

static void transfer_done(void *arg, const consensus_result *res)
{
    repl *r = arg;
    (void)res;
    consensus_raft_close(r->raft, raft_closed, r);
}

void repl_close(repl *r)
{
    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    if (r->nudge_timer != NULL) {
        uv_close((uv_handle_t *)r->nudge_timer, (uv_close_cb)free);
        r->nudge_timer = NULL;
    }
    /* Forwards not sent yet end now (their ops are answered below or
     * when their calls expire). */
    size_t nq = r->fwdq_n;
    r->fwdq_n = 0;
    for (size_t i = 0; i < nq; i++)
        fwd_item_failed(&r->fwdq[i], MB_ECLOSED, "node is shutting down");
    /* Internal submitters learn now; their ops' raft/mesh callbacks still
     * come (op_idle frees them then). */
    for (op *o = r->ops, *next; o != NULL; o = next) {
        next = o->next;
        if (o->scb != NULL)
            op_expire_internal(o, MB_ECLOSED);
    }
    uv_close((uv_handle_t *)&r->tick, tick_closed);
    consensus_status st;
    consensus_raft_status(r->raft, &st);
    if (st.role == CONSENSUS_LEADER && st.voters > 1) {
        consensus_result now;
        if (consensus_raft_transfer(r->raft, 0, transfer_done, r, &now) == MB_OK) {
            rlog(r, NC_LOG_INFO, "leader stopping: transferring leadership", "id", "");
            return;
        }
    }
    consensus_raft_close(r->raft, raft_closed, r);
}
