/* node/api_vars.c: the typed shared variables over HTTP — define, list,
 * get (linearizable or stale), set, compare-and-set, delete, history and
 * long-poll watch (docs/api.md, docs/variables.md). Control loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"
#include "node/node_log.h"
#include "node/replication.h"

#define WATCH_MAX_EVENTS 1000

/* Reply with an error; constraint violations are 422 as the API says. */
static void reply_err(api_call *c, int code, const char *msg)
{
    if (code == MB_ECONSTRAINT)
        api_reply_error_status(c, 422, code, msg);
    else
        api_reply_error(c, code, "%s", msg);
}

static void write_done(node *n, api_call *c, const consensus_result *res, const char *json,
                       void *arg)
{
    (void)n;
    (void)json;
    int status = (int)(intptr_t)arg;
    if (res->code != MB_OK) {
        reply_err(c, res->code, res->msg);
        return;
    }
    /* raftperf2: the answer of every write, formatted directly (cJSON
     * prints a number with snprintf and checks it back with sscanf). */
    char text[48];
    int len = snprintf(text, sizeof(text), "{\"version\":%" PRIu64 "}", res->version);
    api_reply_raw(c, status, "application/json", text, (size_t)len);
}

static void read_done(node *n, api_call *c, const consensus_result *res, const char *json,
                      void *arg)
{
    (void)n;
    (void)arg;
    if (res->code != MB_OK || json == NULL) {
        reply_err(c, res->code != MB_OK ? res->code : MB_EIO, res->msg);
        return;
    }
    api_reply_raw(c, 200, "application/json", json, strlen(json));
}

static int want_stale(api_call *c, int *stale)
{
    const char *q = api_call_query(c, "consistency");
    *stale = 0;
    if (q == NULL || strcmp(q, "linearizable") == 0)
        return MB_OK;
    if (strcmp(q, "stale") == 0) {
        *stale = 1;
        return MB_OK;
    }
    api_reply_error(c, MB_EINVAL, "query parameter 'consistency' must be linearizable or stale");
    return MB_EINVAL;
}

static void vars_define(node *n, api_call *c)
{
    consensus_cmd cmd;
    mb_error e;
    mb_error_clear(&e);
    if (consensus_define_from_json(api_call_json(c), &cmd, &e) != MB_OK) {
        reply_err(c, e.code, e.msg);
        return;
    }
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(api_call_json(c), "request_id");
    if (cJSON_IsString(rid) && rid->valuestring[0] != '\0')
        repl_request_id(rid->valuestring, &cmd.client_id, &cmd.request_seq);
    repl_write(n->repl, c, &cmd, write_done, (void *)(intptr_t)201);
    consensus_cmd_free(&cmd);
}

static void vars_list(node *n, api_call *c)
{
    int stale;
    if (want_stale(c, &stale) != MB_OK)
        return;
    if (!stale) {
        repl_read(n->repl, c, NULL, read_done, NULL);
        return;
    }
    const consensus_sm *sm = repl_sm(n->repl);
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "vars");
    for (size_t i = 0; i < consensus_sm_var_count(sm); i++) {
        cJSON *v = NULL;
        if (consensus_var_to_json(consensus_sm_var_at(sm, i), &v) == MB_OK)
            cJSON_AddItemToArray(a, v);
    }
    cJSON_AddNumberToObject(j, "applied_index", (double)consensus_sm_applied_index(sm));
    cJSON_AddStringToObject(j, "consistency", "stale");
    api_reply_json(c, 200, j);
}

static void vars_get(node *n, api_call *c)
{
    const char *name = api_call_param(c, 0);
    int stale;
    if (want_stale(c, &stale) != MB_OK)
        return;
    if (!stale) {
        repl_read(n->repl, c, name, read_done, NULL);
        return;
    }
    const consensus_var *v = consensus_sm_var_get(repl_sm(n->repl), name);
    cJSON *j = NULL;
    if (v == NULL) {
        api_reply_error(c, MB_ENOTFOUND, "variable \"%s\" not found", name);
        return;
    }
    if (consensus_var_to_json(v, &j) != MB_OK) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cJSON_AddStringToObject(j, "consistency", "stale");
    api_reply_json(c, 200, j);
}

/* PUT and CAS. The value is parsed against the variable's type, so the
 * command is built once the variable is known on this node. */
typedef struct set_req {
    char *name;
    cJSON *value;
    int cas;
    uint64_t expected;
    char *by;
    uint64_t client_id, seq;
} set_req;

static void set_req_free(void *arg)
{
    set_req *q = arg;
    if (q == NULL)
        return;
    free(q->name);
    cJSON_Delete(q->value);
    free(q->by);
    free(q);
}

static int set_prepare(node *n, const consensus_sm *sm, void *arg, void **buf, size_t *len,
                       consensus_result *res)
{
    set_req *q = arg;
    (void)n;
    const consensus_var *v = consensus_sm_var_get(sm, q->name);
    if (v == NULL) {
        snprintf(res->msg, sizeof(res->msg), "variable \"%s\" not found", q->name);
        return MB_ENOTFOUND;
    }
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_VAR_SET;
    cmd.name = q->name;
    cmd.has_expected = q->cas;
    cmd.expected = q->expected;
    cmd.by = q->by;
    cmd.client_id = q->client_id;
    cmd.request_seq = q->seq;
    mb_error e;
    mb_error_clear(&e);
    int rv = consensus_value_from_json(q->value, v->spec.type, q->name, &cmd.value, &e);
    if (rv == MB_OK)
        rv = mb_value_validate(q->name, &v->spec, &cmd.value, &e);
    if (rv == MB_OK)
        rv = consensus_cmd_encode(&cmd, NULL, buf, len, &e);
    mb_value_free(&cmd.value);
    if (rv != MB_OK) {
        res->code = rv == MB_EINVAL ? MB_ECONSTRAINT : rv;
        snprintf(res->msg, sizeof(res->msg), "%s", e.msg);
        return res->code;
    }
    return MB_OK;
}

static void vars_set_common(node *n, api_call *c, int cas)
{
    const char *name = api_call_param(c, 0);
    const cJSON *body = api_call_json(c);
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (jv == NULL) {
        api_reply_error(c, MB_EINVAL, "body needs a \"value\"");
        return;
    }
    mb_error e;
    mb_error_clear(&e);
    if (mb_var_name_check(name, &e) != MB_OK) {
        api_reply_error(c, MB_EINVAL, "%s", e.msg);
        return;
    }
    set_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    q->cas = cas;
    if (cas) {
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(body, "expected_version");
        if (!cJSON_IsNumber(ev) || ev->valuedouble < 0 || ev->valuedouble > 9007199254740992.0) {
            set_req_free(q);
            api_reply_error(c, MB_EINVAL, "body needs \"expected_version\" (a version number)");
            return;
        }
        q->expected = (uint64_t)ev->valuedouble;
    }
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(body, "by");
    q->name = strdup(name);
    q->value = cJSON_Duplicate(jv, 1);
    q->by = cJSON_IsString(by) && strlen(by->valuestring) <= CONSENSUS_ID_MAX
                ? strdup(by->valuestring)
                : NULL;
    if (q->name == NULL || q->value == NULL) {
        set_req_free(q);
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(body, "request_id");
    if (cJSON_IsString(rid) && rid->valuestring[0] != '\0')
        repl_request_id(rid->valuestring, &q->client_id, &q->seq);
    else
        repl_new_id(n->repl, &q->client_id, &q->seq);
    repl_write_prepare(n->repl, c, name, set_prepare, q, set_req_free, write_done,
                       (void *)(intptr_t)200);
}

static void vars_set(node *n, api_call *c)
{
    vars_set_common(n, c, 0);
}

static void vars_cas(node *n, api_call *c)
{
    vars_set_common(n, c, 1);
}

static void vars_delete(node *n, api_call *c)
{
    const char *name = api_call_param(c, 0);
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_VAR_DELETE;
    cmd.name = (char *)name;
    if (api_call_query(c, "expected_version") != NULL) {
        uint64_t ev;
        if (api_query_u64(c, "expected_version", 0, &ev) != MB_OK)
            return;
        cmd.has_expected = 1;
        cmd.expected = ev;
    }
    const char *rid = api_call_query(c, "request_id");
    if (rid != NULL && rid[0] != '\0')
        repl_request_id(rid, &cmd.client_id, &cmd.request_seq);
    repl_write(n->repl, c, &cmd, write_done, (void *)(intptr_t)200);
}

/* ---- history and watch from the replicated event log ---- */

typedef struct collect {
    cJSON *arr;
    uint64_t last_version;
    size_t n;
} collect;

static int collect_cb(const storage_event *ev, void *arg)
{
    collect *col = arg;
    if (strncmp(ev->type, "var.", 4) != 0)
        return 0;
    cJSON *e = cJSON_CreateObject();
    uint64_t version = ev->seq / REPL_SEQ_PER_ENTRY;
    cJSON_AddNumberToObject(e, "version", (double)version);
    cJSON_AddNumberToObject(e, "seq", (double)ev->seq);
    cJSON_AddStringToObject(e, "type", ev->type);
    cJSON_AddNumberToObject(e, "time_ms", (double)ev->time_ms);
    cJSON *p = ev->payload_len > 0 ? cJSON_ParseWithLength(ev->payload, ev->payload_len) : NULL;
    if (p != NULL) {
        cJSON *val = cJSON_DetachItemFromObjectCaseSensitive(p, "value");
        if (val != NULL)
            cJSON_AddItemToObject(e, "value", val);
        cJSON *by = cJSON_DetachItemFromObjectCaseSensitive(p, "by");
        if (by != NULL)
            cJSON_AddItemToObject(e, "by", by);
        cJSON_Delete(p);
    }
    cJSON_AddBoolToObject(e, "deleted", strcmp(ev->type, "var.delete") == 0);
    cJSON_AddItemToArray(col->arr, e);
    if (version > col->last_version)
        col->last_version = version;
    col->n++;
    return 0;
}

static int query_var_events(node *n, const char *name, uint64_t from_seq, size_t limit,
                            int newest_first, uint64_t cursor, collect *col, uint64_t *next,
                            mb_error *e)
{
    struct storage_query q = {
        .from_seq = from_seq,
        .subject = name,
        .limit = limit,
        .newest_first = newest_first,
        .cursor = cursor,
    };
    return repl_log_query(n->repl, &q, collect_cb, col, next, e);
}

/* Gaps of this node's event log: a snapshot install replaced its state, so
 * the events of raft indexes from_index..applied_index were never written
 * here (marker event "state.restore", docs/consensus.md). */
typedef struct gap_collect {
    cJSON *arr;
    uint64_t after; /* only gaps ending after this version */
    uint64_t max_to;
} gap_collect;

static int gap_cb(const storage_event *ev, void *arg)
{
    gap_collect *g = arg;
    cJSON *p = ev->payload_len > 0 ? cJSON_ParseWithLength(ev->payload, ev->payload_len) : NULL;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(p, "from_index");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(p, "applied_index");
    uint64_t t = cJSON_IsNumber(to) && to->valuedouble > 0 ? (uint64_t)to->valuedouble
                                                           : ev->seq / REPL_SEQ_PER_ENTRY;
    /* Markers written before from_index existed: the start is unknown. */
    uint64_t f = cJSON_IsNumber(from) && from->valuedouble > 0 ? (uint64_t)from->valuedouble : 1;
    cJSON_Delete(p);
    if (t <= g->after)
        return 0;
    if (g->arr == NULL && (g->arr = cJSON_CreateArray()) == NULL)
        return 1;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "from_version", (double)f);
    cJSON_AddNumberToObject(e, "to_version", (double)t);
    cJSON_AddItemToArray(g->arr, e);
    if (t > g->max_to)
        g->max_to = t;
    return 0;
}

/* Add "gaps":[{"from_version","to_version"}] to `obj` for every gap of the
 * event log that ends after version `after`; returns the highest
 * to_version (0 when there is none). */
static uint64_t add_gaps(node *n, uint64_t after, cJSON *obj)
{
    gap_collect g = { .after = after };
    struct storage_query q = { .type = "state.restore", .limit = 10000 };
    mb_error e;
    mb_error_clear(&e);
    if (repl_log_query(n->repl, &q, gap_cb, &g, NULL, &e) != MB_OK || g.arr == NULL) {
        cJSON_Delete(g.arr);
        return 0;
    }
    cJSON_AddItemToObject(obj, "gaps", g.arr);
    return g.max_to;
}

static void vars_history(node *n, api_call *c)
{
    const char *name = api_call_param(c, 0);
    uint64_t limit, cursor, from_version;
    if (api_query_u64(c, "limit", 100, &limit) != MB_OK ||
        api_query_u64(c, "cursor", 0, &cursor) != MB_OK ||
        api_query_u64(c, "from_version", 0, &from_version) != MB_OK)
        return;
    if (limit == 0 || limit > 10000)
        limit = limit == 0 ? 100 : 10000;
    if (from_version > UINT64_MAX / REPL_SEQ_PER_ENTRY) {
        api_reply_error(c, MB_EINVAL, "from_version out of range");
        return;
    }
    const char *order = api_call_query(c, "order");
    int newest = order != NULL && strcmp(order, "desc") == 0;
    collect col = { .arr = cJSON_CreateArray() };
    uint64_t next = 0;
    mb_error e;
    mb_error_clear(&e);
    if (query_var_events(n, name, from_version * REPL_SEQ_PER_ENTRY, (size_t)limit, newest, cursor,
                         &col, &next, &e) != MB_OK) {
        cJSON_Delete(col.arr);
        api_reply_error(c, e.code, "history of \"%s\": %s", name, e.msg);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddItemToObject(j, "events", col.arr);
    cJSON_AddNumberToObject(j, "next_cursor", (double)next);
    add_gaps(n, from_version > 0 ? from_version - 1 : 0, j);
    api_reply_json(c, 200, j);
}

/* Answer with every version > from_version in order if there is one (or
 * `force`): an api_park_answer_fn. Returns 1 when the call was answered. */
static int watch_answer(node *n, api_call *c, const char *name, uint64_t from_version, int force,
                        const void *wake)
{
    (void)wake;
    collect col = { .arr = cJSON_CreateArray(), .last_version = from_version };
    mb_error e;
    mb_error_clear(&e);
    uint64_t next = 0;
    int rv = query_var_events(n, name, (from_version + 1) * REPL_SEQ_PER_ENTRY, WATCH_MAX_EVENTS, 0,
                              0, &col, &next, &e);
    if (rv != MB_OK) {
        cJSON_Delete(col.arr);
        api_reply_error(c, e.code, "watch \"%s\": %s", name, e.msg);
        return 1;
    }
    cJSON *j = cJSON_CreateObject();
    /* Versions lost in a gap cannot be delivered: say so at once, and move
     * the watch past the gap (the client re-reads the variable). */
    uint64_t gap_to = add_gaps(n, from_version, j);
    if (col.n == 0 && !force && gap_to == 0) {
        cJSON_Delete(col.arr);
        cJSON_Delete(j);
        return 0;
    }
    if (gap_to > col.last_version && next == 0)
        col.last_version = gap_to;
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddItemToObject(j, "events", col.arr);
    cJSON_AddNumberToObject(j, "last_version", (double)col.last_version);
    cJSON_AddBoolToObject(j, "more", next != 0);
    api_reply_json(c, 200, j);
    return 1;
}

void api_vars_notify(node *n, const char *name, uint64_t version)
{
    (void)version;
    api_park_wake(&n->var_watches, n, name, NULL);
}

static void vars_watch(node *n, api_call *c)
{
    uint64_t from, timeout;
    if (api_query_u64(c, "from_version", 0, &from) != MB_OK ||
        api_park_timeout(c, &timeout) != MB_OK)
        return;
    if (from > (UINT64_MAX / REPL_SEQ_PER_ENTRY) - 2) {
        api_reply_error(c, MB_EINVAL, "from_version out of range");
        return;
    }
    api_park_watch(&n->var_watches, n, c, api_call_param(c, 0), from, timeout, watch_answer);
}

static const api_route routes[] = {
    { "POST", "/v1/vars", vars_define, API_BODY, "vars_define" },
    { "GET", "/v1/vars", vars_list, 0, "vars_list" },
    { "GET", "/v1/vars/{name}/history", vars_history, 0, "vars_history" },
    { "GET", "/v1/vars/{name}/watch", vars_watch, 0, "vars_watch" },
    { "POST", "/v1/vars/{name}/cas", vars_cas, API_BODY, "vars_cas" },
    { "GET", "/v1/vars/{name}", vars_get, 0, "vars_get" },
    { "PUT", "/v1/vars/{name}", vars_set, API_BODY, "vars_set" },
    { "DELETE", "/v1/vars/{name}", vars_delete, 0, "vars_delete" },
};

void api_vars_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
