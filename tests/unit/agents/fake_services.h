/* A fake node-services implementation for the agent runtime tests: an
 * injected clock and random source, an in-memory registry, and recorders
 * for events, logs, telemetry, checkpoints and variable/vote calls. Plus
 * a "probe" agent kind that records everything it receives into a
 * test-owned struct, and acts on a few command tags. Header-only (static). */
#ifndef MB_TEST_FAKE_SERVICES_H
#define MB_TEST_FAKE_SERVICES_H

/* Helpers not every test binary uses. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mabeam/agent.h>
#include <mabeam/agent_runtime.h>

#define FAKE_MAX_REG 256
#define FAKE_MAX_EV  4096

struct fake_reg {
    mb_agent_id id;
    char ns[64], name[64];
    char caps[4][32];
    size_t ncaps;
};

struct fake_ev {
    int type;
    mb_agent_id id;
    int reason;
    int code;
    char detail[96];
};

struct fake {
    pthread_mutex_t mu;
    _Atomic uint64_t mono_ms;
    _Atomic uint64_t rnd;
    struct fake_reg reg[FAKE_MAX_REG];
    size_t nreg;
    struct fake_ev ev[FAKE_MAX_EV];
    size_t nev;
    _Atomic uint64_t ev_count[16];
    char last_log[512];
    _Atomic uint64_t nlogs;
    char logs[8192];
    double pool_size;
    _Atomic uint64_t ncheckpoints;
    _Atomic uint64_t nvotes;
    int last_vote;
    _Atomic uint64_t nproposals; /* fake_propose: accepted ones */
    char last_proposal[64];      /* its variable */
    mb_vtype last_proposal_type; /* its value's type */
    double last_proposal_value;  /* its value, when a float or an int */
    int record_events;           /* 0: only count (for the 1M test) */
    _Atomic uint64_t nremote;
    mb_agent_id last_remote_to, last_remote_from;
    uint32_t last_remote_tag;
};

static void fake_lock(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
}
static void fake_unlock(struct fake *f)
{
    pthread_mutex_unlock(&f->mu);
}

static int fake_register(void *impl, mb_agent_id id, const char *ns, const char *name,
                         const char *const *caps, size_t ncaps)
{
    struct fake *f = impl;
    fake_lock(f);
    for (size_t i = 0; name != NULL && i < f->nreg; i++) {
        if (strcmp(f->reg[i].ns, ns) == 0 && strcmp(f->reg[i].name, name) == 0) {
            fake_unlock(f);
            return MB_EEXIST;
        }
    }
    if (f->nreg == FAKE_MAX_REG || ncaps > 4) {
        fake_unlock(f);
        return MB_ENOSPC;
    }
    struct fake_reg *r = &f->reg[f->nreg++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    snprintf(r->ns, sizeof(r->ns), "%s", ns);
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    for (size_t i = 0; i < ncaps; i++)
        snprintf(r->caps[i], sizeof(r->caps[i]), "%s", caps[i]);
    r->ncaps = ncaps;
    fake_unlock(f);
    return 0;
}

static void fake_unregister(void *impl, mb_agent_id id, const char *ns, const char *name)
{
    struct fake *f = impl;
    (void)ns;
    (void)name;
    fake_lock(f);
    for (size_t i = 0; i < f->nreg; i++) {
        if (f->reg[i].id == id) {
            f->reg[i] = f->reg[--f->nreg];
            break;
        }
    }
    fake_unlock(f);
}

static int fake_lookup(void *impl, const char *ns, const char *name, mb_agent_id *out)
{
    struct fake *f = impl;
    int rc = MB_ENOTFOUND;
    fake_lock(f);
    for (size_t i = 0; i < f->nreg; i++) {
        if (strcmp(f->reg[i].ns, ns) == 0 && strcmp(f->reg[i].name, name) == 0) {
            *out = f->reg[i].id;
            rc = 0;
            break;
        }
    }
    fake_unlock(f);
    return rc;
}

static size_t fake_caps_lookup(void *impl, const char *ns, const char *const *caps, size_t ncaps,
                               mb_agent_id *out, size_t max)
{
    struct fake *f = impl;
    size_t n = 0;
    fake_lock(f);
    for (size_t i = 0; i < f->nreg; i++) {
        if (strcmp(f->reg[i].ns, ns) != 0)
            continue;
        size_t have = 0;
        for (size_t c = 0; c < ncaps; c++)
            for (size_t k = 0; k < f->reg[i].ncaps; k++)
                if (strcmp(caps[c], f->reg[i].caps[k]) == 0) {
                    have++;
                    break;
                }
        if (have == ncaps) {
            if (n < max)
                out[n] = f->reg[i].id;
            n++;
        }
    }
    fake_unlock(f);
    return n;
}

static void fake_event(void *impl, const mb_agent_event *ev)
{
    struct fake *f = impl;
    if (ev->type >= 0 && ev->type < 16)
        atomic_fetch_add(&f->ev_count[ev->type], 1);
    if (!f->record_events)
        return;
    fake_lock(f);
    if (f->nev < FAKE_MAX_EV) {
        struct fake_ev *e = &f->ev[f->nev++];
        e->type = ev->type;
        e->id = ev->id;
        e->reason = ev->reason;
        e->code = ev->code;
        snprintf(e->detail, sizeof(e->detail), "%s", ev->detail);
    }
    fake_unlock(f);
}

static void fake_log(void *impl, int level, mb_agent_id id, const char *msg)
{
    struct fake *f = impl;
    (void)level;
    (void)id;
    fake_lock(f);
    snprintf(f->last_log, sizeof(f->last_log), "%s", msg);
    size_t l = strlen(f->logs);
    if (l + strlen(msg) + 2 < sizeof(f->logs)) {
        strcat(f->logs, msg);
        strcat(f->logs, "\n");
    }
    fake_unlock(f);
    atomic_fetch_add(&f->nlogs, 1);
}

static void fake_telemetry(void *impl, const char *metric, const char *label, double v)
{
    struct fake *f = impl;
    (void)label;
    if (strcmp(metric, "pool_size") == 0) {
        fake_lock(f);
        f->pool_size = v;
        fake_unlock(f);
    }
}

static void fake_ckpt(void *impl, mb_agent_id id, const void *b, size_t n)
{
    struct fake *f = impl;
    (void)id;
    (void)b;
    (void)n;
    atomic_fetch_add(&f->ncheckpoints, 1);
}

static int fake_vote(void *impl, mb_agent_id who, uint64_t pid, int accept)
{
    struct fake *f = impl;
    (void)who;
    (void)pid;
    fake_lock(f);
    f->last_vote = accept;
    fake_unlock(f);
    atomic_fetch_add(&f->nvotes, 1);
    return 0;
}

/* Proposals: accepted with ids 100, 101, ...; the variable "locked" is
 * refused with MB_EPERM (an error to hand back). */
static int fake_propose(void *impl, mb_agent_id who, const char *name, const mb_value *value,
                        uint64_t *proposal_id)
{
    struct fake *f = impl;
    (void)who;
    if (strcmp(name, "locked") == 0)
        return MB_EPERM;
    fake_lock(f);
    snprintf(f->last_proposal, sizeof(f->last_proposal), "%s", name);
    f->last_proposal_type = value->type;
    f->last_proposal_value = value->type == MB_VT_FLOAT ? value->u.f
                             : value->type == MB_VT_INT ? (double)value->u.i
                                                        : -1;
    fake_unlock(f);
    *proposal_id = 100 + atomic_fetch_add(&f->nproposals, 1);
    return 0;
}

/* Variables: one, "k", an int (its value 0, version 1). */
static int fake_var_get(void *impl, const char *name, mb_value *out, uint64_t *version)
{
    (void)impl;
    if (strcmp(name, "k") != 0)
        return MB_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    out->type = MB_VT_INT;
    *version = 1;
    return 0;
}

static int fake_send_remote(void *impl, mb_agent_id from, mb_agent_id to, uint32_t tag,
                            const void *data, size_t len)
{
    struct fake *f = impl;
    (void)data;
    (void)len;
    fake_lock(f);
    f->last_remote_to = to;
    f->last_remote_from = from;
    f->last_remote_tag = tag;
    fake_unlock(f);
    atomic_fetch_add(&f->nremote, 1);
    return 0;
}

static uint64_t fake_mono(void *impl)
{
    return atomic_load(&((struct fake *)impl)->mono_ms);
}

static uint64_t fake_now(void *impl)
{
    return 1700000000000ull + atomic_load(&((struct fake *)impl)->mono_ms);
}

static uint64_t fake_random(void *impl)
{
    return atomic_load(&((struct fake *)impl)->rnd);
}

static void fake_init(struct fake *f, mb_services *svc, int fake_clock)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    atomic_store(&f->mono_ms, 1000);
    f->record_events = 1;
    memset(svc, 0, sizeof(*svc));
    svc->impl = f;
    svc->name_register = fake_register;
    svc->name_unregister = fake_unregister;
    svc->name_lookup = fake_lookup;
    svc->caps_lookup = fake_caps_lookup;
    svc->event = fake_event;
    svc->log = fake_log;
    svc->telemetry = fake_telemetry;
    svc->checkpoint_saved = fake_ckpt;
    svc->vote = fake_vote;
    svc->propose = fake_propose;
    svc->var_get = fake_var_get;
    svc->send_remote = fake_send_remote;
    if (fake_clock) {
        svc->monotonic_ms = fake_mono;
        svc->now_ms = fake_now;
    }
    svc->random = fake_random;
}

static void fake_close(struct fake *f)
{
    pthread_mutex_destroy(&f->mu);
}

static uint64_t fake_count(struct fake *f, int type)
{
    return atomic_load(&f->ev_count[type]);
}

/* Did an event of `type` about `id` get recorded? Returns its index + 1. */
static size_t fake_find_event(struct fake *f, int type, mb_agent_id id)
{
    size_t r = 0;
    fake_lock(f);
    for (size_t i = 0; i < f->nev; i++)
        if (f->ev[i].type == type && (id == 0 || f->ev[i].id == id)) {
            r = i + 1;
            break;
        }
    fake_unlock(f);
    return r;
}

static int fake_logs_contain(struct fake *f, const char *needle)
{
    fake_lock(f);
    int r = strstr(f->logs, needle) != NULL;
    fake_unlock(f);
    return r;
}

/* ---- probe kind ---- */

#define PROBE_MAX 1024

struct probe_rec {
    mb_agent_id from;
    uint32_t type, tag;
    int reason, code;
    mb_agent_id about;
    int64_t value; /* first 8 bytes of data, if any */
    size_t len;
    char text[64];
};

struct probe {
    pthread_mutex_t mu;
    struct probe_rec rec[PROBE_MAX];
    _Atomic size_t n;
    _Atomic mb_agent_id self;
    _Atomic int terminated;
};

/* Command tags the probe acts on (data = 8-byte argument). */
enum {
    PROBE_MONITOR = 9001, /* monitor agent <arg> */
    PROBE_LINK = 9002,    /* link to agent <arg> */
    PROBE_NOTIFY = 9003,  /* send tag 1 to agent <arg> with MB_SEND_NOTIFY */
    PROBE_AFTER = 9004,   /* timer: once after <arg> ms, tag 77 */
    PROBE_EVERY = 9005,   /* timer: every <arg> ms, tag 78 */
    PROBE_CANCEL = 9006,  /* cancel the periodic timer */
    PROBE_TRAP = 9007,    /* trap exits */
    PROBE_SEND = 9008,    /* send tag 5 to agent <arg> */
    PROBE_FAIL = 9009,    /* return MB_EINVAL from the handler */
};

struct probe_state {
    struct probe *p;
    uint64_t timer;
};

static int probe_init(mb_ctx *ctx, const char *config, void **state)
{
    struct probe_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MB_ENOMEM;
    if (sscanf(config, "%p", (void **)&s->p) != 1) {
        free(s);
        return MB_EINVAL;
    }
    atomic_store(&s->p->self, mb_self(ctx));
    *state = s;
    return 0;
}

static int probe_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct probe_state *s = state;
    struct probe *p = s->p;
    int64_t arg = 0;
    if (msg->type == MB_MSG_USER && msg->len == 8)
        memcpy(&arg, msg->data, 8);
    if (msg->type == MB_MSG_USER) {
        switch (msg->tag) {
        case PROBE_MONITOR:
            return mb_monitor(ctx, (mb_agent_id)arg, NULL);
        case PROBE_LINK:
            mb_link(ctx, (mb_agent_id)arg);
            return 0;
        case PROBE_NOTIFY:
            mb_send_flags(ctx, (mb_agent_id)arg, 1, "x", 1, MB_SEND_NOTIFY);
            return 0;
        case PROBE_AFTER:
            return mb_send_after(ctx, (uint64_t)arg, 77, "t", 1, NULL);
        case PROBE_EVERY:
            return mb_send_every(ctx, (uint64_t)arg, 78, NULL, 0, &s->timer);
        case PROBE_CANCEL:
            return mb_timer_cancel(ctx, s->timer);
        case PROBE_TRAP:
            mb_trap_exits(ctx, 1);
            return 0;
        case PROBE_SEND:
            return mb_send(ctx, (mb_agent_id)arg, 5, NULL, 0);
        case PROBE_FAIL:
            return MB_EINVAL;
        default:
            break;
        }
    }
    size_t i = atomic_load(&p->n);
    if (i < PROBE_MAX) {
        struct probe_rec *r = &p->rec[i];
        memset(r, 0, sizeof(*r));
        r->from = msg->from;
        r->type = msg->type;
        r->tag = msg->tag;
        r->len = msg->len;
        if (msg->type == MB_MSG_DOWN || msg->type == MB_MSG_EXIT) {
            const mb_exit_info *x = msg->data;
            r->reason = x->reason;
            r->code = x->code;
            r->about = x->id;
            snprintf(r->text, sizeof(r->text), "%s", x->detail);
        } else {
            if (msg->len >= 8)
                memcpy(&r->value, msg->data, 8);
            snprintf(r->text, sizeof(r->text), "%.*s", (int)(msg->len < 63 ? msg->len : 63),
                     (const char *)msg->data);
        }
        atomic_store(&p->n, i + 1);
    }
    return 0;
}

static void probe_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    struct probe_state *s = state;
    atomic_fetch_add(&s->p->terminated, 1);
    free(s);
}

static const mb_agent_kind probe_kind = {
    .abi = MB_AGENT_ABI,
    .name = "probe",
    .version = 1,
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
};

static void probe_reset(struct probe *p)
{
    memset(p, 0, sizeof(*p));
}

/* Spawn a probe recording into p. */
static mb_agent_id probe_spawn(mb_runtime *rt, struct probe *p)
{
    char cfg[32];
    snprintf(cfg, sizeof(cfg), "%p", (void *)p);
    mb_spawn_opts o = { .kind = "probe", .config = cfg };
    mb_agent_id id = 0;
    if (mb_runtime_spawn(rt, &o, &id, NULL) != 0)
        return 0;
    return id;
}

/* Index of the first record with this type (and tag if tag != ~0u), or -1. */
static long probe_find(struct probe *p, uint32_t type, uint32_t tag)
{
    size_t n = atomic_load(&p->n);
    for (size_t i = 0; i < n; i++)
        if (p->rec[i].type == type && (tag == ~0u || p->rec[i].tag == tag))
            return (long)i;
    return -1;
}

static int probe_cmd(mb_runtime *rt, mb_agent_id probe, uint32_t tag, int64_t arg)
{
    return mb_runtime_deliver(rt, 0, probe, tag, &arg, sizeof(arg));
}

/* ---- slow kind: each message takes ~200 us of CPU (fills mailboxes) ---- */

static int slow_handle(mb_ctx *ctx, void *s, const mb_msg *m)
{
    (void)ctx;
    (void)s;
    (void)m;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 200000L);
    return 0;
}

static const mb_agent_kind slow_kind = {
    .abi = MB_AGENT_ABI,
    .name = "slow",
    .version = 1,
    .handle = slow_handle,
};

#endif /* MB_TEST_FAKE_SERVICES_H */
