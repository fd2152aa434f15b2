/* Agent runtime benchmarks (suite "agents"): spawn cost at 100k and 1M
 * agents, memory per idle agent (RSS delta and malloc delta, unnamed and
 * with a name in node/core's registry, the one mabeamd uses), ping-pong round trip, one-way
 * throughput across the workers, supervised restart latency with checkpoint restore, and
 * a watch fan-out (one change to 333 agents, a node's share of the cluster suite's 1,000). Prints
 * one "metric value unit" line per result (medians of repeated runs); scripts/bench.d/agents.sh
 * turns them into JSON next to Erlang's. */
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mabeam/agent.h>
#include <mabeam/agent_runtime.h>

#include "node/core/registry.h"

/* Clock `c` in ns: CLOCK_MONOTONIC for times, the CPU-time clocks for
 * the fan-out's CPU per delivery. */
static uint64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
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

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* ---- the registry: node/core's nc_registry, the one mabeamd uses, with
 * the same calls as node/services.c makes for an agent's name (namespace
 * interned, entry value = agent id, capabilities as attributes), so that
 * "registry entry included" counts the daemon's real entry. ---- */

static nc_registry *REG;

static int reg_register(void *impl, mb_agent_id id, const char *ns, const char *name,
                        const char *const *caps, size_t ncaps)
{
    (void)impl;
    if (name == NULL)
        return 0;
    nc_reg_ns nsid;
    mb_error e;
    int rv = nc_registry_namespace(REG, ns != NULL ? ns : "default", &nsid, &e);
    if (rv != MB_OK)
        return rv;
    nc_reg_attr attrs[64];
    size_t na = 0;
    for (size_t i = 0; i < ncaps && na < 64; i++)
        attrs[na++] = (nc_reg_attr){ caps[i], "1" };
    nc_reg_value v = { .id = id, .ptr = NULL };
    return nc_registry_register(REG, nsid, name, &v, attrs, na, &e);
}

static void reg_unregister(void *impl, mb_agent_id id, const char *ns, const char *name)
{
    (void)impl;
    nc_reg_ns nsid;
    mb_error e;
    nc_reg_value v;
    if (name == NULL || nc_registry_namespace(REG, ns != NULL ? ns : "default", &nsid, &e) != MB_OK)
        return;
    if (nc_registry_lookup(REG, nsid, name, &v) == MB_OK && v.id == id)
        nc_registry_unregister(REG, nsid, name, NULL);
}

/* ---- kinds used by the benchmarks ---- */

static _Atomic int PP_DONE;
static _Atomic uint64_t SINK_TOTAL;
static _Atomic uint64_t RESTORED_NS;
static _Atomic mb_agent_id VICTIM; /* the current ckcrash instance */

struct pinger {
    uint64_t left;
    mb_agent_id peer;
};

static int pinger_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    struct pinger *p = malloc(sizeof(*p));
    if (p == NULL)
        return MB_ENOMEM;
    p->left = strtoull(config, NULL, 10);
    *state = p;
    return 0;
}

/* tag 1 from the test: start, with data = the ponger id; replies come back
 * with tag 2. */
static int pinger_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct pinger *p = state;
    if (msg->tag == 1)
        memcpy(&p->peer, msg->data, sizeof(p->peer));
    if (p->left == 0) {
        atomic_store(&PP_DONE, 1);
        return 0;
    }
    p->left--;
    return mb_send(ctx, p->peer, 2, NULL, 0);
}

static const mb_agent_kind pinger_kind = {
    .abi = MB_AGENT_ABI,
    .name = "pinger",
    .version = 1,
    .init = pinger_init,
    .handle = pinger_handle,
};

struct sender {
    mb_agent_id sink;
    uint64_t left;
};

static int sender_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    struct sender *s = malloc(sizeof(*s));
    if (s == NULL)
        return MB_ENOMEM;
    unsigned long long sink, left;
    if (sscanf(config, "%llx %llu", &sink, &left) != 2) {
        free(s);
        return MB_EINVAL;
    }
    s->sink = sink;
    s->left = left;
    *state = s;
    return 0;
}

/* Each turn sends a batch to the sink, then asks itself to continue. */
static int sender_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)msg;
    struct sender *s = state;
    for (int i = 0; i < 256 && s->left > 0; i++, s->left--) {
        int rc = mb_send(ctx, s->sink, 3, NULL, 0);
        if (rc != 0)
            return rc;
    }
    if (s->left > 0)
        return mb_send(ctx, mb_self(ctx), 4, NULL, 0);
    return 0;
}

static const mb_agent_kind sender_kind = {
    .abi = MB_AGENT_ABI,
    .name = "sender",
    .version = 1,
    .init = sender_init,
    .handle = sender_handle,
};

static int sink_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)ctx;
    (void)msg;
    uint64_t *n = state;
    (*n)++;
    if ((*n & 1023) == 0)
        atomic_fetch_add_explicit(&SINK_TOTAL, 1024, memory_order_relaxed);
    return 0;
}

static int sink_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)ctx;
    (void)config;
    *state = calloc(1, sizeof(uint64_t));
    return *state ? 0 : MB_ENOMEM;
}

static const mb_agent_kind sink_kind = {
    .abi = MB_AGENT_ABI,
    .name = "sink",
    .version = 1,
    .init = sink_init,
    .handle = sink_handle,
};

/* Checkpointed crasher: crashes on tag 1; its restore stamps the time. */
static int ck_init(mb_ctx *ctx, const char *config, void **state)
{
    (void)config;
    int64_t *v = malloc(sizeof(*v));
    if (v == NULL)
        return MB_ENOMEM;
    *v = 42;
    *state = v;
    atomic_store(&VICTIM, mb_self(ctx));
    return mb_request_checkpoint(ctx);
}

static int ck_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)ctx;
    (void)state;
    return msg->tag == 1 ? MB_ECRASH : 0;
}

static int ck_checkpoint(mb_ctx *ctx, void *state, void **blob, size_t *len)
{
    (void)ctx;
    int64_t *b = malloc(sizeof(*b));
    if (b == NULL)
        return MB_ENOMEM;
    *b = *(int64_t *)state;
    *blob = b;
    *len = sizeof(*b);
    return 0;
}

static int ck_restore(mb_ctx *ctx, const char *config, const void *blob, size_t len, void **state)
{
    (void)ctx;
    (void)config;
    int64_t *v = malloc(sizeof(*v));
    if (v == NULL || len != sizeof(*v)) {
        free(v);
        return MB_ECORRUPT;
    }
    memcpy(v, blob, sizeof(*v));
    *state = v;
    atomic_store(&VICTIM, mb_self(ctx));
    atomic_store(&RESTORED_NS, now_ns());
    return 0;
}

static const mb_agent_kind ck_kind = {
    .abi = MB_AGENT_ABI,
    .name = "ckcrash",
    .version = 1,
    .init = ck_init,
    .handle = ck_handle,
    .checkpoint = ck_checkpoint,
    .restore = ck_restore,
};

/* ---- harness ---- */

/* ---- watch fan-out: one variable change to many agents at once
 * (mb_runtime_var_changed_many, as node/cluster_ops.c delivers a change to
 * the watchers on one node). ---- */

static _Atomic uint64_t FO_SEEN;    /* deliveries of the current change */
static _Atomic uint64_t FO_LAST_NS; /* when the latest one ran */

static int watcher_var_changed(mb_ctx *ctx, void *state, const char *name, const mb_value *value,
                               uint64_t version)
{
    (void)ctx;
    (void)state;
    (void)name;
    (void)value;
    (void)version;
    atomic_store(&FO_LAST_NS, now_ns());
    atomic_fetch_add(&FO_SEEN, 1);
    return MB_OK;
}

static int watcher_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return MB_OK;
}

static const mb_agent_kind watcher_kind = {
    .abi = MB_AGENT_ABI,
    .name = "watcher",
    .version = 1,
    .handle = watcher_handle,
    .var_changed = watcher_var_changed,
};

static mb_runtime *RT;

static void start(void)
{
    mb_services svc = { .name_register = reg_register, .name_unregister = reg_unregister };
    mb_runtime_config cfg = { .node_id = 1 };
    mb_error err;
    if (nc_registry_new(&REG, 256, &err) != MB_OK) { /* as node/services.c */
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    if (mb_runtime_start(&cfg, &svc, &RT, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    mb_runtime_kind_register(RT, &pinger_kind, NULL);
    mb_runtime_kind_register(RT, &sender_kind, NULL);
    mb_runtime_kind_register(RT, &sink_kind, NULL);
    mb_runtime_kind_register(RT, &ck_kind, NULL);
    if (mb_runtime_kind_register(RT, &watcher_kind, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
}

static void stop(void)
{
    mb_runtime_stop(RT);
    RT = NULL;
    nc_registry_free(REG);
    REG = NULL;
}

static void wait_for(int (*cond)(void))
{
    while (!cond()) {
        struct timespec ts = { 0, 20000 };
        nanosleep(&ts, NULL);
    }
}

static int no_agents(void)
{
    return mb_runtime_agent_count(RT) == 0;
}

/* Spawn n idle echo agents; returns ns per agent; also memory figures. */
static double bench_spawn(size_t n, int named, double *rss_per, double *heap_per)
{
    mb_agent_id *ids = malloc(n * sizeof(*ids));
    if (ids == NULL)
        exit(1);
    malloc_trim(0);
    long rss0 = rss_bytes();
    struct mallinfo2 m0 = mallinfo2();
    mb_spawn_opts o = { .kind = "echo" };
    char name[32];
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        if (named) {
            snprintf(name, sizeof(name), "agent-%zu", i);
            o.name = name;
        }
        if (mb_runtime_spawn(RT, &o, &ids[i], NULL) != 0) {
            fprintf(stderr, "bench: spawn failed at %zu\n", i);
            exit(1);
        }
    }
    uint64_t t1 = now_ns();
    long rss1 = rss_bytes();
    struct mallinfo2 m1 = mallinfo2();
    if (rss_per)
        *rss_per = (double)(rss1 - rss0 - (long)(n * sizeof(*ids))) / (double)n;
    if (heap_per)
        *heap_per =
            (double)((long)m1.uordblks - (long)m0.uordblks - (long)(n * sizeof(*ids))) / (double)n;
    for (size_t i = 0; i < n; i++)
        mb_runtime_stop_agent(RT, ids[i]);
    wait_for(no_agents);
    free(ids);
    return (double)(t1 - t0) / (double)n;
}

static int pp_done(void)
{
    return atomic_load(&PP_DONE);
}

static double bench_pingpong(uint64_t rounds)
{
    char cfg[32];
    snprintf(cfg, sizeof(cfg), "%llu", (unsigned long long)rounds);
    mb_spawn_opts po = { .kind = "pinger", .config = cfg }, eo = { .kind = "echo" };
    mb_agent_id pinger, echo;
    mb_runtime_spawn(RT, &po, &pinger, NULL);
    mb_runtime_spawn(RT, &eo, &echo, NULL);
    atomic_store(&PP_DONE, 0);
    uint64_t t0 = now_ns();
    mb_runtime_deliver(RT, 0, pinger, 1, &echo, sizeof(echo));
    wait_for(pp_done);
    uint64_t t1 = now_ns();
    mb_runtime_stop_agent(RT, pinger);
    mb_runtime_stop_agent(RT, echo);
    wait_for(no_agents);
    return (double)(t1 - t0) / (double)rounds;
}

static uint64_t TP_WANT;
static int tp_done(void)
{
    return atomic_load(&SINK_TOTAL) >= TP_WANT;
}

/* k sender->sink pairs, each pair `per` messages; returns messages/s. */
static double bench_throughput(unsigned k, uint64_t per)
{
    mb_agent_id senders[64], sinks[64];
    atomic_store(&SINK_TOTAL, 0);
    TP_WANT = (uint64_t)k * (per - per % 1024);
    for (unsigned i = 0; i < k; i++) {
        mb_spawn_opts so = { .kind = "sink" };
        mb_runtime_spawn(RT, &so, &sinks[i], NULL);
        char cfg[64];
        snprintf(cfg, sizeof(cfg), "%llx %llu", (unsigned long long)sinks[i],
                 (unsigned long long)per);
        mb_spawn_opts sd = { .kind = "sender", .config = cfg };
        mb_runtime_spawn(RT, &sd, &senders[i], NULL);
    }
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < k; i++)
        mb_runtime_deliver(RT, 0, senders[i], 4, NULL, 0);
    wait_for(tp_done);
    uint64_t t1 = now_ns();
    for (unsigned i = 0; i < k; i++) {
        mb_runtime_stop_agent(RT, senders[i]);
        mb_runtime_stop_agent(RT, sinks[i]);
    }
    wait_for(no_agents);
    return (double)TP_WANT / ((double)(t1 - t0) / 1e9);
}

static double bench_restart(unsigned samples)
{
    mb_spawn_opts so = {
        .kind = "supervisor",
        .config = "{\"intensity\":1000,\"period_ms\":1,\"backoff\":{\"initial_ms\":0},"
                  "\"children\":[{\"kind\":\"ckcrash\",\"name\":\"victim\"}]}",
    };
    mb_agent_id sup;
    mb_error err;
    if (mb_runtime_spawn(RT, &so, &sup, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    /* Each crash is sent as soon as the previous restart is done (as the
     * Erlang side does), so the workers are awake: this times the restart
     * path, not the OS waking an idle thread. */
    double *v = malloc(samples * sizeof(double));
    for (unsigned i = 0; i < samples; i++) {
        mb_agent_id victim = atomic_load(&VICTIM);
        atomic_store(&RESTORED_NS, 0);
        uint64_t t0 = now_ns();
        if (mb_runtime_deliver(RT, 0, victim, 1, NULL, 0) != 0) {
            fprintf(stderr, "bench: victim missing\n");
            exit(1);
        }
        while (atomic_load(&RESTORED_NS) == 0)
            ;
        v[i] = (double)(atomic_load(&RESTORED_NS) - t0);
    }
    mb_runtime_stop_agent(RT, sup);
    wait_for(no_agents);
    double m = median(v, samples);
    free(v);
    return m;
}

/* `changes` changes of one variable, gap_us apart, each to the same n
 * watching agents. Medians over the changes of: the span from the call to
 * the last agent's callback (span_us) and the caller's time in the call
 * per agent (caller_ns); and the CPU of every other thread (the workers)
 * per delivery over the whole run (worker_ns). */
static void bench_fanout(size_t n, unsigned changes, unsigned gap_us, double *span_us,
                         double *caller_ns, double *worker_ns)
{
    mb_agent_id *ids = malloc(n * sizeof(*ids));
    int *rcs = malloc(n * sizeof(*rcs));
    double *span = malloc(changes * sizeof(double)), *call = malloc(changes * sizeof(double));
    if (ids == NULL || rcs == NULL || span == NULL || call == NULL)
        exit(1);
    mb_spawn_opts o = { .kind = "watcher" };
    for (size_t i = 0; i < n; i++)
        if (mb_runtime_spawn(RT, &o, &ids[i], NULL) != 0) {
            fprintf(stderr, "bench: spawn failed\n");
            exit(1);
        }
    mb_value v = { .type = MB_VT_FLOAT };
    uint64_t proc0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), self0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (unsigned c = 0; c < changes; c++) {
        struct timespec gap = { 0, (long)gap_us * 1000 }; /* pacing: the nodes' 30 ms pauses */
        nanosleep(&gap, NULL);
        atomic_store(&FO_SEEN, 0);
        v.u.f = c;
        uint64_t t0 = now_ns();
        if (mb_runtime_var_changed_many(RT, ids, n, "x", &v, c + 1, rcs) != 0) {
            fprintf(stderr, "bench: var_changed_many failed\n");
            exit(1);
        }
        uint64_t t1 = now_ns(), deadline = t1 + 10000000000ull;
        while (atomic_load(&FO_SEEN) < n) {
            if (now_ns() > deadline) {
                fprintf(stderr, "bench: %llu of %zu deliveries in 10 s\n",
                        (unsigned long long)atomic_load(&FO_SEEN), n);
                exit(1);
            }
            sched_yield();
        }
        span[c] = (double)(atomic_load(&FO_LAST_NS) - t0) / 1000.0;
        call[c] = (double)(t1 - t0) / (double)n;
    }
    uint64_t others =
        (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - proc0) - (clock_ns(CLOCK_THREAD_CPUTIME_ID) - self0);
    *span_us = median(span, changes);
    *caller_ns = median(call, changes);
    *worker_ns = (double)others / ((double)changes * (double)n);
    for (size_t i = 0; i < n; i++)
        mb_runtime_stop_agent(RT, ids[i]);
    wait_for(no_agents);
    free(ids);
    free(rcs);
    free(span);
    free(call);
}

static void print_fanout(int runs, unsigned changes)
{
    double span[8], caller[8], worker[8];
    for (int r = 0; r < runs; r++)
        bench_fanout(333, changes, 30000, &span[r], &caller[r], &worker[r]);
    printf("fanout_333_span_us %.1f us\n", median(span, runs));
    printf("fanout_333_caller_ns_per_agent %.1f ns\n", median(caller, runs));
    printf("fanout_333_worker_cpu_ns_per_delivery %.1f ns\n", median(worker, runs));
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const char *only = argc > 2 ? argv[2] : ""; /* e.g. "--quick throughput" */
    int runs = quick ? 1 : 3;
    double v[8], rss[8], heap[8];
    start();
    if (strcmp(only, "restart") == 0) {
        for (int r = 0; r < 5; r++)
            printf("restart_supervised_ns %.0f ns\n", bench_restart(2000));
        stop();
        return 0;
    }
    if (strcmp(only, "fanout") == 0) {
        print_fanout(5, 100);
        stop();
        return 0;
    }
    if (strcmp(only, "throughput") == 0) {
        for (int r = 0; r < 5; r++)
            printf("throughput_msgs_per_s %.0f msg/s\n", bench_throughput(4, 2000000));
        stop();
        return 0;
    }

    for (int r = 0; r < runs; r++)
        v[r] = bench_spawn(100000, 0, NULL, NULL);
    printf("spawn_100k_ns_per_agent %.1f ns\n", median(v, runs));
    for (int r = 0; r < runs; r++)
        v[r] = bench_spawn(1000000, 0, &rss[r], &heap[r]);
    printf("spawn_1m_ns_per_agent %.1f ns\n", median(v, runs));
    printf("memory_per_idle_agent_rss %.0f bytes\n", median(rss, runs));
    printf("memory_per_idle_agent_malloc %.0f bytes\n", median(heap, runs));
    for (int r = 0; r < runs; r++)
        v[r] = bench_spawn(1000000, 1, &rss[r], &heap[r]);
    printf("memory_per_idle_named_agent_rss %.0f bytes\n", median(rss, runs));
    printf("spawn_1m_named_ns_per_agent %.1f ns\n", median(v, runs));

    int pr = quick ? 1 : 5;
    for (int r = 0; r < pr; r++)
        v[r] = bench_pingpong(quick ? 100000 : 500000);
    printf("pingpong_round_trip_ns %.1f ns\n", median(v, pr));

    for (int r = 0; r < pr; r++)
        v[r] = bench_throughput(4, quick ? 500000 : 2000000);
    printf("throughput_msgs_per_s %.0f msg/s\n", median(v, pr));

    printf("restart_supervised_ns %.0f ns\n", bench_restart(quick ? 200 : 2000));
    print_fanout(runs, quick ? 30 : 100);
    stop();
    return 0;
}
