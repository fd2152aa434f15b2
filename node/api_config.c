/* node/api_config.c: configuration routes — GET /v1/config,
 * GET /v1/config/watch (long-poll), GET /v1/config/{key},
 * PUT /v1/config/{key} (docs/api.md). Control loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"

static void reply_raw_json(api_call *c, int status, char *text)
{
    if (text == NULL) {
        api_reply_error(c, MB_ENOMEM, "render configuration: out of memory");
        return;
    }
    api_reply_raw(c, status, "application/json", text, strlen(text));
    free(text);
}

static void config_all(node *n, api_call *c)
{
    reply_raw_json(c, 200, nc_config_to_json(n->cfg));
}

static const nc_config_key *find_key(api_call *c)
{
    const char *name = api_call_param(c, 0);
    const nc_config_key *k = nc_config_key_find(name);
    if (k == NULL) {
        const nc_config_key *s = nc_config_key_suggest(name);
        if (s != NULL)
            api_reply_error(c, MB_ENOTFOUND,
                            "unknown configuration key '%.64s' (did you mean '%s'?)", name,
                            s->name);
        else
            api_reply_error(c, MB_ENOTFOUND, "unknown configuration key '%.64s'", name);
    }
    return k;
}

/* {"key":..,"value":..,"type":..,"source":..,"reloadable":..,"secret":..,"version":..} */
static cJSON *key_json(node *n, const nc_config_key *k)
{
    cJSON *j = cJSON_CreateObject();
    char *v = nc_config_dup_text(n->cfg, k->id);
    cJSON_AddStringToObject(j, "key", k->name);
    if (k->secret)
        cJSON_AddStringToObject(j, "value", v != NULL && v[0] != '\0' ? "<redacted>" : "");
    else if (k->type == NC_CT_INT)
        cJSON_AddNumberToObject(j, "value", (double)nc_config_int(n->cfg, k->id));
    else if (k->type == NC_CT_BOOL)
        cJSON_AddBoolToObject(j, "value", nc_config_bool(n->cfg, k->id));
    else
        cJSON_AddStringToObject(j, "value", v != NULL ? v : "");
    if (v != NULL) {
        memset(v, 0, strlen(v));
        free(v);
    }
    cJSON_AddStringToObject(j, "type", nc_config_type_name(k->type));
    cJSON_AddStringToObject(j, "source", nc_config_source_name(nc_config_source_of(n->cfg, k->id)));
    cJSON_AddBoolToObject(j, "reloadable", k->reloadable);
    cJSON_AddBoolToObject(j, "secret", k->secret);
    cJSON_AddStringToObject(j, "description", k->description != NULL ? k->description : "");
    cJSON_AddNumberToObject(j, "version", (double)nc_config_version(n->cfg));
    return j;
}

static void config_get(node *n, api_call *c)
{
    const nc_config_key *k = find_key(c);
    if (k != NULL)
        api_reply_json(c, 200, key_json(n, k));
}

static void config_set(node *n, api_call *c)
{
    const nc_config_key *k = find_key(c);
    if (k == NULL)
        return;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(api_call_json(c), "value");
    char text[4096];
    if (v == NULL) {
        api_reply_error(c, MB_EINVAL, "request body must be {\"value\": ...}");
        return;
    }
    if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= sizeof(text)) {
            api_reply_error(c, MB_ETOOBIG, "value longer than %zu bytes", sizeof(text) - 1);
            return;
        }
        snprintf(text, sizeof(text), "%s", v->valuestring);
    } else if (cJSON_IsBool(v)) {
        snprintf(text, sizeof(text), "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(long long)d) {
            api_reply_error(c, MB_EINVAL, "'%s' takes an integer or a string, got %g", k->name, d);
            return;
        }
        snprintf(text, sizeof(text), "%lld", (long long)d);
    } else {
        api_reply_error(c, MB_EINVAL, "'value' must be a string, a number or a boolean");
        return;
    }
    if (!k->reloadable) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "'%s' is not reloadable: set it in the config file, environment or flags and "
                 "restart the node",
                 k->name);
        api_reply_error_status(c, 409, MB_EPERM, msg);
        return;
    }
    uint64_t before = nc_config_version(n->cfg);
    mb_error e;
    mb_error_clear(&e);
    int rv = nc_config_set(n->cfg, k->name, text, &e);
    if (rv != MB_OK) {
        api_reply_error_status(c, rv == MB_EPERM ? 409 : http_status_for_err(rv), rv, e.msg);
        return;
    }
    node_config_changed(n);
    cJSON *j = key_json(n, k);
    cJSON_AddBoolToObject(j, "changed", nc_config_version(n->cfg) != before);
    api_reply_json(c, 200, j);
}

/* An api_park_answer_fn: answer with the changes after from_version (or
 * `force`, even when there are none); 1 if answered. */
static int watch_answer(node *n, api_call *c, const char *key, uint64_t from_version, int force,
                        const void *wake)
{
    (void)key;
    (void)wake;
    if (!force && nc_config_version(n->cfg) <= from_version)
        return 0;
    char *json = NULL;
    int rv = nc_config_changes_json(n->cfg, from_version, &json);
    if (rv == MB_ERANGE) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "changes after version %llu are no longer kept; re-read GET /v1/config and "
                 "watch from its version",
                 (unsigned long long)from_version);
        api_reply_error_status(c, 410, MB_ERANGE, msg);
        return 1;
    }
    if (rv != MB_OK) {
        api_reply_error(c, rv, "read configuration changes");
        return 1;
    }
    reply_raw_json(c, 200, json);
    return 1;
}

static void config_watch(node *n, api_call *c)
{
    uint64_t from;
    uint64_t timeout;
    if (api_query_u64(c, "from_version", nc_config_version(n->cfg), &from) != MB_OK ||
        api_park_timeout(c, &timeout) != MB_OK)
        return;
    if (from > nc_config_version(n->cfg)) {
        api_reply_error(c, MB_ERANGE,
                        "from_version %llu is ahead of the configuration (version %llu)",
                        (unsigned long long)from, (unsigned long long)nc_config_version(n->cfg));
        return;
    }
    api_park_watch(&n->config_watches, n, c, NULL, from, timeout, watch_answer);
}

void api_config_notify_watchers(node *n)
{
    api_park_wake(&n->config_watches, n, NULL, NULL);
}

static const api_route routes[] = {
    { "GET", "/v1/config", config_all, 0, "config" },
    { "GET", "/v1/config/watch", config_watch, 0, "config_watch" },
    { "GET", "/v1/config/{key}", config_get, 0, "config_get" },
    { "PUT", "/v1/config/{key}", config_set, API_BODY, "config_set" },
};

void api_config_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
