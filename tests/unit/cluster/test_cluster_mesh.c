/* Mesh endpoints over real NNG on 127.0.0.1 (free ports): RPC, dedup,
 * timeouts, restarts, agent channels, heartbeats and the failure detector,
 * joining, leader gossip, authentication, replay refusal, TLS, clean close.
 * Every node of a test runs on one uv loop driven by RUN_UNTIL, which waits
 * on a condition with a deadline. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "cluster/wire.h"
#include "mb_test.h"

#define SECRET      "test-cluster-secret-0123456789"
#define M_ECHO      16u
#define M_DEFER     17u
#define MAX_PENDING 512

static uv_loop_t loop;

#define RUN_UNTIL(expr, ms) MB_WAIT_UNTIL((uv_run(&loop, UV_RUN_NOWAIT), (expr)), ms)

typedef struct node {
    mesh *m;
    uint64_t id;
    char url[256];
    /* log lines */
    char logs[64][256];
    int n_logs;
    /* status changes seen */
    int n_changes;
    cluster_peer_status last_to;
    uint64_t last_changed;
    int n_joined;
    uint64_t leader_id, term;
    /* RPC handlers */
    int echo_executions;
    int defer_executions;
    mesh_request *pending[MAX_PENDING];
    int n_pending;
    /* agent messages: the counter in each payload, in arrival order */
    unsigned agent_seen[4096];
    int n_agent;
    char last_to_agent[64];
    uint64_t last_agent_from;
    /* close the mesh from inside a hook */
    int close_on_down, close_on_agent, closed_in_hook;
} node;

static void close_done(void *user);

static void close_from_hook(node *n)
{
    if (n->m != NULL) {
        n->n_pending = 0;
        mesh_close(n->m, close_done, &n->closed_in_hook);
        n->m = NULL;
    }
}

static void log_cb(void *user, int level, const char *msg)
{
    node *n = user;
    (void)level;
    snprintf(n->logs[n->n_logs % 64], sizeof(n->logs[0]), "%s", msg);
    n->n_logs++;
}

static int logged(const node *n, const char *needle)
{
    int from = n->n_logs > 64 ? n->n_logs - 64 : 0;
    for (int i = from; i < n->n_logs; i++)
        if (strstr(n->logs[i % 64], needle))
            return 1;
    return 0;
}

static void status_cb(void *user, uint64_t id, cluster_peer_status from, cluster_peer_status to)
{
    node *n = user;
    (void)from;
    n->n_changes++;
    n->last_to = to;
    n->last_changed = id;
    if (n->close_on_down && to == CLUSTER_PEER_DOWN)
        close_from_hook(n);
}

static void joined_cb(void *user, uint64_t id, const char *url)
{
    node *n = user;
    (void)id;
    (void)url;
    n->n_joined++;
}

static void leader_cb(void *user, uint64_t term, uint64_t leader, const char *url)
{
    node *n = user;
    (void)url;
    n->term = term;
    n->leader_id = leader;
}

static void agent_cb(void *user, uint64_t from, const char *from_agent, const char *to_agent,
                     const void *payload, size_t len)
{
    node *n = user;
    (void)from_agent;
    unsigned v = 0;
    if (len == sizeof(v))
        memcpy(&v, payload, sizeof(v));
    if (n->n_agent < 4096)
        n->agent_seen[n->n_agent++] = v;
    snprintf(n->last_to_agent, sizeof(n->last_to_agent), "%s", to_agent);
    n->last_agent_from = from;
    if (n->close_on_agent && n->n_agent == n->close_on_agent)
        close_from_hook(n);
}

static void echo_handler(void *user, mesh *m, mesh_request *req)
{
    node *n = user;
    (void)m;
    n->echo_executions++;
    size_t len;
    const void *p = mesh_request_payload(req, &len);
    mesh_reply(req, MB_OK, p, len);
}

static void defer_handler(void *user, mesh *m, mesh_request *req)
{
    node *n = user;
    (void)m;
    n->defer_executions++;
    if (n->n_pending < MAX_PENDING)
        n->pending[n->n_pending++] = req;
    else
        mesh_reply(req, MB_EBUSY, NULL, 0);
}

typedef struct opts {
    const char *secret;
    const char *const *seeds;
    size_t n_seeds;
    int fast; /* short heartbeat timings */
    uint32_t attempt_ms;
    int tls;
    uint32_t down_connected_ms; /* 0 = the mesh default */
    int (*close_socket)(nng_socket s);
} opts;

static void node_open(node *n, uint64_t id, const char *url, const opts *o)
{
    /* Port 0 is replaced by one below the ephemeral range: several tests
     * reopen a node on the URL it had, and an ephemeral port can be taken
     * meanwhile as the source port of any outgoing connection (a test in
     * parallel). */
    char picked[64];
    const char *zero = strstr(url, "://127.0.0.1:0");
    if (zero != NULL && zero[strlen("://127.0.0.1:0")] == '\0') {
        int port = mb_test_free_port();
        CU_ASSERT_FATAL(port > 0);
        snprintf(picked, sizeof(picked), "%.*s://127.0.0.1:%d", (int)(zero - url), url, port);
        url = picked;
    }
    uint64_t keep_id = id;
    memset(n, 0, sizeof(*n));
    n->id = keep_id;
    mesh_config c = { 0 };
    c.node_id = id;
    c.listen_url = url;
    const char *secret = o && o->secret ? o->secret : SECRET;
    c.secret = secret;
    c.secret_len = strlen(secret);
    if (o) {
        c.seeds = o->seeds;
        c.n_seeds = o->n_seeds;
        if (o->fast) {
            c.heartbeat_interval_ms = 40;
            c.suspect_after_ms = 250;
            c.down_after_ms = 500;
        }
        c.down_connected_after_ms = o->down_connected_ms;
        c.close_socket = o->close_socket;
        c.rpc_attempt_ms = o->attempt_ms;
        if (o->tls) {
            c.tls_cert_key_file = MB_CLUSTER_CERT_DIR "/node.pem";
            c.tls_ca_file = MB_CLUSTER_CERT_DIR "/cert.pem";
            c.tls_server_name = "mabeam-test";
        }
    }
    c.cb = (mesh_callbacks){ .user = n,
                             .log = log_cb,
                             .peer_status = status_cb,
                             .peer_joined = joined_cb,
                             .leader_changed = leader_cb,
                             .agent_message = agent_cb };
    mb_error e;
    mb_error_clear(&e);
    int rc = mesh_open(&loop, &c, &n->m, &e);
    if (rc != MB_OK)
        fprintf(stderr, "mesh_open: %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, MB_OK);
    snprintf(n->url, sizeof(n->url), "%s", mesh_url(n->m));
    CU_ASSERT_EQUAL(mesh_register(n->m, M_ECHO, echo_handler, n), MB_OK);
    CU_ASSERT_EQUAL(mesh_register(n->m, M_DEFER, defer_handler, n), MB_OK);
}

static void close_done(void *user)
{
    *(int *)user = 1;
}

static void node_close(node *n)
{
    if (n->m == NULL)
        return;
    int done = 0;
    n->n_pending = 0; /* handles die with the mesh */
    mesh_close(n->m, close_done, &done);
    n->m = NULL;
    CU_ASSERT(RUN_UNTIL(done, 5000));
}

/* NNG 1.5.2 can leak a request sent on a connection at the very moment it
 * closes (req0 picks the pipe after its send aio was closed): before
 * talking to a peer the test just closed, wait until the connection is
 * seen gone. See docs/cluster.md "Known limits". */
static void wait_disconnected(node *from, uint64_t peer)
{
    CU_ASSERT(RUN_UNTIL(mesh_peer_connected(from->m, peer) == 0, 5000));
}

static void link_nodes(node *a, node *b)
{
    CU_ASSERT_EQUAL(mesh_add_peer(a->m, b->id, b->url, NULL), MB_OK);
    CU_ASSERT_EQUAL(mesh_add_peer(b->m, a->id, a->url, NULL), MB_OK);
}

typedef struct result {
    int done;
    int status;
    char payload[64];
    size_t len;
} result;

static void call_cb(void *user, int status, const void *payload, size_t len)
{
    result *r = user;
    r->done++;
    r->status = status;
    r->len = len < sizeof(r->payload) ? len : sizeof(r->payload);
    if (len)
        memcpy(r->payload, payload, r->len);
}

static int start_call(node *from, uint64_t to, uint32_t method, const char *payload,
                      uint32_t timeout_ms, uint64_t request_id, result *r, uint64_t *id_out)
{
    memset(r, 0, sizeof(*r));
    mesh_call_args a = { .peer_id = to,
                         .method = method,
                         .payload = payload,
                         .len = payload ? strlen(payload) : 0,
                         .timeout_ms = timeout_ms,
                         .request_id = request_id,
                         .cb = call_cb,
                         .user = r };
    return mesh_call(from->m, &a, id_out, NULL);
}

static void test_rpc_round_trip(void)
{
    node a, b;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_ECHO, "hello", 5000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    CU_ASSERT_EQUAL(r.len, 5);
    CU_ASSERT(memcmp(r.payload, "hello", 5) == 0);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    CU_ASSERT_EQUAL(mesh_peer_connected(a.m, 2), 1);
    CU_ASSERT_EQUAL(mesh_peer_connected(a.m, 77), -1);
    /* unknown method and unknown peer */
    CU_ASSERT_EQUAL(start_call(&a, 2, 99, "x", 5000, 0, &r, NULL), MB_OK);
    CU_ASSERT(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_ENOTSUP);
    CU_ASSERT_EQUAL(start_call(&a, 42, M_ECHO, "x", 5000, 0, &r, NULL), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(start_call(&a, 2, 3, "x", 5000, 0, &r, NULL), MB_EINVAL);
    node_close(&a);
    node_close(&b);
}

static void test_concurrent_requests_are_all_answered(void)
{
    enum { N = 200 };
    static node a, b;
    static result r[N];
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    char buf[32];
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof(buf), "req-%d", i);
        CU_ASSERT_EQUAL_FATAL(start_call(&a, 2, M_DEFER, buf, 20000, 0, &r[i], NULL), MB_OK);
    }
    /* all of them are in the handler at the same time */
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_pending == N, 15000));
    for (int i = N - 1; i >= 0; i--) {
        size_t len;
        const char *p = mesh_request_payload(b.pending[i], &len);
        char reply[40];
        int n = snprintf(reply, sizeof(reply), "ok:%.*s", (int)len, p);
        mesh_reply(b.pending[i], MB_OK, reply, (size_t)n);
    }
    b.n_pending = 0;
    int all = RUN_UNTIL(({
                            int d = 0;
                            for (int i = 0; i < N; i++)
                                d += r[i].done;
                            d == N;
                        }),
                        15000);
    CU_ASSERT_FATAL(all);
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof(buf), "ok:req-%d", i);
        CU_ASSERT_EQUAL(r[i].status, MB_OK);
        CU_ASSERT_EQUAL(r[i].len, strlen(buf));
        CU_ASSERT(memcmp(r[i].payload, buf, strlen(buf)) == 0);
    }
    CU_ASSERT_EQUAL(b.defer_executions, N);
    node_close(&a);
    node_close(&b);
}

static void test_resent_request_is_executed_once(void)
{
    node a, b;
    opts o = { .attempt_ms = 60 };
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    result r;
    uint64_t rid = 0;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_DEFER, "once", 10000, 0, &r, &rid), MB_OK);
    CU_ASSERT(rid != 0);
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_pending == 1, 5000));
    /* the caller re-sends every 60 ms while the handler has not answered */
    mesh_stats st;
    CU_ASSERT(RUN_UNTIL((mesh_get_stats(b.m, &st), st.dedup_hits >= 3), 5000));
    CU_ASSERT_EQUAL(b.defer_executions, 1);
    CU_ASSERT_EQUAL(r.done, 0);
    mesh_reply(b.pending[0], MB_OK, "done", 4);
    b.n_pending = 0;
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    CU_ASSERT(memcmp(r.payload, "done", 4) == 0);
    /* an explicit retry with the same id gets the remembered answer */
    result r2;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_DEFER, "once", 5000, rid, &r2, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r2.done, 5000));
    CU_ASSERT_EQUAL(r2.status, MB_OK);
    CU_ASSERT(memcmp(r2.payload, "done", 4) == 0);
    CU_ASSERT_EQUAL(b.defer_executions, 1);
    CU_ASSERT_EQUAL(r.done, 1);
    node_close(&a);
    node_close(&b);
}

static void test_call_times_out_without_answer(void)
{
    node a, b;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    result r;
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(start_call(&a, 2, M_DEFER, "never", 300, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_ETIMEDOUT);
    CU_ASSERT(mb_test_now_ms() - t0 >= 290);
    /* a peer nobody listens on */
    CU_ASSERT_EQUAL(mesh_add_peer(a.m, 9, "tcp://127.0.0.1:1", NULL), MB_OK);
    CU_ASSERT_EQUAL(start_call(&a, 9, M_ECHO, "x", 200, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_ETIMEDOUT);
    mesh_stats st;
    mesh_get_stats(a.m, &st);
    CU_ASSERT(st.calls_timed_out >= 2);
    node_close(&a);
    node_close(&b);
}

static void test_close_fails_pending_calls(void)
{
    node a, b;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_DEFER, "x", 10000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_pending == 1, 5000));
    node_close(&a);
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.status, MB_ECLOSED);
    node_close(&b); /* with a request still unanswered */
}

static void test_call_succeeds_after_peer_restart(void)
{
    node a, b;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    char url[256];
    snprintf(url, sizeof(url), "%s", b.url);
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_ECHO, "one", 5000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    node_close(&b);
    wait_disconnected(&a, 2);
    CU_ASSERT_EQUAL(start_call(&a, 2, M_ECHO, "two", 10000, 0, &r, NULL), MB_OK);
    CU_ASSERT(!RUN_UNTIL(r.done, 200)); /* nobody there */
    node_open(&b, 2, url, NULL);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 9000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    CU_ASSERT(memcmp(r.payload, "two", 3) == 0);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    node_close(&a);
    node_close(&b);
}

static int in_order(const node *n, unsigned first, unsigned last)
{
    if (n->n_agent != (int)(last - first + 1))
        return 0;
    for (int i = 0; i < n->n_agent; i++)
        if (n->agent_seen[i] != first + (unsigned)i)
            return 0;
    return 1;
}

static void test_agent_messages_ordered_once_across_peer_restart(void)
{
    static node a, b;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    char url[256];
    snprintf(url, sizeof(url), "%s", b.url);
    for (unsigned i = 1; i <= 1000; i++)
        CU_ASSERT_EQUAL_FATAL(mesh_send_agent(a.m, 2, "src", "dst-agent", &i, sizeof(i), NULL),
                              MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_agent == 1000, 10000));
    CU_ASSERT(in_order(&b, 1, 1000));
    CU_ASSERT_STRING_EQUAL(b.last_to_agent, "dst-agent");
    CU_ASSERT_EQUAL(b.last_agent_from, 1);
    /* the acknowledgements are back: nothing is in flight at the restart */
    mesh_stats st;
    CU_ASSERT(RUN_UNTIL((mesh_get_stats(a.m, &st), st.agent_acked == 1000), 5000));
    node_close(&b);
    wait_disconnected(&a, 2);
    /* sent while the receiver is away: queued and retried */
    for (unsigned i = 1001; i <= 1500; i++)
        CU_ASSERT_EQUAL(mesh_send_agent(a.m, 2, "src", "dst-agent", &i, sizeof(i), NULL), MB_OK);
    uint64_t batches = st.agent_batches_sent;
    CU_ASSERT(RUN_UNTIL((mesh_get_stats(a.m, &st), st.agent_batches_sent > batches), 5000));
    node_open(&b, 2, url, NULL);
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_agent >= 500 && b.agent_seen[b.n_agent - 1] == 1500, 10000));
    CU_ASSERT(in_order(&b, 1001, 1500));
    mesh_get_stats(a.m, &st);
    CU_ASSERT_EQUAL(st.agent_dropped, 0);
    node_close(&a);
    node_close(&b);
}

static void test_agent_messages_ordered_once_across_reconnect(void)
{
    static node a, b;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    const char *port = strrchr(b.url, ':');
    char other[64];
    snprintf(other, sizeof(other), "tcp://localhost%s", port);
    for (unsigned i = 1; i <= 3000; i++)
        CU_ASSERT_EQUAL_FATAL(mesh_send_agent(a.m, 2, "src", "dst", &i, sizeof(i), NULL), MB_OK);
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_DEFER, "across", 10000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_agent > 0 && b.n_pending == 1, 5000));
    CU_ASSERT(b.n_agent < 3000);
    /* the same receiver at another address: A drops its connection and
     * re-dials while batches are in flight; unacknowledged ones are re-sent */
    CU_ASSERT_EQUAL(mesh_add_peer(a.m, 2, other, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(b.n_agent >= 3000 && ({
                                  mesh_stats st;
                                  mesh_get_stats(a.m, &st);
                                  st.agent_acked == 3000;
                              }),
                              10000));
    CU_ASSERT(in_order(&b, 1, 3000));
    mesh_stats st;
    mesh_get_stats(a.m, &st);
    CU_ASSERT_EQUAL(st.agent_dropped, 0);
    /* the call in progress moved to the new connection; executed once */
    mesh_reply(b.pending[0], MB_OK, "moved", 5);
    b.n_pending = 0;
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    CU_ASSERT(memcmp(r.payload, "moved", 5) == 0);
    CU_ASSERT_EQUAL(b.defer_executions, 1);
    /* a batch delivered on the old connection but acknowledged on neither
     * comes again and is dropped by sequence (covered deterministically by
     * test_agent_batch_resent_is_delivered_once) */
    node_close(&a);
    node_close(&b);
}

/* The mesh closes sockets on its closer thread: a close that hangs in
 * libnng (docs/cluster.md, "Known limits") must not stop the loop. */
static atomic_int g_hold_close, g_closes_seen;

static int held_close(nng_socket s)
{
    atomic_fetch_add(&g_closes_seen, 1);
    long long until = mb_test_now_ms() + 10000; /* bounded, even if the test fails */
    while (atomic_load(&g_hold_close) && mb_test_now_ms() < until) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return nng_close(s);
}

static void test_a_hanging_socket_close_does_not_stop_the_loop(void)
{
    static node a, b;
    opts o = { .close_socket = held_close };
    atomic_store(&g_hold_close, 1);
    atomic_store(&g_closes_seen, 0);
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    link_nodes(&a, &b);
    const char *port = strrchr(b.url, ':');
    char other[64];
    snprintf(other, sizeof(other), "tcp://localhost%s", port);
    /* the same node at another address: A closes its old connection's
     * socket, and that close hangs */
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(mesh_add_peer(a.m, 2, other, NULL), MB_OK);
    CU_ASSERT(mb_test_now_ms() - t0 < 2000); /* the loop thread did not wait for it */
    CU_ASSERT_FATAL(RUN_UNTIL(atomic_load(&g_closes_seen) == 1, 5000));
    /* while it hangs, A's loop serves a call to B over the new connection */
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_ECHO, "still", 5000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    CU_ASSERT(mb_test_now_ms() - t0 < 5000);
    atomic_store(&g_hold_close, 0);
    node_close(&a);
    node_close(&b);
}

static void test_heartbeats_detect_peer_down_and_back(void)
{
    node a, b;
    opts o = { .fast = 1 };
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tcp://127.0.0.1:0", &o);
    link_nodes(&a, &b);
    char url[256];
    snprintf(url, sizeof(url), "%s", b.url);
    fd_peer_view v;
    CU_ASSERT_FATAL(RUN_UNTIL(mesh_peer(a.m, 2, &v) == MB_OK && v.rtt_ms >= 0, 5000));
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    node_close(&b);
    CU_ASSERT_FATAL(RUN_UNTIL(a.last_changed == 2 && a.last_to == CLUSTER_PEER_DOWN, 5000));
    CU_ASSERT(mesh_peer(a.m, 2, &v) == MB_OK && v.status == CLUSTER_PEER_DOWN);
    CU_ASSERT(v.since_ms - v.last_heard_ms >= 500); /* after down_after_ms of silence */
    CU_ASSERT(a.n_changes >= 2);                    /* through SUSPECT */
    CU_ASSERT(logged(&a, "node 2 suspect -> down"));
    node_open(&b, 2, url, &o);
    CU_ASSERT_FATAL(RUN_UNTIL(a.last_to == CLUSTER_PEER_ALIVE, 5000));
    mesh_peer(a.m, 2, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    char *json = mesh_view_json(a.m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"status\":\"alive\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"connected\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"node_id\":2"));
    free(json);
    node_close(&a);
    node_close(&b);
}

/* A peer whose process holds its connection open but never answers (hung,
 * paused): it is declared down only after down_connected_after_ms, and at
 * once when its connection goes away. */
/* idle: one heartbeat call per pair and interval. The higher id skips its
 * calls while the lower one's keep coming, still sees the lower one go
 * down within down_after_ms of silence, and calls again meanwhile. */
static void test_higher_id_skips_heartbeats_but_detects_lower_down(void)
{
    node a, b;
    opts o = { .fast = 1 };
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tcp://127.0.0.1:0", &o);
    link_nodes(&a, &b);
    char url[256];
    snprintf(url, sizeof(url), "%s", a.url);
    mesh_stats sa, sb;
    CU_ASSERT_FATAL(RUN_UNTIL((mesh_get_stats(b.m, &sb), sb.hb_skipped >= 5), 5000));
    mesh_get_stats(a.m, &sa);
    CU_ASSERT_EQUAL(sa.hb_skipped, 0);
    CU_ASSERT(sa.hb_calls >= 5);
    CU_ASSERT(sb.hb_calls < sa.hb_calls);
    fd_peer_view v;
    CU_ASSERT(mesh_peer(b.m, 1, &v) == MB_OK && v.status == CLUSTER_PEER_ALIVE);
    CU_ASSERT(mesh_peer(a.m, 2, &v) == MB_OK && v.status == CLUSTER_PEER_ALIVE);
    CU_ASSERT(a.n_changes == 0 && b.n_changes == 0); /* never suspected */
    node_close(&a);
    CU_ASSERT_FATAL(RUN_UNTIL(b.last_changed == 1 && b.last_to == CLUSTER_PEER_DOWN, 5000));
    CU_ASSERT(mesh_peer(b.m, 1, &v) == MB_OK && v.since_ms - v.last_heard_ms >= 500);
    /* back: B calls it again (no calls come in to skip for) */
    mesh_get_stats(b.m, &sb);
    uint64_t calls = sb.hb_calls;
    CU_ASSERT_FATAL(RUN_UNTIL((mesh_get_stats(b.m, &sb), sb.hb_calls >= calls + 3), 5000));
    node_open(&a, 1, url, &o);
    CU_ASSERT_FATAL(RUN_UNTIL(b.last_to == CLUSTER_PEER_ALIVE, 5000));
    node_close(&a);
    node_close(&b);
}

/* idle: the detector's timer fires about once per heartbeat interval (the
 * peers' answers keep its deadline past the next round), not on every
 * point of its interval/4 grid. */
static void test_idle_timer_fires_once_per_heartbeat_interval(void)
{
    node a, b;
    opts o = { .fast = 1 }; /* heartbeat every 40 ms: grid 10 ms */
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tcp://127.0.0.1:0", &o);
    link_nodes(&a, &b);
    fd_peer_view v;
    CU_ASSERT_FATAL(RUN_UNTIL(mesh_peer(a.m, 2, &v) == MB_OK && v.rtt_ms >= 0, 5000));
    mesh_stats s0, s1;
    mesh_get_stats(a.m, &s0);
    int64_t t0 = mb_test_now_ms();
    RUN_UNTIL(0, 1000); /* a measurement window: nothing to wait for */
    int64_t ms = mb_test_now_ms() - t0;
    mesh_get_stats(a.m, &s1);
    double per_interval = (double)(s1.ticks - s0.ticks) * 40.0 / (double)ms;
    fprintf(stderr, "\n    idle mesh timer: %.2f ticks per heartbeat interval\n", per_interval);
    CU_ASSERT(per_interval >= 0.5); /* heartbeats still go out */
    CU_ASSERT(per_interval <= 2.0); /* every grid point would be 4 */
    CU_ASSERT(mesh_peer(a.m, 2, &v) == MB_OK && v.status == CLUSTER_PEER_ALIVE);
    CU_ASSERT(a.n_changes == 0 && b.n_changes == 0);
    node_close(&a);
    node_close(&b);
}

static void test_connected_silent_peer_is_down_only_after_longer_timeout(void)
{
    node a;
    opts o = { .fast = 1, .down_connected_ms = 1500 };
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    nng_socket hung;
    nng_listener l;
    CU_ASSERT_EQUAL_FATAL(nng_rep0_open(&hung), 0);
    CU_ASSERT_EQUAL_FATAL(nng_listen(hung, "tcp://127.0.0.1:0", &l, 0), 0);
    int port = 0;
    CU_ASSERT_EQUAL_FATAL(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    CU_ASSERT_EQUAL_FATAL(mesh_add_peer(a.m, 9, url, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(mesh_peer_connected(a.m, 9) == 1, 5000));
    fd_peer_view v;
    CU_ASSERT_FATAL(RUN_UNTIL(a.last_changed == 9 && a.last_to == CLUSTER_PEER_SUSPECT, 5000));
    /* past down_after_ms (500) and well short of 1500: still only suspect */
    CU_ASSERT(!RUN_UNTIL(a.last_to == CLUSTER_PEER_DOWN, 700));
    CU_ASSERT(mesh_peer(a.m, 9, &v) == MB_OK && v.status == CLUSTER_PEER_SUSPECT);
    /* the process goes away: its connection closes, down within a tick or two */
    nng_close(hung);
    CU_ASSERT_FATAL(RUN_UNTIL(a.last_to == CLUSTER_PEER_DOWN, 5000));
    CU_ASSERT(mesh_peer(a.m, 9, &v) == MB_OK && v.since_ms - v.last_heard_ms < 1500);
    node_close(&a);
}

static void test_join_through_seed_and_learn_leader(void)
{
    static node a, b, c;
    opts o = { .fast = 1 };
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    const char *seeds[] = { a.url };
    opts os = { .fast = 1, .seeds = seeds, .n_seeds = 1 };
    node_open(&b, 2, "tcp://127.0.0.1:0", &os);
    node_open(&c, 3, "tcp://127.0.0.1:0", &os);
    int full = RUN_UNTIL(
        mesh_peer_count(a.m) == 2 && mesh_peer_count(b.m) == 2 && mesh_peer_count(c.m) == 2, 5000);
    CU_ASSERT_FATAL(full);
    CU_ASSERT(a.n_joined == 2); /* the hook for the raft membership change */
    fd_peer_view v;
    CU_ASSERT(mesh_peer(b.m, 3, &v) == MB_OK && mesh_peer(c.m, 2, &v) == MB_OK);
    /* the leader announced on node 1 reaches the others through heartbeats */
    mesh_set_leader(a.m, 4, 1);
    CU_ASSERT_FATAL(RUN_UNTIL(b.leader_id == 1 && c.leader_id == 1, 5000));
    uint64_t term, leader;
    char lurl[256];
    mesh_leader(c.m, &term, &leader, lurl, sizeof(lurl));
    CU_ASSERT_EQUAL(term, 4);
    CU_ASSERT_EQUAL(leader, 1);
    CU_ASSERT_STRING_EQUAL(lurl, a.url);
    /* an older term does not override */
    mesh_set_leader(c.m, 3, 3);
    mesh_leader(c.m, &term, &leader, NULL, 0);
    CU_ASSERT_EQUAL(leader, 1);
    node_close(&c);
    node_close(&b);
    node_close(&a);
}

static void test_wrong_secret_is_refused_and_logged(void)
{
    node a, c;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    opts o = { .secret = "a-different-secret-entirely" };
    node_open(&c, 3, "tcp://127.0.0.1:0", &o);
    link_nodes(&a, &c);
    result r;
    CU_ASSERT_EQUAL(start_call(&c, 1, M_ECHO, "let me in", 400, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_ETIMEDOUT);
    CU_ASSERT_EQUAL(a.echo_executions, 0);
    CU_ASSERT(logged(&a, "refused unauthenticated envelope"));
    mesh_stats st;
    mesh_get_stats(a.m, &st);
    CU_ASSERT(st.refused_auth >= 1);
    /* a join with the wrong secret is refused: nobody learns of node 4 */
    uint64_t refused = st.refused_auth;
    const char *seeds[] = { a.url };
    opts oj = { .secret = "a-different-secret-entirely", .seeds = seeds, .n_seeds = 1 };
    node d;
    node_open(&d, 4, "tcp://127.0.0.1:0", &oj);
    CU_ASSERT(RUN_UNTIL((mesh_get_stats(a.m, &st), st.refused_auth > refused), 5000));
    CU_ASSERT_EQUAL(mesh_peer_count(d.m), 0);
    CU_ASSERT_EQUAL(mesh_peer_count(a.m), 1); /* only c, added by hand */
    CU_ASSERT_EQUAL(a.n_joined, 0);
    node_close(&d);
    node_close(&a);
    node_close(&c);
}

/* A raw req0 socket that speaks the envelope format, as an attacker who
 * captured traffic or a misbehaving client would. */
static nng_socket raw_dial(const char *url)
{
    nng_socket s;
    CU_ASSERT_EQUAL_FATAL(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 400);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 2000);
    CU_ASSERT_EQUAL_FATAL(nng_dial(s, url, NULL, 0), 0);
    return s;
}

static uint64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint8_t *raw_envelope(uint64_t to, uint64_t counter, uint64_t ts, uint32_t method,
                             uint64_t rid, const void *payload, size_t plen, size_t *len)
{
    Mabeam__Mesh__Request r = MABEAM__MESH__REQUEST__INIT;
    r.request_id = rid;
    r.method = method;
    r.payload.data = (uint8_t *)payload;
    r.payload.len = plen;
    uint8_t body[1024];
    size_t n = mabeam__mesh__request__pack(&r, body);
    wire_header h = { .version = WIRE_VERSION,
                      .sender_id = 50,
                      .sender_incarnation = 1,
                      .receiver_id = to,
                      .counter = counter,
                      .timestamp_ms = ts,
                      .kind = WIRE_KIND_REQUEST };
    uint8_t *out;
    CU_ASSERT_EQUAL_FATAL(wire_seal(SECRET, strlen(SECRET), &h, body, n, &out, len), MB_OK);
    return out;
}

static void raw_aio_cb(void *arg)
{
    __atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
}

#define RAW_DONE(flag) __atomic_load_n(&(flag), __ATOMIC_ACQUIRE)

/* Send and wait for an answer with the loop running (the mesh lives on it). */
static int raw_exchange(nng_socket s, const uint8_t *buf, size_t len, int *status,
                        uint8_t *reply_payload, size_t *reply_len)
{
    nng_aio *aio;
    int flag = 0;
    nng_aio_alloc(&aio, raw_aio_cb, &flag);
    nng_msg *msg;
    nng_msg_alloc(&msg, 0);
    nng_msg_append(msg, buf, len);
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, 2000);
    nng_send_aio(s, aio);
    RUN_UNTIL(RAW_DONE(flag), 3000);
    nng_aio_wait(aio);
    int rv = nng_aio_result(aio);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
        nng_aio_free(aio);
        return rv;
    }
    nng_aio_set_timeout(aio, 400);
    __atomic_store_n(&flag, 0, __ATOMIC_RELEASE);
    nng_recv_aio(s, aio);
    RUN_UNTIL(RAW_DONE(flag), 3000);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv == 0) {
        nng_msg *rep = nng_aio_get_msg(aio);
        wire_header h;
        Mabeam__Mesh__Envelope *env;
        if (wire_open(SECRET, strlen(SECRET), nng_msg_body(rep), nng_msg_len(rep), &h, &env,
                      NULL) == MB_OK) {
            Mabeam__Mesh__Reply *r = wire_decode_reply(env->body.data, env->body.len, NULL);
            if (r) {
                *status = r->status;
                if (reply_payload && reply_len) {
                    *reply_len = r->payload.len;
                    memcpy(reply_payload, r->payload.data, r->payload.len);
                }
                mabeam__mesh__reply__free_unpacked(r, NULL);
            }
            wire_envelope_free(env);
        }
        nng_msg_free(rep);
    }
    nng_aio_free(aio);
    return rv;
}

static void test_replayed_envelope_is_refused_and_logged(void)
{
    node b;
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    nng_socket s = raw_dial(b.url);
    size_t len;
    uint8_t *env = raw_envelope(2, 1, now_wall_ms(), M_ECHO, 7, "hi", 2, &len);
    int status = -1;
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), 0);
    CU_ASSERT_EQUAL(status, MB_OK);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    /* the very same bytes again */
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), NNG_ETIMEDOUT);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    CU_ASSERT(logged(&b, "refused replayed or stale envelope"));
    free(env);
    /* a fresh counter but a timestamp from two minutes ago */
    env = raw_envelope(2, 2, now_wall_ms() - 120000, M_ECHO, 8, "hi", 2, &len);
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), NNG_ETIMEDOUT);
    free(env);
    /* addressed to another node */
    env = raw_envelope(3, 3, now_wall_ms(), M_ECHO, 9, "hi", 2, &len);
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), NNG_ETIMEDOUT);
    free(env);
    /* garbage */
    CU_ASSERT_EQUAL(raw_exchange(s, (const uint8_t *)"junk", 4, &status, NULL, NULL),
                    NNG_ETIMEDOUT);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    mesh_stats st;
    mesh_get_stats(b.m, &st);
    CU_ASSERT(st.refused_replay >= 2);
    CU_ASSERT(st.refused_auth >= 2);
    /* the same request id in a new envelope: answered from the cache */
    env = raw_envelope(2, 4, now_wall_ms(), M_ECHO, 7, "hi", 2, &len);
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), 0);
    CU_ASSERT_EQUAL(status, MB_OK);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    free(env);
    nng_close(s);
    node_close(&b);
}

static uint8_t *raw_batch(uint64_t counter, uint64_t first, unsigned from, unsigned n, size_t *len)
{
    Mabeam__Mesh__AgentMessage am[8], *p[8];
    unsigned vals[8];
    for (unsigned i = 0; i < n; i++) {
        mabeam__mesh__agent_message__init(&am[i]);
        vals[i] = from + i;
        am[i].from_agent = "x";
        am[i].to_agent = "y";
        am[i].payload.data = (uint8_t *)&vals[i];
        am[i].payload.len = sizeof(unsigned);
        p[i] = &am[i];
    }
    Mabeam__Mesh__AgentBatch b = MABEAM__MESH__AGENT_BATCH__INIT;
    b.first_seq = first;
    b.n_messages = n;
    b.messages = p;
    uint8_t buf[512];
    size_t bl = mabeam__mesh__agent_batch__pack(&b, buf);
    return raw_envelope(2, counter, now_wall_ms(), 3, counter, buf, bl, len);
}

static void test_agent_batch_resent_is_delivered_once(void)
{
    node b;
    node_open(&b, 2, "tcp://127.0.0.1:0", NULL);
    nng_socket s = raw_dial(b.url);
    size_t len;
    int status = -1;
    uint8_t *env = raw_batch(1, 1, 100, 3, &len); /* seq 1..3 */
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), 0);
    free(env);
    env = raw_batch(2, 2, 101, 3, &len); /* seq 2..4: a resend overlapping */
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), 0);
    free(env);
    CU_ASSERT_EQUAL(b.n_agent, 4);
    CU_ASSERT(in_order(&b, 100, 103));
    env = raw_batch(3, 7, 106, 1, &len); /* a gap (5, 6 lost): delivered */
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), 0);
    free(env);
    env = raw_batch(4, 5, 104, 2, &len); /* late 5, 6: after 7, so dropped */
    CU_ASSERT_EQUAL(raw_exchange(s, env, len, &status, NULL, NULL), 0);
    free(env);
    CU_ASSERT_EQUAL(b.n_agent, 5);
    CU_ASSERT_EQUAL(b.agent_seen[4], 106);
    mesh_stats st;
    mesh_get_stats(b.m, &st);
    CU_ASSERT_EQUAL(st.agent_duplicates, 4);
    nng_close(s);
    node_close(&b);
}

static void test_tls_round_trip(void)
{
    node a, b;
    opts o = { .tls = 1 };
    node_open(&a, 1, "tls+tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tls+tcp://127.0.0.1:0", &o);
    CU_ASSERT(strncmp(b.url, "tls+tcp://127.0.0.1:", 20) == 0);
    link_nodes(&a, &b);
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_ECHO, "secure", 8000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 9000));
    CU_ASSERT_EQUAL(r.status, MB_OK);
    CU_ASSERT(memcmp(r.payload, "secure", 6) == 0);
    /* a plain-TCP client cannot talk to the TLS listener */
    node c;
    node_open(&c, 3, "tcp://127.0.0.1:0", NULL);
    char plain[300];
    snprintf(plain, sizeof(plain), "tcp://%.250s", b.url + strlen("tls+tcp://"));
    CU_ASSERT_EQUAL(mesh_add_peer(c.m, 2, plain, NULL), MB_OK);
    CU_ASSERT_EQUAL(start_call(&c, 2, M_ECHO, "x", 300, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(r.done, 5000));
    CU_ASSERT_EQUAL(r.status, MB_ETIMEDOUT);
    CU_ASSERT_EQUAL(b.echo_executions, 1);
    node_close(&c);
    node_close(&a);
    node_close(&b);
}

static void test_hooks_may_close_the_mesh(void)
{
    node a, b;
    opts o = { .fast = 1 };
    node_open(&a, 1, "tcp://127.0.0.1:0", &o);
    node_open(&b, 2, "tcp://127.0.0.1:0", &o);
    link_nodes(&a, &b);
    /* b closes itself in the middle of a batch of agent messages */
    b.close_on_agent = 3;
    for (unsigned i = 1; i <= 10; i++)
        mesh_send_agent(a.m, 2, "s", "d", &i, sizeof(i), NULL);
    CU_ASSERT_FATAL(RUN_UNTIL(b.closed_in_hook, 5000));
    CU_ASSERT_EQUAL(b.n_agent, 3);
    /* a closes itself when it sees b down, with a call to b pending */
    a.close_on_down = 1;
    wait_disconnected(&a, 2);
    result r;
    CU_ASSERT_EQUAL(start_call(&a, 2, M_ECHO, "x", 10000, 0, &r, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(a.closed_in_hook, 5000));
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.status, MB_ECLOSED);
}

static void test_open_rejects_bad_configuration(void)
{
    mesh *m = NULL;
    mb_error e;
    mesh_config c = {
        .node_id = 1, .listen_url = "tcp://127.0.0.1:0", .secret = "short", .secret_len = 5
    };
    CU_ASSERT_EQUAL(mesh_open(&loop, &c, &m, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "secret"));
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    c.listen_url = "http://127.0.0.1:0";
    CU_ASSERT_EQUAL(mesh_open(&loop, &c, &m, &e), MB_EINVAL);
    c.listen_url = "tcp://127.0.0.1:0";
    c.node_id = 0;
    CU_ASSERT_EQUAL(mesh_open(&loop, &c, &m, &e), MB_EINVAL);
    /* a port already in use */
    node a;
    node_open(&a, 1, "tcp://127.0.0.1:0", NULL);
    c.node_id = 2;
    c.listen_url = a.url;
    CU_ASSERT_NOT_EQUAL(mesh_open(&loop, &c, &m, &e), MB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "listen"));
    node_close(&a);
}

static int suite_init(void)
{
    return uv_loop_init(&loop);
}

static int suite_clean(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    /* NNG reaps closed sockets' dialers and pipes on its own threads; this
     * waits for that, so that the leak checker sees a finished process */
    nng_fini();
    return uv_loop_close(&loop);
}

static CU_TestInfo mesh_tests[] = {
    { "test_rpc_round_trip", test_rpc_round_trip },
    { "test_concurrent_requests_are_all_answered", test_concurrent_requests_are_all_answered },
    { "test_resent_request_is_executed_once", test_resent_request_is_executed_once },
    { "test_call_times_out_without_answer", test_call_times_out_without_answer },
    { "test_close_fails_pending_calls", test_close_fails_pending_calls },
    { "test_call_succeeds_after_peer_restart", test_call_succeeds_after_peer_restart },
    { "test_agent_messages_ordered_once_across_peer_restart",
      test_agent_messages_ordered_once_across_peer_restart },
    { "test_agent_batch_resent_is_delivered_once", test_agent_batch_resent_is_delivered_once },
    { "test_agent_messages_ordered_once_across_reconnect",
      test_agent_messages_ordered_once_across_reconnect },
    { "test_a_hanging_socket_close_does_not_stop_the_loop",
      test_a_hanging_socket_close_does_not_stop_the_loop },
    { "test_heartbeats_detect_peer_down_and_back", test_heartbeats_detect_peer_down_and_back },
    { "test_higher_id_skips_heartbeats_but_detects_lower_down",
      test_higher_id_skips_heartbeats_but_detects_lower_down },
    { "test_idle_timer_fires_once_per_heartbeat_interval",
      test_idle_timer_fires_once_per_heartbeat_interval },
    { "test_connected_silent_peer_is_down_only_after_longer_timeout",
      test_connected_silent_peer_is_down_only_after_longer_timeout },
    { "test_join_through_seed_and_learn_leader", test_join_through_seed_and_learn_leader },
    { "test_wrong_secret_is_refused_and_logged", test_wrong_secret_is_refused_and_logged },
    { "test_replayed_envelope_is_refused_and_logged",
      test_replayed_envelope_is_refused_and_logged },
    { "test_tls_round_trip", test_tls_round_trip },
    { "test_hooks_may_close_the_mesh", test_hooks_may_close_the_mesh },
    { "test_open_rejects_bad_configuration", test_open_rejects_bad_configuration },
    CU_TEST_INFO_NULL,
};

/* NNG 1.5.2 leaks a request message that is handed to a pipe at the moment
 * the pipe closes (req0_pipe_close; see docs/cluster.md). The race shows up
 * in a peer-restart test now and then under ASan; this suppression covers
 * only messages sealed by mesh_seal_msg in this binary. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:mesh_seal_msg\n";
}

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "mesh", suite_init, suite_clean, NULL, NULL, mesh_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
