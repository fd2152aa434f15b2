/* Benchmarks of node/core (suite `node`): memory latency against buffer
 * size (the baseline of a random lookup), registry lookup with 1,000,000
 * names (a loop of independent lookups, and a chain of dependent ones),
 * registry register, memory per registry entry, histogram record,
 * counter add, and the cost of a log call whose level is off.
 *
 * Every timing is taken over batches of BATCH operations (one clock read
 * per batch, not per operation); the figure printed is the median of the
 * per-operation batch averages, over all batches of REPS repetitions.
 * Output: one JSON object per line on stdout; progress on stderr.
 *
 *   bench_nodecore [--names N] [--reps R] */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "node/core/log.h"
#include "node/core/registry.h"
#include "node/core/telemetry.h"

#define BATCH 1000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static void emit(const char *metric, double value, const char *unit, const char *extra)
{
    printf("{\"suite\":\"node\",\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\"%s%s}\n", metric,
           value, unit, extra ? "," : "", extra ? extra : "");
    fflush(stdout);
}

static volatile uint64_t sink;

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Memory access cost over a buffer of `mib` MiB (2 MiB-aligned with
 * MADV_HUGEPAGE like the registry's large tables, so TLB misses are not
 * counted). dependent: a pointer chase through a random cyclic permutation
 * of cache lines, i.e. the latency of one load whose address depends on the
 * previous one. Otherwise: random loads whose addresses are independent
 * (as consecutive lookups of unrelated names are), which the CPU overlaps:
 * the floor for a loop of random lookups. The median of 5 runs. */
static double memory_ns(size_t mib, bool dependent)
{
    size_t size = mib << 20, lines = size / 64, huge = 2u << 20;
    char *raw = mmap(NULL, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t *perm = malloc(lines * sizeof(size_t));
    if (raw == MAP_FAILED || perm == NULL)
        exit(1);
    uint64_t *a = (uint64_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(a, size, MADV_HUGEPAGE);
    for (size_t i = 0; i < lines; i++)
        perm[i] = i;
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = next_rand() % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < lines; i++)
        a[perm[i] * 8] = perm[(i + 1) % lines] * 8;
    free(perm);
    enum { STEPS = 200000, RUNS = 5 };
    double runs[RUNS];
    size_t p = 0;
    for (int i = 0; i < STEPS; i++) /* warm the TLB and caches */
        p = a[p];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        if (dependent) {
            for (int i = 0; i < STEPS; i++)
                p = a[p];
        } else {
            uint64_t x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)r, acc = 0;
            for (int i = 0; i < STEPS; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                acc += a[(x % lines) * 8];
            }
            p += acc;
        }
        runs[r] = (now_ns() - t0) / STEPS;
    }
    sink += p;
    munmap(raw, size + huge);
    return median(runs, RUNS);
}

/* Size in bytes of the cache of `level` (sysfs), or 0. */
static long cache_bytes(int level)
{
    for (int idx = 0; idx < 8; idx++) {
        char path[96], type[32] = "";
        int lv = 0;
        long kib = 0;
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/level", idx);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            break;
        if (fscanf(f, "%d", &lv) != 1)
            lv = 0;
        fclose(f);
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/type", idx);
        if ((f = fopen(path, "r")) != NULL) {
            if (fscanf(f, "%31s", type) != 1)
                type[0] = '\0';
            fclose(f);
        }
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
        if (lv == level && strcmp(type, "Instruction") != 0 && (f = fopen(path, "r")) != NULL) {
            if (fscanf(f, "%ldK", &kib) != 1)
                kib = 0;
            fclose(f);
            return kib * 1024;
        }
    }
    return 0;
}

/* The memory figures the registry lookup is judged against. */
static void bench_memory(void)
{
    char extra[160];
    static const size_t sizes[] = { 4, 8, 16, 32, 64, 96 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        double ns = memory_ns(sizes[k], true);
        snprintf(extra, sizeof(extra), "\"buffer_mib\":%zu,\"l2_bytes\":%ld,\"l3_bytes\":%ld",
                 sizes[k], cache_bytes(2), cache_bytes(3));
        /* The 96 MiB figure keeps its historical name (the 1M-name tables). */
        emit(sizes[k] == 96 ? "memory_miss_latency" : "memory_chase_latency", ns, "ns", extra);
    }
    snprintf(extra, sizeof(extra), "\"buffer_mib\":96,\"order\":\"independent random\"");
    emit("memory_random_load_throughput", memory_ns(96, false), "ns", extra);
}

#define NAME_LEN 16 /* "agent-0001234" fits inline */

static void bench_registry(size_t n, int reps)
{
    char *names = malloc(n * NAME_LEN);
    char *order = malloc(n * NAME_LEN);
    size_t nbatches = n / BATCH;
    double *samples = malloc(nbatches * (size_t)reps * sizeof(double));
    if (names == NULL || order == NULL || samples == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        snprintf(names + i * NAME_LEN, NAME_LEN, "agent-%07u", (unsigned)(i % 10000000));

    /* register: median batch average while growing to n entries. */
    size_t ns_reg = 0;
    double reg_med = 0, bytes_per_entry_rss = 0, bytes_per_entry_tables = 0;
    nc_registry *reg = NULL;
    nc_reg_ns ns;
    for (int r = 0; r < reps; r++) {
        if (reg != NULL)
            nc_registry_free(reg);
        long rss0 = rss_bytes();
        if (nc_registry_new(&reg, 0, NULL) != MB_OK ||
            nc_registry_namespace(reg, "agents", &ns, NULL) != MB_OK)
            exit(1);
        for (size_t b = 0; b < nbatches; b++) {
            double t0 = now_ns();
            for (size_t i = b * BATCH; i < (b + 1) * BATCH; i++) {
                nc_reg_value v = { i, names + i * NAME_LEN };
                if (nc_registry_register(reg, ns, names + i * NAME_LEN, &v, NULL, 0, NULL) != MB_OK)
                    exit(1);
            }
            samples[ns_reg++] = (now_ns() - t0) / BATCH;
        }
        long rss1 = rss_bytes();
        nc_registry_stats st;
        nc_registry_stats_get(reg, &st);
        bytes_per_entry_rss = (double)(rss1 - rss0) / (double)n;
        bytes_per_entry_tables = (double)(st.bytes_table + st.bytes_heap) / (double)n;
        fprintf(stderr, "bench: registry rep %d: %zu entries, %.1f B/entry (RSS), %.1f (tables)\n",
                r, st.entries, bytes_per_entry_rss, bytes_per_entry_tables);
    }
    reg_med = median(samples, ns_reg);

    /* lookup: random order over all n names, read from a sequential list. */
    for (size_t i = 0; i < n; i++)
        memcpy(order + i * NAME_LEN, names + (next_rand() % n) * NAME_LEN, NAME_LEN);
    size_t ns_look = 0;
    for (int r = 0; r < reps; r++) {
        for (size_t b = 0; b < nbatches; b++) {
            double t0 = now_ns();
            uint64_t acc = 0;
            for (size_t i = b * BATCH; i < (b + 1) * BATCH; i++) {
                nc_reg_value v;
                if (nc_registry_lookup(reg, ns, order + i * NAME_LEN, &v) != MB_OK)
                    exit(1);
                acc += v.id;
            }
            sink += acc;
            samples[ns_look++] = (now_ns() - t0) / BATCH;
        }
    }
    double look_med = median(samples, ns_look);

    /* chained lookup: the same random names, but which name is looked up
     * next depends on the value the previous lookup returned, so no two
     * lookups overlap: the latency of one call on its own. */
    size_t ns_chain = 0;
    uint64_t prev = 0;
    for (int r = 0; r < reps; r++) {
        for (size_t b = 0; b < nbatches; b++) {
            double t0 = now_ns();
            for (size_t i = b * BATCH; i < (b + 1) * BATCH; i++) {
                nc_reg_value v;
                /* prev is never UINT64_MAX: the index is i, known only
                 * once the previous lookup has returned. */
                size_t at = i + (prev == UINT64_MAX);
                if (nc_registry_lookup(reg, ns, order + at * NAME_LEN, &v) != MB_OK)
                    exit(1);
                prev = v.id;
            }
            samples[ns_chain++] = (now_ns() - t0) / BATCH;
        }
    }
    sink += prev;
    double chain_med = median(samples, ns_chain);

    /* lookup of a small hot set (the same 1000 names, cache-resident). */
    size_t ns_hot = 0;
    for (int r = 0; r < reps; r++) {
        for (size_t b = 0; b < nbatches; b++) {
            double t0 = now_ns();
            uint64_t acc = 0;
            for (size_t i = 0; i < BATCH; i++) {
                nc_reg_value v;
                nc_registry_lookup(reg, ns, order + i * NAME_LEN, &v);
                acc += v.id;
            }
            sink += acc;
            samples[ns_hot++] = (now_ns() - t0) / BATCH;
        }
    }
    double hot_med = median(samples, ns_hot);

    char extra[200];
    double miss = memory_ns(96, true);
    snprintf(extra, sizeof(extra),
             "\"target\":100,\"names\":%zu,\"order\":\"random\",\"baseline\":\"memory_miss_"
             "latency\",\"ratio\":%.2f",
             n, look_med / miss);
    emit("registry_lookup_median", look_med, "ns", extra);
    snprintf(extra, sizeof(extra),
             "\"names\":%zu,\"order\":\"random, each depending on the previous result\","
             "\"baseline\":\"memory_miss_latency\",\"ratio\":%.2f",
             n, chain_med / miss);
    emit("registry_lookup_chained_median", chain_med, "ns", extra);
    snprintf(extra, sizeof(extra), "\"target\":100,\"names\":%zu,\"order\":\"hot 1000\"", n);
    emit("registry_lookup_hot_median", hot_med, "ns", extra);
    snprintf(extra, sizeof(extra), "\"target\":1000,\"names\":%zu", n);
    emit("registry_register_median", reg_med, "ns", extra);
    snprintf(extra, sizeof(extra),
             "\"target\":150,\"names\":%zu,\"name_len\":13,\"method\":\"rss\"", n);
    emit("registry_bytes_per_entry", bytes_per_entry_rss, "bytes", extra);
    snprintf(extra, sizeof(extra),
             "\"target\":150,\"names\":%zu,\"name_len\":13,\"method\":\"tables\"", n);
    emit("registry_bytes_per_entry_tables", bytes_per_entry_tables, "bytes", extra);
    nc_registry_free(reg);
    free(samples);
    free(order);
    free(names);
}

static int count_cb(void *arg, const char *name, const nc_reg_value *v)
{
    (void)name;
    (void)v;
    (*(size_t *)arg)++;
    return 0;
}

/* select by attribute is a scan: cost per call over 100,000 entries with
 * two attributes each (a quarter match kind=trainer). */
static void bench_select(int reps)
{
    nc_registry *reg;
    nc_reg_ns ns;
    enum { N = 100000 };
    static const char *const kinds[] = { "trainer", "optimiser", "evaluator", "port" };
    if (nc_registry_new(&reg, N, NULL) != MB_OK ||
        nc_registry_namespace(reg, "agents", &ns, NULL) != MB_OK)
        exit(1);
    char name[32];
    for (unsigned i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "agent-%07u", i);
        nc_reg_attr attrs[] = { { "kind", kinds[i % 4] }, { "zone", i % 2 ? "a" : "b" } };
        nc_reg_value v = { i, NULL };
        nc_registry_register(reg, ns, name, &v, attrs, 2, NULL);
    }
    int runs = 20 * reps;
    double *samples = malloc((size_t)runs * sizeof(double));
    nc_reg_attr q[] = { { "kind", "trainer" } };
    for (int r = 0; r < runs; r++) {
        size_t n = 0;
        double t0 = now_ns();
        nc_registry_select(reg, ns, q, 1, count_cb, &n);
        samples[r] = (now_ns() - t0) / 1e6;
        sink += n;
    }
    emit("registry_select_100k_median", median(samples, (size_t)runs), "ms",
         "\"entries\":100000,\"matches\":25000");
    free(samples);
    nc_registry_free(reg);
}

struct hist_arg {
    nc_hist *h;
    int batches;
    double *samples;
};

static void *hist_thread(void *p)
{
    struct hist_arg *a = p;
    uint64_t x = 88172645463325252ULL ^ (uint64_t)(uintptr_t)p;
    for (int b = 0; b < a->batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            nc_hist_record(a->h, x >> 40); /* values up to 2^24 */
        }
        a->samples[b] = (now_ns() - t0) / BATCH;
    }
    return NULL;
}

static void bench_metrics(int reps)
{
    nc_metrics *m;
    nc_hist *h;
    nc_counter *c;
    if (nc_metrics_new(&m, NULL) != MB_OK ||
        nc_metrics_hist(m, "mb_bench_seconds", "Bench.", NULL, 0, NULL, &h, NULL) != MB_OK ||
        nc_metrics_counter(m, "mb_bench_total", "Bench.", NULL, 0, &c, NULL) != MB_OK)
        exit(1);
    int batches = 2000 * reps;
    double *samples = malloc((size_t)batches * 2 * sizeof(double));
    struct hist_arg one = { h, batches, samples };
    hist_thread(&one);
    emit("hist_record_median", median(samples, (size_t)batches), "ns",
         "\"threads\":1,\"target\":20");

    /* Two threads recording into the same histogram (striped). */
    struct hist_arg two[2] = { { h, batches, samples }, { h, batches, samples + batches } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, hist_thread, &two[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    emit("hist_record_2threads_median", median(samples, (size_t)batches * 2), "ns",
         "\"threads\":2");

    for (int b = 0; b < batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++)
            nc_counter_inc(c);
        samples[b] = (now_ns() - t0) / BATCH;
    }
    emit("counter_add_median", median(samples, (size_t)batches), "ns", "\"threads\":1");
    free(samples);
    nc_metrics_free(m);
}

static void null_sink(void *arg, nc_log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    (void)line;
    sink += len;
}

static void bench_log(int reps)
{
    nc_log *log;
    nc_log_options o = { .level = NC_LOG_INFO, .format = NC_LOG_FORMAT_JSON, .sink = null_sink };
    if (nc_log_open(&log, &o, NULL) != MB_OK)
        exit(1);
    int batches = 2000 * reps;
    double *samples = malloc((size_t)batches * sizeof(double));
    const char *agent = "agent-0000042";
    for (int b = 0; b < batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++) {
            NC_DEBUG(log, "bench", "message %d for %s", i, agent);
            NC_LOGKV(log, NC_LOG_TRACE, "bench", "kv", NC_F_I64("i", i), NC_F_STR("a", agent));
        }
        samples[b] = (now_ns() - t0) / (2 * BATCH);
    }
    emit("log_call_level_off_median", median(samples, (size_t)batches), "ns", "\"target\":5");
    /* For comparison: a JSON line that is written (to a discarding sink). */
    int on_batches = 50 * reps;
    for (int b = 0; b < on_batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++)
            NC_LOGKV(log, NC_LOG_INFO, "bench", "kv", NC_F_I64("i", i), NC_F_STR("a", agent));
        samples[b] = (now_ns() - t0) / BATCH;
    }
    emit("log_call_json_written_median", median(samples, (size_t)on_batches), "ns",
         "\"sink\":\"discard\"");
    free(samples);
    nc_log_close(log);
}

int main(int argc, char **argv)
{
    size_t names = 1000000;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--names") == 0 && i + 1 < argc)
            names = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
    }
    if (names < BATCH)
        names = BATCH;
    if (reps < 1)
        reps = 1;
    fprintf(stderr, "bench: node_core, %zu names, %d repetitions\n", names, reps);
    bench_memory();
    bench_registry(names, reps);
    bench_select(reps);
    bench_metrics(reps);
    bench_log(reps);
    return 0;
}
