/* Benchmarks of consensus/: the pure state machine (apply rate, snapshot
 * encode/restore of a large state) and the raft glue (3 real instances on
 * 127.0.0.1 in one loop: commit latency and pipelined throughput).
 *
 *   bench_consensus sm      [runs]   one JSON line per metric (median of runs)
 *   bench_consensus raft    [runs]
 * Progress goes to stderr. */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "consensus/consensus.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void emit(const char *metric, double value, const char *unit, int runs)
{
    printf("{\"suite\":\"consensus\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\","
           "\"runs\":%d}\n",
           metric, value, unit, runs);
    fflush(stdout);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_consensus: %s\n", what);
    exit(1);
}

/* ---------------- pure state machine ---------------- */

#define SM_VARS 10000
#define SM_SETS 200000

static void bench_sm(int runs)
{
    double apply_rate[32], snap_ms[32], restore_ms[32], snap_bytes = 0;
    for (int r = 0; r < runs; r++) {
        consensus_sm *sm;
        if (consensus_sm_new(NULL, &sm) != MB_OK)
            die("sm_new");
        consensus_result res;
        uint64_t index = 0;
        char name[32];
        for (int i = 0; i < SM_VARS; i++) {
            snprintf(name, sizeof(name), "v%05d", i);
            consensus_cmd d = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = name, .by = "bench" };
            d.spec = (mb_var_spec){ .type = MB_VT_FLOAT, .min = 0, .max = 1 };
            consensus_sm_apply_cmd(sm, ++index, &d, &res, NULL);
        }
        /* Pre-encode the commands: the measured part is decode + apply +
         * effects, as in the raft FSM. */
        void **bufs = malloc(SM_SETS * sizeof(void *));
        size_t *lens = malloc(SM_SETS * sizeof(size_t));
        if (bufs == NULL || lens == NULL)
            die("malloc");
        for (int i = 0; i < SM_SETS; i++) {
            snprintf(name, sizeof(name), "v%05d", i % SM_VARS);
            consensus_cmd s = { .kind = CONSENSUS_CMD_VAR_SET,
                                .name = name,
                                .by = "agent-1",
                                .client_id = 7,
                                .request_seq = (uint64_t)i + 1 };
            s.value = (mb_value){ .type = MB_VT_FLOAT, .u.f = (double)(i % 1000) / 1000.0 };
            if (consensus_cmd_encode(&s, NULL, &bufs[i], &lens[i], NULL) != MB_OK)
                die("encode");
        }
        consensus_effects fx;
        consensus_effects_init(&fx);
        double t0 = now_s();
        for (int i = 0; i < SM_SETS; i++) {
            consensus_effects_clear(&fx);
            consensus_sm_apply(sm, ++index, bufs[i], lens[i], &res, &fx);
            if (res.code != MB_OK)
                die(res.msg);
        }
        apply_rate[r] = SM_SETS / (now_s() - t0);
        consensus_effects_free(&fx);
        for (int i = 0; i < SM_SETS; i++)
            free(bufs[i]);
        free(bufs);
        free(lens);

        void *snap;
        size_t len;
        t0 = now_s();
        if (consensus_sm_snapshot(sm, NULL, &snap, &len, NULL) != MB_OK)
            die("snapshot");
        snap_ms[r] = (now_s() - t0) * 1e3;
        snap_bytes = (double)len;
        consensus_sm *back;
        t0 = now_s();
        if (consensus_sm_restore(snap, len, &back, NULL) != MB_OK)
            die("restore");
        restore_ms[r] = (now_s() - t0) * 1e3;
        free(snap);
        consensus_sm_free(back);
        consensus_sm_free(sm);
        fprintf(stderr, "sm run %d: %.0f applies/s, snapshot %.1f ms, restore %.1f ms\n", r + 1,
                apply_rate[r], snap_ms[r], restore_ms[r]);
    }
    emit("sm_apply_set_per_s", median(apply_rate, runs), "ops/s", runs);
    emit("sm_snapshot_10k_vars_ms", median(snap_ms, runs), "ms", runs);
    emit("sm_restore_10k_vars_ms", median(restore_ms, runs), "ms", runs);
    emit("sm_snapshot_10k_vars_bytes", snap_bytes, "bytes", runs);
}

/* ---------------- raft glue ---------------- */

#define NODES     3
#define SEQ_OPS   300
#define PIPE_OPS  5000
#define IN_FLIGHT 64

static uv_loop_t loop;
static consensus_raft *rafts[NODES];
static int closed_count;
static unsigned done_count, failed_count;

static void done_cb(void *arg, const consensus_result *res)
{
    (void)arg;
    done_count++;
    if (res->code != MB_OK)
        failed_count++;
}

static void closed_cb(void *arg)
{
    (void)arg;
    closed_count++;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        die("free port");
    close(s);
    return ntohs(a.sin_port);
}

static int leader_index(void)
{
    for (int i = 0; i < NODES; i++) {
        consensus_status st;
        consensus_raft_status(rafts[i], &st);
        if (st.role == CONSENSUS_LEADER)
            return i;
    }
    return -1;
}

static void run_until(int (*cond)(void), double timeout_s)
{
    double end = now_s() + timeout_s;
    while (!cond() && now_s() < end)
        uv_run(&loop, UV_RUN_ONCE);
    if (!cond())
        die("timed out");
}

static int has_leader(void)
{
    return leader_index() >= 0;
}

static unsigned want_done;
static int all_done(void)
{
    return done_count >= want_done;
}

static int all_closed(void)
{
    return closed_count == NODES;
}

static void propose_set(int l, uint64_t seq)
{
    consensus_cmd s = {
        .kind = CONSENSUS_CMD_VAR_SET, .name = "x", .client_id = 1, .request_seq = seq
    };
    s.value = (mb_value){ .type = MB_VT_INT, .u.i = (int64_t)(seq % 100) };
    void *buf;
    size_t len;
    consensus_result now;
    if (consensus_cmd_encode(&s, NULL, &buf, &len, NULL) != MB_OK)
        die("encode");
    if (consensus_raft_propose(rafts[l], buf, len, done_cb, NULL, &now) != MB_OK)
        die(now.msg);
    free(buf);
}

static void bench_raft(int runs)
{
    double lat_ms[32], tput[32];
    signal(SIGPIPE, SIG_IGN);
    for (int r = 0; r < runs; r++) {
        char addrs[NODES][32], dirs[NODES][64];
        consensus_peer peers[NODES];
        if (uv_loop_init(&loop) != 0)
            die("loop");
        for (int i = 0; i < NODES; i++) {
            snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", free_port());
            snprintf(dirs[i], sizeof(dirs[i]), "/tmp/mabeam-bench-raft-XXXXXX");
            if (mkdtemp(dirs[i]) == NULL)
                die("mkdtemp");
            peers[i] = (consensus_peer){ .id = (uint64_t)i + 1, .address = addrs[i] };
        }
        for (int i = 0; i < NODES; i++) {
            consensus_raft_config cfg = { .id = (uint64_t)i + 1,
                                          .address = addrs[i],
                                          .data_dir = dirs[i],
                                          .peers = peers,
                                          .n_peers = NODES,
                                          .election_timeout_ms = 1000,
                                          .heartbeat_timeout_ms = 100 };
            mb_error e;
            if (consensus_raft_init(&loop, &cfg, &rafts[i], &e) != MB_OK ||
                consensus_raft_start(rafts[i], &e) != MB_OK)
                die(e.msg);
        }
        run_until(has_leader, 20);
        int l = leader_index();
        consensus_cmd d = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "x" };
        d.spec = (mb_var_spec){ .type = MB_VT_INT, .imin = 0, .imax = 100 };
        void *buf;
        size_t len;
        consensus_result now;
        consensus_cmd_encode(&d, NULL, &buf, &len, NULL);
        done_count = failed_count = 0;
        want_done = 1;
        if (consensus_raft_propose(rafts[l], buf, len, done_cb, NULL, &now) != MB_OK)
            die(now.msg);
        free(buf);
        run_until(all_done, 10);

        /* Commit latency: one proposal at a time. */
        double lat[SEQ_OPS];
        uint64_t seq = 0;
        for (int i = 0; i < SEQ_OPS; i++) {
            double t0 = now_s();
            want_done = done_count + 1;
            propose_set(l, ++seq);
            run_until(all_done, 10);
            lat[i] = (now_s() - t0) * 1e3;
        }
        lat_ms[r] = median(lat, SEQ_OPS);

        /* Throughput: IN_FLIGHT proposals outstanding. */
        unsigned start = done_count, sent = 0;
        double t0 = now_s();
        while (done_count - start < PIPE_OPS) {
            while (sent < PIPE_OPS && sent - (done_count - start) < IN_FLIGHT) {
                propose_set(l, ++seq);
                sent++;
            }
            uv_run(&loop, UV_RUN_ONCE);
            if (now_s() - t0 > 120)
                die("throughput run timed out");
        }
        tput[r] = PIPE_OPS / (now_s() - t0);
        if (failed_count)
            die("a proposal failed");
        fprintf(stderr, "raft run %d: commit latency p50 %.2f ms, %.0f commits/s\n", r + 1,
                lat_ms[r], tput[r]);
        closed_count = 0;
        for (int i = 0; i < NODES; i++)
            consensus_raft_close(rafts[i], closed_cb, NULL);
        run_until(all_closed, 30);
        uv_run(&loop, UV_RUN_DEFAULT);
        for (int i = 0; i < NODES; i++)
            consensus_raft_free(rafts[i]);
        if (uv_loop_close(&loop) != 0)
            die("loop close");
        for (int i = 0; i < NODES; i++)
            nftw(dirs[i], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    emit("raft3_commit_latency_p50_ms", median(lat_ms, runs), "ms", runs);
    emit("raft3_pipelined_commits_per_s", median(tput, runs), "ops/s", runs);
}

int main(int argc, char **argv)
{
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 32)
        runs = 5;
    if (argc > 1 && strcmp(argv[1], "sm") == 0)
        bench_sm(runs);
    else if (argc > 1 && strcmp(argv[1], "raft") == 0)
        bench_raft(runs);
    else {
        fprintf(stderr, "usage: bench_consensus sm|raft [runs]\n");
        return 2;
    }
    return 0;
}
