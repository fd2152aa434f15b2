/* node/cluster_ops.c: node_cluster_ops for mabeamd — agents' variables
 * (get/set/watch) and messages to agents on other nodes (see
 * cluster_ops.h and docs/node-services.md, "Agents and the cluster").
 *
 * Three tables:
 *  - the variable copy (`cache`, rwlock): what var_get returns and what
 *    var_set validates against, on worker threads, without touching the
 *    loop-owned state machine. Refreshed from the apply effects, and by a
 *    periodic full comparison for changes that come without effects
 *    (replay after a restart, snapshot install);
 *  - the watches (loop only): variable -> (agent, last version delivered);
 *  - the per-agent write chains (loop only): one replicated write in
 *    flight per agent, so an agent's writes commit in the order it made
 *    them. */
#include "node/cluster_ops.h"
#include "node/proposals.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "consensus/consensus.h"
#include "node/agent_msg.h"
#include "node/node.h"
#include "node/replication.h"
#include "node/services.h"

#define CACHE_BUCKETS     1024u
#define WATCH_BUCKETS     1024u
#define CHAIN_BUCKETS     1024u
#define SYNC_MS           200u
#define PRUNE_EVERY_SYNCS 25u    /* 5 s */
#define QUEUE_MAX         65536u /* agent writes and watches waiting for the loop */

/* A variable as agents see it (copy of the replicated one). */
typedef struct cvar {
    struct cvar *next;
    char *name;
    mb_var_spec spec;
    mb_var_policy policy;
    mb_value value;
    uint64_t version;
    int seen; /* full sync: still in the state machine */
} cvar;

/* Work queued by a worker for the loop. */
typedef enum { Q_SET, Q_WATCH, Q_SEND_NAME } qkind;

typedef struct qitem {
    struct qitem *next;
    qkind kind;
    mb_agent_id agent;
    char *name;
    mb_value value;        /* SET */
    uint64_t from_version; /* WATCH */
    void *data;            /* SEND_NAME: tag + bytes (agent_msg framing) */
    size_t len;
    struct chain *chain; /* SET, once in its chain */
    struct node_cluster *owner;
} qitem;

/* The writes of one agent, oldest first; the head is in flight. */
typedef struct chain {
    struct chain *next;
    mb_agent_id agent;
    qitem *head, *tail;
    int inflight;
} chain;

typedef struct watcher {
    mb_agent_id agent;
    uint64_t last; /* highest version delivered (or the watch's from_version) */
} watcher;

typedef struct wvar {
    struct wvar *next;
    char *name;
    watcher *w;
    size_t n, cap;
} wvar;

struct node_cluster {
    node *n;
    mb_runtime *rt;

    pthread_rwlock_t cache_lock;
    cvar *cache[CACHE_BUCKETS];

    pthread_mutex_t mu; /* queue, closed, async_open */
    qitem *head, *tail;
    size_t queued;
    int closed;
    uv_async_t async;
    int async_open;

    pthread_rwlock_t send_lock; /* m is NULL once closed */
    mesh *m;
    uint64_t node_id;

    uv_timer_t sync;
    int sync_open;
    uint64_t synced_index;
    unsigned sync_ticks;

    wvar *watches[WATCH_BUCKETS];
    size_t n_wvars; /* watched variables (raftperf2: node_cluster_watching) */
    chain *chains[CHAIN_BUCKETS];

    nc_counter *set_failed;
    nc_counter *delivered;
    nc_counter *dropped;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static uint32_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* ---- the variable copy ---- */

static cvar **cache_slot(node_cluster *c, const char *name)
{
    cvar **p = &c->cache[hash_str(name) % CACHE_BUCKETS];
    while (*p != NULL && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

static void cvar_free(cvar *v)
{
    free(v->name);
    mb_var_spec_free(&v->spec);
    mb_value_free(&v->value);
    free(v);
}

/* Loop: make the copy of `name` match the state machine's `v` (NULL =
 * gone). Returns 1 when something changed. */
static int cache_refresh(node_cluster *c, const char *name, const consensus_var *v)
{
    pthread_rwlock_wrlock(&c->cache_lock);
    cvar **p = cache_slot(c, name);
    cvar *cur = *p;
    int changed = 0;
    if (v == NULL) {
        if (cur != NULL) {
            *p = cur->next;
            cvar_free(cur);
            changed = 1;
        }
        goto out;
    }
    if (cur != NULL) {
        cur->seen = 1;
        if (cur->version == v->version)
            goto out;
    }
    cvar *nv = calloc(1, sizeof(*nv));
    if (nv == NULL || (nv->name = strdup(name)) == NULL ||
        mb_var_spec_copy(&nv->spec, &v->spec) != MB_OK ||
        mb_value_copy(&nv->value, &v->value) != MB_OK) {
        /* Keep the old copy; the next sync tries again. */
        if (nv != NULL)
            cvar_free(nv);
        if (cur != NULL)
            cur->version = 0;
        goto out;
    }
    nv->policy = v->policy;
    nv->version = v->version;
    nv->seen = 1;
    if (cur != NULL) {
        nv->next = cur->next;
        cvar_free(cur);
    }
    *p = nv;
    changed = 1;
out:
    pthread_rwlock_unlock(&c->cache_lock);
    return changed;
}

/* ---- watches (loop) ---- */

static wvar *wvar_find(node_cluster *c, const char *name)
{
    wvar *w = c->watches[hash_str(name) % WATCH_BUCKETS];
    while (w != NULL && strcmp(w->name, name) != 0)
        w = w->next;
    return w;
}

static wvar *wvar_get(node_cluster *c, const char *name)
{
    wvar *w = wvar_find(c, name);
    if (w != NULL)
        return w;
    w = calloc(1, sizeof(*w));
    if (w == NULL || (w->name = strdup(name)) == NULL) {
        free(w);
        return NULL;
    }
    wvar **b = &c->watches[hash_str(name) % WATCH_BUCKETS];
    w->next = *b;
    *b = w;
    c->n_wvars++;
    return w;
}

static void wvar_drop(node_cluster *c, wvar *w)
{
    wvar **p = &c->watches[hash_str(w->name) % WATCH_BUCKETS];
    while (*p != w)
        p = &(*p)->next;
    *p = w->next;
    c->n_wvars--;
    free(w->name);
    free(w->w);
    free(w);
}

/* Hand every version newer than each watcher's last to the watchers of
 * `v` (the current state); watchers whose agent is gone are dropped. */
static void watchers_notify(node_cluster *c, wvar *w, const consensus_var *v)
{
    /* Everyone behind gets this version in one fan-out (one shared copy of
     * the value, one run-queue lock for all): see mb_runtime_var_changed_many. */
    mb_agent_id ids_small[64];
    int rcs_small[64];
    mb_agent_id *ids = ids_small;
    int *rcs = rcs_small;
    size_t n = 0;
    for (size_t i = 0; i < w->n; i++)
        n += v->version > w->w[i].last;
    if (n > sizeof(ids_small) / sizeof(ids_small[0])) {
        ids = malloc(n * sizeof(*ids));
        rcs = malloc(n * sizeof(*rcs));
    }
    if (ids != NULL && rcs != NULL) {
        n = 0;
        for (size_t i = 0; i < w->n; i++)
            if (v->version > w->w[i].last)
                ids[n++] = w->w[i].agent;
        (void)mb_runtime_var_changed_many(c->rt, ids, n, v->name, &v->value, v->version, rcs);
    } else {
        for (size_t i = 0; rcs != NULL && i < n; i++)
            rcs[i] = MB_ENOMEM;
    }
    size_t k = 0, j = 0;
    for (size_t i = 0; i < w->n; i++) {
        watcher *e = &w->w[i];
        if (v->version > e->last) {
            int rc = rcs != NULL ? rcs[j++] : MB_ENOMEM;
            if (rc == MB_ENOAGENT)
                continue; /* the agent ended: forget its watch */
            if (rc == MB_OK) {
                nc_counter_inc(c->delivered);
            } else {
                nc_counter_inc(c->dropped);
                NC_LOGKV(c->n->log, NC_LOG_WARN, "agents", "variable change not delivered",
                         NC_F_U64("agent", e->agent), NC_F_STR("var", v->name),
                         NC_F_U64("version", v->version), NC_F_STR("error", mb_errname(rc)));
            }
            e->last = v->version;
        }
        w->w[k++] = *e;
    }
    w->n = k;
    if (ids != ids_small)
        free(ids);
    if (rcs != rcs_small)
        free(rcs);
    if (w->n == 0)
        wvar_drop(c, w);
}

static void watch_add(node_cluster *c, mb_agent_id agent, const char *name, uint64_t from)
{
    wvar *w = wvar_get(c, name);
    if (w == NULL)
        goto nomem;
    watcher *e = NULL;
    for (size_t i = 0; i < w->n; i++)
        if (w->w[i].agent == agent)
            e = &w->w[i];
    if (e == NULL) {
        if (w->n == w->cap) {
            size_t cap = w->cap != 0 ? w->cap * 2 : 4;
            watcher *nw = realloc(w->w, cap * sizeof(*nw));
            if (nw == NULL) {
                if (w->n == 0)
                    wvar_drop(c, w);
                goto nomem;
            }
            w->w = nw;
            w->cap = cap;
        }
        e = &w->w[w->n++];
        e->agent = agent;
    }
    e->last = from;
    const consensus_var *v = consensus_sm_var_get(repl_sm(c->n->repl), name);
    if (v != NULL)
        watchers_notify(c, w, v);
    return;
nomem:
    NC_LOGKV(c->n->log, NC_LOG_ERROR, "agents", "out of memory: variable watch lost",
             NC_F_U64("agent", agent), NC_F_STR("var", name));
}

int node_cluster_watching(const node_cluster *c)
{
    return c != NULL && c->n_wvars > 0;
}

/* A change of `name`: refresh the copy and tell the watchers. */
static void var_refresh(node_cluster *c, const char *name)
{
    const consensus_var *v = consensus_sm_var_get(repl_sm(c->n->repl), name);
    cache_refresh(c, name, v);
    wvar *w = wvar_find(c, name);
    if (w != NULL && v != NULL)
        watchers_notify(c, w, v);
}

void node_cluster_var_changed(node_cluster *c, const char *name, uint64_t version)
{
    (void)version; /* the state machine's current version is the one delivered */
    if (c == NULL || c->closed)
        return;
    repl_commit_nudge_watched(c->n->repl); /* followers' watchers learn it now */
    var_refresh(c, name);
}

/* Compare the whole copy with the state machine (changes without
 * effects); cheap when nothing changed. */
static void full_sync(node_cluster *c)
{
    const consensus_sm *sm = repl_sm(c->n->repl);
    uint64_t idx = consensus_sm_applied_index(sm);
    if (idx == c->synced_index)
        return;
    c->synced_index = idx;
    pthread_rwlock_wrlock(&c->cache_lock);
    for (size_t b = 0; b < CACHE_BUCKETS; b++)
        for (cvar *v = c->cache[b]; v != NULL; v = v->next)
            v->seen = 0;
    pthread_rwlock_unlock(&c->cache_lock);
    size_t count = consensus_sm_var_count(sm);
    for (size_t i = 0; i < count; i++) {
        const consensus_var *v = consensus_sm_var_at(sm, i);
        if (cache_refresh(c, v->name, v)) {
            wvar *w = wvar_find(c, v->name);
            if (w != NULL)
                watchers_notify(c, w, v);
        }
    }
    /* Deleted meanwhile. */
    pthread_rwlock_wrlock(&c->cache_lock);
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        cvar **p = &c->cache[b];
        while (*p != NULL) {
            cvar *v = *p;
            if (!v->seen) {
                *p = v->next;
                cvar_free(v);
            } else {
                p = &v->next;
            }
        }
    }
    pthread_rwlock_unlock(&c->cache_lock);
}

/* Forget the watches of agents that ended (a variable that never changes
 * again would otherwise keep them). */
static void prune_watches(node_cluster *c)
{
    for (size_t b = 0; b < WATCH_BUCKETS; b++) {
        wvar *w = c->watches[b];
        while (w != NULL) {
            wvar *next = w->next;
            size_t k = 0;
            for (size_t i = 0; i < w->n; i++) {
                mb_agent_state st;
                if (mb_runtime_agent_state(c->rt, w->w[i].agent, &st) == MB_OK)
                    w->w[k++] = w->w[i];
            }
            w->n = k;
            if (w->n == 0)
                wvar_drop(c, w);
            w = next;
        }
    }
}

static void sync_cb(uv_timer_t *t)
{
    node_cluster *c = t->data;
    /* idle: one-shot on the SYNC_MS grid (woken with the other timers) */
    uv_timer_start(&c->sync, sync_cb, node_aligned_delay(&c->n->loop, SYNC_MS), 0);
    if (c->closed || c->n->repl == NULL)
        return;
    full_sync(c);
    if (++c->sync_ticks % PRUNE_EVERY_SYNCS == 0)
        prune_watches(c);
}

/* ---- agent writes (loop) ---- */

static void qitem_free(qitem *q)
{
    free(q->data);
    free(q->name);
    mb_value_free(&q->value);
    free(q);
}

static chain **chain_slot(node_cluster *c, mb_agent_id agent)
{
    chain **p = &c->chains[hash_u64(agent) % CHAIN_BUCKETS];
    while (*p != NULL && (*p)->agent != agent)
        p = &(*p)->next;
    return p;
}

static void set_failed(node_cluster *c, const qitem *q, int code, const char *msg)
{
    char hex[AGENT_MSG_ID_CHARS + 1];
    agent_msg_id_text(q->agent, hex);
    nc_counter_inc(c->set_failed);
    NC_LOGKV(c->n->log, NC_LOG_WARN, "agents", "agent variable write failed",
             NC_F_STR("agent", hex), NC_F_STR("var", q->name), NC_F_STR("code", mb_errname(code)),
             NC_F_STR("error", msg));
    cJSON *p = cJSON_CreateObject();
    if (p != NULL) {
        cJSON_AddStringToObject(p, "agent", hex);
        cJSON_AddStringToObject(p, "var", q->name);
        cJSON_AddStringToObject(p, "code", mb_errname(code));
        cJSON_AddStringToObject(p, "error", msg);
    }
    node_event(c->n, "agent.var_set_failed", hex, p);
    cJSON_Delete(p);
}

static void chain_next(node_cluster *c, chain *ch);

static void set_done(void *arg, const consensus_result *res)
{
    qitem *q = arg;
    chain *ch = q->chain;
    node_cluster *c = q->owner;
    assert(ch->head == q);
    ch->head = q->next;
    if (ch->head == NULL)
        ch->tail = NULL;
    ch->inflight = 0;
    if (res->code != MB_OK)
        set_failed(c, q, res->code, res->msg);
    qitem_free(q);
    chain_next(c, ch);
}

/* Submit the chain's head, or free the chain when empty. */
static void chain_next(node_cluster *c, chain *ch)
{
    while (ch->head != NULL && !ch->inflight) {
        qitem *q = ch->head;
        char hex[AGENT_MSG_ID_CHARS + 1];
        agent_msg_id_text(q->agent, hex);
        consensus_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.kind = CONSENSUS_CMD_VAR_SET;
        cmd.name = q->name;
        cmd.value = q->value;
        cmd.by = hex;
        int rv = c->n->repl != NULL && !c->closed ? repl_submit(c->n->repl, &cmd, 0, set_done, q)
                                                  : MB_ECLOSED;
        if (rv == MB_OK) {
            ch->inflight = 1;
            return;
        }
        set_failed(c, q, rv, mb_strerror(rv));
        ch->head = q->next;
        if (ch->head == NULL)
            ch->tail = NULL;
        qitem_free(q);
    }
    if (ch->head == NULL && !ch->inflight) {
        chain **p = chain_slot(c, ch->agent);
        assert(*p == ch);
        *p = ch->next;
        free(ch);
    }
}

static void set_enqueue(node_cluster *c, qitem *q)
{
    chain **p = chain_slot(c, q->agent);
    chain *ch = *p;
    if (ch == NULL) {
        ch = calloc(1, sizeof(*ch));
        if (ch == NULL) {
            set_failed(c, q, MB_ENOMEM, "out of memory");
            qitem_free(q);
            return;
        }
        ch->agent = q->agent;
        *p = ch;
    }
    q->chain = ch;
    q->owner = c;
    q->next = NULL;
    if (ch->tail != NULL)
        ch->tail->next = q;
    else
        ch->head = q;
    ch->tail = q;
    chain_next(c, ch);
}

/* Loop: take what the workers queued, in order. */
#define NAME_PREFIX     "cluster:"
#define NAME_PREFIX_LEN 8u

/* failover2: a message to a cluster agent by name, on the loop: to the
 * node its placement names now (replicated state), addressed by name; a
 * name without placement, or whose node is this one but that does not run
 * here (starting, moving), is dropped and counted (at most once). */
static void send_name_route(node_cluster *c, const qitem *q)
{
    const consensus_sm *sm = repl_sm(c->n->repl);
    const consensus_agent *a = sm != NULL ? consensus_sm_agent_get(sm, q->name) : NULL;
    int rc = MB_ENOAGENT;
    if (a != NULL && a->node == c->node_id) {
        mb_agent_id to;
        const unsigned char *b = q->data;
        uint32_t tag = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (c->n->services != NULL &&
            node_services_lookup(c->n->services, "cluster", q->name, &to) == MB_OK)
            rc = mb_runtime_deliver(c->rt, q->agent, to, tag, b + AGENT_MSG_TAG_BYTES,
                                    q->len - AGENT_MSG_TAG_BYTES);
    } else if (a != NULL) {
        char fh[AGENT_MSG_ID_CHARS + 1], th[NAME_PREFIX_LEN + CONSENSUS_ID_MAX + 2];
        agent_msg_id_text(q->agent, fh);
        snprintf(th, sizeof(th), NAME_PREFIX "%s", q->name);
        mb_error e;
        mb_error_clear(&e);
        pthread_rwlock_rdlock(&c->send_lock);
        rc = c->m != NULL ? mesh_send_agent(c->m, a->node, fh, th, q->data, q->len, &e)
                          : MB_EUNAVAIL;
        pthread_rwlock_unlock(&c->send_lock);
    }
    if (rc != MB_OK) {
        nc_counter_inc(c->dropped);
        NC_LOGKV(c->n->log, NC_LOG_DEBUG, "agents", "message to a cluster agent by name dropped",
                 NC_F_STR("to", q->name), NC_F_STR("error", mb_errname(rc)));
    }
}

static void drain(node_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    qitem *list = c->head;
    c->head = c->tail = NULL;
    c->queued = 0;
    pthread_mutex_unlock(&c->mu);
    while (list != NULL) {
        qitem *q = list;
        list = q->next;
        if (c->closed || c->n->repl == NULL) {
            if (q->kind == Q_SET)
                set_failed(c, q, MB_ECLOSED, "node is shutting down");
            qitem_free(q);
        } else if (q->kind == Q_WATCH) {
            watch_add(c, q->agent, q->name, q->from_version);
            qitem_free(q);
        } else if (q->kind == Q_SEND_NAME) {
            send_name_route(c, q);
            qitem_free(q);
        } else {
            set_enqueue(c, q);
        }
    }
}

static void async_cb(uv_async_t *h)
{
    drain(h->data);
}

/* Any thread: queue for the loop. MB_EUNAVAIL once closed, MB_EFULL. */
static int enqueue(node_cluster *c, qitem *q)
{
    pthread_mutex_lock(&c->mu);
    if (c->closed || !c->async_open) {
        pthread_mutex_unlock(&c->mu);
        return MB_EUNAVAIL;
    }
    if (c->queued >= QUEUE_MAX) {
        pthread_mutex_unlock(&c->mu);
        return MB_EFULL;
    }
    q->next = NULL;
    if (c->tail != NULL)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->queued++;
    uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
    return MB_OK;
}

/* ---- node_cluster_ops (agent worker threads) ---- */

static int op_var_get(void *ctx, const char *name, mb_value *out, uint64_t *version)
{
    node_cluster *c = ctx;
    pthread_rwlock_rdlock(&c->cache_lock);
    cvar *v = *cache_slot(c, name);
    int rc = MB_ENOTFOUND;
    if (v != NULL) {
        rc = mb_value_copy(out, &v->value);
        if (rc == MB_OK && version != NULL)
            *version = v->version;
    }
    pthread_rwlock_unlock(&c->cache_lock);
    return rc;
}

static int op_var_set(void *ctx, mb_agent_id who, const char *name, const mb_value *value)
{
    node_cluster *c = ctx;
    mb_error e;
    mb_error_clear(&e);
    pthread_rwlock_rdlock(&c->cache_lock);
    cvar *v = *cache_slot(c, name);
    int rc = v == NULL                          ? MB_ENOTFOUND
             : v->policy == MB_POLICY_CONSENSUS ? MB_EPERM
                                                : mb_value_validate(name, &v->spec, value, &e);
    pthread_rwlock_unlock(&c->cache_lock);
    if (rc != MB_OK)
        return rc;
    qitem *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return MB_ENOMEM;
    q->kind = Q_SET;
    q->agent = who;
    if ((q->name = strdup(name)) == NULL || mb_value_copy(&q->value, value) != MB_OK) {
        qitem_free(q);
        return MB_ENOMEM;
    }
    if ((rc = enqueue(c, q)) != MB_OK)
        qitem_free(q);
    return rc;
}

static int op_var_watch(void *ctx, mb_agent_id who, const char *name, uint64_t from_version)
{
    node_cluster *c = ctx;
    mb_error e;
    if (mb_var_name_check(name, &e) != MB_OK)
        return MB_EINVAL;
    qitem *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return MB_ENOMEM;
    q->kind = Q_WATCH;
    q->agent = who;
    q->from_version = from_version;
    if ((q->name = strdup(name)) == NULL) {
        free(q);
        return MB_ENOMEM;
    }
    int rc = enqueue(c, q);
    if (rc != MB_OK)
        qitem_free(q);
    return rc;
}

static int op_send_remote(void *ctx, mb_agent_id from, mb_agent_id to, uint32_t tag,
                          const void *data, size_t len)
{
    node_cluster *c = ctx;
    uint64_t peer = MB_AGENT_NODE(to);
    if (peer == 0 || peer == c->node_id)
        return MB_ENOAGENT;
    if (len > SIZE_MAX - AGENT_MSG_TAG_BYTES)
        return MB_ETOOBIG;
    unsigned char stackbuf[256];
    size_t total = len + AGENT_MSG_TAG_BYTES;
    unsigned char *buf = total <= sizeof(stackbuf) ? stackbuf : malloc(total);
    if (buf == NULL)
        return MB_ENOMEM;
    agent_msg_put_tag(buf, tag);
    if (len > 0)
        memcpy(buf + AGENT_MSG_TAG_BYTES, data, len);
    char fh[AGENT_MSG_ID_CHARS + 1], th[AGENT_MSG_ID_CHARS + 1];
    agent_msg_id_text(from, fh);
    agent_msg_id_text(to, th);
    mb_error e;
    mb_error_clear(&e);
    int rc = MB_EUNAVAIL;
    pthread_rwlock_rdlock(&c->send_lock);
    if (c->m != NULL)
        rc = mesh_send_agent(c->m, peer, fh, th, buf, total, &e);
    pthread_rwlock_unlock(&c->send_lock);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

static int op_send_name(void *ctx, mb_agent_id from, const char *name, uint32_t tag,
                        const void *data, size_t len)
{
    node_cluster *c = ctx;
    if (name == NULL || name[0] == '\0' || strlen(name) > CONSENSUS_ID_MAX)
        return MB_EINVAL;
    if (len > (4u << 20))
        return MB_ETOOBIG;
    qitem *q = calloc(1, sizeof(*q));
    if (q == NULL || (q->name = strdup(name)) == NULL ||
        (q->data = malloc(len + AGENT_MSG_TAG_BYTES)) == NULL) {
        if (q != NULL)
            qitem_free(q);
        return MB_ENOMEM;
    }
    q->kind = Q_SEND_NAME;
    q->agent = from;
    q->len = len + AGENT_MSG_TAG_BYTES;
    agent_msg_put_tag(q->data, tag);
    if (len > 0)
        memcpy((char *)q->data + AGENT_MSG_TAG_BYTES, data, len);
    int rc = enqueue(c, q);
    if (rc != MB_OK)
        qitem_free(q);
    return rc;
}

/* ---- incoming agent messages (loop, from the mesh) ---- */

void node_cluster_agent_message(node_cluster *c, uint64_t from_node, const char *from_agent,
                                const char *to_agent, const void *payload, size_t len)
{
    if (c == NULL || c->closed)
        return;
    agent_msg am;
    /* addressed by name ("cluster:NAME"): the agent registered so here */
    char by_name[AGENT_MSG_ID_CHARS + 1];
    if (to_agent != NULL && strncmp(to_agent, NAME_PREFIX, NAME_PREFIX_LEN) == 0) {
        mb_agent_id to = 0;
        if (c->n->services == NULL ||
            node_services_lookup(c->n->services, "cluster", to_agent + NAME_PREFIX_LEN, &to) !=
                MB_OK) {
            nc_counter_inc(c->dropped);
            NC_LOGKV(c->n->log, NC_LOG_DEBUG, "agents",
                     "agent message by name: no such cluster agent here", NC_F_STR("to", to_agent));
            return;
        }
        agent_msg_id_text(to, by_name);
        to_agent = by_name;
    }
    const char *why =
        agent_msg_decode(c->node_id, from_node, from_agent, to_agent, payload, len, &am);
    if (why != NULL) {
        nc_counter_inc(c->dropped);
        NC_LOGKV(c->n->log, NC_LOG_WARN, "agents", "agent message from another node refused",
                 NC_F_U64("node", from_node), NC_F_STR("reason", why));
        return;
    }
    int rc = mb_runtime_deliver(c->rt, am.from, am.to, am.tag, am.data, am.len);
    if (rc == MB_OK) {
        nc_counter_inc(c->delivered);
        return;
    }
    nc_counter_inc(c->dropped);
    NC_LOGKV(c->n->log, NC_LOG_DEBUG, "agents", "agent message from another node not delivered",
             NC_F_STR("to", to_agent), NC_F_STR("error", mb_errname(rc)));
}

/* ---- open / close ---- */

static void cluster_free(node_cluster *c)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++)
        while (c->cache[b] != NULL) {
            cvar *v = c->cache[b];
            c->cache[b] = v->next;
            cvar_free(v);
        }
    for (size_t b = 0; b < WATCH_BUCKETS; b++)
        while (c->watches[b] != NULL)
            wvar_drop(c, c->watches[b]);
    for (size_t b = 0; b < CHAIN_BUCKETS; b++)
        while (c->chains[b] != NULL) {
            chain *ch = c->chains[b];
            c->chains[b] = ch->next;
            while (ch->head != NULL) {
                qitem *q = ch->head;
                ch->head = q->next;
                qitem_free(q);
            }
            free(ch);
        }
    pthread_rwlock_destroy(&c->cache_lock);
    pthread_rwlock_destroy(&c->send_lock);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void handle_closed(uv_handle_t *h)
{
    node_cluster *c = h->data;
    if (h == (uv_handle_t *)&c->async)
        c->async_open = 0;
    else
        c->sync_open = 0;
    if (!c->async_open && !c->sync_open)
        cluster_free(c);
}

static int register_metrics(node_cluster *c, mb_error *err)
{
    int rv;
    if ((rv = nc_metrics_counter(c->n->metrics, "mb_cluster_agent_var_set_failures_total",
                                 "Agent variable writes accepted by mb_var_set that did not "
                                 "commit (no quorum, conflict, shutdown).",
                                 NULL, 0, &c->set_failed, err)) != MB_OK ||
        (rv = nc_metrics_counter(c->n->metrics, "mb_cluster_agent_deliveries_total",
                                 "Variable changes and messages from other nodes handed to "
                                 "local agents.",
                                 NULL, 0, &c->delivered, err)) != MB_OK ||
        (rv = nc_metrics_counter(c->n->metrics, "mb_cluster_agent_drops_total",
                                 "Variable changes and messages from other nodes that could "
                                 "not be handed to a local agent (gone, full, refused).",
                                 NULL, 0, &c->dropped, err)) != MB_OK)
        return rv;
    return MB_OK;
}

int node_cluster_open(node *n, mb_error *err)
{
    int rv;
    assert(n->repl != NULL && n->services != NULL);
    node_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return mb_errorf(err, MB_ENOMEM, "cluster services: out of memory");
    c->n = n;
    c->rt = node_services_runtime(n->services);
    c->node_id = n->node_id;
    c->m = repl_mesh(n->repl);
    pthread_rwlock_init(&c->cache_lock, NULL);
    pthread_rwlock_init(&c->send_lock, NULL);
    pthread_mutex_init(&c->mu, NULL);
    if ((rv = register_metrics(c, err)) != MB_OK) {
        cluster_free(c);
        return rv;
    }
    if ((rv = uv_async_init(&n->loop, &c->async, async_cb)) != 0) {
        cluster_free(c);
        return mb_errorf(err, MB_EIO, "cluster services: async handle: %s", uv_strerror(rv));
    }
    c->async.data = c;
    c->async_open = 1;
    uv_timer_init(&n->loop, &c->sync);
    c->sync.data = c;
    c->sync_open = 1;
    uv_timer_start(&c->sync, sync_cb, node_aligned_delay(&n->loop, SYNC_MS), 0);
    full_sync(c);
    n->cluster = c;
    node_cluster_ops ops = {
        .ctx = c,
        .send_remote = op_send_remote,
        .send_name = op_send_name,
        .var_get = op_var_get,
        .var_set = op_var_set,
        .var_watch = op_var_watch,
    };
    node_proposals_fill_ops(&ops); /* propose and vote: node/proposals.c */
    node_services_set_cluster(n->services, &ops);
    return MB_OK;
}

void node_cluster_close(node_cluster *c)
{
    if (c == NULL)
        return;
    node *n = c->n;
    node_services_set_cluster(n->services, NULL);
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_wrlock(&c->send_lock);
    c->m = NULL;
    pthread_rwlock_unlock(&c->send_lock);
    drain(c); /* refuses what is queued */
    n->cluster = NULL;
    /* Workers may still hold `c` until node_services_stop joins them; the
     * handles' close callbacks (a later loop turn) free it. */
    uv_close((uv_handle_t *)&c->async, handle_closed);
    uv_close((uv_handle_t *)&c->sync, handle_closed);
}
