/* Tests of the proposal part of the state machine added by the proposals
 * piece: the Byzantine rule, batched votes, 1,000+ voters, one open
 * proposal per variable, cluster-named ids, events keyed by variable,
 * dead voters leaving the eligible set (docs/proposals.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "mb_test.h"
#include "sm_fixture.h"

static void place(const char *id)
{
    CU_ASSERT_EQUAL_FATAL(place_agent(id, "voter", 1, NULL, 0).code, MB_OK);
}

static void set_status(const char *id, consensus_agent_status st)
{
    CU_ASSERT_EQUAL_FATAL(agent_status(id, st).code, MB_OK);
}

static consensus_result open_p(const char *id, const char *var, consensus_rule rule, uint32_t f,
                               char **voters, uint32_t n, int64_t value)
{
    place_voters(voters, n);
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                        .proposal_id = (char *)id,
                        .name = (char *)var,
                        .by = "tester",
                        .rule = rule,
                        .f = f,
                        .voters = voters,
                        .n_voters = n };
    c.value = (mb_value){ .type = MB_VT_INT, .u.i = value };
    return run(&c);
}

/* n voter ids "v0000".."v<n-1>", freed with free_names. */
static char **names(uint32_t n)
{
    char **v = calloc(n, sizeof(char *));
    for (uint32_t i = 0; i < n; i++) {
        v[i] = malloc(16);
        snprintf(v[i], 16, "v%04u", i);
    }
    return v;
}

static void free_names(char **v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int64_t int_value(const char *var)
{
    const consensus_var *v = consensus_sm_var_get(sm, var);
    return v != NULL ? v->value.u.i : -1;
}

/* ---------------- Byzantine rule ---------------- */

static void test_byzantine_open_refused_below_3f_plus_1_and_says_how_many(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char **v = names(7);
    consensus_result r = open_p("b", "k", CONSENSUS_RULE_BYZANTINE, 2, v, 6, 1);
    CU_ASSERT_EQUAL(r.code, MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "needs at least 7 eligible voters"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "has 6"));
    CU_ASSERT_EQUAL(consensus_sm_proposal_count(sm), 0);
    /* f on another rule is refused too. */
    CU_ASSERT_EQUAL(open_p("b", "k", CONSENSUS_RULE_MAJORITY, 1, v, 7, 1).code, MB_EINVAL);
    CU_ASSERT_EQUAL(open_p("b", "k", CONSENSUS_RULE_BYZANTINE, 2, v, 7, 1).code, MB_OK);
    const consensus_proposal *p = consensus_sm_proposal_get(sm, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->f, 2);
    CU_ASSERT_EQUAL(p->quorum, 5); /* floor(2*7/3)+1 */
    free_names(v, 7);
}

static void test_byzantine_accepts_at_two_thirds_plus_one_yes(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char **v = names(7);
    CU_ASSERT_EQUAL_FATAL(open_p("b", "k", CONSENSUS_RULE_BYZANTINE, 2, v, 7, 42).code, MB_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(vote("b", v[i], 1).code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_proposal_get(sm, "b")); /* 4 < 5 */
    CU_ASSERT_EQUAL(int_value("k"), 0);
    CU_ASSERT_EQUAL(vote("b", v[4], 1).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "b"));
    CU_ASSERT_EQUAL(int_value("k"), 42);
    free_names(v, 7);
}

static void test_byzantine_rejects_once_the_quorum_is_out_of_reach(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char **v = names(4);
    CU_ASSERT_EQUAL_FATAL(open_p("b", "k", CONSENSUS_RULE_BYZANTINE, 1, v, 4, 9).code, MB_OK);
    CU_ASSERT_EQUAL(vote("b", v[0], 0).code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_proposal_get(sm, "b")); /* 3 yes still possible */
    CU_ASSERT_EQUAL(vote("b", v[1], 0).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "b"));
    const consensus_effect *e = find_effect(CONSENSUS_FX_EVENT, "proposal.close");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->payload, "\"rejected\""));
    CU_ASSERT_EQUAL(int_value("k"), 0);
    free_names(v, 4);
}

static void test_byzantine_dead_voters_leave_but_the_quorum_stays(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    add_node(1);
    char *v[] = { "a", "b", "c", "d", "e" };
    for (int i = 0; i < 5; i++)
        place(v[i]);
    /* "e" is already dead: it is not eligible, so 4 >= 3*1+1 remain. */
    set_status("e", CONSENSUS_AGENT_CRASHED);
    CU_ASSERT_EQUAL_FATAL(open_p("b", "k", CONSENSUS_RULE_BYZANTINE, 1, v, 5, 7).code, MB_OK);
    const consensus_proposal *p = consensus_sm_proposal_get(sm, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->n_voters, 4);
    CU_ASSERT_EQUAL(p->quorum, 3);
    const consensus_effect *e = find_effect(CONSENSUS_FX_EVENT, "proposal.open");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->payload, "\"excluded\":[\"e\"]"));
    /* With "d" dead too, f=1 would need 4 eligible: a new open is refused. */
    CU_ASSERT_EQUAL(vote("b", "a", 1).code, MB_OK);
    set_status("d", CONSENSUS_AGENT_STOPPED);
    p = consensus_sm_proposal_get(sm, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p); /* a yes, b c undecided: 3 yes possible */
    CU_ASSERT_EQUAL(p->n_voters, 3);
    CU_ASSERT_EQUAL(count_effects(CONSENSUS_FX_EVENT, "proposal.voter_left"), 1);
    /* "c" crashes: only 2 yes are possible, below the quorum of 3. */
    set_status("c", CONSENSUS_AGENT_CRASHED);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "b"));
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_PROPOSAL_CLOSE, NULL));
    char *w[] = { "a", "b", "c", "d" };
    consensus_result r = open_p("b2", "k", CONSENSUS_RULE_BYZANTINE, 1, w, 4, 7);
    CU_ASSERT_EQUAL(r.code, MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "needs at least 4 eligible voters"));
}

/* ---------------- batches and scale ---------------- */

static consensus_result vote_batch(const char *id, char **voters, uint32_t from, uint32_t n,
                                   int yes)
{
    consensus_vote_item *items = calloc(n, sizeof(*items));
    for (uint32_t i = 0; i < n; i++)
        items[i] = (consensus_vote_item){ (char *)id, voters[from + i], yes };
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_VOTES, .votes = items, .n_votes = n };
    consensus_result r = run(&c);
    free(items);
    return r;
}

static void test_vote_batch_counts_each_vote_and_skips_late_ones(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    uint32_t n = 1000;
    char **v = names(n);
    consensus_result r = open_p("", "k", CONSENSUS_RULE_MAJORITY, 0, v, n, 77);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)r.version);
    /* 256 + 244 yes: 500 of 1000 is not a majority yet. */
    r = vote_batch(id, v, 0, 256, 1);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_STRING_EQUAL(r.msg, "256 of 256 votes counted");
    CU_ASSERT_EQUAL(count_effects(CONSENSUS_FX_EVENT, "proposal.vote"), 256);
    CU_ASSERT_EQUAL(vote_batch(id, v, 256, 244, 1).code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_proposal_get(sm, id));
    /* The next batch decides at its first vote; the decision and the
     * variable change come in the same apply, the rest is skipped. */
    r = vote_batch(id, v, 500, 256, 1);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_STRING_EQUAL(r.msg, "1 of 256 votes counted");
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, id));
    CU_ASSERT_EQUAL(int_value("k"), 77);
    CU_ASSERT_EQUAL(consensus_sm_var_get(sm, "k")->version, r.version);
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_EVENT, "var.set"));
    CU_ASSERT_PTR_NOT_NULL(find_effect(CONSENSUS_FX_EVENT, "proposal.close"));
    /* A batch of late votes only: nothing counts, a conflict, no effects. */
    r = vote_batch(id, v, 756, 10, 1);
    CU_ASSERT_EQUAL(r.code, MB_ECONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "none of 10 votes counts"));
    CU_ASSERT_EQUAL(fx.n, 0);
    /* A repeated vote in one batch counts once. */
    define_consensus_int("k2");
    r = open_p("two", "k2", CONSENSUS_RULE_UNANIMOUS, 0, v, 3, 5);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    char *rep[] = { "v0000", "v0000", "nobody" };
    consensus_vote_item items[3] = { { "two", rep[0], 1 },
                                     { "two", rep[1], 0 },
                                     { "two", rep[2], 1 } };
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_VOTES, .votes = items, .n_votes = 3 };
    r = run(&c);
    CU_ASSERT_STRING_EQUAL(r.msg, "1 of 3 votes counted");
    CU_ASSERT_PTR_NOT_NULL(consensus_sm_proposal_get(sm, "two"));
    free_names(v, n);
}

static void test_vote_batch_size_is_bounded_on_encode_and_decode(void)
{
    consensus_vote_item items[CONSENSUS_VOTE_BATCH_MAX + 1];
    for (int i = 0; i <= CONSENSUS_VOTE_BATCH_MAX; i++)
        items[i] = (consensus_vote_item){ "p", "v", 1 };
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_VOTES, .votes = items, .n_votes = 0 };
    void *buf = NULL;
    size_t len;
    mb_error e;
    CU_ASSERT_EQUAL(consensus_cmd_encode(&c, NULL, &buf, &len, &e), MB_EINVAL);
    c.n_votes = CONSENSUS_VOTE_BATCH_MAX + 1;
    CU_ASSERT_EQUAL(consensus_cmd_encode(&c, NULL, &buf, &len, &e), MB_EINVAL);
    c.n_votes = CONSENSUS_VOTE_BATCH_MAX;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&c, NULL, &buf, &len, &e), MB_OK);
    consensus_cmd d;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_decode(buf, len, &d, &e), MB_OK);
    CU_ASSERT_EQUAL(d.kind, CONSENSUS_CMD_PROPOSAL_VOTES);
    CU_ASSERT_EQUAL(d.n_votes, CONSENSUS_VOTE_BATCH_MAX);
    CU_ASSERT_STRING_EQUAL(d.votes[3].voter, "v");
    CU_ASSERT_EQUAL(d.votes[3].yes, 1);
    consensus_cmd_free(&d);
    free(buf);
}

static void test_open_takes_4096_voters_and_refuses_more(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char **v = names(CONSENSUS_MAX_VOTERS + 1);
    /* Refused by the decoder (MB_EPROTO) before the state is looked at. */
    CU_ASSERT_NOT_EQUAL(
        open_p("big", "k", CONSENSUS_RULE_MAJORITY, 0, v, CONSENSUS_MAX_VOTERS + 1, 1).code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_proposal_count(sm), 0);
    CU_ASSERT_EQUAL(open_p("big", "k", CONSENSUS_RULE_MAJORITY, 0, v, CONSENSUS_MAX_VOTERS, 1).code,
                    MB_OK);
    const consensus_proposal *p = consensus_sm_proposal_get(sm, "big");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->n_voters, CONSENSUS_MAX_VOTERS);
    /* The last voter (binary search at the end of the sorted list). */
    CU_ASSERT_EQUAL(vote("big", v[CONSENSUS_MAX_VOTERS - 1], 1).code, MB_OK);
    CU_ASSERT_EQUAL(vote("big", v[CONSENSUS_MAX_VOTERS], 1).code, MB_EPERM);
    /* Snapshot round trip keeps them all. */
    void *buf = NULL;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(sm, NULL, &buf, &len, NULL), MB_OK);
    consensus_sm *r = NULL;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(buf, len, &r, &e), MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_proposal_get(r, "big")->n_voters, CONSENSUS_MAX_VOTERS);
    consensus_sm_free(r);
    free(buf);
    free_names(v, CONSENSUS_MAX_VOTERS + 1);
}

/* ---------------- ordering and naming ---------------- */

static void test_second_open_on_a_variable_is_refused_until_the_first_is_decided(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    define_consensus_int("other");
    char *v[] = { "a", "b", "c" };
    CU_ASSERT_EQUAL_FATAL(open_p("p1", "k", CONSENSUS_RULE_MAJORITY, 0, v, 3, 1).code, MB_OK);
    consensus_result r = open_p("p2", "k", CONSENSUS_RULE_MAJORITY, 0, v, 3, 2);
    CU_ASSERT_EQUAL(r.code, MB_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "\"p1\""));
    /* Another variable is independent. */
    CU_ASSERT_EQUAL(open_p("p3", "other", CONSENSUS_RULE_MAJORITY, 0, v, 3, 3).code, MB_OK);
    vote("p1", "a", 1);
    vote("p1", "b", 1);
    CU_ASSERT_EQUAL(int_value("k"), 1);
    CU_ASSERT_EQUAL(open_p("p2", "k", CONSENSUS_RULE_MAJORITY, 0, v, 3, 2).code, MB_OK);
    const consensus_proposal *p = consensus_sm_proposal_get(sm, "p2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->base_version, consensus_sm_var_get(sm, "k")->version);
    CU_ASSERT_PTR_EQUAL(consensus_sm_proposal_on_var(sm, "k"), p);
}

static void test_deleting_the_variable_cancels_its_open_proposal(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char *v[] = { "a", "b", "c" };
    CU_ASSERT_EQUAL_FATAL(open_p("p1", "k", CONSENSUS_RULE_MAJORITY, 0, v, 3, 1).code, MB_OK);
    consensus_cmd d = { .kind = CONSENSUS_CMD_VAR_DELETE, .name = "k" };
    CU_ASSERT_EQUAL(run(&d).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "p1"));
    const consensus_effect *e = find_effect(CONSENSUS_FX_PROPOSAL_CLOSE, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->deleted, CONSENSUS_PROPOSAL_CANCELLED);
    /* A redefined variable takes proposals again. */
    define_consensus_int("k");
    CU_ASSERT_EQUAL(open_p("p1", "k", CONSENSUS_RULE_MAJORITY, 0, v, 3, 1).code, MB_OK);
}

static void test_cluster_names_a_proposal_after_its_raft_index(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char *v[] = { "a", "b" };
    consensus_result r = open_p(NULL, "k", CONSENSUS_RULE_UNANIMOUS, 0, v, 2, 3);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)r.version);
    const consensus_proposal *p = consensus_sm_proposal_get(sm, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->opened, r.version);
    CU_ASSERT_PTR_EQUAL(consensus_sm_proposal_by_index(sm, r.version), p);
    const consensus_effect *e = find_effect(CONSENSUS_FX_PROPOSAL_OPEN, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->subject, id);
    CU_ASSERT_EQUAL(e->version, r.version);
}

static void test_proposal_events_have_the_variable_as_subject(void)
{
    sm_fixture_fresh();
    define_consensus_int("lr_k");
    char *v[] = { "a", "b" };
    CU_ASSERT_EQUAL_FATAL(open_p("p", "lr_k", CONSENSUS_RULE_UNANIMOUS, 0, v, 2, 3).code, MB_OK);
    const consensus_effect *e = find_effect(CONSENSUS_FX_EVENT, "proposal.open");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->subject, "lr_k");
    CU_ASSERT_PTR_NOT_NULL(strstr(e->payload, "\"id\":\"p\""));
    vote("p", "a", 1);
    e = find_effect(CONSENSUS_FX_EVENT, "proposal.vote");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->subject, "lr_k");
    vote("p", "b", 1);
    e = find_effect(CONSENSUS_FX_EVENT, "proposal.close");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->subject, "lr_k");
    CU_ASSERT_PTR_NOT_NULL(strstr(e->payload, "\"accepted\""));
    e = find_effect(CONSENSUS_FX_PROPOSAL_CLOSE, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->deleted, CONSENSUS_PROPOSAL_ACCEPTED);
}

static void test_removed_agent_leaves_the_voters_at_once(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    add_node(1);
    char *v[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++)
        place(v[i]);
    CU_ASSERT_EQUAL_FATAL(open_p("p", "k", CONSENSUS_RULE_UNANIMOUS, 0, v, 3, 4).code, MB_OK);
    vote("p", "a", 1);
    vote("p", "b", 1);
    consensus_cmd rm = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = "c" };
    CU_ASSERT_EQUAL(run(&rm).code, MB_OK);
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "p"));
    CU_ASSERT_EQUAL(int_value("k"), 4);
}

static void test_snapshot_keeps_byzantine_fields(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    char **v = names(4);
    CU_ASSERT_EQUAL_FATAL(open_p("b", "k", CONSENSUS_RULE_BYZANTINE, 1, v, 4, 9).code, MB_OK);
    vote("b", v[2], 1);
    void *s1 = NULL, *s2 = NULL;
    size_t l1, l2;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(sm, NULL, &s1, &l1, NULL), MB_OK);
    consensus_sm *r = NULL;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(s1, l1, &r, &e), MB_OK);
    const consensus_proposal *p = consensus_sm_proposal_get(r, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->rule, CONSENSUS_RULE_BYZANTINE);
    CU_ASSERT_EQUAL(p->f, 1);
    CU_ASSERT_EQUAL(p->quorum, 3);
    CU_ASSERT_EQUAL(p->base_version, 1);
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(r, NULL, &s2, &l2, NULL), MB_OK);
    CU_ASSERT_TRUE(l1 == l2 && memcmp(s1, s2, l1) == 0);
    consensus_sm_free(r);
    free(s1);
    free(s2);
    free_names(v, 4);
}

static void test_rule_names_parse_and_print(void)
{
    consensus_rule r;
    CU_ASSERT_EQUAL(consensus_rule_parse("byzantine", &r), MB_OK);
    CU_ASSERT_EQUAL(r, CONSENSUS_RULE_BYZANTINE);
    CU_ASSERT_EQUAL(consensus_rule_parse("plurality", &r), MB_EINVAL);
    CU_ASSERT_STRING_EQUAL(consensus_rule_name(CONSENSUS_RULE_SUPERMAJORITY), "supermajority");
    CU_ASSERT_STRING_EQUAL(consensus_outcome_name(CONSENSUS_PROPOSAL_EXPIRED), "expired");
}

static void test_open_refuses_a_voter_that_is_not_a_cluster_agent(void)
{
    sm_fixture_fresh();
    define_consensus_int("k");
    add_node(1);
    place("a");
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                        .proposal_id = "u",
                        .name = "k",
                        .by = "tester",
                        .rule = CONSENSUS_RULE_MAJORITY,
                        .voters = (char *[]){ "a", "typo" },
                        .n_voters = 2 };
    c.value = (mb_value){ .type = MB_VT_INT, .u.i = 3 };
    consensus_result r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_ENOAGENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "\"typo\""));
    CU_ASSERT_PTR_NULL(consensus_sm_proposal_get(sm, "u"));
    /* a removed agent is unknown too */
    consensus_cmd rm = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = "a" };
    CU_ASSERT_EQUAL_FATAL(run(&rm).code, MB_OK);
    c.n_voters = 1;
    r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_ENOAGENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "\"a\""));
}

static CU_TestInfo tests[] = {
    { "test_byzantine_open_refused_below_3f_plus_1_and_says_how_many",
      test_byzantine_open_refused_below_3f_plus_1_and_says_how_many },
    { "test_byzantine_accepts_at_two_thirds_plus_one_yes",
      test_byzantine_accepts_at_two_thirds_plus_one_yes },
    { "test_byzantine_rejects_once_the_quorum_is_out_of_reach",
      test_byzantine_rejects_once_the_quorum_is_out_of_reach },
    { "test_byzantine_dead_voters_leave_but_the_quorum_stays",
      test_byzantine_dead_voters_leave_but_the_quorum_stays },
    { "test_vote_batch_counts_each_vote_and_skips_late_ones",
      test_vote_batch_counts_each_vote_and_skips_late_ones },
    { "test_vote_batch_size_is_bounded_on_encode_and_decode",
      test_vote_batch_size_is_bounded_on_encode_and_decode },
    { "test_open_takes_4096_voters_and_refuses_more",
      test_open_takes_4096_voters_and_refuses_more },
    { "test_second_open_on_a_variable_is_refused_until_the_first_is_decided",
      test_second_open_on_a_variable_is_refused_until_the_first_is_decided },
    { "test_deleting_the_variable_cancels_its_open_proposal",
      test_deleting_the_variable_cancels_its_open_proposal },
    { "test_cluster_names_a_proposal_after_its_raft_index",
      test_cluster_names_a_proposal_after_its_raft_index },
    { "test_proposal_events_have_the_variable_as_subject",
      test_proposal_events_have_the_variable_as_subject },
    { "test_removed_agent_leaves_the_voters_at_once",
      test_removed_agent_leaves_the_voters_at_once },
    { "test_snapshot_keeps_byzantine_fields", test_snapshot_keeps_byzantine_fields },
    { "test_rule_names_parse_and_print", test_rule_names_parse_and_print },
    { "test_open_refuses_a_voter_that_is_not_a_cluster_agent",
      test_open_refuses_a_voter_that_is_not_a_cluster_agent },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "proposals", sm_fixture_setup, sm_fixture_teardown, NULL, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
