/* node/api_coord.c: leases, barriers and elections over HTTP
 * (docs/api.md "Coordination", docs/coordination.md). Writes replicate a
 * coordination command (with the node's wall clock as now_ms) and answer
 * with the record as applied on this node; reads are stale-local. Control
 * loop thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"
#include "node/replication.h"

enum coord_area { AREA_LEASE = 0, AREA_BARRIER = 1, AREA_ELECTION = 2 };

static const char *const area_names[] = { "lease", "barrier", "election" };
static const char *const area_lists[] = { "leases", "barriers", "elections" };

/* The record `name` of `area` as JSON, or NULL when absent. */
static cJSON *record_json(const consensus_sm *sm, int area, const char *name)
{
    cJSON *o = NULL;
    if (area == AREA_LEASE) {
        const consensus_lease *l = consensus_sm_lease_get(sm, name);
        if (l != NULL)
            consensus_lease_to_json(l, &o);
    } else if (area == AREA_BARRIER) {
        const consensus_barrier *b = consensus_sm_barrier_get(sm, name);
        if (b != NULL)
            consensus_barrier_to_json(b, &o);
    } else {
        const consensus_election *e = consensus_sm_election_get(sm, name);
        if (e != NULL)
            consensus_election_to_json(e, &o);
    }
    return o;
}

static void write_done(node *n, api_call *c, const consensus_result *res, const char *json,
                       void *arg)
{
    (void)json;
    int area = (int)(intptr_t)arg;
    if (res->code == MB_EBUSY) { /* held by another agent: a conflict, not an outage */
        api_reply_error_status(c, 409, res->code, res->msg);
        return;
    }
    if (res->code != MB_OK) {
        api_reply_error(c, res->code, "%s", res->msg);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cJSON_AddNumberToObject(o, "version", (double)res->version);
    if (res->msg[0] != '\0')
        cJSON_AddStringToObject(o, "message", res->msg);
    cJSON *rec = record_json(repl_sm(n->repl), area, api_call_param(c, 0));
    if (rec != NULL)
        cJSON_AddItemToObject(o, area_names[area], rec);
    else
        cJSON_AddNullToObject(o, area_names[area]);
    api_reply_json(c, 200, o);
}

/* A string field of the body that must be present, or a 400. */
static const char *body_str(api_call *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(api_call_json(c), key);
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        api_reply_error(c, MB_EINVAL, "body field \"%s\" (a non-empty string) is required", key);
        return NULL;
    }
    return v->valuestring;
}

/* An unsigned integer field of the body (absent = dflt), or a 400. */
static int body_u64(api_call *c, const char *key, uint64_t dflt, uint64_t max, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(api_call_json(c), key);
    if (v == NULL) {
        *out = dflt;
        return MB_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        api_reply_error(c, MB_EINVAL, "body field \"%s\" must be an integer in 0..%llu", key,
                        (unsigned long long)max);
        return MB_EINVAL;
    }
    *out = (uint64_t)v->valuedouble;
    return MB_OK;
}

static void submit(node *n, api_call *c, consensus_cmd *cmd, int area)
{
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(api_call_json(c), "request_id");
    if (cJSON_IsString(rid) && rid->valuestring[0] != '\0')
        repl_request_id(rid->valuestring, &cmd->client_id, &cmd->request_seq);
    cmd->coord.name = (char *)api_call_param(c, 0);
    repl_write(n->repl, c, cmd, write_done, (void *)(intptr_t)area);
}

static void lease_write(node *n, api_call *c, consensus_cmd_kind kind)
{
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = kind;
    const char *holder = body_str(c, "holder");
    if (holder == NULL)
        return;
    cmd.coord.holder = (char *)holder;
    cmd.by = (char *)holder;
    if (kind != CONSENSUS_CMD_LEASE_RELEASE) {
        if (body_u64(c, "ttl_ms", 10000, CONSENSUS_LEASE_TTL_MAX_MS, &cmd.coord.ttl_ms) != MB_OK)
            return;
        cmd.coord.now_ms = node_wall_ms();
    }
    submit(n, c, &cmd, AREA_LEASE);
}

static void lease_acquire(node *n, api_call *c)
{
    lease_write(n, c, CONSENSUS_CMD_LEASE_ACQUIRE);
}

static void lease_renew(node *n, api_call *c)
{
    lease_write(n, c, CONSENSUS_CMD_LEASE_RENEW);
}

static void lease_release(node *n, api_call *c)
{
    lease_write(n, c, CONSENSUS_CMD_LEASE_RELEASE);
}

static void barrier_arrive(node *n, api_call *c)
{
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_BARRIER_ARRIVE;
    const char *who = body_str(c, "participant");
    if (who == NULL)
        return;
    uint64_t parties;
    if (body_u64(c, "parties", 0, CONSENSUS_COORD_MAX_PARTIES, &parties) != MB_OK ||
        body_u64(c, "timeout_ms", 0, CONSENSUS_LEASE_TTL_MAX_MS, &cmd.coord.timeout_ms) != MB_OK)
        return;
    cmd.coord.holder = (char *)who;
    cmd.by = (char *)who;
    cmd.coord.parties = (uint32_t)parties;
    cmd.coord.now_ms = node_wall_ms();
    submit(n, c, &cmd, AREA_BARRIER);
}

static void election_write(node *n, api_call *c, consensus_cmd_kind kind)
{
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = kind;
    const char *who = body_str(c, "member");
    if (who == NULL)
        return;
    cmd.coord.holder = (char *)who;
    cmd.by = (char *)who;
    submit(n, c, &cmd, AREA_ELECTION);
}

static void election_join(node *n, api_call *c)
{
    election_write(n, c, CONSENSUS_CMD_ELECTION_JOIN);
}

static void election_leave(node *n, api_call *c)
{
    election_write(n, c, CONSENSUS_CMD_ELECTION_LEAVE);
}

static void show(node *n, api_call *c, int area)
{
    const char *name = api_call_param(c, 0);
    cJSON *rec = record_json(repl_sm(n->repl), area, name);
    if (rec == NULL) {
        api_reply_error(c, MB_ENOTFOUND, "%s \"%s\" not found", area_names[area], name);
        return;
    }
    api_reply_json(c, 200, rec);
}

static void list(node *n, api_call *c, int area)
{
    const consensus_sm *sm = repl_sm(n->repl);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, area_lists[area]);
    size_t count = area == AREA_LEASE     ? consensus_sm_lease_count(sm)
                   : area == AREA_BARRIER ? consensus_sm_barrier_count(sm)
                                          : consensus_sm_election_count(sm);
    for (size_t i = 0; arr != NULL && i < count; i++) {
        cJSON *rec = NULL;
        if (area == AREA_LEASE)
            consensus_lease_to_json(consensus_sm_lease_at(sm, i), &rec);
        else if (area == AREA_BARRIER)
            consensus_barrier_to_json(consensus_sm_barrier_at(sm, i), &rec);
        else
            consensus_election_to_json(consensus_sm_election_at(sm, i), &rec);
        if (rec != NULL)
            cJSON_AddItemToArray(arr, rec);
    }
    if (arr == NULL) {
        cJSON_Delete(o);
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cJSON_AddNumberToObject(o, "now_ms", (double)consensus_sm_coord_now(sm));
    api_reply_json(c, 200, o);
}

static void leases_list(node *n, api_call *c)
{
    list(n, c, AREA_LEASE);
}

static void lease_show(node *n, api_call *c)
{
    show(n, c, AREA_LEASE);
}

static void barriers_list(node *n, api_call *c)
{
    list(n, c, AREA_BARRIER);
}

static void barrier_show(node *n, api_call *c)
{
    show(n, c, AREA_BARRIER);
}

static void elections_list(node *n, api_call *c)
{
    list(n, c, AREA_ELECTION);
}

static void election_show(node *n, api_call *c)
{
    show(n, c, AREA_ELECTION);
}

static const api_route routes[] = {
    { "GET", "/v1/leases", leases_list, 0, "leases_list" },
    { "GET", "/v1/leases/{name}", lease_show, 0, "lease_show" },
    { "POST", "/v1/leases/{name}/acquire", lease_acquire, API_BODY, "lease_acquire" },
    { "POST", "/v1/leases/{name}/renew", lease_renew, API_BODY, "lease_renew" },
    { "POST", "/v1/leases/{name}/release", lease_release, API_BODY, "lease_release" },
    { "GET", "/v1/barriers", barriers_list, 0, "barriers_list" },
    { "GET", "/v1/barriers/{name}", barrier_show, 0, "barrier_show" },
    { "POST", "/v1/barriers/{name}/arrive", barrier_arrive, API_BODY, "barrier_arrive" },
    { "GET", "/v1/elections", elections_list, 0, "elections_list" },
    { "GET", "/v1/elections/{name}", election_show, 0, "election_show" },
    { "POST", "/v1/elections/{name}/join", election_join, API_BODY, "election_join" },
    { "POST", "/v1/elections/{name}/leave", election_leave, API_BODY, "election_leave" },
};

void api_coord_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
