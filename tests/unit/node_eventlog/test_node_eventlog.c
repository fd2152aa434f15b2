/* Tests of the replicated event log as the node's readers see it: the
 * events of entries applied in a loop iteration are batched and written
 * after the poll phase, so a reader in between (a proposal watch, history,
 * GET /v1/events) must still see them: repl_log_query writes the batch
 * first. One single-node cluster opened in-process. */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "node/node.h"
#include "node/replication.h"
#include "../mb_test.h"
#include "../node_fixture.h"

static char g_dir[256];
static nc_config *g_cfg;
static nc_log *g_log;
static node g_node;

#define RUN_UNTIL(expr, ms) MB_WAIT_UNTIL((uv_run(&g_node.loop, UV_RUN_NOWAIT), (expr)), ms)

static int suite_init(void)
{
    if (nf_node_open(g_dir, sizeof(g_dir), "evlog", NC_LOG_INFO, &g_cfg, &g_log, &g_node) != 0)
        return -1;
    if (!RUN_UNTIL(g_node.repl != NULL && repl_is_leader(g_node.repl), 20000)) {
        fprintf(stderr, "the node did not lead\n");
        return -1;
    }
    return 0;
}

static int suite_clean(void)
{
    return nf_node_close(g_dir, g_cfg, g_log, &g_node);
}

static const char *const VAR = "evlog-probe";

/* What the check handle saw in the first loop iteration that had applied
 * the define. */
static struct {
    int seen;      /* that iteration came */
    int raw_found; /* a plain read of the store found the event then */
    int found;     /* repl_log_query found it then */
} g_probe;

/* Started after the node's own check handle, so libuv runs it first: after
 * the poll phase that applied entries, before the node writes their events. */
static void probe_check_cb(uv_check_t *h)
{
    (void)h;
    if (g_probe.seen || consensus_sm_var_get(repl_sm(g_node.repl), VAR) == NULL)
        return;
    g_probe.seen = 1;
    struct storage_query q = { .subject = VAR, .type = "var.define", .limit = 10 };
    mb_error e;
    mb_error_clear(&e);
    node_log_query(g_node.store, 1, &q, nf_count_events, &g_probe.raw_found, NULL, &e);
    repl_log_query(g_node.repl, &q, nf_count_events, &g_probe.found, NULL, &e);
}

static int g_done, g_code;

static void submit_cb(void *arg, const consensus_result *res)
{
    (void)arg;
    g_code = res->code;
    g_done = 1;
}

static void test_a_read_between_apply_and_the_batched_write_sees_the_event(void)
{
    uv_check_t probe;
    uv_check_init(&g_node.loop, &probe);
    uv_check_start(&probe, probe_check_cb);
    consensus_cmd cmd = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = (char *)VAR };
    cmd.spec.type = MB_VT_INT;
    cmd.spec.imin = 0;
    cmd.spec.imax = 10;
    CU_ASSERT_EQUAL_FATAL(repl_submit(g_node.repl, &cmd, 5000, submit_cb, NULL), MB_OK);
    CU_ASSERT_FATAL(RUN_UNTIL(g_done, 10000));
    CU_ASSERT_EQUAL(g_code, MB_OK);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&g_node.loop, UV_RUN_NOWAIT);
    CU_ASSERT_FATAL(g_probe.seen);
    /* The situation under test happened: the store alone did not have the
     * event yet in that iteration... */
    CU_ASSERT_EQUAL(g_probe.raw_found, 0);
    /* ...and the node's reader saw it all the same. */
    CU_ASSERT_EQUAL(g_probe.found, 1);
}

int main(int argc, char **argv)
{
    static CU_TestInfo tests[] = {
        { "a read between apply and the batched write sees the event",
          test_a_read_between_apply_and_the_batched_write_sees_the_event },
        CU_TEST_INFO_NULL,
    };
    static CU_SuiteInfo suites[] = {
        { "node_eventlog", suite_init, suite_clean, NULL, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
