/* cJSON renderers of the management API results (see <mabeam/agent_json.h>). */
#include <stdio.h>

#include <mabeam/agent_json.h>

static int add_id(cJSON *o, const char *key, mb_agent_id id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)id);
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

cJSON *mb_agent_info_json(const mb_agent_info *in)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON *u = NULL;
    int ok = add_id(o, "id", in->id) && cJSON_AddStringToObject(o, "kind", in->kind) &&
             cJSON_AddNumberToObject(o, "version", in->version) &&
             cJSON_AddStringToObject(o, "name", in->name) &&
             cJSON_AddStringToObject(o, "namespace", in->ns) &&
             cJSON_AddStringToObject(o, "status",
                                     in->status == MB_AGENT_EXITING ? "exiting" : "running") &&
             add_id(o, "parent", in->parent) &&
             cJSON_AddNumberToObject(o, "restarts", in->usage.restarts) &&
             cJSON_AddNumberToObject(o, "mailbox_len", in->usage.mailbox_len) &&
             cJSON_AddStringToObject(o, "last_error",
                                     in->last_error ? mb_errname(in->last_error) : "") &&
             cJSON_AddStringToObject(o, "last_error_msg", in->last_error_msg) &&
             cJSON_AddBoolToObject(o, "port", in->is_port) &&
             cJSON_AddNumberToObject(o, "os_pid", in->os_pid) &&
             (u = cJSON_AddObjectToObject(o, "usage")) != NULL &&
             cJSON_AddNumberToObject(u, "messages", (double)in->usage.messages) &&
             cJSON_AddNumberToObject(u, "memory_bytes", (double)in->usage.memory_bytes) &&
             cJSON_AddNumberToObject(u, "cpu_ns", (double)in->usage.cpu_ns);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *mb_agent_list_json(const mb_agent_info *infos, size_t n, size_t total)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = NULL;
    if (o == NULL || !cJSON_AddNumberToObject(o, "total", (double)total) ||
        (arr = cJSON_AddArrayToObject(o, "agents")) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *a = mb_agent_info_json(&infos[i]);
        if (a == NULL) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToArray(arr, a);
    }
    return o;
}

cJSON *mb_kind_list_json(const mb_kind_info *kinds, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = NULL;
    if (o == NULL || (arr = cJSON_AddArrayToObject(o, "kinds")) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *k = cJSON_CreateObject();
        if (k == NULL || !cJSON_AddStringToObject(k, "name", kinds[i].name) ||
            !cJSON_AddNumberToObject(k, "version", kinds[i].version) ||
            !cJSON_AddStringToObject(k, "path", kinds[i].path) ||
            !cJSON_AddNumberToObject(k, "agents", (double)kinds[i].agents)) {
            cJSON_Delete(k);
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToArray(arr, k);
    }
    return o;
}
