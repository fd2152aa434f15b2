/* Tests of node/services.c: the daemon's mb_services, driven through a
 * real node opened in-process. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "node/node.h"
#include "../node_fixture.h"
#include "node/node_log.h"
#include "node/services.h"
#include "../mb_test.h"

static char g_dir[256];
static nc_config *g_cfg;
static nc_log *g_log;
static node g_node;

static int open_node(void)
{
    return nf_node_open(g_dir, sizeof(g_dir), "svc", NC_LOG_DEBUG, &g_cfg, &g_log, &g_node);
}

static void close_node(void)
{
    CU_ASSERT_EQUAL(nf_node_close(g_dir, g_cfg, g_log, &g_node), 0);
}

/* Run the loop once (writes queued events) and count events of `type`
 * about `subject` in the node-local log. */
static int events_of(const char *type, mb_agent_id id)
{
    uv_run(&g_node.loop, UV_RUN_NOWAIT);
    char subject[24];
    snprintf(subject, sizeof(subject), "%016llx", (unsigned long long)id);
    struct storage_query q = { .type = type, .subject = subject };
    int n = 0;
    uint64_t next;
    mb_error e;
    if (node_log_query(g_node.store, 0, &q, nf_count_events, &n, &next, &e) != MB_OK)
        return -1;
    return n;
}

static mb_runtime *rt(void)
{
    return node_services_runtime(g_node.services);
}

static void test_runtime_starts_with_node_and_root_supervisor_runs(void)
{
    CU_ASSERT_FATAL(open_node() == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_node.services);
    mb_agent_id root = node_services_root(g_node.services);
    CU_ASSERT_NOT_EQUAL(root, 0);
    mb_agent_id found = 0;
    CU_ASSERT_EQUAL(node_services_lookup(g_node.services, NODE_ROOT_SUPERVISOR_NS,
                                         NODE_ROOT_SUPERVISOR_NAME, &found),
                    MB_OK);
    CU_ASSERT_EQUAL(found, root);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(events_of("agent.spawned", root) == 1, 5000));
    close_node();
    CU_ASSERT_PTR_NULL(g_node.services);
}

static void test_names_and_capabilities_are_registered_and_released(void)
{
    CU_ASSERT_FATAL(open_node() == 0);
    const char *caps[] = { "talk", "count" };
    mb_spawn_opts o = { .kind = "echo", .name = "e1", .ns = "lab", .caps = caps, .ncaps = 2 };
    mb_agent_id id, found = 0, ids[4];
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(rt(), &o, &id, &e), MB_OK);
    CU_ASSERT_EQUAL(node_services_lookup(g_node.services, "lab", "e1", &found), MB_OK);
    CU_ASSERT_EQUAL(found, id);
    CU_ASSERT_EQUAL(node_services_with_cap(g_node.services, "lab", "count", ids, 4), 1);
    CU_ASSERT_EQUAL(ids[0], id);
    CU_ASSERT_EQUAL(node_services_with_cap(g_node.services, "default", "count", ids, 4), 0);
    /* Capabilities without a name register too, and go away with the agent. */
    mb_spawn_opts o2 = { .kind = "echo", .caps = caps, .ncaps = 1 };
    mb_agent_id id2;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(rt(), &o2, &id2, &e), MB_OK);
    CU_ASSERT_EQUAL(node_services_with_cap(g_node.services, "default", "talk", ids, 4), 1);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(rt(), id), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(rt(), id2), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(
        node_services_lookup(g_node.services, "lab", "e1", &found) == MB_ENOTFOUND, 5000));
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(
        node_services_with_cap(g_node.services, "default", "talk", ids, 4) == 0, 5000));
    close_node();
}

static void test_crash_and_stop_events_reach_the_node_log_via_the_loop(void)
{
    CU_ASSERT_FATAL(open_node() == 0);
    mb_spawn_opts o = { .kind = "crasher" };
    mb_agent_id id;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(rt(), &o, &id, &e), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_deliver(rt(), 0, id, MB_TAG_CRASHER_CRASH, NULL, 0), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(events_of("agent.crashed", id) == 1, 5000));
    mb_spawn_opts o2 = { .kind = "echo" };
    mb_agent_id id2;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(rt(), &o2, &id2, &e), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(rt(), id2), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(events_of("agent.stopped", id2) == 1, 5000));
    close_node();
}

/* A kind whose handler asks the node for a variable and records the code. */
static _Atomic int g_var_rc = -1;
static _Atomic int g_fake_calls;

static int probe_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    (void)state;
    (void)msg;
    mb_value v;
    uint64_t version = 0;
    int rc = mb_var_get(ctx, "lr", &v, &version);
    if (rc == MB_OK)
        mb_value_free(&v);
    atomic_store(&g_var_rc, rc);
    return MB_OK;
}

static const mb_agent_kind probe_kind = {
    .abi = MB_AGENT_ABI, .name = "probe", .version = 1, .handle = probe_handle
};

static int fake_var_get(void *ctx, const char *name, mb_value *out, uint64_t *version)
{
    (void)ctx;
    atomic_fetch_add(&g_fake_calls, 1);
    if (strcmp(name, "lr") != 0)
        return MB_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    *version = 7;
    return MB_OK;
}

static void test_cluster_calls_go_to_the_ops_set_or_are_unavailable(void)
{
    CU_ASSERT_FATAL(open_node() == 0);
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_kind_register(rt(), &probe_kind, &e), MB_OK);
    mb_spawn_opts o = { .kind = "probe" };
    mb_agent_id id;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(rt(), &o, &id, &e), MB_OK);
    /* node_open wires the cluster ops (node/cluster_ops.c): "lr" is not
     * defined in this one-node cluster. */
    CU_ASSERT_EQUAL(mb_runtime_deliver(rt(), 0, id, 1, NULL, 0), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(atomic_load(&g_var_rc) == MB_ENOTFOUND, 5000));

    node_services_set_cluster(g_node.services, NULL);
    atomic_store(&g_var_rc, -1);
    CU_ASSERT_EQUAL(mb_runtime_deliver(rt(), 0, id, 1, NULL, 0), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(atomic_load(&g_var_rc) == MB_EUNAVAIL, 5000));

    node_cluster_ops ops = { .ctx = NULL, .var_get = fake_var_get };
    node_services_set_cluster(g_node.services, &ops);
    atomic_store(&g_var_rc, -1);
    CU_ASSERT_EQUAL(mb_runtime_deliver(rt(), 0, id, 1, NULL, 0), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(atomic_load(&g_var_rc) == MB_OK, 5000));
    CU_ASSERT_EQUAL(atomic_load(&g_fake_calls), 1);

    node_services_set_cluster(g_node.services, NULL);
    atomic_store(&g_var_rc, -1);
    CU_ASSERT_EQUAL(mb_runtime_deliver(rt(), 0, id, 1, NULL, 0), MB_OK);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(atomic_load(&g_var_rc) == MB_EUNAVAIL, 5000));
    close_node();
}

static void test_checkpoints_are_stored_as_blobs(void)
{
    CU_ASSERT_FATAL(open_node() == 0);
    mb_spawn_opts o = { .kind = "counter", .config = "40" };
    mb_agent_id id;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(rt(), &o, &id, &e), MB_OK);
    int64_t two = 2;
    CU_ASSERT_EQUAL(mb_runtime_deliver(rt(), 0, id, MB_TAG_COUNTER_ADD, &two, sizeof(two)), MB_OK);
    char key[64];
    node_services_ckpt_key(id, key, sizeof(key));
    void *blob = NULL;
    size_t len = 0;
    CU_ASSERT_TRUE(MB_WAIT_UNTIL((uv_run(&g_node.loop, UV_RUN_NOWAIT),
                                  storage_blob_get(g_node.store, key, &blob, &len, &e) == MB_OK),
                                 5000));
    CU_ASSERT_EQUAL(len, sizeof(int64_t));
    int64_t v = 0;
    if (blob != NULL && len == sizeof(v))
        memcpy(&v, blob, sizeof(v));
    CU_ASSERT_EQUAL(v, 42);
    free(blob);
    close_node();
}

static CU_TestInfo tests[] = {
    { "runtime_starts_with_node_and_root_supervisor_runs",
      test_runtime_starts_with_node_and_root_supervisor_runs },
    { "names_and_capabilities_are_registered_and_released",
      test_names_and_capabilities_are_registered_and_released },
    { "crash_and_stop_events_reach_the_node_log_via_the_loop",
      test_crash_and_stop_events_reach_the_node_log_via_the_loop },
    { "cluster_calls_go_to_the_ops_set_or_are_unavailable",
      test_cluster_calls_go_to_the_ops_set_or_are_unavailable },
    { "checkpoints_are_stored_as_blobs", test_checkpoints_are_stored_as_blobs },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "node_services", NULL, NULL, NULL, NULL, tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
