/* Tests of the placement part of the state machine: agent capabilities,
 * the batch commands (status, checkpoint, move) with generation fencing,
 * draining nodes, bad input, codec round trip and snapshots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "mb_test.h"
#include "sm_fixture.h"

static void set_node_status(uint64_t id, consensus_node_status st)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_NODE_UPDATE,
                        .node_fields = CONSENSUS_NODE_SET_STATUS };
    c.node.id = id;
    c.node.status = st;
    CU_ASSERT_EQUAL_FATAL(run(&c).code, MB_OK);
}

static consensus_result place(const char *id, uint64_t node, char **caps, uint32_t ncaps)
{
    return place_agent(id, "counter", node, caps, ncaps);
}

static consensus_result batch(consensus_cmd_kind kind, consensus_agent_item *items, uint32_t n)
{
    consensus_cmd c = { .kind = kind, .items = items, .n_items = n };
    return run(&c);
}

static void test_place_keeps_sorted_unique_capabilities(void)
{
    add_node(1);
    char *caps[] = { "gpu", "cpu", "gpu" };
    CU_ASSERT_EQUAL(place("a1", 1, caps, 3).code, MB_OK);
    const consensus_agent *a = consensus_sm_agent_get(sm, "a1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(a->n_caps, 2);
    CU_ASSERT_STRING_EQUAL(a->caps[0], "cpu");
    CU_ASSERT_STRING_EQUAL(a->caps[1], "gpu");
    /* The agent.place event carries them. */
    CU_ASSERT_PTR_NOT_NULL(strstr(fx.items[0].payload, "\"caps\":[\"cpu\",\"gpu\"]"));
}

static void test_place_rejects_bad_capabilities(void)
{
    add_node(1);
    char *bad[] = { "has space" };
    CU_ASSERT_EQUAL(place("a1", 1, bad, 1).code, MB_EINVAL);
    char *empty[] = { "" };
    CU_ASSERT_EQUAL(place("a1", 1, empty, 1).code, MB_EINVAL);
    char *many[CONSENSUS_CAPS_MAX + 1];
    for (int i = 0; i <= CONSENSUS_CAPS_MAX; i++)
        many[i] = "c";
    consensus_cmd c = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = "a1",
                        .agent_kind = "counter",
                        .agent_node = 1,
                        .agent_caps = many,
                        .n_agent_caps = CONSENSUS_CAPS_MAX + 1 };
    mb_error e;
    CU_ASSERT_NOT_EQUAL(consensus_sm_check(sm, &c, &e), MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_agent_count(sm), 0);
}

static void test_status_batch_applies_current_generation_and_skips_stale(void)
{
    add_node(1);
    add_node(2);
    CU_ASSERT_EQUAL(place("a1", 1, NULL, 0).code, MB_OK);
    CU_ASSERT_EQUAL(place("a2", 1, NULL, 0).code, MB_OK);
    consensus_agent_item items[] = {
        { .id = "a1", .generation = 1, .status = CONSENSUS_AGENT_RUNNING },
        { .id = "a2", .generation = 7, .status = CONSENSUS_AGENT_RUNNING }, /* wrong generation */
        { .id = "gone", .generation = 1, .status = CONSENSUS_AGENT_RUNNING },
    };
    consensus_result r = batch(CONSENSUS_CMD_AGENT_STATUS_BATCH, items, 3);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "1 of 3"));
    CU_ASSERT_EQUAL(consensus_sm_agent_get(sm, "a1")->status, CONSENSUS_AGENT_RUNNING);
    CU_ASSERT_EQUAL(consensus_sm_agent_get(sm, "a2")->status, CONSENSUS_AGENT_PLACED);
    CU_ASSERT_EQUAL(count_events("agent.status"), 1);
    /* Every entry stale: the whole command is a conflict and changes nothing. */
    CU_ASSERT_EQUAL(batch(CONSENSUS_CMD_AGENT_STATUS_BATCH, &items[1], 1).code, MB_ECONFLICT);
    CU_ASSERT_EQUAL(fx.n, 0);
}

static void test_checkpoint_batch_stores_blobs_and_fences_old_generation(void)
{
    add_node(1);
    add_node(2);
    CU_ASSERT_EQUAL(place("a1", 1, NULL, 0).code, MB_OK);
    CU_ASSERT_EQUAL(place("a2", 1, NULL, 0).code, MB_OK);
    consensus_agent_item items[] = {
        { .id = "a1", .generation = 1, .blob = "one", .blob_len = 3 },
        { .id = "a2", .generation = 1, .blob = "two!", .blob_len = 4 },
    };
    consensus_result r = batch(CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH, items, 2);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    const consensus_agent *a = consensus_sm_agent_get(sm, "a2");
    CU_ASSERT_EQUAL(a->checkpoint_len, 4);
    CU_ASSERT_EQUAL(a->checkpoint_version, r.version);
    CU_ASSERT_EQUAL(memcmp(a->checkpoint, "two!", 4), 0);
    CU_ASSERT_EQUAL(count_events("agent.checkpoint"), 2);

    /* a1 moves to node 2 (generation 2): the old copy's checkpoint is refused. */
    consensus_agent_item mv = { .id = "a1", .node = 2, .generation = 1 };
    CU_ASSERT_EQUAL_FATAL(batch(CONSENSUS_CMD_AGENT_MOVE_BATCH, &mv, 1).code, MB_OK);
    items[0].blob = "old";
    CU_ASSERT_EQUAL(batch(CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH, items, 1).code, MB_ECONFLICT);
    a = consensus_sm_agent_get(sm, "a1");
    CU_ASSERT_EQUAL(memcmp(a->checkpoint, "one", 3), 0);
}

static void test_move_batch_marks_node_down_and_moves_agents_with_new_generation(void)
{
    add_node(1);
    add_node(2);
    add_node(3);
    static char names[100][16];
    consensus_agent_item items[100];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "a%03d", i);
        CU_ASSERT_EQUAL_FATAL(place(names[i], 3, NULL, 0).code, MB_OK);
        items[i] = (consensus_agent_item){ .id = names[i],
                                           .node = 1 + (uint64_t)(i % 2),
                                           .generation = 1 };
    }
    consensus_cmd c = {
        .kind = CONSENSUS_CMD_AGENT_MOVE_BATCH, .items = items, .n_items = 100, .down_node = 3
    };
    consensus_result r = run(&c);
    CU_ASSERT_EQUAL(r.code, MB_OK);
    CU_ASSERT_EQUAL(consensus_sm_node_get(sm, 3)->status, CONSENSUS_NODE_DOWN);
    for (int i = 0; i < 100; i++) {
        const consensus_agent *a = consensus_sm_agent_get(sm, names[i]);
        CU_ASSERT_EQUAL(a->node, 1 + (uint64_t)(i % 2));
        CU_ASSERT_EQUAL(a->generation, 2);
        CU_ASSERT_EQUAL(a->restarts, 1);
        CU_ASSERT_EQUAL(a->status, CONSENSUS_AGENT_PLACED);
    }
    CU_ASSERT_EQUAL(count_events("agent.reassign"), 100);
    CU_ASSERT_EQUAL(count_events("node.update"), 1);
    /* Replaying the same decision (expected generation 1) moves nothing. */
    c.down_node = 0;
    CU_ASSERT_EQUAL(run(&c).code, MB_ECONFLICT);
    CU_ASSERT_EQUAL(consensus_sm_agent_get(sm, names[0])->generation, 2);
    /* Nothing may be moved to a node that is not up. */
    items[0].node = 3;
    items[0].generation = 0;
    CU_ASSERT_EQUAL(batch(CONSENSUS_CMD_AGENT_MOVE_BATCH, items, 1).code, MB_ESTATE);
}

static void test_move_batch_carries_fresh_checkpoint_from_draining_node(void)
{
    add_node(1);
    add_node(2);
    CU_ASSERT_EQUAL(place("a1", 1, NULL, 0).code, MB_OK);
    set_node_status(1, CONSENSUS_NODE_DRAINING);
    CU_ASSERT_EQUAL(consensus_sm_node_get(sm, 1)->status, CONSENSUS_NODE_DRAINING);
    /* A draining node takes no new agents. */
    CU_ASSERT_EQUAL(place("a2", 1, NULL, 0).code, MB_ESTATE);
    consensus_agent_item mv = {
        .id = "a1", .node = 2, .generation = 1, .has_blob = 1, .blob = "final", .blob_len = 5
    };
    consensus_result r = batch(CONSENSUS_CMD_AGENT_MOVE_BATCH, &mv, 1);
    CU_ASSERT_EQUAL_FATAL(r.code, MB_OK);
    const consensus_agent *a = consensus_sm_agent_get(sm, "a1");
    CU_ASSERT_EQUAL(a->node, 2);
    CU_ASSERT_EQUAL(a->generation, 2);
    CU_ASSERT_EQUAL(a->checkpoint_version, r.version);
    CU_ASSERT_EQUAL(a->checkpoint_len, 5);
    CU_ASSERT_EQUAL(memcmp(a->checkpoint, "final", 5), 0);
    /* Moving to the node it is on is a conflict, not a new generation. */
    mv.generation = 0;
    CU_ASSERT_EQUAL(batch(CONSENSUS_CMD_AGENT_MOVE_BATCH, &mv, 1).code, MB_ECONFLICT);
    CU_ASSERT_EQUAL(consensus_sm_agent_get(sm, "a1")->generation, 2);
}

static void test_batches_reject_bad_shapes(void)
{
    add_node(1);
    mb_error e;
    consensus_cmd empty = { .kind = CONSENSUS_CMD_AGENT_STATUS_BATCH };
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &empty, &e), MB_EINVAL);
    consensus_agent_item bad_id = { .id = "bad id", .generation = 1 };
    consensus_cmd c = { .kind = CONSENSUS_CMD_AGENT_STATUS_BATCH, .items = &bad_id, .n_items = 1 };
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &c, &e), MB_EINVAL);
    consensus_agent_item bad_st = { .id = "a", .generation = 1, .status = 9 };
    c.items = &bad_st;
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &c, &e), MB_EINVAL);
    consensus_agent_item big = {
        .id = "a", .generation = 1, .blob = "x", .blob_len = CONSENSUS_CHECKPOINT_MAX + 1
    };
    c.kind = CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH;
    c.items = &big;
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &c, &e), MB_ETOOBIG);
    consensus_agent_item to_nowhere = { .id = "a", .node = 42 };
    c.kind = CONSENSUS_CMD_AGENT_MOVE_BATCH;
    c.items = &to_nowhere;
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &c, &e), MB_ENOTFOUND);
    consensus_cmd down_unknown = { .kind = CONSENSUS_CMD_AGENT_MOVE_BATCH, .down_node = 9 };
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &down_unknown, &e), MB_ENOTFOUND);
    c.n_items = CONSENSUS_BATCH_MAX + 1;
    CU_ASSERT_EQUAL(consensus_sm_check(sm, &c, &e), MB_EINVAL);
    /* Bytes that decode as a batch with no entries are refused. */
    consensus_cmd none = { .kind = CONSENSUS_CMD_AGENT_STATUS_BATCH };
    void *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&none, NULL, &buf, &len, &e), MB_OK);
    consensus_cmd d;
    CU_ASSERT_EQUAL(consensus_cmd_decode(buf, len, &d, &e), MB_EPROTO);
    free(buf);
}

static void test_batch_codec_round_trip(void)
{
    char *caps[] = { "gpu" };
    consensus_cmd p = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = "a",
                        .agent_kind = "k",
                        .agent_node = 1,
                        .agent_caps = caps,
                        .n_agent_caps = 1 };
    void *buf;
    size_t len;
    mb_error e;
    consensus_cmd d;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&p, NULL, &buf, &len, &e), MB_OK);
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_decode(buf, len, &d, &e), MB_OK);
    CU_ASSERT_EQUAL(d.n_agent_caps, 1);
    CU_ASSERT_STRING_EQUAL(d.agent_caps[0], "gpu");
    consensus_cmd_free(&d);
    free(buf);

    consensus_agent_item items[] = {
        { .id = "a", .node = 2, .generation = 3, .has_blob = 1, .blob = "xy", .blob_len = 2 },
        { .id = "b", .node = 3, .generation = 0 },
    };
    consensus_cmd m = {
        .kind = CONSENSUS_CMD_AGENT_MOVE_BATCH, .items = items, .n_items = 2, .down_node = 7
    };
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(&m, NULL, &buf, &len, &e), MB_OK);
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_decode(buf, len, &d, &e), MB_OK);
    CU_ASSERT_EQUAL(d.kind, CONSENSUS_CMD_AGENT_MOVE_BATCH);
    CU_ASSERT_EQUAL(d.down_node, 7);
    CU_ASSERT_EQUAL_FATAL(d.n_items, 2);
    CU_ASSERT_STRING_EQUAL(d.items[0].id, "a");
    CU_ASSERT_EQUAL(d.items[0].node, 2);
    CU_ASSERT_EQUAL(d.items[0].generation, 3);
    CU_ASSERT_TRUE(d.items[0].has_blob && d.items[0].blob_len == 2);
    CU_ASSERT_FALSE(d.items[1].has_blob);
    consensus_cmd_free(&d);
    free(buf);
}

static void test_snapshot_keeps_capabilities_and_draining_status(void)
{
    add_node(1);
    add_node(2);
    char *caps[] = { "b", "a" };
    CU_ASSERT_EQUAL(place("x", 1, caps, 2).code, MB_OK);
    set_node_status(2, CONSENSUS_NODE_DRAINING);
    void *buf, *buf2;
    size_t len, len2;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(sm, NULL, &buf, &len, NULL), MB_OK);
    consensus_sm *copy;
    CU_ASSERT_EQUAL_FATAL(consensus_sm_restore(buf, len, &copy, NULL), MB_OK);
    const consensus_agent *a = consensus_sm_agent_get(copy, "x");
    CU_ASSERT_TRUE_FATAL(a != NULL && a->n_caps == 2);
    CU_ASSERT_STRING_EQUAL(a->caps[0], "a");
    CU_ASSERT_EQUAL(consensus_sm_node_get(copy, 2)->status, CONSENSUS_NODE_DRAINING);
    CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(copy, NULL, &buf2, &len2, NULL), MB_OK);
    CU_ASSERT_TRUE(len == len2 && memcmp(buf, buf2, len) == 0);
    consensus_sm_free(copy);
    free(buf);
    free(buf2);
}

static CU_TestInfo tests[] = {
    { "test_place_keeps_sorted_unique_capabilities", test_place_keeps_sorted_unique_capabilities },
    { "test_place_rejects_bad_capabilities", test_place_rejects_bad_capabilities },
    { "test_status_batch_applies_current_generation_and_skips_stale",
      test_status_batch_applies_current_generation_and_skips_stale },
    { "test_checkpoint_batch_stores_blobs_and_fences_old_generation",
      test_checkpoint_batch_stores_blobs_and_fences_old_generation },
    { "test_move_batch_marks_node_down_and_moves_agents_with_new_generation",
      test_move_batch_marks_node_down_and_moves_agents_with_new_generation },
    { "test_move_batch_carries_fresh_checkpoint_from_draining_node",
      test_move_batch_carries_fresh_checkpoint_from_draining_node },
    { "test_batches_reject_bad_shapes", test_batches_reject_bad_shapes },
    { "test_batch_codec_round_trip", test_batch_codec_round_trip },
    { "test_snapshot_keeps_capabilities_and_draining_status",
      test_snapshot_keeps_capabilities_and_draining_status },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "placement", sm_fixture_setup, sm_fixture_teardown, sm_fixture_fresh, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
