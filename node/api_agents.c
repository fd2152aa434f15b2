/* node/api_agents.c: the agent API — spawn, list, inspect, stop, kill,
 * restart and message agents; list and load kinds; pools (docs/api.md,
 * "Agents"). Loop thread; the runtime calls are thread-safe and short
 * (a spawn waits for the agent's init, a port agent's for its `ready`). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mabeam/agent_json.h>

#include "agents/port_proto.h" /* base64, fuzzed with the port protocol */
#include "node/api_mailbox.h"
#include "node/node.h"
#include "node/placement.h"
#include "node/replication.h"
#include "node/services.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT     1000
#define SPAWN_CONFIG_MAX   (1u << 20)
#define MESSAGE_MAX        (1u << 20)

static mb_runtime *runtime_or_reply(node *n, api_call *c)
{
    if (n->services == NULL || node_services_runtime(n->services) == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "the agent runtime is not running on this node");
        return NULL;
    }
    return node_services_runtime(n->services);
}

static void hex_id(mb_agent_id id, char *buf, size_t size)
{
    snprintf(buf, size, "%016llx", (unsigned long long)id);
}

/* "0001000000000003" (1..16 hex digits) -> id. */
static int parse_hex_id(const char *s, mb_agent_id *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 16)
        return MB_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int c = tolower((unsigned char)s[i]);
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return MB_EINVAL;
    }
    if (v == 0)
        return MB_EINVAL;
    *out = v;
    return MB_OK;
}

/* The {id} segment: a hex agent id, or a registered name (in ?namespace=,
 * default "default"). Answers 404 and returns non-zero when neither. */
static int resolve_agent(node *n, api_call *c, const char *ref, mb_agent_id *out)
{
    if (strlen(ref) == 16 && parse_hex_id(ref, out) == MB_OK)
        return MB_OK;
    const char *ns = api_call_query(c, "namespace");
    if (node_services_lookup(n->services, ns != NULL ? ns : "default", ref, out) == MB_OK)
        return MB_OK;
    if (parse_hex_id(ref, out) == MB_OK)
        return MB_OK;
    api_reply_error(c, MB_ENOAGENT,
                    "no agent '%.80s' on this node (neither an id nor a name in "
                    "namespace '%.63s')",
                    ref, ns != NULL ? ns : "default");
    return MB_ENOAGENT;
}

static void reply_info(api_call *c, int status, mb_runtime *rt, mb_agent_id id)
{
    mb_agent_info info;
    char hex[24];
    hex_id(id, hex, sizeof(hex));
    if (mb_runtime_agent_info(rt, id, &info) != MB_OK) {
        /* Ended already (e.g. init then a stop): the id is still the answer. */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", hex);
        cJSON_AddStringToObject(o, "status", "ended");
        api_reply_json(c, status, o);
        return;
    }
    cJSON *o = mb_agent_info_json(&info);
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    api_reply_json(c, status, o);
}

/* ---- spawn ---- */

static int parse_restart(const char *s, int *out)
{
    if (strcmp(s, "permanent") == 0)
        *out = MB_RESTART_PERMANENT;
    else if (strcmp(s, "transient") == 0)
        *out = MB_RESTART_TRANSIENT;
    else if (strcmp(s, "temporary") == 0)
        *out = MB_RESTART_TEMPORARY;
    else
        return MB_EINVAL;
    return MB_OK;
}

/* A JSON value handed on as agent config: a string as is, anything else
 * as compact JSON text. NULL/absent -> "" (returns a malloc'd string). */
static char *config_text(const cJSON *v)
{
    if (v == NULL || cJSON_IsNull(v))
        return strdup("");
    if (cJSON_IsString(v))
        return strdup(v->valuestring);
    return cJSON_PrintUnformatted(v);
}

/* Build the port kind's config from "cmd" and the limits. */
static char *port_config(const cJSON *cmd, const cJSON *config, const cJSON *limits)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddItemToObject(o, "cmd", cJSON_Duplicate(cmd, 1));
    if (config != NULL && !cJSON_IsNull(config))
        cJSON_AddItemToObject(o, "config", cJSON_Duplicate(config, 1));
    static const char *const keys[] = { "mem_mb", "cpu_s", "reply_ms" };
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = limits != NULL ? cJSON_GetObjectItemCaseSensitive(limits, keys[i]) : NULL;
        if (v != NULL)
            cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, 1));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static const char *opt_string(api_call *c, const cJSON *body, const char *key, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        api_reply_error(c, MB_EINVAL, "'%s' must be a string", key);
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

/* Spawn from a request body (agents and pools). Answers the call. */
static void spawn_from(node *n, api_call *c, mb_runtime *rt, const cJSON *body, const char *kind,
                       char *config)
{
    int bad = 0;
    const char *name = opt_string(c, body, "name", &bad);
    const char *ns = bad ? NULL : opt_string(c, body, "namespace", &bad);
    const char *sup = bad ? NULL : opt_string(c, body, "supervisor", &bad);
    const char *restart = bad ? NULL : opt_string(c, body, "restart", &bad);
    const char *caps[64];
    size_t ncaps = 0;
    mb_spawn_opts o = {
        .kind = kind, .config = config, .name = name, .ns = ns, .restart = MB_RESTART_TRANSIENT
    };
    if (bad)
        goto out;
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(body, "capabilities");
    if (jc != NULL) {
        const cJSON *it;
        if (!cJSON_IsArray(jc) || cJSON_GetArraySize(jc) > 64) {
            api_reply_error(c, MB_EINVAL, "'capabilities' must be an array of at most 64 strings");
            goto out;
        }
        cJSON_ArrayForEach(it, jc)
        {
            if (!cJSON_IsString(it) || it->valuestring[0] == '\0' || strlen(it->valuestring) > 63) {
                api_reply_error(c, MB_EINVAL, "each capability must be a string of 1..63 bytes");
                goto out;
            }
            caps[ncaps++] = it->valuestring;
        }
    }
    o.caps = caps;
    o.ncaps = ncaps;
    if (restart != NULL && parse_restart(restart, &o.restart) != MB_OK) {
        api_reply_error(c, MB_EINVAL,
                        "'restart' must be permanent, transient or temporary, got '%.32s'",
                        restart);
        goto out;
    }
    if (sup == NULL || strcmp(sup, "root") == 0) {
        o.supervisor = node_services_root(n->services);
        if (o.supervisor == 0) {
            api_reply_error(c, MB_ESTATE,
                            "the root supervisor has ended (restart intensity exceeded); spawn "
                            "with \"supervisor\": \"none\" or restart the node");
            goto out;
        }
    } else if (strcmp(sup, "none") != 0) {
        if (resolve_agent(n, c, sup, &o.supervisor) != MB_OK)
            goto out;
        mb_agent_info si;
        if (mb_runtime_agent_info(rt, o.supervisor, &si) != MB_OK) {
            api_reply_error(c, MB_ENOAGENT, "supervisor %016llx is not running on this node",
                            (unsigned long long)o.supervisor);
            goto out;
        }
        if (strcmp(si.kind, "supervisor") != 0) {
            api_reply_error(c, MB_EINVAL, "agent %016llx is a '%s', not a supervisor",
                            (unsigned long long)o.supervisor, si.kind);
            goto out;
        }
    }
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(body, "limits");
    if (limits != NULL && !cJSON_IsObject(limits)) {
        api_reply_error(c, MB_EINVAL, "'limits' must be an object");
        goto out;
    }
    const cJSON *mm = limits ? cJSON_GetObjectItemCaseSensitive(limits, "mailbox_max") : NULL;
    if (mm != NULL) {
        if (!cJSON_IsNumber(mm) || mm->valuedouble < 0 || mm->valuedouble > 4294967295.0) {
            api_reply_error(c, MB_EINVAL, "'limits.mailbox_max' must be 0..4294967295");
            goto out;
        }
        o.mailbox_max = (uint32_t)mm->valuedouble;
    }
    const cJSON *ov = limits ? cJSON_GetObjectItemCaseSensitive(limits, "overflow") : NULL;
    if (ov != NULL) {
        if (cJSON_IsString(ov) && strcmp(ov->valuestring, "reject") == 0) {
            o.overflow = MB_OVERFLOW_REJECT;
        } else if (cJSON_IsString(ov) && strcmp(ov->valuestring, "crash") == 0) {
            o.overflow = MB_OVERFLOW_CRASH;
        } else {
            api_reply_error(c, MB_EINVAL, "'limits.overflow' must be reject or crash");
            goto out;
        }
    }

    mb_agent_id id;
    mb_error e;
    mb_error_clear(&e);
    int rv = mb_runtime_spawn(rt, &o, &id, &e);
    if (rv != MB_OK) {
        /* The agent's own failure (init crashed, bad config, port program
         * missing) is the client's input: a 4xx, never a 5xx. */
        int status = http_status_for_err(rv);
        if (status >= 500 && rv != MB_ENOMEM && rv != MB_ECLOSED && rv != MB_ENOTSUP)
            status = 422;
        char msg[520]; /* the error (< 256) and the program name (<= 200) fit */
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(body, "cmd");
        const char *text = e.msg[0] != '\0' ? e.msg : mb_strerror(rv);
        if (cJSON_IsArray(cmd) && cJSON_IsString(cJSON_GetArrayItem(cmd, 0)) &&
            (rv == MB_ENOTFOUND || rv == MB_EPERM))
            snprintf(msg, sizeof(msg),
                     "%s: cannot run port program '%.200s' (not found or not "
                     "executable)",
                     text, cJSON_GetArrayItem(cmd, 0)->valuestring);
        else
            snprintf(msg, sizeof(msg), "%s", text);
        api_reply_error_status(c, status, rv, msg);
        goto out;
    }
    reply_info(c, 201, rt, id);
out:
    free(config);
}

/* ---- cluster agents (placement): replicated, placed on a node ---- */

static void cluster_spawn_done(node *n, api_call *c, const consensus_result *res, const char *json,
                               void *arg)
{
    (void)json;
    (void)arg;
    if (res->code != MB_OK) {
        api_reply_error(c, res->code, "%s", res->msg[0] ? res->msg : mb_strerror(res->code));
        return;
    }
    const consensus_agent *a = NULL;
    const cJSON *body = api_call_json(c);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "__cluster_id");
    if (cJSON_IsString(name))
        a = consensus_sm_agent_get(repl_sm(n->repl), name->valuestring);
    cJSON *o = a != NULL ? placement_agent_json(a) : cJSON_CreateObject();
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cJSON_AddNumberToObject(o, "version", (double)res->version);
    api_reply_json(c, 201, o);
}

static int kind_known(mb_runtime *rt, const char *kind)
{
    mb_kind_info kinds[128];
    size_t k = mb_runtime_kind_list(rt, kinds, 128);
    for (size_t i = 0; i < k && i < 128; i++)
        if (strcmp(kinds[i].name, kind) == 0)
            return 1;
    return 0;
}

/* Spawn a cluster agent: an AGENT_PLACE command on the node chosen by
 * "placement" (any, node:N, spread:load, spread:cap=X). "name" is its
 * cluster id (default <kind>-<16 hex>). Answers 201 once committed and
 * applied here; the target node starts it (status placed -> running). */
static void cluster_spawn(node *n, api_call *c, mb_runtime *rt, const char *kind, char *config)
{
    cJSON *body = (cJSON *)api_call_json(c);
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(body, "placement");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(body, "name");
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(body, "capabilities");
    char *caps[CONSENSUS_CAPS_MAX];
    uint32_t ncaps = 0;
    char cap[CONSENSUS_ID_MAX + 1], id[CONSENSUS_ID_MAX + 1];
    placement_mode mode;
    uint64_t want = 0, target = 0;
    mb_error e;
    mb_error_clear(&e);
    if (n->placement == NULL || n->repl == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "cluster placement is not running on this node");
        goto out;
    }
    if (!cJSON_IsString(pl) ||
        placement_parse(pl->valuestring, &mode, &want, cap, sizeof(cap), &e) != MB_OK) {
        api_reply_error(c, MB_EINVAL, "%s",
                        e.msg[0] ? e.msg
                                 : "'placement' must be a string: any, node:N, "
                                   "spread:load or spread:cap=X");
        goto out;
    }
    if (!kind_known(rt, kind)) {
        api_reply_error_status(c, 422, MB_ENOTFOUND, "unknown agent kind (see GET /v1/kinds)");
        goto out;
    }
    if (nm != NULL && !cJSON_IsNull(nm)) {
        if (!cJSON_IsString(nm) || strlen(nm->valuestring) > CONSENSUS_ID_MAX ||
            nm->valuestring[0] == '\0') {
            api_reply_error(c, MB_EINVAL, "'name' (the cluster id) must be 1..%d bytes",
                            CONSENSUS_ID_MAX);
            goto out;
        }
        snprintf(id, sizeof(id), "%s", nm->valuestring);
    } else {
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
            rnd = (uint64_t)node_wall_ms() ^ ((uint64_t)n->node_id << 48);
        snprintf(id, sizeof(id), "%.60s-%016llx", kind, (unsigned long long)rnd);
    }
    if (jc != NULL) {
        const cJSON *it;
        if (!cJSON_IsArray(jc) || cJSON_GetArraySize(jc) > CONSENSUS_CAPS_MAX) {
            api_reply_error(c, MB_EINVAL, "'capabilities' must be an array of at most %d strings",
                            CONSENSUS_CAPS_MAX);
            goto out;
        }
        cJSON_ArrayForEach(it, jc)
        {
            if (!cJSON_IsString(it) || it->valuestring[0] == '\0' || strlen(it->valuestring) > 63) {
                api_reply_error(c, MB_EINVAL, "each capability must be a string of 1..63 bytes");
                goto out;
            }
            caps[ncaps++] = it->valuestring;
        }
    }
    const consensus_sm *sm = repl_sm(n->repl);
    int rv = placement_choose(n->placement, sm, mode, want, cap, &target, &e);
    if (rv != MB_OK) {
        api_reply_error(c, rv, "%s", e.msg);
        goto out;
    }
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                          .by = "api",
                          .agent_id = id,
                          .agent_kind = (char *)kind,
                          .agent_config = config,
                          .agent_node = target,
                          .agent_caps = caps,
                          .n_agent_caps = ncaps };
    if ((rv = consensus_sm_check(sm, &cmd, &e)) != MB_OK) {
        api_reply_error(c, rv, "%s", e.msg);
        goto out;
    }
    /* Remember the id for the answer (the body is the call's). */
    cJSON_DeleteItemFromObjectCaseSensitive(body, "__cluster_id");
    cJSON_AddStringToObject(body, "__cluster_id", id);
    repl_write(n->repl, c, &cmd, cluster_spawn_done, NULL);
out:
    free(config);
}

static void agents_spawn(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    if (rt == NULL)
        return;
    const cJSON *body = api_call_json(c);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(body, "kind");
    if (!cJSON_IsString(kind) || kind->valuestring[0] == '\0') {
        api_reply_error(c, MB_EINVAL, "'kind' (a kind name, see GET /v1/kinds) is required");
        return;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(body, "config");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(body, "cmd");
    char *config;
    if (cmd != NULL) {
        const cJSON *it;
        int ok = strcmp(kind->valuestring, "port") == 0 && cJSON_IsArray(cmd) &&
                 cJSON_GetArraySize(cmd) > 0;
        cJSON_ArrayForEach(it, cmd) ok = ok && cJSON_IsString(it);
        if (!ok) {
            api_reply_error(c, MB_EINVAL,
                            "'cmd' (kind port only) must be a non-empty array of "
                            "strings: [program, args...]");
            return;
        }
        config = port_config(cmd, cfg, cJSON_GetObjectItemCaseSensitive(body, "limits"));
    } else {
        config = config_text(cfg);
    }
    if (config == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    if (strlen(config) > SPAWN_CONFIG_MAX) {
        free(config);
        api_reply_error(c, MB_ETOOBIG, "config is larger than %u bytes", SPAWN_CONFIG_MAX);
        return;
    }
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(body, "placement");
    if (pl != NULL && !cJSON_IsNull(pl) &&
        !(cJSON_IsString(pl) && strcmp(pl->valuestring, "local") == 0)) {
        cluster_spawn(n, c, rt, kind->valuestring, config);
        return;
    }
    spawn_from(n, c, rt, body, kind->valuestring, config);
}

/* ---- list ---- */

static int cmp_info(const void *a, const void *b)
{
    const mb_agent_info *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void list_agents(node *n, api_call *c, const char *force_kind)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    if (rt == NULL)
        return;
    uint64_t limit, offset;
    if (api_query_u64(c, "limit", LIST_DEFAULT_LIMIT, &limit) != MB_OK ||
        api_query_u64(c, "offset", 0, &offset) != MB_OK)
        return;
    if (limit == 0 || limit > LIST_MAX_LIMIT) {
        api_reply_error(c, MB_EINVAL, "limit must be between 1 and %d", LIST_MAX_LIMIT);
        return;
    }
    const char *kind = force_kind != NULL ? force_kind : api_call_query(c, "kind");
    const char *status = api_call_query(c, "status");
    const char *prefix = api_call_query(c, "name");
    const char *cap = api_call_query(c, "capability");
    const char *ns = api_call_query(c, "namespace");
    int want_status = -1;
    if (status != NULL) {
        if (strcmp(status, "running") == 0) {
            want_status = MB_AGENT_RUNNING;
        } else if (strcmp(status, "exiting") == 0) {
            want_status = MB_AGENT_EXITING;
        } else {
            api_reply_error(c, MB_EINVAL, "status must be running or exiting, got '%.32s'", status);
            return;
        }
    }
    mb_agent_id *capids = NULL;
    size_t ncap = 0;
    if (cap != NULL) {
        size_t total =
            node_services_with_cap(n->services, ns != NULL ? ns : "default", cap, NULL, 0);
        capids = calloc(total + 1, sizeof(*capids));
        if (capids == NULL) {
            api_reply_error(c, MB_ENOMEM, "out of memory");
            return;
        }
        ncap = node_services_with_cap(n->services, ns != NULL ? ns : "default", cap, capids,
                                      total + 1);
        if (ncap > total + 1)
            ncap = total + 1;
    }
    mb_agent_filter f = { .kind = kind != NULL && kind[0] != '\0' ? kind : NULL, .ns = ns };
    size_t cap_n = mb_runtime_list(rt, &f, NULL, 0) + 64;
    mb_agent_info *all = calloc(cap_n, sizeof(*all));
    if (all == NULL) {
        free(capids);
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    size_t got = mb_runtime_list(rt, &f, all, cap_n);
    if (got > cap_n)
        got = cap_n;
    size_t m = 0;
    for (size_t i = 0; i < got; i++) {
        if (want_status >= 0 && all[i].status != want_status)
            continue;
        if (prefix != NULL && strncmp(all[i].name, prefix, strlen(prefix)) != 0)
            continue;
        if (cap != NULL) {
            int found = 0;
            for (size_t j = 0; j < ncap && !found; j++)
                found = capids[j] == all[i].id;
            if (!found)
                continue;
        }
        all[m++] = all[i];
    }
    free(capids);
    qsort(all, m, sizeof(*all), cmp_info);
    size_t start = offset < m ? (size_t)offset : m;
    size_t count = m - start < limit ? m - start : (size_t)limit;
    cJSON *o = mb_agent_list_json(all + start, count, m);
    free(all);
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    if (start + count < m)
        cJSON_AddNumberToObject(o, "next_offset", (double)(start + count));
    else
        cJSON_AddNullToObject(o, "next_offset");
    api_reply_json(c, 200, o);
}

static void agents_list(node *n, api_call *c)
{
    list_agents(n, c, NULL);
}

/* ---- one agent ---- */

static void agent_get(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    mb_agent_id id;
    if (rt == NULL || resolve_agent(n, c, api_call_param(c, 0), &id) != MB_OK)
        return;
    mb_agent_info info;
    if (mb_runtime_agent_info(rt, id, &info) != MB_OK) {
        api_reply_error(c, MB_ENOAGENT, "no agent %016llx on this node", (unsigned long long)id);
        return;
    }
    cJSON *o = mb_agent_info_json(&info);
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    /* Size of its last stored checkpoint (GET .../checkpoint for the bytes). */
    char key[64];
    node_services_ckpt_key(id, key, sizeof(key));
    void *blob = NULL;
    size_t len = 0;
    mb_error e;
    if (storage_blob_get(n->store, key, &blob, &len, &e) == MB_OK)
        cJSON_AddNumberToObject(o, "checkpoint_bytes", (double)len);
    else
        cJSON_AddNullToObject(o, "checkpoint_bytes");
    free(blob);
    api_reply_json(c, 200, o);
}

static void agent_checkpoint(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    mb_agent_id id;
    if (rt == NULL || resolve_agent(n, c, api_call_param(c, 0), &id) != MB_OK)
        return;
    char key[64];
    node_services_ckpt_key(id, key, sizeof(key));
    void *blob = NULL;
    size_t len = 0;
    mb_error e;
    mb_error_clear(&e);
    int rv = storage_blob_get(n->store, key, &blob, &len, &e);
    if (rv == MB_ENOTFOUND) {
        api_reply_error(c, MB_ENOTFOUND, "agent %016llx has no stored checkpoint",
                        (unsigned long long)id);
        return;
    }
    if (rv != MB_OK) {
        api_reply_error_status(c, http_status_for_err(rv), rv, e.msg);
        return;
    }
    char *text = port_b64_encode(blob, len);
    free(blob);
    if (text == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    char hex[24];
    hex_id(id, hex, sizeof(hex));
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddNumberToObject(o, "bytes", (double)len);
    cJSON_AddStringToObject(o, "data_b64", text);
    free(text);
    api_reply_json(c, 200, o);
}

static void agent_action(node *n, api_call *c, const char *action,
                         int (*fn)(mb_runtime *, mb_agent_id))
{
    mb_runtime *rt = runtime_or_reply(n, c);
    mb_agent_id id;
    if (rt == NULL || resolve_agent(n, c, api_call_param(c, 0), &id) != MB_OK)
        return;
    int rv = fn(rt, id);
    if (rv != MB_OK) {
        if (rv == MB_ENOTFOUND || rv == MB_ENOAGENT)
            api_reply_error(c, MB_ENOAGENT, "%s: no agent %016llx on this node", action,
                            (unsigned long long)id);
        else
            api_reply_error(c, rv, "%s agent %016llx: %s", action, (unsigned long long)id,
                            mb_strerror(rv));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    char hex[24];
    hex_id(id, hex, sizeof(hex));
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddStringToObject(o, "action", action);
    api_reply_json(c, 202, o);
}

static void agent_stop(node *n, api_call *c)
{
    agent_action(n, c, "stop", mb_runtime_stop_agent);
}

static void agent_kill(node *n, api_call *c)
{
    agent_action(n, c, "kill", mb_runtime_kill_agent);
}

static void agent_restart(node *n, api_call *c)
{
    agent_action(n, c, "restart", mb_runtime_restart_agent);
}

static void agent_message(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    mb_agent_id id;
    if (rt == NULL || resolve_agent(n, c, api_call_param(c, 0), &id) != MB_OK)
        return;
    const cJSON *body = api_call_json(c);
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(body, "tag");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(body, "data_b64");
    const cJSON *json = cJSON_GetObjectItemCaseSensitive(body, "json");
    uint32_t t = 0;
    if (tag != NULL) {
        if (!cJSON_IsNumber(tag) || tag->valuedouble < 0 || tag->valuedouble > 4294967295.0 ||
            tag->valuedouble != (double)(uint32_t)tag->valuedouble) {
            api_reply_error(c, MB_EINVAL, "'tag' must be an integer 0..4294967295");
            return;
        }
        t = (uint32_t)tag->valuedouble;
    }
    if ((data != NULL) + (b64 != NULL) + (json != NULL) > 1) {
        api_reply_error(c, MB_EINVAL, "give at most one of 'data', 'data_b64', 'json'");
        return;
    }
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (data != NULL) {
        if (!cJSON_IsString(data)) {
            api_reply_error(c, MB_EINVAL, "'data' must be a string (or use 'json' / 'data_b64')");
            return;
        }
        bytes = (unsigned char *)strdup(data->valuestring);
        len = strlen(data->valuestring);
    } else if (b64 != NULL) {
        if (!cJSON_IsString(b64) ||
            port_b64_decode(b64->valuestring, strlen(b64->valuestring), &bytes, &len) != MB_OK) {
            api_reply_error(c, MB_EINVAL, "'data_b64' is not valid base64");
            return;
        }
    } else if (json != NULL) {
        bytes = (unsigned char *)cJSON_PrintUnformatted(json);
        len = bytes != NULL ? strlen((char *)bytes) : 0;
    } else {
        bytes = (unsigned char *)strdup("");
    }
    if (bytes == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    if (len > MESSAGE_MAX) {
        free(bytes);
        api_reply_error(c, MB_ETOOBIG, "message is larger than %u bytes", MESSAGE_MAX);
        return;
    }
    /* The sender: the node's "api" agent, or a one-shot reply agent when
     * the caller waits for the reply (node/api_mailbox.h). */
    uint64_t wait_ms = 0;
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(body, "wait_ms");
    if (wait != NULL &&
        (!cJSON_IsNumber(wait) || wait->valuedouble < 0 || wait->valuedouble > API_REPLY_MAX_MS ||
         wait->valuedouble != (double)(uint64_t)wait->valuedouble)) {
        free(bytes);
        api_reply_error(c, MB_EINVAL, "'wait_ms' must be an integer 0..%d", API_REPLY_MAX_MS);
        return;
    }
    if (wait != NULL)
        wait_ms = (uint64_t)wait->valuedouble;
    mb_agent_id from = MB_AGENT_NONE;
    api_reply_slot *slot = NULL;
    mb_error serr;
    mb_error_clear(&serr);
    mb_agent_info info;
    int rv = mb_runtime_agent_info(rt, id, &info) == MB_OK ? MB_OK : MB_ENOAGENT;
    if (rv == MB_OK)
        rv = wait_ms > 0 ? api_mailbox_open(n, &from, &slot, &serr)
                         : api_mailbox_sender(n, &from, &serr);
    if (rv != MB_OK && rv != MB_ENOAGENT) {
        free(bytes);
        api_reply_error(c, rv, "no sender for the message: %s", serr.msg);
        return;
    }
    if (rv == MB_OK)
        rv = mb_runtime_deliver(rt, from, id, t, bytes, len);
    free(bytes);
    if (rv != MB_OK && slot != NULL)
        api_mailbox_cancel(n, slot);
    else if (slot != NULL) {
        api_mailbox_wait(n, slot, c, wait_ms, id, t, len);
        return;
    }
    if (rv == MB_ENOAGENT || rv == MB_ENOTFOUND) {
        api_reply_error(c, MB_ENOAGENT,
                        "no agent %016llx on this node: it has ended or never "
                        "existed",
                        (unsigned long long)id);
        return;
    }
    if (rv != MB_OK) {
        api_reply_error(c, rv, "deliver to %016llx: %s", (unsigned long long)id, mb_strerror(rv));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    char hex[24];
    hex_id(id, hex, sizeof(hex));
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddNumberToObject(o, "tag", t);
    cJSON_AddNumberToObject(o, "bytes", (double)len);
    hex_id(from, hex, sizeof(hex));
    cJSON_AddStringToObject(o, "from", hex);
    api_reply_json(c, 202, o);
}

/* ---- kinds ---- */

static void reply_kinds(api_call *c, mb_runtime *rt, int status)
{
    mb_kind_info kinds[128];
    size_t n = mb_runtime_kind_list(rt, kinds, 128);
    cJSON *o = mb_kind_list_json(kinds, n < 128 ? n : 128);
    if (o == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    api_reply_json(c, status, o);
}

static void kinds_list(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    if (rt != NULL)
        reply_kinds(c, rt, 200);
}

static void kinds_load(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    if (rt == NULL)
        return;
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(api_call_json(c), "path");
    if (!cJSON_IsString(path) || path->valuestring[0] != '/' || strlen(path->valuestring) > 255) {
        api_reply_error(c, MB_EINVAL,
                        "'path' must be an absolute path to a kind library (.so) "
                        "of at most 255 bytes");
        return;
    }
    mb_error e;
    mb_error_clear(&e);
    int rv = mb_runtime_kind_load(rt, path->valuestring, &e);
    if (rv != MB_OK) {
        int status = http_status_for_err(rv);
        if (status >= 500 && rv != MB_ENOMEM)
            status = 422;
        api_reply_error_status(c, status, rv, e.msg[0] != '\0' ? e.msg : mb_strerror(rv));
        return;
    }
    NC_LOGKV(n->log, NC_LOG_INFO, "agents", "kind library loaded",
             NC_F_STR("path", path->valuestring));
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "path", path->valuestring);
    node_event(n, "agent.kind_loaded", path->valuestring, p);
    cJSON_Delete(p);
    reply_kinds(c, rt, 200);
}

/* ---- pools: agents of the built-in kind "pool" ---- */

static void pools_create(node *n, api_call *c)
{
    mb_runtime *rt = runtime_or_reply(n, c);
    if (rt == NULL)
        return;
    const cJSON *body = api_call_json(c);
    const cJSON *wk = cJSON_GetObjectItemCaseSensitive(body, "worker_kind");
    if (!cJSON_IsString(wk) || wk->valuestring[0] == '\0') {
        api_reply_error(c, MB_EINVAL, "'worker_kind' (the kind of the pool's workers) is required");
        return;
    }
    cJSON *pc = cJSON_CreateObject();
    cJSON_AddStringToObject(pc, "kind", wk->valuestring);
    const cJSON *wc = cJSON_GetObjectItemCaseSensitive(body, "config");
    char *wtext = config_text(wc);
    cJSON_AddStringToObject(pc, "config", wtext != NULL ? wtext : "");
    free(wtext);
    static const char *const keys[] = { "min", "max", "backlog", "idle_ms", "check_ms" };
    for (size_t i = 0; i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, keys[i]);
        if (v != NULL)
            cJSON_AddItemToObject(pc, keys[i], cJSON_Duplicate(v, 1));
    }
    char *config = cJSON_PrintUnformatted(pc);
    cJSON_Delete(pc);
    if (config == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    spawn_from(n, c, rt, body, "pool", config);
}

static void pools_list(node *n, api_call *c)
{
    list_agents(n, c, "pool");
}

/* ---- the replicated agents table ---- */

static void cluster_agents_list(node *n, api_call *c)
{
    if (n->repl == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "replication is not running on this node");
        return;
    }
    uint64_t limit, offset, on_node;
    if (api_query_u64(c, "limit", LIST_DEFAULT_LIMIT, &limit) != MB_OK ||
        api_query_u64(c, "offset", 0, &offset) != MB_OK ||
        api_query_u64(c, "node", 0, &on_node) != MB_OK)
        return;
    if (limit == 0 || limit > LIST_MAX_LIMIT * 10) {
        api_reply_error(c, MB_EINVAL, "limit must be between 1 and %d", LIST_MAX_LIMIT * 10);
        return;
    }
    const char *kind = api_call_query(c, "kind");
    const char *status = api_call_query(c, "status");
    const char *cap = api_call_query(c, "capability");
    const consensus_sm *sm = repl_sm(n->repl);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "agents");
    size_t total = 0, shown = 0;
    cJSON *counts = cJSON_AddObjectToObject(o, "by_status");
    size_t by[4] = { 0, 0, 0, 0 };
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if ((on_node != 0 && a->node != on_node) || (kind != NULL && strcmp(a->kind, kind) != 0))
            continue;
        cJSON *j = placement_agent_json(a);
        if (j == NULL)
            continue;
        int keep =
            status == NULL || strcmp(cJSON_GetObjectItem(j, "status")->valuestring, status) == 0;
        if (keep && cap != NULL) {
            keep = 0;
            for (uint32_t k = 0; k < a->n_caps; k++)
                keep |= strcmp(a->caps[k], cap) == 0;
        }
        if (!keep) {
            cJSON_Delete(j);
            continue;
        }
        by[a->status < 4 ? a->status : 0]++;
        if (total++ < offset || shown >= limit) {
            cJSON_Delete(j);
            continue;
        }
        cJSON_AddItemToArray(arr, j);
        shown++;
    }
    static const char *const names[] = { "placed", "running", "stopped", "crashed" };
    for (int i = 0; i < 4; i++)
        cJSON_AddNumberToObject(counts, names[i], (double)by[i]);
    cJSON_AddNumberToObject(o, "total", (double)total);
    if (offset + shown < total)
        cJSON_AddNumberToObject(o, "next_offset", (double)(offset + shown));
    else
        cJSON_AddNullToObject(o, "next_offset");
    cJSON_AddNumberToObject(o, "applied_index", (double)consensus_sm_applied_index(sm));
    api_reply_json(c, 200, o);
}

static void cluster_agent_get(node *n, api_call *c)
{
    const consensus_agent *a =
        n->repl != NULL ? consensus_sm_agent_get(repl_sm(n->repl), api_call_param(c, 0)) : NULL;
    if (a == NULL) {
        api_reply_error(c, MB_ENOAGENT, "no cluster agent '%.128s'", api_call_param(c, 0));
        return;
    }
    cJSON *o = placement_agent_json(a);
    mb_agent_id local;
    if (o != NULL && n->placement != NULL &&
        placement_local_id(n->placement, a->id, &local) == MB_OK) {
        char hex[24];
        hex_id(local, hex, sizeof(hex));
        cJSON_AddStringToObject(o, "local_id", hex);
    }
    api_reply_json(c, 200, o);
}

/* GET /v1/cluster/agents/{id}/checkpoint: the replicated checkpoint. */
static void cluster_agent_checkpoint(node *n, api_call *c)
{
    const consensus_agent *a =
        n->repl != NULL ? consensus_sm_agent_get(repl_sm(n->repl), api_call_param(c, 0)) : NULL;
    if (a == NULL) {
        api_reply_error(c, MB_ENOAGENT, "no cluster agent '%.128s'", api_call_param(c, 0));
        return;
    }
    if (!a->has_checkpoint) {
        api_reply_error(c, MB_ENOTFOUND, "cluster agent '%s' has no replicated checkpoint", a->id);
        return;
    }
    char *text = port_b64_encode(a->checkpoint, a->checkpoint_len);
    if (text == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddNumberToObject(o, "generation", (double)a->generation);
    cJSON_AddNumberToObject(o, "version", (double)a->checkpoint_version);
    cJSON_AddNumberToObject(o, "bytes", (double)a->checkpoint_len);
    cJSON_AddStringToObject(o, "data_b64", text);
    free(text);
    api_reply_json(c, 200, o);
}

static void cluster_remove_done(node *n, api_call *c, const consensus_result *res, const char *json,
                                void *arg)
{
    (void)n;
    (void)json;
    (void)arg;
    if (res->code != MB_OK) {
        api_reply_error(c, res->code, "%s", res->msg[0] ? res->msg : mb_strerror(res->code));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", api_call_param(c, 0));
    cJSON_AddNumberToObject(o, "version", (double)res->version);
    api_reply_json(c, 200, o);
}

/* DELETE /v1/cluster/agents/{id}: remove it from the table; the node
 * running it stops it. */
static void cluster_agent_remove(node *n, api_call *c)
{
    if (n->repl == NULL) {
        api_reply_error(c, MB_EUNAVAIL, "replication is not running on this node");
        return;
    }
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_REMOVE,
                          .by = "api",
                          .agent_id = (char *)api_call_param(c, 0) };
    repl_write(n->repl, c, &cmd, cluster_remove_done, NULL);
}

static const api_route routes[] = {
    { "POST", "/v1/agents", agents_spawn, API_BODY, "agents_spawn" },
    { "GET", "/v1/agents", agents_list, 0, "agents_list" },
    { "GET", "/v1/agents/{id}", agent_get, 0, "agent_get" },
    { "GET", "/v1/agents/{id}/checkpoint", agent_checkpoint, 0, "agent_checkpoint" },
    { "POST", "/v1/agents/{id}/stop", agent_stop, 0, "agent_stop" },
    { "POST", "/v1/agents/{id}/kill", agent_kill, 0, "agent_kill" },
    { "POST", "/v1/agents/{id}/restart", agent_restart, 0, "agent_restart" },
    { "POST", "/v1/agents/{id}/messages", agent_message, API_BODY, "agent_message" },
    { "GET", "/v1/kinds", kinds_list, 0, "kinds_list" },
    { "POST", "/v1/kinds", kinds_load, API_BODY, "kinds_load" },
    { "POST", "/v1/pools", pools_create, API_BODY, "pools_create" },
    { "GET", "/v1/pools", pools_list, 0, "pools_list" },
    { "GET", "/v1/cluster/agents", cluster_agents_list, 0, "cluster_agents_list" },
    { "GET", "/v1/cluster/agents/{id}", cluster_agent_get, 0, "cluster_agent_get" },
    { "GET", "/v1/cluster/agents/{id}/checkpoint", cluster_agent_checkpoint, 0,
      "cluster_agent_checkpoint" },
    { "DELETE", "/v1/cluster/agents/{id}", cluster_agent_remove, 0, "cluster_agent_remove" },
};

void api_agents_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
