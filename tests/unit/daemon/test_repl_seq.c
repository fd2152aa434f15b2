/* Unit test of the cluster event log's sequence numbering (node/replication.h):
 * every node gives the same event the same seq, and the marker a snapshot
 * install leaves never takes the seq of another node's event. */
#include "mb_test.h"
#include "node/replication.h"

static void test_event_seq_is_index_times_slots_plus_position(void)
{
    CU_ASSERT_EQUAL(repl_event_seq(7, 0, "var.set"), 7u * REPL_SEQ_PER_ENTRY);
    CU_ASSERT_EQUAL(repl_event_seq(7, 3, "proposal.vote"), 7u * REPL_SEQ_PER_ENTRY + 3);
    /* More events than slots share the last one (storage keeps the first). */
    CU_ASSERT_EQUAL(repl_event_seq(7, REPL_SEQ_PER_ENTRY + 5, "proposal.vote"),
                    8u * REPL_SEQ_PER_ENTRY - 1);
}

static void test_restore_marker_never_takes_the_entrys_first_event_seq(void)
{
    /* Found by the partition suite: the marker was written at index * N,
     * where the nodes that applied entry `index` have its first event. */
    uint64_t marker = repl_event_seq(4101, 0, "state.restore");
    CU_ASSERT_NOT_EQUAL(marker, repl_event_seq(4101, 0, "var.set"));
    CU_ASSERT_EQUAL(marker, 4102u * REPL_SEQ_PER_ENTRY - 1);
    /* Still inside the entry's range: below the next entry's events. */
    CU_ASSERT(marker < repl_event_seq(4102, 0, "var.set"));
}

int main(int argc, char **argv)
{
    CU_TestInfo tests[] = {
        { "event_seq_is_index_times_slots_plus_position",
          test_event_seq_is_index_times_slots_plus_position },
        { "restore_marker_never_takes_the_entrys_first_event_seq",
          test_restore_marker_never_takes_the_entrys_first_event_seq },
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = { { "repl_seq", NULL, NULL, NULL, NULL, tests }, CU_SUITE_INFO_NULL };
    return mb_test_run(argc, argv, suites);
}
