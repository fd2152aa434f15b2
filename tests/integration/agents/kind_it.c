/* A kind library for the integration tests, built twice (IT_KIND_VERSION 1
 * and 2) to exercise `mabeam kind load` and hot swap: kind "itcount" adds 1
 * (version 1) or 100 (version 2) to an int64 per user message and
 * checkpoints after each; state moves across versions through checkpoint +
 * restore. Tag 7 instead stores -(the code mb_var_get returns) for
 * variable "it.x", which the test never defines (MB_ENOTFOUND). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mabeam/agent.h>

#ifndef IT_KIND_VERSION
#error "IT_KIND_VERSION must be defined"
#endif

static int it_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    (void)config;
    int64_t *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return MB_ENOMEM;
    *state = v;
    return MB_OK;
}

static int it_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    if (msg->type != MB_MSG_USER)
        return MB_OK;
    if (msg->tag == 7) {
        mb_value v;
        uint64_t version;
        int rc = mb_var_get(ctx, "it.x", &v, &version);
        if (rc == MB_OK)
            mb_value_free(&v);
        *(int64_t *)state = -(int64_t)rc;
        return mb_request_checkpoint(ctx);
    }
    *(int64_t *)state += IT_KIND_VERSION == 1 ? 1 : 100;
    return mb_request_checkpoint(ctx);
}

static int it_checkpoint(mb_ctx *ctx, void *state, void **blob, size_t *len)
{
    (void)ctx;
    void *b = malloc(sizeof(int64_t));
    if (b == NULL)
        return MB_ENOMEM;
    memcpy(b, state, sizeof(int64_t));
    *blob = b;
    *len = sizeof(int64_t);
    return MB_OK;
}

static int it_restore(mb_ctx *ctx, const char *config, const void *blob, size_t len, void **state)
{
    (void)ctx;
    (void)config;
    if (len != sizeof(int64_t))
        return MB_EINVAL;
    int64_t *v = malloc(sizeof(*v));
    if (v == NULL)
        return MB_ENOMEM;
    memcpy(v, blob, sizeof(*v));
    *state = v;
    return MB_OK;
}

static const mb_agent_kind it_kind = {
    .abi = MB_AGENT_ABI,
    .name = "itcount",
    .version = IT_KIND_VERSION,
    .init = it_init,
    .handle = it_handle,
    .checkpoint = it_checkpoint,
    .restore = it_restore,
};

const mb_agent_kind *mb_agent_kind_v1(void);
const mb_agent_kind *mb_agent_kind_v1(void)
{
    return &it_kind;
}
