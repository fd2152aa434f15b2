/* node/api_proposals.c: proposals over HTTP — open one (POST
 * /v1/proposals), list the open ones, show one (open, or decided from the
 * replicated event log) and long-poll until one is decided (docs/api.md,
 * docs/proposals.md). Control loop thread. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"
#include "node/node_log.h"
#include "node/proposals.h"
#include "node/replication.h"

#define TIMEOUT_DEFAULT_MS 60000
#define CAPS_MAX           16

static void reply_err(api_call *c, int code, const char *msg)
{
    if (code == MB_ECONSTRAINT)
        api_reply_error_status(c, 422, code, msg);
    else
        api_reply_error(c, code, "%s", msg);
}

/* ---- POST /v1/proposals ---- */

typedef struct open_req {
    char *variable;
    cJSON *body; /* a copy of the request body */
    char *id;    /* NULL: named by the cluster */
    char *by;
    int64_t deadline_ms;
    uint64_t client_id, seq;
} open_req;

static void open_req_free(void *arg)
{
    open_req *q = arg;
    if (q == NULL)
        return;
    free(q->variable);
    cJSON_Delete(q->body);
    free(q->id);
    free(q->by);
    free(q);
}

static int fail(consensus_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(consensus_result *res, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    res->code = code;
    vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
    va_end(ap);
    return code;
}

/* The voters of the request: "voters" (array of agent ids) or "caps"
 * (array of capabilities: every live cluster agent having all of them).
 * *out: malloc'd array of borrowed strings. */
static int request_voters(const cJSON *body, const consensus_sm *sm, const char ***out, uint32_t *n,
                          consensus_result *res)
{
    const cJSON *voters = cJSON_GetObjectItemCaseSensitive(body, "voters");
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(body, "caps");
    *out = NULL;
    *n = 0;
    if ((voters != NULL) == (caps != NULL))
        return fail(res, MB_EINVAL, "give either \"voters\" (agent ids) or \"caps\"");
    if (voters != NULL) {
        int k = cJSON_GetArraySize(voters);
        if (!cJSON_IsArray(voters) || k <= 0 || k > CONSENSUS_MAX_VOTERS) {
            return fail(res, MB_EINVAL, "\"voters\" must be an array of 1..%d agent ids",
                        CONSENSUS_MAX_VOTERS);
        }
        const char **v = calloc((size_t)k, sizeof(char *));
        if (v == NULL)
            return fail(res, MB_ENOMEM, "out of memory");
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, voters)
        {
            if (!cJSON_IsString(it)) {
                free(v);
                return fail(res, MB_EINVAL, "\"voters\" must hold strings");
            }
            v[i++] = it->valuestring;
        }
        *out = v;
        *n = (uint32_t)k;
        return MB_OK;
    }
    int k = cJSON_GetArraySize(caps);
    if (!cJSON_IsArray(caps) || k <= 0 || k > CAPS_MAX)
        return fail(res, MB_EINVAL, "\"caps\" must be an array of 1..16 capabilities");
    const char *cv[CAPS_MAX];
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, caps)
    {
        if (!cJSON_IsString(it))
            return fail(res, MB_EINVAL, "\"caps\" must hold strings");
        cv[i++] = it->valuestring;
    }
    int rc = node_proposals_voters_by_caps(sm, cv, (size_t)k, out, n);
    if (rc != MB_OK)
        return fail(res, rc, "resolve voters by capability");
    if (*n == 0) {
        free(*out);
        *out = NULL;
        return fail(res, MB_ENOAGENT, "no live cluster agent has the capabilities asked for");
    }
    return MB_OK;
}

/* Weights: an object {voter: weight} or an array in the order of voters. */
static int request_weights(const cJSON *w, const char **voters, uint32_t n, double **out,
                           consensus_result *res)
{
    *out = NULL;
    if (w == NULL)
        return MB_OK;
    double *ws = calloc(n, sizeof(double));
    if (ws == NULL)
        return fail(res, MB_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const cJSON *x = cJSON_IsArray(w)    ? cJSON_GetArrayItem(w, (int)i)
                         : cJSON_IsObject(w) ? cJSON_GetObjectItemCaseSensitive(w, voters[i])
                                             : NULL;
        if (!cJSON_IsNumber(x)) {
            free(ws);
            return fail(res, MB_EINVAL,
                        "\"weights\" needs a number for every voter (missing for \"%s\")",
                        voters[i]);
        }
        ws[i] = x->valuedouble;
    }
    if (cJSON_IsArray(w) && (uint32_t)cJSON_GetArraySize(w) != n) {
        free(ws);
        return fail(res, MB_EINVAL, "\"weights\" has not one entry per voter");
    }
    *out = ws;
    return MB_OK;
}

static int open_prepare(node *n, const consensus_sm *sm, void *arg, void **buf, size_t *len,
                        consensus_result *res)
{
    (void)n;
    open_req *q = arg;
    const consensus_var *v = consensus_sm_var_get(sm, q->variable);
    if (v == NULL)
        return fail(res, MB_ENOTFOUND, "variable \"%s\" not found", q->variable);
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_PROPOSAL_OPEN;
    cmd.proposal_id = q->id;
    cmd.name = q->variable;
    cmd.by = q->by;
    cmd.client_id = q->client_id;
    cmd.request_seq = q->seq;
    cmd.deadline_ms = q->deadline_ms;
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(q->body, "rule");
    if (rule != NULL &&
        (!cJSON_IsString(rule) || consensus_rule_parse(rule->valuestring, &cmd.rule) != MB_OK))
        return fail(res, MB_EINVAL,
                    "\"rule\" must be majority, supermajority, unanimous, weighted or "
                    "byzantine");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(q->body, "fraction");
    if (fr != NULL) {
        if (!cJSON_IsNumber(fr))
            return fail(res, MB_EINVAL, "\"fraction\" must be a number");
        cmd.fraction = fr->valuedouble;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(q->body, "f");
    if (f != NULL) {
        if (!cJSON_IsNumber(f) || f->valuedouble < 0 || f->valuedouble > CONSENSUS_MAX_VOTERS ||
            f->valuedouble != (double)(uint32_t)f->valuedouble)
            return fail(res, MB_EINVAL, "\"f\" must be a small whole number");
        cmd.f = (uint32_t)f->valuedouble;
    }
    const char **voters = NULL;
    uint32_t nv = 0;
    double *weights = NULL;
    mb_error e;
    mb_error_clear(&e);
    int rc = request_voters(q->body, sm, &voters, &nv, res);
    if (rc == MB_OK)
        rc = request_weights(cJSON_GetObjectItemCaseSensitive(q->body, "weights"), voters, nv,
                             &weights, res);
    if (rc == MB_OK) {
        cmd.voters = (char **)voters;
        cmd.n_voters = nv;
        cmd.weights = weights;
        rc = consensus_value_from_json(cJSON_GetObjectItemCaseSensitive(q->body, "value"),
                                       v->spec.type, q->variable, &cmd.value, &e);
        if (rc == MB_OK)
            rc = mb_value_validate(q->variable, &v->spec, &cmd.value, &e);
        /* The state's own checks (one open proposal per variable, 3f+1,
         * voters) run at apply on the leader: this node's state may lag. */
        if (rc == MB_OK)
            rc = consensus_cmd_encode(&cmd, NULL, buf, len, &e);
        if (rc != MB_OK) {
            res->code = rc;
            snprintf(res->msg, sizeof(res->msg), "%s", e.msg);
        }
        mb_value_free(&cmd.value);
    }
    free(voters);
    free(weights);
    return rc;
}

static void open_done(node *n, api_call *c, const consensus_result *res, const char *json,
                      void *arg)
{
    (void)n;
    (void)json;
    char *given = arg;
    if (res->code != MB_OK) {
        free(given);
        reply_err(c, res->code, res->msg);
        return;
    }
    char id[CONSENSUS_ID_MAX + 1];
    if (given != NULL)
        snprintf(id, sizeof(id), "%s", given);
    else
        snprintf(id, sizeof(id), "%llu", (unsigned long long)res->version);
    free(given);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", id);
    cJSON_AddNumberToObject(j, "version", (double)res->version);
    cJSON_AddNumberToObject(j, "opened", (double)res->version);
    api_reply_json(c, 201, j);
}

static void proposals_open(node *n, api_call *c)
{
    const cJSON *body = api_call_json(c);
    const cJSON *var = cJSON_GetObjectItemCaseSensitive(body, "variable");
    mb_error e;
    mb_error_clear(&e);
    if (!cJSON_IsString(var) || mb_var_name_check(var->valuestring, &e) != MB_OK) {
        api_reply_error(c, MB_EINVAL, "body needs \"variable\" (a variable name)");
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(body, "value") == NULL) {
        api_reply_error(c, MB_EINVAL, "body needs a \"value\"");
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(body, "by");
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(body, "timeout_ms");
    const cJSON *deadline = cJSON_GetObjectItemCaseSensitive(body, "deadline_ms");
    if ((id != NULL && !cJSON_IsString(id)) || (by != NULL && !cJSON_IsString(by)) ||
        (by != NULL && strlen(by->valuestring) > CONSENSUS_ID_MAX)) {
        api_reply_error(c, MB_EINVAL, "\"id\" and \"by\" must be strings of at most %d bytes",
                        CONSENSUS_ID_MAX);
        return;
    }
    if ((timeout != NULL &&
         (!cJSON_IsNumber(timeout) || timeout->valuedouble < 0 || timeout->valuedouble > 1e12)) ||
        (deadline != NULL && (!cJSON_IsNumber(deadline) || deadline->valuedouble < 0 ||
                              deadline->valuedouble > 9e15))) {
        api_reply_error(c, MB_EINVAL,
                        "\"timeout_ms\" (from now, 0 = none) and \"deadline_ms\" (wall clock ms) "
                        "must be non-negative numbers");
        return;
    }
    open_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    q->variable = strdup(var->valuestring);
    q->body = cJSON_Duplicate(body, 1);
    q->id = id != NULL && id->valuestring[0] != '\0' ? strdup(id->valuestring) : NULL;
    q->by = strdup(by != NULL ? by->valuestring : "api");
    if (deadline != NULL)
        q->deadline_ms = (int64_t)deadline->valuedouble;
    else {
        int64_t t = timeout != NULL ? (int64_t)timeout->valuedouble : TIMEOUT_DEFAULT_MS;
        q->deadline_ms = t > 0 ? node_wall_ms() + t : 0;
    }
    char *given = q->id != NULL ? strdup(q->id) : NULL;
    if (q->variable == NULL || q->body == NULL || q->by == NULL ||
        (id != NULL && id->valuestring[0] != '\0' && (q->id == NULL || given == NULL))) {
        free(given);
        open_req_free(q);
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(body, "request_id");
    if (cJSON_IsString(rid) && rid->valuestring[0] != '\0')
        repl_request_id(rid->valuestring, &q->client_id, &q->seq);
    else
        repl_new_id(n->repl, &q->client_id, &q->seq);
    repl_write_prepare(n->repl, c, q->variable, open_prepare, q, open_req_free, open_done, given);
}

/* ---- GET ---- */

static cJSON *open_json(const consensus_proposal *p)
{
    cJSON *j = NULL;
    if (consensus_proposal_to_json(p, 1, &j) != MB_OK)
        return NULL;
    cJSON_AddStringToObject(j, "outcome", "open");
    cJSON_AddNumberToObject(j, "num", (double)node_proposal_num(p));
    return j;
}

static void proposals_list(node *n, api_call *c)
{
    const consensus_sm *sm = repl_sm(n->repl);
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "proposals");
    const char *var = api_call_query(c, "variable");
    for (size_t i = 0; i < consensus_sm_proposal_count(sm); i++) {
        const consensus_proposal *p = consensus_sm_proposal_at(sm, i);
        if (var != NULL && strcmp(var, p->variable) != 0)
            continue;
        cJSON *o = NULL;
        if (consensus_proposal_to_json(p, 0, &o) == MB_OK) {
            unsigned yes = 0, no = 0;
            for (uint32_t k = 0; k < p->n_voters; k++) {
                yes += p->votes[k] == CONSENSUS_VOTE_YES;
                no += p->votes[k] == CONSENSUS_VOTE_NO;
            }
            /* The list stays small: counts instead of voter lists. */
            cJSON_DeleteItemFromObjectCaseSensitive(o, "voters");
            cJSON_DeleteItemFromObjectCaseSensitive(o, "weights");
            cJSON_AddNumberToObject(o, "n_voters", p->n_voters);
            cJSON_AddNumberToObject(o, "yes", yes);
            cJSON_AddNumberToObject(o, "no", no);
            cJSON_AddStringToObject(o, "outcome", "open");
            cJSON_AddItemToArray(a, o);
        }
    }
    cJSON_AddNumberToObject(j, "applied_index", (double)consensus_sm_applied_index(sm));
    api_reply_json(c, 200, j);
}

typedef struct find_close {
    const char *id;
    cJSON *found;
    uint64_t seq;
} find_close;

static int find_close_cb(const storage_event *ev, void *arg)
{
    find_close *f = arg;
    cJSON *p = ev->payload_len > 0 ? cJSON_ParseWithLength(ev->payload, ev->payload_len) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    if (cJSON_IsString(id) && strcmp(id->valuestring, f->id) == 0) {
        f->found = p;
        f->seq = ev->seq;
        return 1;
    }
    cJSON_Delete(p);
    return 0;
}

/* The decided proposal `id` from the replicated event log (its
 * proposal.close event, newest first), as JSON; NULL when not found. */
static cJSON *decided_json(node *n, const char *id, mb_error *e)
{
    find_close f = { .id = id };
    struct storage_query q = { .type = "proposal.close", .limit = 10000, .newest_first = 1 };
    if (repl_log_query(n->repl, &q, find_close_cb, &f, NULL, e) != MB_OK)
        return NULL;
    if (f.found != NULL)
        cJSON_AddNumberToObject(f.found, "decided_version", (double)(f.seq / REPL_SEQ_PER_ENTRY));
    return f.found;
}

/* Answer `c` with proposal `id`: open (with votes), or decided. Returns
 * 1 when answered, 0 when the proposal is unknown here (not answered). */
static int answer_proposal(node *n, api_call *c, const char *id, int force)
{
    const consensus_proposal *p = consensus_sm_proposal_get(repl_sm(n->repl), id);
    if (p != NULL && !force)
        return 0;
    if (p != NULL) {
        cJSON *j = open_json(p);
        if (j == NULL)
            api_reply_error(c, MB_ENOMEM, "out of memory");
        else
            api_reply_json(c, 200, j);
        return 1;
    }
    mb_error e;
    mb_error_clear(&e);
    cJSON *d = decided_json(n, id, &e);
    if (d != NULL) {
        api_reply_json(c, 200, d);
        return 1;
    }
    if (e.code != MB_OK)
        api_reply_error(c, e.code, "proposal \"%s\": %s", id, e.msg);
    else
        api_reply_error(c, MB_ENOTFOUND, "proposal \"%s\" not found on this node", id);
    return 1;
}

static void proposals_get(node *n, api_call *c)
{
    answer_proposal(n, c, api_call_param(c, 0), 1);
}

/* ---- watch ---- */

/* What api_proposals_notify hands to the watches of a closed proposal. */
typedef struct proposal_close {
    uint64_t index;
    const char *close_json; /* the close event's payload, or NULL */
} proposal_close;

/* An api_park_answer_fn: the proposal's current state when forced; once it
 * closed (`wake`), the close event with the version it was decided at. */
static int watch_answer(node *n, api_call *c, const char *id, uint64_t from, int force,
                        const void *wake)
{
    (void)from;
    const proposal_close *pc = wake;
    if (pc == NULL)
        return answer_proposal(n, c, id, force);
    cJSON *j = pc->close_json != NULL ? cJSON_Parse(pc->close_json) : NULL;
    if (j == NULL)
        return answer_proposal(n, c, id, 1);
    cJSON_AddNumberToObject(j, "decided_version", (double)pc->index);
    api_reply_json(c, 200, j);
    return 1;
}

void api_proposals_notify(node *n, const char *id, uint64_t index, const char *close_json)
{
    proposal_close pc = { .index = index, .close_json = close_json };
    api_park_wake(&n->proposal_watches, n, id, &pc);
}

static void proposals_watch(node *n, api_call *c)
{
    uint64_t timeout;
    if (api_park_timeout(c, &timeout) != MB_OK)
        return;
    api_park_watch(&n->proposal_watches, n, c, api_call_param(c, 0), 0, timeout, watch_answer);
}

static const api_route routes[] = {
    { "POST", "/v1/proposals", proposals_open, API_BODY, "proposals_open" },
    { "GET", "/v1/proposals", proposals_list, 0, "proposals_list" },
    { "GET", "/v1/proposals/{id}/watch", proposals_watch, 0, "proposals_watch" },
    { "GET", "/v1/proposals/{id}", proposals_get, 0, "proposals_get" },
};

void api_proposals_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
