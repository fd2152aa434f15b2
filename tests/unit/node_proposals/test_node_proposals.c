/* Tests of the pure helpers of node/proposals.c: the numeric id agents
 * see, "all live cluster agents having capabilities X" resolved from
 * the replicated agents table, and the notices owed to a proposing agent
 * whichever of the open's result and the decision comes first. */
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "node/proposals.h"

static void test_numeric_id_is_the_decimal_id_else_the_open_index(void)
{
    CU_ASSERT_EQUAL(node_proposal_num_of("1234", 7), 1234);
    CU_ASSERT_EQUAL(node_proposal_num_of("18446744073709551615", 7), UINT64_MAX);
    CU_ASSERT_EQUAL(node_proposal_num_of("18446744073709551616", 7), 7); /* overflow */
    CU_ASSERT_EQUAL(node_proposal_num_of("tune-lr", 7), 7);
    CU_ASSERT_EQUAL(node_proposal_num_of("12a", 9), 9);
    CU_ASSERT_EQUAL(node_proposal_num_of("", 9), 9);
    CU_ASSERT_EQUAL(node_proposal_num_of("0", 9), 9);
}

static void apply(consensus_sm *sm, uint64_t *index, consensus_cmd *c)
{
    consensus_result r;
    consensus_sm_apply_cmd(sm, ++*index, c, &r, NULL);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
}

static void test_voters_by_caps_are_live_agents_having_every_cap(void)
{
    consensus_sm *sm = NULL;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_new(NULL, &sm), MB_OK);
    uint64_t idx = 0;
    consensus_cmd n = { .kind = CONSENSUS_CMD_NODE_ADD };
    n.node.id = 1;
    apply(sm, &idx, &n);
    char *both[] = { "gpu", "tuner" }, *tuner[] = { "tuner" };
    struct {
        char *id;
        char **caps;
        uint32_t n;
    } agents[] = { { "a", both, 2 }, { "b", tuner, 1 }, { "c", both, 2 }, { "d", NULL, 0 } };
    for (int i = 0; i < 4; i++) {
        consensus_cmd p = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                            .agent_id = agents[i].id,
                            .agent_kind = "voter",
                            .agent_node = 1,
                            .agent_caps = agents[i].caps,
                            .n_agent_caps = agents[i].n };
        apply(sm, &idx, &p);
    }
    consensus_cmd st = { .kind = CONSENSUS_CMD_AGENT_STATUS,
                         .agent_id = "c",
                         .generation = 1,
                         .agent_status = CONSENSUS_AGENT_CRASHED };
    apply(sm, &idx, &st);

    const char **v = NULL;
    uint32_t k = 0;
    const char *want_tuner[] = { "tuner" };
    CU_ASSERT_EQUAL(node_proposals_voters_by_caps(sm, want_tuner, 1, &v, &k), MB_OK);
    CU_ASSERT_EQUAL(k, 2); /* a, b; c crashed, d lacks it */
    if (k == 2) {
        CU_ASSERT_STRING_EQUAL(v[0], "a");
        CU_ASSERT_STRING_EQUAL(v[1], "b");
    }
    free(v);
    const char *want_both[] = { "tuner", "gpu" };
    CU_ASSERT_EQUAL(node_proposals_voters_by_caps(sm, want_both, 2, &v, &k), MB_OK);
    CU_ASSERT_EQUAL(k, 1);
    if (k == 1)
        CU_ASSERT_STRING_EQUAL(v[0], "a");
    free(v);
    const char *none[] = { "tpu" };
    CU_ASSERT_EQUAL(node_proposals_voters_by_caps(sm, none, 1, &v, &k), MB_OK);
    CU_ASSERT_EQUAL(k, 0);
    free(v);
    consensus_sm_free(sm);
}

/* The usual order: the open's result, then the decision. */
static void test_agent_open_result_then_decision_tells_opened_then_decided(void)
{
    node_agent_open *head = NULL, *e = NULL;
    CU_ASSERT_EQUAL_FATAL(node_agent_open_add(&head, "17", 5, 17, "k"), MB_OK);
    CU_ASSERT_EQUAL(node_agent_open_on_result(&head, "17", 1, &e), NODE_TELL_OPENED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->who, 5);
    CU_ASSERT_EQUAL(e->num, 17);
    CU_ASSERT_STRING_EQUAL(e->name, "k");
    CU_ASSERT_PTR_EQUAL(head, e); /* still listed, for the decision */
    CU_ASSERT_EQUAL(node_agent_open_on_close(&head, "17", &e), NODE_TELL_DECIDED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NULL(head);
    node_agent_open_free(e);
}

/* On a follower the decision can be applied before the open's result
 * comes back from the leader (CI run 52: the agent heard OPENED and never
 * DECIDED). It gets both, in order, and the late result tells nothing. */
static void test_agent_open_decision_first_tells_opened_and_decided_once(void)
{
    node_agent_open *head = NULL, *e = NULL;
    CU_ASSERT_EQUAL_FATAL(node_agent_open_add(&head, "9", 1, 9, "a"), MB_OK);
    CU_ASSERT_EQUAL_FATAL(node_agent_open_add(&head, "17", 5, 17, "k"), MB_OK);
    CU_ASSERT_EQUAL(node_agent_open_on_close(&head, "17", &e),
                    NODE_TELL_OPENED | NODE_TELL_DECIDED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->who, 5);
    node_agent_open_free(e);
    CU_ASSERT_EQUAL(node_agent_open_on_result(&head, "17", 1, &e), 0);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_EQUAL(node_agent_open_on_result(&head, "17", 0, &e), 0); /* nor a late error */
    CU_ASSERT_EQUAL(node_agent_open_on_close(&head, "17", &e), 0);     /* nor a second close */
    /* The other agent's open is untouched. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    CU_ASSERT_STRING_EQUAL(head->id, "9");
    CU_ASSERT_EQUAL(node_agent_open_on_result(&head, "9", 1, &e), NODE_TELL_OPENED);
    CU_ASSERT_EQUAL(node_agent_open_on_result(&head, "9", 1, &e), 0); /* OPENED once */
    CU_ASSERT_EQUAL(node_agent_open_on_close(&head, "9", &e), NODE_TELL_DECIDED);
    node_agent_open_free(e);
    CU_ASSERT_PTR_NULL(head);
}

/* A failed open is refused and forgotten: no decision follows it. */
static void test_agent_open_failure_is_refused_and_forgotten(void)
{
    node_agent_open *head = NULL, *e = NULL;
    CU_ASSERT_EQUAL_FATAL(node_agent_open_add(&head, "17", 5, 17, "k"), MB_OK);
    CU_ASSERT_EQUAL(node_agent_open_on_result(&head, "17", 0, &e), NODE_TELL_REFUSED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NULL(head);
    node_agent_open_free(e);
    CU_ASSERT_EQUAL(node_agent_open_on_close(&head, "17", &e), 0);
    CU_ASSERT_PTR_NULL(e);
    node_agent_open_free(NULL);
}

static CU_TestInfo tests[] = {
    { "test_numeric_id_is_the_decimal_id_else_the_open_index",
      test_numeric_id_is_the_decimal_id_else_the_open_index },
    { "test_voters_by_caps_are_live_agents_having_every_cap",
      test_voters_by_caps_are_live_agents_having_every_cap },
    { "agent_open_result_then_decision_tells_opened_then_decided",
      test_agent_open_result_then_decision_tells_opened_then_decided },
    { "agent_open_decision_first_tells_opened_and_decided_once",
      test_agent_open_decision_first_tells_opened_and_decided_once },
    { "agent_open_failure_is_refused_and_forgotten",
      test_agent_open_failure_is_refused_and_forgotten },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "node_proposals", NULL, NULL, NULL, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
