/* consensus/aio_reap.c: libraft 0.15's io_destroy calls leave the calling
 * (loop) thread for a helper thread; every other system call made through
 * syscall() passes through unchanged. */
#include <errno.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "consensus/internal.h"
#include "mb_test.h"
#include "raft_disk.h"

static consensus_aio_reap_counts counts(void)
{
    consensus_aio_reap_counts c;
    consensus_aio_reap_stats(&c);
    return c;
}

static void test_other_system_calls_pass_through(void)
{
    CU_ASSERT_EQUAL(syscall(SYS_getpid), (long)getpid());
    CU_ASSERT(syscall(SYS_gettid) > 0);
    errno = 0;
    CU_ASSERT_EQUAL(syscall(SYS_close, -1), -1);
    CU_ASSERT_EQUAL(errno, EBADF);
    char buf[4] = { 0 };
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    CU_ASSERT_EQUAL(syscall(SYS_write, fds[1], "abc", 3), 3);
    CU_ASSERT_EQUAL(syscall(SYS_read, fds[0], buf, 3), 3);
    CU_ASSERT_STRING_EQUAL(buf, "abc");
    close(fds[0]);
    close(fds[1]);
}

/* Set the deferral, create a context and destroy it through syscall();
 * the counters from before the destroy and after it. */
static aio_context_t destroy_one(int defer, consensus_aio_reap_counts *before,
                                 consensus_aio_reap_counts *after)
{
    consensus_aio_reap_set(defer);
    *before = counts();
    aio_context_t ctx = 0;
    CU_ASSERT_EQUAL_FATAL(syscall(SYS_io_setup, 4, &ctx), 0);
    CU_ASSERT_EQUAL(syscall(SYS_io_destroy, ctx), 0);
    *after = counts();
    return ctx;
}

/* The kernel no longer knows `ctx` (asked synchronously). */
static void assert_gone(aio_context_t ctx)
{
    consensus_aio_reap_set(0);
    errno = 0;
    CU_ASSERT_EQUAL(syscall(SYS_io_destroy, ctx), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    consensus_aio_reap_set(1);
}

static void test_io_destroy_is_handed_to_the_helper_and_done(void)
{
    consensus_aio_reap_counts before, after;
    aio_context_t ctx = destroy_one(1, &before, &after);
    CU_ASSERT_EQUAL(after.deferred, before.deferred + 1);
    CU_ASSERT_EQUAL(after.synchronous, before.synchronous);
    CU_ASSERT_EQUAL(after.thread, 1);
    consensus_aio_reap_drain();
    after = counts();
    CU_ASSERT_EQUAL(after.thread, 0);
    CU_ASSERT_EQUAL(after.queued, 0);
    CU_ASSERT_EQUAL(after.failed, before.failed);
    assert_gone(ctx); /* the helper destroyed it */
}

static void test_turned_off_the_caller_destroys(void)
{
    consensus_aio_reap_counts before, after;
    aio_context_t ctx = destroy_one(0, &before, &after);
    CU_ASSERT_EQUAL(after.deferred, before.deferred);
    CU_ASSERT_EQUAL(after.synchronous, before.synchronous + 1);
    CU_ASSERT_EQUAL(after.thread, 0);
    assert_gone(ctx); /* already when the call returned */
}

/* libraft.so's own io_destroy calls (its I/O capability probe at init, the
 * segment writer's close) come to this process's syscall(): the binding the
 * daemon relies on. */
static void test_libraft_destroys_its_contexts_through_the_helper(void)
{
    consensus_aio_reap_set(1);
    consensus_aio_reap_counts before = counts();
    char dir[256];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "aioreap"), 0);
    struct disk d;
    CU_ASSERT_EQUAL(disk_open(&d, dir, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(d.io.set_term(&d.io, 1), 0);
    struct raft_io_append req;
    append(&d, &req, 1, 4);
    disk_close(&d); /* drains the helper's queue */
    consensus_aio_reap_counts after = counts();
    /* The probe's context and the open segment writer's. */
    CU_ASSERT(after.deferred >= before.deferred + 2);
    CU_ASSERT_EQUAL(after.synchronous, before.synchronous);
    CU_ASSERT_EQUAL(after.failed, before.failed);
    CU_ASSERT_EQUAL(after.queued, 0);
    CU_ASSERT_EQUAL(after.thread, 0);
    mb_test_rmtree(dir);
}

static CU_TestInfo reap_tests[] = {
    { "test_other_system_calls_pass_through", test_other_system_calls_pass_through },
    { "test_io_destroy_is_handed_to_the_helper_and_done",
      test_io_destroy_is_handed_to_the_helper_and_done },
    { "test_turned_off_the_caller_destroys", test_turned_off_the_caller_destroys },
    { "test_libraft_destroys_its_contexts_through_the_helper",
      test_libraft_destroys_its_contexts_through_the_helper },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "aio_reap", NULL, NULL, NULL, NULL, reap_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
