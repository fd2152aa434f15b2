/* Power-cut test of storage/'s durable mode. The writer process
 * (storage_writer powercut) runs under the sync_shadow LD_PRELOAD shim,
 * which records, at every fsync/fdatasync, what the disk would hold after a
 * power cut: file contents as of their last sync, directory entries as of
 * the last directory sync. The writer appends in durable mode and prints
 * every acknowledged sequence; the test SIGKILLs it mid-stream, builds the
 * directory a power cut would leave from the shadow, opens it and checks
 * that every acknowledged event is there, intact, that no batch is partial
 * and that the indexes hold every event exactly once. docs/storage.md,
 * "Power cut", describes the method. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_test.h"
#include "storage/storage.h"
#include "storage_pattern.h"

#ifndef SYNC_SHADOW_LIB
#error "SYNC_SHADOW_LIB (path of the shim) must be defined by the build"
#endif

/* Path of a binary next to this test binary. */
static void sibling_path(const char *name, char *out, size_t size)
{
    char self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CU_ASSERT_FATAL(n > 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(out, size, "%s/%s", self, name);
}

/* Start the writer under the shim, stdout to a pipe. */
static pid_t spawn_writer(const char *db, const char *shadow, int *out_fd)
{
    char helper[4096];
    sibling_path("storage_writer", helper, sizeof(helper));
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        setenv("LD_PRELOAD", SYNC_SHADOW_LIB, 1);
        setenv("MB_SHADOW_SRC", db, 1);
        setenv("MB_SHADOW_DIR", shadow, 1);
        /* Sanitizer builds: the shim is preloaded ahead of the runtime. */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[1024];
        snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        char *argv[] = { helper, "powercut", (char *)db, NULL };
        execv(helper, argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            rc = -1;
    close(in);
    close(out);
    return n < 0 ? -1 : rc;
}

/* Build in `disk` what the power cut left: every durable name, with the
 * durable content of its file (empty when its data was never synced).
 * Returns the number of files, or -1. */
static int materialize(const char *shadow, const char *disk)
{
    char names[PATH_MAX];
    snprintf(names, sizeof(names), "%s/names", shadow);
    FILE *f = fopen(names, "r");
    if (f == NULL)
        return -1;
    char name[256], id[64];
    int files = 0;
    while (fscanf(f, "%255s %63s", name, id) == 2) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof(from), "%s/ino-%s", shadow, id);
        snprintf(to, sizeof(to), "%s/%s", disk, name);
        if (access(from, F_OK) == 0) {
            if (copy_file(from, to) != 0)
                files = -1000;
        } else {
            int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                files = -1000;
            else
                close(fd);
        }
        files++;
    }
    fclose(f);
    return files < 0 ? -1 : files;
}

struct verify {
    uint64_t expect;
    int intact;
};

static int verify_cb(const storage_event *ev, void *arg)
{
    struct verify *v = arg;
    if (ev->seq != v->expect || !pattern_check(ev->seq, ev->payload, ev->payload_len))
        v->intact = 0;
    v->expect++;
    return 0;
}

static int count_cb(const storage_event *ev, void *arg)
{
    uint64_t *prev = arg;
    if (ev->seq <= prev[0] || !pattern_check(ev->seq, ev->payload, ev->payload_len))
        prev[2] = 1; /* out of order, doubled or damaged */
    prev[0] = ev->seq;
    prev[1]++;
    return 0;
}

/* Events of one subject/type, each once, in order, intact. */
static uint64_t index_count(storage *s, const char *subject, const char *type, int *bad)
{
    struct storage_query q = { .subject = subject, .type = type, .limit = 10000 };
    uint64_t st[3] = { 0, 0, 0 }, cursor = 0;
    do {
        q.cursor = cursor;
        mb_error err;
        if (storage_query(s, &q, count_cb, st, &cursor, &err) != 0) {
            fprintf(stderr, "powercut: index query: %s\n", err.msg);
            *bad = 1;
            return 0;
        }
    } while (cursor != 0);
    if (st[2])
        *bad = 1;
    return st[1];
}

/* One power cut after `acks` acknowledged batches. */
static void power_cut_after(int acks)
{
    char db[512], shadow[512], disk[512];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(db, sizeof(db), "powercut-db"), 0);
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(shadow, sizeof(shadow), "powercut-shadow"), 0);
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(disk, sizeof(disk), "powercut-disk"), 0);
    /* /proc/self/fd links name the canonical path: compare with that. */
    char canon[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(db, canon));
    int fd;
    pid_t pid = spawn_writer(canon, shadow, &fd);
    uint64_t last_acked = 0;
    char line[256];
    for (int i = 0; i < acks; i++) {
        if (mb_test_read_line(fd, line, sizeof(line), 30000) <= 0)
            break;
        unsigned long long v;
        if (sscanf(line, "ack %llu", &v) == 1)
            last_acked = v;
    }
    kill(pid, SIGKILL); /* the power cut: nothing after the last sync survives */
    int status;
    waitpid(pid, &status, 0);
    close(fd);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CU_ASSERT_EQUAL_FATAL(last_acked, (uint64_t)acks * PATTERN_BATCH);

    int files = materialize(shadow, disk);
    CU_ASSERT_FATAL(files > 0);
    storage_options o = { .path = disk, .durability = STORAGE_DURABLE };
    storage *s = NULL;
    mb_error err;
    int rc = storage_open(&o, &s, &err);
    if (rc != 0)
        fprintf(stderr, "powercut: open the disk after the cut: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    uint64_t last = storage_last_seq(s);
    if (last < last_acked)
        fprintf(stderr, "powercut after %d acks: last seq %llu, acknowledged %llu\n", acks,
                (unsigned long long)last, (unsigned long long)last_acked);
    CU_ASSERT(last >= last_acked);
    CU_ASSERT_EQUAL(last % PATTERN_BATCH, 0); /* no partial batch */
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(s, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, last);
    /* every event, by seq, intact (a torn record fails its CRC) */
    struct storage_query q = { .limit = 10000 };
    struct verify v = { .expect = 1, .intact = 1 };
    uint64_t cursor = 0;
    do {
        q.cursor = cursor;
        rc = storage_query(s, &q, verify_cb, &v, &cursor, &err);
        if (rc != 0)
            fprintf(stderr, "powercut: read back: %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    } while (cursor != 0);
    CU_ASSERT(v.intact);
    CU_ASSERT_EQUAL(v.expect - 1, last);
    /* the indexes: every event exactly once (rows written without WAL
     * and lost are rebuilt from the records) */
    int bad = 0;
    uint64_t evens = 0;
    for (uint64_t seq = 1; seq <= last; seq++)
        evens += (seq - 1) % PATTERN_BATCH % 2 == 0;
    CU_ASSERT_EQUAL(index_count(s, NULL, "test.kill", &bad), last);
    CU_ASSERT_EQUAL(index_count(s, "even", NULL, &bad), evens);
    CU_ASSERT_EQUAL(index_count(s, "odd", "test.kill", &bad), last - evens);
    CU_ASSERT_FALSE(bad);
    storage_close(s);
    mb_test_rmtree(db);
    mb_test_rmtree(shadow);
    mb_test_rmtree(disk);
}

/* Kill points between the writer's memtable flushes (every 40 batches),
 * so that most acknowledged events are only in the synced WAL. */
static void test_durable_mode_keeps_every_acknowledged_event_through_a_power_cut(void)
{
    power_cut_after(37);
    power_cut_after(113);
    power_cut_after(230);
}

static CU_TestInfo powercut_tests[] = {
    { "durable_mode_keeps_every_acknowledged_event_through_a_power_cut",
      test_durable_mode_keeps_every_acknowledged_event_through_a_power_cut },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "powercut", NULL, NULL, NULL, NULL, powercut_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
