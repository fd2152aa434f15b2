/* node/placement.c: cluster agents on this node (see placement.h and
 * docs/operations.md "Failover, drain and fencing"). */
#include "node/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"
#include "node/node_log.h"
#include "node/replication.h"
#include "node/services.h"

#define TICK_MS           20
#define IDLE_TICK_MS      100  /* idle: the timer's period when nothing waits (see plan_next) */
#define FULL_PASS_MS      1000 /* reconcile at least this often without new entries */
#define COPY_CHECK_MS     100  /* ... and look at the local copies this often */
#define FAILOVER_MS       50   /* leader: how often peers' liveness is compared with the table */
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
#define NAME_BUSY_MS      20 /* a killed copy still holds its name: retry soon */
#define BATCH_BYTES_MAX   (8u << 20)
#define SUBMIT_TIMEOUT_MS 0 /* write_timeout */

/* A local copy of a cluster agent. */
typedef struct copy {
    struct copy *next; /* hash chain */
    char *name;
    mb_agent_id id; /* runtime id while alive */
    uint64_t generation;
    int alive;   /* spawned and not seen ended */
    int crashed; /* ended without being asked: restart at restart_at */
    uint64_t restart_at;
    unsigned crashes;
    int draining;         /* asked to checkpoint and stop (drain) */
    int crash_unreported; /* ended on its own: report CRASHED before restarting */
    int crash_reporting;  /* ... in the status batch in flight */
    int mark;             /* reconcile sweep */
    int has_pending;      /* newest checkpoint not yet replicated */
    void *pending;
    size_t pending_len;
    int ckpt_asked;      /* a periodic checkpoint was asked of this run ... */
    uint64_t ckpt_turns; /* ... when the agent had run this many turns */
    int has_final;       /* drain: the checkpoint taken right before the stop */
    void *final;
    size_t final_len;
} copy;

typedef struct drain_wait {
    struct drain_wait *next;
    placement *p;
    api_call *call;
    uint64_t node_id;
    int wait;
    int marking; /* the DRAINING mark is being written (not in p->drains) */
} drain_wait;

struct placement {
    node *n;
    uv_timer_t timer;
    int timer_open;
    uv_check_t check; /* idle: runs the step after loop iterations that changed something */
    int check_open;
    uint64_t last_step_ms;
    int is_leader;         /* as of the last step */
    int draining_me;       /* this node is being drained (as of the last step) */
    uint64_t peer_changes; /* repl_peer_changes at the last failover look */
    int rerun;             /* a command finished: reconcile again (completed) */
    int closing;
    unsigned inflight; /* repl_submit callbacks still to come */
    int ckpt_dirty;    /* some copy may have a checkpoint to replicate */
    copy **buckets;
    size_t nbuckets, ncopies;

    uint64_t last_applied;
    uint64_t last_pass_ms;
    uint64_t last_check_ms;
    uint64_t last_tick_ms;
    uint64_t no_leader_since;
    int caught_up;
    int barrier_busy; /* the catch-up write is in flight */
    int status_busy, ckpt_busy, move_busy, failover_busy;
    uint64_t last_failover_ms;
    uint64_t last_periodic_ms;
    drain_wait *drains;
    int return_reported; /* the "returning node" report was made */

    nc_counter *c_started, *c_fenced, *c_refused, *c_replicated, *c_failovers, *c_rounds;
};

/* ---- the copy table ---- */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static copy *copy_find(placement *p, const char *name)
{
    for (copy *c = p->buckets[fnv(name) & (p->nbuckets - 1)]; c != NULL; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void copy_free(copy *c)
{
    free(c->name);
    free(c->pending);
    free(c->final);
    free(c);
}

static int table_grow(placement *p)
{
    size_t nb = p->nbuckets * 2;
    copy **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return MB_ENOMEM;
    for (size_t i = 0; i < p->nbuckets; i++)
        for (copy *c = p->buckets[i], *next; c != NULL; c = next) {
            next = c->next;
            size_t k = fnv(c->name) & (nb - 1);
            c->next = b[k];
            b[k] = c;
        }
    free(p->buckets);
    p->buckets = b;
    p->nbuckets = nb;
    return MB_OK;
}

static copy *copy_add(placement *p, const char *name)
{
    if (p->ncopies >= p->nbuckets && table_grow(p) != MB_OK)
        return NULL;
    copy *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(name)) == NULL) {
        free(c);
        return NULL;
    }
    size_t k = fnv(name) & (p->nbuckets - 1);
    c->next = p->buckets[k];
    p->buckets[k] = c;
    p->ncopies++;
    return c;
}

static void copy_remove(placement *p, copy *c)
{
    copy **pp = &p->buckets[fnv(c->name) & (p->nbuckets - 1)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    p->ncopies--;
    copy_free(c);
}

#define FOR_EACH_COPY(p, c, next)                                                                  \
    for (size_t b_ = 0; b_ < (p)->nbuckets; b_++)                                                  \
        for (copy *c = (p)->buckets[b_], *next = c ? c->next : NULL; c != NULL;                    \
             c = next, next = c ? c->next : NULL)

/* ---- helpers ---- */

static mb_runtime *rt_of(placement *p)
{
    return p->n->services != NULL ? node_services_runtime(p->n->services) : NULL;
}

static const consensus_sm *sm_of(placement *p)
{
    return p->n->repl != NULL ? repl_sm(p->n->repl) : NULL;
}

static uint64_t now_ms(placement *p)
{
    return uv_now(&p->n->loop);
}

static int copy_running(placement *p, const copy *c)
{
    mb_agent_state st;
    mb_runtime *rt = rt_of(p);
    return rt != NULL && c->id != 0 && mb_runtime_agent_state(rt, c->id, &st) == MB_OK &&
           st.running;
}

static void maybe_free(placement *p);

/* A node can take agents: up in the table, and this node or a peer the
 * failure detector does not suspect. */
static int node_live(placement *p, const consensus_node *nd)
{
    if (nd->status != CONSENSUS_NODE_UP)
        return 0;
    if (nd->id == p->n->node_id)
        return 1;
    int ps = p->n->repl != NULL ? repl_peer_status(p->n->repl, nd->id) : -1;
    return ps == 0; /* alive */
}

static int agent_has_cap(const consensus_agent *a, const char *cap)
{
    for (uint32_t i = 0; i < a->n_caps; i++)
        if (strcmp(a->caps[i], cap) == 0)
            return 1;
    return 0;
}

/* Load figures of the live nodes other than `except`: ids[k], load[k]
 * (agents on it), capload[k] (agents on it having `cap`, when given).
 * Returns the count (at most max). */
static size_t live_loads(placement *p, const consensus_sm *sm, uint64_t except, const char *cap,
                         uint64_t *ids, size_t *load, size_t *capload, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < consensus_sm_node_count(sm) && k < max; i++) {
        const consensus_node *nd = consensus_sm_node_at(sm, i);
        if (nd->id == except || !node_live(p, nd))
            continue;
        ids[k] = nd->id;
        load[k] = capload[k] = 0;
        k++;
    }
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        for (size_t j = 0; j < k; j++)
            if (a->node == ids[j]) {
                load[j]++;
                if (cap != NULL && agent_has_cap(a, cap))
                    capload[j]++;
                break;
            }
    }
    return k;
}

/* Index of the least loaded (by capload first when `by_cap`, then load,
 * then lowest id: the order of the table). */
static size_t least_loaded(size_t k, const size_t *load, const size_t *capload, int by_cap)
{
    size_t best = 0;
    for (size_t j = 1; j < k; j++) {
        if (by_cap && capload[j] != capload[best]) {
            if (capload[j] < capload[best])
                best = j;
            continue;
        }
        if (load[j] < load[best])
            best = j;
    }
    return best;
}

#define MAX_NODES 256

/* ---- placement decisions ---- */

int placement_parse(const char *s, placement_mode *mode, uint64_t *node_id, char *cap_buf,
                    size_t cap_size, mb_error *err)
{
    *node_id = 0;
    if (cap_size > 0)
        cap_buf[0] = '\0';
    if (s == NULL || strcmp(s, "any") == 0) {
        *mode = PLACEMENT_ANY;
        return MB_OK;
    }
    if (strcmp(s, "spread:load") == 0 || strcmp(s, "spread") == 0) {
        *mode = PLACEMENT_SPREAD_LOAD;
        return MB_OK;
    }
    if (strncmp(s, "spread:cap=", 11) == 0) {
        size_t len = strlen(s + 11);
        if (len == 0 || len >= cap_size || len > CONSENSUS_ID_MAX)
            return mb_errorf(err, MB_EINVAL, "placement '%.80s': a capability of 1..%d bytes", s,
                             CONSENSUS_ID_MAX);
        memcpy(cap_buf, s + 11, len + 1);
        *mode = PLACEMENT_SPREAD_CAP;
        return MB_OK;
    }
    const char *num = strncmp(s, "node:", 5) == 0 ? s + 5 : s;
    char *end = NULL;
    unsigned long long v = *num >= '0' && *num <= '9' ? strtoull(num, &end, 10) : 0;
    if (end == NULL || *end != '\0' || v == 0 || v > 0xFFFF)
        return mb_errorf(err, MB_EINVAL,
                         "placement '%.80s' is not one of any, node:N, spread:load, "
                         "spread:cap=X",
                         s);
    *mode = PLACEMENT_NODE;
    *node_id = v;
    return MB_OK;
}

int placement_choose(placement *p, const consensus_sm *sm, placement_mode mode, uint64_t node_id,
                     const char *cap, uint64_t *out, mb_error *err)
{
    if (mode == PLACEMENT_NODE) {
        const consensus_node *nd = consensus_sm_node_get(sm, node_id);
        if (nd == NULL)
            return mb_errorf(err, MB_ENOTFOUND, "node %llu is not a member of the cluster",
                             (unsigned long long)node_id);
        /* an explicit choice tolerates a mere suspicion (a slow heartbeat
         * on a loaded machine); a down or draining node is refused */
        int ps = node_id == p->n->node_id ? 0
                 : p->n->repl != NULL     ? repl_peer_status(p->n->repl, node_id)
                                          : -1;
        if (nd->status != CONSENSUS_NODE_UP || (ps != 0 && ps != 1))
            return mb_errorf(err, MB_ESTATE, "node %llu is not live (down or draining)",
                             (unsigned long long)node_id);
        *out = node_id;
        return MB_OK;
    }
    uint64_t ids[MAX_NODES];
    size_t load[MAX_NODES], capload[MAX_NODES];
    int by_cap = mode == PLACEMENT_SPREAD_CAP;
    size_t k = live_loads(p, sm, 0, by_cap ? cap : NULL, ids, load, capload, MAX_NODES);
    if (k == 0)
        return mb_errorf(err, MB_ESTATE, "no live node to place an agent on");
    *out = ids[least_loaded(k, load, capload, by_cap)];
    return MB_OK;
}

int placement_local_id(placement *p, const char *name, mb_agent_id *out)
{
    copy *c = name != NULL ? copy_find(p, name) : NULL;
    if (c == NULL || !c->alive)
        return MB_ENOAGENT;
    *out = c->id;
    return MB_OK;
}

/* ---- JSON ---- */

static const char *agent_status_name(consensus_agent_status s)
{
    static const char *const names[] = { "placed", "running", "stopped", "crashed" };
    return (unsigned)s < 4 ? names[s] : "?";
}

cJSON *placement_agent_json(const consensus_agent *a)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "kind", a->kind);
    cJSON_AddNumberToObject(o, "node", (double)a->node);
    cJSON_AddNumberToObject(o, "generation", (double)a->generation);
    cJSON_AddStringToObject(o, "status", agent_status_name(a->status));
    cJSON_AddNumberToObject(o, "restarts", a->restarts);
    cJSON *caps = cJSON_AddArrayToObject(o, "capabilities");
    for (uint32_t i = 0; caps != NULL && i < a->n_caps; i++)
        cJSON_AddItemToArray(caps, cJSON_CreateString(a->caps[i]));
    if (a->has_checkpoint) {
        cJSON_AddNumberToObject(o, "checkpoint_bytes", (double)a->checkpoint_len);
        cJSON_AddNumberToObject(o, "checkpoint_version", (double)a->checkpoint_version);
    } else {
        cJSON_AddNullToObject(o, "checkpoint_bytes");
        cJSON_AddNullToObject(o, "checkpoint_version");
    }
    return o;
}

/* ---- local copies: start, stop, fence ---- */

static uint64_t backoff_ms(unsigned crashes)
{
    uint64_t ms = BACKOFF_MIN_MS;
    for (unsigned i = 1; i < crashes && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static void copy_start(placement *p, copy *c, const consensus_agent *a)
{
    mb_runtime *rt = rt_of(p);
    if (rt == NULL)
        return;
    mb_spawn_opts o = {
        .kind = a->kind,
        .config = a->config,
        .name = a->id,
        .ns = PLACEMENT_NS,
        .caps = (const char *const *)a->caps,
        .ncaps = a->n_caps,
        .restart = MB_RESTART_TEMPORARY,
        .checkpoint = a->has_checkpoint ? (a->checkpoint != NULL ? a->checkpoint : "") : NULL,
        .checkpoint_len = a->has_checkpoint ? a->checkpoint_len : 0,
    };
    mb_agent_id id;
    mb_error e;
    mb_error_clear(&e);
    c->generation = a->generation;
    int rv = mb_runtime_spawn(rt, &o, &id, &e);
    if (rv == MB_EEXIST) { /* the previous copy is still ending */
        c->alive = 0;
        c->crashed = 1;
        c->restart_at = now_ms(p) + NAME_BUSY_MS;
        return;
    }
    if (rv != MB_OK) {
        c->alive = 0;
        c->crashed = 1;
        c->crashes++;
        c->restart_at = now_ms(p) + backoff_ms(c->crashes);
        NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "cannot start cluster agent",
                 NC_F_STR("agent", a->id), NC_F_STR("kind", a->kind), NC_F_STR("error", e.msg),
                 NC_F_U64("retry_ms", backoff_ms(c->crashes)));
        return;
    }
    c->id = id;
    c->alive = 1;
    c->ckpt_asked = 0;
    c->crashed = 0;
    nc_counter_inc(p->c_started);
    NC_LOGKV(p->n->log, NC_LOG_DEBUG, "placement", "cluster agent started",
             NC_F_STR("agent", a->id), NC_F_U64("generation", a->generation),
             NC_F_BOOL("from_checkpoint", a->has_checkpoint));
}

/* Stop and forget a copy: `kill` for fencing (brutal), else a normal stop. */
static void copy_drop(placement *p, copy *c, int kill)
{
    mb_runtime *rt = rt_of(p);
    if (rt != NULL && c->alive && c->id != 0)
        (kill ? mb_runtime_kill_agent : mb_runtime_stop_agent)(rt, c->id);
    copy_remove(p, c);
}

/* Fencing: this node may have been declared down (paused, or cut off from
 * the leader): stop every local copy now; they start again only after the
 * node has caught up with the log and only if still assigned here. */
static void fence(placement *p, const char *why)
{
    size_t n = 0;
    FOR_EACH_COPY(p, c, next)
    {
        n += c->alive;
        copy_drop(p, c, 1);
    }
    p->caught_up = 0;
    if (n > 0) {
        nc_counter_inc(p->c_fenced);
        NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "fencing: local cluster agents stopped",
                 NC_F_STR("reason", why), NC_F_U64("agents", n));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "reason", why);
        cJSON_AddNumberToObject(j, "agents", (double)n);
        node_event(p->n, "placement.fenced", p->n->node_name, j);
        cJSON_Delete(j);
    }
}

/* ---- submissions ---- */

static void submitted(placement *p)
{
    p->inflight++;
}

/* A command of ours finished: the next step makes a full reconcile pass
 * (what it left for later, e.g. the next status batch, is due now). */
static void completed(placement *p)
{
    p->inflight--;
    p->rerun = 1;
}

static void status_done_cb(void *arg, const consensus_result *res)
{
    placement *p = arg;
    completed(p);
    p->status_busy = 0;
    if (!p->closing) {
        /* Applied (or refused for good): the crash is on record. */
        int applied = res->code == MB_OK || res->code == MB_ECONFLICT;
        FOR_EACH_COPY(p, c, next)
        {
            (void)next;
            if (c->crash_reporting && applied)
                c->crash_unreported = 0;
            c->crash_reporting = 0;
        }
    }
    if (res->code != MB_OK && res->code != MB_ECONFLICT && !p->closing)
        NC_LOGKV(p->n->log, NC_LOG_DEBUG, "placement", "status report not applied",
                 NC_F_STR("code", mb_errname(res->code)), NC_F_STR("error", res->msg));
    maybe_free(p);
}

/* Report what runs here when the table says otherwise (level-triggered:
 * the next pass reports again whatever did not apply). */
static void report_status(placement *p, const consensus_sm *sm)
{
    if (p->status_busy)
        return;
    consensus_agent_item *items = NULL;
    uint32_t n = 0;
    for (size_t i = 0; i < consensus_sm_agent_count(sm) && n < CONSENSUS_BATCH_MAX; i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->node != p->n->node_id)
            continue;
        copy *c = copy_find(p, a->id);
        if (c == NULL || c->generation != a->generation || c->draining)
            continue;
        consensus_agent_status want;
        if (c->crash_unreported)
            want = CONSENSUS_AGENT_CRASHED; /* even if already marked: one per crash */
        else if (c->alive)
            want = CONSENSUS_AGENT_RUNNING;
        else if (c->crashed && c->crashes > 0)
            want = CONSENSUS_AGENT_CRASHED;
        else
            continue;
        if (a->status == CONSENSUS_AGENT_STOPPED || (want == a->status && !c->crash_unreported))
            continue;
        c->crash_reporting = c->crash_unreported;
        if (items == NULL && (items = calloc(CONSENSUS_BATCH_MAX, sizeof(*items))) == NULL)
            return;
        items[n++] =
            (consensus_agent_item){ .id = a->id, .generation = a->generation, .status = want };
    }
    if (n == 0) {
        free(items);
        return;
    }
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_STATUS_BATCH,
                          .by = p->n->node_name,
                          .items = items,
                          .n_items = n };
    if (repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, status_done_cb, p) == MB_OK) {
        p->status_busy = 1;
        submitted(p);
    }
    free(items);
}

static void ckpt_done_cb(void *arg, const consensus_result *res)
{
    placement *p = arg;
    completed(p);
    p->ckpt_busy = 0;
    if (res->code == MB_OK)
        nc_counter_inc(p->c_replicated);
    else if (!p->closing)
        NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "checkpoint batch not replicated",
                 NC_F_STR("code", mb_errname(res->code)), NC_F_STR("error", res->msg));
    maybe_free(p);
}

/* Replicate the pending checkpoints, many per command. */
static void flush_checkpoints(placement *p)
{
    /* Walk the copies only when one has something (this runs every tick). */
    if (p->ckpt_busy || !p->ckpt_dirty)
        return;
    p->ckpt_dirty = 0;
    consensus_agent_item *items = NULL;
    copy **from = NULL;
    uint32_t n = 0;
    size_t bytes = 0;
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        if (!c->has_pending)
            continue;
        if (n >= CONSENSUS_BATCH_MAX || bytes + c->pending_len > BATCH_BYTES_MAX) {
            p->ckpt_dirty = 1; /* the next batch */
            continue;
        }
        if (items == NULL) {
            items = calloc(CONSENSUS_BATCH_MAX, sizeof(*items));
            from = calloc(CONSENSUS_BATCH_MAX, sizeof(*from));
            if (items == NULL || from == NULL) {
                free(items);
                free(from);
                p->ckpt_dirty = 1;
                return;
            }
        }
        items[n] = (consensus_agent_item){ .id = c->name,
                                           .generation = c->generation,
                                           .has_blob = 1,
                                           .blob = c->pending,
                                           .blob_len = c->pending_len };
        from[n++] = c;
        bytes += c->pending_len;
    }
    if (n == 0)
        return;
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH,
                          .by = p->n->node_name,
                          .items = items,
                          .n_items = n };
    if (repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, ckpt_done_cb, p) == MB_OK) {
        p->ckpt_busy = 1;
        submitted(p);
        for (uint32_t i = 0; i < n; i++) { /* encoded: the copies are no longer needed */
            free(from[i]->pending);
            from[i]->pending = NULL;
            from[i]->pending_len = 0;
            from[i]->has_pending = 0;
        }
    } else {
        p->ckpt_dirty = 1; /* not sent: try again next tick */
    }
    free(items);
    free(from);
}

void placement_checkpoint_saved(placement *p, mb_agent_id id, const void *blob, size_t len)
{
    mb_runtime *rt = p != NULL ? rt_of(p) : NULL;
    mb_agent_info info;
    if (p == NULL || p->closing || rt == NULL)
        return;
    copy *c = NULL;
    if (mb_runtime_agent_info(rt, id, &info) == MB_OK) {
        if (strcmp(info.ns, PLACEMENT_NS) != 0)
            return;
        c = copy_find(p, info.name);
    } else { /* ended already: a drained agent's last checkpoint */
        FOR_EACH_COPY(p, d, next)
        {
            (void)next;
            if (d->id == id && d->draining)
                c = d;
        }
    }
    if (c == NULL || c->id != id)
        return;
    uint64_t max = nc_config_size_bytes(p->n->cfg, NC_CFG_CHECKPOINT_MAX_BYTES);
    if (len > max) {
        nc_counter_inc(p->c_refused);
        NC_LOGKV(p->n->log, NC_LOG_ERROR, "placement",
                 "checkpoint above checkpoint_max_bytes refused; the previous one stays",
                 NC_F_STR("agent", c->name), NC_F_U64("bytes", len), NC_F_U64("max", max));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", c->name);
        cJSON_AddNumberToObject(j, "bytes", (double)len);
        cJSON_AddNumberToObject(j, "max", (double)max);
        node_event(p->n, "agent.checkpoint_refused", c->name, j);
        cJSON_Delete(j);
        return;
    }
    /* An idle agent's periodic checkpoint equals the replicated one: no
     * need to send it through raft again (nothing older is in flight that
     * could overwrite it). */
    const consensus_sm *sm = sm_of(p);
    const consensus_agent *a = sm != NULL ? consensus_sm_agent_get(sm, c->name) : NULL;
    if (!c->draining && !c->has_pending && !p->ckpt_busy && a != NULL && a->node == p->n->node_id &&
        a->generation == c->generation && a->has_checkpoint && a->checkpoint_len == len &&
        (len == 0 || memcmp(a->checkpoint, blob, len) == 0))
        return;
    void *copy_blob = malloc(len > 0 ? len : 1);
    if (copy_blob == NULL)
        return;
    if (len > 0)
        memcpy(copy_blob, blob, len);
    if (c->draining) {
        free(c->final);
        c->final = copy_blob;
        c->final_len = len;
        c->has_final = 1;
    } else {
        free(c->pending);
        c->pending = copy_blob;
        c->pending_len = len;
        c->has_pending = 1;
        p->ckpt_dirty = 1;
    }
}

/* ---- reconciliation ---- */

static void reconcile(placement *p, const consensus_sm *sm)
{
    uint64_t self = p->n->node_id, now = now_ms(p);
    const consensus_node *me = consensus_sm_node_get(sm, self);
    int draining = me != NULL && me->status == CONSENSUS_NODE_DRAINING;
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        c->mark = 0;
    }
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->node != self || a->status == CONSENSUS_AGENT_STOPPED)
            continue;
        copy *c = copy_find(p, a->id);
        if (c != NULL && c->generation != a->generation) {
            copy_drop(p, c, 1); /* stale generation */
            c = NULL;
        }
        if (c == NULL) {
            if (draining || (c = copy_add(p, a->id)) == NULL)
                continue;
            c->mark = 1;
            copy_start(p, c, a);
            continue;
        }
        c->mark = 1;
        if (c->draining)
            continue;
        if (c->alive && !copy_running(p, c)) {
            c->alive = 0;
            c->crashed = 1;
            c->crash_unreported = 1;
            c->crashes++;
            c->restart_at = now + backoff_ms(c->crashes);
            NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "cluster agent ended; restarting",
                     NC_F_STR("agent", a->id), NC_F_U64("in_ms", backoff_ms(c->crashes)));
        }
        if (!c->alive && c->crashed && !c->crash_unreported && now >= c->restart_at && !draining)
            copy_start(p, c, a);
    }
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        if (c->mark)
            continue;
        const consensus_agent *a = consensus_sm_agent_get(sm, c->name);
        /* moved away: fenced (killed); removed or stopped: a normal stop */
        copy_drop(p, c, a != NULL && a->node != self);
    }
    report_status(p, sm);
}

/* ---- drain (on the draining node) ---- */

static void move_done_cb(void *arg, const consensus_result *res)
{
    placement *p = arg;
    completed(p);
    p->move_busy = 0;
    if (res->code != MB_OK && !p->closing)
        NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "drain move not applied",
                 NC_F_STR("code", mb_errname(res->code)), NC_F_STR("error", res->msg));
    maybe_free(p);
}

static void drain_step(placement *p, const consensus_sm *sm)
{
    uint64_t self = p->n->node_id;
    mb_runtime *rt = rt_of(p);
    uint64_t ids[MAX_NODES];
    size_t load[MAX_NODES], capload[MAX_NODES];
    size_t k = live_loads(p, sm, self, NULL, ids, load, capload, MAX_NODES);
    if (k == 0)
        return; /* nowhere to go: the agents keep running here */
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        if (c->alive && !c->draining && rt != NULL) {
            c->draining = 1; /* checkpoint, then stop, in the agent's mailbox order */
            mb_runtime_checkpoint_agent(rt, c->id);
            mb_runtime_stop_agent(rt, c->id);
        }
    }
    if (p->move_busy)
        return;
    node_services_flush(p->n->services); /* checkpoints queued by the workers */
    consensus_agent_item *items = calloc(CONSENSUS_BATCH_MAX, sizeof(*items));
    if (items == NULL)
        return;
    uint32_t n = 0;
    for (size_t i = 0; i < consensus_sm_agent_count(sm) && n < CONSENSUS_BATCH_MAX; i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->node != self)
            continue;
        copy *c = copy_find(p, a->id);
        if (c != NULL && c->alive && c->draining && copy_running(p, c))
            continue; /* still handling its mailbox */
        size_t j = least_loaded(k, load, capload, 0);
        load[j]++;
        items[n] =
            (consensus_agent_item){ .id = a->id, .node = ids[j], .generation = a->generation };
        if (c != NULL && c->has_final && c->generation == a->generation) {
            items[n].has_blob = 1;
            items[n].blob = c->final;
            items[n].blob_len = c->final_len;
        }
        n++;
    }
    if (n > 0) {
        consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_MOVE_BATCH,
                              .by = p->n->node_name,
                              .items = items,
                              .n_items = n };
        if (repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, move_done_cb, p) == MB_OK) {
            p->move_busy = 1;
            submitted(p);
        }
    }
    free(items);
}

/* ---- failover (leader) ---- */

static void failover_done_cb(void *arg, const consensus_result *res)
{
    placement *p = arg;
    completed(p);
    p->failover_busy = 0;
    if (res->code != MB_OK && !p->closing)
        NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "failover command not applied",
                 NC_F_STR("code", mb_errname(res->code)), NC_F_STR("error", res->msg));
    maybe_free(p);
}

/* Leader: a node the failure detector reports down has its agents moved
 * to live nodes (least loaded; agents with capabilities spread by their
 * first capability), each with a new generation, and is marked down, in
 * one command (per 1,000 agents). A node seen alive again is marked up. */
static void failover(placement *p, const consensus_sm *sm)
{
    if (p->failover_busy)
        return;
    uint64_t self = p->n->node_id;
    for (size_t i = 0; i < consensus_sm_node_count(sm); i++) {
        const consensus_node *nd = consensus_sm_node_at(sm, i);
        if (nd->id == self || nd->status == CONSENSUS_NODE_LEFT)
            continue;
        int ps = repl_peer_status(p->n->repl, nd->id);
        if (ps == 0 && nd->status == CONSENSUS_NODE_DOWN) {
            consensus_cmd cmd = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                                  .by = p->n->node_name,
                                  .node_fields = CONSENSUS_NODE_SET_STATUS };
            cmd.node.id = nd->id;
            cmd.node.status = CONSENSUS_NODE_UP;
            if (repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, failover_done_cb, p) == MB_OK) {
                p->failover_busy = 1;
                submitted(p);
                NC_LOGKV(p->n->log, NC_LOG_INFO, "placement", "node is back: marking it up",
                         NC_F_U64("node", nd->id));
            }
            return;
        }
        if (ps != 2)
            continue;
        size_t on_node = 0;
        for (size_t j = 0; j < consensus_sm_agent_count(sm); j++)
            on_node += consensus_sm_agent_at(sm, j)->node == nd->id;
        if (nd->status == CONSENSUS_NODE_DOWN && on_node == 0)
            continue;
        uint64_t ids[MAX_NODES];
        size_t load[MAX_NODES], capload[MAX_NODES];
        size_t k = live_loads(p, sm, nd->id, NULL, ids, load, capload, MAX_NODES);
        if (k == 0 && nd->status == CONSENSUS_NODE_DOWN)
            continue; /* nowhere to go yet */
        consensus_agent_item *items = NULL;
        uint32_t n = 0;
        if (k > 0 && on_node > 0 &&
            (items = calloc(on_node < CONSENSUS_BATCH_MAX ? on_node : CONSENSUS_BATCH_MAX,
                            sizeof(*items))) == NULL)
            return;
        for (size_t j = 0; k > 0 && j < consensus_sm_agent_count(sm) && n < CONSENSUS_BATCH_MAX;
             j++) {
            const consensus_agent *a = consensus_sm_agent_at(sm, j);
            if (a->node != nd->id)
                continue;
            size_t t = least_loaded(k, load, capload, 0);
            if (a->n_caps > 0) { /* spread agents sharing a capability */
                size_t best = t, best_cnt = (size_t)-1;
                for (size_t q = 0; q < k; q++) {
                    size_t cnt = 0;
                    for (uint32_t r = 0; r < n; r++)
                        cnt += items[r].node == ids[q] &&
                               agent_has_cap(consensus_sm_agent_get(sm, items[r].id), a->caps[0]);
                    if (cnt < best_cnt || (cnt == best_cnt && load[q] < load[best])) {
                        best = q;
                        best_cnt = cnt;
                    }
                }
                t = best;
            }
            load[t]++;
            items[n++] =
                (consensus_agent_item){ .id = a->id, .node = ids[t], .generation = a->generation };
        }
        consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_MOVE_BATCH,
                              .by = p->n->node_name,
                              .items = items,
                              .n_items = n,
                              .down_node = nd->status != CONSENSUS_NODE_DOWN ? nd->id : 0 };
        if (n > 0 || cmd.down_node != 0) {
            if (repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, failover_done_cb, p) == MB_OK) {
                p->failover_busy = 1;
                submitted(p);
                nc_counter_inc(p->c_failovers);
                NC_LOGKV(p->n->log, NC_LOG_WARN, "placement",
                         "node is down: moving its agents to live nodes", NC_F_U64("node", nd->id),
                         NC_F_U64("agents", n));
            }
        }
        free(items);
        return;
    }
}

/* ---- drain waiters (API, any node) ---- */

cJSON *placement_drain_progress(placement *p, uint64_t node_id)
{
    const consensus_sm *sm = sm_of(p);
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || sm == NULL)
        return o;
    static const char *const st[] = { "up", "suspect", "down", "left", "draining" };
    const consensus_node *nd = consensus_sm_node_get(sm, node_id);
    size_t remaining = 0, pending = 0;
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->node == node_id)
            remaining++;
        else if (a->status == CONSENSUS_AGENT_PLACED)
            pending++;
    }
    cJSON_AddNumberToObject(o, "node", (double)node_id);
    cJSON_AddStringToObject(o, "status", nd != NULL ? st[nd->status] : "unknown");
    cJSON_AddNumberToObject(o, "remaining", (double)remaining);
    cJSON_AddNumberToObject(o, "starting_elsewhere", (double)pending);
    cJSON_AddBoolToObject(o, "done",
                          nd != NULL && nd->status == CONSENSUS_NODE_DRAINING && remaining == 0 &&
                              pending == 0);
    return o;
}

static void drain_unlink(placement *p, drain_wait *w)
{
    for (drain_wait **pp = &p->drains; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            return;
        }
}

/* The call is parked from the request on (the mark's write, then the wait
 * for the agents to move): expiry answers it in either phase. While the
 * mark is being written, its callback still owns w. */
static void drain_expire_cb(node *n, api_call *c, void *arg, int code)
{
    (void)n;
    drain_wait *w = arg;
    placement *p = w->p;
    if (w->marking) {
        api_reply_error(c, code, "drain of node %llu: %s", (unsigned long long)w->node_id,
                        code == MB_ETIMEDOUT ? "the DRAINING mark was not written in time"
                                             : "node shutting down");
        w->call = NULL; /* answered: drain_mark_done_cb only frees w */
        return;
    }
    drain_unlink(p, w);
    cJSON *prog = placement_drain_progress(p, w->node_id);
    char *text = prog != NULL ? cJSON_PrintUnformatted(prog) : NULL;
    cJSON_Delete(prog);
    if (code == MB_ETIMEDOUT)
        api_reply_error(c, MB_ETIMEDOUT, "drain of node %llu not finished in time: %s",
                        (unsigned long long)w->node_id, text != NULL ? text : "");
    else
        api_reply_error(c, code, "drain of node %llu: node shutting down",
                        (unsigned long long)w->node_id);
    cJSON_free(text);
    free(w);
    maybe_free(p);
}

static void drains_check(placement *p)
{
    for (drain_wait *w = p->drains, *next; w != NULL; w = next) {
        next = w->next;
        cJSON *prog = placement_drain_progress(p, w->node_id);
        if (prog == NULL || !cJSON_IsTrue(cJSON_GetObjectItem(prog, "done"))) {
            cJSON_Delete(prog);
            continue;
        }
        drain_unlink(p, w);
        api_reply_json(w->call, 200, prog);
        free(w);
    }
}

static void drain_mark_done_cb(void *arg, const consensus_result *res)
{
    drain_wait *w = arg;
    placement *p = w->p;
    completed(p);
    w->marking = 0;
    if (w->call == NULL) { /* the park expired meanwhile and answered */
        free(w);
    } else if (res->code != MB_OK) {
        api_reply_error(w->call, res->code, "drain of node %llu: %s",
                        (unsigned long long)w->node_id, res->msg);
        free(w);
    } else if (!w->wait || p->closing) {
        api_reply_json(w->call, 202, placement_drain_progress(p, w->node_id));
        free(w);
    } else { /* still parked: now wait for the agents */
        w->next = p->drains;
        p->drains = w;
        drains_check(p);
    }
    maybe_free(p);
}

void placement_drain(placement *p, api_call *c, uint64_t node_id, int wait, uint64_t timeout_ms)
{
    const consensus_sm *sm = sm_of(p);
    const consensus_node *nd = sm != NULL ? consensus_sm_node_get(sm, node_id) : NULL;
    if (nd == NULL) {
        api_reply_error(c, MB_ENOTFOUND, "node %llu is not a member of the cluster",
                        (unsigned long long)node_id);
        return;
    }
    if (nd->status == CONSENSUS_NODE_DOWN || nd->status == CONSENSUS_NODE_LEFT) {
        api_reply_error(
            c, MB_ESTATE, "node %llu is %s: its agents move by failover, not by a drain",
            (unsigned long long)node_id, nd->status == CONSENSUS_NODE_DOWN ? "down" : "gone");
        return;
    }
    drain_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    *w = (drain_wait){ .p = p, .call = c, .node_id = node_id, .wait = wait, .marking = 1 };
    /* Parked at once (a handler answers or parks): the answer comes after
     * the mark's write, and with wait=1 after the agents moved. */
    if (api_call_park(p->n, c, timeout_ms, drain_expire_cb, w) != MB_OK) {
        api_reply_error(c, MB_EFULL, "too many parked requests");
        free(w);
        return;
    }
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                          .by = "api",
                          .node_fields = CONSENSUS_NODE_SET_STATUS };
    cmd.node.id = node_id;
    cmd.node.status = CONSENSUS_NODE_DRAINING;
    if (nd->status == CONSENSUS_NODE_DRAINING) { /* already: just wait */
        consensus_result ok = { .code = MB_OK };
        p->inflight++;
        drain_mark_done_cb(w, &ok);
        return;
    }
    int rv = repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, drain_mark_done_cb, w);
    if (rv != MB_OK) {
        api_reply_error(c, rv, "drain of node %llu: %s", (unsigned long long)node_id,
                        mb_strerror(rv));
        free(w);
        return;
    }
    submitted(p);
}

/* ---- catching up ---- */

static void barrier_done_cb(void *arg, const consensus_result *res)
{
    placement *p = arg;
    completed(p);
    p->barrier_busy = 0;
    /* Any answer but these means the write was applied here, so every entry
     * committed before it (the moves of this node's agents included) is
     * applied too. */
    if (!p->closing && res->code != MB_ENOQUORUM && res->code != MB_ECLOSED &&
        res->code != MB_EUNKNOWN && res->code != MB_ETIMEDOUT && res->code != MB_ENOMEM) {
        p->caught_up = 1;
        p->last_applied = 0;
        NC_LOGKV(p->n->log, NC_LOG_INFO, "placement", "caught up with the log: reconciling",
                 NC_F_U64("index", res->version));
    }
    maybe_free(p);
}

/* Reconcile only once this node has applied everything committed before
 * now: a write that changes nothing (an update of this node with no
 * field) is committed after it and waited for. A restarted node thus never
 * starts agents that moved while it was away. */
static void catch_up(placement *p)
{
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_NODE_UPDATE, .by = p->n->node_name };
    cmd.node.id = p->n->node_id;
    if (repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, barrier_done_cb, p) == MB_OK) {
        p->barrier_busy = 1;
        submitted(p);
    }
}

/* ---- the returning node ---- */

typedef struct return_scan {
    uint64_t self;
    size_t moved;
    uint64_t gen_max;
    cJSON *ids; /* the first 20 moved agents */
} return_scan;

static int return_scan_cb(const storage_event *ev, void *arg)
{
    return_scan *rs = arg;
    cJSON *o = ev->payload_len > 0 ? cJSON_ParseWithLength(ev->payload, ev->payload_len) : NULL;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "from_node");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(o, "generation");
    if (cJSON_IsNumber(from) && (uint64_t)from->valuedouble == rs->self) {
        rs->moved++;
        if (cJSON_IsNumber(gen) && (uint64_t)gen->valuedouble > rs->gen_max)
            rs->gen_max = (uint64_t)gen->valuedouble;
        if (rs->moved <= 20 && rs->ids != NULL)
            cJSON_AddItemToArray(rs->ids, cJSON_CreateString(ev->subject));
    }
    cJSON_Delete(o);
    return 0;
}

/* Once, after the first catch-up of this process: the moves of this
 * node's agents that it applied since it started (events agent.reassign
 * from this node in its copy of the cluster log, written at apply time)
 * are what it learned on its return — agents moved away while it was down
 * or cut off, which it never starts. Logged and recorded as the local
 * event placement.returned, with the counts. */
static void report_return(placement *p)
{
    p->return_reported = 1;
    if (p->n->store == NULL)
        return;
    return_scan rs = { .self = p->n->node_id, .ids = cJSON_CreateArray() };
    struct storage_query q = { .type = "agent.reassign",
                               .from_time_ms = p->n->start_wall_ms,
                               .limit = 10000 };
    uint64_t next = 0;
    mb_error e;
    mb_error_clear(&e);
    for (int page = 0; page < 100; page++) {
        if (repl_log_query(p->n->repl, &q, return_scan_cb, &rs, &next, &e) != MB_OK) {
            NC_LOGKV(p->n->log, NC_LOG_WARN, "placement", "cannot read the moves of this node",
                     NC_F_STR("error", e.msg));
            break;
        }
        if (next == 0)
            break;
        q.cursor = next;
    }
    if (rs.moved > 0) {
        size_t kept = 0;
        const consensus_sm *sm = sm_of(p);
        for (size_t i = 0; sm != NULL && i < consensus_sm_agent_count(sm); i++)
            kept += consensus_sm_agent_at(sm, i)->node == p->n->node_id;
        NC_LOGKV(p->n->log, NC_LOG_WARN, "placement",
                 "returning node: agents moved away while it was down, not started (fenced)",
                 NC_F_U64("moved", rs.moved), NC_F_U64("generation_max", rs.gen_max),
                 NC_F_U64("assigned_here", kept));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "moved", (double)rs.moved);
        cJSON_AddNumberToObject(j, "generation_max", (double)rs.gen_max);
        cJSON_AddNumberToObject(j, "assigned_here", (double)kept);
        cJSON_AddItemToObject(j, "agents", rs.ids);
        rs.ids = NULL;
        node_event(p->n, "placement.returned", p->n->node_name, j);
        cJSON_Delete(j);
    }
    cJSON_Delete(rs.ids);
}

/* ---- the tick ---- */

/* Between log entries only the local copies change (an agent ended, a
 * restart is due, a crash is unreported): walking them is much cheaper
 * than a reconcile pass over the whole agents table. */
static int copies_need_pass(placement *p, uint64_t now)
{
    p->last_check_ms = now;
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        if (c->draining)
            continue;
        if (c->crash_unreported || (c->alive && !copy_running(p, c)) ||
            (!c->alive && c->crashed && now >= c->restart_at))
            return 1;
    }
    return 0;
}

static void tick_cb(uv_timer_t *t);

/* idle: whether the step has work now (new entries, checkpoints to
 * replicate, a catch-up or drain under way, commands in flight); the
 * leader's failover look also runs every FAILOVER_MS after any wake-up. */
/* Work under way: catch-up, checkpoints to replicate, drains, commands in
 * flight (the step then runs every TICK_MS). */
static int work_under_way(const placement *p)
{
    return !p->caught_up || p->ckpt_dirty || p->drains != NULL || p->inflight > 0 ||
           p->barrier_busy || p->draining_me;
}

/* Leader: the failure detector changed its verdict on some peer since the
 * last failover look. */
static int peers_changed(const placement *p)
{
    return p->is_leader && repl_peer_changes(p->n->repl) != p->peer_changes;
}

static int step_wanted(placement *p, uint64_t now)
{
    if (work_under_way(p) || p->rerun || peers_changed(p) ||
        (p->is_leader && now - p->last_failover_ms >= FAILOVER_MS))
        return 1;
    return consensus_sm_applied_index(sm_of(p)) != p->last_applied;
}

/* Run the step again in `in_ms`, unless the timer fires sooner already. */
static void arm(placement *p, uint64_t in_ms)
{
    if (p->closing || !p->timer_open)
        return;
    if (uv_is_active((uv_handle_t *)&p->timer) && uv_timer_get_due_in(&p->timer) <= in_ms)
        return;
    uv_timer_start(&p->timer, tick_cb, in_ms, 0);
}

static void step(placement *p);

/* idle: after every loop iteration, a cheap look whether the step has work;
 * it then runs at once (at most every TICK_MS), not at the next tick. So the
 * timer itself can be slow (IDLE_TICK_MS) while nothing happens. */
static void check_cb(uv_check_t *h)
{
    placement *p = h->data;
    if (p->closing || p->n->repl == NULL)
        return;
    uint64_t now = now_ms(p);
    if (!step_wanted(p, now))
        return;
    /* a detector verdict (a peer went down) is acted on in this iteration */
    if (now - p->last_step_ms >= TICK_MS || peers_changed(p))
        step(p);
    else
        arm(p, p->last_step_ms + TICK_MS - now);
}

static void tick_cb(uv_timer_t *t)
{
    placement *p = t->data;
    if (p->closing || p->n->repl == NULL) {
        arm(p, TICK_MS);
        return;
    }
    step(p);
}

static void step_body(placement *p);

static void step(placement *p)
{
    p->last_step_ms = now_ms(p);
    step_body(p);
    if (p->closing)
        return;
    /* The next step: soon while work is under way, else IDLE_TICK_MS (crash
     * restarts and copy checks are due at COPY_CHECK_MS = that period). */
    uv_timer_start(&p->timer, tick_cb,
                   work_under_way(p) ? TICK_MS : node_aligned_delay(&p->n->loop, IDLE_TICK_MS), 0);
}

static void step_body(placement *p)
{
    uint64_t now = now_ms(p);
    /* While this process lives its connections stay open, so the others
     * declare it down only after unresponsive_timeout of silence (docs/
     * cluster.md "Failure detector"): fencing at half of it leaves a margin
     * for the heartbeat interval and the peers' clocks. */
    uint64_t ut = (uint64_t)nc_config_duration_ms(p->n->cfg, NC_CFG_UNRESPONSIVE_TIMEOUT) / 2;
    uint64_t et = (uint64_t)nc_config_duration_ms(p->n->cfg, NC_CFG_ELECTION_TIMEOUT);
    /* No leader for longer than an election normally takes and at least
     * that margin: the others may be about to declare this node down. */
    uint64_t lost_after = ut > 3 * et ? ut : 3 * et;
    /* A pause (SIGSTOP, a stalled loop) long enough to be declared down:
     * fence before anything else runs on old information. */
    if (p->last_tick_ms != 0 && now - p->last_tick_ms > ut)
        fence(p, "paused");
    p->last_tick_ms = now;

    consensus_status st;
    repl_raft_status(p->n->repl, &st);
    p->is_leader = st.role == CONSENSUS_LEADER;
    int leader_known =
        st.role == CONSENSUS_LEADER || (st.role == CONSENSUS_FOLLOWER && st.leader_id != 0);
    if (leader_known) {
        p->no_leader_since = 0;
    } else if (p->no_leader_since == 0) {
        p->no_leader_since = now;
    } else if (now - p->no_leader_since > lost_after && p->ncopies > 0) {
        fence(p, "no leader");
    }
    if (!p->caught_up) {
        if (leader_known && !p->barrier_busy)
            catch_up(p);
        return;
    }
    const consensus_sm *sm = sm_of(p);
    if (!p->return_reported)
        report_return(p);
    uint64_t applied = consensus_sm_applied_index(sm);
    if (applied != p->last_applied || p->rerun || now - p->last_pass_ms >= FULL_PASS_MS ||
        (now - p->last_check_ms >= COPY_CHECK_MS && copies_need_pass(p, now))) {
        p->last_applied = applied;
        p->rerun = 0;
        p->last_pass_ms = now;
        reconcile(p, sm);
    }
    const consensus_node *me = consensus_sm_node_get(sm, p->n->node_id);
    p->draining_me = me != NULL && me->status == CONSENSUS_NODE_DRAINING;
    if (p->draining_me)
        drain_step(p, sm);
    flush_checkpoints(p);
    uint64_t changes = repl_peer_changes(p->n->repl);
    if (st.role == CONSENSUS_LEADER &&
        (now - p->last_failover_ms >= FAILOVER_MS || changes != p->peer_changes)) {
        p->peer_changes = changes;
        p->last_failover_ms = now;
        failover(p, sm);
    }
    int64_t every = nc_config_int(p->n->cfg, NC_CFG_CHECKPOINT_INTERVAL_MS);
    if (every > 0 && now - p->last_periodic_ms >= (uint64_t)every) {
        p->last_periodic_ms = now;
        nc_counter_inc(p->c_rounds);
        mb_runtime *rt = rt_of(p);
        FOR_EACH_COPY(p, c, next)
        {
            (void)next;
            if (!c->alive || c->draining || rt == NULL)
                continue;
            /* An agent that ran no callback since the last round has the
             * state that round's checkpoint saw: asking again would wake a
             * worker for nothing (1,000 idle agents: half the node's idle
             * CPU). Port agents' processes run on their own: always ask. */
            mb_agent_state info;
            if (mb_runtime_agent_state(rt, c->id, &info) != MB_OK)
                continue;
            if (!info.is_port && c->ckpt_asked && info.turns == c->ckpt_turns)
                continue;
            if (mb_runtime_checkpoint_agent(rt, c->id) == MB_OK) {
                c->ckpt_asked = 1;
                c->ckpt_turns = info.turns;
            }
        }
    }
    if (p->drains != NULL)
        drains_check(p);
}

/* ---- open / close ---- */

static double g_local(void *arg)
{
    placement *p = arg;
    double n = 0;
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        n += c->alive;
    }
    return n;
}

static int register_metrics(placement *p, mb_error *err)
{
    nc_metrics *m = p->n->metrics;
    int rv;
    if ((rv = nc_metrics_counter(m, "mb_placement_starts_total",
                                 "Cluster agents started on this node.", NULL, 0, &p->c_started,
                                 err)) != MB_OK ||
        (rv = nc_metrics_counter(m, "mb_placement_fencings_total",
                                 "Times this node stopped its cluster agents (fencing).", NULL, 0,
                                 &p->c_fenced, err)) != MB_OK ||
        (rv = nc_metrics_counter(m, "mb_placement_checkpoints_refused_total",
                                 "Checkpoints above checkpoint_max_bytes (not replicated).", NULL,
                                 0, &p->c_refused, err)) != MB_OK ||
        (rv = nc_metrics_counter(m, "mb_placement_checkpoint_batches_total",
                                 "Checkpoint batches replicated from this node.", NULL, 0,
                                 &p->c_replicated, err)) != MB_OK ||
        (rv = nc_metrics_counter(m, "mb_placement_failovers_total",
                                 "Failover commands proposed by this node as leader.", NULL, 0,
                                 &p->c_failovers, err)) != MB_OK ||
        (rv = nc_metrics_counter(m, "mb_placement_checkpoint_rounds_total",
                                 "Periodic checkpoint rounds run on this node "
                                 "(every checkpoint_interval_ms).",
                                 NULL, 0, &p->c_rounds, err)) != MB_OK)
        return rv;
    return nc_metrics_gauge_fn(m, "mb_placement_local_agents",
                               "Cluster agents running on this node.", NULL, 0, g_local, p, err);
}

int placement_open(node *n, mb_error *err)
{
    placement *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return mb_errorf(err, MB_ENOMEM, "placement: out of memory");
    p->n = n;
    p->nbuckets = 64;
    if ((p->buckets = calloc(p->nbuckets, sizeof(*p->buckets))) == NULL) {
        free(p);
        return mb_errorf(err, MB_ENOMEM, "placement: out of memory");
    }
    int rv = register_metrics(p, err);
    if (rv != MB_OK) {
        free(p->buckets);
        free(p);
        return rv;
    }
    uv_timer_init(&n->loop, &p->timer);
    p->timer.data = p;
    p->timer_open = 1;
    uv_timer_start(&p->timer, tick_cb, TICK_MS, 0);
    uv_check_init(&n->loop, &p->check);
    p->check.data = p;
    p->check_open = 1;
    uv_check_start(&p->check, check_cb);
    n->placement = p;
    return MB_OK;
}

static void free_now(placement *p)
{
    FOR_EACH_COPY(p, c, next)
    {
        (void)next;
        copy_remove(p, c);
    }
    free(p->buckets);
    free(p);
}

static void maybe_free(placement *p)
{
    if (p->closing && !p->timer_open && !p->check_open && p->inflight == 0 && p->drains == NULL)
        free_now(p);
}

static void timer_closed_cb(uv_handle_t *h)
{
    placement *p = h->data;
    p->timer_open = 0;
    maybe_free(p);
}

static void check_closed_cb(uv_handle_t *h)
{
    placement *p = h->data;
    p->check_open = 0;
    maybe_free(p);
}

void placement_close(placement *p)
{
    if (p == NULL || p->closing)
        return;
    p->closing = 1;
    p->n->placement = NULL;
    while (p->drains != NULL) {
        drain_wait *w = p->drains;
        p->drains = w->next;
        api_reply_error(w->call, MB_ECLOSED, "drain of node %llu: node shutting down",
                        (unsigned long long)w->node_id);
        free(w);
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, timer_closed_cb);
    uv_check_stop(&p->check);
    uv_close((uv_handle_t *)&p->check, check_closed_cb);
}
