/* A small kind built into shared objects for the hot-swap tests. Compiled
 * three times: SWAPPY_VERSION 1 and 2 (2 upgrades from 1 keeping the
 * count), and 3 whose upgrade always fails (rollback test). Tag 1
 * increments, tag 2 replies (version << 32 | count) to the sender. With
 * SWAPPY_NO_SYMBOL the export symbol is missing. */
#include <stdlib.h>
#include <string.h>

#include <mabeam/agent.h>

#ifndef SWAPPY_VERSION
#error define SWAPPY_VERSION
#endif

struct swappy {
    int64_t count;
};

static int swappy_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    (void)config;
    struct swappy *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MB_ENOMEM;
    *state = s;
    return 0;
}

static int swappy_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct swappy *s = state;
    if (msg->type != MB_MSG_USER)
        return 0;
    if (msg->tag == 1)
        s->count++;
    if (msg->tag == 2) {
        int64_t v = ((int64_t)SWAPPY_VERSION << 32) | s->count;
        mb_send(ctx, msg->from, 2, &v, sizeof(v));
    }
    return 0;
}

static int swappy_upgrade(mb_ctx *ctx, uint32_t old_version, void *old_state, void **new_state)
{
    (void)ctx;
    (void)old_version;
    if (SWAPPY_VERSION == 3)
        return MB_ENOTSUP;  /* leaves old_state untouched: rollback */
    *new_state = old_state; /* same layout: keep it */
    return 0;
}

static void swappy_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    free(state);
}

static const mb_agent_kind swappy_kind = {
    .abi = MB_AGENT_ABI,
    .name = "swappy",
    .version = SWAPPY_VERSION,
    .init = swappy_init,
    .handle = swappy_handle,
    .upgrade = swappy_upgrade,
    .terminate = swappy_terminate,
};

#ifndef SWAPPY_NO_SYMBOL
const mb_agent_kind *mb_agent_kind_v1(void)
{
    return &swappy_kind;
}
#else
const mb_agent_kind *not_the_symbol(void)
{
    return &swappy_kind;
}
#endif
