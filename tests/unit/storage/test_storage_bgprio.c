/* storage_options.background: with STORAGE_BG_LOW the index flusher and the
 * RocksDB threads that ran a flush or a compaction are at nice 19 in the
 * idle I/O class; with STORAGE_BG_NORMAL they keep the process's priority.
 * RocksDB's lowering is process-wide and one-way, so the NORMAL test runs
 * first (CUnit keeps the order of the table). */
#include <linux/ioprio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mb_test.h"
#include "storage/storage.h"
#include "storage/storage_testing.h"

/* What the threads whose name starts with `prefix` look like. */
struct prio_view {
    int threads; /* how many */
    int low;     /* of those, at nice 19 in the idle I/O class */
    int normal;  /* of those, at the main thread's nice, not in the idle class */
};

static int thread_nice(int tid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -100;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the parenthesised name: state is field 3, nice 19. */
    const char *p = strrchr(buf, ')');
    int nice = -100;
    if (p != NULL)
        (void)sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %d",
                     &nice);
    return nice;
}

static struct prio_view view(const char *prefix)
{
    struct prio_view v = { 0, 0, 0 };
    int base = thread_nice((int)getpid()); /* what the threads were started with */
    int tids[256];
    int n = mb_test_threads_named(prefix, 0, tids, 256);
    v.threads = n;
    for (int i = 0; i < n && i < 256; i++) {
        int nice = thread_nice(tids[i]);
        long io = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tids[i]);
        int idle = io >= 0 && IOPRIO_PRIO_CLASS(io) == IOPRIO_CLASS_IDLE;
        if (nice == 19 && idle)
            v.low++;
        else if (nice == base && !idle)
            v.normal++;
    }
    return v;
}

/* Open a store with `bg`, append enough to flush the memtables and compact
 * (so that both RocksDB pools ran a job) and sync the index tail; `check`
 * is then called with the store still open. */
static void with_busy_store(storage_bg_priority bg, void (*check)(void))
{
    char dir[256];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "bgprio"), 0);
    storage_options o = { .path = dir, .background = bg };
    storage *s = NULL;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(storage_open(&o, &s, &err), 0);
    storage_testing_set_index_flush(s, 64); /* the flusher thread writes rows */
    for (int round = 0; round < 2; round++) {
        storage_event ev[100];
        for (int i = 0; i < 100; i++)
            ev[i] = (storage_event){ .type = "var.set",
                                     .subject = i % 2 ? "a" : "b",
                                     .time_ms = 1000 + i,
                                     .payload = "{}",
                                     .payload_len = 2 };
        CU_ASSERT_EQUAL(storage_append(s, ev, 100, &err), 0);
        CU_ASSERT_EQUAL(storage_testing_index_sync(s, &err), 0);
        CU_ASSERT_EQUAL(storage_testing_flush_memtables(s, &err), 0);
    }
    CU_ASSERT_EQUAL(storage_compact(s, &err), 0);
    check();
    storage_close(s);
    mb_test_rmtree(dir);
}

static void check_normal(void)
{
    struct prio_view f = view("mb-index-flush"), r = view("rocksdb:");
    CU_ASSERT_EQUAL(f.threads, 1);
    CU_ASSERT_EQUAL(f.normal, 1);
    CU_ASSERT(r.threads >= 2);
    CU_ASSERT_EQUAL(r.normal, r.threads);
}

static void check_low(void)
{
    /* The flusher lowers itself when it starts: wait for it (bounded). */
    struct prio_view f;
    (void)MB_WAIT_UNTIL((f = view("mb-index-flush")).low == 1, 10000);
    CU_ASSERT_EQUAL(f.threads, 1);
    CU_ASSERT_EQUAL(f.low, 1);
    /* The flush pool's thread and a compaction thread each ran a job. */
    struct prio_view high = view("rocksdb:high"), low = view("rocksdb:low");
    CU_ASSERT(high.low >= 1);
    CU_ASSERT(low.low >= 1);
}

static void test_normal_keeps_the_process_priority(void)
{
    with_busy_store(STORAGE_BG_NORMAL, check_normal);
}

static void test_low_lowers_the_background_threads(void)
{
    with_busy_store(STORAGE_BG_LOW, check_low);
}

static void test_bad_priority_is_refused(void)
{
    char dir[256];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "bgprio"), 0);
    storage_options o = { .path = dir, .background = (storage_bg_priority)7 };
    storage *s = NULL;
    mb_error err;
    CU_ASSERT_EQUAL(storage_open(&o, &s, &err), MB_EINVAL);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "background priority"));
    mb_test_rmtree(dir);
}

static CU_TestInfo bgprio_tests[] = {
    /* NORMAL first: RocksDB's pools cannot be raised again. */
    { "test_normal_keeps_the_process_priority", test_normal_keeps_the_process_priority },
    { "test_low_lowers_the_background_threads", test_low_lowers_the_background_threads },
    { "test_bad_priority_is_refused", test_bad_priority_is_refused },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "storage_bgprio", NULL, NULL, NULL, NULL, bgprio_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
