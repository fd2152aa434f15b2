/* Mesh benchmarks (suite `mesh`): idle coordination traffic per node in a
 * 3-node mesh with the default heartbeat timings, RPC round-trip latency,
 * the time until a closed node is reported DOWN (default detector), and
 * agent-message throughput between two nodes. One JSON object per line
 * on stdout; progress on stderr.
 *
 *   bench_mesh [window_s=10] [rounds=5]
 *
 * Idle traffic counts every mesh message sent and received by a node
 * (envelope + 12 bytes of SP framing; TCP/IP headers not included), over
 * `rounds` windows of `window_s` seconds after a 2 s warm-up; the median
 * window is reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

#define SECRET "bench-cluster-secret-0123456789"
#define M_ECHO 16u

static uv_loop_t loop;
static mesh *nodes[3];

static void echo(void *user, mesh *m, mesh_request *req)
{
    (void)user;
    (void)m;
    size_t len;
    const void *p = mesh_request_payload(req, &len);
    mesh_reply(req, MB_OK, p, len);
}

/* failure detection: when node 1 sees node 3 go DOWN or come back */
static uint64_t down_at_ns, alive_at_ns;

static void status_cb(void *user, uint64_t id, cluster_peer_status from, cluster_peer_status to)
{
    (void)user;
    (void)from;
    if (id != 3)
        return;
    if (to == CLUSTER_PEER_DOWN)
        down_at_ns = uv_hrtime();
    if (to == CLUSTER_PEER_ALIVE)
        alive_at_ns = uv_hrtime();
}

static void stop_when_cb(uv_timer_t *t);

/* Run the loop until *flag is non-zero or `ms` passes; returns *flag != 0. */
static int run_until(uint64_t *flag, uint64_t ms)
{
    uv_timer_t poll;
    uint64_t deadline = uv_hrtime() + ms * 1000000u;
    uv_timer_init(&loop, &poll);
    poll.data = flag;
    uv_timer_start(&poll, stop_when_cb, 1, 1);
    while (*flag == 0 && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *flag != 0;
}

static void stop_when_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so that run_until re-checks its flag */
}

static int open_node_at(uint64_t id, const char *url, const char *seed, mesh **out)
{
    mesh_config c = { 0 };
    c.node_id = id;
    c.listen_url = url;
    c.cb.peer_status = id == 1 ? status_cb : NULL;
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    c.seeds = seed ? &seed : NULL;
    c.n_seeds = seed ? 1 : 0;
    mb_error e;
    int rc = mesh_open(&loop, &c, out, &e);
    if (rc != MB_OK) {
        fprintf(stderr, "bench: mesh_open: %s\n", e.msg);
        return rc;
    }
    return mesh_register(*out, M_ECHO, echo, NULL);
}

static int open_node(uint64_t id, const char *seed, mesh **out)
{
    return open_node_at(id, "tcp://127.0.0.1:0", seed, out);
}

static void stop_cb(uv_timer_t *t)
{
    (void)t;
    uv_stop(&loop);
}

/* Run the loop for `ms` milliseconds (a measurement window). */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_cb, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- RPC latency ---- */
static int rpc_done;
static uint64_t rpc_t0;
static double *rpc_lat;
static int rpc_n, rpc_i;
static void rpc_next(void);

static void rpc_cb(void *user, int status, const void *payload, size_t len)
{
    (void)user;
    (void)payload;
    (void)len;
    if (status != MB_OK) {
        fprintf(stderr, "bench: rpc failed: %s\n", mb_strerror(status));
        rpc_done = -1;
        uv_stop(&loop);
        return;
    }
    rpc_lat[rpc_i++] = (double)(uv_hrtime() - rpc_t0) / 1e3;
    if (rpc_i == rpc_n) {
        rpc_done = 1;
        uv_stop(&loop);
        return;
    }
    rpc_next();
}

static void rpc_next(void)
{
    static const char payload[64] = "x";
    mesh_call_args a = { .peer_id = 2,
                         .method = M_ECHO,
                         .payload = payload,
                         .len = sizeof(payload),
                         .timeout_ms = 5000,
                         .cb = rpc_cb };
    rpc_t0 = uv_hrtime();
    if (mesh_call(nodes[0], &a, NULL, NULL) != MB_OK) {
        rpc_done = -1;
        uv_stop(&loop);
    }
}

/* ---- agent throughput ---- */
static uint64_t agent_received;
static uint64_t agent_target;

static void agent_cb(void *user, uint64_t from, const char *fa, const char *ta, const void *p,
                     size_t len)
{
    (void)user;
    (void)from;
    (void)fa;
    (void)ta;
    (void)p;
    (void)len;
    if (++agent_received == agent_target)
        uv_stop(&loop);
}

int main(int argc, char **argv)
{
    int window_s = argc > 1 ? atoi(argv[1]) : 10;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (window_s < 1 || rounds < 1 || rounds > 100)
        return 2;
    uv_loop_init(&loop);
    if (open_node(1, NULL, &nodes[0]) != MB_OK)
        return 1;
    const char *seed = mesh_url(nodes[0]);
    if (open_node(2, seed, &nodes[1]) != MB_OK || open_node(3, seed, &nodes[2]) != MB_OK)
        return 1;
    fprintf(stderr, "bench: 3 nodes, warming up\n");
    run_for(2000);
    for (int i = 0; i < 3; i++) {
        if (mesh_peer_count(nodes[i]) != 2) {
            fprintf(stderr, "bench: node %d sees %zu peers, not 2\n", i + 1,
                    mesh_peer_count(nodes[i]));
            return 1;
        }
    }
    double *total = calloc((size_t)rounds * 3, sizeof(double));
    double *tx = calloc((size_t)rounds * 3, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        mesh_stats before[3], after[3];
        for (int i = 0; i < 3; i++)
            mesh_get_stats(nodes[i], &before[i]);
        uint64_t t0 = uv_hrtime();
        run_for((uint64_t)window_s * 1000);
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        for (int i = 0; i < 3; i++) {
            mesh_get_stats(nodes[i], &after[i]);
            double t = (double)(after[i].tx_bytes - before[i].tx_bytes);
            double rx = (double)(after[i].rx_bytes - before[i].rx_bytes);
            total[r * 3 + i] = (t + rx) / secs;
            tx[r * 3 + i] = t / secs;
        }
        fprintf(stderr, "bench: idle window %d: %.0f %.0f %.0f B/s (tx+rx)\n", r + 1, total[r * 3],
                total[r * 3 + 1], total[r * 3 + 2]);
    }
    printf("{\"suite\":\"mesh\",\"metric\":\"idle_coordination_bytes_per_s_per_node\","
           "\"value\":%.0f,\"unit\":\"B/s\",\"target\":10240,\"nodes\":3,"
           "\"heartbeat_interval_ms\":200,\"direction\":\"tx+rx\"}\n",
           median(total, rounds * 3));
    printf("{\"suite\":\"mesh\",\"metric\":\"idle_tx_bytes_per_s_per_node\",\"value\":%.0f,"
           "\"unit\":\"B/s\",\"nodes\":3,\"heartbeat_interval_ms\":200}\n",
           median(tx, rounds * 3));
    free(total);
    free(tx);

    /* RPC round trip node 1 -> node 2, 64-byte payload, one at a time */
    rpc_n = 2000;
    rpc_lat = calloc((size_t)rpc_n, sizeof(double));
    rpc_next();
    uv_run(&loop, UV_RUN_DEFAULT);
    if (rpc_done == 1) {
        double p50 = median(rpc_lat, rpc_n);
        double p99 = rpc_lat[(int)(rpc_n * 0.99)];
        printf("{\"suite\":\"mesh\",\"metric\":\"rpc_round_trip_p50\",\"value\":%.1f,"
               "\"unit\":\"us\",\"calls\":%d}\n",
               p50, rpc_n);
        printf("{\"suite\":\"mesh\",\"metric\":\"rpc_round_trip_p99\",\"value\":%.1f,"
               "\"unit\":\"us\",\"calls\":%d}\n",
               p99, rpc_n);
    }
    free(rpc_lat);

    /* failure detection: close node 3, time until node 1 reports it DOWN
     * (from the close); reopen it at the same URL (a restart) and repeat */
    enum { KILLS = 5 };
    double detect_ms[KILLS];
    int kills = 0;
    char url3[256];
    snprintf(url3, sizeof(url3), "%s", mesh_url(nodes[2]));
    for (int k = 0; k < KILLS; k++) {
        alive_at_ns = 0;
        down_at_ns = 0;
        run_for(300 + (uint64_t)(k * 37)); /* a different heartbeat phase each time */
        uint64_t t0 = uv_hrtime();
        mesh_close(nodes[2], NULL, NULL);
        if (!run_until(&down_at_ns, 5000)) {
            fprintf(stderr, "bench: node 3 never reported down\n");
            break;
        }
        detect_ms[kills++] = (double)(down_at_ns - t0) / 1e6;
        fprintf(stderr, "bench: down detected after %.0f ms\n", detect_ms[kills - 1]);
        if (open_node_at(3, url3, NULL, &nodes[2]) != MB_OK ||
            mesh_add_peer(nodes[2], 1, mesh_url(nodes[0]), NULL) != MB_OK ||
            !run_until(&alive_at_ns, 5000)) {
            fprintf(stderr, "bench: node 3 did not come back\n");
            return 1;
        }
    }
    if (kills == KILLS) {
        printf("{\"suite\":\"mesh\",\"metric\":\"failure_detection_p50\",\"value\":%.0f,"
               "\"unit\":\"ms\",\"kills\":%d,\"down_after_ms\":%d,\"target\":1000}\n",
               median(detect_ms, kills), kills, FD_DEFAULT_DOWN_AFTER_MS);
        printf("{\"suite\":\"mesh\",\"metric\":\"failure_detection_max\",\"value\":%.0f,"
               "\"unit\":\"ms\",\"kills\":%d}\n",
               detect_ms[kills - 1], kills);
    }

    /* agent messages node 1 -> node 2: 100k messages of 64 bytes */
    for (int i = 0; i < 3; i++)
        mesh_close(nodes[i], NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    mesh *a, *b;
    mesh_config c = { 0 };
    c.listen_url = "tcp://127.0.0.1:0";
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    c.cb.agent_message = agent_cb;
    c.agent_queue_max = 200000;
    c.node_id = 2;
    if (mesh_open(&loop, &c, &b, NULL) != MB_OK)
        return 1;
    c.node_id = 1;
    if (mesh_open(&loop, &c, &a, NULL) != MB_OK || mesh_add_peer(a, 2, mesh_url(b), NULL) != MB_OK)
        return 1;
    agent_target = 100000;
    char payload[64] = { 0 };
    uint64_t t0 = uv_hrtime();
    for (uint64_t i = 0; i < agent_target; i++)
        if (mesh_send_agent(a, 2, "sender", "receiver", payload, sizeof(payload), NULL) != MB_OK)
            return 1;
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    if (agent_received == agent_target)
        printf("{\"suite\":\"mesh\",\"metric\":\"agent_messages_per_s\",\"value\":%.0f,"
               "\"unit\":\"msg/s\",\"payload_bytes\":64,\"messages\":%llu}\n",
               (double)agent_target / secs, (unsigned long long)agent_target);
    mesh_close(a, NULL, NULL);
    mesh_close(b, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 && agent_received == agent_target ? 0 : 1;
}
