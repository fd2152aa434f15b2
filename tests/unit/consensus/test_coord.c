/* Tests of the coordination primitives of the state machine (consensus/
 * coord.c): leases with expiry, barriers with timeout, elections; bad
 * input; holder death (crash, stop, removal, reassignment) inside the same
 * apply; the clock that never goes back; codec and snapshot round trips. */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "mb_test.h"
#include "sm_fixture.h"

static int place(const char *id, uint64_t node)
{
    return place_agent(id, "echo", node, NULL, 0).code;
}

static int setup(void)
{
    if (sm_fixture_setup() != MB_OK)
        return 1;
    for (uint64_t n = 1; n <= 2; n++) {
        consensus_cmd c = { .kind = CONSENSUS_CMD_NODE_ADD };
        c.node.id = n;
        run(&c);
    }
    return place("a", 1) != MB_OK || place("b", 2) != MB_OK || place("c", 1) != MB_OK;
}

static void fresh(void)
{
    sm_fixture_teardown();
    setup();
}

static consensus_result lease(consensus_cmd_kind kind, const char *name, const char *holder,
                              uint64_t ttl_ms, int64_t now_ms)
{
    consensus_cmd c = { .kind = kind };
    c.coord.name = (char *)name;
    c.coord.holder = (char *)holder;
    c.coord.ttl_ms = ttl_ms;
    c.coord.now_ms = now_ms;
    return run(&c);
}

static consensus_result arrive(const char *name, const char *who, uint32_t parties,
                               uint64_t timeout_ms, int64_t now_ms)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_BARRIER_ARRIVE };
    c.coord.name = (char *)name;
    c.coord.holder = (char *)who;
    c.coord.parties = parties;
    c.coord.timeout_ms = timeout_ms;
    c.coord.now_ms = now_ms;
    return run(&c);
}

static consensus_result member(consensus_cmd_kind kind, const char *group, const char *who)
{
    consensus_cmd c = { .kind = kind };
    c.coord.name = (char *)group;
    c.coord.holder = (char *)who;
    return run(&c);
}

static consensus_result expire(int64_t now_ms)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_COORD_EXPIRE };
    c.coord.now_ms = now_ms;
    return run(&c);
}

/* The n-th effect of `kind` (0-based), or NULL. */
static const consensus_effect *effect(consensus_effect_kind kind, size_t nth)
{
    for (size_t i = 0; i < fx.n; i++)
        if (fx.items[i].kind == kind && nth-- == 0)
            return &fx.items[i];
    return NULL;
}

static const consensus_effect *event(const char *type)
{
    return find_effect(CONSENSUS_FX_EVENT, type);
}

/* ---------------- leases ---------------- */

static void test_lease_acquire_grants_and_tells_the_holders_node(void)
{
    consensus_result r = lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "b", 1000, 5000);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    const consensus_lease *l = consensus_sm_lease_get(sm, "db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(l->holder, "b");
    CU_ASSERT_EQUAL(l->expires_ms, 6000);
    CU_ASSERT_EQUAL(l->acquired, r.version);
    const consensus_effect *g = effect(CONSENSUS_FX_LEASE_GRANTED, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->subject, "b");
    CU_ASSERT_STRING_EQUAL(g->type, "db");
    CU_ASSERT_EQUAL(g->node_id, 2);
    CU_ASSERT_EQUAL(g->generation, 1);
    CU_ASSERT_PTR_NOT_NULL(event("lease.acquire"));
}

static void test_lease_acquire_refused_while_held_by_another(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 5000);
    consensus_result r = lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "b", 1000, 5999);
    CU_ASSERT_EQUAL(r.code, MB_EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "\"a\""));
    CU_ASSERT_EQUAL(fx.n, 0);
    CU_ASSERT_STRING_EQUAL(consensus_sm_lease_get(sm, "db")->holder, "a");
}

static void test_lease_acquire_takes_over_an_expired_lease(void)
{
    consensus_result r1 = lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 5000);
    consensus_result r2 = lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "b", 1000, 6000);
    CU_ASSERT_EQUAL_FATAL(r2.code, MB_OK);
    const consensus_lease *l = consensus_sm_lease_get(sm, "db");
    CU_ASSERT_STRING_EQUAL(l->holder, "b");
    CU_ASSERT_TRUE(l->acquired > r1.version); /* new fencing token */
    const consensus_effect *lost = effect(CONSENSUS_FX_LEASE_LOST, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lost);
    CU_ASSERT_STRING_EQUAL(lost->subject, "a");
    CU_ASSERT_PTR_NOT_NULL(effect(CONSENSUS_FX_LEASE_GRANTED, 0));
}

static void test_lease_renew_extends_and_keeps_the_token(void)
{
    consensus_result r = lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 5000);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RENEW, "db", "a", 3000, 5500).code, MB_OK);
    const consensus_lease *l = consensus_sm_lease_get(sm, "db");
    CU_ASSERT_EQUAL(l->expires_ms, 8500);
    CU_ASSERT_EQUAL(l->acquired, r.version);
    CU_ASSERT_EQUAL(l->renewed, next_index);
    CU_ASSERT_PTR_NULL(effect(CONSENSUS_FX_LEASE_GRANTED, 0));
}

static void test_lease_renew_refused_for_other_holder_or_expired(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 5000);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RENEW, "db", "b", 1000, 5100).code, MB_EPERM);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RENEW, "db", "a", 1000, 6000).code, MB_ESTATE);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RENEW, "nope", "a", 1000, 5100).code, MB_ENOTFOUND);
}

static void test_lease_release_by_holder_only(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 5000);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RELEASE, "db", "b", 0, 0).code, MB_EPERM);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_lease_get(sm, "db"));
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RELEASE, "db", "a", 0, 0).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_lease_get(sm, "db"));
    CU_ASSERT_PTR_NOT_NULL(event("lease.release"));
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_RELEASE, "db", "a", 0, 0).code, MB_ENOTFOUND);
}

static void test_lease_rejects_bad_input(void)
{
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "", "a", 1000, 5000).code, MB_EINVAL);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "bad name", "a", 1000, 5000).code,
                    MB_EINVAL);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "ghost", 1000, 5000).code,
                    MB_ENOAGENT);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 0, 5000).code, MB_EINVAL);
    CU_ASSERT_EQUAL(
        lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", CONSENSUS_LEASE_TTL_MAX_MS + 1, 5000).code,
        MB_EINVAL);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 0).code, MB_EINVAL);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, -5).code, MB_EINVAL);
    agent_status("c", CONSENSUS_AGENT_CRASHED);
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "c", 1000, 5000).code, MB_ESTATE);
    CU_ASSERT_EQUAL(consensus_sm_lease_count(sm), 0);
}

static void test_expire_collects_due_leases_only(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "x", "a", 1000, 5000);
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "y", "b", 5000, 5000);
    CU_ASSERT_EQUAL(consensus_sm_coord_next_due(sm), 6000);
    CU_ASSERT_EQUAL(expire(5999).code, MB_ESTATE); /* nothing due yet */
    CU_ASSERT_EQUAL(consensus_sm_lease_count(sm), 2);
    CU_ASSERT_EQUAL(expire(6000).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_lease_get(sm, "x"));
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_lease_get(sm, "y"));
    const consensus_effect *lost = effect(CONSENSUS_FX_LEASE_LOST, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lost);
    CU_ASSERT_STRING_EQUAL(lost->subject, "a");
    CU_ASSERT_EQUAL(lost->node_id, 1);
    CU_ASSERT_PTR_NOT_NULL(event("lease.expire"));
    CU_ASSERT_EQUAL(consensus_sm_coord_next_due(sm), 10000);
    CU_ASSERT_EQUAL(expire(0).code, MB_EINVAL);
}

static void test_clock_never_goes_back(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "x", "b", 10, 8000);
    CU_ASSERT_EQUAL(expire(9000).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_coord_now(sm), 9000);
    /* a proposer with a slow clock: the lease runs from the state's clock */
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 4000).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_lease_get(sm, "db")->expires_ms, 10000);
    CU_ASSERT_EQUAL(consensus_sm_coord_now(sm), 9000);
}

static void test_lease_released_when_holder_crashes(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 60000, 5000);
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "other", "b", 60000, 5000);
    CU_ASSERT_EQUAL(agent_status("a", CONSENSUS_AGENT_CRASHED).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_lease_get(sm, "db"));
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_lease_get(sm, "other"));
    const consensus_effect *lost = effect(CONSENSUS_FX_LEASE_LOST, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lost);
    CU_ASSERT_STRING_EQUAL(lost->subject, "a");
    CU_ASSERT_PTR_NOT_NULL(event("lease.lost"));
    /* someone else can take it at once */
    CU_ASSERT_EQUAL(lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "c", 1000, 5001).code, MB_OK);
}

static void test_lease_released_when_holder_stops_is_removed_or_reassigned(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "l1", "a", 60000, 5000);
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "l2", "b", 60000, 5000);
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "l3", "c", 60000, 5000);
    agent_status("a", CONSENSUS_AGENT_STOPPED);
    CU_ASSERT_PTR_NULL(consensus_sm_lease_get(sm, "l1"));
    consensus_cmd rm = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = "b" };
    CU_ASSERT_EQUAL(run(&rm).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_lease_get(sm, "l2"));
    CU_ASSERT_PTR_NOT_NULL(effect(CONSENSUS_FX_LEASE_LOST, 0));
    consensus_cmd re = { .kind = CONSENSUS_CMD_AGENT_REASSIGN, .agent_id = "c", .agent_node = 2 };
    CU_ASSERT_EQUAL(run(&re).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_lease_get(sm, "l3"));
    const consensus_effect *lost = effect(CONSENSUS_FX_LEASE_LOST, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lost);
    CU_ASSERT_EQUAL(lost->node_id, 1); /* the old copy is told */
    CU_ASSERT_EQUAL(lost->generation, 1);
}

/* ---------------- barriers ---------------- */

static void test_barrier_passes_when_all_parties_arrive(void)
{
    consensus_result r = arrive("sync", "a", 3, 0, 1000);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "1 of 3"));
    CU_ASSERT_EQUAL(arrive("sync", "b", 0, 0, 1001).code, MB_OK);
    CU_ASSERT_PTR_NULL(effect(CONSENSUS_FX_BARRIER_PASSED, 0));
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(sm, "sync")->n_arrived, 2);
    r = arrive("sync", "c", 3, 0, 1002);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "passed"));
    const consensus_barrier *b = consensus_sm_barrier_get(sm, "sync");
    CU_ASSERT_EQUAL(b->state, CONSENSUS_BARRIER_PASSED);
    CU_ASSERT_EQUAL(b->arrived_count, 3);
    CU_ASSERT_EQUAL(b->round, 1);
    CU_ASSERT_PTR_NOT_NULL(effect(CONSENSUS_FX_BARRIER_PASSED, 2));
    CU_ASSERT_PTR_NULL(effect(CONSENSUS_FX_BARRIER_PASSED, 3));
    CU_ASSERT_PTR_NOT_NULL(event("barrier.pass"));
    /* the next arrival starts round 2 */
    CU_ASSERT_EQUAL(arrive("sync", "a", 2, 0, 1003).code, MB_OK);
    b = consensus_sm_barrier_get(sm, "sync");
    CU_ASSERT_EQUAL(b->round, 2);
    CU_ASSERT_EQUAL(b->state, CONSENSUS_BARRIER_OPEN);
}

static void test_barrier_times_out_reporting_arrived_count(void)
{
    arrive("sync", "a", 3, 500, 1000);
    arrive("sync", "b", 3, 0, 1100);
    CU_ASSERT_EQUAL(consensus_sm_coord_next_due(sm), 1500);
    CU_ASSERT_EQUAL(expire(1499).code, MB_ESTATE);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(sm, "sync")->state, CONSENSUS_BARRIER_OPEN);
    CU_ASSERT_EQUAL(expire(1500).code, MB_OK);
    const consensus_barrier *b = consensus_sm_barrier_get(sm, "sync");
    CU_ASSERT_EQUAL(b->state, CONSENSUS_BARRIER_TIMED_OUT);
    CU_ASSERT_EQUAL(b->arrived_count, 2);
    const consensus_effect *t = effect(CONSENSUS_FX_BARRIER_TIMED_OUT, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NOT_NULL(strstr(t->payload, "\"arrived\":2"));
    CU_ASSERT_PTR_NOT_NULL(effect(CONSENSUS_FX_BARRIER_TIMED_OUT, 1));
    const consensus_effect *ev = event("barrier.timeout");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_PTR_NOT_NULL(strstr(ev->payload, "\"arrived\":2"));
    CU_ASSERT_EQUAL(consensus_sm_coord_next_due(sm), 0);
}

static void test_barrier_late_arrival_times_out_the_round_then_starts_next(void)
{
    arrive("sync", "a", 2, 500, 1000);
    consensus_result r = arrive("sync", "b", 2, 500, 2000);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(effect(CONSENSUS_FX_BARRIER_TIMED_OUT, 0));
    const consensus_barrier *b = consensus_sm_barrier_get(sm, "sync");
    CU_ASSERT_EQUAL(b->round, 2);
    CU_ASSERT_EQUAL(b->n_arrived, 1);
    CU_ASSERT_STRING_EQUAL(b->arrived[0], "b");
}

static void test_barrier_rejects_bad_arrivals(void)
{
    CU_ASSERT_EQUAL(arrive("sync", "a", 0, 0, 1000).code, MB_EINVAL); /* no parties */
    CU_ASSERT_EQUAL(arrive("sync", "a", CONSENSUS_COORD_MAX_PARTIES + 1, 0, 1000).code, MB_EINVAL);
    CU_ASSERT_EQUAL(arrive("sync", "ghost", 2, 0, 1000).code, MB_ENOAGENT);
    CU_ASSERT_EQUAL(arrive("sync", "a", 2, 0, 0).code, MB_EINVAL);
    CU_ASSERT_EQUAL(consensus_sm_barrier_count(sm), 0);
    CU_ASSERT_EQUAL(arrive("sync", "a", 3, 0, 1000).code, MB_OK);
    CU_ASSERT_EQUAL(arrive("sync", "a", 3, 0, 1000).code, MB_EEXIST);
    CU_ASSERT_EQUAL(arrive("sync", "b", 4, 0, 1000).code, MB_EINVAL);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(sm, "sync")->n_arrived, 1);
}

static void test_barrier_participant_that_dies_leaves_it(void)
{
    arrive("sync", "a", 3, 0, 1000);
    arrive("sync", "b", 3, 0, 1000);
    agent_status("a", CONSENSUS_AGENT_CRASHED);
    const consensus_barrier *b = consensus_sm_barrier_get(sm, "sync");
    CU_ASSERT_EQUAL(b->n_arrived, 1);
    CU_ASSERT_STRING_EQUAL(b->arrived[0], "b");
    CU_ASSERT_PTR_NOT_NULL(event("barrier.leave"));
    /* a new agent completes it only with everyone alive */
    CU_ASSERT_EQUAL(place("d", 2), MB_OK);
    arrive("sync", "c", 3, 0, 1000);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(sm, "sync")->state, CONSENSUS_BARRIER_OPEN);
    arrive("sync", "d", 3, 0, 1000);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(sm, "sync")->state, CONSENSUS_BARRIER_PASSED);
}

/* ---------------- elections ---------------- */

static void test_election_first_member_leads(void)
{
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_JOIN, "g", "b").code, MB_OK);
    const consensus_effect *g = effect(CONSENSUS_FX_LEADER_GAINED, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->subject, "b");
    CU_ASSERT_EQUAL(g->node_id, 2);
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_JOIN, "g", "a").code, MB_OK);
    CU_ASSERT_PTR_NULL(effect(CONSENSUS_FX_LEADER_GAINED, 0));
    const consensus_election *e = consensus_sm_election_get(sm, "g");
    CU_ASSERT_EQUAL(e->n_members, 2);
    CU_ASSERT_STRING_EQUAL(e->members[0], "b");
    CU_ASSERT_EQUAL(e->term, 1);
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_JOIN, "g", "a").code, MB_EEXIST);
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_JOIN, "g", "ghost").code, MB_ENOAGENT);
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_LEAVE, "g", "c").code, MB_ENOTFOUND);
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_LEAVE, "nope", "a").code, MB_ENOTFOUND);
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_JOIN, "", "a").code, MB_EINVAL);
}

static void test_election_leader_leaving_hands_over_by_join_order(void)
{
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "a");
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "c");
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "b");
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_LEAVE, "g", "a").code, MB_OK);
    CU_ASSERT_STRING_EQUAL(effect(CONSENSUS_FX_LEADER_LOST, 0)->subject, "a");
    CU_ASSERT_STRING_EQUAL(effect(CONSENSUS_FX_LEADER_GAINED, 0)->subject, "c");
    const consensus_election *e = consensus_sm_election_get(sm, "g");
    CU_ASSERT_STRING_EQUAL(e->members[0], "c");
    CU_ASSERT_EQUAL(e->term, 2);
    /* a non-leader leaving changes no leadership */
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_LEAVE, "g", "b").code, MB_OK);
    CU_ASSERT_PTR_NULL(effect(CONSENSUS_FX_LEADER_GAINED, 0));
    CU_ASSERT_EQUAL(consensus_sm_election_get(sm, "g")->term, 2);
    /* the last member leaving removes the group */
    CU_ASSERT_EQUAL(member(CONSENSUS_CMD_ELECTION_LEAVE, "g", "c").code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_election_get(sm, "g"));
}

static void test_election_reelects_when_leader_dies(void)
{
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "a");
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "b");
    member(CONSENSUS_CMD_ELECTION_JOIN, "h", "a");
    CU_ASSERT_EQUAL(agent_status("a", CONSENSUS_AGENT_CRASHED).code, MB_OK);
    const consensus_election *e = consensus_sm_election_get(sm, "g");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->n_members, 1);
    CU_ASSERT_STRING_EQUAL(e->members[0], "b");
    CU_ASSERT_EQUAL(e->term, 2);
    CU_ASSERT_PTR_NULL(consensus_sm_election_get(sm, "h"));
    const consensus_effect *g = effect(CONSENSUS_FX_LEADER_GAINED, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->subject, "b");
    CU_ASSERT_EQUAL(g->node_id, 2);
    CU_ASSERT_PTR_NOT_NULL(effect(CONSENSUS_FX_LEADER_LOST, 1)); /* both groups */
}

/* ---------------- codec, replay, snapshot ---------------- */

static void test_codec_round_trips_every_coordination_command(void)
{
    consensus_cmd_kind kinds[] = { CONSENSUS_CMD_LEASE_ACQUIRE, CONSENSUS_CMD_LEASE_RENEW,
                                   CONSENSUS_CMD_LEASE_RELEASE, CONSENSUS_CMD_BARRIER_ARRIVE,
                                   CONSENSUS_CMD_ELECTION_JOIN, CONSENSUS_CMD_ELECTION_LEAVE,
                                   CONSENSUS_CMD_COORD_EXPIRE };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        consensus_cmd c = { .kind = kinds[i], .by = "me" };
        int with_names = kinds[i] != CONSENSUS_CMD_COORD_EXPIRE;
        c.coord.name = with_names ? "n" : NULL;
        c.coord.holder = with_names ? "h" : NULL;
        int timed =
            kinds[i] == CONSENSUS_CMD_LEASE_ACQUIRE || kinds[i] == CONSENSUS_CMD_LEASE_RENEW ||
            kinds[i] == CONSENSUS_CMD_BARRIER_ARRIVE || kinds[i] == CONSENSUS_CMD_COORD_EXPIRE;
        c.coord.now_ms = timed ? 1234567 : 0;
        c.coord.ttl_ms = kinds[i] <= CONSENSUS_CMD_LEASE_RENEW ? 42 : 0;
        c.coord.parties = kinds[i] == CONSENSUS_CMD_BARRIER_ARRIVE ? 7 : 0;
        c.coord.timeout_ms = kinds[i] == CONSENSUS_CMD_BARRIER_ARRIVE ? 99 : 0;
        void *buf;
        size_t len;
        consensus_cmd d;
        CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&c, NULL, &buf, &len, NULL), MB_OK);
        CU_ASSERT_EQUAL_FATAL(consensus_cmd_decode(buf, len, &d, NULL), MB_OK);
        free(buf);
        CU_ASSERT_EQUAL(d.kind, kinds[i]);
        if (with_names) {
            CU_ASSERT_STRING_EQUAL(d.coord.name, "n");
            CU_ASSERT_STRING_EQUAL(d.coord.holder, "h");
        }
        CU_ASSERT_EQUAL(d.coord.now_ms, c.coord.now_ms);
        CU_ASSERT_EQUAL(d.coord.ttl_ms, c.coord.ttl_ms);
        CU_ASSERT_EQUAL(d.coord.parties, c.coord.parties);
        CU_ASSERT_EQUAL(d.coord.timeout_ms, c.coord.timeout_ms);
        consensus_cmd_free(&d);
    }
}

static void test_replayed_entry_changes_nothing(void)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_LEASE_ACQUIRE };
    c.coord.name = "db";
    c.coord.holder = "a";
    c.coord.ttl_ms = 1000;
    c.coord.now_ms = 5000;
    void *buf;
    size_t len;
    consensus_result res;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&c, NULL, &buf, &len, NULL), MB_OK);
    consensus_sm_apply(sm, ++next_index, buf, len, &res, &fx);
    CU_ASSERT_EQUAL(res.code, MB_OK);
    consensus_effects_clear(&fx);
    consensus_sm_apply(sm, next_index, buf, len, &res, &fx);
    free(buf);
    CU_ASSERT_EQUAL(fx.n, 0);
    CU_ASSERT_EQUAL(consensus_sm_lease_get(sm, "db")->renewed, next_index);
}

static void *snap(const consensus_sm *s, size_t *len)
{
    void *buf = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(s, NULL, &buf, len, NULL), MB_OK);
    return buf;
}

static void test_snapshot_round_trip_keeps_every_table(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "l1", "a", 1000, 5000);
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "l0", "b", 2000, 5000);
    arrive("open", "a", 3, 700, 5000);
    arrive("open", "c", 3, 0, 5000);
    arrive("done", "b", 1, 0, 5000);
    arrive("late", "b", 2, 10, 5000);
    expire(5100);
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "c");
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "a");
    size_t len1, len2;
    void *b1 = snap(sm, &len1);
    consensus_sm *copy = NULL;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(b1, len1, &copy, &e), MB_OK);
    void *b2 = snap(copy, &len2);
    CU_ASSERT_EQUAL(len1, len2);
    CU_ASSERT_EQUAL(memcmp(b1, b2, len1), 0);
    CU_ASSERT_EQUAL(consensus_sm_lease_count(copy), 2);
    CU_ASSERT_STRING_EQUAL(consensus_sm_lease_at(copy, 0)->name, "l0");
    CU_ASSERT_EQUAL(consensus_sm_lease_get(copy, "l1")->expires_ms, 6000);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(copy, "open")->n_arrived, 2);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(copy, "open")->deadline_ms, 5700);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(copy, "done")->state, CONSENSUS_BARRIER_PASSED);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(copy, "late")->state, CONSENSUS_BARRIER_TIMED_OUT);
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(copy, "late")->arrived_count, 1);
    CU_ASSERT_STRING_EQUAL(consensus_sm_election_get(copy, "g")->members[0], "c");
    CU_ASSERT_EQUAL(consensus_sm_coord_now(copy), 5100);
    /* the copy behaves the same: a's crash re-elects in both */
    consensus_sm *orig = sm;
    sm = copy;
    uint64_t saved = next_index;
    agent_status("c", CONSENSUS_AGENT_CRASHED);
    CU_ASSERT_STRING_EQUAL(consensus_sm_election_get(copy, "g")->members[0], "a");
    CU_ASSERT_EQUAL(consensus_sm_barrier_get(copy, "open")->n_arrived, 1);
    sm = orig;
    next_index = saved;
    consensus_sm_free(copy);
    free(b1);
    free(b2);
}

static void test_restore_rejects_coordination_holder_that_is_not_an_agent(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "l1", "a", 1000, 5000);
    size_t len;
    void *b = snap(sm, &len);
    /* flip the holder's name in the bytes: "a" is the only 1-byte holder
     * string after the lease name "l1"; find the record and change it */
    uint8_t *p = b;
    int changed = 0;
    for (size_t i = 0; i + 4 < len; i++)
        if (p[i] == 'l' && p[i + 1] == '1' && p[i + 2] == 0x12 && p[i + 3] == 1 &&
            p[i + 4] == 'a') {
            p[i + 4] = 'z';
            changed = 1;
        }
    CU_ASSERT_TRUE_FATAL(changed);
    /* fix the checksum so that only the content check can refuse it */
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 12; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    crc ^= 0xFFFFFFFFu;
    p[8] = (uint8_t)(crc >> 24);
    p[9] = (uint8_t)(crc >> 16);
    p[10] = (uint8_t)(crc >> 8);
    p[11] = (uint8_t)crc;
    consensus_sm *copy = NULL;
    mb_error e;
    CU_ASSERT_EQUAL(consensus_sm_restore(b, len, &copy, &e), MB_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "lease"));
    CU_ASSERT_PTR_NULL(copy);
    free(b);
}

static void test_json_of_records(void)
{
    lease(CONSENSUS_CMD_LEASE_ACQUIRE, "db", "a", 1000, 5000);
    arrive("s", "a", 2, 0, 5000);
    member(CONSENSUS_CMD_ELECTION_JOIN, "g", "b");
    cJSON *j = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_lease_to_json(consensus_sm_lease_get(sm, "db"), &j), MB_OK);
    char *s = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"holder\":\"a\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"expires_ms\":6000"));
    cJSON_free(s);
    cJSON_Delete(j);
    CU_ASSERT_EQUAL_FATAL(consensus_barrier_to_json(consensus_sm_barrier_get(sm, "s"), &j), MB_OK);
    s = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"state\":\"open\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"participants\":[\"a\"]"));
    cJSON_free(s);
    cJSON_Delete(j);
    CU_ASSERT_EQUAL_FATAL(consensus_election_to_json(consensus_sm_election_get(sm, "g"), &j),
                          MB_OK);
    s = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"leader\":\"b\""));
    cJSON_free(s);
    cJSON_Delete(j);
}

int main(int argc, char **argv)
{
    CU_TestInfo lease_tests[] = {
        { "test_lease_acquire_grants_and_tells_the_holders_node",
          test_lease_acquire_grants_and_tells_the_holders_node },
        { "test_lease_acquire_refused_while_held_by_another",
          test_lease_acquire_refused_while_held_by_another },
        { "test_lease_acquire_takes_over_an_expired_lease",
          test_lease_acquire_takes_over_an_expired_lease },
        { "test_lease_renew_extends_and_keeps_the_token",
          test_lease_renew_extends_and_keeps_the_token },
        { "test_lease_renew_refused_for_other_holder_or_expired",
          test_lease_renew_refused_for_other_holder_or_expired },
        { "test_lease_release_by_holder_only", test_lease_release_by_holder_only },
        { "test_lease_rejects_bad_input", test_lease_rejects_bad_input },
        { "test_expire_collects_due_leases_only", test_expire_collects_due_leases_only },
        { "test_clock_never_goes_back", test_clock_never_goes_back },
        { "test_lease_released_when_holder_crashes", test_lease_released_when_holder_crashes },
        { "test_lease_released_when_holder_stops_is_removed_or_reassigned",
          test_lease_released_when_holder_stops_is_removed_or_reassigned },
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo barrier_tests[] = {
        { "test_barrier_passes_when_all_parties_arrive",
          test_barrier_passes_when_all_parties_arrive },
        { "test_barrier_times_out_reporting_arrived_count",
          test_barrier_times_out_reporting_arrived_count },
        { "test_barrier_late_arrival_times_out_the_round_then_starts_next",
          test_barrier_late_arrival_times_out_the_round_then_starts_next },
        { "test_barrier_rejects_bad_arrivals", test_barrier_rejects_bad_arrivals },
        { "test_barrier_participant_that_dies_leaves_it",
          test_barrier_participant_that_dies_leaves_it },
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo election_tests[] = {
        { "test_election_first_member_leads", test_election_first_member_leads },
        { "test_election_leader_leaving_hands_over_by_join_order",
          test_election_leader_leaving_hands_over_by_join_order },
        { "test_election_reelects_when_leader_dies", test_election_reelects_when_leader_dies },
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo state_tests[] = {
        { "test_codec_round_trips_every_coordination_command",
          test_codec_round_trips_every_coordination_command },
        { "test_replayed_entry_changes_nothing", test_replayed_entry_changes_nothing },
        { "test_snapshot_round_trip_keeps_every_table",
          test_snapshot_round_trip_keeps_every_table },
        { "test_restore_rejects_coordination_holder_that_is_not_an_agent",
          test_restore_rejects_coordination_holder_that_is_not_an_agent },
        { "test_json_of_records", test_json_of_records },
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        { "leases", setup, sm_fixture_teardown, fresh, NULL, lease_tests },
        { "barriers", setup, sm_fixture_teardown, fresh, NULL, barrier_tests },
        { "elections", setup, sm_fixture_teardown, fresh, NULL, election_tests },
        { "state", setup, sm_fixture_teardown, fresh, NULL, state_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
