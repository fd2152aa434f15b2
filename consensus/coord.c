/* Coordination primitives of the replicated state machine: leases held by
 * agents with expiry, barriers for n participants with a timeout, and
 * leader election within groups of agents. Pure like sm.c: time comes only
 * from commands (now_ms proposed by the node that submits them), and the
 * state machine's clock never goes back (the latest now_ms seen). An agent
 * that crashes, stops, is removed or reassigned loses its leases, leaves
 * open barriers and its election groups inside the same apply
 * (docs/coordination.md). */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

struct cs_coord {
    int64_t now_ms;
    consensus_lease **leases; /* sorted by name */
    size_t n_leases, cap_leases;
    consensus_barrier **barriers; /* sorted by name */
    size_t n_barriers, cap_barriers;
    consensus_election **elections; /* sorted by group */
    size_t n_elections, cap_elections;
};

static const char *const barrier_state_names[] = { "open", "passed", "timed_out" };

/* ---------------- tables ---------------- */

cs_coord *cs_coord_new(void)
{
    return calloc(1, sizeof(cs_coord));
}

static void lease_free(consensus_lease *l)
{
    if (l == NULL)
        return;
    free(l->name);
    free(l->holder);
    free(l);
}

static void strv_free(char **v, uint32_t n)
{
    if (v == NULL)
        return;
    for (uint32_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void barrier_free(consensus_barrier *b)
{
    if (b == NULL)
        return;
    free(b->name);
    strv_free(b->arrived, b->n_arrived);
    free(b);
}

static void election_free(consensus_election *e)
{
    if (e == NULL)
        return;
    free(e->group);
    strv_free(e->members, e->n_members);
    free(e->joined);
    free(e);
}

void cs_coord_free(cs_coord *co)
{
    if (co == NULL)
        return;
    for (size_t i = 0; i < co->n_leases; i++)
        lease_free(co->leases[i]);
    for (size_t i = 0; i < co->n_barriers; i++)
        barrier_free(co->barriers[i]);
    for (size_t i = 0; i < co->n_elections; i++)
        election_free(co->elections[i]);
    free(co->leases);
    free(co->barriers);
    free(co->elections);
    free(co);
}

static int lease_find(const cs_coord *co, const char *name, size_t *pos)
{
    return cs_str_find((void *const *)co->leases, co->n_leases, 0, name, pos);
}

static int barrier_find(const cs_coord *co, const char *name, size_t *pos)
{
    return cs_str_find((void *const *)co->barriers, co->n_barriers, 0, name, pos);
}

static int election_find(const cs_coord *co, const char *group, size_t *pos)
{
    return cs_str_find((void *const *)co->elections, co->n_elections, 0, group, pos);
}

static int64_t clock_of(const cs_coord *co, int64_t now_ms)
{
    return now_ms > co->now_ms ? now_ms : co->now_ms;
}

static uint32_t strv_index(char *const *v, uint32_t n, const char *s)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return i;
    return n;
}

/* ---------------- reads ---------------- */

const consensus_lease *consensus_sm_lease_get(const consensus_sm *sm, const char *name)
{
    const cs_coord *co = cs_sm_coord(sm);
    size_t pos;
    return name != NULL && lease_find(co, name, &pos) ? co->leases[pos] : NULL;
}

size_t consensus_sm_lease_count(const consensus_sm *sm)
{
    return cs_sm_coord(sm)->n_leases;
}

const consensus_lease *consensus_sm_lease_at(const consensus_sm *sm, size_t i)
{
    const cs_coord *co = cs_sm_coord(sm);
    return i < co->n_leases ? co->leases[i] : NULL;
}

const consensus_barrier *consensus_sm_barrier_get(const consensus_sm *sm, const char *name)
{
    const cs_coord *co = cs_sm_coord(sm);
    size_t pos;
    return name != NULL && barrier_find(co, name, &pos) ? co->barriers[pos] : NULL;
}

size_t consensus_sm_barrier_count(const consensus_sm *sm)
{
    return cs_sm_coord(sm)->n_barriers;
}

const consensus_barrier *consensus_sm_barrier_at(const consensus_sm *sm, size_t i)
{
    const cs_coord *co = cs_sm_coord(sm);
    return i < co->n_barriers ? co->barriers[i] : NULL;
}

const consensus_election *consensus_sm_election_get(const consensus_sm *sm, const char *group)
{
    const cs_coord *co = cs_sm_coord(sm);
    size_t pos;
    return group != NULL && election_find(co, group, &pos) ? co->elections[pos] : NULL;
}

size_t consensus_sm_election_count(const consensus_sm *sm)
{
    return cs_sm_coord(sm)->n_elections;
}

const consensus_election *consensus_sm_election_at(const consensus_sm *sm, size_t i)
{
    const cs_coord *co = cs_sm_coord(sm);
    return i < co->n_elections ? co->elections[i] : NULL;
}

int64_t consensus_sm_coord_now(const consensus_sm *sm)
{
    return cs_sm_coord(sm)->now_ms;
}

int64_t consensus_sm_coord_next_due(const consensus_sm *sm)
{
    const cs_coord *co = cs_sm_coord(sm);
    int64_t due = 0;
    for (size_t i = 0; i < co->n_leases; i++)
        if (due == 0 || co->leases[i]->expires_ms < due)
            due = co->leases[i]->expires_ms;
    for (size_t i = 0; i < co->n_barriers; i++) {
        const consensus_barrier *b = co->barriers[i];
        if (b->state == CONSENSUS_BARRIER_OPEN && b->deadline_ms != 0 &&
            (due == 0 || b->deadline_ms < due))
            due = b->deadline_ms;
    }
    return due;
}

/* ---------------- JSON ---------------- */

int consensus_lease_to_json(const consensus_lease *l, cJSON **out)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddStringToObject(o, "name", l->name) ||
        !cJSON_AddStringToObject(o, "holder", l->holder) ||
        !cJSON_AddNumberToObject(o, "ttl_ms", (double)l->ttl_ms) ||
        !cJSON_AddNumberToObject(o, "expires_ms", (double)l->expires_ms) ||
        !cJSON_AddNumberToObject(o, "token", (double)l->acquired) ||
        !cJSON_AddNumberToObject(o, "renewed", (double)l->renewed)) {
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    *out = o;
    return MB_OK;
}

static cJSON *strv_json(char *const *v, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; a != NULL && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (s == NULL || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            cJSON_Delete(a);
            a = NULL;
        }
    }
    return a;
}

int consensus_barrier_to_json(const consensus_barrier *b, cJSON **out)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = strv_json(b->arrived, b->n_arrived);
    uint32_t arrived = b->state == CONSENSUS_BARRIER_OPEN ? b->n_arrived : b->arrived_count;
    if (o == NULL || arr == NULL || !cJSON_AddStringToObject(o, "name", b->name) ||
        !cJSON_AddNumberToObject(o, "parties", b->parties) ||
        !cJSON_AddNumberToObject(o, "round", (double)b->round) ||
        !cJSON_AddStringToObject(o, "state", barrier_state_names[b->state]) ||
        !cJSON_AddNumberToObject(o, "arrived", arrived) ||
        !cJSON_AddNumberToObject(o, "timeout_ms", (double)b->timeout_ms) ||
        !cJSON_AddNumberToObject(o, "deadline_ms", (double)b->deadline_ms) ||
        !cJSON_AddItemToObject(o, "participants", arr)) {
        if (o == NULL || cJSON_GetObjectItem(o, "participants") != arr)
            cJSON_Delete(arr);
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    *out = o;
    return MB_OK;
}

int consensus_election_to_json(const consensus_election *e, cJSON **out)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = strv_json(e->members, e->n_members);
    if (o == NULL || arr == NULL || !cJSON_AddStringToObject(o, "group", e->group) ||
        !cJSON_AddStringToObject(o, "leader", e->n_members > 0 ? e->members[0] : "") ||
        !cJSON_AddNumberToObject(o, "term", (double)e->term) ||
        !cJSON_AddItemToObject(o, "members", arr)) {
        if (o == NULL || cJSON_GetObjectItem(o, "members") != arr)
            cJSON_Delete(arr);
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    *out = o;
    return MB_OK;
}

/* ---------------- effects ---------------- */

/* A small JSON object {"name": name, k1: v1, ...} as a cJSON-allocated
 * string (NULL on allocation failure); pairs end with NULL. */
static char *payload(const char *name_key, const char *name, const char *k1, double v1,
                     const char *k2, double v2, const char *k3, double v3)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddStringToObject(o, name_key, name) ||
        (k1 != NULL && !cJSON_AddNumberToObject(o, k1, v1)) ||
        (k2 != NULL && !cJSON_AddNumberToObject(o, k2, v2)) ||
        (k3 != NULL && !cJSON_AddNumberToObject(o, k3, v3))) {
        cJSON_Delete(o);
        return NULL;
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Tell agent `agent` about `name`; its node and generation come from the
 * agent table (0 when it is not there). */
static int notify(const consensus_sm *sm, consensus_effects *fx, int kind, const char *name,
                  const char *agent, char *pl, uint64_t index)
{
    if (pl == NULL)
        return MB_ENOMEM;
    const consensus_agent *a = consensus_sm_agent_get(sm, agent);
    return cs_fx_push(fx, kind, name, agent, pl, index, a != NULL ? a->node : 0,
                      a != NULL ? a->generation : 0);
}

/* An event {"name"/"group": name, "agent": agent, extras} for the log. */
static int event(consensus_effects *fx, const char *type, const char *key, const char *name,
                 const char *agent, const char *reason, uint64_t index, const char *k1, double v1,
                 const char *k2, double v2)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddStringToObject(o, key, name) ||
        (agent != NULL && !cJSON_AddStringToObject(o, "agent", agent)) ||
        (reason != NULL && !cJSON_AddStringToObject(o, "reason", reason)) ||
        (k1 != NULL && !cJSON_AddNumberToObject(o, k1, v1)) ||
        (k2 != NULL && !cJSON_AddNumberToObject(o, k2, v2))) {
        cJSON_Delete(o);
        return MB_ENOMEM;
    }
    return cs_fx_event(fx, type, name, o, index);
}

/* ---------------- checks ---------------- */

/* `id` must be a placed or running agent. */
static int holder_check(const consensus_sm *sm, const char *what, const char *id, mb_error *err)
{
    int rc = cs_ident_check(what, id, err);
    if (rc != MB_OK)
        return rc;
    const consensus_agent *a = consensus_sm_agent_get(sm, id);
    if (a == NULL)
        return mb_errorf(err, MB_ENOAGENT, "agent \"%s\" not found", id);
    if (a->status != CONSENSUS_AGENT_PLACED && a->status != CONSENSUS_AGENT_RUNNING)
        return mb_errorf(err, MB_ESTATE, "agent \"%s\" is %s", id,
                         a->status == CONSENSUS_AGENT_CRASHED ? "crashed" : "stopped");
    return MB_OK;
}

static int now_check(const consensus_cmd *c, mb_error *err)
{
    if (c->coord.now_ms <= 0)
        return mb_errorf(err, MB_EINVAL, "coordination command without a clock (now_ms)");
    return MB_OK;
}

int cs_coord_is_cmd(int kind)
{
    return kind >= CONSENSUS_CMD_LEASE_ACQUIRE && kind <= CONSENSUS_CMD_COORD_EXPIRE && kind != 44;
}

int cs_coord_check(const consensus_sm *sm, const consensus_cmd *c, mb_error *err)
{
    const cs_coord *co = cs_sm_coord(sm);
    const consensus_coord_cmd *k = &c->coord;
    size_t pos;
    int rc;
    switch (c->kind) {
    case CONSENSUS_CMD_LEASE_ACQUIRE:
    case CONSENSUS_CMD_LEASE_RENEW: {
        if ((rc = cs_ident_check("lease name", k->name, err)) != MB_OK ||
            (rc = holder_check(sm, "lease holder", k->holder, err)) != MB_OK ||
            (rc = now_check(c, err)) != MB_OK)
            return rc;
        if (k->ttl_ms == 0 || k->ttl_ms > CONSENSUS_LEASE_TTL_MAX_MS)
            return mb_errorf(err, MB_EINVAL, "lease \"%s\": ttl_ms must be in 1..%llu", k->name,
                             (unsigned long long)CONSENSUS_LEASE_TTL_MAX_MS);
        int64_t now = clock_of(co, k->now_ms);
        const consensus_lease *l = lease_find(co, k->name, &pos) ? co->leases[pos] : NULL;
        if (c->kind == CONSENSUS_CMD_LEASE_ACQUIRE) {
            if (l != NULL && l->expires_ms > now && strcmp(l->holder, k->holder) != 0)
                return mb_errorf(err, MB_EBUSY, "lease \"%s\" is held by \"%s\" for %lld ms more",
                                 k->name, l->holder, (long long)(l->expires_ms - now));
            return MB_OK;
        }
        if (l == NULL)
            return mb_errorf(err, MB_ENOTFOUND, "lease \"%s\" is not held", k->name);
        if (strcmp(l->holder, k->holder) != 0)
            return mb_errorf(err, MB_EPERM, "lease \"%s\" is held by \"%s\", not \"%s\"", k->name,
                             l->holder, k->holder);
        if (l->expires_ms <= now)
            return mb_errorf(err, MB_ESTATE, "lease \"%s\" expired %lld ms ago", k->name,
                             (long long)(now - l->expires_ms));
        return MB_OK;
    }
    case CONSENSUS_CMD_LEASE_RELEASE: {
        if ((rc = cs_ident_check("lease name", k->name, err)) != MB_OK ||
            (rc = cs_ident_check("lease holder", k->holder, err)) != MB_OK)
            return rc;
        if (!lease_find(co, k->name, &pos))
            return mb_errorf(err, MB_ENOTFOUND, "lease \"%s\" is not held", k->name);
        if (strcmp(co->leases[pos]->holder, k->holder) != 0)
            return mb_errorf(err, MB_EPERM, "lease \"%s\" is held by \"%s\", not \"%s\"", k->name,
                             co->leases[pos]->holder, k->holder);
        return MB_OK;
    }
    case CONSENSUS_CMD_BARRIER_ARRIVE: {
        if ((rc = cs_ident_check("barrier name", k->name, err)) != MB_OK ||
            (rc = holder_check(sm, "barrier participant", k->holder, err)) != MB_OK ||
            (rc = now_check(c, err)) != MB_OK)
            return rc;
        if (k->parties > CONSENSUS_COORD_MAX_PARTIES)
            return mb_errorf(err, MB_EINVAL, "barrier \"%s\": at most %d parties", k->name,
                             CONSENSUS_COORD_MAX_PARTIES);
        if (k->timeout_ms > CONSENSUS_LEASE_TTL_MAX_MS)
            return mb_errorf(err, MB_EINVAL, "barrier \"%s\": timeout_ms above %llu", k->name,
                             (unsigned long long)CONSENSUS_LEASE_TTL_MAX_MS);
        int64_t now = clock_of(co, k->now_ms);
        const consensus_barrier *b = barrier_find(co, k->name, &pos) ? co->barriers[pos] : NULL;
        int joins_open = b != NULL && b->state == CONSENSUS_BARRIER_OPEN &&
                         !(b->deadline_ms != 0 && b->deadline_ms <= now);
        if (!joins_open) {
            if (k->parties == 0)
                return mb_errorf(err, MB_EINVAL,
                                 "barrier \"%s\": the first arrival of a round gives the number "
                                 "of parties",
                                 k->name);
            return MB_OK;
        }
        if (k->parties != 0 && k->parties != b->parties)
            return mb_errorf(err, MB_EINVAL, "barrier \"%s\" has %u parties, not %u", k->name,
                             b->parties, k->parties);
        if (strv_index(b->arrived, b->n_arrived, k->holder) < b->n_arrived)
            return mb_errorf(err, MB_EEXIST, "barrier \"%s\": \"%s\" already arrived (round %llu)",
                             k->name, k->holder, (unsigned long long)b->round);
        return MB_OK;
    }
    case CONSENSUS_CMD_ELECTION_JOIN:
    case CONSENSUS_CMD_ELECTION_LEAVE: {
        if ((rc = cs_ident_check("election group", k->name, err)) != MB_OK)
            return rc;
        const consensus_election *e = election_find(co, k->name, &pos) ? co->elections[pos] : NULL;
        if (c->kind == CONSENSUS_CMD_ELECTION_JOIN) {
            if ((rc = holder_check(sm, "election member", k->holder, err)) != MB_OK)
                return rc;
            if (e == NULL)
                return MB_OK;
            if (strv_index(e->members, e->n_members, k->holder) < e->n_members)
                return mb_errorf(err, MB_EEXIST, "\"%s\" is already in election group \"%s\"",
                                 k->holder, k->name);
            if (e->n_members >= CONSENSUS_COORD_MAX_PARTIES)
                return mb_errorf(err, MB_EFULL, "election group \"%s\" has %d members", k->name,
                                 CONSENSUS_COORD_MAX_PARTIES);
            return MB_OK;
        }
        if ((rc = cs_ident_check("election member", k->holder, err)) != MB_OK)
            return rc;
        if (e == NULL || strv_index(e->members, e->n_members, k->holder) == e->n_members)
            return mb_errorf(err, MB_ENOTFOUND, "\"%s\" is not in election group \"%s\"", k->holder,
                             k->name);
        return MB_OK;
    }
    case CONSENSUS_CMD_COORD_EXPIRE: {
        if ((rc = now_check(c, err)) != MB_OK)
            return rc;
        int64_t due = consensus_sm_coord_next_due(sm);
        if (due == 0 || due > clock_of(co, k->now_ms))
            return mb_errorf(err, MB_ESTATE, "no lease or barrier is due at %lld ms",
                             (long long)k->now_ms);
        return MB_OK;
    }
    default:
        return mb_errorf(err, MB_EINVAL, "unknown command kind %d", (int)c->kind);
    }
}

/* ---------------- execution ---------------- */

static int lease_drop(consensus_sm *sm, cs_coord *co, size_t pos, uint64_t index,
                      const char *ev_type, const char *why, const consensus_agent *holder_rec,
                      consensus_effects *fx)
{
    consensus_lease *l = co->leases[pos];
    int rc = event(fx, ev_type, "name", l->name, l->holder, why, index, "token",
                   (double)l->acquired, NULL, 0);
    if (rc == MB_OK && strcmp(ev_type, "lease.release") != 0) {
        char *pl = payload("name", l->name, "token", (double)l->acquired, NULL, 0, NULL, 0);
        if (holder_rec != NULL)
            rc = pl == NULL ? MB_ENOMEM
                            : cs_fx_push(fx, CONSENSUS_FX_LEASE_LOST, l->name, l->holder, pl, index,
                                         holder_rec->node, holder_rec->generation);
        else
            rc = notify(sm, fx, CONSENSUS_FX_LEASE_LOST, l->name, l->holder, pl, index);
    }
    if (rc != MB_OK)
        return rc;
    cs_arr_remove((void **)co->leases, &co->n_leases, pos);
    lease_free(l);
    return MB_OK;
}

static int exec_lease(consensus_sm *sm, cs_coord *co, uint64_t index, const consensus_cmd *c,
                      consensus_effects *fx)
{
    const consensus_coord_cmd *k = &c->coord;
    int64_t now = clock_of(co, k->now_ms);
    size_t pos;
    int found = lease_find(co, k->name, &pos);
    int rc;
    if (c->kind == CONSENSUS_CMD_LEASE_RELEASE)
        return lease_drop(sm, co, pos, index, "lease.release", "released", NULL, fx);
    consensus_lease *l = found ? co->leases[pos] : NULL;
    if (l != NULL && strcmp(l->holder, k->holder) == 0 && l->expires_ms > now) {
        /* renewal (or a re-acquire by the holder) */
        if ((rc = event(fx, "lease.renew", "name", l->name, l->holder, NULL, index, "ttl_ms",
                        (double)k->ttl_ms, "token", (double)l->acquired)) != MB_OK)
            return rc;
        l->expires_ms = now + (int64_t)k->ttl_ms;
        l->ttl_ms = k->ttl_ms;
        l->renewed = index;
        co->now_ms = now;
        return MB_OK;
    }
    if (l != NULL) { /* expired but not yet collected: the old holder loses it */
        if ((rc = lease_drop(sm, co, pos, index, "lease.expire", "expired", NULL, fx)) != MB_OK)
            return rc;
    }
    if (cs_arr_grow((void ***)&co->leases, &co->cap_leases, co->n_leases + 1) != MB_OK)
        return MB_ENOMEM;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return MB_ENOMEM;
    int ok = 1;
    l->name = cs_strdup_or_null(k->name, &ok);
    l->holder = cs_strdup_or_null(k->holder, &ok);
    l->ttl_ms = k->ttl_ms;
    l->expires_ms = now + (int64_t)k->ttl_ms;
    l->acquired = l->renewed = index;
    rc = ok ? event(fx, "lease.acquire", "name", l->name, l->holder, NULL, index, "ttl_ms",
                    (double)l->ttl_ms, "token", (double)index)
            : MB_ENOMEM;
    if (rc == MB_OK)
        rc = notify(sm, fx, CONSENSUS_FX_LEASE_GRANTED, l->name, l->holder,
                    payload("name", l->name, "token", (double)index, "expires_ms",
                            (double)l->expires_ms, NULL, 0),
                    index);
    if (rc != MB_OK) {
        lease_free(l);
        return rc;
    }
    lease_find(co, k->name, &pos);
    cs_arr_insert((void **)co->leases, &co->n_leases, pos, l);
    co->now_ms = now;
    return MB_OK;
}

/* End the open round of `b` as PASSED or TIMED_OUT, telling its arrivals. */
static int barrier_finish(consensus_sm *sm, consensus_barrier *b, consensus_barrier_state st,
                          uint64_t index, consensus_effects *fx)
{
    int kind = st == CONSENSUS_BARRIER_PASSED ? CONSENSUS_FX_BARRIER_PASSED
                                              : CONSENSUS_FX_BARRIER_TIMED_OUT;
    int rc = event(fx, st == CONSENSUS_BARRIER_PASSED ? "barrier.pass" : "barrier.timeout", "name",
                   b->name, NULL, NULL, index, "arrived", b->n_arrived, "parties", b->parties);
    for (uint32_t i = 0; rc == MB_OK && i < b->n_arrived; i++)
        rc = notify(sm, fx, kind, b->name, b->arrived[i],
                    payload("name", b->name, "round", (double)b->round, "arrived", b->n_arrived,
                            "parties", b->parties),
                    index);
    if (rc != MB_OK)
        return rc;
    b->state = st;
    b->arrived_count = b->n_arrived;
    strv_free(b->arrived, b->n_arrived);
    b->arrived = NULL;
    b->n_arrived = 0;
    return MB_OK;
}

static int exec_barrier(consensus_sm *sm, cs_coord *co, uint64_t index, const consensus_cmd *c,
                        consensus_result *res, consensus_effects *fx)
{
    const consensus_coord_cmd *k = &c->coord;
    int64_t now = clock_of(co, k->now_ms);
    size_t pos;
    int rc;
    consensus_barrier *b = barrier_find(co, k->name, &pos) ? co->barriers[pos] : NULL;
    if (b != NULL && b->state == CONSENSUS_BARRIER_OPEN && b->deadline_ms != 0 &&
        b->deadline_ms <= now &&
        (rc = barrier_finish(sm, b, CONSENSUS_BARRIER_TIMED_OUT, index, fx)) != MB_OK)
        return rc;
    char *who = strdup(k->holder);
    if (who == NULL)
        return MB_ENOMEM;
    if (b == NULL) {
        if (cs_arr_grow((void ***)&co->barriers, &co->cap_barriers, co->n_barriers + 1) != MB_OK ||
            (b = calloc(1, sizeof(*b))) == NULL || (b->name = strdup(k->name)) == NULL) {
            free(b);
            free(who);
            return MB_ENOMEM;
        }
        b->state = CONSENSUS_BARRIER_PASSED; /* "finished round 0": starts round 1 below */
        cs_arr_insert((void **)co->barriers, &co->n_barriers, pos, b);
    }
    char **arr = realloc(b->arrived, (b->n_arrived + 1) * sizeof(char *));
    if (arr == NULL) {
        free(who);
        if (b->round == 0) {
            cs_arr_remove((void **)co->barriers, &co->n_barriers, pos);
            barrier_free(b);
        }
        return MB_ENOMEM;
    }
    b->arrived = arr;
    if (b->state != CONSENSUS_BARRIER_OPEN) { /* a new round */
        b->round++;
        b->state = CONSENSUS_BARRIER_OPEN;
        b->parties = k->parties;
        b->timeout_ms = k->timeout_ms;
        b->deadline_ms = k->timeout_ms != 0 ? now + (int64_t)k->timeout_ms : 0;
        b->arrived_count = 0;
        b->opened = index;
    }
    b->arrived[b->n_arrived++] = who;
    co->now_ms = now;
    rc = event(fx, "barrier.arrive", "name", b->name, who, NULL, index, "arrived", b->n_arrived,
               "round", (double)b->round);
    if (rc == MB_OK && b->n_arrived == b->parties)
        rc = barrier_finish(sm, b, CONSENSUS_BARRIER_PASSED, index, fx);
    if (rc == MB_OK)
        snprintf(res->msg, sizeof(res->msg), "round %llu: %u of %u arrived%s",
                 (unsigned long long)b->round,
                 b->state == CONSENSUS_BARRIER_OPEN ? b->n_arrived : b->arrived_count, b->parties,
                 b->state == CONSENSUS_BARRIER_PASSED ? ", passed" : "");
    return rc;
}

/* Remove member `i` of the election at `pos` (the leader when i == 0: the
 * next member by join order leads). `gone` (may be NULL) is the member's
 * agent record when it is leaving the agent table. */
static int election_remove(consensus_sm *sm, cs_coord *co, size_t pos, uint32_t i, uint64_t index,
                           const char *why, const consensus_agent *gone, consensus_effects *fx)
{
    consensus_election *e = co->elections[pos];
    int rc =
        event(fx, "election.leave", "group", e->group, e->members[i], why, index, NULL, 0, NULL, 0);
    if (rc == MB_OK && i == 0) {
        char *pl = payload("group", e->group, "term", (double)e->term, NULL, 0, NULL, 0);
        if (gone != NULL)
            rc = pl == NULL ? MB_ENOMEM
                            : cs_fx_push(fx, CONSENSUS_FX_LEADER_LOST, e->group, e->members[0], pl,
                                         index, gone->node, gone->generation);
        else
            rc = notify(sm, fx, CONSENSUS_FX_LEADER_LOST, e->group, e->members[0], pl, index);
        if (rc == MB_OK && e->n_members > 1) {
            rc = event(fx, "election.leader", "group", e->group, e->members[1], why, index, "term",
                       (double)(e->term + 1), NULL, 0);
            if (rc == MB_OK)
                rc = notify(
                    sm, fx, CONSENSUS_FX_LEADER_GAINED, e->group, e->members[1],
                    payload("group", e->group, "term", (double)(e->term + 1), NULL, 0, NULL, 0),
                    index);
        }
    }
    if (rc != MB_OK)
        return rc;
    if (i == 0)
        e->term++;
    free(e->members[i]);
    memmove(&e->members[i], &e->members[i + 1], (e->n_members - i - 1) * sizeof(char *));
    memmove(&e->joined[i], &e->joined[i + 1], (e->n_members - i - 1) * sizeof(uint64_t));
    e->n_members--;
    if (e->n_members == 0) {
        cs_arr_remove((void **)co->elections, &co->n_elections, pos);
        election_free(e);
    }
    return MB_OK;
}

static int exec_election(consensus_sm *sm, cs_coord *co, uint64_t index, const consensus_cmd *c,
                         consensus_effects *fx)
{
    const consensus_coord_cmd *k = &c->coord;
    size_t pos;
    int found = election_find(co, k->name, &pos);
    if (c->kind == CONSENSUS_CMD_ELECTION_LEAVE) {
        consensus_election *e = co->elections[pos];
        return election_remove(sm, co, pos, strv_index(e->members, e->n_members, k->holder), index,
                               "left", NULL, fx);
    }
    consensus_election *e = found ? co->elections[pos] : NULL;
    int created = 0;
    if (e == NULL) {
        if (cs_arr_grow((void ***)&co->elections, &co->cap_elections, co->n_elections + 1) !=
                MB_OK ||
            (e = calloc(1, sizeof(*e))) == NULL)
            return MB_ENOMEM;
        if ((e->group = strdup(k->name)) == NULL) {
            free(e);
            return MB_ENOMEM;
        }
        created = 1;
    }
    char *who = strdup(k->holder);
    char **m = who != NULL ? realloc(e->members, (e->n_members + 1) * sizeof(char *)) : NULL;
    if (m != NULL)
        e->members = m;
    uint64_t *j = m != NULL ? realloc(e->joined, (e->n_members + 1) * sizeof(uint64_t)) : NULL;
    if (j != NULL)
        e->joined = j;
    int rc = j != NULL ? MB_OK : MB_ENOMEM;
    if (rc == MB_OK)
        rc = event(fx, "election.join", "group", e->group, who, NULL, index, "members",
                   e->n_members + 1, NULL, 0);
    if (rc == MB_OK && e->n_members == 0) {
        rc = event(fx, "election.leader", "group", e->group, who, "first member", index, "term",
                   (double)(e->term + 1), NULL, 0);
        if (rc == MB_OK)
            rc = notify(sm, fx, CONSENSUS_FX_LEADER_GAINED, e->group, who,
                        payload("group", e->group, "term", (double)(e->term + 1), NULL, 0, NULL, 0),
                        index);
    }
    if (rc != MB_OK) {
        free(who);
        if (created)
            election_free(e);
        return rc;
    }
    if (e->n_members == 0)
        e->term++;
    e->members[e->n_members] = who;
    e->joined[e->n_members] = index;
    e->n_members++;
    if (created)
        cs_arr_insert((void **)co->elections, &co->n_elections, pos, e);
    return MB_OK;
}

static int exec_expire(consensus_sm *sm, cs_coord *co, uint64_t index, const consensus_cmd *c,
                       consensus_result *res, consensus_effects *fx)
{
    int64_t now = clock_of(co, c->coord.now_ms);
    unsigned leases = 0, barriers = 0;
    int rc;
    for (size_t i = 0; i < co->n_leases;) {
        if (co->leases[i]->expires_ms > now) {
            i++;
            continue;
        }
        if ((rc = lease_drop(sm, co, i, index, "lease.expire", "expired", NULL, fx)) != MB_OK)
            return rc;
        leases++;
    }
    for (size_t i = 0; i < co->n_barriers; i++) {
        consensus_barrier *b = co->barriers[i];
        if (b->state != CONSENSUS_BARRIER_OPEN || b->deadline_ms == 0 || b->deadline_ms > now)
            continue;
        if ((rc = barrier_finish(sm, b, CONSENSUS_BARRIER_TIMED_OUT, index, fx)) != MB_OK)
            return rc;
        barriers++;
    }
    co->now_ms = now;
    snprintf(res->msg, sizeof(res->msg), "%u leases expired, %u barriers timed out", leases,
             barriers);
    return MB_OK;
}

int cs_coord_exec(consensus_sm *sm, uint64_t index, const consensus_cmd *c, consensus_result *res,
                  consensus_effects *fx)
{
    cs_coord *co = cs_sm_coord(sm);
    int rc;
    switch (c->kind) {
    case CONSENSUS_CMD_LEASE_ACQUIRE:
    case CONSENSUS_CMD_LEASE_RENEW:
    case CONSENSUS_CMD_LEASE_RELEASE:
        rc = exec_lease(sm, co, index, c, fx);
        break;
    case CONSENSUS_CMD_BARRIER_ARRIVE:
        rc = exec_barrier(sm, co, index, c, res, fx);
        break;
    case CONSENSUS_CMD_ELECTION_JOIN:
    case CONSENSUS_CMD_ELECTION_LEAVE:
        rc = exec_election(sm, co, index, c, fx);
        break;
    case CONSENSUS_CMD_COORD_EXPIRE:
        rc = exec_expire(sm, co, index, c, res, fx);
        break;
    default:
        return MB_EINTERNAL;
    }
    if (rc == MB_OK)
        res->version = index;
    return rc;
}

int cs_coord_agent_gone(consensus_sm *sm, uint64_t index, const consensus_agent *a, const char *why,
                        consensus_effects *fx)
{
    cs_coord *co = cs_sm_coord(sm);
    int rc;
    for (size_t i = 0; i < co->n_leases;) {
        if (strcmp(co->leases[i]->holder, a->id) != 0) {
            i++;
            continue;
        }
        if ((rc = lease_drop(sm, co, i, index, "lease.lost", why, a, fx)) != MB_OK)
            return rc;
    }
    for (size_t i = 0; i < co->n_barriers; i++) {
        consensus_barrier *b = co->barriers[i];
        uint32_t k;
        if (b->state != CONSENSUS_BARRIER_OPEN ||
            (k = strv_index(b->arrived, b->n_arrived, a->id)) == b->n_arrived)
            continue;
        if ((rc = event(fx, "barrier.leave", "name", b->name, a->id, why, index, "arrived",
                        b->n_arrived - 1, "round", (double)b->round)) != MB_OK)
            return rc;
        free(b->arrived[k]);
        memmove(&b->arrived[k], &b->arrived[k + 1], (b->n_arrived - k - 1) * sizeof(char *));
        b->n_arrived--;
    }
    for (size_t i = 0; i < co->n_elections;) {
        consensus_election *e = co->elections[i];
        uint32_t k = strv_index(e->members, e->n_members, a->id);
        if (k == e->n_members) {
            i++;
            continue;
        }
        int last = e->n_members == 1;
        if ((rc = election_remove(sm, co, i, k, index, why, a, fx)) != MB_OK)
            return rc;
        if (!last)
            i++;
    }
    return MB_OK;
}

/* ---------------- codec ---------------- */

int cs_coord_cmd_to_pb(const consensus_cmd *cmd, Mabeam__Command *c, cs_coord_pb *t)
{
    const consensus_coord_cmd *k = &cmd->coord;
    switch (cmd->kind) {
    case CONSENSUS_CMD_LEASE_ACQUIRE:
    case CONSENSUS_CMD_LEASE_RENEW:
        mabeam__lease_acquire__init(&t->la);
        t->la.name = k->name;
        t->la.holder = k->holder;
        t->la.has_ttl_ms = t->la.has_now_ms = 1;
        t->la.ttl_ms = k->ttl_ms;
        t->la.now_ms = k->now_ms;
        if (cmd->kind == CONSENSUS_CMD_LEASE_ACQUIRE) {
            c->body_case = MABEAM__COMMAND__BODY_LEASE_ACQUIRE;
            c->lease_acquire = &t->la;
        } else {
            c->body_case = MABEAM__COMMAND__BODY_LEASE_RENEW;
            c->lease_renew = &t->la;
        }
        return 0;
    case CONSENSUS_CMD_LEASE_RELEASE:
        mabeam__lease_release__init(&t->lr);
        t->lr.name = k->name;
        t->lr.holder = k->holder;
        c->body_case = MABEAM__COMMAND__BODY_LEASE_RELEASE;
        c->lease_release = &t->lr;
        return 0;
    case CONSENSUS_CMD_BARRIER_ARRIVE:
        mabeam__barrier_arrive__init(&t->ba);
        t->ba.name = k->name;
        t->ba.participant = k->holder;
        t->ba.has_parties = t->ba.has_timeout_ms = t->ba.has_now_ms = 1;
        t->ba.parties = k->parties;
        t->ba.timeout_ms = k->timeout_ms;
        t->ba.now_ms = k->now_ms;
        c->body_case = MABEAM__COMMAND__BODY_BARRIER_ARRIVE;
        c->barrier_arrive = &t->ba;
        return 0;
    case CONSENSUS_CMD_ELECTION_JOIN:
    case CONSENSUS_CMD_ELECTION_LEAVE:
        mabeam__election_member__init(&t->em);
        t->em.group = k->name;
        t->em.member = k->holder;
        if (cmd->kind == CONSENSUS_CMD_ELECTION_JOIN) {
            c->body_case = MABEAM__COMMAND__BODY_ELECTION_JOIN;
            c->election_join = &t->em;
        } else {
            c->body_case = MABEAM__COMMAND__BODY_ELECTION_LEAVE;
            c->election_leave = &t->em;
        }
        return 0;
    case CONSENSUS_CMD_COORD_EXPIRE:
        mabeam__coord_expire__init(&t->ce);
        t->ce.has_now_ms = 1;
        t->ce.now_ms = k->now_ms;
        c->body_case = MABEAM__COMMAND__BODY_COORD_EXPIRE;
        c->coord_expire = &t->ce;
        return 0;
    default:
        return -1;
    }
}

int cs_coord_cmd_from_pb(const Mabeam__Command *c, consensus_cmd *d, int *ok, mb_error *err)
{
    consensus_coord_cmd *k = &d->coord;
    switch (c->body_case) {
    case MABEAM__COMMAND__BODY_LEASE_ACQUIRE:
    case MABEAM__COMMAND__BODY_LEASE_RENEW: {
        const Mabeam__LeaseAcquire *m =
            c->body_case == MABEAM__COMMAND__BODY_LEASE_ACQUIRE ? c->lease_acquire : c->lease_renew;
        d->kind = c->body_case == MABEAM__COMMAND__BODY_LEASE_ACQUIRE ? CONSENSUS_CMD_LEASE_ACQUIRE
                                                                      : CONSENSUS_CMD_LEASE_RENEW;
        k->name = cs_strdup_or_null(m->name, ok);
        k->holder = cs_strdup_or_null(m->holder, ok);
        k->ttl_ms = m->ttl_ms;
        k->now_ms = m->now_ms;
        return 0;
    }
    case MABEAM__COMMAND__BODY_LEASE_RELEASE:
        d->kind = CONSENSUS_CMD_LEASE_RELEASE;
        k->name = cs_strdup_or_null(c->lease_release->name, ok);
        k->holder = cs_strdup_or_null(c->lease_release->holder, ok);
        return 0;
    case MABEAM__COMMAND__BODY_BARRIER_ARRIVE: {
        const Mabeam__BarrierArrive *m = c->barrier_arrive;
        d->kind = CONSENSUS_CMD_BARRIER_ARRIVE;
        k->name = cs_strdup_or_null(m->name, ok);
        k->holder = cs_strdup_or_null(m->participant, ok);
        k->parties = m->parties;
        k->timeout_ms = m->timeout_ms;
        k->now_ms = m->now_ms;
        return 0;
    }
    case MABEAM__COMMAND__BODY_ELECTION_JOIN:
    case MABEAM__COMMAND__BODY_ELECTION_LEAVE: {
        const Mabeam__ElectionMember *m = c->body_case == MABEAM__COMMAND__BODY_ELECTION_JOIN
                                              ? c->election_join
                                              : c->election_leave;
        d->kind = c->body_case == MABEAM__COMMAND__BODY_ELECTION_JOIN
                      ? CONSENSUS_CMD_ELECTION_JOIN
                      : CONSENSUS_CMD_ELECTION_LEAVE;
        k->name = cs_strdup_or_null(m->group, ok);
        k->holder = cs_strdup_or_null(m->member, ok);
        return 0;
    }
    case MABEAM__COMMAND__BODY_COORD_EXPIRE:
        d->kind = CONSENSUS_CMD_COORD_EXPIRE;
        k->now_ms = c->coord_expire->now_ms;
        return 0;
    default:
        (void)err;
        return -1;
    }
}

/* ---------------- snapshot ---------------- */

typedef struct snap_scratch {
    Mabeam__LeaseRecord *l;
    Mabeam__LeaseRecord **lp;
    Mabeam__BarrierRecord *b;
    Mabeam__BarrierRecord **bp;
    Mabeam__ElectionRecord *e;
    Mabeam__ElectionRecord **ep;
} snap_scratch;

void cs_coord_snapshot_done(void *scratch)
{
    snap_scratch *t = scratch;
    if (t == NULL)
        return;
    free(t->l);
    free(t->lp);
    free(t->b);
    free(t->bp);
    free(t->e);
    free(t->ep);
    free(t);
}

int cs_coord_snapshot_pb(const cs_coord *co, Mabeam__Snapshot *s, void **scratch)
{
    snap_scratch *t = calloc(1, sizeof(*t));
    *scratch = t;
    if (t == NULL)
        return MB_ENOMEM;
    t->l = calloc(co->n_leases + 1, sizeof(*t->l));
    t->lp = calloc(co->n_leases + 1, sizeof(*t->lp));
    t->b = calloc(co->n_barriers + 1, sizeof(*t->b));
    t->bp = calloc(co->n_barriers + 1, sizeof(*t->bp));
    t->e = calloc(co->n_elections + 1, sizeof(*t->e));
    t->ep = calloc(co->n_elections + 1, sizeof(*t->ep));
    if (!t->l || !t->lp || !t->b || !t->bp || !t->e || !t->ep)
        return MB_ENOMEM;
    s->has_coord_now_ms = co->now_ms != 0;
    s->coord_now_ms = co->now_ms;
    for (size_t i = 0; i < co->n_leases; i++) {
        const consensus_lease *l = co->leases[i];
        Mabeam__LeaseRecord *p = &t->l[i];
        mabeam__lease_record__init(p);
        p->name = l->name;
        p->holder = l->holder;
        p->has_ttl_ms = p->has_expires_ms = p->has_acquired = p->has_renewed = 1;
        p->ttl_ms = l->ttl_ms;
        p->expires_ms = l->expires_ms;
        p->acquired = l->acquired;
        p->renewed = l->renewed;
        t->lp[i] = p;
    }
    s->n_leases = co->n_leases;
    s->leases = t->lp;
    for (size_t i = 0; i < co->n_barriers; i++) {
        const consensus_barrier *b = co->barriers[i];
        Mabeam__BarrierRecord *p = &t->b[i];
        mabeam__barrier_record__init(p);
        p->name = b->name;
        p->has_parties = p->has_timeout_ms = p->has_deadline_ms = p->has_round = 1;
        p->has_state = p->has_arrived_count = p->has_opened = 1;
        p->parties = b->parties;
        p->timeout_ms = b->timeout_ms;
        p->deadline_ms = b->deadline_ms;
        p->round = b->round;
        p->state = (uint32_t)b->state;
        p->n_arrived = b->n_arrived;
        p->arrived = b->arrived;
        p->arrived_count = b->arrived_count;
        p->opened = b->opened;
        t->bp[i] = p;
    }
    s->n_barriers = co->n_barriers;
    s->barriers = t->bp;
    for (size_t i = 0; i < co->n_elections; i++) {
        const consensus_election *e = co->elections[i];
        Mabeam__ElectionRecord *p = &t->e[i];
        mabeam__election_record__init(p);
        p->group = e->group;
        p->n_members = p->n_joined = e->n_members;
        p->members = e->members;
        p->joined = e->joined;
        p->has_term = 1;
        p->term = e->term;
        t->ep[i] = p;
    }
    s->n_elections = co->n_elections;
    s->elections = t->ep;
    return MB_OK;
}

/* A snapshot's agent id must name a live agent (dead ones hold nothing). */
static int live_agent(const consensus_sm *sm, const char *id)
{
    mb_error e;
    if (cs_ident_check("agent", id, &e) != MB_OK)
        return 0;
    const consensus_agent *a = consensus_sm_agent_get(sm, id);
    return a != NULL &&
           (a->status == CONSENSUS_AGENT_PLACED || a->status == CONSENSUS_AGENT_RUNNING);
}

static char **strv_copy(char *const *v, size_t n, int *ok)
{
    char **c = calloc(n + 1, sizeof(char *));
    if (c == NULL) {
        *ok = 0;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        c[i] = cs_strdup_or_null(v[i], ok);
    return c;
}

static int strv_has_dup(char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0)
                return 1;
    return 0;
}

int cs_coord_restore_pb(consensus_sm *sm, const Mabeam__Snapshot *s, mb_error *err)
{
    cs_coord *co = cs_sm_coord(sm);
    uint64_t applied = consensus_sm_applied_index(sm);
    mb_error e;
    int ok = 1;
    if (s->has_coord_now_ms && s->coord_now_ms < 0)
        return mb_errorf(err, MB_ECORRUPT, "snapshot: negative coordination clock");
    co->now_ms = s->coord_now_ms;
    if ((co->leases = calloc(s->n_leases + 1, sizeof(void *))) == NULL ||
        (co->barriers = calloc(s->n_barriers + 1, sizeof(void *))) == NULL ||
        (co->elections = calloc(s->n_elections + 1, sizeof(void *))) == NULL)
        return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    co->cap_leases = s->n_leases + 1;
    co->cap_barriers = s->n_barriers + 1;
    co->cap_elections = s->n_elections + 1;
    for (size_t i = 0; i < s->n_leases; i++) {
        const Mabeam__LeaseRecord *p = s->leases[i];
        if (cs_ident_check("lease", p->name, &e) != MB_OK || !live_agent(sm, p->holder) ||
            !p->has_ttl_ms || p->ttl_ms == 0 || p->ttl_ms > CONSENSUS_LEASE_TTL_MAX_MS ||
            !p->has_expires_ms || !p->has_acquired || p->acquired == 0 || p->acquired > applied ||
            !p->has_renewed || p->renewed < p->acquired || p->renewed > applied ||
            (i > 0 && strcmp(co->leases[i - 1]->name, p->name) >= 0))
            return mb_errorf(err, MB_ECORRUPT, "snapshot: lease %zu has bad fields", i);
        consensus_lease *l = calloc(1, sizeof(*l));
        if (l == NULL)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
        co->leases[co->n_leases++] = l;
        l->name = cs_strdup_or_null(p->name, &ok);
        l->holder = cs_strdup_or_null(p->holder, &ok);
        l->ttl_ms = p->ttl_ms;
        l->expires_ms = p->expires_ms;
        l->acquired = p->acquired;
        l->renewed = p->renewed;
        if (!ok)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    for (size_t i = 0; i < s->n_barriers; i++) {
        const Mabeam__BarrierRecord *p = s->barriers[i];
        int bad = cs_ident_check("barrier", p->name, &e) != MB_OK || !p->has_parties ||
                  p->parties == 0 || p->parties > CONSENSUS_COORD_MAX_PARTIES ||
                  !p->has_timeout_ms || p->timeout_ms > CONSENSUS_LEASE_TTL_MAX_MS ||
                  !p->has_deadline_ms || p->deadline_ms < 0 || !p->has_round || p->round == 0 ||
                  !p->has_state || p->state > CONSENSUS_BARRIER_TIMED_OUT ||
                  !p->has_arrived_count || !p->has_opened || p->opened == 0 ||
                  p->opened > applied || (i > 0 && strcmp(co->barriers[i - 1]->name, p->name) >= 0);
        if (!bad && p->state == CONSENSUS_BARRIER_OPEN)
            bad = p->n_arrived >= p->parties || p->arrived_count != 0 ||
                  strv_has_dup(p->arrived, p->n_arrived);
        else if (!bad)
            bad = p->n_arrived != 0 || p->arrived_count > p->parties ||
                  (p->state == CONSENSUS_BARRIER_PASSED) != (p->arrived_count == p->parties);
        for (size_t k = 0; !bad && k < p->n_arrived; k++)
            bad = !live_agent(sm, p->arrived[k]);
        if (bad)
            return mb_errorf(err, MB_ECORRUPT, "snapshot: barrier %zu has bad fields", i);
        consensus_barrier *b = calloc(1, sizeof(*b));
        if (b == NULL)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
        co->barriers[co->n_barriers++] = b;
        b->name = cs_strdup_or_null(p->name, &ok);
        b->arrived = strv_copy(p->arrived, p->n_arrived, &ok);
        b->n_arrived = (uint32_t)p->n_arrived;
        b->parties = p->parties;
        b->timeout_ms = p->timeout_ms;
        b->deadline_ms = p->deadline_ms;
        b->round = p->round;
        b->state = (consensus_barrier_state)p->state;
        b->arrived_count = p->arrived_count;
        b->opened = p->opened;
        if (!ok)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    for (size_t i = 0; i < s->n_elections; i++) {
        const Mabeam__ElectionRecord *p = s->elections[i];
        int bad = cs_ident_check("election group", p->group, &e) != MB_OK || p->n_members == 0 ||
                  p->n_members > CONSENSUS_COORD_MAX_PARTIES || p->n_joined != p->n_members ||
                  !p->has_term || p->term == 0 || strv_has_dup(p->members, p->n_members) ||
                  (i > 0 && strcmp(co->elections[i - 1]->group, p->group) >= 0);
        for (size_t k = 0; !bad && k < p->n_members; k++)
            bad = !live_agent(sm, p->members[k]) || p->joined[k] == 0 || p->joined[k] > applied ||
                  (k > 0 && p->joined[k] <= p->joined[k - 1]);
        if (bad)
            return mb_errorf(err, MB_ECORRUPT, "snapshot: election group %zu has bad fields", i);
        consensus_election *el = calloc(1, sizeof(*el));
        if (el == NULL)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
        co->elections[co->n_elections++] = el;
        el->group = cs_strdup_or_null(p->group, &ok);
        el->members = strv_copy(p->members, p->n_members, &ok);
        el->n_members = (uint32_t)p->n_members;
        el->term = p->term;
        if ((el->joined = malloc(p->n_members * sizeof(uint64_t))) == NULL)
            ok = 0;
        else
            memcpy(el->joined, p->joined, p->n_members * sizeof(uint64_t));
        if (!ok)
            return mb_errorf(err, MB_ENOMEM, "restore snapshot");
    }
    return MB_OK;
}
