/* node/api_studies.c: studies over HTTP (piece "studies"; docs/api.md,
 * docs/studies.md) — create, list, show, stop, export (CSV or JSON) and a
 * long-poll watch of a study's progress. Reads are stale-local (the state
 * as applied on this node); writes are replicated. Control loop thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"
#include "node/replication.h"
#include "node/studies.h"

static const consensus_study *find_study(node *n, api_call *c)
{
    const char *id = api_call_param(c, 0);
    const consensus_study *st = consensus_sm_study_get(repl_sm(n->repl), id);
    if (st == NULL)
        api_reply_error(c, MB_ENOTFOUND, "study \"%s\" not found", id != NULL ? id : "");
    return st;
}

static void reply_study(api_call *c, int status, const consensus_study *st, int with_trials)
{
    cJSON *o = NULL;
    if (consensus_study_to_json(st, with_trials, &o) != MB_OK) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    api_reply_json(c, status, o);
}

static void create_done(node *n, api_call *c, const consensus_result *res, const char *json,
                        void *arg)
{
    (void)json;
    char *id = arg;
    if (res->code != MB_OK) {
        api_reply_error(c, res->code, "%s", res->msg);
    } else {
        const consensus_study *st = consensus_sm_study_get(repl_sm(n->repl), id);
        if (st != NULL)
            reply_study(c, 201, st, 0);
        else
            api_reply_error(c, MB_EINTERNAL, "study created but not visible here");
    }
    free(id);
}

static void studies_create(node *n, api_call *c)
{
    consensus_cmd cmd;
    mb_error e;
    mb_error_clear(&e);
    int rc = consensus_study_from_json(api_call_json(c), node_wall_ms(), &cmd, &e);
    if (rc != MB_OK) {
        api_reply_error(c, rc, "%s", e.msg);
        return;
    }
    /* Checked here too, so that a bad study is refused before replication. */
    if ((rc = consensus_sm_check(repl_sm(n->repl), &cmd, &e)) != MB_OK && rc != MB_ENOTFOUND) {
        consensus_cmd_free(&cmd);
        api_reply_error(c, rc, "%s", e.msg);
        return;
    }
    char *id = strdup(cmd.study->def.id);
    if (id == NULL) {
        consensus_cmd_free(&cmd);
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    cmd.by = "api";
    repl_write(n->repl, c, &cmd, create_done, id);
    cmd.by = NULL;
    consensus_cmd_free(&cmd);
}

static void studies_list(node *n, api_call *c)
{
    const consensus_sm *sm = repl_sm(n->repl);
    cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "studies") : NULL;
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < consensus_sm_study_count(sm); i++) {
        cJSON *s = NULL;
        ok = consensus_study_to_json(consensus_sm_study_at(sm, i), 0, &s) == MB_OK &&
             cJSON_AddItemToArray(arr, s);
    }
    if (ok)
        studies_local_json(n->studies, o);
    if (!ok) {
        cJSON_Delete(o);
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    api_reply_json(c, 200, o);
}

static void studies_show(node *n, api_call *c)
{
    const consensus_study *st = find_study(n, c);
    if (st == NULL)
        return;
    const char *t = api_call_query(c, "trials");
    reply_study(c, 200, st, t == NULL || strcmp(t, "0") != 0);
}

static void stop_done(node *n, api_call *c, const consensus_result *res, const char *json,
                      void *arg)
{
    (void)json;
    char *id = arg;
    const consensus_study *st = consensus_sm_study_get(repl_sm(n->repl), id);
    if (res->code != MB_OK)
        api_reply_error(c, res->code, "%s", res->msg);
    else if (st != NULL)
        reply_study(c, 200, st, 0);
    else
        api_reply_error(c, MB_EINTERNAL, "study stopped but not visible here");
    free(id);
}

static void studies_stop(node *n, api_call *c)
{
    const consensus_study *st = find_study(n, c);
    if (st == NULL)
        return;
    const char *reason = api_call_query(c, "reason");
    consensus_study_cmd sc = { .study_id = st->def.id,
                               .reason = (char *)(reason != NULL ? reason : "stopped by a user") };
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_STUDY_STOP, .by = "api", .study = &sc };
    char *id = strdup(st->def.id);
    if (id == NULL) {
        api_reply_error(c, MB_ENOMEM, "out of memory");
        return;
    }
    repl_write(n->repl, c, &cmd, stop_done, id);
}

/* ---- export ---- */

typedef struct buf {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void put_field(buf *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        puts_(b, s);
        return;
    }
    put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            put(b, "\"\"", 2);
        else
            put(b, p, 1);
    }
    put(b, "\"", 1);
}

static void put_json_field(buf *b, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        put_field(b, v->valuestring);
        return;
    }
    char *t = cJSON_PrintUnformatted(v);
    if (t == NULL) {
        b->oom = 1;
        return;
    }
    put_field(b, t);
    cJSON_free(t);
}

static void studies_export(node *n, api_call *c)
{
    const consensus_study *st = find_study(n, c);
    if (st == NULL)
        return;
    const char *fmt = api_call_query(c, "format");
    if (fmt == NULL || strcmp(fmt, "json") == 0) {
        reply_study(c, 200, st, 1);
        return;
    }
    if (strcmp(fmt, "csv") != 0) {
        api_reply_error(c, MB_EINVAL, "format is csv or json");
        return;
    }
    buf b = { 0 };
    puts_(&b, "number,status,value,strategy,evaluator,requeues,error");
    for (uint32_t i = 0; i < st->def.n_params; i++) {
        put(&b, ",", 1);
        put_field(&b, st->def.params[i].name);
    }
    put(&b, "\n", 1);
    char num[64];
    for (uint32_t k = 0; k < st->n_trials; k++) {
        const consensus_trial *t = st->trials[k];
        snprintf(num, sizeof(num), "%u,%s,", t->number, consensus_trial_status_name(t->status));
        puts_(&b, num);
        if (t->has_value) {
            snprintf(num, sizeof(num), "%.17g", t->value);
            puts_(&b, num);
        }
        put(&b, ",", 1);
        put_field(&b, t->strategy != NULL ? t->strategy : "");
        put(&b, ",", 1);
        put_field(&b, t->evaluator != NULL ? t->evaluator : "");
        snprintf(num, sizeof(num), ",%u,", t->requeues);
        puts_(&b, num);
        put_field(&b, t->error != NULL ? t->error : "");
        for (uint32_t i = 0; i < st->def.n_params; i++) {
            put(&b, ",", 1);
            cJSON *v = consensus_study_param_json(&st->def.params[i], t->params[i]);
            if (v == NULL)
                b.oom = 1;
            else
                put_json_field(&b, v);
            cJSON_Delete(v);
        }
        put(&b, "\n", 1);
    }
    if (b.oom)
        api_reply_error(c, MB_ENOMEM, "out of memory");
    else
        api_reply_raw(c, 200, "text/csv", b.p, b.n);
    free(b.p);
}

/* ---- watch ---- */

/* An api_park_answer_fn: answer when the study changed from `done`
 * finished trials or ended (or `force`); 1 when answered. */
static int watch_answer(node *n, api_call *c, const char *id, uint64_t done, int force,
                        const void *wake)
{
    (void)wake;
    const consensus_study *st = consensus_sm_study_get(repl_sm(n->repl), id);
    if (st == NULL) {
        api_reply_error(c, MB_ENOTFOUND, "study \"%s\" not found", id);
        return 1;
    }
    if (!force && st->n_done == done && st->status == CONSENSUS_STUDY_RUNNING)
        return 0;
    reply_study(c, 200, st, 0);
    return 1;
}

void api_studies_notify(node *n)
{
    api_park_wake(&n->study_watches, n, NULL, NULL);
}

static void studies_watch(node *n, api_call *c)
{
    const consensus_study *st = find_study(n, c);
    if (st == NULL)
        return;
    uint64_t done, timeout;
    if (api_query_u64(c, "done", UINT64_MAX, &done) != MB_OK ||
        api_park_timeout(c, &timeout) != MB_OK)
        return;
    api_park_watch(&n->study_watches, n, c, st->def.id, done, timeout, watch_answer);
}

static const api_route routes[] = {
    { "POST", "/v1/studies", studies_create, API_BODY, "studies_create" },
    { "GET", "/v1/studies", studies_list, 0, "studies_list" },
    { "POST", "/v1/studies/{id}/stop", studies_stop, 0, "studies_stop" },
    { "GET", "/v1/studies/{id}/export", studies_export, 0, "studies_export" },
    { "GET", "/v1/studies/{id}/watch", studies_watch, 0, "studies_watch" },
    { "GET", "/v1/studies/{id}", studies_show, 0, "studies_show" },
};

void api_studies_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
