/* node/services.c: mb_services for mabeamd and the node's agent runtime
 * (see services.h). */
#include "node/services.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/core/registry.h"
#include "node/node.h"
#include "node/placement.h"

#define CKPT_PREFIX "agent/ckpt/"

/* The value functions of the agent SDK (<mabeam/value.h>): referenced so
 * that the linker keeps them in mabeamd, which exports them to kind
 * libraries loaded with dlopen. */
__attribute__((used)) static const void *const sdk_value_exports[] = {
    (const void *)mb_value_free,     (const void *)mb_value_copy,    (const void *)mb_value_equal,
    (const void *)mb_value_validate, (const void *)mb_value_default,
};

/* Work waiting for the loop: a lifecycle event, or (blob != NULL) a
 * checkpoint to store under `subject` (the blob key). */
struct svc_event {
    struct svc_event *next;
    mb_agent_id id; /* checkpoints: the agent */
    char type[40];
    char subject[64];
    cJSON *payload;
    void *blob;
    size_t blob_len;
};

struct node_services {
    node *n;
    mb_runtime *rt;
    nc_registry *reg;
    _Atomic uint64_t root;
    _Atomic uint64_t rng;

    pthread_mutex_t mu; /* the event queue and the cluster ops */
    struct svc_event *head, *tail;
    node_cluster_ops cluster;
    int has_cluster;
    uv_async_t async;
    int async_open;

    nc_counter *ev_count[8]; /* by mb_agent_event_type */
    nc_counter *slow_turns;
    nc_counter *checkpoints;
    nc_counter *ckpt_errors;
};

void node_services_ckpt_key(mb_agent_id id, char *buf, size_t size)
{
    snprintf(buf, size, CKPT_PREFIX "%016llx", (unsigned long long)id);
}

/* ---- cluster operations (through node_cluster_ops) ---- */

static int cluster_copy(node_services *s, node_cluster_ops *out)
{
    pthread_mutex_lock(&s->mu);
    int has = s->has_cluster;
    if (has)
        *out = s->cluster;
    pthread_mutex_unlock(&s->mu);
    return has;
}

static void cluster_unavailable(node_services *s, const char *what)
{
    NC_LOGKV(s->n->log, NC_LOG_DEBUG, "agents", NODE_CLUSTER_UNAVAILABLE, NC_F_STR("call", what));
}

static int svc_send_name(void *impl, mb_agent_id from, const char *name, uint32_t tag,
                         const void *data, size_t len)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.send_name == NULL) {
        cluster_unavailable(s, "send_name");
        return MB_EUNAVAIL;
    }
    return o.send_name(o.ctx, from, name, tag, data, len);
}

static int svc_send_remote(void *impl, mb_agent_id from, mb_agent_id to, uint32_t tag,
                           const void *data, size_t len)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.send_remote == NULL) {
        cluster_unavailable(s, "send_remote");
        return MB_EUNAVAIL;
    }
    return o.send_remote(o.ctx, from, to, tag, data, len);
}

static int svc_var_get(void *impl, const char *name, mb_value *out, uint64_t *version)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.var_get == NULL) {
        cluster_unavailable(s, "var_get");
        return MB_EUNAVAIL;
    }
    return o.var_get(o.ctx, name, out, version);
}

static int svc_var_set(void *impl, mb_agent_id who, const char *name, const mb_value *value)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.var_set == NULL) {
        cluster_unavailable(s, "var_set");
        return MB_EUNAVAIL;
    }
    return o.var_set(o.ctx, who, name, value);
}

static int svc_var_watch(void *impl, mb_agent_id who, const char *name, uint64_t from_version)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.var_watch == NULL) {
        cluster_unavailable(s, "var_watch");
        return MB_EUNAVAIL;
    }
    return o.var_watch(o.ctx, who, name, from_version);
}

static int svc_propose(void *impl, mb_agent_id who, const char *name, const mb_value *value,
                       uint64_t *proposal_id)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.propose == NULL) {
        cluster_unavailable(s, "propose");
        return MB_EUNAVAIL;
    }
    return o.propose(o.ctx, who, name, value, proposal_id);
}

static int svc_vote(void *impl, mb_agent_id who, uint64_t proposal_id, int accept)
{
    node_services *s = impl;
    node_cluster_ops o;
    if (!cluster_copy(s, &o) || o.vote == NULL) {
        cluster_unavailable(s, "vote");
        return MB_EUNAVAIL;
    }
    return o.vote(o.ctx, who, proposal_id, accept);
}

void node_services_set_cluster(node_services *s, const node_cluster_ops *ops)
{
    pthread_mutex_lock(&s->mu);
    if (ops != NULL) {
        s->cluster = *ops;
        s->has_cluster = 1;
    } else {
        memset(&s->cluster, 0, sizeof(s->cluster));
        s->has_cluster = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- registry ---- */

/* Entry name of an agent: its registered name, or "#<hex id>" for an
 * unnamed agent that registers capabilities only. */
static const char *entry_name(mb_agent_id id, const char *name, char *buf, size_t size)
{
    if (name != NULL)
        return name;
    snprintf(buf, size, "#%016llx", (unsigned long long)id);
    return buf;
}

static int svc_name_register(void *impl, mb_agent_id id, const char *ns, const char *name,
                             const char *const *caps, size_t ncaps)
{
    node_services *s = impl;
    nc_reg_ns nsid;
    mb_error e;
    int rv = nc_registry_namespace(s->reg, ns != NULL ? ns : "default", &nsid, &e);
    if (rv != MB_OK)
        return rv;
    if (ncaps > 64)
        return MB_EINVAL;
    nc_reg_attr attrs[64];
    size_t na = 0;
    for (size_t i = 0; i < ncaps; i++) {
        int dup = 0;
        for (size_t j = 0; j < na; j++)
            dup |= strcmp(attrs[j].key, caps[i]) == 0;
        if (!dup)
            attrs[na++] = (nc_reg_attr){ caps[i], "1" };
    }
    char buf[24];
    nc_reg_value v = { .id = id, .ptr = NULL };
    return nc_registry_register(s->reg, nsid, entry_name(id, name, buf, sizeof(buf)), &v, attrs, na,
                                &e);
}

static void svc_name_unregister(void *impl, mb_agent_id id, const char *ns, const char *name)
{
    node_services *s = impl;
    nc_reg_ns nsid;
    mb_error e;
    if (nc_registry_namespace(s->reg, ns != NULL ? ns : "default", &nsid, &e) != MB_OK)
        return;
    char buf[24];
    const char *key = entry_name(id, name, buf, sizeof(buf));
    nc_reg_value v;
    /* Only our own entry: a successor may hold the name already. */
    if (nc_registry_lookup(s->reg, nsid, key, &v) == MB_OK && v.id == id)
        nc_registry_unregister(s->reg, nsid, key, NULL);
}

static int svc_name_lookup(void *impl, const char *ns, const char *name, mb_agent_id *out)
{
    node_services *s = impl;
    return node_services_lookup(s, ns, name, out);
}

int node_services_lookup(node_services *s, const char *ns, const char *name, mb_agent_id *out)
{
    nc_reg_ns nsid;
    mb_error e;
    int rv = nc_registry_namespace(s->reg, ns != NULL ? ns : "default", &nsid, &e);
    if (rv != MB_OK)
        return rv;
    nc_reg_value v;
    if ((rv = nc_registry_lookup(s->reg, nsid, name, &v)) != MB_OK)
        return rv;
    *out = v.id;
    return MB_OK;
}

struct select_acc {
    mb_agent_id *out;
    size_t max, n;
};

static int select_cb(void *arg, const char *name, const nc_reg_value *value)
{
    struct select_acc *a = arg;
    (void)name;
    if (a->n < a->max)
        a->out[a->n] = value->id;
    a->n++;
    return 0;
}

static size_t svc_caps_lookup(void *impl, const char *ns, const char *const *caps, size_t ncaps,
                              mb_agent_id *out, size_t max)
{
    node_services *s = impl;
    nc_reg_ns nsid;
    mb_error e;
    if (ncaps > 64 ||
        nc_registry_namespace(s->reg, ns != NULL ? ns : "default", &nsid, &e) != MB_OK)
        return 0;
    nc_reg_attr attrs[64];
    for (size_t i = 0; i < ncaps; i++)
        attrs[i] = (nc_reg_attr){ caps[i], NULL };
    struct select_acc a = { out, max, 0 };
    nc_registry_select(s->reg, nsid, attrs, ncaps, select_cb, &a);
    return a.n;
}

size_t node_services_with_cap(node_services *s, const char *ns, const char *cap, mb_agent_id *out,
                              size_t max)
{
    const char *caps[1] = { cap };
    return svc_caps_lookup(s, ns, caps, 1, out, max);
}

/* ---- events (queued for the loop), telemetry, log ---- */

static void store_checkpoint(node_services *s, const char *key, const void *blob, size_t len)
{
    mb_error e;
    mb_error_clear(&e);
    if (storage_blob_put(s->n->store, key, blob, len, &e) != MB_OK) {
        nc_counter_inc(s->ckpt_errors);
        NC_LOGKV(s->n->log, NC_LOG_ERROR, "agents", "cannot store agent checkpoint",
                 NC_F_STR("key", key), NC_F_STR("error", e.msg));
        return;
    }
    nc_counter_inc(s->checkpoints);
}

/* Loop thread: write what the workers queued, in order. */
static void drain_events(node_services *s)
{
    pthread_mutex_lock(&s->mu);
    struct svc_event *list = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list != NULL) {
        struct svc_event *next = list->next;
        if (list->blob != NULL) {
            store_checkpoint(s, list->subject, list->blob, list->blob_len);
            if (s->n->placement != NULL) /* cluster agents: replicated */
                placement_checkpoint_saved(s->n->placement, list->id, list->blob, list->blob_len);
        } else
            node_event(s->n, list->type, list->subject, list->payload);
        cJSON_Delete(list->payload);
        free(list->blob);
        free(list);
        list = next;
    }
}

/* Any thread: queue for the loop and wake it. */
static void enqueue(node_services *s, struct svc_event *q)
{
    pthread_mutex_lock(&s->mu);
    if (s->tail != NULL)
        s->tail->next = q;
    else
        s->head = q;
    s->tail = q;
    int open = s->async_open;
    pthread_mutex_unlock(&s->mu);
    if (open)
        uv_async_send(&s->async);
}

static void async_cb(uv_async_t *h)
{
    drain_events(h->data);
}

void node_services_flush(node_services *s)
{
    if (s != NULL)
        drain_events(s);
}

static void svc_event(void *impl, const mb_agent_event *ev)
{
    node_services *s = impl;
    const char *name = mb_agent_event_name(ev->type);
    if (ev->type >= 0 && ev->type < 8)
        nc_counter_inc(s->ev_count[ev->type]);
    int level = ev->type == MB_AEV_CRASHED || ev->type == MB_AEV_ESCALATED ||
                        ev->type == MB_AEV_UPGRADE_FAILED
                    ? NC_LOG_WARN
                    : NC_LOG_INFO;
    char id[24];
    snprintf(id, sizeof(id), "%016llx", (unsigned long long)ev->id);
    NC_LOGKV(s->n->log, level, "agents", name, NC_F_STR("agent", id),
             NC_F_STR("kind", ev->kind != NULL ? ev->kind : ""), NC_F_STR("detail", ev->detail));

    struct svc_event *q = calloc(1, sizeof(*q));
    cJSON *p = cJSON_CreateObject();
    if (q == NULL || p == NULL) {
        free(q);
        cJSON_Delete(p);
        NC_LOGKV(s->n->log, NC_LOG_ERROR, "agents", "out of memory: agent event lost",
                 NC_F_STR("event", name), NC_F_STR("agent", id));
        return;
    }
    snprintf(q->type, sizeof(q->type), "agent.%s", name);
    snprintf(q->subject, sizeof(q->subject), "%s", id);
    cJSON_AddStringToObject(p, "id", id);
    cJSON_AddStringToObject(p, "kind", ev->kind != NULL ? ev->kind : "");
    cJSON_AddNumberToObject(p, "version", ev->version);
    if (ev->type == MB_AEV_STOPPED || ev->type == MB_AEV_CRASHED)
        cJSON_AddStringToObject(p, "reason", mb_exit_reason_name(ev->reason));
    if (ev->code != 0)
        cJSON_AddStringToObject(p, "code", mb_errname(ev->code));
    cJSON_AddStringToObject(p, "detail", ev->detail != NULL ? ev->detail : "");
    q->payload = p;
    enqueue(s, q);
}

/* Turn a runtime metric name into a Prometheus-safe suffix. */
static void metric_name(const char *in, char *out, size_t size)
{
    size_t k = snprintf(out, size, "mb_agent_");
    for (; *in != '\0' && k + 1 < size; in++)
        out[k++] = (*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') ||
                           (*in >= '0' && *in <= '9') || *in == '_'
                       ? *in
                       : '_';
    out[k] = '\0';
}

static void svc_telemetry(void *impl, const char *metric, const char *label, double value)
{
    node_services *s = impl;
    mb_error e;
    char lab[NC_METRIC_VALUE_MAX + 1];
    snprintf(lab, sizeof(lab), "%s", label != NULL ? label : "");
    if (strcmp(metric, "agent_slow_turn_us") == 0) {
        nc_counter *c;
        nc_label l[1] = { { "kind", lab } };
        if (nc_metrics_counter(s->n->metrics, "mb_agent_slow_turns_total",
                               "Agent turns slower than the slow-turn threshold, by kind.", l, 1,
                               &c, &e) == MB_OK)
            nc_counter_inc(c);
        nc_gauge *g;
        if (nc_metrics_gauge(s->n->metrics, "mb_agent_slow_turn_last_us",
                             "Duration of the last slow turn of an agent, by kind.", l, 1, &g,
                             &e) == MB_OK)
            nc_gauge_set(g, value);
        return;
    }
    char name[96];
    metric_name(metric, name, sizeof(name));
    nc_label l[1] = { { "label", lab } };
    nc_gauge *g;
    if (strcmp(metric, "pool_size") == 0)
        l[0].name = "pool";
    if (nc_metrics_gauge(s->n->metrics, name, "Agent runtime measurement (docs/agents.md).", l, 1,
                         &g, &e) == MB_OK)
        nc_gauge_set(g, value);
}

static void svc_log(void *impl, int level, mb_agent_id id, const char *msg)
{
    node_services *s = impl;
    nc_log_level lvl = level <= MB_LOG_DEBUG  ? NC_LOG_DEBUG
                       : level == MB_LOG_INFO ? NC_LOG_INFO
                       : level == MB_LOG_WARN ? NC_LOG_WARN
                                              : NC_LOG_ERROR;
    char hex[24];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id);
    NC_LOGKV(s->n->log, lvl, "agent", msg, NC_F_STR("agent", hex));
}

/* Copied and written by the loop: storage (RocksDB) is then used from the
 * loop thread only, like every other node write. */
static void svc_checkpoint_saved(void *impl, mb_agent_id id, const void *blob, size_t len)
{
    node_services *s = impl;
    struct svc_event *q = calloc(1, sizeof(*q));
    void *copy = malloc(len > 0 ? len : 1);
    if (q == NULL || copy == NULL) {
        free(q);
        free(copy);
        nc_counter_inc(s->ckpt_errors);
        NC_LOGKV(s->n->log, NC_LOG_ERROR, "agents", "out of memory: agent checkpoint not stored",
                 NC_F_U64("agent", id));
        return;
    }
    if (len > 0)
        memcpy(copy, blob, len);
    node_services_ckpt_key(id, q->subject, sizeof(q->subject));
    q->id = id;
    q->blob = copy;
    q->blob_len = len;
    enqueue(s, q);
}

static uint64_t svc_now_ms(void *impl)
{
    (void)impl;
    return (uint64_t)node_wall_ms();
}

static uint64_t svc_monotonic_ms(void *impl)
{
    (void)impl;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* splitmix64 over an atomic counter: thread-safe, seeded at start. */
static uint64_t svc_random(void *impl)
{
    node_services *s = impl;
    uint64_t z = atomic_fetch_add_explicit(&s->rng, 0x9e3779b97f4a7c15ull, memory_order_relaxed);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- gauges read at /metrics time ---- */

static double g_agents(void *arg)
{
    node_services *s = arg;
    return s->rt != NULL ? (double)mb_runtime_agent_count(s->rt) : 0;
}

/* Sum of mailbox lengths and messages handled over the live agents. */
static void usage_sums(node_services *s, double *mailbox, double *messages)
{
    *mailbox = *messages = 0;
    if (s->rt == NULL)
        return;
    size_t total = mb_runtime_list(s->rt, NULL, NULL, 0);
    mb_agent_info *infos = calloc(total + 16, sizeof(*infos));
    if (infos == NULL)
        return;
    size_t n = mb_runtime_list(s->rt, NULL, infos, total + 16);
    if (n > total + 16)
        n = total + 16;
    for (size_t i = 0; i < n; i++) {
        *mailbox += infos[i].usage.mailbox_len;
        *messages += (double)infos[i].usage.messages;
    }
    free(infos);
}

static double g_mailbox(void *arg)
{
    double mb, msgs;
    usage_sums(arg, &mb, &msgs);
    return mb;
}

static double g_messages(void *arg)
{
    double mb, msgs;
    usage_sums(arg, &mb, &msgs);
    return msgs;
}

static int register_metrics(node_services *s, mb_error *err)
{
    int rv;
    if ((rv = nc_metrics_gauge_fn(s->n->metrics, "mb_agents", "Live agents on this node.", NULL, 0,
                                  g_agents, s, err)) != MB_OK ||
        (rv = nc_metrics_gauge_fn(s->n->metrics, "mb_agent_mailbox_messages",
                                  "Messages waiting in the mailboxes of live agents.", NULL, 0,
                                  g_mailbox, s, err)) != MB_OK ||
        (rv = nc_metrics_gauge_fn(s->n->metrics, "mb_agent_messages_handled",
                                  "Messages handled by the live agents (restarted agents start "
                                  "again at 0).",
                                  NULL, 0, g_messages, s, err)) != MB_OK)
        return rv;
    for (int t = 0; t < 8; t++) {
        nc_label l[1] = { { "event", mb_agent_event_name(t) } };
        if ((rv = nc_metrics_counter(s->n->metrics, "mb_agent_events_total",
                                     "Agent lifecycle events (spawned, crashed, restarted...).", l,
                                     1, &s->ev_count[t], err)) != MB_OK)
            return rv;
    }
    if ((rv = nc_metrics_counter(s->n->metrics, "mb_agent_checkpoints_total",
                                 "Agent checkpoints stored.", NULL, 0, &s->checkpoints, err)) !=
            MB_OK ||
        (rv = nc_metrics_counter(s->n->metrics, "mb_agent_checkpoint_errors_total",
                                 "Agent checkpoints that could not be stored.", NULL, 0,
                                 &s->ckpt_errors, err)) != MB_OK)
        return rv;
    return MB_OK;
}

/* ---- lifecycle ---- */

static const char ROOT_CONFIG[] =
    "{\"strategy\":\"one_for_one\",\"intensity\":1000,\"period_ms\":10000,"
    "\"backoff\":{\"initial_ms\":0,\"max_ms\":1000,\"jitter\":0},\"children\":[]}";

static void services_free(node_services *s)
{
    if (s->reg != NULL)
        nc_registry_free(s->reg);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void async_closed_cb(uv_handle_t *h)
{
    services_free(h->data);
}

int node_services_start(node *n, mb_error *err)
{
    int rv;
    if (n->node_id > 0xFFFF)
        return mb_errorf(err, MB_EINVAL,
                         "node_id %llu is above 65535: agent ids hold a 16-bit node id",
                         (unsigned long long)n->node_id);
    node_services *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "agent services: out of memory");
    s->n = n;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->root, 0);
    atomic_init(&s->rng,
                (uint64_t)node_wall_ms() ^ ((uint64_t)n->node_id << 40) ^ (uint64_t)(uintptr_t)s);
    if ((rv = nc_registry_new(&s->reg, 256, err)) != MB_OK)
        goto fail;
    if ((rv = register_metrics(s, err)) != MB_OK)
        goto fail;
    if ((rv = uv_async_init(&n->loop, &s->async, async_cb)) != 0) {
        rv = mb_errorf(err, MB_EIO, "agent services: async handle: %s", uv_strerror(rv));
        goto fail;
    }
    s->async.data = s;
    s->async_open = 1;

    mb_services svc = {
        .impl = s,
        .send_remote = svc_send_remote,
        .send_name = svc_send_name,
        .var_get = svc_var_get,
        .var_set = svc_var_set,
        .var_watch = svc_var_watch,
        .propose = svc_propose,
        .vote = svc_vote,
        .name_register = svc_name_register,
        .name_unregister = svc_name_unregister,
        .name_lookup = svc_name_lookup,
        .caps_lookup = svc_caps_lookup,
        .event = svc_event,
        .telemetry = svc_telemetry,
        .log = svc_log,
        .checkpoint_saved = svc_checkpoint_saved,
        .now_ms = svc_now_ms,
        .monotonic_ms = svc_monotonic_ms,
        .random = svc_random,
    };
    int64_t spin_us = nc_config_int(n->cfg, NC_CFG_AGENT_SPIN_US); /* 0: none */
    mb_runtime_config rc = {
        .node_id = (uint16_t)n->node_id,
        .workers = (unsigned)nc_config_int(n->cfg, NC_CFG_AGENT_WORKERS),
        .spin_us = spin_us > 0 ? (uint64_t)spin_us : MB_RUNTIME_NO_SPIN,
    };
    if ((rv = mb_runtime_start(&rc, &svc, &s->rt, err)) != MB_OK)
        goto fail_async;
    mb_spawn_opts ro = {
        .kind = "supervisor",
        .config = ROOT_CONFIG,
        .name = NODE_ROOT_SUPERVISOR_NAME,
        .ns = NODE_ROOT_SUPERVISOR_NS,
    };
    mb_agent_id root;
    if ((rv = mb_runtime_spawn(s->rt, &ro, &root, err)) != MB_OK)
        goto fail_rt;
    atomic_store(&s->root, root);
    n->services = s;
    NC_LOGKV(n->log, NC_LOG_INFO, "agents", "agent runtime started",
             NC_F_U64("workers", (uint64_t)rc.workers), NC_F_U64("spin_us", (uint64_t)spin_us));
    return MB_OK;

fail_rt:
    mb_runtime_stop(s->rt);
    s->rt = NULL;
fail_async:
    drain_events(s);
    s->async_open = 0;
    uv_close((uv_handle_t *)&s->async, async_closed_cb);
    return rv;
fail:
    services_free(s);
    return rv;
}

void node_services_stop(node_services *s)
{
    if (s == NULL)
        return;
    mb_runtime *rt = s->rt;
    mb_runtime_stop(rt); /* joins every worker: no service call after this */
    s->rt = NULL;
    drain_events(s);
    pthread_mutex_lock(&s->mu);
    s->async_open = 0;
    pthread_mutex_unlock(&s->mu);
    s->n->services = NULL;
    uv_close((uv_handle_t *)&s->async, async_closed_cb);
}

mb_runtime *node_services_runtime(node_services *s)
{
    return s->rt;
}

mb_agent_id node_services_root(node_services *s)
{
    mb_agent_id root = atomic_load(&s->root);
    mb_agent_info info;
    if (root == 0 || mb_runtime_agent_info(s->rt, root, &info) != MB_OK)
        return 0;
    return root;
}
