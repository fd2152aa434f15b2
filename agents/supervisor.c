/* The built-in "supervisor" kind, after OTP: children are linked to it and
 * it traps exits; strategies one_for_one, one_for_all, rest_for_one; child
 * restart types permanent, transient, temporary; restart intensity (more
 * than `intensity` restarts within `period_ms` makes the supervisor itself
 * crash, so that its parent decides); exponential back-off with jitter and
 * a cap; restarted children resume from their last checkpoint, which the
 * runtime hands over in the child's EXIT notice. Config format:
 * docs/agents.md ("Supervisors"). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/internal.h"
#include "internal/clock.h"

#define SUP_TAG_RESTART 0x53555052u /* "SUPR" timer */

enum { ONE_FOR_ONE = 0, ONE_FOR_ALL = 1, REST_FOR_ONE = 2 };
enum { CH_RUNNING = 0, CH_TERMINATING = 1, CH_WAITING = 2, CH_DONE = 3 };

struct child {
    char *kind, *config, *name, *ns;
    char **caps;
    size_t ncaps;
    int restart;
    uint32_t mailbox_max;
    int overflow;
    int st;
    mb_agent_id id;
    void *ckpt;
    size_t ckpt_len;
    uint32_t restarts;
    int last_error; /* why it last ended abnormally */
    char last_error_msg[96];
};

struct sup {
    int strategy;
    unsigned intensity;
    uint64_t period_ms;
    uint64_t backoff_initial_ms, backoff_max_ms;
    double jitter;
    struct child *ch;
    size_t n, cap;
    uint64_t *times; /* ring of the last intensity+1 restart times */
    size_t ntimes, tpos;
    unsigned pending_terms;
    int timer_armed;
};

static void child_free(struct child *c)
{
    free(c->kind);
    free(c->config);
    free(c->name);
    free(c->ns);
    for (size_t i = 0; i < c->ncaps; i++)
        free(c->caps[i]);
    free(c->caps);
    free(c->ckpt);
    memset(c, 0, sizeof(*c));
}

static void sup_free(struct sup *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        child_free(&s->ch[i]);
    free(s->ch);
    free(s->times);
    free(s);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Append a child spec (copied). */
static int sup_add_spec(struct sup *s, const mb_spawn_opts *o)
{
    if (o->kind == NULL)
        return MB_EINVAL;
    if (o->restart < MB_RESTART_PERMANENT || o->restart > MB_RESTART_TEMPORARY)
        return MB_EINVAL;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4;
        struct child *nch = realloc(s->ch, nc * sizeof(*nch));
        if (nch == NULL)
            return MB_ENOMEM;
        s->ch = nch;
        s->cap = nc;
    }
    struct child *c = &s->ch[s->n];
    memset(c, 0, sizeof(*c));
    c->kind = strdup(o->kind);
    c->config = dup_or_null(o->config);
    c->name = dup_or_null(o->name);
    c->ns = dup_or_null(o->ns);
    c->restart = o->restart;
    c->mailbox_max = o->mailbox_max;
    c->overflow = o->overflow;
    c->st = CH_WAITING;
    int oom =
        c->kind == NULL || (o->config && !c->config) || (o->name && !c->name) || (o->ns && !c->ns);
    if (!oom && o->ncaps > 0) {
        c->caps = calloc(o->ncaps, sizeof(char *));
        oom = c->caps == NULL;
        for (size_t i = 0; !oom && i < o->ncaps; i++) {
            c->caps[i] = strdup(o->caps[i]);
            oom = c->caps[i] == NULL;
            c->ncaps = i + 1;
        }
    }
    if (oom) {
        child_free(c);
        return MB_ENOMEM;
    }
    s->n++;
    return 0;
}

static int child_start(mb_ctx *ctx, struct child *c, mb_error *err)
{
    mb_spawn_opts o = {
        .kind = c->kind,
        .config = c->config,
        .name = c->name,
        .ns = c->ns,
        .caps = (const char *const *)c->caps,
        .ncaps = c->ncaps,
        .restart = c->restart,
        .mailbox_max = c->mailbox_max,
        .overflow = c->overflow,
        .link = 1,
    };
    mb_agent_id id = 0;
    struct rt_restart r = {
        .ckpt = c->ckpt,
        .ckpt_len = c->ckpt_len,
        .restarts = c->restarts,
        .last_error = c->last_error,
        .last_error_msg = c->last_error_msg,
    };
    int rc = rt_spawn(ctx->rt, ctx->a, &o, &r, &id, err);
    if (rc != 0)
        return rc;
    c->id = id;
    c->st = CH_RUNNING;
    return 0;
}

static int parse_restart(const char *s, int *out)
{
    if (strcmp(s, "permanent") == 0)
        *out = MB_RESTART_PERMANENT;
    else if (strcmp(s, "transient") == 0)
        *out = MB_RESTART_TRANSIENT;
    else if (strcmp(s, "temporary") == 0)
        *out = MB_RESTART_TEMPORARY;
    else
        return MB_EINVAL;
    return 0;
}

static int num_field(const cJSON *o, const char *name, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || isnan(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return MB_EINVAL;
    *out = v->valuedouble;
    return 0;
}

static const char *str_field(const cJSON *o, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

static int parse_config(struct sup *s, const char *config, mb_ctx *ctx)
{
    s->strategy = ONE_FOR_ONE;
    s->intensity = 3;
    s->period_ms = 5000;
    s->backoff_initial_ms = 10;
    s->backoff_max_ms = 5000;
    s->jitter = 0.1;
    if (config == NULL || config[0] == '\0')
        return 0;
    cJSON *root = cJSON_Parse(config);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        mb_log(ctx, MB_LOG_ERROR, "supervisor: config is not a JSON object");
        return MB_EINVAL;
    }
    int rc = 0, bad = 0;
    const char *strat = str_field(root, "strategy", &bad);
    if (strat != NULL) {
        if (strcmp(strat, "one_for_one") == 0)
            s->strategy = ONE_FOR_ONE;
        else if (strcmp(strat, "one_for_all") == 0)
            s->strategy = ONE_FOR_ALL;
        else if (strcmp(strat, "rest_for_one") == 0)
            s->strategy = REST_FOR_ONE;
        else
            bad = 1;
    }
    double d;
    d = s->intensity;
    rc |= num_field(root, "intensity", 0, 1000000, &d);
    s->intensity = (unsigned)d;
    d = (double)s->period_ms;
    rc |= num_field(root, "period_ms", 1, 1e12, &d);
    s->period_ms = (uint64_t)d;
    const cJSON *bo = cJSON_GetObjectItemCaseSensitive(root, "backoff");
    if (bo != NULL) {
        if (!cJSON_IsObject(bo)) {
            bad = 1;
        } else {
            d = (double)s->backoff_initial_ms;
            rc |= num_field(bo, "initial_ms", 0, 1e9, &d);
            s->backoff_initial_ms = (uint64_t)d;
            d = (double)s->backoff_max_ms;
            rc |= num_field(bo, "max_ms", 0, 1e9, &d);
            s->backoff_max_ms = (uint64_t)d;
            rc |= num_field(bo, "jitter", 0, 1, &s->jitter);
        }
    }
    const cJSON *children = cJSON_GetObjectItemCaseSensitive(root, "children");
    if (children != NULL && !cJSON_IsArray(children))
        bad = 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, children)
    {
        if (bad || rc)
            break;
        if (!cJSON_IsObject(c)) {
            bad = 1;
            break;
        }
        mb_spawn_opts o = { 0 };
        o.kind = str_field(c, "kind", &bad);
        o.config = str_field(c, "config", &bad);
        o.name = str_field(c, "name", &bad);
        o.ns = str_field(c, "ns", &bad);
        const char *rs = str_field(c, "restart", &bad);
        if (rs != NULL && parse_restart(rs, &o.restart) != 0)
            bad = 1;
        d = 0;
        rc |= num_field(c, "mailbox_max", 0, 4294967295.0, &d);
        o.mailbox_max = (uint32_t)d;
        const cJSON *caps = cJSON_GetObjectItemCaseSensitive(c, "caps");
        const char *capv[16];
        if (caps != NULL) {
            if (!cJSON_IsArray(caps) || cJSON_GetArraySize(caps) > 16) {
                bad = 1;
            } else {
                const cJSON *cap;
                cJSON_ArrayForEach(cap, caps)
                {
                    if (!cJSON_IsString(cap)) {
                        bad = 1;
                        break;
                    }
                    capv[o.ncaps++] = cap->valuestring;
                }
                o.caps = capv;
            }
        }
        if (o.kind == NULL)
            bad = 1;
        if (!bad && !rc)
            rc = sup_add_spec(s, &o);
    }
    cJSON_Delete(root);
    if (bad || rc) {
        mb_log(ctx, MB_LOG_ERROR, "supervisor: bad config field");
        return rc == MB_ENOMEM ? MB_ENOMEM : MB_EINVAL;
    }
    return 0;
}

static int sup_init(mb_ctx *ctx, const char *config, void **state)
{
    struct sup *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MB_ENOMEM;
    int rc = parse_config(s, config, ctx);
    if (rc != 0)
        goto fail;
    s->ntimes = (size_t)s->intensity + 1;
    s->times = calloc(s->ntimes, sizeof(uint64_t));
    if (s->times == NULL) {
        rc = MB_ENOMEM;
        goto fail;
    }
    mb_trap_exits(ctx, 1);
    for (size_t i = 0; i < s->n; i++) {
        mb_error err;
        rc = child_start(ctx, &s->ch[i], &err);
        if (rc != 0) {
            mb_log(ctx, MB_LOG_ERROR, "supervisor: start child %zu: %s", i, err.msg);
            for (size_t j = 0; j < i; j++)
                mb_exit_agent(ctx, s->ch[j].id, MB_EXIT_SHUTDOWN);
            goto fail;
        }
    }
    *state = s;
    return 0;
fail:
    sup_free(s);
    return rc;
}

/* Restarts within the period, newest first, counting at most 64 (enough
 * for the back-off exponent): O(1) per restart whatever the intensity. */
static unsigned recent_restarts(const struct sup *s, uint64_t now)
{
    unsigned n = 0;
    size_t i = s->tpos;
    for (size_t k = 0; k < s->ntimes && n < 64; k++) {
        i = (i + s->ntimes - 1) % s->ntimes;
        if (s->times[i] == 0 || s->times[i] - 1 + s->period_ms <= now)
            break;
        n++;
    }
    return n;
}

/* Record a restart; 1 if the intensity is exceeded (the intensity+1 most
 * recent restarts all fall within the period). *recent: restarts within
 * the period, this one included (capped at 64). */
static int note_restart(struct sup *s, uint64_t now, unsigned *recent)
{
    s->times[s->tpos] = now + 1; /* 0 marks an empty slot */
    s->tpos = (s->tpos + 1) % s->ntimes;
    *recent = recent_restarts(s, now);
    uint64_t oldest = s->times[s->tpos]; /* the slot written intensity+1 restarts ago */
    return oldest != 0 && oldest - 1 + s->period_ms > now;
}

static uint64_t backoff_ms(mb_ctx *ctx, struct sup *s, unsigned recent)
{
    if (s->backoff_initial_ms == 0 || recent == 0)
        return 0;
    uint64_t d = s->backoff_initial_ms;
    for (unsigned i = 1; i < recent && d < s->backoff_max_ms; i++)
        d *= 2;
    if (d > s->backoff_max_ms)
        d = s->backoff_max_ms;
    if (s->jitter > 0) {
        double r = (double)(mb_random(ctx) % 1000000) / 1000000.0;
        d -= (uint64_t)((double)d * s->jitter * r);
    }
    return d;
}

/* Restart every WAITING child, in start order. */
static int restart_waiting(mb_ctx *ctx, struct sup *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct child *c = &s->ch[i];
        if (c->st != CH_WAITING)
            continue;
        c->restarts++;
        mb_error err;
        mb_error_clear(&err);
        int rc = child_start(ctx, c, &err);
        if (rc != 0) {
            /* A failed restart counts against the intensity too. */
            mb_log(ctx, MB_LOG_WARN, "supervisor: restart of %s failed: %s", c->kind, err.msg);
            unsigned recent;
            if (note_restart(s, rt_monotonic_ms(ctx->rt), &recent)) {
                rt_event(ctx->rt, MB_AEV_ESCALATED, mb_self(ctx), &mb_kind_supervisor,
                         MB_EXIT_CRASH, rc, "restart intensity reached");
                return MB_ECRASH;
            }
            uint64_t d = backoff_ms(ctx, s, recent);
            if (!s->timer_armed) {
                s->timer_armed = 1;
                return mb_send_after(ctx, d ? d : 1, SUP_TAG_RESTART, NULL, 0, NULL);
            }
            return 0;
        }
        char buf[64];
        snprintf(buf, sizeof(buf), "restart %u by supervisor", c->restarts);
        rt_event(ctx->rt, MB_AEV_RESTARTED, c->id, NULL, 0, 0, buf);
    }
    return 0;
}

static int schedule_restart(mb_ctx *ctx, struct sup *s, unsigned recent)
{
    if (s->pending_terms > 0 || s->timer_armed)
        return 0; /* done when the terminations are in, or by the timer */
    uint64_t d = backoff_ms(ctx, s, recent);
    if (d == 0)
        return restart_waiting(ctx, s);
    s->timer_armed = 1;
    return mb_send_after(ctx, d, SUP_TAG_RESTART, NULL, 0, NULL);
}

static struct child *find_child(struct sup *s, mb_agent_id id, size_t *idx)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->ch[i].id == id && (s->ch[i].st == CH_RUNNING || s->ch[i].st == CH_TERMINATING)) {
            *idx = i;
            return &s->ch[i];
        }
    }
    return NULL;
}

static int on_child_exit(mb_ctx *ctx, struct sup *s, const mb_exit_info *x)
{
    size_t idx;
    struct child *c = find_child(s, x->id, &idx);
    if (c == NULL)
        return 0; /* not ours (or already handled) */
    if (x->checkpoint != NULL && x->checkpoint_len > 0) {
        void *b = malloc(x->checkpoint_len);
        if (b != NULL) {
            memcpy(b, x->checkpoint, x->checkpoint_len);
            free(c->ckpt);
            c->ckpt = b;
            c->ckpt_len = x->checkpoint_len;
        }
    }
    if (c->st == CH_TERMINATING) {
        /* A sibling we stopped for one_for_all / rest_for_one. */
        c->st = CH_WAITING;
        c->id = 0;
        if (--s->pending_terms == 0) {
            return schedule_restart(ctx, s, recent_restarts(s, rt_monotonic_ms(ctx->rt)));
        }
        return 0;
    }
    c->id = 0;
    int abnormal = x->reason != MB_EXIT_NORMAL && x->reason != MB_EXIT_SHUTDOWN;
    c->last_error = abnormal ? (x->code != 0 ? x->code : MB_ECRASH) : 0;
    snprintf(c->last_error_msg, sizeof(c->last_error_msg), "%s: %s", mb_exit_reason_name(x->reason),
             x->detail);
    int restart =
        c->restart == MB_RESTART_PERMANENT || (c->restart == MB_RESTART_TRANSIENT && abnormal);
    if (!restart) {
        c->st = CH_DONE;
        return 0;
    }
    unsigned recent;
    if (note_restart(s, rt_monotonic_ms(ctx->rt), &recent)) {
        c->st = CH_DONE;
        char buf[96];
        snprintf(buf, sizeof(buf), "restart intensity reached: %u restarts in %llu ms", recent,
                 (unsigned long long)s->period_ms);
        rt_event(ctx->rt, MB_AEV_ESCALATED, mb_self(ctx), &mb_kind_supervisor, MB_EXIT_CRASH,
                 MB_ECRASH, buf);
        rt_crash(ctx, MB_ECRASH, "%s", buf);
        return 0;
    }
    c->st = CH_WAITING;
    if (s->strategy != ONE_FOR_ONE) {
        size_t from = s->strategy == ONE_FOR_ALL ? 0 : idx + 1;
        for (size_t i = from; i < s->n; i++) {
            struct child *o = &s->ch[i];
            if (o->st != CH_RUNNING)
                continue;
            if (mb_exit_agent(ctx, o->id, MB_EXIT_SHUTDOWN) == 0) {
                o->st = CH_TERMINATING;
                s->pending_terms++;
            } else {
                o->st = CH_WAITING; /* already gone: its exit is on the way */
                o->id = 0;
            }
        }
    }
    return schedule_restart(ctx, s, recent);
}

static int sup_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct sup *s = state;
    if (msg->type == MB_MSG_EXIT && msg->len == sizeof(mb_exit_info))
        return on_child_exit(ctx, s, msg->data);
    if (msg->type == MB_MSG_TIMER && msg->tag == SUP_TAG_RESTART) {
        s->timer_armed = 0;
        if (s->pending_terms > 0)
            return 0;
        return restart_waiting(ctx, s);
    }
    return 0;
}

static void sup_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)reason;
    struct sup *s = state;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->ch[i].st == CH_RUNNING)
            mb_exit_agent(ctx, s->ch[i].id, MB_EXIT_SHUTDOWN);
    sup_free(s);
}

static void sup_destroy(void *state)
{
    sup_free(state);
}

const mb_agent_kind mb_kind_supervisor = {
    .abi = MB_AGENT_ABI,
    .name = "supervisor",
    .version = 1,
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
    .destroy = sup_destroy,
};

/* ---- adding a child through the management API ---- */

struct add_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int started;
    int done;
    int rc;
    mb_agent_id id;
    mb_error err;
    mb_spawn_opts opts; /* borrowed from the waiting caller while refs == 2 */
};

static void add_call_release(struct add_call *c)
{
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left == 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
}

static void add_call_finish(struct add_call *c, int rc, mb_agent_id id)
{
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    c->rc = rc;
    c->id = id;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    add_call_release(c);
}

static void add_call_fn(mb_ctx *ctx, void *state, void *arg)
{
    struct add_call *c = arg;
    pthread_mutex_lock(&c->mu);
    int abandoned = c->refs < 2; /* caller timed out: its opts are gone */
    c->started = 1;              /* from here the caller waits for the end */
    pthread_mutex_unlock(&c->mu);
    if (abandoned) {
        add_call_release(c);
        return;
    }
    if (atomic_load(&ctx->a->kind) != &mb_kind_supervisor) {
        mb_errorf(&c->err, MB_EINVAL, "agent %llx is not a supervisor",
                  (unsigned long long)mb_self(ctx));
        add_call_finish(c, MB_EINVAL, 0);
        return;
    }
    struct sup *s = state;
    mb_spawn_opts o = c->opts;
    int rc = sup_add_spec(s, &o);
    if (rc != 0) {
        mb_errorf(&c->err, rc, "add child: %s", mb_strerror(rc));
        add_call_finish(c, rc, 0);
        return;
    }
    struct child *ch = &s->ch[s->n - 1];
    rc = child_start(ctx, ch, &c->err);
    if (rc != 0) {
        child_free(ch);
        s->n--;
        add_call_finish(c, rc, 0);
        return;
    }
    add_call_finish(c, 0, ch->id);
}

static void add_call_cancel(void *arg)
{
    struct add_call *c = arg;
    mb_errorf(&c->err, MB_ENOAGENT, "supervisor ended before adding the child");
    add_call_finish(c, MB_ENOAGENT, 0);
}

int rt_supervisor_add_child(struct mb_runtime *rt, mb_agent_id sup, const mb_spawn_opts *opts,
                            mb_agent_id *out, mb_error *err)
{
    if (opts->kind == NULL)
        return mb_errorf(err, MB_EINVAL, "spawn: no kind given");
    if (rt_on_worker(rt)) /* it would wait for a turn this worker must run */
        return mb_errorf(err, MB_ESTATE,
                         "spawn with a supervisor: not from an agent callback (send the "
                         "supervisor a message instead)");
    if (opts->restart < MB_RESTART_PERMANENT || opts->restart > MB_RESTART_TEMPORARY)
        return mb_errorf(err, MB_EINVAL, "spawn: bad restart type %d", opts->restart);
    struct add_call *c = calloc(1, sizeof(*c));
    struct rt_call *call = calloc(1, sizeof(*call));
    if (c == NULL || call == NULL) {
        free(c);
        free(call);
        return mb_errorf(err, MB_ENOMEM, "spawn: out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    mb_cond_init_monotonic(&c->cv); /* the 5 s wait below must not follow wall-clock steps */
    c->refs = 2;
    c->opts = *opts;
    c->opts.supervisor = 0;
    call->fn = add_call_fn;
    call->cancel = add_call_cancel;
    call->arg = c;
    int rc = rt_call_agent(rt, sup, call);
    if (rc != 0) {
        free(call);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
        return mb_errorf(err, rc, "spawn: supervisor %llx: %s", (unsigned long long)sup,
                         mb_strerror(rc));
    }
    struct timespec ts = mb_deadline_in_ms(5000);
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        if (c->started)
            pthread_cond_wait(&c->cv, &c->mu);
        else if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0 && !c->done && !c->started)
            break;
    }
    int done = c->done;
    rc = c->rc;
    mb_agent_id id = c->id;
    mb_error e = c->err;
    /* Drop our reference while holding the lock so a late add_call_fn
     * sees the abandonment. */
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left == 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
    if (!done)
        return mb_errorf(err, MB_ETIMEDOUT, "spawn: supervisor %llx did not answer in 5 s",
                         (unsigned long long)sup);
    if (rc != 0) {
        if (err != NULL)
            *err = e;
        return rc;
    }
    if (out != NULL)
        *out = id;
    return 0;
}
