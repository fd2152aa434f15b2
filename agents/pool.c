/* The built-in "pool" kind: a named pool of identical worker agents with a
 * minimum and maximum size. Every user message sent to the pool goes to the
 * worker with the shortest mailbox (the original sender is kept, so replies
 * go straight back). The pool grows by one worker when the backlog per
 * worker passes `backlog`, and shrinks by one when a worker has had an empty
 * mailbox for `idle_ms` (checked every `check_ms`). Sizes go to telemetry
 * ("pool_size", label = pool id) and decisions to the event log
 * (MB_AEV_POOL_RESIZED). Config format: docs/agents.md ("Pools"). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/internal.h"

#define POOL_TAG_CHECK 0x504f4f4cu /* "POOL" timer */

struct pworker {
    mb_agent_id id;
    uint64_t idle_since_ms; /* 0 = had work at the last check */
};

struct pool {
    char *kind, *config;
    unsigned min, max, backlog;
    uint64_t idle_ms, check_ms;
    struct pworker *w;
    size_t n;
    char label[32];
};

static void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    free(p->kind);
    free(p->config);
    free(p->w);
    free(p);
}

static void pool_report(mb_ctx *ctx, struct pool *p, const char *what, size_t from, size_t to)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s %zu->%zu", what, from, to);
    rt_event(ctx->rt, MB_AEV_POOL_RESIZED, mb_self(ctx), &mb_kind_pool, 0, 0, buf);
    rt_telemetry(ctx->rt, "pool_size", p->label, (double)to);
}

static int pool_grow(mb_ctx *ctx, struct pool *p, const char *why)
{
    mb_spawn_opts o = { .kind = p->kind, .config = p->config, .link = 1 };
    mb_agent_id id;
    mb_error err;
    int rc = rt_spawn(ctx->rt, ctx->a, &o, NULL, &id, &err);
    if (rc != 0) {
        mb_log(ctx, MB_LOG_WARN, "pool: %s", err.msg);
        return rc;
    }
    p->w[p->n].id = id;
    p->w[p->n].idle_since_ms = 0;
    p->n++;
    pool_report(ctx, p, why, p->n - 1, p->n);
    return 0;
}

static int pool_init(mb_ctx *ctx, const char *config, void **state)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return MB_ENOMEM;
    p->min = 1;
    p->max = 4;
    p->backlog = 16;
    p->idle_ms = 1000;
    p->check_ms = 100;
    int rc = MB_EINVAL;
    cJSON *root = cJSON_Parse(config ? config : "");
    if (root == NULL || !cJSON_IsObject(root))
        goto fail;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (!cJSON_IsString(k) || (c != NULL && !cJSON_IsString(c)))
        goto fail;
    struct {
        const char *name;
        double lo, hi;
        double v;
    } nums[] = { { "min", 0, 100000, p->min },
                 { "max", 1, 100000, p->max },
                 { "backlog", 1, 1e9, p->backlog },
                 { "idle_ms", 1, 1e12, (double)p->idle_ms },
                 { "check_ms", 1, 1e9, (double)p->check_ms } };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, nums[i].name);
        if (v == NULL)
            continue;
        if (!cJSON_IsNumber(v) || isnan(v->valuedouble) || v->valuedouble < nums[i].lo ||
            v->valuedouble > nums[i].hi)
            goto fail;
        nums[i].v = v->valuedouble;
    }
    p->min = (unsigned)nums[0].v;
    p->max = (unsigned)nums[1].v;
    p->backlog = (unsigned)nums[2].v;
    p->idle_ms = (uint64_t)nums[3].v;
    p->check_ms = (uint64_t)nums[4].v;
    if (p->min > p->max)
        goto fail;
    if (rt_kind_find(ctx->rt, k->valuestring) == NULL) {
        rc = MB_ENOTFOUND;
        goto fail;
    }
    rc = MB_ENOMEM;
    p->kind = strdup(k->valuestring);
    p->config = c ? strdup(c->valuestring) : NULL;
    p->w = calloc(p->max, sizeof(*p->w));
    if (p->kind == NULL || (c && p->config == NULL) || p->w == NULL)
        goto fail;
    cJSON_Delete(root);
    root = NULL;
    snprintf(p->label, sizeof(p->label), "%llx", (unsigned long long)mb_self(ctx));
    mb_trap_exits(ctx, 1);
    for (unsigned i = 0; i < p->min; i++) {
        rc = pool_grow(ctx, p, "start");
        if (rc != 0)
            goto fail;
    }
    rc = mb_send_every(ctx, p->check_ms, POOL_TAG_CHECK, NULL, 0, NULL);
    if (rc != 0)
        goto fail;
    *state = p;
    return 0;
fail:
    cJSON_Delete(root);
    if (p->w != NULL)
        for (size_t i = 0; i < p->n; i++)
            mb_exit_agent(ctx, p->w[i].id, MB_EXIT_SHUTDOWN);
    pool_free(p);
    return rc;
}

static int pool_forward(mb_ctx *ctx, struct pool *p, const mb_msg *msg)
{
    if (p->n == 0 && pool_grow(ctx, p, "grow") != 0)
        return 0; /* no worker: the message is dropped, logged by grow */
    size_t best = 0;
    long best_len = -1, total = 0;
    for (size_t i = 0; i < p->n; i++) {
        long l = rt_mailbox_len(ctx->rt, p->w[i].id);
        if (l < 0)
            continue;
        total += l;
        if (best_len < 0 || l < best_len) {
            best_len = l;
            best = i;
        }
    }
    struct rt_msg *m = rt_msg_new(msg->from, MB_MSG_USER, msg->tag, msg->data, msg->len);
    if (m == NULL)
        return MB_ENOMEM;
    if (rt_deliver(ctx->rt, p->w[best].id, m) != 0)
        rt_msg_free(m);
    if (p->n < p->max && (unsigned long)(total + 1) > (unsigned long)p->backlog * p->n)
        pool_grow(ctx, p, "grow");
    return 0;
}

static void pool_check(mb_ctx *ctx, struct pool *p)
{
    uint64_t now = rt_monotonic_ms(ctx->rt);
    for (size_t i = 0; i < p->n; i++) {
        long l = rt_mailbox_len(ctx->rt, p->w[i].id);
        if (l > 0)
            p->w[i].idle_since_ms = 0;
        else if (p->w[i].idle_since_ms == 0)
            p->w[i].idle_since_ms = now + 1;
    }
    if (p->n <= p->min)
        return;
    for (size_t i = p->n; i-- > 0;) {
        if (p->w[i].idle_since_ms != 0 && now + 1 - p->w[i].idle_since_ms >= p->idle_ms) {
            mb_exit_agent(ctx, p->w[i].id, MB_EXIT_SHUTDOWN);
            p->w[i] = p->w[p->n - 1];
            p->n--;
            pool_report(ctx, p, "shrink", p->n + 1, p->n);
            return; /* one at a time */
        }
    }
}

static int pool_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct pool *p = state;
    switch (msg->type) {
    case MB_MSG_USER:
        return pool_forward(ctx, p, msg);
    case MB_MSG_TIMER:
        if (msg->tag == POOL_TAG_CHECK)
            pool_check(ctx, p);
        return 0;
    case MB_MSG_EXIT: {
        const mb_exit_info *x = msg->data;
        for (size_t i = 0; i < p->n; i++) {
            if (p->w[i].id == x->id) {
                p->w[i] = p->w[p->n - 1];
                p->n--;
                pool_report(ctx, p, "lost", p->n + 1, p->n);
                if (p->n < p->min)
                    pool_grow(ctx, p, "replace");
                break;
            }
        }
        return 0;
    }
    default:
        return 0;
    }
}

static void pool_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)reason;
    struct pool *p = state;
    for (size_t i = 0; p != NULL && i < p->n; i++)
        mb_exit_agent(ctx, p->w[i].id, MB_EXIT_SHUTDOWN);
    pool_free(p);
}

static void pool_destroy(void *state)
{
    pool_free(state);
}

const mb_agent_kind mb_kind_pool = {
    .abi = MB_AGENT_ABI,
    .name = "pool",
    .version = 1,
    .init = pool_init,
    .handle = pool_handle,
    .terminate = pool_terminate,
    .destroy = pool_destroy,
};
