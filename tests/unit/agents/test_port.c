/* Tests of port agents: the Python SDK examples run by the machine's
 * python3, crashes on process exit, garbage output and missed deadlines,
 * supervised restart from checkpoint, stderr to the node log, resource
 * limits (memory, CPU time), votes, and clear errors for bad programs. */
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "agents/fake_services.h"
#include "mb_test.h"

static struct fake F;
static mb_services SVC;
static mb_runtime *RT;

static void start_rt(void)
{
    fake_init(&F, &SVC, 0);
    mb_runtime_config cfg = { .node_id = 5, .workers = 2, .port_reply_ms = 10000 };
    CU_ASSERT_FATAL(mb_runtime_start(&cfg, &SVC, &RT, NULL) == 0);
    CU_ASSERT_FATAL(mb_runtime_kind_register(RT, &probe_kind, NULL) == 0);
}

static void stop_rt(void)
{
    mb_runtime_stop(RT);
    RT = NULL;
    fake_close(&F);
}

static int alive(mb_agent_id id)
{
    mb_agent_info info;
    return mb_runtime_agent_info(RT, id, &info) == 0;
}

static int spawn_port(const char *config, mb_agent_id *id, mb_error *err)
{
    mb_spawn_opts o = { .kind = "port", .config = config };
    return mb_runtime_spawn(RT, &o, id, err);
}

static void py_config(char *buf, size_t n, const char *example, const char *extra)
{
    /* -B: no __pycache__ written into the source tree */
    snprintf(buf, n, "{\"cmd\":[\"%s\",\"-B\",\"%s/examples/%s\"]%s%s}", MB_PYTHON3, MB_PYTHON_DIR,
             example, extra ? "," : "", extra ? extra : "");
}

/* Spawn a port agent and return a copy of the crash event the runtime
 * records once it ends, or NULL. The event, not a monitor's DOWN: a
 * process that dies at once can end the agent before a monitor set after
 * the spawn is in place, and that monitor then only sees noproc (a TSan
 * run caught it). */
static struct fake_ev *expect_crash(const char *config, int timeout_ms)
{
    static struct fake_ev ev;
    mb_agent_id id;
    mb_error err;
    if (spawn_port(config, &id, &err) != 0) {
        fprintf(stderr, "spawn: %s\n", err.msg);
        return NULL;
    }
    size_t i = 0;
    if (!MB_WAIT_UNTIL((i = fake_find_event(&F, MB_AEV_CRASHED, id)) > 0, timeout_ms))
        return NULL;
    fake_lock(&F);
    ev = F.ev[i - 1];
    fake_unlock(&F);
    return &ev;
}

static void test_python_echo_agent_replies(void)
{
    start_rt();
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    char cfg[512];
    py_config(cfg, sizeof(cfg), "echo_agent.py", NULL);
    mb_agent_id id;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(spawn_port(cfg, &id, &err), 0);
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, pr, id, 12, "hello port", 10), 0);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, 12) >= 0, 10000));
    long i = probe_find(&p, MB_MSG_USER, 12);
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_STRING_EQUAL(p.rec[i].text, "hello port");
    CU_ASSERT_EQUAL(p.rec[i].from, id);
    /* Binary data goes through base64 both ways. */
    unsigned char bin[4] = { 0xff, 0x00, 0x80, 0x01 };
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, pr, id, 13, bin, 4), 0);
    CU_ASSERT(MB_WAIT_UNTIL(probe_find(&p, MB_MSG_USER, 13) >= 0, 10000));
    i = probe_find(&p, MB_MSG_USER, 13);
    CU_ASSERT(i >= 0 && p.rec[i].len == 4);
    mb_agent_info info;
    CU_ASSERT_EQUAL(mb_runtime_agent_info(RT, id, &info), 0);
    CU_ASSERT(info.is_port);
    CU_ASSERT(info.os_pid > 0);
    CU_ASSERT(info.usage.memory_bytes > 0);
    /* A normal stop ends the process too. */
    int pid = info.os_pid;
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(RT, id), 0);
    CU_ASSERT(MB_WAIT_UNTIL(!alive(id), 5000));
    CU_ASSERT(kill(pid, 0) != 0);
    stop_rt();
}

static void test_supervised_python_agent_restarts_from_checkpoint(void)
{
    start_rt();
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    char child[512], sup[1024];
    snprintf(child, sizeof(child),
             "{\\\"cmd\\\":[\\\"%s\\\",\\\"-B\\\",\\\"%s/examples/counter_agent.py\\\"]}",
             MB_PYTHON3, MB_PYTHON_DIR);
    snprintf(sup, sizeof(sup),
             "{\"backoff\":{\"initial_ms\":0},\"children\":[{\"kind\":\"port\",\"name\":\"pc\","
             "\"config\":\"%s\"}]}",
             child);
    mb_spawn_opts o = { .kind = "supervisor", .config = sup };
    mb_agent_id s, c = 0;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &s, &err), 0);
    CU_ASSERT_EQUAL_FATAL(fake_lookup(&F, "default", "pc", &c), 0);
    for (int i = 0; i < 3; i++)
        mb_runtime_deliver(RT, 0, c, 0, "inc", 3);
    mb_runtime_deliver(RT, pr, c, 0, "get", 3);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) >= 1, 10000));
    CU_ASSERT_STRING_EQUAL(p.rec[0].text, "3");
    mb_runtime_deliver(RT, 0, c, 0, "crash", 5);
    mb_agent_id c2 = 0;
    CU_ASSERT(MB_WAIT_UNTIL(fake_lookup(&F, "default", "pc", &c2) == 0 && c2 != c, 10000));
    /* The new instance's name may resolve before the runtime accepts mail
     * for it (a TSan run lost the "get" there): send until accepted. */
    CU_ASSERT(MB_WAIT_UNTIL(mb_runtime_deliver(RT, pr, c2, 0, "get", 3) == 0, 10000));
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&p.n) >= 2, 10000));
    CU_ASSERT_STRING_EQUAL(p.rec[1].text, "3");
    /* The crash reason and the process's stderr reached the node. */
    size_t e = fake_find_event(&F, MB_AEV_CRASHED, c);
    CU_ASSERT_FATAL(e > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(F.ev[e - 1].detail, "asked to crash"));
    CU_ASSERT(MB_WAIT_UNTIL(fake_logs_contain(&F, "counter starting at 3"), 5000));
    stop_rt();
}

static void test_python_agent_votes(void)
{
    start_rt();
    char cfg[512];
    py_config(cfg, sizeof(cfg), "counter_agent.py", NULL);
    mb_agent_id id;
    CU_ASSERT_EQUAL_FATAL(spawn_port(cfg, &id, NULL), 0);
    mb_value v = { .type = MB_VT_FLOAT, .u.f = 0.5 };
    mb_proposal prop = { .id = 4, .variable = "lr", .value = &v, .proposer = 1 };
    CU_ASSERT_EQUAL(mb_runtime_vote_request(RT, id, &prop), 0);
    CU_ASSERT(MB_WAIT_UNTIL(atomic_load(&F.nvotes) == 1, 10000));
    CU_ASSERT_EQUAL(F.last_vote, 1);
    stop_rt();
}

/* The text of the probe's message with `tag`, waited for; NULL if none. */
static const char *await_text(struct probe *p, uint32_t tag)
{
    if (!MB_WAIT_UNTIL(probe_find(p, MB_MSG_USER, tag) >= 0, 10000))
        return NULL;
    return p->rec[probe_find(p, MB_MSG_USER, tag)].text;
}

/* Ask the proposer port agent `id` (from the probe `pr`) to propose
 * `text` ("NAME VALUE") and check its answer, `answer`, and what the fake
 * services got: `name`, a value of `type` equal to `value`. */
static void expect_proposal(struct probe *p, mb_agent_id pr, mb_agent_id id, uint32_t tag,
                            const char *text, const char *answer, const char *name, mb_vtype type,
                            double value)
{
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, pr, id, tag, text, strlen(text)), 0);
    const char *t = await_text(p, tag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t, answer);
    fake_lock(&F);
    CU_ASSERT_STRING_EQUAL(F.last_proposal, name);
    CU_ASSERT_EQUAL(F.last_proposal_type, type);
    CU_ASSERT_DOUBLE_EQUAL(F.last_proposal_value, value, 1e-12);
    fake_unlock(&F);
}

/* A port agent proposes and hears the node's answer: the proposal's id,
 * or the error (here the fake services refuse "locked" with MB_EPERM). */
static void test_python_agent_proposes_and_hears_the_answer(void)
{
    start_rt();
    static struct probe p;
    probe_reset(&p);
    mb_agent_id pr = probe_spawn(RT, &p);
    char cfg[512];
    py_config(cfg, sizeof(cfg), "proposer_agent.py", NULL);
    mb_agent_id id;
    CU_ASSERT_EQUAL_FATAL(spawn_port(cfg, &id, NULL), 0);
    expect_proposal(&p, pr, id, 21, "lr 0.25", "proposed 100", "lr", MB_VT_FLOAT, 0.25);
    /* JSON has one kind of number: for the int variable "k" an integral
     * one is proposed as an int. */
    expect_proposal(&p, pr, id, 23, "k 7", "proposed 101", "k", MB_VT_INT, 7);
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, pr, id, 22, "locked 1", 8), 0);
    const char *t = await_text(&p, 22);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(strncmp(t, "refused MB_EPERM propose locked: ", 33) == 0);
    CU_ASSERT_EQUAL(atomic_load(&F.nproposals), 2);
    CU_ASSERT(alive(id)); /* a refused proposal is an answer, not a crash */
    stop_rt();
}

static void test_missing_program_is_a_clear_spawn_error(void)
{
    start_rt();
    mb_agent_id id;
    mb_error err;
    CU_ASSERT_EQUAL(spawn_port("{\"cmd\":[\"/nonexistent/agent\"]}", &id, &err), MB_ENOTFOUND);
    CU_ASSERT(fake_logs_contain(&F, "/nonexistent/agent"));
    CU_ASSERT_EQUAL(spawn_port("{\"cmd\":[]}", &id, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(spawn_port("{\"cmd\":\"sh\"}", &id, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(spawn_port("not json", &id, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(spawn_port("{\"cmd\":[\"sh\"],\"mem_mb\":-1}", &id, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(mb_runtime_agent_count(RT), 0);
    stop_rt();
}

static void test_garbage_output_crashes_the_agent(void)
{
    start_rt();
    struct fake_ev *r = expect_crash(
        "{\"cmd\":[\"/bin/sh\",\"-c\",\"read x; echo this is not json; sleep 30\"]}", 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->reason, MB_EXIT_CRASH);
    CU_ASSERT_EQUAL(r->code, MB_EPROTO);
    stop_rt();
}

static void test_process_exit_crashes_the_agent(void)
{
    start_rt();
    struct fake_ev *r = expect_crash(
        "{\"cmd\":[\"/bin/sh\",\"-c\",\"read x; echo '{\\\"type\\\":\\\"ready\\\"}'; exit 3\"]}",
        10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->reason, MB_EXIT_CRASH);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->detail, "exited"));
    stop_rt();
}

static void test_missed_reply_deadline_crashes_the_agent(void)
{
    start_rt();
    struct fake_ev *r =
        expect_crash("{\"cmd\":[\"/bin/sh\",\"-c\",\"sleep 30\"],\"reply_ms\":200}", 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->code, MB_ETIMEDOUT);
    stop_rt();
}

static void test_stderr_goes_to_the_node_log(void)
{
    start_rt();
    mb_agent_id id;
    CU_ASSERT_EQUAL(
        spawn_port("{\"cmd\":[\"/bin/sh\",\"-c\",\"echo oops-on-stderr >&2; sleep 30\"]}", &id,
                   NULL),
        0);
    CU_ASSERT(MB_WAIT_UNTIL(fake_logs_contain(&F, "oops-on-stderr"), 10000));
    stop_rt();
}

static void test_memory_limit_applies_to_the_process(void)
{
    start_rt();
    char cfg[512];
    snprintf(cfg, sizeof(cfg),
             "{\"cmd\":[\"%s\",\"-c\",\"import sys; print('{\\\"type\\\":\\\"ready\\\"}', "
             "flush=True); x = bytearray(400*1024*1024); sys.stdin.read()\"],\"mem_mb\":100}",
             MB_PYTHON3);
    struct fake_ev *r = expect_crash(cfg, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->reason, MB_EXIT_CRASH);
    stop_rt();
}

static void test_cpu_limit_applies_to_the_process(void)
{
    start_rt();
    struct fake_ev *r = expect_crash(
        "{\"cmd\":[\"/bin/sh\",\"-c\",\"echo '{\\\"type\\\":\\\"ready\\\"}'; while :; do :; "
        "done\"],\"cpu_s\":1}",
        20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->reason, MB_EXIT_CRASH);
    stop_rt();
}

static void test_killing_a_port_agent_reaps_its_process(void)
{
    start_rt();
    mb_agent_id id;
    CU_ASSERT_EQUAL_FATAL(spawn_port("{\"cmd\":[\"/bin/sh\",\"-c\",\"sleep 30\"]}", &id, NULL), 0);
    mb_agent_info info;
    CU_ASSERT_EQUAL(mb_runtime_agent_info(RT, id, &info), 0);
    CU_ASSERT_EQUAL(mb_runtime_kill_agent(RT, id), 0);
    CU_ASSERT(MB_WAIT_UNTIL(!alive(id), 5000));
    CU_ASSERT(kill(info.os_pid, 0) != 0); /* gone and reaped (no zombie) */
    stop_rt();
}

static CU_TestInfo port_tests[] = {
    { "python_echo_agent_replies", test_python_echo_agent_replies },
    { "supervised_python_agent_restarts_from_checkpoint",
      test_supervised_python_agent_restarts_from_checkpoint },
    { "python_agent_votes", test_python_agent_votes },
    { "python_agent_proposes_and_hears_the_answer",
      test_python_agent_proposes_and_hears_the_answer },
    { "missing_program_is_a_clear_spawn_error", test_missing_program_is_a_clear_spawn_error },
    { "garbage_output_crashes_the_agent", test_garbage_output_crashes_the_agent },
    { "process_exit_crashes_the_agent", test_process_exit_crashes_the_agent },
    { "missed_reply_deadline_crashes_the_agent", test_missed_reply_deadline_crashes_the_agent },
    { "stderr_goes_to_the_node_log", test_stderr_goes_to_the_node_log },
    { "memory_limit_applies_to_the_process", test_memory_limit_applies_to_the_process },
    { "cpu_limit_applies_to_the_process", test_cpu_limit_applies_to_the_process },
    { "killing_a_port_agent_reaps_its_process", test_killing_a_port_agent_reaps_its_process },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "port", NULL, NULL, NULL, NULL, port_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
