/* Kind "itwatch" for the cluster integration tests (loaded with POST
 * /v1/kinds): the agents' side of the cluster seen from an agent.
 *
 * Config: the name of an int variable, or (placed as a cluster agent,
 * whose config is JSON) {"var":"NAME"}; init watches it from version 0.
 * Everything the agent observes is appended to a text log that is its
 * checkpoint (read back with GET /v1/agents/{id}/checkpoint), one line each:
 *   c VERSION VALUE     var_changed (VALUE "?" when not an int)
 *   s RC                the return code of mb_var_set (command tag 100)
 *   S RC                the return code of mb_send (command tag 101)
 *   m FROMHEX TEXT      a message with tag 102 (sent by another itwatch)
 *   g RC VERSION VALUE  mb_var_get (command tag 103)
 *   p RC NUM            mb_propose and the number it gave (command tag 104)
 *   P TAG JSON          a proposal notice from the node (mabeam/proposal.h)
 *   N RC                mb_send_name to a cluster agent (command tag 105)
 * Commands (user messages): 100 "N" sets the variable to N; 101 "HEX TEXT"
 * sends TEXT with tag 102 to agent HEX; 103 reads the variable; 104
 * "VAR N" proposes the int N for variable VAR (mb_propose); 105 "NAME
 * TEXT" sends TEXT with tag 102 to cluster agent NAME (mb_send_name). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mabeam/agent.h>
#include <mabeam/proposal.h>

#define LOG_MAX (1u << 20)

typedef struct itw {
    char var[129];
    char *log;
    size_t len;
} itw;

static int logf_(itw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int logf_(itw *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) || w->len + (size_t)n + 1 > LOG_MAX)
        return MB_ETOOBIG;
    char *nl = realloc(w->log, w->len + (size_t)n + 1);
    if (nl == NULL)
        return MB_ENOMEM;
    memcpy(nl + w->len, line, (size_t)n + 1);
    w->log = nl;
    w->len += (size_t)n;
    return MB_OK;
}

static int itw_init(mb_ctx *ctx, const char *config, void **state)
{
    if (config == NULL || config[0] == '\0' || strlen(config) > 128)
        return MB_EINVAL;
    itw *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return MB_ENOMEM;
    snprintf(w->var, sizeof(w->var), "%s", config);
    const char *json = strstr(config, "\"var\":\"");
    if (config[0] == '{' && json != NULL) { /* {"var":"NAME"} */
        json += 7;
        size_t n = strcspn(json, "\"");
        snprintf(w->var, sizeof(w->var), "%.*s", (int)n, json);
    }
    int rc = mb_var_watch(ctx, w->var, 0);
    if (rc != MB_OK) {
        free(w);
        return rc;
    }
    *state = w;
    return MB_OK;
}

static int itw_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    itw *w = state;
    char text[256];
    if (msg->type != MB_MSG_USER)
        return MB_OK;
    size_t n = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
    memcpy(text, msg->data, n);
    text[n] = '\0';
    int rc = MB_OK;
    if (msg->tag == 100) {
        mb_value v = { .type = MB_VT_INT };
        v.u.i = strtoll(text, NULL, 10);
        rc = logf_(w, "s %d\n", mb_var_set(ctx, w->var, &v));
    } else if (msg->tag == 101) {
        char *sp = strchr(text, ' ');
        const char *body = sp != NULL ? sp + 1 : "";
        if (sp != NULL)
            *sp = '\0';
        mb_agent_id to = strtoull(text, NULL, 16);
        rc = logf_(w, "S %d\n", mb_send(ctx, to, 102, body, strlen(body)));
    } else if (msg->tag == 102) {
        rc = logf_(w, "m %016" PRIx64 " %s\n", (uint64_t)msg->from, text);
    } else if (msg->tag == 105) {
        char *sp = strchr(text, ' ');
        const char *body = sp != NULL ? sp + 1 : "";
        if (sp != NULL)
            *sp = '\0';
        rc = logf_(w, "N %d\n", mb_send_name(ctx, "cluster", text, 102, body, strlen(body)));
    } else if (msg->tag == 104) {
        char *sp = strchr(text, ' ');
        mb_value v = { .type = MB_VT_INT };
        v.u.i = sp != NULL ? strtoll(sp + 1, NULL, 10) : 0;
        if (sp != NULL)
            *sp = '\0';
        uint64_t num = 0;
        int p = mb_propose(ctx, text, &v, &num);
        rc = logf_(w, "p %d %" PRIu64 "\n", p, num);
    } else if (msg->from == MB_AGENT_NONE &&
               (msg->tag == MB_TAG_PROPOSAL_OPENED || msg->tag == MB_TAG_PROPOSAL_REFUSED ||
                msg->tag == MB_TAG_PROPOSAL_DECIDED)) {
        rc = logf_(w, "P %x %s\n", (unsigned)msg->tag, text);
    } else if (msg->tag == 103) {
        mb_value v;
        uint64_t version = 0;
        int g = mb_var_get(ctx, w->var, &v, &version);
        if (g == MB_OK) {
            rc = logf_(w, "g 0 %" PRIu64 " %" PRId64 "\n", version,
                       v.type == MB_VT_INT ? v.u.i : (int64_t)-1);
            mb_value_free(&v);
        } else {
            rc = logf_(w, "g %d 0 0\n", g);
        }
    } else {
        return MB_OK;
    }
    return rc != MB_OK ? rc : mb_request_checkpoint(ctx);
}

static int itw_var_changed(mb_ctx *ctx, void *state, const char *name, const mb_value *value,
                           uint64_t version)
{
    itw *w = state;
    if (strcmp(name, w->var) != 0)
        return MB_EINVAL;
    int rc = value->type == MB_VT_INT ? logf_(w, "c %" PRIu64 " %" PRId64 "\n", version, value->u.i)
                                      : logf_(w, "c %" PRIu64 " ?\n", version);
    return rc != MB_OK ? rc : mb_request_checkpoint(ctx);
}

static int itw_checkpoint(mb_ctx *ctx, void *state, void **blob, size_t *len)
{
    (void)ctx;
    itw *w = state;
    char *b = malloc(w->len + 1);
    if (b == NULL)
        return MB_ENOMEM;
    memcpy(b, w->log != NULL ? w->log : "", w->len);
    *blob = b;
    *len = w->len;
    return MB_OK;
}

static void itw_destroy(void *state)
{
    itw *w = state;
    free(w->log);
    free(w);
}

static void itw_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    itw_destroy(state);
}

const mb_agent_kind *mb_agent_kind_v1(void);

static const mb_agent_kind itwatch = {
    .abi = MB_AGENT_ABI,
    .name = "itwatch",
    .version = 1,
    .init = itw_init,
    .handle = itw_handle,
    .var_changed = itw_var_changed,
    .checkpoint = itw_checkpoint,
    .terminate = itw_terminate,
    .destroy = itw_destroy,
};

const mb_agent_kind *mb_agent_kind_v1(void)
{
    return &itwatch;
}
