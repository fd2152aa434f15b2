/* Tests of supervision (strategies, restart types, intensity escalation,
 * back-off with an injected clock, checkpoint restore, dynamic children),
 * pools (grow and shrink) and hot-swappable kinds loaded from shared
 * objects (upgrade without losing a message, rollback, bad libraries). */
#include <stdint.h>
#include <string.h>

#include "agents/fake_services.h"
#include "mb_test.h"

static struct fake F;
static mb_services SVC;
static mb_runtime *RT;

static void start_rt(int manual)
{
    fake_init(&F, &SVC, manual);
    mb_runtime_config cfg = { .node_id = 3, .workers = 2, .manual_timers = manual };
    CU_ASSERT_FATAL(mb_runtime_start(&cfg, &SVC, &RT, NULL) == 0);
    CU_ASSERT_FATAL(mb_runtime_kind_register(RT, &probe_kind, NULL) == 0);
    CU_ASSERT_FATAL(mb_runtime_kind_register(RT, &slow_kind, NULL) == 0);
}

static void stop_rt(void)
{
    mb_runtime_stop(RT);
    RT = NULL;
    fake_close(&F);
}

static mb_agent_id spawn_sup(const char *config)
{
    mb_spawn_opts o = { .kind = "supervisor", .config = config };
    mb_agent_id id = 0;
    mb_error err;
    int rc = mb_runtime_spawn(RT, &o, &id, &err);
    if (rc != 0)
        fprintf(stderr, "spawn supervisor: %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    return id;
}

static mb_agent_id named(const char *name)
{
    mb_agent_id id = 0;
    if (fake_lookup(&F, "default", name, &id) != 0)
        return 0;
    return id;
}

static int alive(mb_agent_id id)
{
    mb_agent_info info;
    return mb_runtime_agent_info(RT, id, &info) == 0;
}

static void crash(mb_agent_id id)
{
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, id, MB_TAG_CRASHER_CRASH, NULL, 0), 0);
}

/* Wait until `name` is registered to an id other than `old`. */
static mb_agent_id wait_new(const char *name, mb_agent_id old)
{
    mb_agent_id id = 0;
    MB_WAIT_UNTIL((id = named(name)) != 0 && id != old, 5000);
    return id != old ? id : 0;
}

#define ABC_CHILDREN                                                                               \
    "\"children\":[{\"kind\":\"crasher\",\"name\":\"a\"},{\"kind\":\"crasher\",\"name\":\"b\"},"   \
    "{\"kind\":\"crasher\",\"name\":\"c\"}]"

static void test_one_for_one_restarts_only_the_crashed_child(void)
{
    start_rt(0);
    spawn_sup("{\"strategy\":\"one_for_one\",\"backoff\":{\"initial_ms\":0}," ABC_CHILDREN "}");
    mb_agent_id a = named("a"), b = named("b"), c = named("c");
    CU_ASSERT_FATAL(a && b && c);
    crash(b);
    mb_agent_id b2 = wait_new("b", b);
    CU_ASSERT(b2 != 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(named("a"), a);
    CU_ASSERT_EQUAL(named("c"), c);
    CU_ASSERT(fake_find_event(&F, MB_AEV_RESTARTED, b2) > 0);
    mb_agent_info info;
    CU_ASSERT_EQUAL(mb_runtime_agent_info(RT, b2, &info), 0);
    CU_ASSERT_EQUAL(info.usage.restarts, 1);
    CU_ASSERT_EQUAL(info.last_error, MB_ECRASH);
    CU_ASSERT_PTR_NOT_NULL(strstr(info.last_error_msg, "crash: handle returned MB_ECRASH"));
    stop_rt();
}

static void test_one_for_all_restarts_every_child(void)
{
    start_rt(0);
    spawn_sup("{\"strategy\":\"one_for_all\",\"backoff\":{\"initial_ms\":0}," ABC_CHILDREN "}");
    mb_agent_id a = named("a"), b = named("b"), c = named("c");
    crash(b);
    CU_ASSERT(wait_new("a", a) != 0);
    CU_ASSERT(wait_new("b", b) != 0);
    CU_ASSERT(wait_new("c", c) != 0);
    CU_ASSERT(!alive(a) && !alive(c));
    stop_rt();
}

static void test_rest_for_one_restarts_the_crashed_and_later_children(void)
{
    start_rt(0);
    spawn_sup("{\"strategy\":\"rest_for_one\",\"backoff\":{\"initial_ms\":0}," ABC_CHILDREN "}");
    mb_agent_id a = named("a"), b = named("b"), c = named("c");
    crash(b);
    CU_ASSERT(wait_new("b", b) != 0);
    CU_ASSERT(wait_new("c", c) != 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(named("a"), a);
    stop_rt();
}

static void test_restart_types_permanent_transient_temporary(void)
{
    start_rt(0);
    spawn_sup("{\"backoff\":{\"initial_ms\":0},\"children\":["
              "{\"kind\":\"crasher\",\"name\":\"perm\",\"restart\":\"permanent\"},"
              "{\"kind\":\"crasher\",\"name\":\"tr1\",\"restart\":\"transient\"},"
              "{\"kind\":\"crasher\",\"name\":\"tr2\",\"restart\":\"transient\"},"
              "{\"kind\":\"crasher\",\"name\":\"tmp\",\"restart\":\"temporary\"}]}");
    mb_agent_id perm = named("perm"), tr1 = named("tr1"), tr2 = named("tr2"), tmp = named("tmp");
    mb_runtime_stop_agent(RT, perm); /* normal exit: permanent restarts anyway */
    mb_runtime_stop_agent(RT, tr1);  /* normal exit: transient stays down */
    crash(tr2);                      /* crash: transient restarts */
    crash(tmp);                      /* crash: temporary stays down */
    CU_ASSERT(wait_new("perm", perm) != 0);
    CU_ASSERT(wait_new("tr2", tr2) != 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(named("tr1"), 0);
    CU_ASSERT_EQUAL(named("tmp"), 0);
    stop_rt();
}

static void test_intensity_exceeded_makes_the_supervisor_fail(void)
{
    start_rt(1);
    mb_agent_id sup = spawn_sup("{\"intensity\":2,\"period_ms\":60000,\"backoff\":{\"initial_ms\":"
                                "0},\"children\":[{\"kind\":\"crasher\",\"name\":\"x\"},"
                                "{\"kind\":\"echo\",\"name\":\"other\"}]}");
    mb_agent_id other = named("other");
    mb_agent_id x = named("x");
    for (int i = 0; i < 2; i++) {
        crash(x);
        x = wait_new("x", x);
        CU_ASSERT_FATAL(x != 0);
    }
    CU_ASSERT(alive(sup));
    crash(x); /* third restart within the period: 3 > 2 */
    CU_ASSERT(MB_WAIT_UNTIL(!alive(sup), 5000));
    CU_ASSERT(MB_WAIT_UNTIL(!alive(other), 5000));
    CU_ASSERT(fake_find_event(&F, MB_AEV_ESCALATED, sup) > 0);
    CU_ASSERT(MB_WAIT_UNTIL(mb_runtime_agent_count(RT) == 0, 5000));
    stop_rt();
}

static void test_restarts_outside_the_period_do_not_count(void)
{
    start_rt(1);
    mb_agent_id sup = spawn_sup("{\"intensity\":1,\"period_ms\":1000,\"backoff\":{\"initial_ms\":"
                                "0},\"children\":[{\"kind\":\"crasher\",\"name\":\"x\"}]}");
    mb_agent_id x = named("x");
    for (int i = 0; i < 4; i++) {
        crash(x);
        x = wait_new("x", x);
        CU_ASSERT_FATAL(x != 0);
        atomic_fetch_add(&F.mono_ms, 1500);
    }
    CU_ASSERT(alive(sup));
    stop_rt();
}

static void test_backoff_delays_restarts_exponentially_with_jitter(void)
{
    start_rt(1);
    atomic_store(&F.rnd, 0);
    spawn_sup("{\"intensity\":10,\"period_ms\":100000,\"backoff\":{\"initial_ms\":100,"
              "\"max_ms\":300,\"jitter\":0.5},\"children\":[{\"kind\":\"crasher\",\"name\":"
              "\"x\"}]}");
    mb_agent_id x = named("x");
    uint64_t expect[] = { 100, 200, 300, 300 }; /* doubling, capped */
    for (int i = 0; i < 4; i++) {
        crash(x);
        CU_ASSERT(MB_WAIT_UNTIL(named("x") == 0, 5000));
        CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
        atomic_fetch_add(&F.mono_ms, expect[i] - 1);
        mb_runtime_tick(RT);
        CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
        CU_ASSERT_EQUAL(named("x"), 0); /* not before the delay */
        atomic_fetch_add(&F.mono_ms, 1);
        mb_runtime_tick(RT);
        x = wait_new("x", 0);
        CU_ASSERT_FATAL(x != 0);
    }
    /* Jitter: random = 0.5 of the range, jitter 0.5 -> 25% shorter. */
    atomic_store(&F.rnd, 500000);
    crash(x);
    CU_ASSERT(MB_WAIT_UNTIL(named("x") == 0, 5000));
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    atomic_fetch_add(&F.mono_ms, 225); /* 300 * (1 - 0.25) */
    mb_runtime_tick(RT);
    CU_ASSERT(wait_new("x", 0) != 0);
    stop_rt();
}

static void test_restarted_child_resumes_from_its_checkpoint(void)
{
    start_rt(0);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    spawn_sup("{\"backoff\":{\"initial_ms\":0},\"children\":[{\"kind\":\"counter\",\"name\":"
              "\"cnt\",\"config\":\"100\"}]}");
    mb_agent_id c = named("cnt");
    int64_t d = 7;
    mb_runtime_deliver(RT, 0, c, MB_TAG_COUNTER_ADD, &d, 8);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    mb_runtime_kill_agent(RT, c); /* a kill is a crash: restarted */
    mb_agent_id c2 = wait_new("cnt", c);
    CU_ASSERT_FATAL(c2 != 0);
    mb_runtime_deliver(RT, pr, c2, MB_TAG_COUNTER_GET, NULL, 0);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) >= 1, 5000));
    CU_ASSERT_EQUAL(p.rec[0].value, 107);
    /* And again: the restored checkpoint carries over a second restart. */
    mb_runtime_kill_agent(RT, c2);
    mb_agent_id c3 = wait_new("cnt", c2);
    CU_ASSERT_FATAL(c3 != 0);
    mb_runtime_deliver(RT, pr, c3, MB_TAG_COUNTER_GET, NULL, 0);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) >= 2, 5000));
    CU_ASSERT_EQUAL(p.rec[1].value, 107);
    stop_rt();
}

static void test_failed_child_supervisor_is_restarted_by_its_parent(void)
{
    start_rt(1);
    mb_agent_id outer = spawn_sup(
        "{\"backoff\":{\"initial_ms\":0},\"children\":[{\"kind\":\"supervisor\",\"name\":\"inner\","
        "\"config\":\"{\\\"intensity\\\":0,\\\"backoff\\\":{\\\"initial_ms\\\":0},"
        "\\\"children\\\":[{\\\"kind\\\":\\\"crasher\\\",\\\"name\\\":\\\"leaf\\\"}]}\"}]}");
    mb_agent_id inner = named("inner"), leaf = named("leaf");
    CU_ASSERT_FATAL(inner && leaf);
    crash(leaf); /* inner allows 0 restarts: it fails, outer restarts it */
    CU_ASSERT(wait_new("inner", inner) != 0);
    CU_ASSERT(wait_new("leaf", leaf) != 0);
    CU_ASSERT(alive(outer));
    CU_ASSERT(fake_find_event(&F, MB_AEV_ESCALATED, inner) > 0);
    stop_rt();
}

static void test_children_added_through_the_management_api_are_supervised(void)
{
    start_rt(0);
    mb_agent_id sup = spawn_sup("{\"backoff\":{\"initial_ms\":0}}");
    mb_spawn_opts o = {
        .kind = "crasher", .name = "dyn", .supervisor = sup, .restart = MB_RESTART_PERMANENT
    };
    mb_agent_id id;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &id, &err), 0);
    mb_agent_info info;
    CU_ASSERT_EQUAL(mb_runtime_agent_info(RT, id, &info), 0);
    CU_ASSERT_EQUAL(info.parent, sup);
    crash(id);
    CU_ASSERT(wait_new("dyn", id) != 0);
    /* Errors: the target is not a supervisor, or is gone, or the kind is bad. */
    mb_agent_id echo;
    mb_spawn_opts e = { .kind = "echo" };
    mb_runtime_spawn(RT, &e, &echo, NULL);
    o.supervisor = echo;
    o.name = NULL;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.supervisor = sup;
    o.kind = "nope";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_ENOTFOUND);
    o.supervisor = 999;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_ENOAGENT);
    stop_rt();
}

static void test_pool_grows_with_backlog_and_shrinks_when_idle(void)
{
    start_rt(1);
    mb_spawn_opts o = { .kind = "pool",
                        .config = "{\"kind\":\"slow\",\"min\":1,\"max\":3,\"backlog\":4,"
                                  "\"idle_ms\":500,\"check_ms\":100}" };
    mb_agent_id pool;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &pool, &err), 0);
    mb_agent_filter f = { .kind = "slow" };
    CU_ASSERT_EQUAL(mb_runtime_list(RT, &f, NULL, 0), 1);
    for (int i = 0; i < 60; i++)
        mb_runtime_deliver(RT, 0, pool, 1, NULL, 0);
    CU_ASSERT(MB_WAIT_UNTIL(mb_runtime_list(RT, &f, NULL, 0) == 3, 5000));
    CU_ASSERT(fake_find_event(&F, MB_AEV_POOL_RESIZED, pool) > 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 20000), 0); /* the backlog drains */
    fake_lock(&F);
    CU_ASSERT_EQUAL(F.pool_size, 3);
    fake_unlock(&F);
    /* Idle: one worker goes per check once idle_ms has passed. */
    for (int i = 0; i < 30 && mb_runtime_list(RT, &f, NULL, 0) > 1; i++) {
        atomic_fetch_add(&F.mono_ms, 100);
        mb_runtime_tick(RT);
        mb_runtime_quiesce(RT, 5000);
    }
    CU_ASSERT(MB_WAIT_UNTIL(mb_runtime_list(RT, &f, NULL, 0) == 1, 5000));
    fake_lock(&F);
    CU_ASSERT_EQUAL(F.pool_size, 1);
    fake_unlock(&F);
    stop_rt();
}

static int64_t ask_swappy(mb_agent_id pr, struct probe *p, mb_agent_id s)
{
    size_t before = atomic_load(&p->n);
    mb_runtime_deliver(RT, pr, s, 2, NULL, 0);
    if (!MB_WAIT_UNTIL(atomic_load(&p->n) > before, 5000))
        return -1;
    return p->rec[before].value;
}

static void test_hot_swap_moves_agents_to_new_code_without_losing_messages(void)
{
    start_rt(0);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_kind_load(RT, KIND_V1, &err), 0);
    mb_spawn_opts o = { .kind = "swappy" };
    mb_agent_id s;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &s, &err), 0);
    for (int i = 0; i < 3; i++)
        mb_runtime_deliver(RT, 0, s, 1, NULL, 0);
    CU_ASSERT_EQUAL(ask_swappy(pr, &p, s), (1ll << 32) | 3);
    /* Messages queued around the load are all handled: 1000 increments. */
    for (int i = 0; i < 500; i++)
        mb_runtime_deliver(RT, 0, s, 1, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(mb_runtime_kind_load(RT, KIND_V2, &err), 0);
    for (int i = 0; i < 500; i++)
        mb_runtime_deliver(RT, 0, s, 1, NULL, 0);
    CU_ASSERT_EQUAL(ask_swappy(pr, &p, s), (2ll << 32) | 1003);
    CU_ASSERT(fake_find_event(&F, MB_AEV_UPGRADED, s) > 0);
    mb_kind_info kinds[16];
    size_t nk = mb_runtime_kind_list(RT, kinds, 16);
    int found = 0;
    for (size_t i = 0; i < nk; i++)
        if (strcmp(kinds[i].name, "swappy") == 0 && kinds[i].version == 2 &&
            strstr(kinds[i].path, "kind_swappy_v2") != NULL)
            found = 1;
    CU_ASSERT(found);
    /* Loading the same or an older version is refused. */
    CU_ASSERT_EQUAL(mb_runtime_kind_load(RT, KIND_V1, &err), MB_EEXIST);
    /* v3's upgrade fails: the agent rolls back to v2 and keeps working. */
    CU_ASSERT_EQUAL_FATAL(mb_runtime_kind_load(RT, KIND_V3, &err), 0);
    mb_runtime_deliver(RT, 0, s, 1, NULL, 0);
    CU_ASSERT_EQUAL(ask_swappy(pr, &p, s), (2ll << 32) | 1004);
    CU_ASSERT(fake_find_event(&F, MB_AEV_UPGRADE_FAILED, s) > 0);
    /* New agents get the newest code. */
    mb_agent_id s3;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &s3, &err), 0);
    CU_ASSERT_EQUAL(ask_swappy(pr, &p, s3), (3ll << 32) | 0);
    stop_rt();
}

static void test_bad_kind_libraries_are_refused_cleanly(void)
{
    start_rt(0);
    mb_error err;
    CU_ASSERT_EQUAL(mb_runtime_kind_load(RT, "/nonexistent/kind.so", &err), MB_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/kind.so"));
    CU_ASSERT_EQUAL(mb_runtime_kind_load(RT, KIND_NOSYM, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, MB_AGENT_KIND_SYMBOL));
    CU_ASSERT_EQUAL(mb_runtime_kind_load(RT, "/etc/hostname", &err), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(mb_runtime_kind_load(RT, NULL, &err), MB_EINVAL);
    mb_agent_kind bad = { .abi = 99, .name = "x" };
    CU_ASSERT_EQUAL(mb_runtime_kind_register(RT, &bad, &err), MB_ENOTSUP);
    bad.abi = MB_AGENT_ABI;
    CU_ASSERT_EQUAL(mb_runtime_kind_register(RT, &bad, &err), MB_EINVAL); /* no handle */
    mb_spawn_opts o = { .kind = "echo" };
    mb_agent_id id;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), 0);
    stop_rt();
}

static CU_TestInfo sup_tests[] = {
    { "one_for_one_restarts_only_the_crashed_child",
      test_one_for_one_restarts_only_the_crashed_child },
    { "one_for_all_restarts_every_child", test_one_for_all_restarts_every_child },
    { "rest_for_one_restarts_the_crashed_and_later_children",
      test_rest_for_one_restarts_the_crashed_and_later_children },
    { "restart_types_permanent_transient_temporary",
      test_restart_types_permanent_transient_temporary },
    { "intensity_exceeded_makes_the_supervisor_fail",
      test_intensity_exceeded_makes_the_supervisor_fail },
    { "restarts_outside_the_period_do_not_count", test_restarts_outside_the_period_do_not_count },
    { "backoff_delays_restarts_exponentially_with_jitter",
      test_backoff_delays_restarts_exponentially_with_jitter },
    { "restarted_child_resumes_from_its_checkpoint",
      test_restarted_child_resumes_from_its_checkpoint },
    { "failed_child_supervisor_is_restarted_by_its_parent",
      test_failed_child_supervisor_is_restarted_by_its_parent },
    { "children_added_through_the_management_api_are_supervised",
      test_children_added_through_the_management_api_are_supervised },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo pool_tests[] = {
    { "pool_grows_with_backlog_and_shrinks_when_idle",
      test_pool_grows_with_backlog_and_shrinks_when_idle },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo swap_tests[] = {
    { "hot_swap_moves_agents_to_new_code_without_losing_messages",
      test_hot_swap_moves_agents_to_new_code_without_losing_messages },
    { "bad_kind_libraries_are_refused_cleanly", test_bad_kind_libraries_are_refused_cleanly },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "supervision", NULL, NULL, NULL, NULL, sup_tests },
    { "pool", NULL, NULL, NULL, NULL, pool_tests },
    { "hot_swap", NULL, NULL, NULL, NULL, swap_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
