/* Built-in agent kinds: echo, counter (checkpointed) and crasher (crashes on
 * command). Their message tags are in <mabeam/agent_runtime.h>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agents/internal.h"

/* ---- echo ---- */

static int echo_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)state;
    if (msg->type != MB_MSG_USER || msg->from == 0)
        return 0;
    int rc = mb_send(ctx, msg->from, msg->tag, msg->data, msg->len);
    /* A sender that is gone or full is not echo's failure. */
    return rc == MB_ENOAGENT || rc == MB_EFULL ? 0 : rc;
}

const mb_agent_kind mb_kind_echo = {
    .abi = MB_AGENT_ABI,
    .name = "echo",
    .version = 1,
    .handle = echo_handle,
};

/* ---- counter ---- */

struct counter {
    int64_t value;
};

static int counter_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    int64_t v = 0;
    if (config != NULL && config[0] != '\0') {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(config, &end, 10);
        if (errno != 0 || end == config || *end != '\0')
            return MB_EINVAL;
        v = x;
    }
    struct counter *c = malloc(sizeof(*c));
    if (c == NULL)
        return MB_ENOMEM;
    c->value = v;
    *state = c;
    return 0;
}

static int counter_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct counter *c = state;
    if (msg->type != MB_MSG_USER)
        return 0;
    if (msg->tag == MB_TAG_COUNTER_ADD) {
        int64_t d = 1;
        if (msg->len == sizeof(d))
            memcpy(&d, msg->data, sizeof(d));
        else if (msg->len != 0)
            return MB_EINVAL;
        c->value += d;
        return mb_request_checkpoint(ctx);
    }
    if (msg->tag == MB_TAG_COUNTER_GET && msg->from != 0) {
        int rc = mb_send(ctx, msg->from, MB_TAG_COUNTER_GET, &c->value, sizeof(c->value));
        return rc == MB_ENOAGENT || rc == MB_EFULL ? 0 : rc;
    }
    return 0;
}

static int counter_checkpoint(mb_ctx *ctx, void *state, void **blob, size_t *len)
{
    (void)ctx;
    struct counter *c = state;
    int64_t *b = malloc(sizeof(*b));
    if (b == NULL)
        return MB_ENOMEM;
    *b = c->value;
    *blob = b;
    *len = sizeof(*b);
    return 0;
}

static int counter_restore(mb_ctx *ctx, const char *config, const void *blob, size_t len,
                           void **state)
{
    (void)ctx;
    (void)config;
    if (len != sizeof(int64_t))
        return MB_ECORRUPT;
    struct counter *c = malloc(sizeof(*c));
    if (c == NULL)
        return MB_ENOMEM;
    memcpy(&c->value, blob, sizeof(c->value));
    *state = c;
    return 0;
}

static void counter_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    free(state);
}

const mb_agent_kind mb_kind_counter = {
    .abi = MB_AGENT_ABI,
    .name = "counter",
    .version = 1,
    .init = counter_init,
    .handle = counter_handle,
    .checkpoint = counter_checkpoint,
    .restore = counter_restore,
    .terminate = counter_terminate,
};

/* ---- crasher ---- */

static int crasher_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    *state = NULL;
    if (config != NULL && strcmp(config, "fail_init") == 0)
        return MB_EINVAL;
    return 0;
}

static int crasher_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    if (msg->type == MB_MSG_USER && msg->tag == MB_TAG_CRASHER_CRASH)
        return MB_ECRASH;
    return echo_handle(ctx, state, msg);
}

const mb_agent_kind mb_kind_crasher = {
    .abi = MB_AGENT_ABI,
    .name = "crasher",
    .version = 1,
    .init = crasher_init,
    .handle = crasher_handle,
};
