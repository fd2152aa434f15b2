/* Kind "fanout" for the watch fan-out benchmark (scripts/bench.d/
 * cluster_agents.py): loaded into every node with POST /v1/kinds.
 *
 * Config: the name of a float variable whose values are wall-clock
 * timestamps in microseconds (CLOCK_REALTIME, shared by the processes of
 * one machine) taken just before the HTTP request that set them. init
 * watches it from its current version; each change records now - value
 * (µs) in memory. A user message with tag 1 takes a checkpoint whose blob
 * is the recorded latencies as little-endian int64 microseconds, one per
 * change seen, in order (read back with GET /v1/agents/{id}/checkpoint).
 * Nothing else: idle agents cost nothing but their memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mabeam/agent.h>

#define MAX_SAMPLES 4096

typedef struct fanout {
    char var[129];
    uint32_t n;
    int64_t lat_us[MAX_SAMPLES];
} fanout;

const mb_agent_kind *mb_agent_kind_v1(void);

static int64_t realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int fo_init(mb_ctx *ctx, const char *config, void **state)
{
    if (config == NULL || config[0] == '\0' || strlen(config) > 128)
        return MB_EINVAL;
    fanout *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return MB_ENOMEM;
    strcpy(f->var, config);
    mb_value v;
    uint64_t version = 0;
    int rc = mb_var_get(ctx, f->var, &v, &version);
    if (rc == MB_OK)
        mb_value_free(&v);
    if (rc == MB_OK)
        rc = mb_var_watch(ctx, f->var, version);
    if (rc != MB_OK) {
        free(f);
        return rc;
    }
    *state = f;
    return MB_OK;
}

static int fo_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)state;
    if (msg->type == MB_MSG_USER && msg->tag == 1)
        return mb_request_checkpoint(ctx);
    return MB_OK;
}

static int fo_var_changed(mb_ctx *ctx, void *state, const char *name, const mb_value *value,
                          uint64_t version)
{
    (void)ctx;
    (void)name;
    (void)version;
    fanout *f = state;
    int64_t now = realtime_us();
    if (value->type == MB_VT_FLOAT && f->n < MAX_SAMPLES)
        f->lat_us[f->n++] = now - (int64_t)value->u.f;
    return MB_OK;
}

static int fo_checkpoint(mb_ctx *ctx, void *state, void **blob, size_t *len)
{
    (void)ctx;
    fanout *f = state;
    size_t bytes = (size_t)f->n * sizeof(int64_t);
    void *b = malloc(bytes > 0 ? bytes : 1);
    if (b == NULL)
        return MB_ENOMEM;
    memcpy(b, f->lat_us, bytes);
    *blob = b;
    *len = bytes;
    return MB_OK;
}

static void fo_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    free(state);
}

static const mb_agent_kind fanout_kind = {
    .abi = MB_AGENT_ABI,
    .name = "fanout",
    .version = 1,
    .init = fo_init,
    .handle = fo_handle,
    .var_changed = fo_var_changed,
    .checkpoint = fo_checkpoint,
    .terminate = fo_terminate,
};

const mb_agent_kind *mb_agent_kind_v1(void)
{
    return &fanout_kind;
}
