/* Defects of the pinned libraft (0.15, Debian) that the glue works around:
 * canaries that show a defect still exists (when one fails after a libraft
 * upgrade, the workaround it names can be reconsidered) and tests of the
 * workarounds.
 *
 * Defect 1, lost truncation (workaround: consensus/fsm.c, snapshot_must_wait). The
 * uv backend's truncate waits for a barrier on the open segments; when a
 * snapshot's barrier already holds every open segment, the truncate's
 * barrier attaches to none and never fires. The in-memory log moved on, the
 * disk did not: after a restart the node loads the entries it was told to
 * drop and loses the ones that replaced them. */
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "consensus/consensus.h"
#include "mb_test.h"
#include "raft_disk.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define mb_lsan_disable() __lsan_disable()
#define mb_lsan_enable()  __lsan_enable()
#else
#define mb_lsan_disable() ((void)0)
#define mb_lsan_enable()  ((void)0)
#endif

/* Entries 1..10 of term 1; a snapshot at 8 keeping 2; truncate at 9 (a new
 * leader disagrees from 9); entries 9 and 10 of term 2; reopen. The
 * truncate comes before (`during`) or after the snapshot's callback. */
static void truncate_around_snapshot(int during, raft_term loaded[10], size_t *n)
{
    char dir[256];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "rafttrap"), 0);
    struct disk d;
    disk_open(&d, dir, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(d.io.set_term(&d.io, 2), 0);
    struct raft_io_append a1, a2;
    append(&d, &a1, 1, 10);

    struct raft_snapshot snap = { .index = 8, .term = 1, .configuration_index = 1 };
    raft_configuration_init(&snap.configuration);
    CU_ASSERT_EQUAL_FATAL(raft_configuration_add(&snap.configuration, 1, "127.0.0.1:9", RAFT_VOTER),
                          0);
    struct raft_buffer state = { .base = raft_malloc(8), .len = 8 };
    memset(state.base, 0, 8);
    snap.bufs = &state;
    snap.n_bufs = 1;
    struct raft_io_snapshot_put put = { .data = &d };
    d.pending++;
    CU_ASSERT_EQUAL_FATAL(d.io.snapshot_put(&d.io, 2, &put, &snap, put_done), 0);
    if (!during)
        settle(&d);
    /* During the barrier the truncate request is never completed, so
     * libraft never frees it: not a leak of ours. */
    mb_lsan_disable();
    CU_ASSERT_EQUAL_FATAL(d.io.truncate(&d.io, 9), 0);
    mb_lsan_enable();
    append(&d, &a2, 2, 2);
    settle(&d);
    disk_close(&d);
    raft_configuration_close(&snap.configuration);
    raft_free(state.base);

    *n = disk_open(&d, dir, loaded, 10);
    disk_close(&d);
    mb_test_rmtree(dir);
}

static void test_truncate_after_a_snapshot_is_kept(void)
{
    raft_term t[10] = { 0 };
    size_t n = 0;
    truncate_around_snapshot(0, t, &n);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_EQUAL(t[7], 1);
    CU_ASSERT_EQUAL(t[8], 2);
    CU_ASSERT_EQUAL(t[9], 2);
}

static void test_truncate_during_a_snapshot_barrier_is_lost(void)
{
    raft_term t[10] = { 0 };
    size_t n = 0;
    truncate_around_snapshot(1, t, &n);
    CU_ASSERT_EQUAL(n, 10);
    /* The defect: the reloaded log has the dropped entries of term 1 at 9
     * and 10, not the term-2 entries written in their place. If this fails
     * (term 2 loaded), libraft keeps the truncation now. */
    CU_ASSERT_EQUAL(t[8], 1);
    CU_ASSERT_EQUAL(t[9], 1);
}

/* An AppendEntries as the transport hands it to raft: entries 1..n, the
 * terms given, their buffers in one batch. */
static void message_from_1(struct raft_append_entries *a, const raft_term *terms, unsigned n)
{
    memset(a, 0, sizeof(*a));
    a->term = terms[n - 1];
    a->n_entries = n;
    a->entries = raft_malloc(n * sizeof(*a->entries));
    uint8_t *batch = raft_malloc(8 * n);
    CU_ASSERT_FATAL(a->entries != NULL && batch != NULL);
    for (unsigned i = 0; i < n; i++) {
        memset(batch + 8 * i, (int)(i + 1), 8);
        a->entries[i] = (struct raft_entry){ .term = terms[i], .type = RAFT_COMMAND };
        a->entries[i].buf = (struct raft_buffer){ .base = batch + 8 * i, .len = 8 };
        a->entries[i].batch = batch;
    }
}

/* Free a message's entries as raft does (one batch, then the array). */
static void message_free(struct raft_append_entries *a)
{
    if (a->n_entries > 0)
        raft_free(a->entries[0].batch);
    raft_free(a->entries);
}

/* Defect 2 (workaround: consensus_raft_clip_compacted, on every message raft
 * receives). With prev_log_index 0 libraft checks nothing and takes entries
 * it compacted into its snapshot as missing, appending them at the wrong
 * indexes. The glue rewrites such a message to start at the snapshot. */
static void test_append_from_index_1_is_clipped_to_the_snapshot(void)
{
    /* Log: snapshot at 8 (term 2) keeping entries 6..8 (offset 5). */
    struct raft_log log = { .offset = 5 };
    log.snapshot.last_index = 8;
    log.snapshot.last_term = 2;
    const raft_term terms[10] = { 1, 1, 1, 2, 2, 2, 2, 2, 3, 3 };
    struct raft_append_entries a;

    message_from_1(&a, terms, 10);
    a.leader_commit = 12;
    CU_ASSERT_EQUAL(consensus_raft_clip_compacted(&log, &a), 1);
    CU_ASSERT_EQUAL(a.leader_commit, 12);
    CU_ASSERT_EQUAL(a.prev_log_index, 8);
    CU_ASSERT_EQUAL(a.prev_log_term, 2);
    CU_ASSERT_EQUAL_FATAL(a.n_entries, 2);
    CU_ASSERT_EQUAL(a.entries[0].term, 3);
    CU_ASSERT_EQUAL(((uint8_t *)a.entries[0].buf.base)[0], 9); /* entry 9's bytes */
    CU_ASSERT_EQUAL(((uint8_t *)a.entries[1].buf.base)[0], 10);
    message_free(&a);

    /* Nothing past the snapshot: an empty message at the snapshot (the
     * batch is freed here, as the leak checker of the ASan build shows). */
    message_from_1(&a, terms, 6);
    a.leader_commit = 12;
    CU_ASSERT_EQUAL(consensus_raft_clip_compacted(&log, &a), 1);
    CU_ASSERT_EQUAL(a.leader_commit, 8); /* vouches for nothing after 8 */
    CU_ASSERT_EQUAL(a.prev_log_index, 8);
    CU_ASSERT_EQUAL(a.n_entries, 0);
    CU_ASSERT_PTR_NULL(a.entries);

    /* Left to raft: a term at the snapshot's index that disagrees, a
     * message that does not start at 1, a log that still holds entry 1. */
    const raft_term other[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 3, 3 };
    message_from_1(&a, other, 10);
    CU_ASSERT_EQUAL(consensus_raft_clip_compacted(&log, &a), 0);
    CU_ASSERT_EQUAL(a.n_entries, 10);
    a.prev_log_index = 3;
    CU_ASSERT_EQUAL(consensus_raft_clip_compacted(&log, &a), 0);
    a.prev_log_index = 0;
    log.offset = 0;
    CU_ASSERT_EQUAL(consensus_raft_clip_compacted(&log, &a), 0);
    CU_ASSERT_EQUAL(a.n_entries, 10);
    message_free(&a);
}

static CU_TestInfo trap_tests[] = {
    { "test_append_from_index_1_is_clipped_to_the_snapshot",
      test_append_from_index_1_is_clipped_to_the_snapshot },
    { "test_truncate_after_a_snapshot_is_kept", test_truncate_after_a_snapshot_is_kept },
    { "test_truncate_during_a_snapshot_barrier_is_lost",
      test_truncate_during_a_snapshot_barrier_is_lost },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "libraft", NULL, NULL, NULL, NULL, trap_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
