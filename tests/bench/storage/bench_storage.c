/* Benchmarks of storage/ (suite `storage`, run by scripts/bench.d/storage.sh):
 *
 *   bench_storage append_fast DIR [events]      fast mode, batches of 1000
 *   bench_storage append_durable DIR [seconds]  8 threads, batches of 10
 *   bench_storage query_subject DIR [events]    1000 of one subject among N
 *
 * Each prints one JSON line per measurement on stdout (the median of its
 * repetitions), progress on stderr. DIR must not exist; it is removed at the
 * end. MB_BENCH_BG=normal opens the stores with STORAGE_BG_NORMAL instead of
 * the default low background priority (docs/storage.md, "Tuning in use"). */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/storage.h"

#define PAYLOAD_BYTES 256
#define SUBJECTS      10000
#define TYPES         20

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: less sensitive than wall time to the
 * other processes sharing the 2 cores. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (every thread, RocksDB's background
 * flushes and compactions included): the work an append really costs. */
static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

static void rmtree(const char *p)
{
    nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static char subjects[SUBJECTS][32];
static char types[TYPES][32];
static char payload[PAYLOAD_BYTES];

static void init_names(void)
{
    for (int i = 0; i < SUBJECTS; i++)
        snprintf(subjects[i], sizeof(subjects[i]), "var/model-%05d.lr", i);
    for (int i = 0; i < TYPES; i++)
        snprintf(types[i], sizeof(types[i]), "event.type.%02d", i);
    for (int i = 0; i < PAYLOAD_BYTES; i++)
        payload[i] = (char)('a' + (next_rand() % 26));
}

static storage *open_store_cache(const char *dir, storage_durability d, size_t cache)
{
    const char *bg = getenv("MB_BENCH_BG");
    storage_options o = { .path = dir,
                          .durability = d,
                          .block_cache_bytes = cache,
                          .background = bg != NULL && strcmp(bg, "normal") == 0 ? STORAGE_BG_NORMAL
                                                                                : STORAGE_BG_LOW };
    storage *s;
    mb_error err;
    if (storage_open(&o, &s, &err) != 0) {
        fprintf(stderr, "open %s: %s\n", dir, err.msg);
        exit(1);
    }
    return s;
}

static storage *open_store(const char *dir, storage_durability d)
{
    return open_store_cache(dir, d, 256u << 20);
}

static void fill_batch(storage_event *evs, size_t n, int64_t *clock_ms)
{
    for (size_t i = 0; i < n; i++) {
        evs[i].seq = 0;
        evs[i].type = types[next_rand() % TYPES];
        evs[i].subject = subjects[next_rand() % SUBJECTS];
        evs[i].time_ms = (*clock_ms)++;
        evs[i].payload = payload;
        evs[i].payload_len = PAYLOAD_BYTES;
    }
}

/* Append `total` events in batches of 1000; returns events/s (wall
 * clock); *cpu (may be NULL) gets the process CPU seconds spent. */
static double load(storage *s, size_t total, double *cpu)
{
    double c0 = process_cpu_s();
    storage_event evs[1000];
    int64_t clock_ms = 1700000000000;
    mb_error err;
    double t0 = now_s();
    for (size_t done = 0; done < total; done += 1000) {
        fill_batch(evs, 1000, &clock_ms);
        if (storage_append(s, evs, 1000, &err) != 0) {
            fprintf(stderr, "append: %s\n", err.msg);
            exit(1);
        }
    }
    if (cpu != NULL)
        *cpu = process_cpu_s() - c0;
    return (double)total / (now_s() - t0);
}

/* Fast appends, 5 runs. The headline figure counts the time until every
 * event is appended AND its index rows are written (storage_close waits
 * for the background index flusher, writes the last tail and persists the
 * index memtables): the sustained rate, not the rate of a burst that leaves
 * index work behind. The append-only rate is reported beside it. */
static void bench_append_fast(const char *dir, size_t total)
{
    enum { RUNS = 5 };
    double r[RUNS], burst[RUNS], per_cpu[RUNS];
    for (int rep = 0; rep < RUNS; rep++) {
        storage *s = open_store(dir, STORAGE_FAST);
        double c0 = process_cpu_s(), t0 = now_s();
        burst[rep] = load(s, total, NULL);
        storage_close(s);
        double wall = now_s() - t0, cpu = process_cpu_s() - c0;
        r[rep] = (double)total / wall;
        per_cpu[rep] = (double)total / cpu;
        rmtree(dir);
        fprintf(stderr,
                "append_fast run %d: %.0f events/s appended and indexed (%.0f until the last "
                "append returned), %.0f events per CPU second\n",
                rep, r[rep], burst[rep], per_cpu[rep]);
    }
    /* events_per_cpu_s: events per second of process CPU (all threads,
     * close included), which the other users of a shared machine hardly
     * change. */
    printf("{\"suite\":\"storage\",\"metric\":\"append_fast_batch1000\",\"value\":%.0f,"
           "\"unit\":\"events/s\",\"target\":500000,\"until_last_append_events_s\":%.0f,"
           "\"events_per_cpu_s\":%.0f,\"events\":%zu,\"runs\":%d,"
           "\"timed\":\"open to close (index rows written)\"}\n",
           median(r, RUNS), median(burst, RUNS), median(per_cpu, RUNS), total, RUNS);
}

struct writer_arg {
    storage *s;
    double deadline;
    size_t events;
    int id;
};

static void *durable_writer(void *p)
{
    struct writer_arg *a = p;
    storage_event evs[10];
    int64_t clock_ms = 1700000000000 + a->id;
    mb_error err;
    while (now_s() < a->deadline) {
        fill_batch(evs, 10, &clock_ms);
        if (storage_append(a->s, evs, 10, &err) != 0) {
            fprintf(stderr, "append: %s\n", err.msg);
            exit(1);
        }
        a->events += 10;
    }
    return NULL;
}

static void bench_append_durable(const char *dir, double seconds)
{
    enum { RUNS = 5 };
    double r[RUNS];
    for (int rep = 0; rep < RUNS; rep++) {
        storage *s = open_store(dir, STORAGE_DURABLE);
        struct writer_arg args[8];
        pthread_t th[8];
        double t0 = now_s();
        for (int i = 0; i < 8; i++) {
            args[i] = (struct writer_arg){ .s = s, .deadline = t0 + seconds, .id = i };
            pthread_create(&th[i], NULL, durable_writer, &args[i]);
        }
        size_t total = 0;
        for (int i = 0; i < 8; i++) {
            pthread_join(th[i], NULL);
            total += args[i].events;
        }
        r[rep] = (double)total / (now_s() - t0);
        storage_close(s);
        rmtree(dir);
        fprintf(stderr, "append_durable run %d: %.0f events/s\n", rep, r[rep]);
    }
    printf("{\"suite\":\"storage\",\"metric\":\"append_durable_8threads_batch10\",\"value\":%.0f,"
           "\"unit\":\"events/s\",\"target\":50000,\"runs\":%d}\n",
           median(r, RUNS), RUNS);
}

struct count_arg {
    size_t n;
};

static int count_cb(const storage_event *ev, void *arg)
{
    (void)ev;
    ((struct count_arg *)arg)->n++;
    return 0;
}

static void bench_query_subject(const char *dir, size_t total)
{
    /* MB_BENCH_KEEP=1 keeps DIR, and reuses it when it exists (tuning). */
    int keep = getenv("MB_BENCH_KEEP") != NULL;
    struct stat st;
    storage *s;
    if (!keep || stat(dir, &st) != 0) {
        s = open_store(dir, STORAGE_FAST);
        fprintf(stderr, "query_subject: loading %zu events...\n", total);
        double rate = load(s, total, NULL);
        fprintf(stderr, "query_subject: loaded at %.0f events/s; compacting\n", rate);
        double t0 = now_s();
        mb_error err;
        if (storage_compact(s, &err) != 0) {
            fprintf(stderr, "compact: %s\n", err.msg);
            exit(1);
        }
        fprintf(stderr, "query_subject: compacted in %.1f s; reopening\n", now_s() - t0);
        storage_close(s);
    }
    /* A 2 GiB block cache holds the whole log (about 1.3 GB): the first
     * pass of the queries measures cold reads (OS page cache only), the
     * second pass, over the same subjects, warm ones. */
    s = open_store_cache(dir, STORAGE_FAST, (size_t)2 << 30);
    enum { QUERIES = 200 };
    double ms[2][QUERIES], cpu_ms[2][QUERIES];
    const char *picked[QUERIES];
    for (int i = 0; i < QUERIES; i++)
        picked[i] = subjects[next_rand() % SUBJECTS];
    size_t got = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < QUERIES; i++) {
            struct storage_query q = { .subject = picked[i], .limit = 1000, .newest_first = i % 2 };
            struct count_arg c = { 0 };
            mb_error err;
            double t0 = now_s(), c0 = thread_cpu_s();
            if (storage_query(s, &q, count_cb, &c, NULL, &err) != 0) {
                fprintf(stderr, "query: %s\n", err.msg);
                exit(1);
            }
            ms[pass][i] = (now_s() - t0) * 1e3;
            cpu_ms[pass][i] = (thread_cpu_s() - c0) * 1e3;
            got += c.n;
        }
    }
    fprintf(stderr, "query_subject: %.1f events per query on average\n",
            (double)got / (2 * QUERIES));
    const char *name[2] = { "cold", "warm" };
    for (int pass = 0; pass < 2; pass++)
        printf("{\"suite\":\"storage\",\"metric\":\"query_subject_1000_of_%zuM_%s\","
               "\"value\":%.3f,\"unit\":\"ms\",\"target\":2,\"cpu_ms\":%.3f,"
               "\"queries\":%d,\"events_per_query\":%.0f}\n",
               total / 1000000, name[pass], median(ms[pass], QUERIES),
               median(cpu_ms[pass], QUERIES), QUERIES, (double)got / (2 * QUERIES));
    storage_close(s);
    if (!keep)
        rmtree(dir);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s append_fast|append_durable|query_subject DIR [n]\n", argv[0]);
        return 2;
    }
    init_names();
    const char *dir = argv[2];
    if (strcmp(argv[1], "append_fast") == 0)
        bench_append_fast(dir, argc > 3 ? strtoul(argv[3], NULL, 10) : 2000000);
    else if (strcmp(argv[1], "append_durable") == 0)
        bench_append_durable(dir, argc > 3 ? strtod(argv[3], NULL) : 5.0);
    else if (strcmp(argv[1], "query_subject") == 0)
        bench_query_subject(dir, argc > 3 ? strtoul(argv[3], NULL, 10) : 10000000);
    else
        return 2;
    return 0;
}
