/* Built-in agent kinds: echo, counter (checkpointed), crasher (crashes on
 * command), voter (answers proposals by a rule from its config), and the
 * studies' optimiser and evaluator (placed cluster agents). Their message
 * tags are in <mabeam/agent_runtime.h>. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

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

/* ---- voter (proposals piece) ----
 * Config (JSON, every key optional): {"vote": "yes"|"no"|"range",
 * "min": x, "max": y, "accept": ["a", ...], "delay_ms": n}. "range" (the
 * default when min, max or accept is given, else "yes") votes yes when a
 * numeric value (float, int, probability, bool) lies in [min, max], or a
 * choice is among "accept". With delay_ms > 0 it answers after that long
 * (a timer), else at once. */

#define VOTER_TAG_ANSWER 0x766f7465u /* timer: a delayed answer */

struct voter {
    int mode; /* 0 yes, 1 no, 2 range */
    double min, max;
    char **accept;
    size_t n_accept;
    uint64_t delay_ms;
};

struct voter_answer {
    uint64_t proposal;
    int yes;
};

static void voter_free(void *state)
{
    struct voter *v = state;
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_accept; i++)
        free(v->accept[i]);
    free(v->accept);
    free(v);
}

static int voter_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    struct voter *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return MB_ENOMEM;
    v->min = -INFINITY;
    v->max = INFINITY;
    cJSON *j = config != NULL && config[0] != '\0' ? cJSON_Parse(config) : NULL;
    int rc = MB_OK;
    if (config != NULL && config[0] != '\0' && !cJSON_IsObject(j))
        rc = MB_EINVAL;
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "vote");
    const cJSON *min = cJSON_GetObjectItemCaseSensitive(j, "min");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(j, "max");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(j, "accept");
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(j, "delay_ms");
    v->mode = min != NULL || max != NULL || acc != NULL ? 2 : 0;
    if (rc == MB_OK && mode != NULL) {
        if (cJSON_IsString(mode) && strcmp(mode->valuestring, "yes") == 0)
            v->mode = 0;
        else if (cJSON_IsString(mode) && strcmp(mode->valuestring, "no") == 0)
            v->mode = 1;
        else if (cJSON_IsString(mode) && strcmp(mode->valuestring, "range") == 0)
            v->mode = 2;
        else
            rc = MB_EINVAL;
    }
    if (rc == MB_OK &&
        ((min != NULL && !cJSON_IsNumber(min)) || (max != NULL && !cJSON_IsNumber(max)) ||
         (acc != NULL && !cJSON_IsArray(acc)) ||
         (delay != NULL &&
          (!cJSON_IsNumber(delay) || delay->valuedouble < 0 || delay->valuedouble > 3600e3))))
        rc = MB_EINVAL;
    if (rc == MB_OK) {
        if (min != NULL)
            v->min = min->valuedouble;
        if (max != NULL)
            v->max = max->valuedouble;
        if (delay != NULL)
            v->delay_ms = (uint64_t)delay->valuedouble;
        int na = acc != NULL ? cJSON_GetArraySize(acc) : 0;
        if (na > 0 && (v->accept = calloc((size_t)na, sizeof(char *))) == NULL)
            rc = MB_ENOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, acc)
        {
            if (rc != MB_OK)
                break;
            if (!cJSON_IsString(it))
                rc = MB_EINVAL;
            else if ((v->accept[v->n_accept] = strdup(it->valuestring)) == NULL)
                rc = MB_ENOMEM;
            else
                v->n_accept++;
        }
    }
    cJSON_Delete(j);
    if (rc != MB_OK) {
        voter_free(v);
        return rc;
    }
    *state = v;
    return MB_OK;
}

static int voter_decide(const struct voter *v, const mb_value *val)
{
    if (v->mode != 2)
        return v->mode == 0;
    double x;
    switch (val->type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        x = val->u.f;
        break;
    case MB_VT_INT:
        x = (double)val->u.i;
        break;
    case MB_VT_BOOL:
        x = val->u.b ? 1.0 : 0.0;
        break;
    case MB_VT_CHOICE:
        for (size_t i = 0; i < v->n_accept; i++)
            if (val->u.choice != NULL && strcmp(v->accept[i], val->u.choice) == 0)
                return 1;
        return 0;
    default:
        return 0; /* vectors and tensors: no rule for them */
    }
    return x >= v->min && x <= v->max;
}

static int voter_vote(mb_ctx *ctx, void *state, const mb_proposal *p)
{
    struct voter *v = state;
    int yes = voter_decide(v, p->value);
    if (v->delay_ms > 0) {
        struct voter_answer a = { p->id, yes };
        return mb_send_after(ctx, v->delay_ms, VOTER_TAG_ANSWER, &a, sizeof(a), NULL);
    }
    int rc = mb_vote(ctx, p->id, yes);
    /* Decided meanwhile, or not asked through this node: not a crash. */
    return rc == MB_ENOTFOUND || rc == MB_EPERM || rc == MB_EEXIST || rc == MB_EUNAVAIL ? 0 : rc;
}

static int voter_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    if (msg->type == MB_MSG_TIMER && msg->tag == VOTER_TAG_ANSWER &&
        msg->len == sizeof(struct voter_answer)) {
        struct voter_answer a;
        memcpy(&a, msg->data, sizeof(a));
        int rc = mb_vote(ctx, a.proposal, a.yes);
        return rc == MB_ENOTFOUND || rc == MB_EPERM || rc == MB_EEXIST || rc == MB_EUNAVAIL ? 0
                                                                                            : rc;
    }
    return echo_handle(ctx, state, msg);
}

static void voter_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    voter_free(state);
}

const mb_agent_kind mb_kind_voter = {
    .abi = MB_AGENT_ABI,
    .name = "voter",
    .version = 1,
    .init = voter_init,
    .handle = voter_handle,
    .vote = voter_vote,
    .terminate = voter_terminate,
    .destroy = voter_free,
};

/* ---- optimiser and evaluator (studies: docs/studies.md "Who runs what") ----
 * The identity, lifecycle and supervision unit of a study's optimiser and
 * of an evaluator slot, as placed cluster agents. The work itself is done
 * by the studies driver of the node that runs the agent (node/studies.c):
 * the optimiser's suggestion duty on the control loop (its state is the
 * replicated trials, rebuilt on any host, so the agent keeps no
 * checkpoint), the evaluation on a helper thread of that node.
 * Config: optimiser {"study": ID}; evaluator {"home": NODE, "slot": N}.
 * A user message is answered with the config (who am I). */

struct study_role {
    char *config; /* the validated config, answered on request */
};

static void study_role_free(void *state)
{
    struct study_role *r = state;
    if (r != NULL)
        free(r->config);
    free(r);
}

static int study_role_init(const char *config, int optimiser, void **state)
{
    if (config == NULL || config[0] == '\0')
        return MB_EINVAL;
    cJSON *j = cJSON_Parse(config);
    int ok = cJSON_IsObject(j);
    if (ok && optimiser) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "study");
        ok = cJSON_IsString(s) && s->valuestring[0] != '\0';
    } else if (ok) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "home");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "slot");
        ok = cJSON_IsNumber(h) && h->valuedouble >= 1 && h->valuedouble <= 65535 &&
             cJSON_IsNumber(n) && n->valuedouble >= 1 && n->valuedouble <= 256;
    }
    cJSON_Delete(j);
    if (!ok)
        return MB_EINVAL;
    struct study_role *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->config = strdup(config)) == NULL) {
        free(r);
        return MB_ENOMEM;
    }
    *state = r;
    return 0;
}

static int optimiser_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    return study_role_init(config, 1, state);
}

static int evaluator_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    return study_role_init(config, 0, state);
}

static int study_role_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct study_role *r = state;
    if (msg->type != MB_MSG_USER || msg->from == 0)
        return 0;
    int rc = mb_send(ctx, msg->from, msg->tag, r->config, strlen(r->config));
    return rc == MB_ENOAGENT || rc == MB_EFULL ? 0 : rc;
}

static void study_role_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    study_role_free(state);
}

const mb_agent_kind mb_kind_optimiser = {
    .abi = MB_AGENT_ABI,
    .name = "optimiser",
    .version = 1,
    .init = optimiser_init,
    .handle = study_role_handle,
    .terminate = study_role_terminate,
    .destroy = study_role_free,
};

const mb_agent_kind mb_kind_evaluator = {
    .abi = MB_AGENT_ABI,
    .name = "evaluator",
    .version = 1,
    .init = evaluator_init,
    .handle = study_role_handle,
    .terminate = study_role_terminate,
    .destroy = study_role_free,
};
