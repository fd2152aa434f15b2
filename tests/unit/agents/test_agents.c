/* Tests of the agent runtime core: messaging, built-in kinds, links and
 * monitors, timers with an injected clock, bounded mailboxes, restart in
 * place, bad input, management API and JSON renderers, and spawning and
 * stopping 1,000,000 agents. Supervision, pools and hot swap are in
 * test_supervision.c; port agents in test_port.c. */
#include <cjson/cJSON.h>
#include <mabeam/agent_json.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "agents/fake_services.h"
#include "mb_test.h"

/* Allocation failures on demand (this test links with -Wl,--wrap=malloc,
 * so the runtime's malloc calls come here): while `malloc_armed` is set on
 * a thread, its next `malloc_ok_left` calls succeed and the rest fail; while
 * `malloc_fail_timers` is set, every malloc of the timer thread fails (and
 * is counted). */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static _Thread_local int malloc_armed;
static _Thread_local unsigned malloc_ok_left;
static atomic_int malloc_fail_timers;
static atomic_long malloc_timer_failures;

void *__wrap_malloc(size_t n)
{
    if (malloc_armed) {
        if (malloc_ok_left == 0)
            return NULL;
        malloc_ok_left--;
    }
    if (atomic_load_explicit(&malloc_fail_timers, memory_order_relaxed)) {
        char name[16] = "";
        if (prctl(PR_GET_NAME, name) == 0 && strcmp(name, "mb-timers") == 0) {
            atomic_fetch_add(&malloc_timer_failures, 1);
            return NULL;
        }
    }
    return __real_malloc(n);
}

static struct fake F;
static mb_services SVC;
static mb_runtime *RT;

static void start_rt_with(const mb_runtime_config *cfg)
{
    fake_init(&F, &SVC, cfg->manual_timers);
    mb_error err;
    CU_ASSERT_FATAL(mb_runtime_start(cfg, &SVC, &RT, &err) == 0);
    CU_ASSERT_FATAL(mb_runtime_kind_register(RT, &probe_kind, &err) == 0);
    CU_ASSERT_FATAL(mb_runtime_kind_register(RT, &slow_kind, &err) == 0);
}

static void start_rt(int manual_timers, unsigned workers)
{
    mb_runtime_config cfg = { .node_id = 7, .workers = workers, .manual_timers = manual_timers };
    start_rt_with(&cfg);
}

static void stop_rt(void)
{
    mb_runtime_stop(RT);
    RT = NULL;
    fake_close(&F);
}

static mb_agent_id spawn_kind(const char *kind, const char *config)
{
    mb_spawn_opts o = { .kind = kind, .config = config };
    mb_agent_id id = 0;
    mb_error err;
    int rc = mb_runtime_spawn(RT, &o, &id, &err);
    CU_ASSERT_EQUAL(rc, 0);
    return id;
}

static int agent_alive(mb_agent_id id)
{
    mb_agent_info info;
    return mb_runtime_agent_info(RT, id, &info) == 0;
}

static void test_ids_carry_node_part_and_are_unique(void)
{
    start_rt(0, 2);
    mb_agent_id a = spawn_kind("echo", NULL), b = spawn_kind("echo", NULL);
    CU_ASSERT_EQUAL(MB_AGENT_NODE(a), 7);
    CU_ASSERT_EQUAL(MB_AGENT_NODE(b), 7);
    CU_ASSERT_NOT_EQUAL(a, b);
    CU_ASSERT_NOT_EQUAL(a, 0);
    stop_rt();
}

static void test_echo_replies_to_sender(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    mb_agent_id echo = spawn_kind("echo", NULL);
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, pr, echo, 42, "hello", 5), 0);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, 42) >= 0, 5000));
    long i = probe_find(&p, MB_MSG_USER, 42);
    CU_ASSERT_EQUAL(p.rec[i].from, echo);
    CU_ASSERT_STRING_EQUAL(p.rec[i].text, "hello");
    stop_rt();
}

static void test_counter_adds_and_answers_get(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    mb_agent_id c = spawn_kind("counter", "10");
    int64_t d = 5;
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, c, MB_TAG_COUNTER_ADD, &d, 8), 0);
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, c, MB_TAG_COUNTER_ADD, NULL, 0), 0);
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, pr, c, MB_TAG_COUNTER_GET, NULL, 0), 0);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, MB_TAG_COUNTER_GET) >= 0, 5000));
    CU_ASSERT_EQUAL(p.rec[probe_find(&p, MB_MSG_USER, MB_TAG_COUNTER_GET)].value, 16);
    CU_ASSERT(atomic_load(&F.ncheckpoints) >= 1); /* coalesced per turn */
    stop_rt();
}

static void test_send_to_dead_agent_fails_and_notifies_on_request(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    mb_agent_id e = spawn_kind("echo", NULL);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(RT, e), 0);
    CU_ASSERT(MB_WAIT_UNTIL(!agent_alive(e), 5000));
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, e, 1, "x", 1), MB_ENOAGENT);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(RT, e), MB_ENOAGENT);
    CU_ASSERT_EQUAL(mb_runtime_kill_agent(RT, e), MB_ENOAGENT);
    probe_cmd(RT, pr, PROBE_NOTIFY, (int64_t)e);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_UNDELIVERED, 1) >= 0, 5000));
    CU_ASSERT_EQUAL(p.rec[probe_find(&p, MB_MSG_UNDELIVERED, 1)].from, e);
    CU_ASSERT_EQUAL(mb_runtime_agent_count(RT), 1);
    stop_rt();
}

static void test_unknown_kind_and_bad_config_are_clear_errors(void)
{
    start_rt(0, 2);
    mb_error err;
    mb_agent_id id;
    mb_spawn_opts o = { .kind = "no-such-kind" };
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_ENOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown kind 'no-such-kind'"));
    o.kind = "counter";
    o.config = "not-a-number";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "init returned MB_EINVAL"));
    o.kind = "supervisor";
    o.config = "{\"strategy\":\"sideways\"}";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.config = "{not json";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.kind = "pool";
    o.config = "{\"kind\":\"nope\"}";
    CU_ASSERT_NOT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), 0);
    o.kind = "crasher";
    o.config = "fail_init";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.kind = NULL;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.kind = "echo";
    o.config = NULL;
    o.overflow = 9;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    /* Nothing half-made is left behind and the node still works. */
    CU_ASSERT_EQUAL(mb_runtime_agent_count(RT), 0);
    CU_ASSERT_NOT_EQUAL(spawn_kind("echo", NULL), 0);
    CU_ASSERT_EQUAL(mb_runtime_agent_count(RT), 1);
    stop_rt();
}

/* The studies' placed agents (docs/studies.md "Who runs what"): their
 * config is checked at init, and they answer any message with it. */
static void test_optimiser_and_evaluator_kinds_check_config_and_answer_with_it(void)
{
    start_rt(0, 2);
    mb_error err;
    mb_agent_id id;
    mb_spawn_opts o = { .kind = "optimiser", .config = "{\"study\":\"\"}" };
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.config = "";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.kind = "evaluator";
    o.config = "{\"home\":0,\"slot\":1}";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    o.config = "{\"home\":2,\"slot\":257}";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &id, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_runtime_agent_count(RT), 0);

    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    o.kind = "optimiser";
    o.config = "{\"study\":\"branin\"}";
    mb_agent_id opt, ev;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &opt, &err), 0);
    o.kind = "evaluator";
    o.config = "{\"home\":2,\"slot\":3}";
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &ev, &err), 0);
    probe_cmd(RT, pr, PROBE_SEND, (int64_t)opt);
    probe_cmd(RT, pr, PROBE_SEND, (int64_t)ev);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, 5) >= 0 && atomic_load(&p.n) >= 2, 5000));
    int seen_opt = 0, seen_ev = 0;
    for (size_t i = 0; i < atomic_load(&p.n); i++) {
        seen_opt |= p.rec[i].from == opt && strcmp(p.rec[i].text, "{\"study\":\"branin\"}") == 0;
        seen_ev |= p.rec[i].from == ev && strcmp(p.rec[i].text, "{\"home\":2,\"slot\":3}") == 0;
    }
    CU_ASSERT(seen_opt);
    CU_ASSERT(seen_ev);
    stop_rt();
}

static void test_names_and_capabilities_go_to_the_registry(void)
{
    start_rt(0, 2);
    const char *caps1[] = { "gpu", "train" };
    const char *caps2[] = { "gpu" };
    mb_spawn_opts o = { .kind = "echo", .name = "alpha", .ns = "lab", .caps = caps1, .ncaps = 2 };
    mb_agent_id a, b, c;
    mb_error err;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &a, &err), 0);
    o.name = "beta";
    o.caps = caps2;
    o.ncaps = 1;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &b, &err), 0);
    o.name = "alpha"; /* same name, same namespace */
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &c, &err), MB_EEXIST);
    o.ns = "other";
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &c, &err), 0);
    mb_agent_id found;
    CU_ASSERT_EQUAL(fake_lookup(&F, "lab", "alpha", &found), 0);
    CU_ASSERT_EQUAL(found, a);
    mb_agent_id ids[4];
    const char *want[] = { "gpu", "train" };
    CU_ASSERT_EQUAL(fake_caps_lookup(&F, "lab", want, 2, ids, 4), 1);
    CU_ASSERT_EQUAL(ids[0], a);
    CU_ASSERT_EQUAL(fake_caps_lookup(&F, "lab", want, 1, ids, 4), 2);
    mb_runtime_stop_agent(RT, a);
    CU_ASSERT(MB_WAIT_UNTIL(fake_lookup(&F, "lab", "alpha", &found) == MB_ENOTFOUND, 5000));
    mb_agent_filter f = { .ns = "lab" };
    CU_ASSERT_EQUAL(mb_runtime_list(RT, &f, NULL, 0), 1);
    stop_rt();
}

static void test_monitor_receives_down_with_reason(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    mb_agent_id cr = spawn_kind("crasher", NULL);
    probe_cmd(RT, pr, PROBE_MONITOR, (int64_t)cr);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, cr, MB_TAG_CRASHER_CRASH, NULL, 0), 0);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_DOWN, ~0u) >= 0, 5000));
    struct probe_rec *r = &p.rec[probe_find(&p, MB_MSG_DOWN, ~0u)];
    CU_ASSERT_EQUAL(r->about, cr);
    CU_ASSERT_EQUAL(r->reason, MB_EXIT_CRASH);
    CU_ASSERT_EQUAL(r->code, MB_ECRASH);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->text, "MB_ECRASH"));
    CU_ASSERT(fake_find_event(&F, MB_AEV_CRASHED, cr) > 0);
    /* Monitoring a dead agent fires at once with noproc. */
    probe_cmd(RT, pr, PROBE_MONITOR, (int64_t)cr);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) >= 2, 5000));
    CU_ASSERT_EQUAL(p.rec[1].reason, MB_EXIT_NOPROC);
    stop_rt();
}

static void test_link_takes_down_non_trapping_partner_and_informs_trapping_one(void)
{
    start_rt(0, 2);
    static struct probe p1, p2;
    probe_reset(&p1);
    probe_reset(&p2);
    mb_agent_id a = probe_spawn(RT, &p1);
    mb_agent_id b = probe_spawn(RT, &p2);
    mb_agent_id cr = spawn_kind("crasher", NULL);
    probe_cmd(RT, a, PROBE_LINK, (int64_t)cr);
    probe_cmd(RT, b, PROBE_TRAP, 0);
    probe_cmd(RT, b, PROBE_LINK, (int64_t)cr);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    mb_runtime_deliver(RT, 0, cr, MB_TAG_CRASHER_CRASH, NULL, 0);
    CU_ASSERT(MB_WAIT_UNTIL(!agent_alive(a), 5000));
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p2, MB_MSG_EXIT, ~0u) >= 0, 5000));
    CU_ASSERT_EQUAL(p2.rec[probe_find(&p2, MB_MSG_EXIT, ~0u)].reason, MB_EXIT_CRASH);
    CU_ASSERT(agent_alive(b));
    /* a ended because of the link: terminate ran (it is not a kill). */
    CU_ASSERT_EQUAL(atomic_load(&p1.terminated), 1);
    stop_rt();
}

static void test_kill_is_brutal_and_stop_runs_terminate(void)
{
    start_rt(0, 2);
    static struct probe p1, p2;
    probe_reset(&p1);
    probe_reset(&p2);
    mb_agent_id a = probe_spawn(RT, &p1);
    mb_agent_id b = probe_spawn(RT, &p2);
    CU_ASSERT_EQUAL(mb_runtime_kill_agent(RT, a), 0);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(RT, b), 0);
    CU_ASSERT(MB_WAIT_UNTIL(!agent_alive(a) && !agent_alive(b), 5000));
    CU_ASSERT_EQUAL(atomic_load(&p1.terminated), 0);
    CU_ASSERT_EQUAL(atomic_load(&p2.terminated), 1);
    CU_ASSERT(fake_find_event(&F, MB_AEV_CRASHED, a) > 0);
    CU_ASSERT(fake_find_event(&F, MB_AEV_STOPPED, b) > 0);
    stop_rt();
}

static void test_runtime_stop_is_a_shutdown_not_a_crash(void)
{
    start_rt(0, 2);
    static struct probe p1;
    probe_reset(&p1);
    mb_agent_id a = probe_spawn(RT, &p1);
    mb_runtime_stop(RT);
    RT = NULL;
    size_t i = fake_find_event(&F, MB_AEV_STOPPED, a);
    CU_ASSERT(i > 0);
    CU_ASSERT_EQUAL(fake_find_event(&F, MB_AEV_CRASHED, a), 0);
    if (i > 0) {
        CU_ASSERT_EQUAL(F.ev[i - 1].reason, MB_EXIT_SHUTDOWN);
        CU_ASSERT_STRING_EQUAL(F.ev[i - 1].detail, "node shutdown");
    }
    CU_ASSERT_EQUAL(atomic_load(&p1.terminated), 0); /* still brutal: no terminate */
    fake_close(&F);
}

static void test_handler_error_is_a_crash(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    probe_cmd(RT, a, PROBE_FAIL, 0);
    CU_ASSERT(MB_WAIT_UNTIL(!agent_alive(a), 5000));
    size_t i = fake_find_event(&F, MB_AEV_CRASHED, a);
    CU_ASSERT_FATAL(i > 0);
    CU_ASSERT_EQUAL(F.ev[i - 1].code, MB_EINVAL);
    CU_ASSERT_EQUAL(F.ev[i - 1].reason, MB_EXIT_CRASH);
    stop_rt();
}

static void test_timers_fire_by_the_injected_clock(void)
{
    start_rt(1, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    probe_cmd(RT, a, PROBE_AFTER, 50);
    probe_cmd(RT, a, PROBE_EVERY, 10);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    atomic_fetch_add(&F.mono_ms, 9);
    mb_runtime_tick(RT);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(atomic_load(&p.n), 0);
    atomic_fetch_add(&F.mono_ms, 1); /* t = 10 */
    CU_ASSERT_EQUAL(mb_runtime_tick(RT), 1);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) == 1, 5000));
    CU_ASSERT_EQUAL(p.rec[0].type, MB_MSG_TIMER);
    CU_ASSERT_EQUAL(p.rec[0].tag, 78);
    for (int i = 0; i < 4; i++) { /* t = 50 */
        atomic_fetch_add(&F.mono_ms, 10);
        mb_runtime_tick(RT);
    }
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) == 6, 5000));
    CU_ASSERT(probe_find(&p, MB_MSG_TIMER, 77) >= 0);
    probe_cmd(RT, a, PROBE_CANCEL, 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    atomic_fetch_add(&F.mono_ms, 1000); /* a jump longer than the wheel */
    CU_ASSERT_EQUAL(mb_runtime_tick(RT), 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(atomic_load(&p.n), 6);
    stop_rt();
}

static void test_timer_thread_fires_with_real_clock(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    probe_cmd(RT, a, PROBE_AFTER, 5);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_TIMER, 77) >= 0, 5000));
    stop_rt();
}

/* /proc/self/task/<tid>/<file> of this process's thread named `name`,
 * open for reading, or NULL if there is no such thread. */
static FILE *thread_proc_file(const char *name, const char *file)
{
    int tid;
    if (mb_test_threads_named(name, 1, &tid, 1) < 1)
        return NULL;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", tid, file);
    return fopen(path, "r");
}

/* The voluntary context switches of this process's thread named `name`
 * (each wait that blocks is one), or -1 if there is none. */
static long thread_waits(const char *name)
{
    char line[128];
    FILE *f = thread_proc_file(name, "status");
    if (f == NULL)
        return -1;
    long found = -1;
    while (found < 0 && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &found) != 1)
            found = -1;
    fclose(f);
    return found;
}

/* CPU time (ns) of this process's thread named `name`, from its
 * schedstat, or -1. */
static long long thread_cpu_ns(const char *name)
{
    FILE *f = thread_proc_file(name, "schedstat");
    if (f == NULL)
        return -1;
    long long ns = -1;
    if (fscanf(f, "%lld", &ns) != 1)
        ns = -1;
    fclose(f);
    return ns;
}

/* The CPU one worker spends on 10 messages, each delivered once the
 * worker has gone to sleep after the one before: its turns, and whatever
 * it spins before each sleep. */
static long long worker_cpu_for_10_idle_wakeups(uint64_t spin_us)
{
    mb_runtime_config cfg = { .node_id = 7, .workers = 1, .spin_us = spin_us };
    start_rt_with(&cfg);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    /* The worker names itself once it runs. */
    CU_ASSERT_FATAL(MB_WAIT_UNTIL(thread_cpu_ns("mb-worker-0") >= 0, 5000));
    long long cpu0 = thread_cpu_ns("mb-worker-0");
    for (uint32_t i = 0; i < 10; i++) {
        long waits = thread_waits("mb-worker-0");
        CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, a, 100 + i, NULL, 0), 0);
        CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, 100 + i) >= 0, 5000));
        /* Asleep again: its count of blocking waits has moved on. */
        CU_ASSERT(MB_WAIT_UNTIL(thread_waits("mb-worker-0") > waits, 5000));
    }
    long long cpu = thread_cpu_ns("mb-worker-0") - cpu0;
    stop_rt();
    return cpu;
}

/* MB_RUNTIME_NO_SPIN: an idle worker sleeps at once. Against a 20 ms spin
 * (10 wake-ups: 200 ms of spinning by the clock, 0.19-0.20 s of CPU here;
 * 40 ms asserted, as a loaded host takes the core away meanwhile), it used
 * 0.1-0.15 ms here; under 20 ms asserted (sanitizer builds, loaded host). */
static void test_worker_without_spin_sleeps_at_once(void)
{
    long long spun = worker_cpu_for_10_idle_wakeups(20000);
    long long none = worker_cpu_for_10_idle_wakeups(MB_RUNTIME_NO_SPIN);
    CU_ASSERT(spun >= 40LL * 1000 * 1000);
    CU_ASSERT(none >= 0);
    CU_ASSERT(none < 20LL * 1000 * 1000);
    if (none >= 20LL * 1000 * 1000 || spun < 40LL * 1000 * 1000)
        fprintf(stderr, "worker CPU for 10 wake-ups: %lld ns spinning 20 ms, %lld without\n", spun,
                none);
}

/* The timer thread sleeps until the next deadline: it used to wake every
 * millisecond while any timer was pending (300 wake-ups for this one). */
static void test_timer_thread_sleeps_until_the_next_deadline(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    long before = thread_waits("mb-timers");
    CU_ASSERT_FATAL(before >= 0);
    long long t0 = mb_test_now_ms();
    probe_cmd(RT, a, PROBE_AFTER, 300);
    CU_ASSERT_FATAL(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_TIMER, 77) >= 0, 5000));
    CU_ASSERT(mb_test_now_ms() - t0 >= 300); /* not early */
    long waits = thread_waits("mb-timers") - before;
    CU_ASSERT(waits >= 1);
    CU_ASSERT(waits <= 20);
    stop_rt();
}

/* A timer due before the thread's wait ends wakes it: here the thread
 * waits for a 60 s timer (its wait is capped at 10 s), and a 20 ms one
 * must not wait that long. */
static void test_earlier_timer_wakes_the_sleeping_timer_thread(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    probe_cmd(RT, a, PROBE_EVERY, 60000);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0); /* the 60 s timer is set */
    probe_cmd(RT, a, PROBE_AFTER, 20);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_TIMER, 77) >= 0, 5000));
    CU_ASSERT_EQUAL(probe_find(&p, MB_MSG_TIMER, 78), -1);
    stop_rt();
}

/* A tick that runs out of memory fires what it could and leaves the rest
 * to the next tick. It used to mark its whole span as fired, so the timers
 * it could not fire waited a whole turn of the wheel (512 ms). Manual
 * ticks run on this thread: the failures hit the tick's messages only. */
static void test_timer_tick_out_of_memory_leaves_the_rest_to_the_next_tick(void)
{
    start_rt(1, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    probe_cmd(RT, a, PROBE_AFTER, 10);
    probe_cmd(RT, a, PROBE_AFTER, 20);
    probe_cmd(RT, a, PROBE_AFTER, 30);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    atomic_fetch_add(&F.mono_ms, 40);
    malloc_ok_left = 1; /* the 10 ms timer's message, then none */
    malloc_armed = 1;
    unsigned fired = mb_runtime_tick(RT);
    malloc_armed = 0;
    CU_ASSERT_EQUAL(fired, 1);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) == 1, 5000));
    atomic_fetch_add(&F.mono_ms, 1);
    CU_ASSERT_EQUAL(mb_runtime_tick(RT), 2);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) == 3, 5000));
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(atomic_load(&p.n), 3);
    stop_rt();
}

/* Short of memory, the timer thread tries again every millisecond: not in
 * a busy loop (the due timer's deadline has passed, so waiting for it
 * would not wait), and without waiting for a later deadline. No time
 * window: the test waits for the tries and measures how long they took. */
static void test_timer_thread_short_of_memory_retries_every_millisecond(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    atomic_store(&malloc_timer_failures, 0);
    atomic_store(&malloc_fail_timers, 1);
    probe_cmd(RT, a, PROBE_AFTER, 10);
    CU_ASSERT_FATAL(MB_WAIT_UNTIL(atomic_load(&malloc_timer_failures) >= 3, 5000));
    /* 20 more tries: they come (it retries), and take at least 10 ms (each
     * waits 1 ms; a busy loop makes 20 in microseconds). */
    long long t0 = mb_test_now_ms();
    long want = atomic_load(&malloc_timer_failures) + 20;
    int retried = MB_WAIT_UNTIL(atomic_load(&malloc_timer_failures) >= want, 5000);
    long long took = mb_test_now_ms() - t0;
    atomic_store(&malloc_fail_timers, 0);
    if (!retried || took < 10)
        fprintf(stderr, "timer thread: 20 tries %s in %lld ms\n", retried ? "made" : "not made",
                took);
    CU_ASSERT(retried);
    CU_ASSERT(took >= 10);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_TIMER, 77) >= 0, 5000));
    stop_rt();
}

static void test_bounded_mailbox_rejects_or_crashes_on_overflow(void)
{
    start_rt(0, 1);
    /* "slow" takes 200 us per message: a burst fills its mailbox. */
    mb_spawn_opts o = { .kind = "slow", .mailbox_max = 4 };
    mb_agent_id a;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &a, NULL), 0);
    int full = 0;
    for (int i = 0; i < 100000 && !full; i++)
        full = mb_runtime_deliver(RT, 0, a, 1, "x", 1) == MB_EFULL;
    CU_ASSERT(full);
    CU_ASSERT(agent_alive(a));
    o.overflow = MB_OVERFLOW_CRASH;
    mb_agent_id b;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &b, NULL), 0);
    full = 0;
    for (int i = 0; i < 100000 && !full; i++)
        full = mb_runtime_deliver(RT, 0, b, 1, "x", 1) == MB_EFULL;
    CU_ASSERT(full);
    CU_ASSERT(MB_WAIT_UNTIL(!agent_alive(b), 5000));
    /* The agent leaves the registry before its worker records the crash
     * event: wait for the event too (a TSan run caught the gap). */
    size_t i = 0;
    CU_ASSERT(MB_WAIT_UNTIL((i = fake_find_event(&F, MB_AEV_CRASHED, b)) > 0, 5000));
    CU_ASSERT(i > 0 && F.ev[i - 1].code == MB_EFULL);
    stop_rt();
}

static void test_restart_in_place_resumes_from_checkpoint(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    mb_agent_id c = spawn_kind("counter", "0");
    int64_t d = 7;
    mb_runtime_deliver(RT, 0, c, MB_TAG_COUNTER_ADD, &d, 8);
    CU_ASSERT_EQUAL(mb_runtime_restart_agent(RT, c), 0);
    mb_runtime_deliver(RT, pr, c, MB_TAG_COUNTER_GET, NULL, 0);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, MB_TAG_COUNTER_GET) >= 0, 5000));
    CU_ASSERT_EQUAL(p.rec[0].value, 7);
    mb_agent_info info;
    CU_ASSERT_EQUAL(mb_runtime_agent_info(RT, c, &info), 0);
    CU_ASSERT_EQUAL(info.usage.restarts, 1);
    CU_ASSERT(fake_find_event(&F, MB_AEV_RESTARTED, c) > 0);
    stop_rt();
}

static void test_info_list_and_json_renderers(void)
{
    start_rt(0, 2);
    mb_spawn_opts o = { .kind = "counter", .config = "1", .name = "cnt" };
    mb_agent_id c;
    CU_ASSERT_EQUAL(mb_runtime_spawn(RT, &o, &c, NULL), 0);
    spawn_kind("echo", NULL);
    spawn_kind("echo", NULL);
    mb_runtime_deliver(RT, 0, c, MB_TAG_COUNTER_ADD, NULL, 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    mb_agent_info info;
    CU_ASSERT_EQUAL(mb_runtime_agent_info(RT, c, &info), 0);
    CU_ASSERT_STRING_EQUAL(info.kind, "counter");
    CU_ASSERT_STRING_EQUAL(info.name, "cnt");
    CU_ASSERT_EQUAL(info.usage.messages, 1);
    CU_ASSERT(info.usage.memory_bytes > 0);
    mb_agent_filter f = { .kind = "echo" };
    mb_agent_info infos[8];
    CU_ASSERT_EQUAL(mb_runtime_list(RT, &f, infos, 8), 2);
    CU_ASSERT_EQUAL(mb_runtime_list(RT, NULL, infos, 1), 3);
    cJSON *j = mb_agent_info_json(&info);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    char *s = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"kind\":\"counter\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"name\":\"cnt\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"messages\":1"));
    cJSON_free(s);
    cJSON_Delete(j);
    j = mb_agent_list_json(infos, 1, 3);
    s = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"total\":3"));
    cJSON_free(s);
    cJSON_Delete(j);
    mb_kind_info kinds[16];
    size_t nk = mb_runtime_kind_list(RT, kinds, 16);
    CU_ASSERT(nk >= 7);
    j = mb_kind_list_json(kinds, nk);
    s = cJSON_PrintUnformatted(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"name\":\"supervisor\""));
    cJSON_free(s);
    cJSON_Delete(j);
    stop_rt();
}

static void test_var_changes_and_vote_requests_reach_the_agent(void)
{
    start_rt(0, 2);
    mb_agent_id c = spawn_kind("echo", NULL);
    mb_value v = { .type = MB_VT_FLOAT, .u.f = 0.5 };
    CU_ASSERT_EQUAL(mb_runtime_var_changed(RT, c, "lr", &v, 3), 0);
    mb_proposal pr = { .id = 9, .variable = "lr", .value = &v };
    CU_ASSERT_EQUAL(mb_runtime_vote_request(RT, c, &pr), 0);
    CU_ASSERT_EQUAL(mb_runtime_var_changed(RT, 12345, "lr", &v, 3), MB_ENOAGENT);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT(agent_alive(c)); /* echo has neither callback: ignored */
    stop_rt();
}

/* Kind "watcher": counts the var_changed callbacks that carry name "lr",
 * 0.25 and version 9 (anything else counts as wrong). */
static atomic_int watch_right, watch_wrong;

static int watcher_var_changed(mb_ctx *ctx, void *st, const char *name, const mb_value *value,
                               uint64_t version)
{
    (void)ctx;
    (void)st;
    int right =
        strcmp(name, "lr") == 0 && value->type == MB_VT_FLOAT && value->u.f == 0.25 && version == 9;
    atomic_fetch_add(right ? &watch_right : &watch_wrong, 1);
    return 0;
}

static int watcher_handle(mb_ctx *ctx, void *st, const mb_msg *m)
{
    (void)ctx;
    (void)st;
    (void)m;
    return 0;
}

static const mb_agent_kind watcher_kind = {
    .abi = MB_AGENT_ABI,
    .name = "watcher",
    .version = 1,
    .handle = watcher_handle,
    .var_changed = watcher_var_changed,
};

/* A runtime with `workers` workers and kind "watcher", counts at zero. */
static void start_watchers(unsigned workers)
{
    start_rt(0, workers);
    mb_error err;
    CU_ASSERT_FATAL(mb_runtime_kind_register(RT, &watcher_kind, &err) == 0);
    atomic_store(&watch_right, 0);
    atomic_store(&watch_wrong, 0);
}

/* A fan-out: one call hands the change to many agents (more than one
 * batch of the run queue), each gets it once with the caller's value
 * copied (freed by the caller at once), an unknown id gets MB_ENOAGENT and
 * the others are not affected; under ASan the shared copy is freed once.
 * The runtime groups the ids by shard of its agent map: results still
 * follow the caller's order. */
static void test_var_change_to_many_agents_reaches_each_once(void)
{
    start_watchers(2);
    enum { N = 300 };
    static mb_agent_id ids[N + 1];
    static int rcs[N + 1];
    for (int i = 0; i < N; i++)
        ids[i] = spawn_kind("watcher", NULL);
    ids[N] = MB_AGENT_ID(7, 999999); /* no such agent */
    char *name = strdup("lr");
    mb_value v = { .type = MB_VT_FLOAT, .u.f = 0.25 };
    CU_ASSERT_EQUAL(mb_runtime_var_changed_many(RT, ids, N + 1, name, &v, 9, rcs), 0);
    free(name);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(rcs[i], 0);
    CU_ASSERT_EQUAL(rcs[N], MB_ENOAGENT);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(atomic_load(&watch_right), N);
    CU_ASSERT_EQUAL(atomic_load(&watch_wrong), 0);
    /* A short list in no order, over several shards of the agent map,
     * with an unknown id inside and one agent twice: each result lands at
     * its own index, and the agent named twice is told twice. */
    mb_agent_id few[5] = { ids[70], MB_AGENT_ID(7, 999999), ids[5], ids[200], ids[5] };
    int few_rcs[5] = { -1, -1, -1, -1, -1 };
    CU_ASSERT_EQUAL(mb_runtime_var_changed_many(RT, few, 5, "lr", &v, 9, few_rcs), 0);
    CU_ASSERT_EQUAL(few_rcs[0], 0);
    CU_ASSERT_EQUAL(few_rcs[1], MB_ENOAGENT);
    CU_ASSERT_EQUAL(few_rcs[2], 0);
    CU_ASSERT_EQUAL(few_rcs[3], 0);
    CU_ASSERT_EQUAL(few_rcs[4], 0);
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    CU_ASSERT_EQUAL(atomic_load(&watch_right), N + 4);
    CU_ASSERT_EQUAL(atomic_load(&watch_wrong), 0);
    /* Nobody to tell: nothing happens. */
    CU_ASSERT_EQUAL(mb_runtime_var_changed_many(RT, ids, 0, "lr", &v, 9, rcs), 0);
    CU_ASSERT_EQUAL(mb_runtime_var_changed_many(RT, ids, 1, NULL, &v, 9, rcs), MB_EINVAL);
    stop_rt();
}

/* A fan-out's messages share one block with the change: agents stopped and
 * killed while their message waits, and a runtime stopped with messages
 * still queued, free it exactly once (ASan and LeakSanitizer in CI check
 * what the counts cannot). Every delivered change is the right one. */
static void test_var_change_to_agents_that_end_meanwhile(void)
{
    start_watchers(1);
    enum { N = 200 };
    static mb_agent_id ids[N];
    static int rcs[N];
    for (int i = 0; i < N; i++)
        ids[i] = spawn_kind("watcher", NULL);
    mb_value v = { .type = MB_VT_FLOAT, .u.f = 0.25 };
    for (int round = 0; round < 3; round++)
        CU_ASSERT_EQUAL(mb_runtime_var_changed_many(RT, ids, N, "lr", &v, 9, rcs), 0);
    for (int i = 0; i < N; i += 4) {
        mb_runtime_stop_agent(RT, ids[i]);
        mb_runtime_kill_agent(RT, ids[i + 1]);
    }
    CU_ASSERT_EQUAL(mb_runtime_quiesce(RT, 5000), 0);
    int got = atomic_load(&watch_right);
    CU_ASSERT(got >= 3 * N / 2 && got <= 3 * N);
    CU_ASSERT_EQUAL(atomic_load(&watch_wrong), 0);
    /* Queued at the runtime's stop: freed with the agents. */
    CU_ASSERT_EQUAL(mb_runtime_var_changed_many(RT, ids, N, "lr", &v, 9, rcs), 0);
    stop_rt();
}

static void test_sends_to_other_nodes_go_through_services(void)
{
    start_rt(0, 2);
    static struct probe p;
    probe_reset(&p);
    mb_agent_id a = probe_spawn(RT, &p);
    mb_agent_id remote = MB_AGENT_ID(9, 1234);
    probe_cmd(RT, a, PROBE_SEND, (int64_t)remote);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&F.nremote) == 1, 5000));
    fake_lock(&F);
    CU_ASSERT_EQUAL(F.last_remote_to, remote);
    CU_ASSERT_EQUAL(F.last_remote_from, a);
    CU_ASSERT_EQUAL(F.last_remote_tag, 5);
    fake_unlock(&F);
    CU_ASSERT(agent_alive(a));
    stop_rt();
}

static void test_spawn_and_stop_a_million_agents_without_leaks(void)
{
    start_rt(0, 2);
    F.record_events = 0;
#if defined(__SANITIZE_THREAD__)
    const size_t n = 200000; /* TSan is ~10x slower; ASan and plain run 1M */
#else
    const size_t n = 1000000;
#endif
    mb_agent_id *ids = malloc(n * sizeof(*ids));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    mb_spawn_opts o = { .kind = "echo" };
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += mb_runtime_spawn(RT, &o, &ids[i], NULL) == 0;
    CU_ASSERT_EQUAL(ok, n);
    CU_ASSERT_EQUAL(mb_runtime_agent_count(RT), n);
    size_t stopped = 0;
    for (size_t i = 0; i < n; i++)
        stopped += mb_runtime_stop_agent(RT, ids[i]) == 0;
    CU_ASSERT_EQUAL(stopped, n);
    CU_ASSERT(MB_WAIT_UNTIL(mb_runtime_agent_count(RT) == 0, 50000));
    CU_ASSERT_EQUAL(fake_count(&F, MB_AEV_SPAWNED), n);
    CU_ASSERT_EQUAL(fake_count(&F, MB_AEV_STOPPED), n);
    free(ids);
    stop_rt();
}

static CU_TestInfo core_tests[] = {
    { "ids_carry_node_part_and_are_unique", test_ids_carry_node_part_and_are_unique },
    { "echo_replies_to_sender", test_echo_replies_to_sender },
    { "counter_adds_and_answers_get", test_counter_adds_and_answers_get },
    { "send_to_dead_agent_fails_and_notifies_on_request",
      test_send_to_dead_agent_fails_and_notifies_on_request },
    { "unknown_kind_and_bad_config_are_clear_errors",
      test_unknown_kind_and_bad_config_are_clear_errors },
    { "optimiser_and_evaluator_kinds_check_config_and_answer_with_it",
      test_optimiser_and_evaluator_kinds_check_config_and_answer_with_it },
    { "names_and_capabilities_go_to_the_registry", test_names_and_capabilities_go_to_the_registry },
    { "monitor_receives_down_with_reason", test_monitor_receives_down_with_reason },
    { "link_takes_down_non_trapping_partner_and_informs_trapping_one",
      test_link_takes_down_non_trapping_partner_and_informs_trapping_one },
    { "kill_is_brutal_and_stop_runs_terminate", test_kill_is_brutal_and_stop_runs_terminate },
    { "runtime_stop_is_a_shutdown_not_a_crash", test_runtime_stop_is_a_shutdown_not_a_crash },
    { "handler_error_is_a_crash", test_handler_error_is_a_crash },
    { "timers_fire_by_the_injected_clock", test_timers_fire_by_the_injected_clock },
    { "timer_thread_fires_with_real_clock", test_timer_thread_fires_with_real_clock },
    { "worker_without_spin_sleeps_at_once", test_worker_without_spin_sleeps_at_once },
    { "timer_thread_sleeps_until_the_next_deadline",
      test_timer_thread_sleeps_until_the_next_deadline },
    { "earlier_timer_wakes_the_sleeping_timer_thread",
      test_earlier_timer_wakes_the_sleeping_timer_thread },
    { "timer_tick_out_of_memory_leaves_the_rest_to_the_next_tick",
      test_timer_tick_out_of_memory_leaves_the_rest_to_the_next_tick },
    { "timer_thread_short_of_memory_retries_every_millisecond",
      test_timer_thread_short_of_memory_retries_every_millisecond },
    { "bounded_mailbox_rejects_or_crashes_on_overflow",
      test_bounded_mailbox_rejects_or_crashes_on_overflow },
    { "restart_in_place_resumes_from_checkpoint", test_restart_in_place_resumes_from_checkpoint },
    { "info_list_and_json_renderers", test_info_list_and_json_renderers },
    { "var_change_to_many_agents_reaches_each_once",
      test_var_change_to_many_agents_reaches_each_once },
    { "var_change_to_agents_that_end_meanwhile", test_var_change_to_agents_that_end_meanwhile },
    { "var_changes_and_vote_requests_reach_the_agent",
      test_var_changes_and_vote_requests_reach_the_agent },
    { "sends_to_other_nodes_go_through_services", test_sends_to_other_nodes_go_through_services },
    { "spawn_and_stop_a_million_agents_without_leaks",
      test_spawn_and_stop_a_million_agents_without_leaks },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "agents_core", NULL, NULL, NULL, NULL, core_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
