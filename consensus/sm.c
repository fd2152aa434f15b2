/* The pure replicated state machine: tables, command application with
 * idempotency, effects, and deterministic snapshot/restore. No I/O, no
 * clock, no randomness (see docs/consensus.md). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

#define SNAP_MAGIC    "MBSS"
#define SNAP_FORMAT   1u
#define SNAP_HEADER   12u
#define DEDUP_MAX     (1u << 20)
#define DEDUP_MSG_MAX 255

/* One remembered idempotency id and its result. */
typedef struct dedup_entry {
    uint64_t client_id;
    uint64_t request_seq;
    uint64_t index;
    int code;
    uint64_t version;
    char *msg;
    int32_t next; /* hash chain: ring slot, -1 = end */
} dedup_entry;

struct consensus_sm {
    uint64_t applied;
    consensus_var **vars; /* sorted by name */
    size_t n_vars, cap_vars;
    consensus_node **nodes; /* sorted by id */
    size_t n_nodes, cap_nodes;
    consensus_agent **agents; /* sorted by id */
    size_t n_agents, cap_agents;
    consensus_proposal **props; /* open proposals, sorted by id */
    size_t n_props, cap_props;
    /* Dedup: a ring in apply order (= raft index order), oldest at head,
     * with hash chains for lookup. */
    uint32_t dd_cap;
    dedup_entry *dd;
    uint32_t dd_head, dd_n;
    int32_t *dd_buckets;
    uint32_t dd_nbuckets;
    cs_studies studies; /* piece "studies": consensus/study.c */
    cs_coord *coord;    /* leases, barriers, elections (piece: agents/coord) */
};

/* ---------------- effects ---------------- */

void consensus_effects_init(consensus_effects *fx)
{
    memset(fx, 0, sizeof(*fx));
}

static void effect_release(consensus_effect *e)
{
    free(e->type);
    free(e->subject);
    cJSON_free(e->payload);
    memset(e, 0, sizeof(*e));
}

static void effects_truncate(consensus_effects *fx, size_t n)
{
    if (fx == NULL)
        return;
    while (fx->n > n)
        effect_release(&fx->items[--fx->n]);
}

void consensus_effects_clear(consensus_effects *fx)
{
    effects_truncate(fx, 0);
}

void consensus_effects_free(consensus_effects *fx)
{
    if (fx == NULL)
        return;
    consensus_effects_clear(fx);
    free(fx->items);
    memset(fx, 0, sizeof(*fx));
}

/* Append an effect; `payload` (cJSON-allocated, may be NULL) is taken over
 * even on failure. */
static int fx_push(consensus_effects *fx, consensus_effect_kind kind, const char *type,
                   const char *subject, char *payload, uint64_t version, int deleted,
                   uint64_t node_id, uint64_t generation)
{
    if (fx == NULL) {
        cJSON_free(payload);
        return MB_OK;
    }
    if (fx->n == fx->cap) {
        size_t cap = fx->cap ? fx->cap * 2 : 8;
        consensus_effect *items = realloc(fx->items, cap * sizeof(*items));
        if (items == NULL) {
            cJSON_free(payload);
            return MB_ENOMEM;
        }
        fx->items = items;
        fx->cap = cap;
    }
    consensus_effect e = { .kind = kind,
                           .payload = payload,
                           .version = version,
                           .deleted = deleted,
                           .node_id = node_id,
                           .generation = generation };
    int ok = 1;
    e.type = cs_strdup_or_null(type, &ok);
    e.subject = cs_strdup_or_null(subject, &ok);
    if (!ok) {
        effect_release(&e);
        return MB_ENOMEM;
    }
    fx->items[fx->n++] = e;
    return MB_OK;
}

/* Push an EVENT whose payload is `obj` (consumed). */
static int fx_event(consensus_effects *fx, const char *type, const char *subject, cJSON *obj,
                    uint64_t version)
{
    if (obj == NULL)
        return MB_ENOMEM;
    char *payload = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (payload == NULL)
        return MB_ENOMEM;
    return fx_push(fx, CONSENSUS_FX_EVENT, type, subject, payload, version, 0, 0, 0);
}

/* coordination (piece: agents/coord): sm.c's helpers for consensus/coord.c */
int cs_fx_push(consensus_effects *fx, int kind, const char *type, const char *subject,
               char *payload, uint64_t version, uint64_t node_id, uint64_t generation)
{
    return fx_push(fx, (consensus_effect_kind)kind, type, subject, payload, version, 0, node_id,
                   generation);
}

int cs_fx_event(consensus_effects *fx, const char *type, const char *subject, cJSON *obj,
                uint64_t version)
{
    return fx_event(fx, type, subject, obj, version);
}

cs_coord *cs_sm_coord(const consensus_sm *sm)
{
    return sm->coord;
}

/* ---------------- table helpers ---------------- */

int cs_arr_grow(void ***arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return MB_OK;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void **a = realloc(*arr, c * sizeof(void *));
    if (a == NULL)
        return MB_ENOMEM;
    *arr = a;
    *cap = c;
    return MB_OK;
}

void cs_arr_insert(void **arr, size_t *n, size_t pos, void *item)
{
    memmove(&arr[pos + 1], &arr[pos], (*n - pos) * sizeof(void *));
    arr[pos] = item;
    (*n)++;
}

void cs_arr_remove(void **arr, size_t *n, size_t pos)
{
    memmove(&arr[pos], &arr[pos + 1], (*n - pos - 1) * sizeof(void *));
    (*n)--;
}

/* Binary search of a sorted array of pointers to structs whose `char *`
 * key sits at `key_offset`; returns 1 and *pos when found, else 0 and the
 * insertion point. */
int cs_str_find(void *const *arr, size_t n, size_t key_offset, const char *key, size_t *pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = *(const char *const *)((const char *)arr[mid] + key_offset);
        int c = strcmp(k, key);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

static int var_find(const consensus_sm *sm, const char *name, size_t *pos)
{
    return cs_str_find((void *const *)sm->vars, sm->n_vars, offsetof(consensus_var, name), name,
                       pos);
}

static int node_find(const consensus_sm *sm, uint64_t id, size_t *pos)
{
    size_t lo = 0, hi = sm->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = sm->nodes[mid]->id;
        if (v == id) {
            *pos = mid;
            return 1;
        }
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

static int agent_find(const consensus_sm *sm, const char *id, size_t *pos)
{
    return cs_str_find((void *const *)sm->agents, sm->n_agents, offsetof(consensus_agent, id), id,
                       pos);
}

static void var_free(consensus_var *v)
{
    if (v == NULL)
        return;
    free(v->name);
    mb_var_spec_free(&v->spec);
    mb_value_free(&v->value);
    free(v->changed_by);
    free(v);
}

static void node_free(consensus_node *n)
{
    if (n == NULL)
        return;
    free(n->raft_addr);
    free(n->mesh_addr);
    free(n->api_addr);
    free(n);
}

static void agent_free(consensus_agent *a)
{
    if (a == NULL)
        return;
    free(a->id);
    free(a->kind);
    free(a->config);
    free(a->checkpoint);
    if (a->caps != NULL) /* placement */
        for (uint32_t i = 0; i < a->n_caps; i++)
            free(a->caps[i]);
    free(a->caps);
    free(a);
}

static int prop_find(const consensus_sm *sm, const char *id, size_t *pos)
{
    return cs_str_find((void *const *)sm->props, sm->n_props, offsetof(consensus_proposal, id), id,
                       pos);
}

static void prop_free(consensus_proposal *p)
{
    if (p == NULL)
        return;
    free(p->id);
    free(p->variable);
    mb_value_free(&p->value);
    free(p->proposer);
    if (p->voters != NULL)
        for (uint32_t i = 0; i < p->n_voters; i++)
            free(p->voters[i]);
    free(p->voters);
    free(p->weights);
    free(p->votes);
    free(p);
}

/* ---------------- dedup ---------------- */

static uint32_t dd_hash(const consensus_sm *sm, uint64_t cid, uint64_t seq)
{
    uint64_t h = cid * 0x9E3779B97F4A7C15ull ^ (seq + 0x632BE59BD9B4E019ull + (cid << 6));
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return (uint32_t)(h % sm->dd_nbuckets);
}

static int dd_alloc(consensus_sm *sm, uint32_t cap)
{
    sm->dd_cap = cap;
    sm->dd_nbuckets = cap * 2 + 1;
    sm->dd = calloc(cap, sizeof(dedup_entry));
    sm->dd_buckets = malloc(sm->dd_nbuckets * sizeof(int32_t));
    if (sm->dd == NULL || sm->dd_buckets == NULL)
        return MB_ENOMEM;
    for (uint32_t i = 0; i < sm->dd_nbuckets; i++)
        sm->dd_buckets[i] = -1;
    return MB_OK;
}

static const dedup_entry *dd_find(const consensus_sm *sm, uint64_t cid, uint64_t seq)
{
    for (int32_t s = sm->dd_buckets[dd_hash(sm, cid, seq)]; s >= 0; s = sm->dd[s].next)
        if (sm->dd[s].client_id == cid && sm->dd[s].request_seq == seq)
            return &sm->dd[s];
    return NULL;
}

static void dd_evict_oldest(consensus_sm *sm)
{
    uint32_t slot = sm->dd_head;
    dedup_entry *e = &sm->dd[slot];
    int32_t *link = &sm->dd_buckets[dd_hash(sm, e->client_id, e->request_seq)];
    while (*link >= 0 && *link != (int32_t)slot)
        link = &sm->dd[*link].next;
    if (*link == (int32_t)slot)
        *link = e->next;
    free(e->msg);
    memset(e, 0, sizeof(*e));
    sm->dd_head = (sm->dd_head + 1) % sm->dd_cap;
    sm->dd_n--;
}

/* Remember a result; `msg` is taken over. Never fails: with no memory for
 * the message it is remembered without one. */
static void dd_insert(consensus_sm *sm, uint64_t cid, uint64_t seq, uint64_t index, int code,
                      uint64_t version, char *msg)
{
    if (sm->dd_n == sm->dd_cap)
        dd_evict_oldest(sm);
    uint32_t slot = (sm->dd_head + sm->dd_n) % sm->dd_cap;
    uint32_t b = dd_hash(sm, cid, seq);
    sm->dd[slot] = (dedup_entry){ .client_id = cid,
                                  .request_seq = seq,
                                  .index = index,
                                  .code = code,
                                  .version = version,
                                  .msg = msg,
                                  .next = sm->dd_buckets[b] };
    sm->dd_buckets[b] = (int32_t)slot;
    sm->dd_n++;
}

/* ---------------- lifecycle ---------------- */

static consensus_sm *sm_alloc(uint32_t dedup_capacity)
{
    consensus_sm *sm = calloc(1, sizeof(*sm));
    if (sm == NULL)
        return NULL;
    if (dd_alloc(sm, dedup_capacity) != MB_OK || (sm->coord = cs_coord_new()) == NULL) {
        consensus_sm_free(sm);
        return NULL;
    }
    return sm;
}

int consensus_sm_new(const consensus_sm_options *opts, consensus_sm **out)
{
    uint32_t cap =
        opts != NULL && opts->dedup_capacity ? opts->dedup_capacity : CONSENSUS_DEDUP_DEFAULT;
    if (cap > DEDUP_MAX)
        return MB_EINVAL;
    *out = sm_alloc(cap);
    return *out != NULL ? MB_OK : MB_ENOMEM;
}

void consensus_sm_free(consensus_sm *sm)
{
    if (sm == NULL)
        return;
    for (size_t i = 0; i < sm->n_vars; i++)
        var_free(sm->vars[i]);
    for (size_t i = 0; i < sm->n_nodes; i++)
        node_free(sm->nodes[i]);
    for (size_t i = 0; i < sm->n_agents; i++)
        agent_free(sm->agents[i]);
    for (size_t i = 0; i < sm->n_props; i++)
        prop_free(sm->props[i]);
    free(sm->props);
    cs_studies_free(&sm->studies);
    free(sm->vars);
    free(sm->nodes);
    free(sm->agents);
    if (sm->dd != NULL)
        for (uint32_t i = 0; i < sm->dd_cap; i++)
            free(sm->dd[i].msg);
    free(sm->dd);
    free(sm->dd_buckets);
    cs_coord_free(sm->coord);
    free(sm);
}

/* ---------------- checks ---------------- */

static int str_ok(const char *s, size_t max)
{
    return s == NULL || strnlen(s, max + 1) <= max;
}

static int ident_check(const char *what, const char *s, mb_error *err)
{
    if (s == NULL || s[0] == '\0')
        return mb_errorf(err, MB_EINVAL, "%s is empty", what);
    size_t len = strnlen(s, CONSENSUS_ID_MAX + 1);
    if (len > CONSENSUS_ID_MAX)
        return mb_errorf(err, MB_EINVAL, "%s longer than %d bytes", what, CONSENSUS_ID_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
            s[i] == '\\')
            return mb_errorf(err, MB_EINVAL, "%s has a character that is not printable ASCII",
                             what);
    return MB_OK;
}

int cs_ident_check(const char *what, const char *s, mb_error *err)
{
    return ident_check(what, s, err);
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static int node_usable(const consensus_sm *sm, uint64_t id, mb_error *err)
{
    size_t pos;
    if (!node_find(sm, id, &pos))
        return mb_errorf(err, MB_ENOTFOUND, "node %llu not found", (unsigned long long)id);
    if (sm->nodes[pos]->status != CONSENSUS_NODE_UP)
        return mb_errorf(err, MB_ESTATE, "node %llu is not up", (unsigned long long)id);
    return MB_OK;
}

static int agent_lookup(const consensus_sm *sm, const char *id, size_t *pos, mb_error *err)
{
    int rc = ident_check("agent id", id, err);
    if (rc != MB_OK)
        return rc;
    if (!agent_find(sm, id, pos))
        return mb_errorf(err, MB_ENOAGENT, "agent \"%s\" not found", id);
    return MB_OK;
}

/* proposals piece: helpers shared by check and apply. */

static int voter_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A known agent that crashed or stopped cannot vote; ids that are not in
 * the agents table (outside identities voting through the API) can. */
static int voter_dead(const consensus_sm *sm, const char *id)
{
    size_t pos;
    if (!agent_find(sm, id, &pos))
        return 0;
    consensus_agent_status st = sm->agents[pos]->status;
    return st == CONSENSUS_AGENT_CRASHED || st == CONSENSUS_AGENT_STOPPED;
}

/* Index of `voter` in the sorted voters of `p`, or -1. */
static int64_t prop_voter_index(const consensus_proposal *p, const char *voter)
{
    uint32_t lo = 0, hi = p->n_voters;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->voters[mid], voter);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static size_t prop_on_var(const consensus_sm *sm, const char *name)
{
    for (size_t i = 0; i < sm->n_props; i++)
        if (strcmp(sm->props[i]->variable, name) == 0)
            return i;
    return SIZE_MAX;
}

static int check_proposal_open(const consensus_sm *sm, const consensus_cmd *c, mb_error *err)
{
    size_t pos;
    int rc;
    const char *pid = c->proposal_id != NULL && c->proposal_id[0] != '\0' ? c->proposal_id : "";
    if (pid[0] != '\0') {
        if ((rc = ident_check("proposal id", pid, err)) != MB_OK)
            return rc;
        if (prop_find(sm, pid, &pos))
            return mb_errorf(err, MB_EEXIST, "proposal \"%s\" already open", pid);
    }
    if ((rc = mb_var_name_check(c->name, err)) != MB_OK)
        return rc;
    if (!var_find(sm, c->name, &pos))
        return mb_errorf(err, MB_ENOTFOUND, "variable \"%s\" not found", c->name);
    const consensus_var *v = sm->vars[pos];
    if (v->policy != MB_POLICY_CONSENSUS)
        return mb_errorf(err, MB_EINVAL, "variable \"%s\" has change policy direct: set it",
                         c->name);
    size_t open = prop_on_var(sm, c->name);
    if (open != SIZE_MAX)
        return mb_errorf(err, MB_ESTATE,
                         "variable \"%s\" already has proposal \"%s\" open: one at a time, "
                         "propose again once it is decided",
                         c->name, sm->props[open]->id);
    if ((rc = mb_value_validate(c->name, &v->spec, &c->value, err)) != MB_OK)
        return rc;
    if ((unsigned)c->rule > CONSENSUS_RULE_BYZANTINE)
        return mb_errorf(err, MB_EINVAL, "proposal on \"%s\": unknown rule", c->name);
    if (c->rule == CONSENSUS_RULE_SUPERMAJORITY ? !(c->fraction > 0.5 && c->fraction <= 1.0)
                                                : c->fraction != 0)
        return mb_errorf(err, MB_EINVAL,
                         "proposal on \"%s\": a supermajority needs a fraction in (0.5, 1], "
                         "other rules none",
                         c->name);
    if (c->rule != CONSENSUS_RULE_BYZANTINE && c->f != 0)
        return mb_errorf(err, MB_EINVAL, "proposal on \"%s\": f goes with the byzantine rule only",
                         c->name);
    if (c->n_voters == 0 || c->n_voters > CONSENSUS_MAX_VOTERS || c->voters == NULL)
        return mb_errorf(err, MB_EINVAL, "proposal on \"%s\": needs 1..%d voters", c->name,
                         CONSENSUS_MAX_VOTERS);
    if ((c->rule == CONSENSUS_RULE_WEIGHTED) != (c->weights != NULL))
        return mb_errorf(err, MB_EINVAL,
                         "proposal on \"%s\": weights go with the weighted rule only", c->name);
    uint32_t live = 0;
    for (uint32_t i = 0; i < c->n_voters; i++) {
        if ((rc = ident_check("voter", c->voters[i], err)) != MB_OK)
            return rc;
        if (c->weights != NULL && !(isfinite(c->weights[i]) && c->weights[i] > 0))
            return mb_errorf(err, MB_EINVAL, "proposal on \"%s\": weights must be finite and > 0",
                             c->name);
        /* failover2: a voter is a cluster agent of the replicated table;
         * an unknown id (a typo, an agent gone) could never vote and would
         * hold the proposal until its deadline */
        size_t apos;
        if (!agent_find(sm, c->voters[i], &apos))
            return mb_errorf(err, MB_ENOAGENT,
                             "proposal on \"%s\": voter \"%s\" is not a cluster agent (voters are "
                             "the ids of placed agents)",
                             c->name, c->voters[i]);
        live += !voter_dead(sm, c->voters[i]);
    }
    /* Repeats: sort a copy (n log n: up to CONSENSUS_MAX_VOTERS voters). */
    char **sorted = malloc(c->n_voters * sizeof(char *));
    if (sorted == NULL)
        return mb_errorf(err, MB_ENOMEM, "check proposal voters");
    memcpy(sorted, c->voters, c->n_voters * sizeof(char *));
    qsort(sorted, c->n_voters, sizeof(char *), voter_cmp);
    for (uint32_t i = 1; i < c->n_voters; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            rc = mb_errorf(err, MB_EINVAL, "proposal on \"%s\": voter \"%s\" repeated", c->name,
                           sorted[i]);
            free(sorted);
            return rc;
        }
    free(sorted);
    if (live == 0)
        return mb_errorf(err, MB_EINVAL, "proposal on \"%s\": every voter has crashed or stopped",
                         c->name);
    if (c->rule == CONSENSUS_RULE_BYZANTINE && (uint64_t)live < 3ull * c->f + 1)
        return mb_errorf(err, MB_EINVAL,
                         "proposal on \"%s\": the byzantine rule with f=%u needs at least %llu "
                         "eligible voters (3f+1), has %u",
                         c->name, c->f, 3ull * c->f + 1, live);
    if (c->deadline_ms < 0)
        return mb_errorf(err, MB_EINVAL, "proposal on \"%s\": negative deadline", c->name);
    return MB_OK;
}

/* A vote batch: its shape, and at least one vote that counts (like the
 * placement batches, a batch that would change nothing is a conflict:
 * typically every vote came after its proposal was decided). Each vote's
 * state is checked again when applied. */
static int check_proposal_votes(const consensus_sm *sm, const consensus_cmd *c, mb_error *err)
{
    int rc, counts = 0;
    if (c->n_votes == 0 || c->n_votes > CONSENSUS_VOTE_BATCH_MAX || c->votes == NULL)
        return mb_errorf(err, MB_EINVAL, "a vote batch holds 1..%d votes",
                         CONSENSUS_VOTE_BATCH_MAX);
    for (uint32_t i = 0; i < c->n_votes; i++) {
        if ((rc = ident_check("proposal id", c->votes[i].proposal_id, err)) != MB_OK ||
            (rc = ident_check("voter", c->votes[i].voter, err)) != MB_OK)
            return rc;
        size_t pos;
        if (!counts && prop_find(sm, c->votes[i].proposal_id, &pos)) {
            int64_t vi = prop_voter_index(sm->props[pos], c->votes[i].voter);
            counts = vi >= 0 && sm->props[pos]->votes[vi] == CONSENSUS_VOTE_NONE;
        }
    }
    if (!counts)
        return mb_errorf(err, MB_ECONFLICT,
                         "none of %u votes counts (proposals decided or closed, not voters, or "
                         "voted already)",
                         c->n_votes);
    return MB_OK;
}

/* ---- placement: capabilities and batches ---- */

static int check_caps(const consensus_cmd *c, mb_error *err)
{
    int rc;
    if (c->n_agent_caps > CONSENSUS_CAPS_MAX || (c->n_agent_caps > 0 && c->agent_caps == NULL))
        return mb_errorf(err, MB_EINVAL, "agent \"%s\": at most %d capabilities", c->agent_id,
                         CONSENSUS_CAPS_MAX);
    for (uint32_t i = 0; i < c->n_agent_caps; i++)
        if ((rc = ident_check("capability", c->agent_caps[i], err)) != MB_OK)
            return rc;
    return MB_OK;
}

/* Whether batch entry `it` applies to the current state: MB_OK, or the
 * reason it is skipped. */
static int batch_item_check(const consensus_sm *sm, const consensus_cmd *c,
                            const consensus_agent_item *it, size_t *pos, mb_error *err)
{
    if (!agent_find(sm, it->id, pos))
        return mb_errorf(err, MB_ENOAGENT, "agent \"%s\" not found", it->id);
    const consensus_agent *a = sm->agents[*pos];
    if (c->kind == CONSENSUS_CMD_AGENT_MOVE_BATCH) {
        if (it->generation != 0 && it->generation != a->generation)
            return mb_errorf(err, MB_ECONFLICT, "agent \"%s\": generation is %llu, expected %llu",
                             a->id, (unsigned long long)a->generation,
                             (unsigned long long)it->generation);
        if (it->node == a->node)
            return mb_errorf(err, MB_ECONFLICT, "agent \"%s\" is already on node %llu", a->id,
                             (unsigned long long)a->node);
        return MB_OK;
    }
    if (it->generation != a->generation)
        return mb_errorf(err, MB_ECONFLICT, "agent \"%s\": generation %llu is stale (current %llu)",
                         a->id, (unsigned long long)it->generation,
                         (unsigned long long)a->generation);
    return MB_OK;
}

/* Shape of a batch (the state only decides which entries are skipped). */
static int check_batch(const consensus_sm *sm, const consensus_cmd *c, mb_error *err)
{
    int rc;
    size_t pos;
    if (c->n_items > CONSENSUS_BATCH_MAX || (c->n_items > 0 && c->items == NULL))
        return mb_errorf(err, MB_EINVAL, "batch of %u entries (at most %d)", c->n_items,
                         CONSENSUS_BATCH_MAX);
    if (c->n_items == 0 && !(c->kind == CONSENSUS_CMD_AGENT_MOVE_BATCH && c->down_node != 0))
        return mb_errorf(err, MB_EINVAL, "empty batch");
    for (uint32_t i = 0; i < c->n_items; i++) {
        const consensus_agent_item *it = &c->items[i];
        if ((rc = ident_check("agent id", it->id, err)) != MB_OK)
            return rc;
        if (it->blob_len > CONSENSUS_CHECKPOINT_MAX)
            return mb_errorf(err, MB_ETOOBIG, "agent \"%s\": checkpoint above %u bytes", it->id,
                             CONSENSUS_CHECKPOINT_MAX);
        if (it->blob_len > 0 && it->blob == NULL)
            return mb_errorf(err, MB_EINVAL, "agent \"%s\": checkpoint has no data", it->id);
        if (c->kind == CONSENSUS_CMD_AGENT_STATUS_BATCH &&
            (unsigned)it->status > CONSENSUS_AGENT_CRASHED)
            return mb_errorf(err, MB_EINVAL, "agent \"%s\": unknown status", it->id);
        if (c->kind == CONSENSUS_CMD_AGENT_MOVE_BATCH) {
            if (it->node == c->down_node)
                return mb_errorf(err, MB_EINVAL, "agent \"%s\": moved to the node marked down",
                                 it->id);
            if ((rc = node_usable(sm, it->node, err)) != MB_OK)
                return rc;
        }
    }
    if (c->kind == CONSENSUS_CMD_AGENT_MOVE_BATCH && c->down_node != 0) {
        if (!node_find(sm, c->down_node, &pos))
            return mb_errorf(err, MB_ENOTFOUND, "node %llu not found",
                             (unsigned long long)c->down_node);
        return MB_OK; /* marking the node down applies even if no entry does */
    }
    /* At least one entry must apply; otherwise the first reason. */
    for (uint32_t i = 0; i < c->n_items; i++)
        if (batch_item_check(sm, c, &c->items[i], &pos, NULL) == MB_OK)
            return MB_OK;
    return batch_item_check(sm, c, &c->items[0], &pos, err);
}

/* Everything apply checks before changing anything. */

/* Studies' evaluator agents on a node are the node's own service agents:
 * they go with it when it is removed instead of blocking the removal
 * (a node's placed user agents must be drained first). */
static int node_service_agent(const consensus_agent *a, uint64_t node)
{
    return a->node == node && a->kind != NULL && strcmp(a->kind, "evaluator") == 0;
}

static int agent_remove_at(consensus_sm *sm, uint64_t index, size_t pos, const char *why,
                           consensus_effects *fx);

static int check_cmd(const consensus_sm *sm, const consensus_cmd *c, mb_error *err)
{
    size_t pos;
    int rc;
    if (!str_ok(c->by, CONSENSUS_ID_MAX))
        return mb_errorf(err, MB_EINVAL, "\"by\" longer than %d bytes", CONSENSUS_ID_MAX);
    if (c->kind >= CONSENSUS_CMD_STUDY_CREATE && c->kind <= CONSENSUS_CMD_TRIAL_REQUEUE)
        return cs_study_check(sm, &sm->studies, c, err); /* piece "studies" */
    switch (c->kind) {
    case CONSENSUS_CMD_VAR_DEFINE:
        if ((rc = mb_var_name_check(c->name, err)) != MB_OK)
            return rc;
        if (var_find(sm, c->name, &pos))
            return mb_errorf(err, MB_EEXIST, "variable \"%s\" already defined", c->name);
        if ((unsigned)c->policy > MB_POLICY_CONSENSUS)
            return mb_errorf(err, MB_EINVAL, "variable \"%s\": unknown change policy", c->name);
        if ((rc = mb_var_spec_check(c->name, &c->spec, err)) != MB_OK)
            return rc;
        if (c->value.type == MB_VT_NONE) {
            if (c->spec.type == MB_VT_TENSOR && c->spec.ndim == 0)
                return mb_errorf(err, MB_EINVAL,
                                 "variable \"%s\": a tensor without a fixed shape needs an "
                                 "initial value",
                                 c->name);
            return MB_OK;
        }
        return mb_value_validate(c->name, &c->spec, &c->value, err);
    case CONSENSUS_CMD_VAR_SET:
    case CONSENSUS_CMD_VAR_DELETE: {
        if ((rc = mb_var_name_check(c->name, err)) != MB_OK)
            return rc;
        if (!var_find(sm, c->name, &pos))
            return mb_errorf(err, MB_ENOTFOUND, "variable \"%s\" not found", c->name);
        const consensus_var *v = sm->vars[pos];
        if (c->kind == CONSENSUS_CMD_VAR_SET && v->policy == MB_POLICY_CONSENSUS)
            return mb_errorf(err, MB_EPERM,
                             "variable \"%s\" changes only by consensus: propose the value "
                             "(mabeam propose %s VALUE, or POST /v1/proposals)",
                             c->name, c->name);
        if (c->has_expected && c->expected != v->version)
            return mb_errorf(err, MB_ECONFLICT, "variable \"%s\": version is %llu, expected %llu",
                             c->name, (unsigned long long)v->version,
                             (unsigned long long)c->expected);
        if (c->kind == CONSENSUS_CMD_VAR_SET)
            return mb_value_validate(c->name, &v->spec, &c->value, err);
        return MB_OK;
    }
    case CONSENSUS_CMD_NODE_ADD:
    case CONSENSUS_CMD_NODE_UPDATE:
    case CONSENSUS_CMD_NODE_REMOVE:
        if (c->node.id == 0)
            return mb_errorf(err, MB_EINVAL, "node id 0 is not valid");
        if (!str_ok(c->node.raft_addr, CONSENSUS_ADDR_MAX) ||
            !str_ok(c->node.mesh_addr, CONSENSUS_ADDR_MAX) ||
            !str_ok(c->node.api_addr, CONSENSUS_ADDR_MAX))
            return mb_errorf(err, MB_EINVAL, "node %llu: address longer than %d bytes",
                             (unsigned long long)c->node.id, CONSENSUS_ADDR_MAX);
        if ((unsigned)c->node.role > CONSENSUS_ROLE_STANDBY ||
            (unsigned)c->node.status > CONSENSUS_NODE_DRAINING)
            return mb_errorf(err, MB_EINVAL, "node %llu: unknown role or status",
                             (unsigned long long)c->node.id);
        if (c->kind == CONSENSUS_CMD_NODE_ADD) {
            if (node_find(sm, c->node.id, &pos))
                return mb_errorf(err, MB_EEXIST, "node %llu already added",
                                 (unsigned long long)c->node.id);
            return MB_OK;
        }
        if (!node_find(sm, c->node.id, &pos))
            return mb_errorf(err, MB_ENOTFOUND, "node %llu not found",
                             (unsigned long long)c->node.id);
        if (c->kind == CONSENSUS_CMD_NODE_REMOVE) {
            size_t placed = 0;
            for (size_t i = 0; i < sm->n_agents; i++)
                placed += sm->agents[i]->node == c->node.id &&
                          !node_service_agent(sm->agents[i], c->node.id);
            if (placed > 0)
                return mb_errorf(err, MB_ESTATE, "node %llu still has %zu agents placed on it",
                                 (unsigned long long)c->node.id, placed);
        }
        return MB_OK;
    case CONSENSUS_CMD_AGENT_PLACE:
        if ((rc = ident_check("agent id", c->agent_id, err)) != MB_OK ||
            (rc = ident_check("agent kind", c->agent_kind, err)) != MB_OK)
            return rc;
        if (agent_find(sm, c->agent_id, &pos))
            return mb_errorf(err, MB_EEXIST, "agent \"%s\" already placed", c->agent_id);
        if (c->agent_config != NULL && c->agent_config[0] != '\0') {
            size_t len = strnlen(c->agent_config, CONSENSUS_CONFIG_MAX + 1);
            if (len > CONSENSUS_CONFIG_MAX)
                return mb_errorf(err, MB_ETOOBIG, "agent \"%s\": config longer than %u bytes",
                                 c->agent_id, CONSENSUS_CONFIG_MAX);
            cJSON *j = cJSON_ParseWithLength(c->agent_config, len);
            if (j == NULL)
                return mb_errorf(err, MB_EINVAL, "agent \"%s\": config is not JSON", c->agent_id);
            cJSON_Delete(j);
        }
        if ((rc = check_caps(c, err)) != MB_OK)
            return rc;
        return node_usable(sm, c->agent_node, err);
    case CONSENSUS_CMD_AGENT_REASSIGN: {
        if ((rc = agent_lookup(sm, c->agent_id, &pos, err)) != MB_OK)
            return rc;
        const consensus_agent *a = sm->agents[pos];
        if (c->has_expected && c->expected != a->generation)
            return mb_errorf(err, MB_ECONFLICT, "agent \"%s\": generation is %llu, expected %llu",
                             a->id, (unsigned long long)a->generation,
                             (unsigned long long)c->expected);
        return node_usable(sm, c->agent_node, err);
    }
    case CONSENSUS_CMD_AGENT_CHECKPOINT:
    case CONSENSUS_CMD_AGENT_STATUS: {
        if ((rc = agent_lookup(sm, c->agent_id, &pos, err)) != MB_OK)
            return rc;
        const consensus_agent *a = sm->agents[pos];
        if (c->generation != a->generation)
            return mb_errorf(err, MB_ECONFLICT,
                             "agent \"%s\": generation %llu is stale (current %llu)", a->id,
                             (unsigned long long)c->generation, (unsigned long long)a->generation);
        if (c->kind == CONSENSUS_CMD_AGENT_CHECKPOINT && c->blob_len > CONSENSUS_CHECKPOINT_MAX)
            return mb_errorf(err, MB_ETOOBIG, "agent \"%s\": checkpoint above %u bytes", a->id,
                             CONSENSUS_CHECKPOINT_MAX);
        if (c->kind == CONSENSUS_CMD_AGENT_CHECKPOINT && c->blob_len > 0 && c->blob == NULL)
            return mb_errorf(err, MB_EINVAL, "agent \"%s\": checkpoint has no data", a->id);
        if (c->kind == CONSENSUS_CMD_AGENT_STATUS &&
            (unsigned)c->agent_status > CONSENSUS_AGENT_CRASHED)
            return mb_errorf(err, MB_EINVAL, "agent \"%s\": unknown status", a->id);
        return MB_OK;
    }
    case CONSENSUS_CMD_AGENT_REMOVE:
        return agent_lookup(sm, c->agent_id, &pos, err);
    case CONSENSUS_CMD_AGENT_STATUS_BATCH:
    case CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH:
    case CONSENSUS_CMD_AGENT_MOVE_BATCH:
        return check_batch(sm, c, err);
    case CONSENSUS_CMD_PROPOSAL_OPEN:
        return check_proposal_open(sm, c, err);
    case CONSENSUS_CMD_PROPOSAL_VOTE:
    case CONSENSUS_CMD_PROPOSAL_CLOSE: {
        if ((rc = ident_check("proposal id", c->proposal_id, err)) != MB_OK)
            return rc;
        if (!prop_find(sm, c->proposal_id, &pos))
            return mb_errorf(err, MB_ENOTFOUND, "proposal \"%s\" not found (or already decided)",
                             c->proposal_id);
        const consensus_proposal *p = sm->props[pos];
        if (c->kind == CONSENSUS_CMD_PROPOSAL_CLOSE) {
            if (c->outcome != CONSENSUS_PROPOSAL_EXPIRED &&
                c->outcome != CONSENSUS_PROPOSAL_CANCELLED)
                return mb_errorf(err, MB_EINVAL,
                                 "proposal \"%s\": only expired or cancelled can be forced", p->id);
            return MB_OK;
        }
        if ((rc = ident_check("voter", c->voter, err)) != MB_OK)
            return rc;
        int64_t vi = prop_voter_index(p, c->voter);
        if (vi < 0)
            return mb_errorf(err, MB_EPERM, "proposal \"%s\": \"%s\" is not an eligible voter",
                             p->id, c->voter);
        if (p->votes[vi] != CONSENSUS_VOTE_NONE)
            return mb_errorf(err, MB_EEXIST, "proposal \"%s\": \"%s\" already voted", p->id,
                             c->voter);
        return MB_OK;
    }
    case CONSENSUS_CMD_PROPOSAL_VOTES:
        return check_proposal_votes(sm, c, err);
    default:
        if (cs_coord_is_cmd(c->kind)) /* coordination (piece: agents/coord) */
            return cs_coord_check(sm, c, err);
        return mb_errorf(err, MB_EINVAL, "unknown command kind %d", (int)c->kind);
    }
}

int consensus_sm_check(const consensus_sm *sm, const consensus_cmd *cmd, mb_error *err)
{
    return check_cmd(sm, cmd, err);
}

/* ---------------- JSON payloads ---------------- */

static cJSON *node_json(const consensus_node *n)
{
    static const char *const roles[] = { "voter", "standby" };
    static const char *const st[] = { "up", "suspect", "down", "left", "draining" };
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    if (!cJSON_AddNumberToObject(o, "id", (double)n->id) ||
        !cJSON_AddStringToObject(o, "raft_addr", str_or_empty(n->raft_addr)) ||
        !cJSON_AddStringToObject(o, "mesh_addr", str_or_empty(n->mesh_addr)) ||
        !cJSON_AddStringToObject(o, "api_addr", str_or_empty(n->api_addr)) ||
        !cJSON_AddStringToObject(o, "role", roles[n->role]) ||
        !cJSON_AddStringToObject(o, "status", st[n->status])) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *agent_json(const consensus_agent *a)
{
    static const char *const st[] = { "placed", "running", "stopped", "crashed" };
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    if (!cJSON_AddStringToObject(o, "id", a->id) || !cJSON_AddStringToObject(o, "kind", a->kind) ||
        !cJSON_AddNumberToObject(o, "node", (double)a->node) ||
        !cJSON_AddStringToObject(o, "status", st[a->status]) ||
        !cJSON_AddNumberToObject(o, "generation", (double)a->generation) ||
        !cJSON_AddNumberToObject(o, "restarts", a->restarts)) {
        cJSON_Delete(o);
        return NULL;
    }
    if (a->n_caps > 0) { /* placement */
        cJSON *caps = cJSON_AddArrayToObject(o, "caps");
        for (uint32_t i = 0; caps != NULL && i < a->n_caps; i++) {
            cJSON *str = cJSON_CreateString(a->caps[i]);
            if (str == NULL || !cJSON_AddItemToArray(caps, str)) {
                cJSON_Delete(str);
                caps = NULL;
            }
        }
        if (caps == NULL) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static char *u64_str(char *buf, size_t size, uint64_t v)
{
    snprintf(buf, size, "%llu", (unsigned long long)v);
    return buf;
}

/* ---------------- execution (after check_cmd succeeded) ---------------- */

static int exec_var_define(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                           consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    var_find(sm, c->name, &pos);
    if (cs_arr_grow((void ***)&sm->vars, &sm->cap_vars, sm->n_vars + 1) != MB_OK)
        return MB_ENOMEM;
    consensus_var *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return MB_ENOMEM;
    int ok = 1;
    v->name = cs_strdup_or_null(c->name, &ok);
    v->changed_by = cs_strdup_or_null(str_or_empty(c->by), &ok);
    v->policy = c->policy;
    v->version = v->created = index;
    int rc = ok ? mb_var_spec_copy(&v->spec, &c->spec) : MB_ENOMEM;
    if (rc == MB_OK)
        rc = c->value.type == MB_VT_NONE ? mb_value_default(&c->spec, &v->value)
                                         : mb_value_copy(&v->value, &c->value);
    cJSON *ev = NULL;
    if (rc == MB_OK && (rc = consensus_var_to_json(v, &ev)) == MB_OK)
        rc = fx_event(fx, "var.define", v->name, ev, index);
    if (rc == MB_OK)
        rc = fx_push(fx, CONSENSUS_FX_WATCH, NULL, v->name, NULL, index, 0, 0, 0);
    if (rc != MB_OK) {
        var_free(v);
        return rc;
    }
    cs_arr_insert((void **)sm->vars, &sm->n_vars, pos, v);
    res->version = index;
    return MB_OK;
}

/* Give variable `v` a new (validated) value at `index`, with its effects. */
static int var_assign(uint64_t index, consensus_var *v, const mb_value *value, const char *who,
                      consensus_effects *fx)
{
    mb_value nv;
    int ok = 1;
    char *by = cs_strdup_or_null(who, &ok);
    int rc = ok ? mb_value_copy(&nv, value) : MB_ENOMEM;
    if (rc != MB_OK) {
        free(by);
        return rc;
    }
    char *fast = NULL;
    rc =
        by != NULL ? cs_var_set_event_json(v->name, &nv, index, v->version, by, &fast) : MB_ENOTSUP;
    if (rc == MB_OK) {
        /* The write path's common case: no cJSON tree (same bytes). */
        rc = fx_push(fx, CONSENSUS_FX_EVENT, "var.set", v->name, fast, index, 0, 0, 0);
        goto watch;
    }
    if (rc != MB_ENOTSUP)
        goto fail;
    rc = MB_OK;
    cJSON *o = cJSON_CreateObject(), *jv = NULL;
    if (o == NULL || consensus_value_to_json(&nv, &jv) != MB_OK ||
        !cJSON_AddStringToObject(o, "name", v->name) || !cJSON_AddItemToObject(o, "value", jv) ||
        !cJSON_AddNumberToObject(o, "version", (double)index) ||
        !cJSON_AddNumberToObject(o, "prev_version", (double)v->version) ||
        !cJSON_AddStringToObject(o, "by", by))
        rc = MB_ENOMEM;
    if (rc != MB_OK && jv != NULL && (o == NULL || cJSON_GetObjectItem(o, "value") != jv))
        cJSON_Delete(jv);
    if (rc == MB_OK) {
        rc = fx_event(fx, "var.set", v->name, o, index);
        o = NULL;
    }
    cJSON_Delete(o);
watch:
    if (rc == MB_OK)
        rc = fx_push(fx, CONSENSUS_FX_WATCH, NULL, v->name, NULL, index, 0, 0, 0);
fail:
    if (rc != MB_OK) {
        mb_value_free(&nv);
        free(by);
        return rc;
    }
    mb_value_free(&v->value);
    v->value = nv;
    free(v->changed_by);
    v->changed_by = by;
    v->version = index;
    return MB_OK;
}

static int exec_var_set(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                        consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    var_find(sm, c->name, &pos);
    int rc = var_assign(index, sm->vars[pos], &c->value, str_or_empty(c->by), fx);
    if (rc == MB_OK)
        res->version = index;
    return rc;
}

static int prop_close(consensus_sm *sm, uint64_t index, size_t pos, consensus_outcome outcome,
                      consensus_effects *fx);

static int exec_var_delete(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                           consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    /* proposals piece: a proposal open on the variable is cancelled. */
    size_t open = prop_on_var(sm, c->name);
    if (open != SIZE_MAX) {
        int prc = prop_close(sm, index, open, CONSENSUS_PROPOSAL_CANCELLED, fx);
        if (prc != MB_OK)
            return prc;
    }
    var_find(sm, c->name, &pos);
    consensus_var *v = sm->vars[pos];
    cJSON *o = cJSON_CreateObject();
    int rc = MB_OK;
    if (o == NULL || !cJSON_AddStringToObject(o, "name", v->name) ||
        !cJSON_AddNumberToObject(o, "version", (double)index) ||
        !cJSON_AddNumberToObject(o, "prev_version", (double)v->version) ||
        !cJSON_AddStringToObject(o, "by", str_or_empty(c->by))) {
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    rc = fx_event(fx, "var.delete", v->name, o, index);
    if (rc == MB_OK)
        rc = fx_push(fx, CONSENSUS_FX_WATCH, NULL, v->name, NULL, index, 1, 0, 0);
    if (rc != MB_OK)
        return rc;
    cs_arr_remove((void **)sm->vars, &sm->n_vars, pos);
    var_free(v);
    res->version = index;
    return MB_OK;
}

static int exec_node(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                     consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    int found = node_find(sm, c->node.id, &pos);
    char sid[24];
    u64_str(sid, sizeof(sid), c->node.id);
    /* piece "studies": trials evaluated on a node that goes away are re-queued */
    if (c->kind == CONSENSUS_CMD_NODE_REMOVE ||
        (c->kind == CONSENSUS_CMD_NODE_UPDATE && (c->node_fields & CONSENSUS_NODE_SET_STATUS) &&
         (c->node.status == CONSENSUS_NODE_DOWN || c->node.status == CONSENSUS_NODE_LEFT))) {
        int rc = cs_studies_evaluator_gone(
            &sm->studies, index, NULL, 0, c->node.id,
            c->kind == CONSENSUS_CMD_NODE_REMOVE ? "was removed" : "is down", fx);
        if (rc != MB_OK)
            return rc;
    }
    if (c->kind == CONSENSUS_CMD_NODE_REMOVE) {
        for (size_t i = sm->n_agents; i-- > 0;) {
            if (!node_service_agent(sm->agents[i], c->node.id))
                continue;
            int rc = agent_remove_at(sm, index, i, "was removed with its node", fx);
            if (rc != MB_OK)
                return rc;
        }
        cJSON *o = node_json(sm->nodes[pos]);
        int rc = fx_event(fx, "node.remove", sid, o, index);
        if (rc != MB_OK)
            return rc;
        consensus_node *n = sm->nodes[pos];
        cs_arr_remove((void **)sm->nodes, &sm->n_nodes, pos);
        node_free(n);
        res->version = index;
        return MB_OK;
    }
    /* ADD or UPDATE: build the new record, then swap it in. */
    const consensus_node *old = found ? sm->nodes[pos] : NULL;
    unsigned f = c->kind == CONSENSUS_CMD_NODE_ADD ? ~0u : c->node_fields;
    consensus_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return MB_ENOMEM;
    int ok = 1;
    n->id = c->node.id;
    n->raft_addr = cs_strdup_or_null(
        str_or_empty((f & CONSENSUS_NODE_SET_RAFT_ADDR) ? c->node.raft_addr : old->raft_addr), &ok);
    n->mesh_addr = cs_strdup_or_null(
        str_or_empty((f & CONSENSUS_NODE_SET_MESH_ADDR) ? c->node.mesh_addr : old->mesh_addr), &ok);
    n->api_addr = cs_strdup_or_null(
        str_or_empty((f & CONSENSUS_NODE_SET_API_ADDR) ? c->node.api_addr : old->api_addr), &ok);
    n->role = (f & CONSENSUS_NODE_SET_ROLE) ? c->node.role : old->role;
    n->status = (f & CONSENSUS_NODE_SET_STATUS) ? c->node.status : old->status;
    int rc = ok ? MB_OK : MB_ENOMEM;
    if (rc == MB_OK && !found)
        rc = cs_arr_grow((void ***)&sm->nodes, &sm->cap_nodes, sm->n_nodes + 1);
    if (rc == MB_OK)
        rc = fx_event(fx, found ? "node.update" : "node.add", sid, node_json(n), index);
    if (rc != MB_OK) {
        node_free(n);
        return rc;
    }
    if (found) {
        node_free(sm->nodes[pos]);
        sm->nodes[pos] = n;
    } else {
        cs_arr_insert((void **)sm->nodes, &sm->n_nodes, pos, n);
    }
    res->version = index;
    return MB_OK;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* placement: a's caps = sorted unique copies of caps[0..n); 0 on ENOMEM. */
static int caps_copy(consensus_agent *a, char *const *caps, uint32_t n)
{
    if ((a->caps = calloc(n, sizeof(char *))) == NULL)
        return 0;
    int ok = 1;
    for (uint32_t i = 0; i < n; i++)
        a->caps[i] = cs_strdup_or_null(caps[i], &ok);
    a->n_caps = n;
    if (!ok)
        return 0;
    qsort(a->caps, n, sizeof(char *), cmp_str);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(a->caps[k - 1], a->caps[i]) == 0)
            free(a->caps[i]);
        else
            a->caps[k++] = a->caps[i];
    }
    a->n_caps = k;
    return 1;
}

static int exec_agent_place(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                            consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    agent_find(sm, c->agent_id, &pos);
    if (cs_arr_grow((void ***)&sm->agents, &sm->cap_agents, sm->n_agents + 1) != MB_OK)
        return MB_ENOMEM;
    consensus_agent *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return MB_ENOMEM;
    int ok = 1;
    a->id = cs_strdup_or_null(c->agent_id, &ok);
    a->kind = cs_strdup_or_null(c->agent_kind, &ok);
    a->config = cs_strdup_or_null(str_or_empty(c->agent_config), &ok);
    a->node = c->agent_node;
    a->status = CONSENSUS_AGENT_PLACED;
    a->generation = 1;
    if (ok && c->n_agent_caps > 0) /* placement: sorted, unique */
        ok = caps_copy(a, c->agent_caps, c->n_agent_caps);
    int rc = ok ? MB_OK : MB_ENOMEM;
    if (rc == MB_OK)
        rc = fx_event(fx, "agent.place", a->id, agent_json(a), index);
    if (rc == MB_OK)
        rc = fx_push(fx, CONSENSUS_FX_AGENT_START, NULL, a->id, NULL, index, 0, a->node,
                     a->generation);
    if (rc != MB_OK) {
        agent_free(a);
        return rc;
    }
    cs_arr_insert((void **)sm->agents, &sm->n_agents, pos, a);
    res->version = index;
    return MB_OK;
}

/* ---------------- proposals (proposals piece) ---------------- */

static const char *const rule_names[] = { "majority", "supermajority", "unanimous", "weighted",
                                          "byzantine" };
static const char *const outcome_names[] = { "open", "accepted", "rejected", "expired",
                                             "cancelled" };

const char *consensus_rule_name(consensus_rule r)
{
    return (unsigned)r <= CONSENSUS_RULE_BYZANTINE ? rule_names[r] : "?";
}

const char *consensus_outcome_name(consensus_outcome o)
{
    return (unsigned)o <= CONSENSUS_PROPOSAL_CANCELLED ? outcome_names[o] : "?";
}

int consensus_rule_parse(const char *s, consensus_rule *out)
{
    for (unsigned i = 0; s != NULL && i <= CONSENSUS_RULE_BYZANTINE; i++)
        if (strcmp(s, rule_names[i]) == 0) {
            *out = (consensus_rule)i;
            return MB_OK;
        }
    return MB_EINVAL;
}

/* Decide a proposal from its votes; OPEN while undecided. */
static consensus_outcome prop_evaluate(const consensus_proposal *p)
{
    double total = 0, yes = 0, no = 0;
    if (p->n_voters == 0)
        return CONSENSUS_PROPOSAL_REJECTED;
    /* Counts are exact: no loop over the voters per vote (1,000+ voters).
     * Weights are summed in voter order each time, so every node rounds
     * the same way, also after a restore. */
    if (p->weights == NULL) {
        total = p->n_voters;
        yes = p->n_yes;
        no = p->n_no;
    }
    for (uint32_t i = 0; p->weights != NULL && i < p->n_voters; i++) {
        double w = p->weights != NULL ? p->weights[i] : 1.0;
        total += w;
        if (p->votes[i] == CONSENSUS_VOTE_YES)
            yes += w;
        else if (p->votes[i] == CONSENSUS_VOTE_NO)
            no += w;
    }
    switch (p->rule) {
    case CONSENSUS_RULE_SUPERMAJORITY:
        if (yes >= p->fraction * total)
            return CONSENSUS_PROPOSAL_ACCEPTED;
        if (no > (1.0 - p->fraction) * total)
            return CONSENSUS_PROPOSAL_REJECTED;
        break;
    case CONSENSUS_RULE_UNANIMOUS:
        if (no > 0)
            return CONSENSUS_PROPOSAL_REJECTED;
        if (yes >= total)
            return CONSENSUS_PROPOSAL_ACCEPTED;
        break;
    case CONSENSUS_RULE_BYZANTINE:
        /* The quorum was fixed at open: voters that left can no longer
         * vote, but they do not lower the number of yes votes needed. */
        if (yes >= p->quorum)
            return CONSENSUS_PROPOSAL_ACCEPTED;
        if (total - no < p->quorum)
            return CONSENSUS_PROPOSAL_REJECTED;
        break;
    default: /* MAJORITY, WEIGHTED */
        if (2 * yes > total)
            return CONSENSUS_PROPOSAL_ACCEPTED;
        if (2 * no >= total)
            return CONSENSUS_PROPOSAL_REJECTED;
        break;
    }
    return CONSENSUS_PROPOSAL_OPEN;
}

int consensus_proposal_to_json(const consensus_proposal *p, int with_votes, cJSON **out)
{
    cJSON *o = cJSON_CreateObject(), *v = NULL, *voters = NULL, *votes = NULL;
    *out = NULL;
    if (o == NULL)
        return MB_ENOMEM;
    if (!cJSON_AddStringToObject(o, "id", p->id) ||
        !cJSON_AddStringToObject(o, "variable", p->variable) ||
        consensus_value_to_json(&p->value, &v) != MB_OK || !cJSON_AddItemToObject(o, "value", v))
        goto fail;
    v = NULL;
    if (!cJSON_AddStringToObject(o, "proposer", p->proposer) ||
        !cJSON_AddStringToObject(o, "rule", consensus_rule_name(p->rule)) ||
        (voters = cJSON_AddArrayToObject(o, "voters")) == NULL ||
        !cJSON_AddNumberToObject(o, "deadline_ms", (double)p->deadline_ms) ||
        !cJSON_AddNumberToObject(o, "opened", (double)p->opened) ||
        !cJSON_AddNumberToObject(o, "base_version", (double)p->base_version))
        goto fail;
    if (p->rule == CONSENSUS_RULE_SUPERMAJORITY &&
        !cJSON_AddNumberToObject(o, "fraction", p->fraction))
        goto fail;
    if (p->rule == CONSENSUS_RULE_BYZANTINE && (!cJSON_AddNumberToObject(o, "f", p->f) ||
                                                !cJSON_AddNumberToObject(o, "quorum", p->quorum)))
        goto fail;
    if (with_votes && (votes = cJSON_AddObjectToObject(o, "votes")) == NULL)
        goto fail;
    cJSON *weights = NULL;
    if (p->weights != NULL && (weights = cJSON_AddArrayToObject(o, "weights")) == NULL)
        goto fail;
    unsigned yes = 0, no = 0;
    for (uint32_t i = 0; i < p->n_voters; i++) {
        cJSON *s = cJSON_CreateString(p->voters[i]);
        if (s == NULL || !cJSON_AddItemToArray(voters, s)) {
            cJSON_Delete(s);
            goto fail;
        }
        if (weights != NULL && !cJSON_AddItemToArray(weights, cJSON_CreateNumber(p->weights[i])))
            goto fail;
        yes += p->votes[i] == CONSENSUS_VOTE_YES;
        no += p->votes[i] == CONSENSUS_VOTE_NO;
        if (votes != NULL && p->votes[i] != CONSENSUS_VOTE_NONE &&
            !cJSON_AddBoolToObject(votes, p->voters[i], p->votes[i] == CONSENSUS_VOTE_YES))
            goto fail;
    }
    if (with_votes &&
        (!cJSON_AddNumberToObject(o, "yes", yes) || !cJSON_AddNumberToObject(o, "no", no)))
        goto fail;
    *out = o;
    return MB_OK;
fail:
    cJSON_Delete(v);
    cJSON_Delete(o);
    return MB_ENOMEM;
}

static cJSON *prop_json(const consensus_proposal *p)
{
    cJSON *o = NULL;
    consensus_proposal_to_json(p, 0, &o);
    return o;
}

/* Close the proposal at `pos` with `outcome`; an accepted one sets its
 * variable in the same apply, unless the variable is gone or changed since
 * the open (then it is rejected, with the reason in the event). */
static int prop_close(consensus_sm *sm, uint64_t index, size_t pos, consensus_outcome outcome,
                      consensus_effects *fx)
{
    consensus_proposal *p = sm->props[pos];
    int rc;
    size_t vpos;
    const char *reason = NULL;
    if (outcome == CONSENSUS_PROPOSAL_ACCEPTED) {
        if (!var_find(sm, p->variable, &vpos)) {
            outcome = CONSENSUS_PROPOSAL_REJECTED;
            reason = "variable deleted";
        } else if (sm->vars[vpos]->version != p->base_version) {
            outcome = CONSENSUS_PROPOSAL_REJECTED;
            reason = "variable changed since the proposal opened";
        } else if (mb_value_validate(p->variable, &sm->vars[vpos]->spec, &p->value, NULL) !=
                   MB_OK) {
            outcome = CONSENSUS_PROPOSAL_REJECTED;
            reason = "value no longer valid";
        } else {
            char who[CONSENSUS_ID_MAX + 16];
            snprintf(who, sizeof(who), "proposal:%s", p->id);
            if ((rc = var_assign(index, sm->vars[vpos], &p->value, who, fx)) != MB_OK)
                return rc;
        }
    }
    unsigned yes = 0, no = 0;
    for (uint32_t i = 0; i < p->n_voters; i++) {
        yes += p->votes[i] == CONSENSUS_VOTE_YES;
        no += p->votes[i] == CONSENSUS_VOTE_NO;
    }
    cJSON *o = cJSON_CreateObject();
    if (o != NULL &&
        (!cJSON_AddStringToObject(o, "id", p->id) ||
         !cJSON_AddStringToObject(o, "variable", p->variable) ||
         !cJSON_AddStringToObject(o, "outcome", outcome_names[outcome]) ||
         !cJSON_AddNumberToObject(o, "yes", yes) || !cJSON_AddNumberToObject(o, "no", no) ||
         !cJSON_AddNumberToObject(o, "voters", p->n_voters) ||
         !cJSON_AddNumberToObject(o, "opened", (double)p->opened) ||
         (reason != NULL && !cJSON_AddStringToObject(o, "reason", reason)))) {
        cJSON_Delete(o);
        o = NULL;
    }
    if ((rc = fx_event(fx, "proposal.close", p->variable, o, index)) != MB_OK ||
        (rc = fx_push(fx, CONSENSUS_FX_PROPOSAL_CLOSE, NULL, p->id, NULL, p->opened, (int)outcome,
                      0, 0)) != MB_OK)
        return rc;
    cs_arr_remove((void **)sm->props, &sm->n_props, pos);
    prop_free(p);
    return MB_OK;
}

typedef struct voter_slot {
    char *id;
    double weight;
} voter_slot;

static int slot_cmp(const void *a, const void *b)
{
    return strcmp(((const voter_slot *)a)->id, ((const voter_slot *)b)->id);
}

static int exec_proposal_open(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                              consensus_result *res, consensus_effects *fx)
{
    size_t pos, vpos;
    char gen_id[24];
    const char *pid = c->proposal_id;
    if (pid == NULL || pid[0] == '\0')
        pid = u64_str(gen_id, sizeof(gen_id), index);
    if (prop_find(sm, pid, &pos))
        return MB_EEXIST;
    var_find(sm, c->name, &vpos);
    if (cs_arr_grow((void ***)&sm->props, &sm->cap_props, sm->n_props + 1) != MB_OK)
        return MB_ENOMEM;
    consensus_proposal *p = calloc(1, sizeof(*p));
    voter_slot *slots = calloc(c->n_voters, sizeof(*slots));
    cJSON *excluded = cJSON_CreateArray();
    if (p == NULL || slots == NULL || excluded == NULL) {
        free(p);
        free(slots);
        cJSON_Delete(excluded);
        return MB_ENOMEM;
    }
    int ok = 1;
    p->id = cs_strdup_or_null(pid, &ok);
    p->variable = cs_strdup_or_null(c->name, &ok);
    p->proposer = cs_strdup_or_null(str_or_empty(c->by), &ok);
    p->rule = c->rule;
    p->fraction = c->fraction;
    p->deadline_ms = c->deadline_ms;
    p->opened = index;
    p->f = c->f;
    p->base_version = sm->vars[vpos]->version;
    /* The eligible voters: the given ones minus agents already dead,
     * sorted so that a vote finds its voter by binary search. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_voters; i++) {
        if (voter_dead(sm, c->voters[i])) {
            ok &= cJSON_AddItemToArray(excluded, cJSON_CreateString(c->voters[i]));
            continue;
        }
        slots[n].id = c->voters[i];
        slots[n].weight = c->weights != NULL ? c->weights[i] : 1.0;
        n++;
    }
    qsort(slots, n, sizeof(*slots), slot_cmp);
    if (p->rule == CONSENSUS_RULE_BYZANTINE)
        p->quorum = 2 * n / 3 + 1;
    p->voters = calloc(n, sizeof(char *));
    p->votes = calloc(n, 1);
    if (p->voters == NULL || p->votes == NULL)
        ok = 0;
    else
        for (p->n_voters = 0; p->n_voters < n; p->n_voters++)
            p->voters[p->n_voters] = cs_strdup_or_null(slots[p->n_voters].id, &ok);
    if (c->weights != NULL) {
        if ((p->weights = malloc(n * sizeof(double))) == NULL)
            ok = 0;
        else
            for (uint32_t i = 0; i < n; i++)
                p->weights[i] = slots[i].weight;
    }
    free(slots);
    int rc = ok ? mb_value_copy(&p->value, &c->value) : MB_ENOMEM;
    cJSON *ev = rc == MB_OK ? prop_json(p) : NULL;
    if (ev != NULL && cJSON_GetArraySize(excluded) > 0) {
        cJSON_AddItemToObject(ev, "excluded", excluded);
        excluded = NULL;
    }
    cJSON_Delete(excluded);
    if (rc == MB_OK)
        rc = fx_event(fx, "proposal.open", p->variable, ev, index);
    if (rc == MB_OK)
        rc = fx_push(fx, CONSENSUS_FX_PROPOSAL_OPEN, NULL, p->id, NULL, index, 0, 0, 0);
    if (rc != MB_OK) {
        prop_free(p);
        return rc;
    }
    prop_find(sm, pid, &pos);
    cs_arr_insert((void **)sm->props, &sm->n_props, pos, p);
    res->version = index;
    return MB_OK;
}

/* studyfeat: open a proposal from inside another command's apply (a
 * study's on_finish propose): checked as PROPOSAL_OPEN, then executed. */
int cs_sm_proposal_open(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                        consensus_effects *fx, mb_error *err)
{
    int rc = check_proposal_open(sm, c, err);
    if (rc != MB_OK)
        return rc;
    consensus_result res;
    memset(&res, 0, sizeof(res));
    return exec_proposal_open(sm, index, c, &res, fx);
}

/* Record the vote of voter `vi` of the proposal at `pos` (checked) and
 * close the proposal if that decided it. */
static int prop_vote(consensus_sm *sm, uint64_t index, size_t pos, uint32_t vi, int yes,
                     consensus_effects *fx)
{
    consensus_proposal *p = sm->props[pos];
    cJSON *o = cJSON_CreateObject();
    if (o != NULL && (!cJSON_AddStringToObject(o, "id", p->id) ||
                      !cJSON_AddStringToObject(o, "voter", p->voters[vi]) ||
                      !cJSON_AddBoolToObject(o, "yes", yes != 0))) {
        cJSON_Delete(o);
        o = NULL;
    }
    int rc = fx_event(fx, "proposal.vote", p->variable, o, index);
    if (rc != MB_OK)
        return rc;
    p->votes[vi] = yes ? CONSENSUS_VOTE_YES : CONSENSUS_VOTE_NO;
    if (yes)
        p->n_yes++;
    else
        p->n_no++;
    consensus_outcome out = prop_evaluate(p);
    if (out != CONSENSUS_PROPOSAL_OPEN && (rc = prop_close(sm, index, pos, out, fx)) != MB_OK)
        return rc;
    return MB_OK;
}

static int exec_proposal_vote(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                              consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    prop_find(sm, c->proposal_id, &pos);
    int64_t vi = prop_voter_index(sm->props[pos], c->voter);
    int rc = prop_vote(sm, index, pos, (uint32_t)vi, c->yes, fx);
    if (rc == MB_OK)
        res->version = index;
    return rc;
}

/* A batch: each vote is applied on its own; one on a proposal that is not
 * open (decided earlier, maybe by this batch), by a voter that is not
 * eligible or has voted already is skipped. */
static int exec_proposal_votes(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                               consensus_result *res, consensus_effects *fx)
{
    uint32_t applied = 0;
    for (uint32_t i = 0; i < c->n_votes; i++) {
        size_t pos;
        if (!prop_find(sm, c->votes[i].proposal_id, &pos))
            continue;
        int64_t vi = prop_voter_index(sm->props[pos], c->votes[i].voter);
        if (vi < 0 || sm->props[pos]->votes[vi] != CONSENSUS_VOTE_NONE)
            continue;
        int rc = prop_vote(sm, index, pos, (uint32_t)vi, c->votes[i].yes, fx);
        if (rc != MB_OK)
            return rc;
        applied++;
    }
    res->version = index;
    snprintf(res->msg, sizeof(res->msg), "%u of %u votes counted", applied, c->n_votes);
    return MB_OK;
}

/* Agent `id` crashed, stopped or left: it leaves the voters of every open
 * proposal it has not voted on, and those proposals are re-evaluated. */
static int props_voter_left(consensus_sm *sm, uint64_t index, const char *id, consensus_effects *fx)
{
    for (size_t pos = 0; pos < sm->n_props;) {
        consensus_proposal *p = sm->props[pos];
        int64_t found = prop_voter_index(p, id);
        if (found < 0 || p->votes[found] != CONSENSUS_VOTE_NONE) {
            pos++;
            continue;
        }
        uint32_t i = (uint32_t)found;
        free(p->voters[i]);
        memmove(&p->voters[i], &p->voters[i + 1], (p->n_voters - i - 1) * sizeof(char *));
        memmove(&p->votes[i], &p->votes[i + 1], p->n_voters - i - 1);
        if (p->weights != NULL)
            memmove(&p->weights[i], &p->weights[i + 1], (p->n_voters - i - 1) * sizeof(double));
        p->n_voters--;
        cJSON *o = cJSON_CreateObject();
        if (o != NULL &&
            (!cJSON_AddStringToObject(o, "id", p->id) || !cJSON_AddStringToObject(o, "voter", id) ||
             !cJSON_AddNumberToObject(o, "voters", p->n_voters))) {
            cJSON_Delete(o);
            o = NULL;
        }
        int rc = fx_event(fx, "proposal.voter_left", p->variable, o, index);
        if (rc != MB_OK)
            return rc;
        consensus_outcome out = prop_evaluate(p);
        if (out == CONSENSUS_PROPOSAL_OPEN) {
            pos++;
            continue;
        }
        if ((rc = prop_close(sm, index, pos, out, fx)) != MB_OK)
            return rc;
    }
    return MB_OK;
}

/* Remove agents[pos]: events, its stop, and what it held (votes, trials,
 * leases) let go. */
static int agent_remove_at(consensus_sm *sm, uint64_t index, size_t pos, const char *why,
                           consensus_effects *fx)
{
    consensus_agent *a = sm->agents[pos];
    int rc;
    if ((rc = fx_event(fx, "agent.remove", a->id, agent_json(a), index)) != MB_OK ||
        (rc = fx_push(fx, CONSENSUS_FX_AGENT_STOP, NULL, a->id, NULL, index, 0, a->node,
                      a->generation)) != MB_OK)
        return rc;
    if ((rc = props_voter_left(sm, index, a->id, fx)) != MB_OK)
        return rc;
    if ((rc = cs_studies_evaluator_gone(&sm->studies, index, a->id, UINT64_MAX, 0, why, fx)) !=
        MB_OK) /* piece "studies" */
        return rc;
    if ((rc = cs_coord_agent_gone(sm, index, a, "removed", fx)) != MB_OK)
        return rc; /* coordination (piece: agents/coord) */
    cs_arr_remove((void **)sm->agents, &sm->n_agents, pos);
    agent_free(a);
    return MB_OK;
}

static int exec_agent(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                      consensus_result *res, consensus_effects *fx)
{
    size_t pos;
    agent_find(sm, c->agent_id, &pos);
    consensus_agent *a = sm->agents[pos];
    int rc;
    switch (c->kind) {
    case CONSENSUS_CMD_AGENT_REASSIGN: {
        consensus_agent next = *a;
        next.node = c->agent_node;
        next.generation = a->generation + 1;
        next.restarts = a->restarts + 1;
        next.status = CONSENSUS_AGENT_PLACED;
        cJSON *o = agent_json(&next);
        if (o != NULL && !cJSON_AddNumberToObject(o, "from_node", (double)a->node)) {
            cJSON_Delete(o);
            o = NULL;
        }
        /* coordination (piece: agents/coord): a new generation holds nothing */
        if ((rc = cs_coord_agent_gone(sm, index, a, "reassigned", fx)) != MB_OK)
            return rc;
        if ((rc = fx_event(fx, "agent.reassign", a->id, o, index)) != MB_OK ||
            (rc = fx_push(fx, CONSENSUS_FX_AGENT_STOP, NULL, a->id, NULL, index, 0, a->node,
                          a->generation)) != MB_OK ||
            (rc = fx_push(fx, CONSENSUS_FX_AGENT_START, NULL, a->id, NULL, index, 0, next.node,
                          next.generation)) != MB_OK)
            return rc;
        if ((rc = cs_studies_evaluator_gone(&sm->studies, index, a->id, next.generation, 0, "moved",
                                            fx)) != MB_OK) /* piece "studies" */
            return rc;
        *a = next;
        break;
    }
    case CONSENSUS_CMD_AGENT_CHECKPOINT: {
        void *blob = NULL;
        if (c->blob_len > 0 && (blob = malloc(c->blob_len)) == NULL)
            return MB_ENOMEM;
        if (c->blob_len > 0)
            memcpy(blob, c->blob, c->blob_len);
        cJSON *o = cJSON_CreateObject();
        if (o != NULL && (!cJSON_AddStringToObject(o, "id", a->id) ||
                          !cJSON_AddNumberToObject(o, "generation", (double)a->generation) ||
                          !cJSON_AddNumberToObject(o, "size", (double)c->blob_len))) {
            cJSON_Delete(o);
            o = NULL;
        }
        if ((rc = fx_event(fx, "agent.checkpoint", a->id, o, index)) != MB_OK) {
            free(blob);
            return rc;
        }
        free(a->checkpoint);
        a->checkpoint = blob;
        a->checkpoint_len = c->blob_len;
        a->has_checkpoint = 1;
        a->checkpoint_version = index;
        break;
    }
    case CONSENSUS_CMD_AGENT_STATUS: {
        consensus_agent next = *a;
        next.status = c->agent_status;
        if ((rc = fx_event(fx, "agent.status", a->id, agent_json(&next), index)) != MB_OK)
            return rc;
        a->status = c->agent_status;
        if ((a->status == CONSENSUS_AGENT_CRASHED || a->status == CONSENSUS_AGENT_STOPPED) &&
            (rc = props_voter_left(sm, index, a->id, fx)) != MB_OK)
            return rc;
        if ((a->status == CONSENSUS_AGENT_CRASHED || a->status == CONSENSUS_AGENT_STOPPED) &&
            (rc = cs_coord_agent_gone(sm, index, a,
                                      a->status == CONSENSUS_AGENT_CRASHED ? "crashed" : "stopped",
                                      fx)) != MB_OK) /* coordination (piece: agents/coord) */
            return rc;
        if ((a->status == CONSENSUS_AGENT_CRASHED || a->status == CONSENSUS_AGENT_STOPPED) &&
            (rc = cs_studies_evaluator_gone(
                 &sm->studies, index, a->id, UINT64_MAX, 0,
                 a->status == CONSENSUS_AGENT_CRASHED ? "crashed" : "stopped", fx)) !=
                MB_OK) /* piece "studies" */
            return rc;
        break;
    }
    case CONSENSUS_CMD_AGENT_REMOVE:
        if ((rc = agent_remove_at(sm, index, pos, "was removed", fx)) != MB_OK)
            return rc;
        break;
    default:
        return MB_EINTERNAL;
    }
    res->version = index;
    return MB_OK;
}

/* placement: the batch commands, entry by entry in order. */
static int exec_agent_batch(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                            consensus_result *res, consensus_effects *fx)
{
    int rc;
    size_t pos;
    uint32_t applied = 0;
    if (c->kind == CONSENSUS_CMD_AGENT_MOVE_BATCH && c->down_node != 0) {
        node_find(sm, c->down_node, &pos);
        consensus_node *n = sm->nodes[pos];
        if (n->status != CONSENSUS_NODE_DOWN) {
            consensus_node_status old = n->status;
            n->status = CONSENSUS_NODE_DOWN;
            char sid[24];
            if ((rc = fx_event(fx, "node.update", u64_str(sid, sizeof(sid), n->id), node_json(n),
                               index)) != MB_OK) {
                n->status = old;
                return rc;
            }
            /* piece "studies": as NODE_UPDATE to down */
            if ((rc = cs_studies_evaluator_gone(&sm->studies, index, NULL, 0, n->id, "is down",
                                                fx)) != MB_OK)
                return rc;
        }
    }
    for (uint32_t i = 0; i < c->n_items; i++) {
        const consensus_agent_item *it = &c->items[i];
        if (batch_item_check(sm, c, it, &pos, NULL) != MB_OK)
            continue;
        consensus_agent *a = sm->agents[pos];
        applied++;
        switch (c->kind) {
        case CONSENSUS_CMD_AGENT_STATUS_BATCH: {
            if (a->status == it->status)
                break;
            consensus_agent next = *a;
            next.status = it->status;
            if ((rc = fx_event(fx, "agent.status", a->id, agent_json(&next), index)) != MB_OK)
                return rc;
            a->status = it->status;
            if ((a->status == CONSENSUS_AGENT_CRASHED || a->status == CONSENSUS_AGENT_STOPPED) &&
                ((rc = props_voter_left(sm, index, a->id, fx)) != MB_OK ||
                 (rc = cs_coord_agent_gone(
                      sm, index, a, a->status == CONSENSUS_AGENT_CRASHED ? "crashed" : "stopped",
                      fx)) != MB_OK ||
                 (rc = cs_studies_evaluator_gone(
                      &sm->studies, index, a->id, UINT64_MAX, 0,
                      a->status == CONSENSUS_AGENT_CRASHED ? "crashed" : "stopped", fx)) != MB_OK))
                return rc;
            break;
        }
        case CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH:
        case CONSENSUS_CMD_AGENT_MOVE_BATCH: {
            int move = c->kind == CONSENSUS_CMD_AGENT_MOVE_BATCH;
            int with_blob = !move || it->has_blob;
            void *blob = NULL;
            if (with_blob && it->blob_len > 0) {
                if ((blob = malloc(it->blob_len)) == NULL)
                    return MB_ENOMEM;
                memcpy(blob, it->blob, it->blob_len);
            }
            consensus_agent next = *a;
            if (move) {
                next.node = it->node;
                next.generation = a->generation + 1;
                next.restarts = a->restarts + 1;
                next.status = CONSENSUS_AGENT_PLACED;
            }
            cJSON *o = move ? agent_json(&next) : cJSON_CreateObject();
            int built = o != NULL;
            if (built && move)
                built = cJSON_AddNumberToObject(o, "from_node", (double)a->node) != NULL;
            if (built && !move)
                built = cJSON_AddStringToObject(o, "id", a->id) != NULL &&
                        cJSON_AddNumberToObject(o, "generation", (double)a->generation) != NULL;
            if (built && with_blob)
                built = cJSON_AddNumberToObject(o, "size", (double)it->blob_len) != NULL;
            if (!built) {
                cJSON_Delete(o);
                o = NULL;
            }
            /* coordination: a new generation holds nothing; studies: its
             * trials are re-queued */
            if (move &&
                ((rc = cs_coord_agent_gone(sm, index, a, "reassigned", fx)) != MB_OK ||
                 (rc = cs_studies_evaluator_gone(&sm->studies, index, a->id, next.generation, 0,
                                                 "moved", fx)) != MB_OK)) {
                cJSON_Delete(o);
                free(blob);
                return rc;
            }
            if ((rc = fx_event(fx, move ? "agent.reassign" : "agent.checkpoint", a->id, o,
                               index)) != MB_OK) {
                free(blob);
                return rc;
            }
            if (move) {
                a->node = next.node;
                a->generation = next.generation;
                a->restarts = next.restarts;
                a->status = next.status;
            }
            if (with_blob) {
                free(a->checkpoint);
                a->checkpoint = blob;
                a->checkpoint_len = it->blob_len;
                a->has_checkpoint = 1;
                a->checkpoint_version = index;
            }
            break;
        }
        default:
            return MB_EINTERNAL;
        }
    }
    snprintf(res->msg, sizeof(res->msg), "%u of %u entries applied", applied, c->n_items);
    res->version = index;
    return MB_OK;
}

static int exec_cmd(consensus_sm *sm, uint64_t index, const consensus_cmd *c, consensus_result *res,
                    consensus_effects *fx)
{
    switch (c->kind) {
    case CONSENSUS_CMD_VAR_DEFINE:
        return exec_var_define(sm, index, c, res, fx);
    case CONSENSUS_CMD_VAR_SET:
        return exec_var_set(sm, index, c, res, fx);
    case CONSENSUS_CMD_VAR_DELETE:
        return exec_var_delete(sm, index, c, res, fx);
    case CONSENSUS_CMD_NODE_ADD:
    case CONSENSUS_CMD_NODE_UPDATE:
    case CONSENSUS_CMD_NODE_REMOVE:
        return exec_node(sm, index, c, res, fx);
    case CONSENSUS_CMD_AGENT_PLACE:
        return exec_agent_place(sm, index, c, res, fx);
    case CONSENSUS_CMD_AGENT_STATUS_BATCH:
    case CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH:
    case CONSENSUS_CMD_AGENT_MOVE_BATCH:
        return exec_agent_batch(sm, index, c, res, fx);
    case CONSENSUS_CMD_PROPOSAL_OPEN:
        return exec_proposal_open(sm, index, c, res, fx);
    case CONSENSUS_CMD_PROPOSAL_VOTE:
        return exec_proposal_vote(sm, index, c, res, fx);
    case CONSENSUS_CMD_PROPOSAL_VOTES:
        return exec_proposal_votes(sm, index, c, res, fx);
    case CONSENSUS_CMD_PROPOSAL_CLOSE: {
        size_t pos;
        prop_find(sm, c->proposal_id, &pos);
        int rc = prop_close(sm, index, pos, c->outcome, fx);
        if (rc == MB_OK)
            res->version = index;
        return rc;
    }
    case CONSENSUS_CMD_STUDY_CREATE:
    case CONSENSUS_CMD_STUDY_STOP:
    case CONSENSUS_CMD_STUDY_FINISH:
    case CONSENSUS_CMD_TRIAL_SUGGEST:
    case CONSENSUS_CMD_TRIAL_START:
    case CONSENSUS_CMD_TRIAL_REPORT:
    case CONSENSUS_CMD_TRIAL_FINISH:
    case CONSENSUS_CMD_TRIAL_REQUEUE:
        return cs_study_exec(sm, &sm->studies, index, c, res, fx); /* piece "studies" */
    default:
        if (cs_coord_is_cmd(c->kind)) /* coordination (piece: agents/coord) */
            return cs_coord_exec(sm, index, c, res, fx);
        return exec_agent(sm, index, c, res, fx);
    }
}

/* ---------------- apply ---------------- */

static void result_set(consensus_result *res, int code, const char *msg)
{
    res->code = code;
    snprintf(res->msg, sizeof(res->msg), "%s", msg != NULL ? msg : "");
}

static void apply_decoded(consensus_sm *sm, uint64_t index, const consensus_cmd *c, int decode_rc,
                          const mb_error *decode_err, consensus_result *res, consensus_effects *fx)
{
    memset(res, 0, sizeof(*res));
    if (index <= sm->applied) {
        snprintf(res->msg, sizeof(res->msg), "entry %llu already applied",
                 (unsigned long long)index);
        return;
    }
    sm->applied = index;
    if (decode_rc != MB_OK) {
        result_set(res, decode_rc, decode_err->msg);
        return;
    }
    if (c->client_id != 0) {
        const dedup_entry *d = dd_find(sm, c->client_id, c->request_seq);
        if (d != NULL) {
            res->code = d->code;
            res->version = d->version;
            snprintf(res->msg, sizeof(res->msg), "%s", d->msg != NULL ? d->msg : "");
            return;
        }
    }
    size_t mark = fx != NULL ? fx->n : 0;
    mb_error e;
    mb_error_clear(&e);
    int rc = check_cmd(sm, c, &e);
    if (rc == MB_OK && (rc = exec_cmd(sm, index, c, res, fx)) != MB_OK)
        mb_errorf(&e, rc, "apply entry %llu: %s", (unsigned long long)index, mb_strerror(rc));
    if (rc != MB_OK) {
        effects_truncate(fx, mark);
        res->version = 0;
        result_set(res, rc, e.msg);
    }
    /* Out of memory is not an answer to remember: a retry may succeed. */
    if (c->client_id != 0 && res->code != MB_ENOMEM)
        dd_insert(sm, c->client_id, c->request_seq, index, res->code, res->version,
                  res->msg[0] ? strdup(res->msg) : NULL);
}

void consensus_sm_apply_cmd(consensus_sm *sm, uint64_t index, const consensus_cmd *cmd,
                            consensus_result *res, consensus_effects *fx)
{
    apply_decoded(sm, index, cmd, MB_OK, NULL, res, fx);
}

void consensus_sm_apply(consensus_sm *sm, uint64_t index, const void *buf, size_t len,
                        consensus_result *res, consensus_effects *fx)
{
    consensus_cmd c;
    mb_error e;
    mb_error_clear(&e);
    int rc = index > sm->applied ? consensus_cmd_decode(buf, len, &c, &e) : MB_OK;
    if (index <= sm->applied)
        memset(&c, 0, sizeof(c));
    apply_decoded(sm, index, &c, rc, &e, res, fx);
    if (rc == MB_OK)
        consensus_cmd_free(&c);
}

int consensus_sm_dedup_lookup(const consensus_sm *sm, uint64_t client_id, uint64_t request_seq,
                              consensus_result *res)
{
    const dedup_entry *d = client_id != 0 ? dd_find(sm, client_id, request_seq) : NULL;
    if (d == NULL)
        return 0;
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
        res->code = d->code;
        res->version = d->version;
        snprintf(res->msg, sizeof(res->msg), "%s", d->msg != NULL ? d->msg : "");
    }
    return 1;
}

uint64_t consensus_sm_applied_index(const consensus_sm *sm)
{
    return sm->applied;
}

/* ---------------- reads ---------------- */

const consensus_var *consensus_sm_var_get(const consensus_sm *sm, const char *name)
{
    size_t pos;
    return name != NULL && var_find(sm, name, &pos) ? sm->vars[pos] : NULL;
}

size_t consensus_sm_var_count(const consensus_sm *sm)
{
    return sm->n_vars;
}

const consensus_var *consensus_sm_var_at(const consensus_sm *sm, size_t i)
{
    return i < sm->n_vars ? sm->vars[i] : NULL;
}

const consensus_node *consensus_sm_node_get(const consensus_sm *sm, uint64_t id)
{
    size_t pos;
    return node_find(sm, id, &pos) ? sm->nodes[pos] : NULL;
}

size_t consensus_sm_node_count(const consensus_sm *sm)
{
    return sm->n_nodes;
}

const consensus_node *consensus_sm_node_at(const consensus_sm *sm, size_t i)
{
    return i < sm->n_nodes ? sm->nodes[i] : NULL;
}

const consensus_agent *consensus_sm_agent_get(const consensus_sm *sm, const char *id)
{
    size_t pos;
    return id != NULL && agent_find(sm, id, &pos) ? sm->agents[pos] : NULL;
}

size_t consensus_sm_agent_count(const consensus_sm *sm)
{
    return sm->n_agents;
}

const consensus_agent *consensus_sm_agent_at(const consensus_sm *sm, size_t i)
{
    return i < sm->n_agents ? sm->agents[i] : NULL;
}

const consensus_proposal *consensus_sm_proposal_get(const consensus_sm *sm, const char *id)
{
    size_t pos;
    return id != NULL && prop_find(sm, id, &pos) ? sm->props[pos] : NULL;
}

const consensus_proposal *consensus_sm_proposal_by_index(const consensus_sm *sm, uint64_t opened)
{
    for (size_t i = 0; i < sm->n_props; i++)
        if (sm->props[i]->opened == opened)
            return sm->props[i];
    return NULL;
}

const consensus_proposal *consensus_sm_proposal_on_var(const consensus_sm *sm, const char *name)
{
    size_t i = name != NULL ? prop_on_var(sm, name) : SIZE_MAX;
    return i != SIZE_MAX ? sm->props[i] : NULL;
}

size_t consensus_sm_proposal_count(const consensus_sm *sm)
{
    return sm->n_props;
}

const consensus_proposal *consensus_sm_proposal_at(const consensus_sm *sm, size_t i)
{
    return i < sm->n_props ? sm->props[i] : NULL;
}

/* ---------------- studies (piece "studies") ---------------- */

const consensus_study *consensus_sm_study_get(const consensus_sm *sm, const char *id)
{
    size_t pos;
    return id != NULL && cs_study_find(&sm->studies, id, &pos) ? sm->studies.items[pos] : NULL;
}

size_t consensus_sm_study_count(const consensus_sm *sm)
{
    return sm->studies.n;
}

const consensus_study *consensus_sm_study_at(const consensus_sm *sm, size_t i)
{
    return i < sm->studies.n ? sm->studies.items[i] : NULL;
}

int cs_sm_event(consensus_effects *fx, const char *type, const char *subject, cJSON *obj,
                uint64_t index)
{
    return fx_event(fx, type, subject, obj, index);
}

int cs_sm_var_write(consensus_sm *sm, uint64_t index, const char *name, const mb_value *v,
                    const char *who, consensus_effects *fx)
{
    size_t pos;
    if (!var_find(sm, name, &pos))
        return MB_ENOTFOUND;
    return var_assign(index, sm->vars[pos], v, who, fx);
}

/* ---------------- snapshot ---------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int consensus_sm_snapshot(const consensus_sm *sm, void *(*alloc_fn)(size_t), void **buf,
                          size_t *len, mb_error *err)
{
    int rc = MB_ENOMEM;
    Mabeam__Snapshot s = MABEAM__SNAPSHOT__INIT;
    /* One allocation per table of pb structs, pointing into the state. */
    Mabeam__Variable *pv = calloc(sm->n_vars + 1, sizeof(*pv));
    Mabeam__VarSpec *ps = calloc(sm->n_vars + 1, sizeof(*ps));
    Mabeam__Value *pval = calloc(sm->n_vars + 1, sizeof(*pval));
    Mabeam__Variable **vptr = calloc(sm->n_vars + 1, sizeof(*vptr));
    Mabeam__NodeInfo *pn = calloc(sm->n_nodes + 1, sizeof(*pn));
    Mabeam__NodeInfo **nptr = calloc(sm->n_nodes + 1, sizeof(*nptr));
    Mabeam__Agent *pa = calloc(sm->n_agents + 1, sizeof(*pa));
    Mabeam__Agent **aptr = calloc(sm->n_agents + 1, sizeof(*aptr));
    Mabeam__DedupEntry *pd = calloc(sm->dd_n + 1, sizeof(*pd));
    Mabeam__DedupEntry **dptr = calloc(sm->dd_n + 1, sizeof(*dptr));
    size_t total_voters = 0;
    for (size_t i = 0; i < sm->n_props; i++)
        total_voters += sm->props[i]->n_voters;
    Mabeam__Proposal *pp = calloc(sm->n_props + 1, sizeof(*pp));
    Mabeam__Proposal **pptr = calloc(sm->n_props + 1, sizeof(*pptr));
    Mabeam__Value *ppval = calloc(sm->n_props + 1, sizeof(*ppval));
    uint32_t *pvotes = calloc(total_voters + 1, sizeof(uint32_t));
    void *study_scratch = NULL;
    void *coord_scratch = NULL;

    *buf = NULL;
    *len = 0;
    if (alloc_fn == NULL)
        alloc_fn = malloc;
    if (!pv || !ps || !pval || !vptr || !pn || !nptr || !pa || !aptr || !pd || !dptr || !pp ||
        !pptr || !ppval || !pvotes)
        goto out;
    s.has_format = s.has_applied_index = s.has_dedup_capacity = 1;
    s.format = SNAP_FORMAT;
    s.applied_index = sm->applied;
    s.dedup_capacity = sm->dd_cap;
    for (size_t i = 0; i < sm->n_vars; i++) {
        const consensus_var *v = sm->vars[i];
        mabeam__variable__init(&pv[i]);
        cs_spec_to_pb(&v->spec, &ps[i]);
        cs_value_to_pb(&v->value, &pval[i]);
        pv[i].name = v->name;
        pv[i].spec = &ps[i];
        pv[i].value = &pval[i];
        pv[i].has_policy = pv[i].has_version = pv[i].has_created = 1;
        pv[i].policy = (uint32_t)v->policy;
        pv[i].version = v->version;
        pv[i].created = v->created;
        pv[i].changed_by = v->changed_by;
        vptr[i] = &pv[i];
    }
    s.n_vars = sm->n_vars;
    s.vars = vptr;
    for (size_t i = 0; i < sm->n_nodes; i++) {
        const consensus_node *n = sm->nodes[i];
        mabeam__node_info__init(&pn[i]);
        pn[i].has_id = pn[i].has_role = pn[i].has_status = 1;
        pn[i].id = n->id;
        pn[i].raft_addr = n->raft_addr;
        pn[i].mesh_addr = n->mesh_addr;
        pn[i].api_addr = n->api_addr;
        pn[i].role = (uint32_t)n->role;
        pn[i].status = (uint32_t)n->status;
        nptr[i] = &pn[i];
    }
    s.n_nodes = sm->n_nodes;
    s.nodes = nptr;
    for (size_t i = 0; i < sm->n_agents; i++) {
        const consensus_agent *a = sm->agents[i];
        mabeam__agent__init(&pa[i]);
        pa[i].id = a->id;
        pa[i].kind = a->kind;
        pa[i].config = a->config;
        pa[i].has_node = pa[i].has_status = pa[i].has_generation = pa[i].has_restarts = 1;
        pa[i].node = a->node;
        pa[i].status = (uint32_t)a->status;
        pa[i].generation = a->generation;
        pa[i].restarts = a->restarts;
        pa[i].n_caps = a->n_caps;
        pa[i].caps = a->caps;
        if (a->has_checkpoint) {
            pa[i].has_checkpoint_version = 1;
            pa[i].checkpoint_version = a->checkpoint_version;
            pa[i].has_checkpoint = 1;
            pa[i].checkpoint.len = a->checkpoint_len;
            pa[i].checkpoint.data = a->checkpoint;
        }
        aptr[i] = &pa[i];
    }
    s.n_agents = sm->n_agents;
    s.agents = aptr;
    for (uint32_t i = 0; i < sm->dd_n; i++) {
        const dedup_entry *d = &sm->dd[(sm->dd_head + i) % sm->dd_cap];
        mabeam__dedup_entry__init(&pd[i]);
        pd[i].has_client_id = pd[i].has_request_seq = pd[i].has_index = pd[i].has_code = 1;
        pd[i].has_version = 1;
        pd[i].client_id = d->client_id;
        pd[i].request_seq = d->request_seq;
        pd[i].index = d->index;
        pd[i].code = (uint32_t)d->code;
        pd[i].message = d->msg;
        pd[i].version = d->version;
        dptr[i] = &pd[i];
    }
    s.n_dedup = sm->dd_n;
    s.dedup = dptr;
    uint32_t *vp = pvotes;
    for (size_t i = 0; i < sm->n_props; i++) {
        const consensus_proposal *p = sm->props[i];
        mabeam__proposal__init(&pp[i]);
        cs_value_to_pb(&p->value, &ppval[i]);
        pp[i].id = p->id;
        pp[i].variable = p->variable;
        pp[i].value = &ppval[i];
        pp[i].proposer = p->proposer;
        pp[i].has_rule = pp[i].has_deadline_ms = pp[i].has_opened = 1;
        pp[i].rule = (uint32_t)p->rule;
        pp[i].has_fraction = p->fraction != 0;
        pp[i].fraction = p->fraction;
        pp[i].n_voters = p->n_voters;
        pp[i].voters = p->voters;
        pp[i].n_weights = p->weights != NULL ? p->n_voters : 0;
        pp[i].weights = p->weights;
        for (uint32_t k = 0; k < p->n_voters; k++)
            vp[k] = p->votes[k];
        pp[i].n_votes = p->n_voters;
        pp[i].votes = vp;
        vp += p->n_voters;
        pp[i].deadline_ms = p->deadline_ms;
        pp[i].opened = p->opened;
        pp[i].has_f = p->f != 0;
        pp[i].f = p->f;
        pp[i].has_quorum = p->quorum != 0;
        pp[i].quorum = p->quorum;
        pp[i].has_base_version = 1;
        pp[i].base_version = p->base_version;
        pptr[i] = &pp[i];
    }
    s.n_proposals = sm->n_props;
    s.proposals = pptr;
    if (cs_studies_to_pb(&sm->studies, &s, &study_scratch) != MB_OK) /* piece "studies" */
        goto out;
    if (cs_coord_snapshot_pb(sm->coord, &s, &coord_scratch) != MB_OK)
        goto out; /* coordination (piece: agents/coord) */

    size_t body = mabeam__snapshot__get_packed_size(&s);
    uint8_t *out = alloc_fn(SNAP_HEADER + body);
    if (out == NULL)
        goto out;
    memcpy(out, SNAP_MAGIC, 4);
    put_be32(out + 4, SNAP_FORMAT);
    mabeam__snapshot__pack(&s, out + SNAP_HEADER);
    put_be32(out + 8, crc32_of(out + SNAP_HEADER, body));
    *buf = out;
    *len = SNAP_HEADER + body;
    rc = MB_OK;
out:
    free(pv);
    free(ps);
    free(pval);
    free(vptr);
    free(pn);
    free(nptr);
    free(pa);
    free(aptr);
    free(pd);
    free(dptr);
    free(pp);
    free(pptr);
    free(ppval);
    free(pvotes);
    cs_studies_pb_free(study_scratch);
    cs_coord_snapshot_done(coord_scratch);
    if (rc != MB_OK)
        mb_errorf(err, rc, "encode snapshot");
    return rc;
}

static int restore_var(consensus_sm *sm, const Mabeam__Variable *p, mb_error *err)
{
    mb_error e;
    if (p->name == NULL || mb_var_name_check(p->name, &e) != MB_OK)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: bad variable name");
    if (sm->n_vars > 0 && strcmp(sm->vars[sm->n_vars - 1]->name, p->name) >= 0)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: variables out of order at \"%s\"", p->name);
    if (!p->has_policy || p->policy > MB_POLICY_CONSENSUS || !p->has_version || !p->has_created ||
        p->created == 0 || p->created > p->version || p->version > sm->applied ||
        p->changed_by == NULL || strlen(p->changed_by) > CONSENSUS_ID_MAX)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: variable \"%s\" has bad fields", p->name);
    if (cs_arr_grow((void ***)&sm->vars, &sm->cap_vars, sm->n_vars + 1) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    consensus_var *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    int ok = 1, rc;
    v->name = cs_strdup_or_null(p->name, &ok);
    v->changed_by = cs_strdup_or_null(p->changed_by, &ok);
    v->policy = (mb_var_policy)p->policy;
    v->version = p->version;
    v->created = p->created;
    if (!ok) {
        var_free(v);
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    if ((rc = cs_spec_from_pb(p->spec, &v->spec, &e)) != MB_OK ||
        (rc = mb_var_spec_check(v->name, &v->spec, &e)) != MB_OK ||
        (rc = cs_value_from_pb(p->value, &v->value, &e)) != MB_OK ||
        (rc = mb_value_validate(v->name, &v->spec, &v->value, &e)) != MB_OK) {
        var_free(v);
        return mb_errorf(err, rc == MB_ENOMEM ? MB_ENOMEM : MB_ECORRUPT, "snapshot: %s", e.msg);
    }
    sm->vars[sm->n_vars++] = v;
    return MB_OK;
}

static int restore_node(consensus_sm *sm, const Mabeam__NodeInfo *p, mb_error *err)
{
    if (!p->has_id || p->id == 0 || !p->has_role || p->role > CONSENSUS_ROLE_STANDBY ||
        !p->has_status || p->status > CONSENSUS_NODE_DRAINING || p->raft_addr == NULL ||
        p->mesh_addr == NULL || p->api_addr == NULL || !str_ok(p->raft_addr, CONSENSUS_ADDR_MAX) ||
        !str_ok(p->mesh_addr, CONSENSUS_ADDR_MAX) || !str_ok(p->api_addr, CONSENSUS_ADDR_MAX))
        return mb_errorf(err, MB_ECORRUPT, "snapshot: node has bad fields");
    if (sm->n_nodes > 0 && sm->nodes[sm->n_nodes - 1]->id >= p->id)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: nodes out of order");
    if (cs_arr_grow((void ***)&sm->nodes, &sm->cap_nodes, sm->n_nodes + 1) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    consensus_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    int ok = 1;
    n->id = p->id;
    n->raft_addr = cs_strdup_or_null(p->raft_addr, &ok);
    n->mesh_addr = cs_strdup_or_null(p->mesh_addr, &ok);
    n->api_addr = cs_strdup_or_null(p->api_addr, &ok);
    n->role = (consensus_node_role)p->role;
    n->status = (consensus_node_status)p->status;
    if (!ok) {
        node_free(n);
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    sm->nodes[sm->n_nodes++] = n;
    return MB_OK;
}

static int restore_agent(consensus_sm *sm, const Mabeam__Agent *p, mb_error *err)
{
    mb_error e;
    size_t pos;
    if (ident_check("agent id", p->id, &e) != MB_OK || ident_check("kind", p->kind, &e) != MB_OK ||
        p->config == NULL || strlen(p->config) > CONSENSUS_CONFIG_MAX || !p->has_node ||
        !node_find(sm, p->node, &pos) || !p->has_status || p->status > CONSENSUS_AGENT_CRASHED ||
        !p->has_generation || p->generation == 0 || !p->has_restarts ||
        p->has_checkpoint_version != p->has_checkpoint ||
        (p->has_checkpoint &&
         (p->checkpoint.len > CONSENSUS_CHECKPOINT_MAX || p->checkpoint_version == 0 ||
          p->checkpoint_version > sm->applied)) ||
        (!p->has_checkpoint && p->checkpoint.len != 0) || p->n_caps > CONSENSUS_CAPS_MAX)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: agent has bad fields");
    for (size_t i = 0; i < p->n_caps; i++)
        if (ident_check("capability", p->caps[i], &e) != MB_OK ||
            (i > 0 && strcmp(p->caps[i - 1], p->caps[i]) >= 0))
            return mb_errorf(err, MB_ECORRUPT, "snapshot: agent has bad capabilities");
    if (sm->n_agents > 0 && strcmp(sm->agents[sm->n_agents - 1]->id, p->id) >= 0)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: agents out of order");
    if (cs_arr_grow((void ***)&sm->agents, &sm->cap_agents, sm->n_agents + 1) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    consensus_agent *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    int ok = 1;
    a->id = cs_strdup_or_null(p->id, &ok);
    a->kind = cs_strdup_or_null(p->kind, &ok);
    a->config = cs_strdup_or_null(p->config, &ok);
    a->node = p->node;
    a->status = (consensus_agent_status)p->status;
    a->generation = p->generation;
    a->restarts = p->restarts;
    if (ok && p->n_caps > 0)
        ok = caps_copy(a, p->caps, (uint32_t)p->n_caps);
    a->has_checkpoint = p->has_checkpoint ? 1 : 0;
    if (a->has_checkpoint) {
        a->checkpoint_version = p->checkpoint_version;
        a->checkpoint_len = p->checkpoint.len;
        if (p->checkpoint.len > 0) {
            a->checkpoint = malloc(p->checkpoint.len);
            if (a->checkpoint == NULL)
                ok = 0;
            else
                memcpy(a->checkpoint, p->checkpoint.data, p->checkpoint.len);
        }
    }
    if (!ok) {
        agent_free(a);
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    sm->agents[sm->n_agents++] = a;
    return MB_OK;
}

static int restore_prop(consensus_sm *sm, const Mabeam__Proposal *p, mb_error *err)
{
    mb_error e;
    size_t pos;
    if (ident_check("proposal id", p->id, &e) != MB_OK || p->variable == NULL ||
        mb_var_name_check(p->variable, &e) != MB_OK || p->proposer == NULL ||
        strlen(p->proposer) > CONSENSUS_ID_MAX || !p->has_rule ||
        p->rule > CONSENSUS_RULE_BYZANTINE ||
        (p->rule == CONSENSUS_RULE_SUPERMAJORITY ? !(p->fraction > 0.5 && p->fraction <= 1.0)
                                                 : p->fraction != 0) ||
        (p->rule == CONSENSUS_RULE_BYZANTINE ? p->quorum == 0 || p->quorum > CONSENSUS_MAX_VOTERS
                                             : p->f != 0 || p->quorum != 0) ||
        p->base_version > p->opened || p->n_voters == 0 || p->n_voters > CONSENSUS_MAX_VOTERS ||
        p->n_votes != p->n_voters ||
        p->n_weights != (p->rule == CONSENSUS_RULE_WEIGHTED ? p->n_voters : 0) ||
        !p->has_deadline_ms || p->deadline_ms < 0 || !p->has_opened || p->opened == 0 ||
        p->opened > sm->applied)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: proposal has bad fields");
    if (sm->n_props > 0 && strcmp(sm->props[sm->n_props - 1]->id, p->id) >= 0)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: proposals out of order");
    for (size_t i = 0; i < p->n_voters; i++) {
        if (ident_check("voter", p->voters[i], &e) != MB_OK || p->votes[i] > CONSENSUS_VOTE_NO ||
            (p->n_weights > 0 && !(isfinite(p->weights[i]) && p->weights[i] > 0)))
            return mb_errorf(err, MB_ECORRUPT, "snapshot: proposal \"%s\" has a bad voter", p->id);
        if (i > 0 && strcmp(p->voters[i - 1], p->voters[i]) >= 0)
            return mb_errorf(err, MB_ECORRUPT, "snapshot: proposal voters repeated or unsorted");
    }
    if (cs_arr_grow((void ***)&sm->props, &sm->cap_props, sm->n_props + 1) != MB_OK)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    consensus_proposal *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    int ok = 1, rc;
    q->id = cs_strdup_or_null(p->id, &ok);
    q->variable = cs_strdup_or_null(p->variable, &ok);
    q->proposer = cs_strdup_or_null(p->proposer, &ok);
    q->rule = (consensus_rule)p->rule;
    q->fraction = p->fraction;
    q->deadline_ms = p->deadline_ms;
    q->opened = p->opened;
    for (size_t i = 0; i < p->n_votes; i++) {
        q->n_yes += p->votes[i] == CONSENSUS_VOTE_YES;
        q->n_no += p->votes[i] == CONSENSUS_VOTE_NO;
    }
    q->f = p->f;
    q->quorum = p->quorum;
    q->base_version = p->base_version;
    q->voters = calloc(p->n_voters, sizeof(char *));
    q->votes = calloc(p->n_voters, 1);
    if (q->voters == NULL || q->votes == NULL)
        ok = 0;
    else
        for (q->n_voters = 0; q->n_voters < p->n_voters; q->n_voters++) {
            q->voters[q->n_voters] = cs_strdup_or_null(p->voters[q->n_voters], &ok);
            q->votes[q->n_voters] = (uint8_t)p->votes[q->n_voters];
        }
    if (p->n_weights > 0) {
        if ((q->weights = malloc(p->n_weights * sizeof(double))) == NULL)
            ok = 0;
        else
            memcpy(q->weights, p->weights, p->n_weights * sizeof(double));
    }
    if (!ok) {
        prop_free(q);
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    if ((rc = cs_value_from_pb(p->value, &q->value, &e)) != MB_OK ||
        (var_find(sm, q->variable, &pos) &&
         (rc = mb_value_validate(q->variable, &sm->vars[pos]->spec, &q->value, &e)) != MB_OK)) {
        prop_free(q);
        return mb_errorf(err, rc == MB_ENOMEM ? MB_ENOMEM : MB_ECORRUPT, "snapshot: %s", e.msg);
    }
    if (prop_evaluate(q) != CONSENSUS_PROPOSAL_OPEN) {
        prop_free(q);
        return mb_errorf(err, MB_ECORRUPT, "snapshot: proposal \"%s\" is already decided", p->id);
    }
    sm->props[sm->n_props++] = q;
    return MB_OK;
}

int consensus_sm_restore(const void *buf, size_t len, consensus_sm **out, mb_error *err)
{
    const uint8_t *p = buf;
    *out = NULL;
    if (buf == NULL || len < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 4) != 0)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: not a MABEAM state snapshot");
    if (get_be32(p + 4) != SNAP_FORMAT)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: format %u not supported", get_be32(p + 4));
    if (get_be32(p + 8) != crc32_of(p + SNAP_HEADER, len - SNAP_HEADER))
        return mb_errorf(err, MB_ECORRUPT, "snapshot: checksum mismatch");
    Mabeam__Snapshot *s = mabeam__snapshot__unpack(NULL, len - SNAP_HEADER, p + SNAP_HEADER);
    if (s == NULL)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: body is not a valid protobuf");
    consensus_sm *sm = NULL;
    int rc = MB_ECORRUPT;
    if (!s->has_format || s->format != SNAP_FORMAT || !s->has_applied_index ||
        !s->has_dedup_capacity || s->dedup_capacity == 0 || s->dedup_capacity > DEDUP_MAX ||
        s->n_dedup > s->dedup_capacity) {
        mb_errorf(err, rc, "snapshot: bad header fields");
        goto out;
    }
    if ((sm = sm_alloc(s->dedup_capacity)) == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "restore snapshot");
        goto out;
    }
    sm->applied = s->applied_index;
    for (size_t i = 0; i < s->n_vars; i++)
        if ((rc = restore_var(sm, s->vars[i], err)) != MB_OK)
            goto out;
    for (size_t i = 0; i < s->n_nodes; i++)
        if ((rc = restore_node(sm, s->nodes[i], err)) != MB_OK)
            goto out;
    for (size_t i = 0; i < s->n_agents; i++)
        if ((rc = restore_agent(sm, s->agents[i], err)) != MB_OK)
            goto out;
    for (size_t i = 0; i < s->n_proposals; i++)
        if ((rc = restore_prop(sm, s->proposals[i], err)) != MB_OK)
            goto out;
    if ((rc = cs_studies_restore(sm, &sm->studies, s, sm->applied, err)) != MB_OK)
        goto out; /* piece "studies" */
    if ((rc = cs_coord_restore_pb(sm, s, err)) != MB_OK)
        goto out; /* coordination (piece: agents/coord) */
    rc = MB_ECORRUPT;
    uint64_t prev = 0;
    for (size_t i = 0; i < s->n_dedup; i++) {
        const Mabeam__DedupEntry *d = s->dedup[i];
        if (!d->has_client_id || d->client_id == 0 || !d->has_request_seq || !d->has_index ||
            d->index <= prev || d->index > sm->applied || !d->has_code ||
            d->code >= MB_ERR_COUNT_ || !d->has_version ||
            (d->message != NULL && strlen(d->message) > DEDUP_MSG_MAX) ||
            dd_find(sm, d->client_id, d->request_seq) != NULL) {
            mb_errorf(err, rc, "snapshot: bad idempotency entry %zu", i);
            goto out;
        }
        prev = d->index;
        char *msg = NULL;
        if (d->message != NULL && (msg = strdup(d->message)) == NULL) {
            rc = mb_errorf(err, MB_ENOMEM, "restore snapshot");
            goto out;
        }
        dd_insert(sm, d->client_id, d->request_seq, d->index, (int)d->code, d->version, msg);
    }
    rc = MB_OK;
out:
    mabeam__snapshot__free_unpacked(s, NULL);
    if (rc != MB_OK) {
        consensus_sm_free(sm);
        return rc;
    }
    *out = sm;
    return MB_OK;
}
