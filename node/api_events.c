/* node/api_events.c: GET /v1/events — query the node-local or the cluster
 * event log with filters and cursor paging (docs/api.md). Loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/node.h"
#include "node/node_log.h"
#include "node/replication.h"

#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT     10000

static int add_event_cb(const storage_event *ev, void *arg)
{
    cJSON *list = arg;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return 1;
    cJSON_AddNumberToObject(o, "seq", (double)ev->seq);
    cJSON_AddStringToObject(o, "type", ev->type);
    cJSON_AddStringToObject(o, "subject", ev->subject);
    cJSON_AddNumberToObject(o, "time_ms", (double)ev->time_ms);
    char iso[40];
    time_t secs = (time_t)(ev->time_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) != NULL) {
        size_t k = strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(iso + k, sizeof(iso) - k, ".%03dZ", (int)(ev->time_ms % 1000));
        cJSON_AddStringToObject(o, "time", iso);
    }
    cJSON *payload = NULL;
    if (ev->payload_len > 0)
        payload = cJSON_ParseWithLength(ev->payload, ev->payload_len);
    if (payload != NULL) {
        cJSON_AddItemToObject(o, "payload", payload);
    } else if (ev->payload_len > 0) {
        /* Not JSON: hand it out as text, bounded. */
        size_t n = ev->payload_len > 4096 ? 4096 : ev->payload_len;
        char *text = malloc(n + 1);
        if (text != NULL) {
            memcpy(text, ev->payload, n);
            text[n] = '\0';
        }
        cJSON_AddStringToObject(o, "payload_text", text != NULL ? text : "");
        free(text);
    } else {
        cJSON_AddNullToObject(o, "payload");
    }
    cJSON_AddItemToArray(list, o);
    return 0;
}

static void events(node *n, api_call *c)
{
    struct storage_query q = { 0 };
    uint64_t limit, cursor;
    int64_t since, until;
    if (api_query_u64(c, "from_seq", 0, &q.from_seq) != MB_OK ||
        api_query_u64(c, "to_seq", 0, &q.to_seq) != MB_OK ||
        api_query_i64(c, "since", 0, &since) != MB_OK ||
        api_query_i64(c, "until", 0, &until) != MB_OK ||
        api_query_u64(c, "limit", EVENTS_DEFAULT_LIMIT, &limit) != MB_OK ||
        api_query_u64(c, "cursor", 0, &cursor) != MB_OK)
        return;
    if (limit == 0 || limit > EVENTS_MAX_LIMIT) {
        api_reply_error(c, MB_EINVAL, "limit must be between 1 and %d", EVENTS_MAX_LIMIT);
        return;
    }
    if (since < 0 || until < 0) {
        api_reply_error(c, MB_EINVAL, "since and until are milliseconds since the epoch (>= 0)");
        return;
    }
    if (q.to_seq != 0 && q.from_seq > q.to_seq) {
        api_reply_error(c, MB_EINVAL, "from_seq is after to_seq");
        return;
    }
    const char *order = api_call_query(c, "order");
    if (order == NULL || strcmp(order, "asc") == 0) {
        q.newest_first = 0;
    } else if (strcmp(order, "desc") == 0) {
        q.newest_first = 1;
    } else {
        api_reply_error(c, MB_EINVAL, "order must be asc or desc, got '%.32s'", order);
        return;
    }
    const char *log = api_call_query(c, "log");
    int cluster;
    if (log == NULL || strcmp(log, "local") == 0) {
        cluster = 0;
    } else if (strcmp(log, "cluster") == 0) {
        cluster = 1;
    } else {
        api_reply_error(c, MB_EINVAL, "log must be local or cluster, got '%.32s'", log);
        return;
    }
    const char *type = api_call_query(c, "type");
    const char *subject = api_call_query(c, "subject");
    if (type != NULL && strlen(type) > STORAGE_TYPE_MAX) {
        api_reply_error(c, MB_EINVAL, "type is longer than %d bytes", STORAGE_TYPE_MAX);
        return;
    }
    if (subject != NULL && strlen(subject) > STORAGE_SUBJECT_MAX) {
        api_reply_error(c, MB_EINVAL, "subject is longer than %d bytes", STORAGE_SUBJECT_MAX);
        return;
    }
    q.type = type != NULL && type[0] != '\0' ? type : NULL;
    q.subject = subject;
    q.from_time_ms = since;
    q.to_time_ms = until;
    q.limit = (size_t)limit;
    q.cursor = cursor;

    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "events");
    uint64_t next = 0;
    mb_error e;
    mb_error_clear(&e);
    int rv = cluster && n->repl != NULL
                 ? repl_log_query(n->repl, &q, add_event_cb, list, &next, &e)
                 : node_log_query(n->store, cluster, &q, add_event_cb, list, &next, &e);
    if (rv != MB_OK) {
        cJSON_Delete(root);
        api_reply_error_status(c, http_status_for_err(rv), rv, e.msg);
        return;
    }
    if (next != 0) {
        char cur[32];
        snprintf(cur, sizeof(cur), "%llu", (unsigned long long)next);
        cJSON_AddStringToObject(root, "next_cursor", cur);
    } else {
        cJSON_AddNullToObject(root, "next_cursor");
    }
    cJSON_AddStringToObject(root, "log", cluster ? "cluster" : "local");
    api_reply_json(c, 200, root);
}

static const api_route routes[] = {
    { "GET", "/v1/events", events, 0, "events" },
};

void api_events_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
