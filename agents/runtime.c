/* The agent runtime core: agent map, mailboxes, the worker scheduler, the
 * exit path (links, monitors, parents), the SDK context functions and the
 * management API. Timers live in timers.c, kinds in kinds.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents/internal.h"

#define MAP_SHARDS      64
#define RQ_PREFETCH_MIN 16 /* worker_main */

struct map_shard {
    pthread_mutex_t mu;
    struct rt_agent **b;
    size_t mask;
    size_t n;
    char pad[64];
};

struct worker {
    pthread_t th;
    struct mb_runtime *rt;
    struct rt_agent *lifo; /* next agent to run on this worker */
    unsigned idx;
};

struct mb_runtime {
    mb_runtime_config cfg;
    mb_services svc;
    struct map_shard shards[MAP_SHARDS];
    _Atomic uint64_t next_serial;
    _Atomic uint64_t next_ref;
    _Atomic uint64_t live;
    _Atomic long pending; /* agents queued or running */

    /* global run queue */
    pthread_mutex_t rq_mu;
    pthread_cond_t rq_cv;
    struct rt_agent **rq;
    size_t rq_cap, rq_head, rq_n;
    _Atomic size_t rq_hint; /* rq_n, readable without the lock (spinning) */
    unsigned sleepers;
    int workers_exit;     /* under rq_mu: workers leave when idle */
    _Atomic int stopping; /* no new spawns */

    struct worker *workers;
    unsigned nworkers;
    struct rt_timers *timers;
    struct rt_port_io *port_io;

    /* kinds.c */
    pthread_rwlock_t kinds_mu;
    struct rt_kind *kinds;
    void **libs;
    size_t nlibs;
};

static _Thread_local struct worker *tl_worker;

/* ---- small helpers ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Coarse monotonic clock (a few ns, 1-4 ms resolution): per-turn timing.
 * Summing coarse deltas over many turns is an unbiased estimate of the time
 * spent (a tick falls inside a turn with probability length/tick). */
static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t default_mono_ms(void *impl)
{
    (void)impl;
    return mono_ns() / 1000000ull;
}

static uint64_t default_now_ms(void *impl)
{
    (void)impl;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static _Thread_local uint64_t tl_rand = 0;

static uint64_t default_random(void *impl)
{
    (void)impl;
    if (tl_rand == 0)
        tl_rand = mono_ns() | 1;
    tl_rand ^= tl_rand << 13;
    tl_rand ^= tl_rand >> 7;
    tl_rand ^= tl_rand << 17;
    return tl_rand;
}

const mb_services *rt_services(struct mb_runtime *rt)
{
    return &rt->svc;
}

const mb_runtime_config *rt_config(struct mb_runtime *rt)
{
    return &rt->cfg;
}

uint64_t rt_monotonic_ms(struct mb_runtime *rt)
{
    return rt->svc.monotonic_ms(rt->svc.impl);
}

struct rt_timers *rt_timers_of(struct mb_runtime *rt)
{
    return rt->timers;
}

struct rt_port_io *rt_port_io_of(struct mb_runtime *rt)
{
    return rt->port_io;
}

const char *mb_exit_reason_name(int reason)
{
    switch (reason) {
    case MB_EXIT_NORMAL:
        return "normal";
    case MB_EXIT_CRASH:
        return "crash";
    case MB_EXIT_KILLED:
        return "killed";
    case MB_EXIT_SHUTDOWN:
        return "shutdown";
    case MB_EXIT_LINK:
        return "link";
    case MB_EXIT_NOPROC:
        return "noproc";
    default:
        return "unknown";
    }
}

const char *mb_agent_event_name(int type)
{
    static const char *names[] = { "spawned",  "stopped",        "crashed",      "restarted",
                                   "upgraded", "upgrade_failed", "pool_resized", "escalated" };
    if (type < 0 || (size_t)type >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[type];
}

void rt_event(struct mb_runtime *rt, int type, mb_agent_id id, const mb_agent_kind *kind,
              int reason, int code, const char *detail)
{
    if (rt->svc.event == NULL)
        return;
    mb_agent_event ev = {
        .type = type,
        .id = id,
        .kind = kind ? kind->name : "",
        .version = kind ? kind->version : 0,
        .reason = reason,
        .code = code,
        .detail = detail ? detail : "",
        .time_ms = rt->svc.now_ms(rt->svc.impl),
    };
    rt->svc.event(rt->svc.impl, &ev);
}

void rt_telemetry(struct mb_runtime *rt, const char *metric, const char *label, double value)
{
    if (rt->svc.telemetry != NULL)
        rt->svc.telemetry(rt->svc.impl, metric, label ? label : "", value);
}

/* ---- messages ---- */

/* A message's header, not yet queued anywhere. */
static void msg_init(struct rt_msg *m, uint32_t flags, mb_agent_id from, uint32_t type,
                     uint32_t tag, size_t len)
{
    m->flags = flags;
    atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
    m->from = from;
    m->type = type;
    m->tag = tag;
    m->len = len;
    m->ext = NULL;
    m->ext_free = NULL;
}

struct rt_msg *rt_msg_new(mb_agent_id from, uint32_t type, uint32_t tag, const void *data,
                          size_t len)
{
    /* Plain malloc: a magazine-style message pool was tried and measured
     * slower under the flood benchmark (docs/BENCHMARKS.md). */
    struct rt_msg *m = malloc(sizeof(*m) + len);
    if (m == NULL)
        return NULL;
    msg_init(m, 0, from, type, tag, len);
    if (len > 0) {
        if (data != NULL)
            memcpy(m->data, data, len);
        else
            memset(m->data, 0, len);
    }
    return m;
}

void rt_msg_free(struct rt_msg *m)
{
    int inblock = (m->flags & RT_MSG_INBLOCK) != 0;
    if (m->ext_free != NULL)
        m->ext_free(m->ext); /* for a block's message: may free m too */
    if (!inblock)
        free(m);
}

/* ---- mailbox (Vyukov MPSC, intrusive, with stub) ---- */

static void mbox_init(struct rt_agent *a)
{
    atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&a->mb_head, &a->stub, memory_order_relaxed);
    a->mb_tail = &a->stub;
}

static void mbox_push(struct rt_agent *a, struct rt_msg *m)
{
    atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
    struct rt_msg *prev = atomic_exchange_explicit(&a->mb_head, m, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, m, memory_order_release);
}

/* Consumer side; NULL when empty (or a producer is mid-push). */
static struct rt_msg *mbox_pop(struct rt_agent *a)
{
    struct rt_msg *tail = a->mb_tail;
    struct rt_msg *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &a->stub) {
        if (next == NULL)
            return NULL;
        a->mb_tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        a->mb_tail = next;
        return tail;
    }
    struct rt_msg *head = atomic_load_explicit(&a->mb_head, memory_order_acquire);
    if (tail != head)
        return NULL;
    mbox_push(a, &a->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        a->mb_tail = next;
        return tail;
    }
    return NULL;
}

/* ---- agent map ---- */

static inline struct map_shard *shard_of(struct mb_runtime *rt, mb_agent_id id)
{
    return &rt->shards[MB_AGENT_LOCAL(id) % MAP_SHARDS];
}

static inline size_t bucket_of(const struct map_shard *s, mb_agent_id id)
{
    return (size_t)((MB_AGENT_LOCAL(id) / MAP_SHARDS) * 0x9E3779B97F4A7C15ull >> 20) & s->mask;
}

/* Caller holds s->mu. */
static struct rt_agent *map_find_locked(struct map_shard *s, mb_agent_id id)
{
    if (s->b == NULL)
        return NULL;
    for (struct rt_agent *a = s->b[bucket_of(s, id)]; a != NULL; a = a->hnext)
        if (a->id == id)
            return a;
    return NULL;
}

static int map_insert(struct mb_runtime *rt, struct rt_agent *a)
{
    struct map_shard *s = shard_of(rt, a->id);
    pthread_mutex_lock(&s->mu);
    if (s->b == NULL || s->n >= s->mask + 1) {
        size_t ncap = s->b == NULL ? 64 : (s->mask + 1) * 2;
        struct rt_agent **nb = calloc(ncap, sizeof(*nb));
        if (nb == NULL) {
            pthread_mutex_unlock(&s->mu);
            return MB_ENOMEM;
        }
        size_t omask = s->mask;
        struct rt_agent **ob = s->b;
        s->b = nb;
        s->mask = ncap - 1;
        if (ob != NULL) {
            for (size_t i = 0; i <= omask; i++) {
                struct rt_agent *x = ob[i];
                while (x != NULL) {
                    struct rt_agent *nx = x->hnext;
                    size_t k = bucket_of(s, x->id);
                    x->hnext = nb[k];
                    nb[k] = x;
                    x = nx;
                }
            }
            free(ob);
        }
    }
    size_t k = bucket_of(s, a->id);
    a->hnext = s->b[k];
    s->b[k] = a;
    s->n++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void map_remove(struct mb_runtime *rt, struct rt_agent *a)
{
    struct map_shard *s = shard_of(rt, a->id);
    pthread_mutex_lock(&s->mu);
    struct rt_agent **pp = &s->b[bucket_of(s, a->id)];
    while (*pp != NULL && *pp != a)
        pp = &(*pp)->hnext;
    if (*pp == a) {
        *pp = a->hnext;
        s->n--;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- scheduler ---- */

static void rq_push_locked(struct mb_runtime *rt, struct rt_agent *a)
{
    if (rt->rq_n == rt->rq_cap) {
        size_t ncap = rt->rq_cap ? rt->rq_cap * 2 : 1024;
        struct rt_agent **nq = malloc(ncap * sizeof(*nq));
        /* Out of memory here would lose a runnable agent: a bug-level
         * condition we cannot report to anyone. */
        if (nq == NULL)
            abort();
        for (size_t i = 0; i < rt->rq_n; i++)
            nq[i] = rt->rq[(rt->rq_head + i) % rt->rq_cap];
        free(rt->rq);
        rt->rq = nq;
        rt->rq_cap = ncap;
        rt->rq_head = 0;
    }
    rt->rq[(rt->rq_head + rt->rq_n) % rt->rq_cap] = a;
    rt->rq_n++;
    atomic_store_explicit(&rt->rq_hint, rt->rq_n, memory_order_release);
    if (rt->sleepers > 0)
        pthread_cond_signal(&rt->rq_cv);
}

/* Several agents made runnable together: one lock, and at most as many
 * wake-ups as there are sleeping workers (not one per agent). */
static void rq_push_many(struct mb_runtime *rt, struct rt_agent **as, size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&rt->rq_mu);
    unsigned sleepers = rt->sleepers;
    rt->sleepers = 0; /* no per-agent signal from rq_push_locked */
    for (size_t i = 0; i < n; i++)
        rq_push_locked(rt, as[i]);
    rt->sleepers = sleepers;
    if (sleepers > 0) {
        if (n >= sleepers)
            pthread_cond_broadcast(&rt->rq_cv);
        else
            for (size_t i = 0; i < n; i++)
                pthread_cond_signal(&rt->rq_cv);
    }
    pthread_mutex_unlock(&rt->rq_mu);
}

static void rq_push(struct mb_runtime *rt, struct rt_agent *a)
{
    pthread_mutex_lock(&rt->rq_mu);
    rq_push_locked(rt, a);
    pthread_mutex_unlock(&rt->rq_mu);
}

/* Make `a` runnable if it is not already queued or running. Every call
 * bumps `sched`, so the owner's compare-and-swap at the end of a turn sees
 * wake-ups that arrived meanwhile (see release_agent). */
static void schedule(struct mb_runtime *rt, struct rt_agent *a)
{
    if (atomic_fetch_add_explicit(&a->sched, 1, memory_order_seq_cst) != 0)
        return;
    atomic_fetch_add_explicit(&rt->pending, 1, memory_order_relaxed);
    struct worker *w = tl_worker;
    if (w != NULL && w->rt == rt) {
        struct rt_agent *old = w->lifo;
        w->lifo = a;
        if (old == NULL)
            return;
        a = old;
    }
    rq_push(rt, a);
}

/* The caller owns `a` (sched != 0) and is done with it: requeue it if it
 * has work, else let it go idle. After a successful release `a` may run
 * (and end, and be freed) on another worker at once: no access after. */
static void release_agent(struct mb_runtime *rt, struct rt_agent *a)
{
    uint32_t seen = atomic_load_explicit(&a->sched, memory_order_seq_cst);
    if (!a->exiting && atomic_load_explicit(&a->mlen, memory_order_seq_cst) == 0 &&
        !atomic_load_explicit(&a->kill_req, memory_order_seq_cst) &&
        !atomic_load_explicit(&a->crash_req, memory_order_seq_cst) &&
        atomic_compare_exchange_strong_explicit(&a->sched, &seen, 0, memory_order_seq_cst,
                                                memory_order_seq_cst)) {
        atomic_fetch_sub_explicit(&rt->pending, 1, memory_order_relaxed);
        return;
    }
    /* Work left, or a wake-up came in since `seen`: keep it, requeue. */
    atomic_store_explicit(&a->sched, 1, memory_order_relaxed);
    rq_push(rt, a); /* behind the others: fairness */
}

int rt_deliver(struct mb_runtime *rt, mb_agent_id to, struct rt_msg *m)
{
    struct map_shard *s = shard_of(rt, to);
    pthread_mutex_lock(&s->mu);
    struct rt_agent *a = map_find_locked(s, to);
    if (a == NULL) {
        pthread_mutex_unlock(&s->mu);
        return MB_ENOAGENT;
    }
    uint32_t n = atomic_fetch_add_explicit(&a->mlen, 1, memory_order_seq_cst);
    if (a->mmax != 0 && m->type == MB_MSG_USER && n >= a->mmax) {
        atomic_fetch_sub_explicit(&a->mlen, 1, memory_order_relaxed);
        if (a->overflow == MB_OVERFLOW_CRASH) {
            int zero = 0;
            atomic_compare_exchange_strong(&a->crash_req, &zero, MB_EFULL);
            schedule(rt, a);
        }
        pthread_mutex_unlock(&s->mu);
        return MB_EFULL;
    }
    mbox_push(a, m);
    schedule(rt, a);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

long rt_mailbox_len(struct mb_runtime *rt, mb_agent_id id)
{
    struct map_shard *s = shard_of(rt, id);
    pthread_mutex_lock(&s->mu);
    struct rt_agent *a = map_find_locked(s, id);
    long n = a ? (long)atomic_load_explicit(&a->mlen, memory_order_relaxed) : -1;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- agent ext helpers ---- */

static struct rt_agent_ext *ext_of(struct rt_agent *a)
{
    if (a->ext == NULL)
        a->ext = calloc(1, sizeof(*a->ext));
    return a->ext;
}

static int ext_add_link(struct rt_agent *a, mb_agent_id id)
{
    struct rt_agent_ext *x = ext_of(a);
    if (x == NULL)
        return MB_ENOMEM;
    for (size_t i = 0; i < x->nlinks; i++)
        if (x->links[i] == id)
            return 0;
    if (x->nlinks == x->caplinks) {
        size_t nc = x->caplinks ? x->caplinks * 2 : 4;
        mb_agent_id *nl = realloc(x->links, nc * sizeof(*nl));
        if (nl == NULL)
            return MB_ENOMEM;
        x->links = nl;
        x->caplinks = nc;
    }
    x->links[x->nlinks++] = id;
    return 0;
}

static int ext_remove_link(struct rt_agent *a, mb_agent_id id)
{
    struct rt_agent_ext *x = a->ext;
    if (x == NULL)
        return 0;
    for (size_t i = 0; i < x->nlinks; i++) {
        if (x->links[i] == id) {
            x->links[i] = x->links[--x->nlinks];
            return 1;
        }
    }
    return 0;
}

static void ext_free(struct rt_agent_ext *x)
{
    if (x == NULL)
        return;
    free(x->name);
    free(x->ns);
    free(x->links);
    free(x->mons);
    free(x->ckpt);
    free(x);
}

static void agent_free(struct rt_agent *a)
{
    ext_free(a->ext);
    free(a->config);
    free(a->exit_detail);
    free(a);
}

/* ---- exit path ---- */

static void begin_exit(struct rt_agent *a, int reason, int code, const char *detail)
{
    if (a->exiting)
        return;
    a->exiting = 1;
    a->exit_reason = reason;
    a->exit_code = code;
    free(a->exit_detail);
    a->exit_detail = strdup(detail ? detail : "");
}

void rt_crash(mb_ctx *ctx, int code, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    begin_exit(ctx->a, MB_EXIT_CRASH, code, buf);
}

static void send_exit_notice(struct mb_runtime *rt, mb_agent_id to, uint32_t type,
                             const struct rt_agent *a, int reason, int code, const char *detail,
                             uint64_t ref, const void *ckpt, size_t ckpt_len)
{
    struct rt_msg *m = rt_msg_new(a->id, type, 0, NULL, sizeof(struct rt_exit));
    if (m == NULL)
        return;
    struct rt_exit *x = (struct rt_exit *)m->data;
    memset(x, 0, sizeof(*x));
    x->id = a->id;
    x->reason = reason;
    x->code = code;
    x->ref = ref;
    snprintf(x->detail, sizeof(x->detail), "%s", detail ? detail : "");
    if (ckpt != NULL && ckpt_len > 0) {
        x->ckpt = malloc(ckpt_len);
        if (x->ckpt != NULL) {
            memcpy(x->ckpt, ckpt, ckpt_len);
            x->ckpt_len = ckpt_len;
            m->ext = x->ckpt; /* freed with the message */
            m->ext_free = free;
        }
    }
    if (rt_deliver(rt, to, m) != 0)
        rt_msg_free(m);
}

/* A message left in the mailbox of an ended agent. */
static void drain_one(struct mb_runtime *rt, struct rt_agent *a, struct rt_msg *m)
{
    int reason = a->exit_reason;
    const char *detail = a->exit_detail ? a->exit_detail : "";
    switch (m->type) {
    case RT_SIG_LINK:
        send_exit_notice(rt, m->from, RT_SIG_LINK_EXIT, a, reason, a->exit_code, detail, 0, NULL,
                         0);
        break;
    case RT_SIG_MONITOR: {
        uint64_t ref = 0;
        memcpy(&ref, m->data, sizeof(ref));
        send_exit_notice(rt, m->from, MB_MSG_DOWN, a, reason, a->exit_code, detail, ref, NULL, 0);
        break;
    }
    case RT_SIG_CALL: {
        struct rt_call *c = m->ext;
        if (c->cancel != NULL)
            c->cancel(c->arg);
        free(c);
        m->ext = NULL;
        m->ext_free = NULL;
        break;
    }
    case MB_MSG_USER:
        if ((m->flags & RT_MSG_NOTIFY) && m->from != 0) {
            struct rt_msg *u = rt_msg_new(a->id, MB_MSG_UNDELIVERED, m->tag, m->data, m->len);
            if (u != NULL && rt_deliver(rt, m->from, u) != 0)
                rt_msg_free(u);
        }
        break;
    default:
        break;
    }
    rt_msg_free(m);
}

static void release_state(mb_ctx *ctx, struct rt_agent *a, int reason)
{
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    /* A killed port agent still must reap its process: its terminate does
     * that brutally (SIGKILL, no "stop" line) when reason is KILLED. */
    if (a->brutal)
        reason = MB_EXIT_KILLED;
    if ((reason != MB_EXIT_KILLED || k == &mb_kind_port) && k->terminate != NULL) {
        k->terminate(ctx, a->state, reason);
    } else if (k->destroy != NULL) {
        k->destroy(a->state);
    } else {
        free(a->state);
    }
    a->state = NULL;
}

/* The agent ended (inside its turn, or after a failed init with
 * `initialised` = 0): release it and tell everyone who asked. */
static void finish_exit(struct mb_runtime *rt, struct rt_agent *a, int initialised)
{
    mb_ctx ctx = { rt, a };
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    if (initialised)
        release_state(&ctx, a, a->exit_reason);
    map_remove(rt, a);
    /* Every push happens under the shard lock: none can be in flight now. */
    struct rt_agent_ext *x = a->ext;
    if (x != NULL && x->registered && rt->svc.name_unregister != NULL)
        rt->svc.name_unregister(rt->svc.impl, a->id, x->ns, x->name);
    struct rt_msg *m;
    while ((m = mbox_pop(a)) != NULL)
        drain_one(rt, a, m);
    const char *detail = a->exit_detail ? a->exit_detail : "";
    if (x != NULL) {
        for (size_t i = 0; i < x->nlinks; i++) {
            int to_parent = x->links[i] == a->parent;
            send_exit_notice(rt, x->links[i], RT_SIG_LINK_EXIT, a, a->exit_reason, a->exit_code,
                             detail, 0, to_parent ? x->ckpt : NULL, to_parent ? x->ckpt_len : 0);
        }
        for (size_t i = 0; i < x->nmons; i++)
            send_exit_notice(rt, x->mons[i].who, MB_MSG_DOWN, a, a->exit_reason, a->exit_code,
                             detail, x->mons[i].ref, NULL, 0);
    }
    if (initialised) {
        int normal = a->exit_reason == MB_EXIT_NORMAL || a->exit_reason == MB_EXIT_SHUTDOWN;
        rt_event(rt, normal ? MB_AEV_STOPPED : MB_AEV_CRASHED, a->id, k, a->exit_reason,
                 a->exit_code, detail);
        atomic_fetch_sub_explicit(&a->kent->agents, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&rt->live, 1, memory_order_relaxed);
    }
    agent_free(a);
    atomic_fetch_sub_explicit(&rt->pending, 1, memory_order_release);
}

/* ---- turn ---- */

static int call_handle(mb_ctx *ctx, struct rt_agent *a, const mb_msg *msg)
{
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    int rc = k->handle(ctx, a->state, msg);
    if (rc != 0 && !a->exiting) {
        char buf[96];
        snprintf(buf, sizeof(buf), "handle returned %s", mb_errname(rc));
        begin_exit(a, MB_EXIT_CRASH, rc, buf);
    }
    return rc;
}

static void deliver_exit_msg(mb_ctx *ctx, struct rt_agent *a, struct rt_msg *m, uint32_t type)
{
    struct rt_exit *x = (struct rt_exit *)m->data;
    mb_exit_info info = {
        .id = x->id,
        .reason = x->reason,
        .code = x->code,
        .detail = x->detail,
        .monitor_ref = x->ref,
        .checkpoint = x->ckpt,
        .checkpoint_len = x->ckpt_len,
    };
    mb_msg msg = { .from = m->from, .type = type, .tag = 0, .data = &info, .len = sizeof(info) };
    call_handle(ctx, a, &msg);
}

static void do_restart_in_place(mb_ctx *ctx, struct rt_agent *a)
{
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    release_state(ctx, a, MB_EXIT_SHUTDOWN);
    struct rt_agent_ext *x = a->ext;
    int rc;
    if (x != NULL && x->ckpt != NULL && k->restore != NULL)
        rc = k->restore(ctx, a->config ? a->config : "", x->ckpt, x->ckpt_len, &a->state);
    else if (k->init != NULL)
        rc = k->init(ctx, a->config ? a->config : "", &a->state);
    else
        rc = 0;
    atomic_fetch_add_explicit(&a->restarts, 1, memory_order_relaxed);
    if (rc != 0) {
        a->state = NULL;
        char buf[96];
        snprintf(buf, sizeof(buf), "re-init after restart returned %s", mb_errname(rc));
        /* State is gone: no terminate must run on it. */
        begin_exit(a, MB_EXIT_CRASH, rc, buf);
        return;
    }
    rt_event(ctx->rt, MB_AEV_RESTARTED, a->id, k, 0, 0, "restart requested");
}

static void handle_link_exit(mb_ctx *ctx, struct rt_agent *a, struct rt_msg *m)
{
    struct rt_exit *x = (struct rt_exit *)m->data;
    int was_linked = ext_remove_link(a, x->id);
    if (!was_linked && x->reason != MB_EXIT_NOPROC)
        return; /* unlinked meanwhile */
    if (a->trap_exits) {
        deliver_exit_msg(ctx, a, m, MB_MSG_EXIT);
        return;
    }
    if (x->reason == MB_EXIT_NORMAL)
        return;
    char buf[96];
    snprintf(buf, sizeof(buf), "linked agent %llx ended: %s", (unsigned long long)x->id,
             mb_exit_reason_name(x->reason));
    begin_exit(a, MB_EXIT_LINK, 0, buf);
}

struct rt_var {
    char *name;
    mb_value value;
    uint64_t version;
};

struct rt_vote {
    mb_proposal p;
    char *variable;
    mb_value value;
};

static void do_checkpoint(mb_ctx *ctx, struct rt_agent *a);

static void dispatch(mb_ctx *ctx, struct rt_agent *a, struct rt_msg *m)
{
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    if (m->type != RT_SIG_CHECKPOINT) /* written only by the agent's own turn */
        atomic_store_explicit(&a->turns, atomic_load_explicit(&a->turns, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    switch (m->type) {
    case MB_MSG_USER:
    case MB_MSG_TIMER:
    case MB_MSG_UNDELIVERED: {
        mb_msg msg = {
            .from = m->from, .type = m->type, .tag = m->tag, .data = m->data, .len = m->len
        };
        /* Written only by the agent's own turn: a plain increment. */
        atomic_store_explicit(&a->msgs, atomic_load_explicit(&a->msgs, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        call_handle(ctx, a, &msg);
        break;
    }
    case MB_MSG_DOWN:
        deliver_exit_msg(ctx, a, m, MB_MSG_DOWN);
        break;
    case RT_SIG_EXIT:
        if (m->tag == MB_EXIT_KILLED)
            begin_exit(a, MB_EXIT_KILLED, 0, "killed");
        else
            begin_exit(a, (int)m->tag, 0,
                       m->tag == MB_EXIT_NORMAL ? "stop requested" : "shutdown requested");
        break;
    case RT_SIG_LINK:
        if (ext_add_link(a, m->from) != 0)
            begin_exit(a, MB_EXIT_CRASH, MB_ENOMEM, "out of memory adding a link");
        break;
    case RT_SIG_MONITOR: {
        struct rt_agent_ext *x = ext_of(a);
        if (x == NULL)
            break;
        if (x->nmons == x->capmons) {
            size_t nc = x->capmons ? x->capmons * 2 : 4;
            void *nm = realloc(x->mons, nc * sizeof(*x->mons));
            if (nm == NULL)
                break;
            x->mons = nm;
            x->capmons = nc;
        }
        x->mons[x->nmons].who = m->from;
        memcpy(&x->mons[x->nmons].ref, m->data, sizeof(uint64_t));
        x->nmons++;
        break;
    }
    case RT_SIG_LINK_EXIT:
        handle_link_exit(ctx, a, m);
        break;
    case RT_SIG_VAR: {
        struct rt_var *v = m->ext;
        if (k->var_changed != NULL) {
            int rc = k->var_changed(ctx, a->state, v->name, &v->value, v->version);
            if (rc != 0)
                rt_crash(ctx, rc, "var_changed returned %s", mb_errname(rc));
        }
        break;
    }
    case RT_SIG_VOTE: {
        struct rt_vote *v = m->ext;
        if (k->vote != NULL) {
            int rc = k->vote(ctx, a->state, &v->p);
            if (rc != 0)
                rt_crash(ctx, rc, "vote returned %s", mb_errname(rc));
        }
        break;
    }
    case RT_SIG_RESTART:
        if (a->want_ckpt) /* a checkpoint asked for earlier in this turn */
            do_checkpoint(ctx, a);
        if (!a->exiting)
            do_restart_in_place(ctx, a);
        break;
    case RT_SIG_CALL: {
        struct rt_call *c = m->ext;
        c->fn(ctx, a->state, c->arg);
        break;
    }
    case RT_SIG_CHECKPOINT:
        if (!a->exiting)
            do_checkpoint(ctx, a);
        break;
    case RT_SIG_PORT:
        if (k == &mb_kind_port)
            rt_port_event(ctx, a->state, m->tag, m->data, m->len);
        break;
    default:
        break;
    }
}

static void do_checkpoint(mb_ctx *ctx, struct rt_agent *a)
{
    a->want_ckpt = 0;
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    if (k->checkpoint == NULL)
        return;
    void *blob = NULL;
    size_t len = 0;
    int rc = k->checkpoint(ctx, a->state, &blob, &len);
    if (rc != 0) {
        free(blob);
        rt_crash(ctx, rc, "checkpoint returned %s", mb_errname(rc));
        return;
    }
    struct rt_agent_ext *x = ext_of(a);
    if (x == NULL) {
        free(blob);
        return;
    }
    free(x->ckpt);
    x->ckpt = blob;
    x->ckpt_len = len;
    if (ctx->rt->svc.checkpoint_saved != NULL)
        ctx->rt->svc.checkpoint_saved(ctx->rt->svc.impl, a->id, blob, len);
}

static void try_upgrade(mb_ctx *ctx, struct rt_agent *a, const mb_agent_kind *nk)
{
    const mb_agent_kind *ok = atomic_load_explicit(&a->kind, memory_order_relaxed);
    if (a->ext != NULL && a->ext->upgrade_failed == nk)
        return;
    void *ns = NULL;
    int rc;
    if (nk->upgrade != NULL) {
        rc = nk->upgrade(ctx, ok->version, a->state, &ns);
    } else if (ok->checkpoint != NULL && nk->restore != NULL) {
        void *blob = NULL;
        size_t len = 0;
        rc = ok->checkpoint(ctx, a->state, &blob, &len);
        if (rc == 0)
            rc = nk->restore(ctx, a->config ? a->config : "", blob, len, &ns);
        free(blob);
        if (rc == 0) {
            if (ok->destroy != NULL)
                ok->destroy(a->state);
            else
                free(a->state);
        }
    } else {
        rc = MB_ENOTSUP;
    }
    char buf[96];
    if (rc == 0) {
        a->state = ns;
        atomic_store_explicit(&a->kind, nk, memory_order_relaxed);
        snprintf(buf, sizeof(buf), "%u -> %u", ok->version, nk->version);
        rt_event(ctx->rt, MB_AEV_UPGRADED, a->id, nk, 0, 0, buf);
        return;
    }
    struct rt_agent_ext *x = ext_of(a);
    if (x != NULL)
        x->upgrade_failed = nk;
    snprintf(buf, sizeof(buf), "upgrade %u -> %u failed (%s), kept %u", ok->version, nk->version,
             mb_errname(rc), ok->version);
    rt_event(ctx->rt, MB_AEV_UPGRADE_FAILED, a->id, ok, 0, rc, buf);
}

static void run_turn(struct mb_runtime *rt, struct rt_agent *a)
{
    mb_ctx ctx = { rt, a };
    uint64_t t0 = coarse_ns();
    const mb_agent_kind *nk = atomic_load_explicit(&a->kent->current, memory_order_acquire);
    if (!a->exiting && nk != atomic_load_explicit(&a->kind, memory_order_relaxed))
        try_upgrade(&ctx, a, nk);
    unsigned n = 0;
    while (!a->exiting) {
        int kr = atomic_load_explicit(&a->kill_req, memory_order_acquire);
        if (kr != RT_KILL_NONE) {
            /* A node shutdown is a stop, not a crash: same brutal end,
             * reported (event, exit notices) as MB_EXIT_SHUTDOWN. */
            if (kr == RT_KILL_SHUTDOWN)
                begin_exit(a, MB_EXIT_SHUTDOWN, 0, "node shutdown");
            else
                begin_exit(a, MB_EXIT_KILLED, 0, "killed");
            a->brutal = 1;
            break;
        }
        int cr = atomic_load_explicit(&a->crash_req, memory_order_acquire);
        if (cr != 0) {
            begin_exit(a, MB_EXIT_CRASH, cr, "mailbox overflow");
            break;
        }
        if (n >= rt->cfg.batch)
            break;
        struct rt_msg *m = mbox_pop(a);
        if (m == NULL)
            break;
        atomic_fetch_sub_explicit(&a->mlen, 1, memory_order_relaxed);
        n++;
        dispatch(&ctx, a, m);
        rt_msg_free(m);
    }
    if (!a->exiting && a->want_ckpt)
        do_checkpoint(&ctx, a);
    uint64_t dt = coarse_ns() - t0;
    if (dt != 0) /* only this worker writes it: no locked add needed */
        atomic_store_explicit(&a->cpu_ns,
                              atomic_load_explicit(&a->cpu_ns, memory_order_relaxed) + dt,
                              memory_order_relaxed);
    if (dt / 1000 > rt->cfg.slow_turn_us) {
        const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
        rt_telemetry(rt, "agent_slow_turn_us", k->name, (double)(dt / 1000));
    }
    if (a->exiting) {
        finish_exit(rt, a, 1);
        return;
    }
    release_agent(rt, a);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct mb_runtime *rt = w->rt;
    tl_worker = w;
    char name[16];
    snprintf(name, sizeof(name), "mb-worker-%u", w->idx);
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        struct rt_agent *a = w->lifo;
        if (a != NULL) {
            w->lifo = NULL;
            run_turn(rt, a);
            continue;
        }
        /* Spin briefly before sleeping (as BEAM's schedulers do): work
         * that arrives within spin_us is picked up without a futex
         * wake-up. */
        if (atomic_load_explicit(&rt->rq_hint, memory_order_acquire) == 0 && rt->cfg.spin_us > 0) {
            uint64_t until = mono_ns() + rt->cfg.spin_us * 1000;
            for (unsigned i = 1;; i++) {
                if (atomic_load_explicit(&rt->rq_hint, memory_order_acquire) != 0)
                    break;
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                if ((i & 63) == 0 && mono_ns() >= until)
                    break;
            }
        }
        pthread_mutex_lock(&rt->rq_mu);
        while (rt->rq_n == 0 && !rt->workers_exit) {
            rt->sleepers++;
            pthread_cond_wait(&rt->rq_cv, &rt->rq_mu);
            rt->sleepers--;
        }
        if (rt->rq_n == 0 && rt->workers_exit) {
            pthread_mutex_unlock(&rt->rq_mu);
            break;
        }
        a = rt->rq[rt->rq_head];
        rt->rq_head = (rt->rq_head + 1) % rt->rq_cap;
        rt->rq_n--;
        atomic_store_explicit(&rt->rq_hint, rt->rq_n, memory_order_relaxed);
        /* In a long queue (a fan-out's, woken together after a pause:
         * its turns were mostly misses) the agent queued next is likely
         * this worker's next turn: its lines load while this one runs.
         * Not in a short one (message ping-pong, a few busy senders):
         * there the next agent may be taking a message right now, and its
         * lines are better left where they are. */
        if (rt->rq_n >= RQ_PREFETCH_MIN) {
            const char *next = (const char *)rt->rq[rt->rq_head];
            for (size_t off = 0; off < sizeof(struct rt_agent); off += 64)
                __builtin_prefetch(next + off, 1);
        }
        /* More work queued and someone asleep: let them help. */
        if (rt->rq_n > 0 && rt->sleepers > 0)
            pthread_cond_signal(&rt->rq_cv);
        pthread_mutex_unlock(&rt->rq_mu);
        run_turn(rt, a);
    }
    tl_worker = NULL;
    return NULL;
}

/* ---- spawn ---- */

static int copy_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0')
        return 0;
    *dst = strdup(src);
    return *dst == NULL ? MB_ENOMEM : 0;
}

int rt_spawn(struct mb_runtime *rt, struct rt_agent *parent, const mb_spawn_opts *opts,
             const struct rt_restart *restart, mb_agent_id *out, mb_error *err)
{
    const void *ckpt = restart ? restart->ckpt : NULL;
    size_t ckpt_len = restart ? restart->ckpt_len : 0;
    if (ckpt == NULL && opts != NULL && opts->checkpoint != NULL) {
        ckpt = opts->checkpoint; /* placement: a moved agent starts from it */
        ckpt_len = opts->checkpoint_len;
    }
    uint32_t restarts = restart ? restart->restarts : 0;
    if (opts == NULL || opts->kind == NULL)
        return mb_errorf(err, MB_EINVAL, "spawn: no kind given");
    if (opts->overflow != MB_OVERFLOW_REJECT && opts->overflow != MB_OVERFLOW_CRASH)
        return mb_errorf(err, MB_EINVAL, "spawn: bad overflow policy %d", opts->overflow);
    if (opts->ncaps > 0 && opts->caps == NULL)
        return mb_errorf(err, MB_EINVAL, "spawn: ncaps without caps");
    if (opts->name != NULL && (opts->name[0] == '\0' || strlen(opts->name) >= 64))
        return mb_errorf(err, MB_EINVAL, "spawn: name must be 1..63 characters");
    if (opts->ns != NULL && strlen(opts->ns) >= 64)
        return mb_errorf(err, MB_EINVAL, "spawn: namespace must be at most 63 characters");
    if (opts->link && parent == NULL)
        return mb_errorf(err, MB_EINVAL, "spawn: link needs a spawning agent");
    struct rt_kind *kent = rt_kind_find(rt, opts->kind);
    if (kent == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "spawn: unknown kind '%s'", opts->kind);
    if ((opts->name != NULL || opts->ncaps > 0) && rt->svc.name_register == NULL)
        return mb_errorf(err, MB_ENOTSUP, "spawn: names need a registry service");
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return mb_errorf(err, MB_ECLOSED, "spawn: runtime is stopping");

    const mb_agent_kind *k = atomic_load_explicit(&kent->current, memory_order_acquire);
    struct rt_agent *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return mb_errorf(err, MB_ENOMEM, "spawn: out of memory");
    uint64_t serial = atomic_fetch_add_explicit(&rt->next_serial, 1, memory_order_relaxed);
    a->id = MB_AGENT_ID(rt->cfg.node_id, serial);
    a->rt = rt;
    a->kent = kent;
    atomic_store_explicit(&a->kind, k, memory_order_relaxed);
    mbox_init(a);
    a->mmax = opts->mailbox_max;
    a->overflow = (uint8_t)opts->overflow;
    a->trap_exits = opts->trap_exits ? 1 : 0;
    a->parent = parent ? parent->id : opts->supervisor;
    atomic_store_explicit(&a->restarts, restarts, memory_order_relaxed);
    atomic_store_explicit(&a->sched, 1, memory_order_relaxed); /* held until init is done */
    int rc = copy_str(&a->config, opts->config);
    /* Capabilities alone register too (under the namespace): ext needed. */
    if (rc == 0 && (opts->name != NULL || opts->ns != NULL || opts->ncaps > 0)) {
        struct rt_agent_ext *x = ext_of(a);
        rc = x == NULL ? MB_ENOMEM : copy_str(&x->name, opts->name);
        if (rc == 0)
            rc = copy_str(&x->ns, opts->ns ? opts->ns : "default");
    }
    if (rc == 0 && opts->link)
        rc = ext_add_link(a, parent->id);
    if (rc == 0 && restart != NULL && restart->last_error != 0) {
        struct rt_agent_ext *x = ext_of(a);
        if (x == NULL) {
            rc = MB_ENOMEM;
        } else {
            x->last_error = restart->last_error;
            snprintf(x->last_error_msg, sizeof(x->last_error_msg), "%s",
                     restart->last_error_msg ? restart->last_error_msg : "");
        }
    }
    if (rc != 0) {
        agent_free(a);
        return mb_errorf(err, rc, "spawn %s: out of memory", opts->kind);
    }
    if (opts->name != NULL || opts->ncaps > 0) {
        rc = rt->svc.name_register(rt->svc.impl, a->id, a->ext->ns, opts->name, opts->caps,
                                   opts->ncaps);
        if (rc != 0) {
            mb_errorf(err, rc, "spawn %s: register name '%s' in '%s': %s", opts->kind,
                      opts->name ? opts->name : "", a->ext->ns, mb_strerror(rc));
            /* Not registered: don't unregister on the way out. */
            free(a->ext->name);
            a->ext->name = NULL;
            agent_free(a);
            return rc;
        }
        a->ext->registered = 1;
    }
    atomic_fetch_add_explicit(&rt->pending, 1, memory_order_relaxed);
    rc = map_insert(rt, a);
    if (rc != 0) {
        if (a->ext != NULL && a->ext->registered && rt->svc.name_unregister != NULL)
            rt->svc.name_unregister(rt->svc.impl, a->id, a->ext->ns, a->ext->name);
        agent_free(a);
        atomic_fetch_sub_explicit(&rt->pending, 1, memory_order_relaxed);
        return mb_errorf(err, rc, "spawn %s: out of memory", opts->kind);
    }
    mb_ctx ctx = { rt, a };
    const char *cfg = a->config ? a->config : "";
    if (ckpt != NULL && k->restore != NULL)
        rc = k->restore(&ctx, cfg, ckpt, ckpt_len, &a->state);
    else if (k->init != NULL)
        rc = k->init(&ctx, cfg, &a->state);
    if (rc != 0) {
        mb_errorf(err, rc, "spawn %s: %s returned %s", k->name,
                  ckpt != NULL && k->restore != NULL ? "restore" : "init", mb_errname(rc));
        a->exit_reason = MB_EXIT_NOPROC;
        a->state = NULL;
        if (a->ext != NULL)
            a->ext->nlinks = 0; /* the parent never linked back */
        finish_exit(rt, a, 0);
        return rc;
    }
    if (ckpt != NULL) {
        struct rt_agent_ext *x = ext_of(a);
        if (x != NULL && (x->ckpt = malloc(ckpt_len ? ckpt_len : 1)) != NULL) {
            memcpy(x->ckpt, ckpt, ckpt_len);
            x->ckpt_len = ckpt_len;
        }
    }
    if (a->want_ckpt && !a->exiting) /* asked for in init: take it now */
        do_checkpoint(&ctx, a);
    if (opts->link) {
        /* The spawner runs this inside its own turn: its link list is ours. */
        if (ext_add_link(parent, a->id) != 0)
            begin_exit(a, MB_EXIT_CRASH, MB_ENOMEM, "out of memory linking to parent");
    }
    atomic_fetch_add_explicit(&kent->agents, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
    rt_event(rt, MB_AEV_SPAWNED, a->id, k, 0, 0, opts->name ? opts->name : "");
    if (out != NULL)
        *out = a->id;
    /* Release the hold: run it if init queued messages or asked to stop. */
    release_agent(rt, a);
    return 0;
}

/* ---- SDK context functions ---- */

mb_agent_id mb_self(mb_ctx *ctx)
{
    return ctx->a ? ctx->a->id : 0;
}

static int send_common(mb_ctx *ctx, mb_agent_id to, uint32_t type, uint32_t tag, const void *data,
                       size_t len, unsigned flags)
{
    if (len > 0 && data == NULL)
        return MB_EINVAL;
    struct mb_runtime *rt = ctx->rt;
    mb_agent_id self = mb_self(ctx);
    if (MB_AGENT_NODE(to) != rt->cfg.node_id && to != 0) {
        if (rt->svc.send_remote == NULL)
            return MB_ENOTSUP;
        return rt->svc.send_remote(rt->svc.impl, self, to, tag, data, len);
    }
    struct rt_msg *m = rt_msg_new(self, type, tag, data, len);
    if (m == NULL)
        return MB_ENOMEM;
    m->flags |= flags & RT_MSG_NOTIFY;
    int rc = rt_deliver(rt, to, m);
    if (rc == 0)
        return 0;
    if (rc == MB_ENOAGENT && (flags & MB_SEND_NOTIFY) && self != 0) {
        m->from = to;
        m->type = MB_MSG_UNDELIVERED;
        m->flags &= ~RT_MSG_NOTIFY;
        if (rt_deliver(rt, self, m) == 0)
            return rc;
    }
    rt_msg_free(m);
    return rc;
}

int mb_send(mb_ctx *ctx, mb_agent_id to, uint32_t tag, const void *data, size_t len)
{
    return send_common(ctx, to, MB_MSG_USER, tag, data, len, 0);
}

int mb_send_name(mb_ctx *ctx, const char *ns, const char *name, uint32_t tag, const void *data,
                 size_t len)
{
    const mb_services *s = &ctx->rt->svc;
    if (name == NULL || (len > 0 && data == NULL))
        return MB_EINVAL;
    if (ns == NULL)
        ns = "default";
    mb_agent_id to = 0;
    int rc = s->name_lookup ? s->name_lookup(s->impl, ns, name, &to) : MB_ENOTSUP;
    if (rc == MB_OK)
        return mb_send(ctx, to, tag, data, len);
    if (strcmp(ns, "cluster") != 0)
        return rc == MB_ENOTSUP ? rc : MB_ENOAGENT;
    return s->send_name ? s->send_name(s->impl, mb_self(ctx), name, tag, data, len) : MB_ENOTSUP;
}

int mb_send_flags(mb_ctx *ctx, mb_agent_id to, uint32_t tag, const void *data, size_t len,
                  unsigned flags)
{
    return send_common(ctx, to, MB_MSG_USER, tag, data, len, flags);
}

int mb_send_after(mb_ctx *ctx, uint64_t delay_ms, uint32_t tag, const void *data, size_t len,
                  uint64_t *timer_id)
{
    if (ctx->a == NULL || (len > 0 && data == NULL))
        return MB_EINVAL;
    return rt_timer_add(ctx->rt->timers, ctx->a->id, delay_ms, 0, tag, data, len, timer_id);
}

int mb_send_every(mb_ctx *ctx, uint64_t period_ms, uint32_t tag, const void *data, size_t len,
                  uint64_t *timer_id)
{
    if (ctx->a == NULL || period_ms == 0 || (len > 0 && data == NULL))
        return MB_EINVAL;
    return rt_timer_add(ctx->rt->timers, ctx->a->id, period_ms, period_ms, tag, data, len,
                        timer_id);
}

int mb_timer_cancel(mb_ctx *ctx, uint64_t timer_id)
{
    if (ctx->a == NULL)
        return MB_EINVAL;
    return rt_timer_cancel(ctx->rt->timers, ctx->a->id, timer_id);
}

int mb_spawn(mb_ctx *ctx, const mb_spawn_opts *opts, mb_agent_id *out, mb_error *err)
{
    return rt_spawn(ctx->rt, ctx->a, opts, NULL, out, err);
}

void mb_stop_self(mb_ctx *ctx)
{
    if (ctx->a != NULL)
        begin_exit(ctx->a, MB_EXIT_NORMAL, 0, "stopped itself");
}

int rt_exit_agent(struct mb_runtime *rt, mb_agent_id id, int reason)
{
    if (reason < MB_EXIT_NORMAL || reason > MB_EXIT_LINK)
        return MB_EINVAL;
    if (reason == MB_EXIT_KILLED) {
        struct map_shard *s = shard_of(rt, id);
        pthread_mutex_lock(&s->mu);
        struct rt_agent *a = map_find_locked(s, id);
        if (a != NULL) {
            int none = RT_KILL_NONE; /* a kill during shutdown stays a shutdown */
            atomic_compare_exchange_strong_explicit(&a->kill_req, &none, RT_KILL_CRASH,
                                                    memory_order_seq_cst, memory_order_seq_cst);
            schedule(rt, a);
        }
        pthread_mutex_unlock(&s->mu);
        return a ? 0 : MB_ENOAGENT;
    }
    struct rt_msg *m = rt_msg_new(0, RT_SIG_EXIT, (uint32_t)reason, NULL, 0);
    if (m == NULL)
        return MB_ENOMEM;
    int rc = rt_deliver(rt, id, m);
    if (rc != 0)
        rt_msg_free(m);
    return rc;
}

int mb_exit_agent(mb_ctx *ctx, mb_agent_id id, int reason)
{
    if (ctx->a != NULL && id == ctx->a->id) {
        if (reason == MB_EXIT_KILLED)
            begin_exit(ctx->a, MB_EXIT_KILLED, 0, "killed itself");
        else
            begin_exit(ctx->a, reason, 0, "exit requested by itself");
        return 0;
    }
    return rt_exit_agent(ctx->rt, id, reason);
}

int mb_request_checkpoint(mb_ctx *ctx)
{
    if (ctx->a == NULL)
        return MB_EINVAL;
    const mb_agent_kind *k = atomic_load_explicit(&ctx->a->kind, memory_order_relaxed);
    if (k->checkpoint == NULL)
        return MB_ENOTSUP;
    ctx->a->want_ckpt = 1;
    return 0;
}

int mb_link(mb_ctx *ctx, mb_agent_id id)
{
    struct rt_agent *a = ctx->a;
    if (a == NULL || id == a->id)
        return MB_EINVAL;
    int rc = ext_add_link(a, id);
    if (rc != 0)
        return rc;
    struct rt_msg *m = rt_msg_new(a->id, RT_SIG_LINK, 0, NULL, 0);
    if (m == NULL) {
        ext_remove_link(a, id);
        return MB_ENOMEM;
    }
    rc = rt_deliver(ctx->rt, id, m);
    if (rc != 0) {
        rt_msg_free(m);
        ext_remove_link(a, id);
        /* Linking to a dead agent: the linker gets an exit with noproc. */
        struct rt_agent dead = { .id = id };
        if (a->trap_exits)
            send_exit_notice(ctx->rt, a->id, RT_SIG_LINK_EXIT, &dead, MB_EXIT_NOPROC, 0,
                             "no such agent", 0, NULL, 0);
        return MB_ENOAGENT;
    }
    return 0;
}

int mb_monitor(mb_ctx *ctx, mb_agent_id id, uint64_t *ref)
{
    if (ctx->a == NULL)
        return MB_EINVAL;
    uint64_t r = atomic_fetch_add_explicit(&ctx->rt->next_ref, 1, memory_order_relaxed) + 1;
    if (ref != NULL)
        *ref = r;
    struct rt_msg *m = rt_msg_new(ctx->a->id, RT_SIG_MONITOR, 0, &r, sizeof(r));
    if (m == NULL)
        return MB_ENOMEM;
    int rc = rt_deliver(ctx->rt, id, m);
    if (rc != 0) {
        rt_msg_free(m);
        struct rt_agent dead = { .id = id };
        send_exit_notice(ctx->rt, ctx->a->id, MB_MSG_DOWN, &dead, MB_EXIT_NOPROC, 0,
                         "no such agent", r, NULL, 0);
    }
    return 0;
}

void mb_trap_exits(mb_ctx *ctx, int on)
{
    if (ctx->a != NULL)
        ctx->a->trap_exits = on ? 1 : 0;
}

void mb_log(mb_ctx *ctx, int level, const char *fmt, ...)
{
    struct mb_runtime *rt = ctx->rt;
    if (rt->svc.log == NULL)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    rt->svc.log(rt->svc.impl, level, mb_self(ctx), buf);
}

static uint64_t agent_memory(struct rt_agent *a)
{
    uint64_t m = sizeof(*a);
    if (a->config != NULL)
        m += strlen(a->config) + 1;
    if (a->ext != NULL)
        m += sizeof(*a->ext) + a->ext->ckpt_len + a->ext->caplinks * sizeof(mb_agent_id) +
             a->ext->capmons * sizeof(*a->ext->mons);
    m += (uint64_t)atomic_load_explicit(&a->mlen, memory_order_relaxed) * sizeof(struct rt_msg);
    return m;
}

void mb_usage(mb_ctx *ctx, mb_agent_usage *out)
{
    memset(out, 0, sizeof(*out));
    struct rt_agent *a = ctx->a;
    if (a == NULL)
        return;
    out->messages = atomic_load_explicit(&a->msgs, memory_order_relaxed);
    out->mailbox_len = atomic_load_explicit(&a->mlen, memory_order_relaxed);
    out->restarts = atomic_load_explicit(&a->restarts, memory_order_relaxed);
    out->memory_bytes = agent_memory(a);
    out->cpu_ns = atomic_load_explicit(&a->cpu_ns, memory_order_relaxed);
}

uint64_t mb_now_ms(mb_ctx *ctx)
{
    return ctx->rt->svc.now_ms(ctx->rt->svc.impl);
}

uint64_t mb_random(mb_ctx *ctx)
{
    return ctx->rt->svc.random(ctx->rt->svc.impl);
}

int mb_var_get(mb_ctx *ctx, const char *name, mb_value *out, uint64_t *version)
{
    const mb_services *s = &ctx->rt->svc;
    if (name == NULL || out == NULL)
        return MB_EINVAL;
    return s->var_get ? s->var_get(s->impl, name, out, version) : MB_ENOTSUP;
}

int mb_var_set(mb_ctx *ctx, const char *name, const mb_value *value)
{
    const mb_services *s = &ctx->rt->svc;
    if (name == NULL || value == NULL)
        return MB_EINVAL;
    return s->var_set ? s->var_set(s->impl, mb_self(ctx), name, value) : MB_ENOTSUP;
}

int mb_var_watch(mb_ctx *ctx, const char *name, uint64_t from_version)
{
    const mb_services *s = &ctx->rt->svc;
    if (name == NULL)
        return MB_EINVAL;
    return s->var_watch ? s->var_watch(s->impl, mb_self(ctx), name, from_version) : MB_ENOTSUP;
}

int mb_propose(mb_ctx *ctx, const char *name, const mb_value *value, uint64_t *proposal_id)
{
    const mb_services *s = &ctx->rt->svc;
    if (name == NULL || value == NULL)
        return MB_EINVAL;
    return s->propose ? s->propose(s->impl, mb_self(ctx), name, value, proposal_id) : MB_ENOTSUP;
}

int mb_vote(mb_ctx *ctx, uint64_t proposal_id, int accept)
{
    const mb_services *s = &ctx->rt->svc;
    return s->vote ? s->vote(s->impl, mb_self(ctx), proposal_id, accept ? 1 : 0) : MB_ENOTSUP;
}

int mb_lookup(mb_ctx *ctx, const char *ns, const char *name, mb_agent_id *out)
{
    const mb_services *s = &ctx->rt->svc;
    if (name == NULL || out == NULL)
        return MB_EINVAL;
    return s->name_lookup ? s->name_lookup(s->impl, ns ? ns : "default", name, out) : MB_ENOTSUP;
}

size_t mb_lookup_caps(mb_ctx *ctx, const char *ns, const char *const *caps, size_t ncaps,
                      mb_agent_id *out, size_t max)
{
    const mb_services *s = &ctx->rt->svc;
    if (s->caps_lookup == NULL || (ncaps > 0 && caps == NULL))
        return 0;
    return s->caps_lookup(s->impl, ns ? ns : "default", caps, ncaps, out, max);
}

int rt_on_worker(struct mb_runtime *rt)
{
    return tl_worker != NULL && tl_worker->rt == rt;
}

void rt_set_os_pid(mb_ctx *ctx, int pid)
{
    struct rt_agent_ext *x = ext_of(ctx->a);
    if (x != NULL)
        atomic_store_explicit(&x->os_pid, pid, memory_order_relaxed);
}

int rt_call_agent(struct mb_runtime *rt, mb_agent_id to, struct rt_call *call)
{
    struct rt_msg *m = rt_msg_new(0, RT_SIG_CALL, 0, NULL, 0);
    if (m == NULL)
        return MB_ENOMEM;
    m->ext = call;
    m->ext_free = free;
    int rc = rt_deliver(rt, to, m);
    if (rc != 0) {
        m->ext = NULL;
        m->ext_free = NULL;
        rt_msg_free(m);
    }
    return rc;
}

/* ---- runtime lifecycle ---- */

int mb_runtime_start(const mb_runtime_config *cfg, const mb_services *svc, mb_runtime **out,
                     mb_error *err)
{
    if (out == NULL)
        return mb_errorf(err, MB_EINVAL, "runtime start: no output pointer");
    struct mb_runtime *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return mb_errorf(err, MB_ENOMEM, "runtime start: out of memory");
    if (cfg != NULL)
        rt->cfg = *cfg;
    if (svc != NULL)
        rt->svc = *svc;
    if (rt->cfg.node_id == 0)
        rt->cfg.node_id = 1;
    if (rt->cfg.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        rt->cfg.workers = n > 0 ? (unsigned)n : 1;
    }
    if (rt->cfg.batch == 0)
        rt->cfg.batch = 64;
    if (rt->cfg.slow_turn_us == 0)
        rt->cfg.slow_turn_us = 10000;
    if (rt->cfg.spin_us == 0)
        rt->cfg.spin_us = 50;
    else if (rt->cfg.spin_us == MB_RUNTIME_NO_SPIN)
        rt->cfg.spin_us = 0; /* worker_main spins only when spin_us > 0 */
    else if (rt->cfg.spin_us > 1000000)
        rt->cfg.spin_us = 1000000; /* 1 s; and spin_us * 1000 fits */
    if (rt->cfg.port_reply_ms == 0)
        rt->cfg.port_reply_ms = 5000;
    if (rt->svc.monotonic_ms == NULL)
        rt->svc.monotonic_ms = default_mono_ms;
    if (rt->svc.now_ms == NULL)
        rt->svc.now_ms = default_now_ms;
    if (rt->svc.random == NULL)
        rt->svc.random = default_random;
    atomic_store(&rt->next_serial, 1);
    for (int i = 0; i < MAP_SHARDS; i++)
        pthread_mutex_init(&rt->shards[i].mu, NULL);
    pthread_mutex_init(&rt->rq_mu, NULL);
    pthread_cond_init(&rt->rq_cv, NULL);
    pthread_rwlock_init(&rt->kinds_mu, NULL);
    int rc = rt_kinds_init(rt);
    if (rc != 0) {
        mb_errorf(err, rc, "runtime start: registering built-in kinds: %s", mb_strerror(rc));
        goto fail_kinds;
    }
    rc = rt_timers_start(rt, rt->cfg.manual_timers, &rt->timers);
    if (rc != 0) {
        mb_errorf(err, rc, "runtime start: timers: %s", mb_strerror(rc));
        goto fail_timers;
    }
    rc = rt_port_io_start(rt, &rt->port_io);
    if (rc != 0) {
        mb_errorf(err, rc, "runtime start: port I/O thread: %s", mb_strerror(rc));
        goto fail_port;
    }
    rt->workers = calloc(rt->cfg.workers, sizeof(*rt->workers));
    if (rt->workers == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "runtime start: out of memory");
        goto fail_workers;
    }
    for (unsigned i = 0; i < rt->cfg.workers; i++) {
        rt->workers[i].rt = rt;
        rt->workers[i].idx = i;
        if (pthread_create(&rt->workers[i].th, NULL, worker_main, &rt->workers[i]) != 0) {
            rc = mb_errorf(err, MB_EUNAVAIL, "runtime start: cannot start worker %u", i);
            goto fail_threads;
        }
        rt->nworkers++;
    }
    *out = rt;
    return 0;

fail_threads:
    pthread_mutex_lock(&rt->rq_mu);
    rt->workers_exit = 1;
    pthread_cond_broadcast(&rt->rq_cv);
    pthread_mutex_unlock(&rt->rq_mu);
    for (unsigned i = 0; i < rt->nworkers; i++)
        pthread_join(rt->workers[i].th, NULL);
    free(rt->workers);
fail_workers:
    rt_port_io_stop(rt->port_io);
fail_port:
    rt_timers_stop(rt->timers);
fail_timers:
    rt_kinds_close(rt);
fail_kinds:
    free(rt);
    return rc;
}

int mb_runtime_quiesce(mb_runtime *rt, uint64_t timeout_ms)
{
    uint64_t deadline = mono_ns() + timeout_ms * 1000000ull;
    for (;;) {
        if (atomic_load_explicit(&rt->pending, memory_order_acquire) == 0)
            return 0;
        if (mono_ns() >= deadline)
            return MB_ETIMEDOUT;
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
}

/* Ask every agent to die (kill); returns how many were asked. */
static size_t kill_all(struct mb_runtime *rt)
{
    size_t n = 0;
    for (int i = 0; i < MAP_SHARDS; i++) {
        struct map_shard *s = &rt->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; s->b != NULL && b <= s->mask; b++) {
            for (struct rt_agent *a = s->b[b]; a != NULL; a = a->hnext) {
                atomic_store_explicit(&a->kill_req, RT_KILL_SHUTDOWN, memory_order_seq_cst);
                schedule(rt, a);
                n++;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

void mb_runtime_stop(mb_runtime *rt)
{
    if (rt == NULL)
        return;
    atomic_store(&rt->stopping, 1); /* no new spawns */
    /* Kill until nobody is left (a dying agent may notify others). */
    while (atomic_load(&rt->live) > 0 || atomic_load(&rt->pending) > 0) {
        kill_all(rt);
        mb_runtime_quiesce(rt, 50);
    }
    pthread_mutex_lock(&rt->rq_mu);
    rt->workers_exit = 1;
    pthread_cond_broadcast(&rt->rq_cv);
    pthread_mutex_unlock(&rt->rq_mu);
    for (unsigned i = 0; i < rt->nworkers; i++)
        pthread_join(rt->workers[i].th, NULL);
    rt_port_io_stop(rt->port_io);
    rt_timers_stop(rt->timers);
    for (int i = 0; i < MAP_SHARDS; i++) {
        free(rt->shards[i].b);
        pthread_mutex_destroy(&rt->shards[i].mu);
    }
    rt_kinds_close(rt);
    free(rt->rq);
    free(rt->workers);
    pthread_mutex_destroy(&rt->rq_mu);
    pthread_cond_destroy(&rt->rq_cv);
    free(rt);
}

unsigned mb_runtime_tick(mb_runtime *rt)
{
    return rt_timers_tick(rt->timers);
}

/* ---- management API ---- */

int mb_runtime_spawn(mb_runtime *rt, const mb_spawn_opts *opts, mb_agent_id *out, mb_error *err)
{
    if (opts == NULL)
        return mb_errorf(err, MB_EINVAL, "spawn: no options");
    if (opts->supervisor != 0)
        return rt_supervisor_add_child(rt, opts->supervisor, opts, out, err);
    if (opts->link)
        return mb_errorf(err, MB_EINVAL, "spawn: link needs a spawning agent");
    return rt_spawn(rt, NULL, opts, NULL, out, err);
}

int mb_runtime_stop_agent(mb_runtime *rt, mb_agent_id id)
{
    return rt_exit_agent(rt, id, MB_EXIT_NORMAL);
}

int mb_runtime_kill_agent(mb_runtime *rt, mb_agent_id id)
{
    return rt_exit_agent(rt, id, MB_EXIT_KILLED);
}

int mb_runtime_checkpoint_agent(mb_runtime *rt, mb_agent_id id)
{
    struct rt_msg *m = rt_msg_new(0, RT_SIG_CHECKPOINT, 0, NULL, 0);
    if (m == NULL)
        return MB_ENOMEM;
    int rc = rt_deliver(rt, id, m);
    if (rc != 0)
        rt_msg_free(m);
    return rc;
}

int mb_runtime_restart_agent(mb_runtime *rt, mb_agent_id id)
{
    struct rt_msg *m = rt_msg_new(0, RT_SIG_RESTART, 0, NULL, 0);
    if (m == NULL)
        return MB_ENOMEM;
    int rc = rt_deliver(rt, id, m);
    if (rc != 0)
        rt_msg_free(m);
    return rc;
}

int mb_runtime_deliver(mb_runtime *rt, mb_agent_id from, mb_agent_id to, uint32_t tag,
                       const void *data, size_t len)
{
    if (len > 0 && data == NULL)
        return MB_EINVAL;
    struct rt_msg *m = rt_msg_new(from, MB_MSG_USER, tag, data, len);
    if (m == NULL)
        return MB_ENOMEM;
    int rc = rt_deliver(rt, to, m);
    if (rc != 0)
        rt_msg_free(m);
    return rc;
}

static void rt_var_free(void *p)
{
    struct rt_var *v = p;
    free(v->name);
    mb_value_free(&v->value);
    free(v);
}

static void rt_vote_free(void *p)
{
    struct rt_vote *v = p;
    free(v->variable);
    mb_value_free(&v->value);
    free(v);
}

/* One change shared by the messages of a fan-out (ext of each), and the
 * messages themselves, in one block: one allocation for the fan-out rather
 * than one per agent (the loop allocated and the workers freed 333 per
 * node and change). The last message freed frees the block. */
struct rt_var_shared {
    struct rt_var v; /* first: m->ext points at it for run_turn */
    atomic_size_t refs;
    _Alignas(16) unsigned char msgs[]; /* n slots of FAN_MSG_STRIDE bytes */
};

/* A fan-out message's slot: the header, no payload, 16-aligned as
 * rt_msg_new's. */
#define FAN_MSG_STRIDE ((sizeof(struct rt_msg) + 15) & ~(size_t)15)

static void rt_var_shared_put(void *p)
{
    struct rt_var_shared *s = p;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        rt_var_free(&s->v); /* frees s too: v is its first member */
}

/* A fan-out in progress: the shared change, and agents made runnable but
 * not yet on the run queue. */
struct fan {
    struct rt_var_shared *sh;
    struct rt_agent *ready[64];
    size_t n_ready;
};

static void fan_flush(struct mb_runtime *rt, struct fan *f)
{
    /* As schedule(), but the run-queue pushes are collected (and so is
     * the `pending` count, added before the agents can run). */
    atomic_fetch_add_explicit(&rt->pending, (long)f->n_ready, memory_order_relaxed);
    rq_push_many(rt, f->ready, f->n_ready);
    f->n_ready = 0;
}

/* One message of the fan-out to each of to[idx[0..k)], all in shard s,
 * under one hold of its lock; k fits in f->ready. The agents' lines are
 * cold (the change comes after a pause), so every bucket slot is
 * prefetched first, then every chain head, then the messages are pushed:
 * the misses of the k agents overlap instead of following one another. */
static void fan_shard(struct mb_runtime *rt, struct fan *f, struct map_shard *s,
                      const mb_agent_id *to, const size_t *idx, size_t k, int *rcs)
{
    pthread_mutex_lock(&s->mu);
    if (s->b != NULL) {
        for (size_t j = 0; j < k; j++)
            __builtin_prefetch(&s->b[bucket_of(s, to[idx[j]])]);
        for (size_t j = 0; j < k; j++) {
            struct rt_agent *h = s->b[bucket_of(s, to[idx[j]])];
            if (h != NULL) {
                __builtin_prefetch(h, 1);
                __builtin_prefetch(&h->stub, 1);
            }
        }
    }
    for (size_t j = 0; j < k; j++) {
        size_t i = idx[j];
        struct rt_agent *a = map_find_locked(s, to[i]);
        if (a == NULL) {
            rt_var_shared_put(f->sh); /* this message's reference */
            rcs[i] = MB_ENOAGENT;
            continue;
        }
        struct rt_msg *m = (struct rt_msg *)(f->sh->msgs + i * FAN_MSG_STRIDE);
        msg_init(m, RT_MSG_INBLOCK, 0, RT_SIG_VAR, 0, 0);
        m->ext = &f->sh->v;
        m->ext_free = rt_var_shared_put;
        atomic_fetch_add_explicit(&a->mlen, 1, memory_order_seq_cst);
        mbox_push(a, m);
        if (atomic_fetch_add_explicit(&a->sched, 1, memory_order_seq_cst) == 0)
            f->ready[f->n_ready++] = a;
        rcs[i] = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

int mb_runtime_var_changed_many(mb_runtime *rt, const mb_agent_id *to, size_t n, const char *name,
                                const mb_value *value, uint64_t version, int *rcs)
{
    if (name == NULL || value == NULL || (n > 0 && (to == NULL || rcs == NULL)))
        return MB_EINVAL;
    if (n == 0)
        return 0;
    struct fan f = { .n_ready = 0 };
    f.sh = n <= (SIZE_MAX - sizeof(*f.sh)) / FAN_MSG_STRIDE
               ? malloc(sizeof(*f.sh) + n * FAN_MSG_STRIDE)
               : NULL;
    if (f.sh != NULL) {
        memset(f.sh, 0, sizeof(*f.sh));
        f.sh->v.name = strdup(name);
        f.sh->v.version = version;
        if (f.sh->v.name == NULL || mb_value_copy(&f.sh->v.value, value) != 0) {
            free(f.sh->v.name);
            free(f.sh);
            f.sh = NULL;
        }
    }
    if (f.sh == NULL) {
        for (size_t i = 0; i < n; i++)
            rcs[i] = MB_ENOMEM;
        return MB_ENOMEM;
    }
    /* A reference per message and one for this function, taken at once
     * (the workers drop theirs meanwhile: counting up per message made
     * the loop and the workers take turns with the counter's cache line).
     * A message not sent gives its reference back; ours is dropped at the
     * end, so the shared copy outlives the loop below even if every agent
     * ran and freed its message already. */
    atomic_store_explicit(&f.sh->refs, n + 1, memory_order_relaxed);
    /* The recipients grouped by map shard (a counting sort of their
     * indexes): one lock per shard, and prefetches that overlap. Without
     * memory for the order, one at a time in the caller's order. */
    size_t ord_small[64], at[MAP_SHARDS + 1] = { 0 };
    size_t *ord = n <= 64 ? ord_small : malloc(n * sizeof(*ord));
    if (ord != NULL) {
        for (size_t i = 0; i < n; i++)
            at[MB_AGENT_LOCAL(to[i]) % MAP_SHARDS + 1]++;
        for (size_t k = 0; k < MAP_SHARDS; k++)
            at[k + 1] += at[k];
        for (size_t i = 0; i < n; i++)
            ord[at[MB_AGENT_LOCAL(to[i]) % MAP_SHARDS]++] = i; /* at[k]: end of shard k */
    }
    size_t done = 0, flushes = 0;
    while (done < n) {
        size_t i0 = ord != NULL ? ord[done] : done;
        struct map_shard *s = shard_of(rt, to[i0]);
        /* This shard's run, cut to the room left before a flush. */
        size_t k = 1, room = sizeof(f.ready) / sizeof(f.ready[0]) - f.n_ready;
        while (ord != NULL && done + k < n && k < room && shard_of(rt, to[ord[done + k]]) == s)
            k++;
        /* Without the order, the run is the one recipient at index done:
         * &done is its one-element index list. */
        fan_shard(rt, &f, s, to, ord != NULL ? &ord[done] : &done, k, rcs);
        done += k;
        /* The first shard's agents start at once; then full batches. */
        if (f.n_ready == sizeof(f.ready) / sizeof(f.ready[0]) || (flushes == 0 && f.n_ready > 0)) {
            fan_flush(rt, &f);
            flushes++;
        }
    }
    fan_flush(rt, &f);
    if (ord != ord_small)
        free(ord);
    rt_var_shared_put(f.sh);
    return 0;
}

int mb_runtime_var_changed(mb_runtime *rt, mb_agent_id to, const char *name, const mb_value *value,
                           uint64_t version)
{
    int rc = 0;
    int all = mb_runtime_var_changed_many(rt, &to, 1, name, value, version, &rc);
    return all == MB_EINVAL ? all : rc;
}

int mb_runtime_vote_request(mb_runtime *rt, mb_agent_id to, const mb_proposal *p)
{
    if (p == NULL || p->variable == NULL || p->value == NULL)
        return MB_EINVAL;
    struct rt_vote *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return MB_ENOMEM;
    v->p = *p;
    v->variable = strdup(p->variable);
    if (v->variable == NULL || mb_value_copy(&v->value, p->value) != 0) {
        free(v->variable);
        free(v);
        return MB_ENOMEM;
    }
    v->p.variable = v->variable;
    v->p.value = &v->value;
    struct rt_msg *m = rt_msg_new(0, RT_SIG_VOTE, 0, NULL, 0);
    if (m == NULL) {
        rt_vote_free(v);
        return MB_ENOMEM;
    }
    m->ext = v;
    m->ext_free = rt_vote_free;
    int rc = rt_deliver(rt, to, m);
    if (rc != 0)
        rt_msg_free(m);
    return rc;
}

/* Caller holds the shard lock. */
static void fill_info(struct rt_agent *a, mb_agent_info *out)
{
    memset(out, 0, sizeof(*out));
    const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
    out->id = a->id;
    snprintf(out->kind, sizeof(out->kind), "%s", k->name);
    out->version = k->version;
    if (a->ext != NULL) {
        snprintf(out->name, sizeof(out->name), "%s", a->ext->name ? a->ext->name : "");
        snprintf(out->ns, sizeof(out->ns), "%s", a->ext->ns ? a->ext->ns : "");
        out->os_pid = atomic_load_explicit(&a->ext->os_pid, memory_order_relaxed);
        out->last_error = a->ext->last_error; /* set before the agent was published */
        snprintf(out->last_error_msg, sizeof(out->last_error_msg), "%s", a->ext->last_error_msg);
    }
    out->status = atomic_load_explicit(&a->kill_req, memory_order_relaxed) ? MB_AGENT_EXITING
                                                                           : MB_AGENT_RUNNING;
    out->parent = a->parent;
    out->usage.messages = atomic_load_explicit(&a->msgs, memory_order_relaxed);
    out->usage.mailbox_len = atomic_load_explicit(&a->mlen, memory_order_relaxed);
    out->usage.restarts = atomic_load_explicit(&a->restarts, memory_order_relaxed);
    out->usage.memory_bytes = sizeof(*a) + (a->ext ? sizeof(*a->ext) : 0) +
                              (uint64_t)out->usage.mailbox_len * sizeof(struct rt_msg);
    out->usage.cpu_ns = atomic_load_explicit(&a->cpu_ns, memory_order_relaxed);
    out->turns = atomic_load_explicit(&a->turns, memory_order_relaxed);
    out->is_port = k == &mb_kind_port;
}

int mb_runtime_agent_state(mb_runtime *rt, mb_agent_id id, mb_agent_state *out)
{
    struct map_shard *s = shard_of(rt, id);
    pthread_mutex_lock(&s->mu);
    struct rt_agent *a = map_find_locked(s, id);
    if (a != NULL) {
        out->running = !atomic_load_explicit(&a->kill_req, memory_order_relaxed);
        out->turns = atomic_load_explicit(&a->turns, memory_order_relaxed);
        out->is_port = atomic_load_explicit(&a->kind, memory_order_relaxed) == &mb_kind_port;
    }
    pthread_mutex_unlock(&s->mu);
    return a != NULL ? MB_OK : MB_ENOAGENT;
}

int mb_runtime_agent_info(mb_runtime *rt, mb_agent_id id, mb_agent_info *out)
{
    if (out == NULL)
        return MB_EINVAL;
    struct map_shard *s = shard_of(rt, id);
    pthread_mutex_lock(&s->mu);
    struct rt_agent *a = map_find_locked(s, id);
    if (a != NULL)
        fill_info(a, out);
    pthread_mutex_unlock(&s->mu);
    if (a == NULL)
        return MB_ENOAGENT;
    if (out->is_port && out->os_pid > 0) {
        /* CPU time and memory of the port process, from /proc. */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", out->os_pid);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            char buf[1024];
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            char *p = strrchr(buf, ')');
            unsigned long ut = 0, st = 0;
            long rss = 0;
            if (p != NULL &&
                sscanf(p + 2,
                       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
                       "%*d %*d %*d %*u %*u %ld",
                       &ut, &st, &rss) == 3) {
                long hz = sysconf(_SC_CLK_TCK);
                out->usage.cpu_ns = (uint64_t)(ut + st) * (1000000000ull / (uint64_t)hz);
                out->usage.memory_bytes = (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
            }
        }
    }
    return 0;
}

size_t mb_runtime_list(mb_runtime *rt, const mb_agent_filter *f, mb_agent_info *out, size_t max)
{
    size_t total = 0;
    for (int i = 0; i < MAP_SHARDS; i++) {
        struct map_shard *s = &rt->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; s->b != NULL && b <= s->mask; b++) {
            for (struct rt_agent *a = s->b[b]; a != NULL; a = a->hnext) {
                const mb_agent_kind *k = atomic_load_explicit(&a->kind, memory_order_relaxed);
                if (f != NULL) {
                    if (f->kind != NULL && strcmp(f->kind, k->name) != 0)
                        continue;
                    if (f->parent != 0 && f->parent != a->parent)
                        continue;
                    if (f->ns != NULL) {
                        const char *ns = a->ext && a->ext->ns ? a->ext->ns : "";
                        if (strcmp(f->ns, ns) != 0)
                            continue;
                    }
                }
                if (total < max && out != NULL)
                    fill_info(a, &out[total]);
                total++;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return total;
}

uint64_t mb_runtime_agent_count(mb_runtime *rt)
{
    return atomic_load_explicit(&rt->live, memory_order_relaxed);
}

/* ---- kinds (the table lives here; loading in kinds.c) ---- */

pthread_rwlock_t *rt_kinds_lock(struct mb_runtime *rt);
struct rt_kind **rt_kinds_head(struct mb_runtime *rt);
int rt_kinds_add_lib(struct mb_runtime *rt, void *handle);
void rt_kinds_free_libs(struct mb_runtime *rt, void (*close_fn)(void *));

pthread_rwlock_t *rt_kinds_lock(struct mb_runtime *rt)
{
    return &rt->kinds_mu;
}

struct rt_kind **rt_kinds_head(struct mb_runtime *rt)
{
    return &rt->kinds;
}

int rt_kinds_add_lib(struct mb_runtime *rt, void *handle)
{
    void **nl = realloc(rt->libs, (rt->nlibs + 1) * sizeof(*nl));
    if (nl == NULL)
        return MB_ENOMEM;
    rt->libs = nl;
    rt->libs[rt->nlibs++] = handle;
    return 0;
}

void rt_kinds_free_libs(struct mb_runtime *rt, void (*close_fn)(void *))
{
    for (size_t i = 0; i < rt->nlibs; i++)
        close_fn(rt->libs[i]);
    free(rt->libs);
    rt->libs = NULL;
    rt->nlibs = 0;
}
