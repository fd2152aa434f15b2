/* Tests of the idle behaviour of a node (piece "idle", issue #4): an idle
 * node wakes its loop only for the failure detector's grid, raft and a few
 * slow timers; timers that back off while idle come back at once when
 * work arrives. One single-node cluster opened in-process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "node/coord.h"
#include "node/node.h"
#include "node/replication.h"
#include "../mb_test.h"
#include "../node_fixture.h"

static char g_dir[256];
static nc_config *g_cfg;
static nc_log *g_log;
static node g_node;

#define RUN_UNTIL(expr, ms) MB_WAIT_UNTIL((uv_run(&g_node.loop, UV_RUN_NOWAIT), (expr)), ms)

static const char *const EVALUATOR = "evaluator-1-1";

/* The node leads its one-node cluster, its evaluator agents are placed and
 * nothing it started itself is still being replicated. */
static int settled(void)
{
    if (g_node.repl == NULL || !repl_is_leader(g_node.repl))
        return 0;
    const consensus_agent *a = consensus_sm_agent_get(repl_sm(g_node.repl), "evaluator-1-4");
    return a != NULL && a->status == CONSENSUS_AGENT_RUNNING && repl_tick_ms(g_node.repl) == 250;
}

static int suite_init(void)
{
    if (nf_node_open(g_dir, sizeof(g_dir), "idle", NC_LOG_INFO, &g_cfg, &g_log, &g_node) != 0)
        return -1;
    if (!RUN_UNTIL(settled(), 20000)) {
        fprintf(stderr, "the node did not settle\n");
        return -1;
    }
    return 0;
}

static int suite_clean(void)
{
    return nf_node_close(g_dir, g_cfg, g_log, &g_node);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned g_iterations;

static void count_cb(uv_prepare_t *h)
{
    (void)h;
    g_iterations++;
}

/* Loop iterations (each one a wake-up of an otherwise sleeping loop) per
 * second over `ms` of an idle node. */
static double wakeups_per_s(int64_t ms)
{
    uv_prepare_t counter;
    uv_prepare_init(&g_node.loop, &counter);
    uv_prepare_start(&counter, count_cb);
    g_iterations = 0;
    int64_t start = mono_ms(), end = start + ms;
    while (mono_ms() < end)
        uv_run(&g_node.loop, UV_RUN_ONCE);
    double rate = g_iterations * 1000.0 / (double)(mono_ms() - start);
    uv_close((uv_handle_t *)&counter, NULL);
    uv_run(&g_node.loop, UV_RUN_NOWAIT);
    return rate;
}

/* Before this piece the loop woke ~130 times a second here (20 ms timers of
 * placement, repl and the raft monitor, each in its own phase, plus coord's
 * 50 ms); now the detector's 50 ms grid (shared by placement, studies and
 * repl), raft's own tick and a few slow timers: ~40. */
static void test_idle_node_wakes_its_loop_at_most_60_times_a_second(void)
{
    CU_ASSERT_FATAL(RUN_UNTIL(settled(), 10000));
    double rate = wakeups_per_s(1500);
    fprintf(stderr, "\n    idle loop: %.1f wake-ups/s\n", rate);
    CU_ASSERT(rate <= 60.0);
    CU_ASSERT(rate >= 10.0); /* the detector's tick still runs */
}

static int g_done;
static int g_code;

static void submit_cb(void *arg, const consensus_result *res)
{
    (void)arg;
    g_code = res->code;
    g_done = 1;
}

static void test_repl_tick_is_fast_while_a_write_is_open_and_slow_after(void)
{
    CU_ASSERT_FATAL(RUN_UNTIL(settled(), 10000));
    CU_ASSERT_EQUAL(repl_tick_ms(g_node.repl), 250);
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_COORD_EXPIRE; /* refused by the state machine: harmless */
    cmd.by = "test";
    cmd.coord.now_ms = node_wall_ms();
    g_done = 0;
    CU_ASSERT_EQUAL_FATAL(repl_submit(g_node.repl, &cmd, 2000, submit_cb, NULL), MB_OK);
    CU_ASSERT_EQUAL(repl_tick_ms(g_node.repl), 20);
    CU_ASSERT_FATAL(RUN_UNTIL(g_done, 5000));
    CU_ASSERT_FATAL(RUN_UNTIL(repl_tick_ms(g_node.repl) == 250, 2000));
}

/* The leader's expiry timer runs only while a lease or barrier exists, and
 * a barrier that times out is still expired by it. */
static void test_coord_timer_runs_only_while_a_barrier_waits(void)
{
    CU_ASSERT_FATAL(RUN_UNTIL(settled(), 10000));
    uv_run(&g_node.loop, UV_RUN_NOWAIT);
    CU_ASSERT_FALSE(node_coord_ticking(&g_node));
    uint64_t before = node_coord_expiries(&g_node);
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_BARRIER_ARRIVE;
    cmd.by = "test";
    cmd.coord.name = "idle-barrier";
    cmd.coord.holder = (char *)EVALUATOR;
    cmd.coord.parties = 2;
    cmd.coord.timeout_ms = 200;
    cmd.coord.now_ms = node_wall_ms();
    g_done = 0;
    CU_ASSERT_EQUAL_FATAL(repl_submit(g_node.repl, &cmd, 2000, submit_cb, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(g_done, 5000));
    CU_ASSERT_EQUAL_FATAL(g_code, MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(node_coord_ticking(&g_node), 1000));
    /* timed out by the leader's expiry, after which the timer stops */
    CU_ASSERT_FATAL(RUN_UNTIL(node_coord_expiries(&g_node) > before, 5000));
    CU_ASSERT_FATAL(RUN_UNTIL(!node_coord_ticking(&g_node), 5000));
}

int main(int argc, char **argv)
{
    static CU_TestInfo tests[] = {
        { "test_idle_node_wakes_its_loop_at_most_60_times_a_second",
          test_idle_node_wakes_its_loop_at_most_60_times_a_second },
        { "test_repl_tick_is_fast_while_a_write_is_open_and_slow_after",
          test_repl_tick_is_fast_while_a_write_is_open_and_slow_after },
        { "test_coord_timer_runs_only_while_a_barrier_waits",
          test_coord_timer_runs_only_while_a_barrier_waits },
        CU_TEST_INFO_NULL,
    };
    static CU_SuiteInfo suites[] = {
        { "node_idle", suite_init, suite_clean, NULL, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
