/* node/api_node.c: node-level routes — GET /v1/health, /v1/status,
 * /metrics and /v1/alerts (docs/api.md). Control loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "node/node.h"
#include "node/placement.h"
#include "node/replication.h"
#include "node/node_log.h"
#include "node/proc_stats.h"

static void health(node *n, api_call *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", n->stopping ? "stopping" : "ok");
    cJSON_AddStringToObject(j, "version", MABEAMD_VERSION);
    api_reply_json(c, 200, j);
}

static void add_stats(cJSON *parent, const char *name, node *n, int cluster)
{
    storage_stats st;
    mb_error e;
    mb_error_clear(&e);
    cJSON *o = cJSON_AddObjectToObject(parent, name);
    if (node_log_stats(n->store, cluster, &st, &e) != MB_OK) {
        cJSON_AddStringToObject(o, "error", e.msg);
        return;
    }
    cJSON_AddNumberToObject(o, "count", (double)st.count);
    cJSON_AddNumberToObject(o, "bytes", (double)st.bytes);
    cJSON_AddNumberToObject(o, "first_seq", (double)st.first_seq);
    cJSON_AddNumberToObject(o, "last_seq", (double)st.last_seq);
}

/* The mesh's counters since start: messages and bytes both ways (the idle
 * traffic figure of docs/BENCHMARKS.md), refusals, heartbeats. */
static void add_mesh_stats(cJSON *o, mesh *m)
{
    mesh_stats ms;
    mesh_get_stats(m, &ms);
    const struct {
        const char *key;
        uint64_t v;
    } f[] = {
        { "tx_msgs", ms.tx_msgs },
        { "rx_msgs", ms.rx_msgs },
        { "tx_bytes", ms.tx_bytes },
        { "rx_bytes", ms.rx_bytes },
        { "hb_calls", ms.hb_calls },
        { "hb_skipped", ms.hb_skipped },
        { "timer_ticks", ms.ticks },
        { "calls_timed_out", ms.calls_timed_out },
        { "refused_auth", ms.refused_auth },
        { "refused_replay", ms.refused_replay },
        { "agent_delivered", ms.agent_delivered },
        { "agent_dropped", ms.agent_dropped },
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        cJSON_AddNumberToObject(o, f[i].key, (double)f[i].v);
}

static void status(node *n, api_call *c)
{
    cJSON *j = cJSON_CreateObject();
    int64_t now = node_wall_ms();
    cJSON_AddNumberToObject(j, "node_id", (double)n->node_id);
    cJSON_AddStringToObject(j, "node_name", n->node_name);
    cJSON_AddStringToObject(j, "version", MABEAMD_VERSION);
    cJSON_AddNumberToObject(j, "pid", (double)getpid());
    cJSON_AddNumberToObject(j, "started_ms", (double)n->start_wall_ms);
    cJSON_AddNumberToObject(j, "uptime_s", (double)(now - n->start_wall_ms) / 1000.0);
    cJSON_AddStringToObject(j, "data_dir", n->data_dir);
    cJSON_AddStringToObject(j, "http_address", n->http_addr);
    cJSON_AddNumberToObject(j, "rss_bytes", (double)proc_rss_bytes());
    cJSON_AddNumberToObject(j, "cpu_seconds", proc_cpu_seconds());
    cJSON_AddNumberToObject(j, "open_fds", proc_open_fds());
    cJSON_AddNumberToObject(j, "threads", proc_threads());
    cJSON_AddNumberToObject(j, "config_version", (double)nc_config_version(n->cfg));
    cJSON_AddNumberToObject(j, "http_parked",
                            n->http != NULL ? (double)http_server_parked(n->http) : 0);
    cJSON *st = cJSON_AddObjectToObject(j, "storage");
    add_stats(st, "local", n, 0);
    add_stats(st, "cluster", n, 1);
    if (n->repl != NULL)
        add_mesh_stats(cJSON_AddObjectToObject(j, "mesh"), repl_mesh(n->repl));
    char *alerts = nc_alerts_active_json(n->alerts);
    cJSON *a = alerts != NULL ? cJSON_Parse(alerts) : NULL;
    free(alerts);
    cJSON *list = a != NULL ? cJSON_DetachItemFromObject(a, "alerts") : NULL;
    cJSON_Delete(a);
    cJSON_AddItemToObject(j, "alerts", list != NULL ? list : cJSON_CreateArray());
    api_reply_json(c, 200, j);
}

static void metrics(node *n, api_call *c)
{
    char *text = NULL;
    size_t len = 0;
    if (nc_metrics_render_prometheus(n->metrics, &text, &len) != MB_OK) {
        api_reply_error(c, MB_ENOMEM, "render metrics: out of memory");
        return;
    }
    api_reply_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void alerts(node *n, api_call *c)
{
    char *text = nc_alerts_active_json(n->alerts);
    if (text == NULL) {
        api_reply_error(c, MB_ENOMEM, "render alerts: out of memory");
        return;
    }
    api_reply_raw(c, 200, "application/json", text, strlen(text));
    free(text);
}

/* ---- drain (placement) ---- */

static int drain_node_id(api_call *c, uint64_t *out)
{
    const char *s = api_call_param(c, 0);
    char *end = NULL;
    unsigned long long v = s != NULL && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (end == NULL || *end != '\0' || v == 0) {
        api_reply_error(c, MB_EINVAL, "node id must be a positive integer, got '%.32s'",
                        s != NULL ? s : "");
        return MB_EINVAL;
    }
    *out = v;
    return MB_OK;
}

/* POST /v1/nodes/{id}/drain[?wait=0][&timeout_ms=N]: move every agent of
 * node {id} elsewhere with a fresh checkpoint; answers when they all run
 * elsewhere (or at once with wait=0). */
static void node_drain(node *n, api_call *c)
{
    uint64_t id, wait, timeout_ms;
    if (drain_node_id(c, &id) != MB_OK || api_query_u64(c, "wait", 1, &wait) != MB_OK ||
        api_query_u64(c, "timeout_ms", 60000, &timeout_ms) != MB_OK)
        return;
    if (n->placement == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "cluster placement is not running on this node");
        return;
    }
    placement_drain(n->placement, c, id, wait != 0, timeout_ms);
}

static void undrain_done(node *n, api_call *c, const consensus_result *res, const char *json,
                         void *arg)
{
    (void)json;
    (void)arg;
    if (res->code != MB_OK) {
        api_reply_error(c, res->code, "%s", res->msg[0] ? res->msg : mb_strerror(res->code));
        return;
    }
    uint64_t id = 0;
    sscanf(api_call_param(c, 0), "%" SCNu64, &id);
    api_reply_json(c, 200, placement_drain_progress(n->placement, id));
}

/* POST /v1/nodes/{id}/undrain: a draining node takes agents again. */
static void node_undrain(node *n, api_call *c)
{
    uint64_t id;
    if (drain_node_id(c, &id) != MB_OK)
        return;
    if (n->placement == NULL || n->repl == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "cluster placement is not running on this node");
        return;
    }
    const consensus_node *nd = consensus_sm_node_get(repl_sm(n->repl), id);
    if (nd == NULL || nd->status != CONSENSUS_NODE_DRAINING) {
        api_reply_error(c, nd == NULL ? MB_ENOTFOUND : MB_ESTATE, "node %llu is %s",
                        (unsigned long long)id, nd == NULL ? "not a member" : "not draining");
        return;
    }
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                          .by = "api",
                          .node_fields = CONSENSUS_NODE_SET_STATUS };
    cmd.node.id = id;
    cmd.node.status = CONSENSUS_NODE_UP;
    repl_write(n->repl, c, &cmd, undrain_done, NULL);
}

/* GET /v1/nodes/{id}/drain: progress of a drain. */
static void node_drain_progress(node *n, api_call *c)
{
    uint64_t id;
    if (drain_node_id(c, &id) != MB_OK)
        return;
    if (n->placement == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "cluster placement is not running on this node");
        return;
    }
    api_reply_json(c, 200, placement_drain_progress(n->placement, id));
}

static const api_route routes[] = {
    { "POST", "/v1/nodes/{id}/drain", node_drain, 0, "node_drain" },
    { "GET", "/v1/nodes/{id}/drain", node_drain_progress, 0, "node_drain_progress" },
    { "POST", "/v1/nodes/{id}/undrain", node_undrain, 0, "node_undrain" },
    { "GET", "/v1/health", health, API_NO_AUTH, "health" },
    { "GET", "/v1/status", status, 0, "status" },
    { "GET", "/metrics", metrics, 0, "metrics" },
    { "GET", "/v1/alerts", alerts, 0, "alerts" },
};

void api_node_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
