/* node/api_mailbox.c: senders and reply mailboxes for messages sent
 * through the API (node/api_mailbox.h). The reply agents are agents of
 * the internal kind "api_reply": their handler (on a worker thread) queues
 * the first message they get and wakes the loop (uv_async), which answers
 * the parked HTTP call. */
#include "node/api_mailbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/port_proto.h" /* base64 */
#include "node/node.h"
#include "node/services.h"

struct api_reply_slot {
    struct api_reply_slot *next;
    uint64_t token;
    mb_agent_id agent;
    api_call *call; /* NULL until api_mailbox_wait parked one */
    mb_agent_id sent_to;
    uint32_t tag;
    size_t bytes;
};

/* A reply taken by a reply agent, waiting for the loop. */
typedef struct reply_msg {
    struct reply_msg *next;
    uint64_t token;
    mb_agent_id from;
    uint32_t tag;
    size_t len;
    unsigned char data[];
} reply_msg;

typedef struct api_mailbox {
    node *n;
    uv_async_t wake;
    mb_agent_id sender; /* the persistent "api" agent */
    uint64_t next_token;
    api_reply_slot *slots;
    pthread_mutex_t mu; /* guards queue */
    reply_msg *queue;
    _Atomic uint64_t dropped;
} api_mailbox;

/* The mailbox of this process: reply agents (worker threads) find it here.
 * mabeamd runs one node per process; set while the module is open. */
static _Atomic(api_mailbox *) g_mailbox;

/* ---- the reply agent kind ---- */

typedef struct reply_state {
    uint64_t token; /* 0 = the persistent "api" agent */
} reply_state;

static int reply_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    char *end;
    unsigned long long token = strtoull(config, &end, 10);
    if (atomic_load(&g_mailbox) == NULL || config[0] == '\0' || *end != '\0')
        return MB_EINVAL; /* internal kind: spawned by the node only */
    reply_state *s = malloc(sizeof(*s));
    if (s == NULL)
        return MB_ENOMEM;
    s->token = token;
    *state = s;
    return MB_OK;
}

static int reply_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    reply_state *s = state;
    api_mailbox *m = atomic_load(&g_mailbox);
    if (msg->type != MB_MSG_USER || m == NULL)
        return MB_OK;
    if (s->token == 0) {
        atomic_fetch_add(&m->dropped, 1);
        return MB_OK;
    }
    reply_msg *r = malloc(sizeof(*r) + msg->len);
    if (r != NULL) {
        r->token = s->token;
        r->from = msg->from;
        r->tag = msg->tag;
        r->len = msg->len;
        if (msg->len > 0)
            memcpy(r->data, msg->data, msg->len);
        pthread_mutex_lock(&m->mu);
        r->next = m->queue;
        m->queue = r;
        pthread_mutex_unlock(&m->mu);
        uv_async_send(&m->wake);
    }
    s->token = 0; /* one reply per request; the slot's owner stops us */
    mb_stop_self(ctx);
    return MB_OK;
}

static void reply_terminate(mb_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)reason;
    free(state);
}

static const mb_agent_kind reply_kind = {
    .abi = MB_AGENT_ABI,
    .name = API_REPLY_KIND,
    .version = 1,
    .init = reply_init,
    .handle = reply_handle,
    .terminate = reply_terminate,
};

/* ---- loop side ---- */

static void hex_id(mb_agent_id id, char *buf, size_t size)
{
    snprintf(buf, size, "%016llx", (unsigned long long)id);
}

static api_reply_slot *slot_take(api_mailbox *m, uint64_t token)
{
    for (api_reply_slot **pp = &m->slots; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->token == token) {
            api_reply_slot *s = *pp;
            *pp = s->next;
            return s;
        }
    }
    return NULL;
}

static cJSON *request_json(const api_reply_slot *s)
{
    char hex[24];
    cJSON *o = cJSON_CreateObject();
    hex_id(s->sent_to, hex, sizeof(hex));
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddNumberToObject(o, "tag", s->tag);
    cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
    hex_id(s->agent, hex, sizeof(hex));
    cJSON_AddStringToObject(o, "from", hex);
    return o;
}

static void answer(api_reply_slot *s, const reply_msg *r)
{
    cJSON *o = request_json(s);
    cJSON *rep = cJSON_AddObjectToObject(o, "reply");
    char hex[24];
    hex_id(r->from, hex, sizeof(hex));
    cJSON_AddStringToObject(rep, "from", hex);
    cJSON_AddNumberToObject(rep, "tag", r->tag);
    cJSON_AddNumberToObject(rep, "bytes", (double)r->len);
    int text = memchr(r->data, 0, r->len) == NULL;
    for (size_t i = 0; text && i < r->len; i++)
        text = r->data[i] >= 0x20 || r->data[i] == '\n' || r->data[i] == '\t';
    if (text) {
        char *t = malloc(r->len + 1);
        if (t != NULL) {
            memcpy(t, r->data, r->len);
            t[r->len] = '\0';
            cJSON_AddStringToObject(rep, "data", t);
            free(t);
        }
    } else {
        char *b = port_b64_encode(r->data, r->len);
        if (b != NULL)
            cJSON_AddStringToObject(rep, "data_b64", b);
        free(b);
    }
    api_reply_json(s->call, 200, o);
}

static void wake_cb(uv_async_t *h)
{
    api_mailbox *m = h->data;
    pthread_mutex_lock(&m->mu);
    reply_msg *q = m->queue;
    m->queue = NULL;
    pthread_mutex_unlock(&m->mu);
    while (q != NULL) {
        reply_msg *r = q;
        q = q->next;
        api_reply_slot *s = slot_take(m, r->token);
        if (s != NULL && s->call != NULL)
            answer(s, r);
        free(s);
        free(r);
    }
}

static api_mailbox *mailbox_get(node *n, mb_error *err)
{
    if (n->mailbox != NULL)
        return n->mailbox;
    if (n->services == NULL) {
        mb_errorf(err, MB_EUNAVAIL, "the agent runtime is not running");
        return NULL;
    }
    api_mailbox *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        mb_errorf(err, MB_ENOMEM, "out of memory");
        return NULL;
    }
    int rv = mb_runtime_kind_register(node_services_runtime(n->services), &reply_kind, err);
    if (rv != MB_OK && rv != MB_EEXIST) {
        free(m);
        return NULL;
    }
    m->n = n;
    pthread_mutex_init(&m->mu, NULL);
    uv_async_init(&n->loop, &m->wake, wake_cb);
    m->wake.data = m;
    atomic_store(&g_mailbox, m);
    n->mailbox = m;
    return m;
}

int api_mailbox_sender(node *n, mb_agent_id *out, mb_error *err)
{
    api_mailbox *m = mailbox_get(n, err);
    if (m == NULL)
        return err != NULL ? err->code : MB_EUNAVAIL;
    mb_runtime *rt = node_services_runtime(n->services);
    mb_agent_info info;
    if (m->sender == 0 || mb_runtime_agent_info(rt, m->sender, &info) != MB_OK) {
        mb_spawn_opts o = {
            .kind = API_REPLY_KIND, .config = "0", .name = API_MAILBOX_NAME, .ns = API_MAILBOX_NS
        };
        int rv = mb_runtime_spawn(rt, &o, &m->sender, err);
        if (rv != MB_OK) {
            m->sender = 0;
            return rv;
        }
    }
    *out = m->sender;
    return MB_OK;
}

int api_mailbox_open(node *n, mb_agent_id *from, api_reply_slot **slot, mb_error *err)
{
    api_mailbox *m = mailbox_get(n, err);
    if (m == NULL)
        return err != NULL ? err->code : MB_EUNAVAIL;
    api_reply_slot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "out of memory");
    s->token = ++m->next_token;
    char cfg[24];
    snprintf(cfg, sizeof(cfg), "%llu", (unsigned long long)s->token);
    mb_spawn_opts o = { .kind = API_REPLY_KIND, .config = cfg };
    int rv = mb_runtime_spawn(node_services_runtime(n->services), &o, &s->agent, err);
    if (rv != MB_OK) {
        free(s);
        return rv;
    }
    s->next = m->slots;
    m->slots = s;
    *from = s->agent;
    *slot = s;
    return MB_OK;
}

static void slot_drop(node *n, api_mailbox *m, api_reply_slot *s)
{
    slot_take(m, s->token);
    if (n->services != NULL)
        mb_runtime_stop_agent(node_services_runtime(n->services), s->agent);
    free(s);
}

void api_mailbox_cancel(node *n, api_reply_slot *slot)
{
    if (n->mailbox != NULL && slot != NULL)
        slot_drop(n, n->mailbox, slot);
}

static void wait_expire(node *n, api_call *c, void *arg, int code)
{
    api_reply_slot *s = arg;
    api_mailbox *m = n->mailbox;
    char hex[24];
    hex_id(s->sent_to, hex, sizeof(hex));
    if (m != NULL)
        slot_drop(n, m, s);
    else
        free(s);
    if (code == MB_ETIMEDOUT)
        api_reply_error(c, MB_ETIMEDOUT, "message delivered to %s; no reply within the wait", hex);
    else
        api_reply_error(c, code, "message delivered to %s; node shutting down before a reply", hex);
}

void api_mailbox_wait(node *n, api_reply_slot *slot, api_call *c, uint64_t wait_ms,
                      mb_agent_id sent_to, uint32_t tag, size_t bytes)
{
    slot->sent_to = sent_to;
    slot->tag = tag;
    slot->bytes = bytes;
    int rv = api_call_park(n, c, wait_ms, wait_expire, slot);
    if (rv != MB_OK) {
        api_mailbox_cancel(n, slot);
        api_reply_error(c, rv, "cannot wait for the reply");
        return;
    }
    slot->call = c;
}

uint64_t api_mailbox_dropped(const node *n)
{
    return n->mailbox != NULL ? atomic_load(&n->mailbox->dropped) : 0;
}

static void wake_closed_cb(uv_handle_t *h)
{
    api_mailbox *m = h->data;
    wake_cb(&m->wake); /* free what is still queued (no slot waits now) */
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void api_mailbox_close(node *n)
{
    api_mailbox *m = n->mailbox;
    if (m == NULL)
        return;
    n->mailbox = NULL;
    atomic_store(&g_mailbox, NULL);
    while (m->slots != NULL) { /* parked calls were answered when HTTP closed */
        api_reply_slot *s = m->slots;
        m->slots = s->next;
        free(s);
    }
    uv_close((uv_handle_t *)&m->wake, wake_closed_cb);
}
