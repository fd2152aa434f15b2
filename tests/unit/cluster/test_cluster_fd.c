/* Failure detector: state transitions driven by an injected clock (pure,
 * no sleeps, no sockets). */
#include <string.h>

#include "cluster/cluster.h"
#include "mb_test.h"

typedef struct change {
    uint64_t id;
    cluster_peer_status from, to;
} change;

static change changes[32];
static int n_changes;

static void record_cb(void *user, uint64_t id, cluster_peer_status from, cluster_peer_status to)
{
    (void)user;
    if (n_changes < 32)
        changes[n_changes++] = (change){ id, from, to };
}

static fd *new_fd(int64_t suspect, int64_t down)
{
    fd *d = NULL;
    fd_config c = { .suspect_after_ms = suspect, .down_after_ms = down };
    n_changes = 0;
    CU_ASSERT_EQUAL_FATAL(fd_new(&c, record_cb, NULL, &d, NULL), MB_OK);
    return d;
}

static void test_new_peer_is_alive_with_grace(void)
{
    fd *d = new_fd(1500, 3000);
    CU_ASSERT_EQUAL(fd_add(d, 7, 1000), MB_OK);
    fd_tick(d, 2499);
    fd_peer_view v;
    CU_ASSERT_EQUAL(fd_get(d, 7, &v), MB_OK);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    CU_ASSERT(v.rtt_ms < 0);
    CU_ASSERT_EQUAL(n_changes, 0);
    fd_free(d);
}

static void test_silence_makes_peer_suspect_then_down(void)
{
    fd *d = new_fd(1500, 3000);
    fd_add(d, 7, 0);
    fd_tick(d, 1499);
    CU_ASSERT_EQUAL(n_changes, 0);
    fd_tick(d, 1500);
    CU_ASSERT_EQUAL_FATAL(n_changes, 1);
    CU_ASSERT_EQUAL(changes[0].id, 7);
    CU_ASSERT_EQUAL(changes[0].from, CLUSTER_PEER_ALIVE);
    CU_ASSERT_EQUAL(changes[0].to, CLUSTER_PEER_SUSPECT);
    fd_tick(d, 2999);
    CU_ASSERT_EQUAL(n_changes, 1);
    fd_tick(d, 3000);
    CU_ASSERT_EQUAL_FATAL(n_changes, 2);
    CU_ASSERT_EQUAL(changes[1].from, CLUSTER_PEER_SUSPECT);
    CU_ASSERT_EQUAL(changes[1].to, CLUSTER_PEER_DOWN);
    fd_peer_view v;
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    CU_ASSERT_EQUAL(v.since_ms, 3000);
    fd_tick(d, 10000);
    CU_ASSERT_EQUAL(n_changes, 2); /* no repeated notifications */
    fd_free(d);
}

static void test_long_silence_passes_through_suspect_to_down(void)
{
    fd *d = new_fd(1500, 3000);
    fd_add(d, 7, 0);
    fd_tick(d, 5000);
    CU_ASSERT_EQUAL_FATAL(n_changes, 2);
    CU_ASSERT_EQUAL(changes[0].to, CLUSTER_PEER_SUSPECT);
    CU_ASSERT_EQUAL(changes[1].to, CLUSTER_PEER_DOWN);
    fd_free(d);
}

static void test_heartbeat_brings_suspect_and_down_peers_back(void)
{
    fd *d = new_fd(1500, 3000);
    fd_add(d, 7, 0);
    fd_tick(d, 2000);
    CU_ASSERT_EQUAL(fd_heard(d, 7, 2100, -1), MB_OK);
    CU_ASSERT_EQUAL_FATAL(n_changes, 2);
    CU_ASSERT_EQUAL(changes[1].from, CLUSTER_PEER_SUSPECT);
    CU_ASSERT_EQUAL(changes[1].to, CLUSTER_PEER_ALIVE);
    fd_tick(d, 3500); /* 1400 ms after the heartbeat: still alive */
    CU_ASSERT_EQUAL(n_changes, 2);
    fd_tick(d, 9000);
    CU_ASSERT_EQUAL(n_changes, 4);
    fd_heard(d, 7, 9001, -1);
    CU_ASSERT_EQUAL_FATAL(n_changes, 5);
    CU_ASSERT_EQUAL(changes[4].from, CLUSTER_PEER_DOWN);
    CU_ASSERT_EQUAL(changes[4].to, CLUSTER_PEER_ALIVE);
    fd_free(d);
}

static void test_heartbeats_keep_peer_alive(void)
{
    fd *d = new_fd(1500, 3000);
    fd_add(d, 7, 0);
    for (int64_t t = 0; t < 60000; t += 200) {
        fd_heard(d, 7, t, -1);
        fd_tick(d, t + 100);
    }
    CU_ASSERT_EQUAL(n_changes, 0);
    fd_free(d);
}

static void test_rtt_estimate_is_smoothed(void)
{
    fd *d = new_fd(0, 0);
    fd_add(d, 3, 0);
    fd_heard(d, 3, 10, 8.0);
    fd_peer_view v;
    fd_get(d, 3, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.rtt_ms, 8.0, 1e-9);
    fd_heard(d, 3, 20, 16.0);
    fd_get(d, 3, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.rtt_ms, 9.0, 1e-9);
    fd_heard(d, 3, 30, -1); /* no measurement: unchanged */
    fd_get(d, 3, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.rtt_ms, 9.0, 1e-9);
    CU_ASSERT_EQUAL(v.last_heard_ms, 30);
    fd_free(d);
}

static void test_peers_are_independent_and_listed_in_id_order(void)
{
    fd *d = new_fd(1500, 3000);
    fd_add(d, 9, 0);
    fd_add(d, 2, 0);
    fd_add(d, 5, 0);
    CU_ASSERT_EQUAL(fd_add(d, 5, 0), MB_EEXIST);
    CU_ASSERT_EQUAL(fd_add(d, 0, 0), MB_EINVAL);
    CU_ASSERT_EQUAL(fd_count(d), 3);
    fd_peer_view v;
    fd_at(d, 0, &v);
    CU_ASSERT_EQUAL(v.node_id, 2);
    fd_at(d, 2, &v);
    CU_ASSERT_EQUAL(v.node_id, 9);
    fd_heard(d, 2, 1400, -1);
    fd_tick(d, 1600);
    fd_get(d, 2, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    fd_get(d, 9, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_SUSPECT);
    CU_ASSERT_EQUAL(fd_remove(d, 9), MB_OK);
    CU_ASSERT_EQUAL(fd_remove(d, 9), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(fd_get(d, 9, &v), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(fd_heard(d, 9, 0, -1), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(fd_count(d), 2);
    fd_free(d);
}

static void test_time_going_backwards_changes_nothing(void)
{
    fd *d = new_fd(1500, 3000);
    fd_add(d, 1, 5000);
    fd_tick(d, 0);
    CU_ASSERT_EQUAL(n_changes, 0);
    fd_heard(d, 1, 4000, -1); /* older than what we know: last_heard stays */
    fd_peer_view v;
    fd_get(d, 1, &v);
    CU_ASSERT_EQUAL(v.last_heard_ms, 5000);
    fd_free(d);
}

static void test_config_rejects_down_not_after_suspect(void)
{
    fd *d = NULL;
    mb_error e;
    fd_config c = { .suspect_after_ms = 2000, .down_after_ms = 2000 };
    CU_ASSERT_EQUAL(fd_new(&c, NULL, NULL, &d, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "down_after_ms"));
    CU_ASSERT_EQUAL(fd_new(NULL, NULL, NULL, &d, NULL), MB_OK);
    fd_add(d, 1, 0);
    fd_tick(d, FD_DEFAULT_SUSPECT_AFTER_MS - 1);
    fd_peer_view v;
    fd_get(d, 1, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    fd_tick(d, FD_DEFAULT_DOWN_AFTER_MS);
    fd_get(d, 1, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    fd_free(d);
    CU_ASSERT_STRING_EQUAL(cluster_peer_status_name(CLUSTER_PEER_SUSPECT), "suspect");
}

static void test_down_waits_longer_while_a_connection_is_open(void)
{
    fd *d = NULL;
    fd_config c = { .suspect_after_ms = 300,
                    .down_after_ms = 600,
                    .down_connected_after_ms = 5000 };
    n_changes = 0;
    CU_ASSERT_EQUAL_FATAL(fd_new(&c, record_cb, NULL, &d, NULL), MB_OK);
    fd_add(d, 7, 0);
    fd_add(d, 8, 0);
    CU_ASSERT_EQUAL(fd_set_connected(d, 7, 1), MB_OK);
    CU_ASSERT_EQUAL(fd_set_connected(d, 99, 1), MB_ENOTFOUND);
    fd_tick(d, 600);
    fd_peer_view v;
    fd_get(d, 7, &v); /* hung or paused, but its process holds the connection */
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_SUSPECT);
    CU_ASSERT_EQUAL(v.connected, 1);
    fd_get(d, 8, &v); /* silent and not connected: gone */
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    fd_tick(d, 4999);
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_SUSPECT);
    fd_tick(d, 5000);
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    /* a connection lost while silent makes the short timeout apply at once */
    fd_heard(d, 7, 6000, -1);
    fd_tick(d, 6700);
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_SUSPECT);
    fd_set_connected(d, 7, 0);
    fd_tick(d, 6710);
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    fd_free(d);
}

static void test_own_stall_is_not_counted_as_silence(void)
{
    fd *d = NULL;
    fd_config c = { .suspect_after_ms = 300, .down_after_ms = 600, .stall_after_ms = 100 };
    n_changes = 0;
    CU_ASSERT_EQUAL_FATAL(fd_new(&c, record_cb, NULL, &d, NULL), MB_OK);
    fd_add(d, 7, 0);
    fd_tick(d, 25);
    fd_heard(d, 7, 50, -1);
    fd_tick(d, 75);
    /* the loop stalls for 2 s: only the first 100 ms count as silence */
    fd_tick(d, 2075);
    fd_peer_view v;
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    CU_ASSERT_EQUAL(n_changes, 0);
    CU_ASSERT_EQUAL(v.last_heard_ms, 50 + 1900);
    /* the heartbeats queued during the stall arrive right after the tick */
    fd_heard(d, 7, 2080, -1);
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_ALIVE);
    /* a peer really gone is still declared down, by the time that ran */
    for (int64_t t = 2100; t <= 2700; t += 25)
        fd_tick(d, t);
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    fd_free(d);
}

static void test_without_stall_compensation_a_stall_counts(void)
{
    fd *d = new_fd(300, 600);
    fd_add(d, 7, 0);
    fd_tick(d, 25);
    fd_tick(d, 2025);
    fd_peer_view v;
    fd_get(d, 7, &v);
    CU_ASSERT_EQUAL(v.status, CLUSTER_PEER_DOWN);
    fd_free(d);
}

static void test_config_rejects_down_connected_below_down(void)
{
    fd *d = NULL;
    fd_config c = { .suspect_after_ms = 300, .down_after_ms = 600, .down_connected_after_ms = 500 };
    mb_error e;
    CU_ASSERT_EQUAL(fd_new(&c, NULL, NULL, &d, &e), MB_EINVAL);
    CU_ASSERT_PTR_NULL(d);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "down_connected_after_ms"));
}

/* Ticking only at fd_next_deadline sees every transition at the moment it
 * is due: the deadline is the first time a tick changes anything. */
static void test_next_deadline_is_the_first_tick_that_changes_a_status(void)
{
    fd *d = new_fd(500, 600);
    CU_ASSERT_EQUAL(fd_next_deadline(d), INT64_MAX);
    fd_add(d, 2, 0);
    fd_add(d, 3, 100);
    CU_ASSERT_EQUAL(fd_next_deadline(d), 500); /* peer 2 suspect */
    fd_heard(d, 2, 450, -1);
    CU_ASSERT_EQUAL(fd_next_deadline(d), 600); /* now peer 3 goes first */
    fd_tick(d, 599);
    CU_ASSERT_EQUAL(n_changes, 0);
    fd_tick(d, 600);
    CU_ASSERT_EQUAL_FATAL(n_changes, 1);
    CU_ASSERT_EQUAL(changes[0].id, 3);
    CU_ASSERT_EQUAL(fd_next_deadline(d), 700); /* peer 3 down at 100 + 600 */
    fd_tick(d, 699);
    CU_ASSERT_EQUAL(n_changes, 1);
    fd_tick(d, 700);
    CU_ASSERT_EQUAL_FATAL(n_changes, 2);
    CU_ASSERT_EQUAL(changes[1].to, CLUSTER_PEER_DOWN);
    /* a DOWN peer has no deadline; peer 2's suspicion is next */
    CU_ASSERT_EQUAL(fd_next_deadline(d), 950);
    fd_free(d);
}

static CU_TestInfo fd_tests[] = {
    { "test_next_deadline_is_the_first_tick_that_changes_a_status",
      test_next_deadline_is_the_first_tick_that_changes_a_status },
    { "test_new_peer_is_alive_with_grace", test_new_peer_is_alive_with_grace },
    { "test_silence_makes_peer_suspect_then_down", test_silence_makes_peer_suspect_then_down },
    { "test_long_silence_passes_through_suspect_to_down",
      test_long_silence_passes_through_suspect_to_down },
    { "test_heartbeat_brings_suspect_and_down_peers_back",
      test_heartbeat_brings_suspect_and_down_peers_back },
    { "test_heartbeats_keep_peer_alive", test_heartbeats_keep_peer_alive },
    { "test_rtt_estimate_is_smoothed", test_rtt_estimate_is_smoothed },
    { "test_peers_are_independent_and_listed_in_id_order",
      test_peers_are_independent_and_listed_in_id_order },
    { "test_time_going_backwards_changes_nothing", test_time_going_backwards_changes_nothing },
    { "test_config_rejects_down_not_after_suspect", test_config_rejects_down_not_after_suspect },
    { "test_down_waits_longer_while_a_connection_is_open",
      test_down_waits_longer_while_a_connection_is_open },
    { "test_own_stall_is_not_counted_as_silence", test_own_stall_is_not_counted_as_silence },
    { "test_without_stall_compensation_a_stall_counts",
      test_without_stall_compensation_a_stall_counts },
    { "test_config_rejects_down_connected_below_down",
      test_config_rejects_down_connected_below_down },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "fd", NULL, NULL, NULL, NULL, fd_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
