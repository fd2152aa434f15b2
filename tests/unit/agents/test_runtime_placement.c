/* Tests of the runtime hooks placement uses: spawning from a checkpoint
 * (mb_spawn_opts.checkpoint, through the kind's restore) and asking an
 * agent for a checkpoint from outside (mb_runtime_checkpoint_agent), after
 * the messages queued before it and before a stop requested after it. */
#include <stdint.h>
#include <string.h>

#include "agents/fake_services.h"
#include "mb_test.h"

static struct fake F;
static mb_services SVC;
static mb_runtime *RT;
static pthread_mutex_t ck_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t ck_last;
static unsigned ck_count;

static void saved_cb(void *impl, mb_agent_id id, const void *blob, size_t len)
{
    (void)impl;
    (void)id;
    pthread_mutex_lock(&ck_mu);
    if (len == sizeof(int64_t))
        memcpy(&ck_last, blob, sizeof(ck_last));
    ck_count++;
    pthread_mutex_unlock(&ck_mu);
}

static unsigned ck_seen(int64_t *last)
{
    pthread_mutex_lock(&ck_mu);
    unsigned n = ck_count;
    if (last != NULL)
        *last = ck_last;
    pthread_mutex_unlock(&ck_mu);
    return n;
}

static void start_rt(void)
{
    fake_init(&F, &SVC, 0);
    SVC.checkpoint_saved = saved_cb;
    ck_count = 0;
    ck_last = 0;
    mb_runtime_config cfg = { .node_id = 3, .workers = 2 };
    mb_error err;
    CU_ASSERT_FATAL(mb_runtime_start(&cfg, &SVC, &RT, &err) == 0);
}

static void stop_rt(void)
{
    mb_runtime_stop(RT);
    RT = NULL;
    fake_close(&F);
}

static int gone(mb_agent_id id)
{
    mb_agent_info info;
    return mb_runtime_agent_info(RT, id, &info) != 0;
}

static void test_spawn_with_checkpoint_restores_the_state(void)
{
    start_rt();
    int64_t v = 41;
    mb_spawn_opts o = { .kind = "counter", .config = "0", .checkpoint = &v, .checkpoint_len = 8 };
    mb_agent_id id;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &id, &err), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_checkpoint_agent(RT, id), MB_OK);
    CU_ASSERT(MB_WAIT_UNTIL(ck_seen(NULL) >= 1, 5000));
    int64_t last;
    ck_seen(&last);
    CU_ASSERT_EQUAL(last, 41); /* restored, not init's 0 */
    stop_rt();
}

static void test_checkpoint_request_follows_queued_messages_and_precedes_stop(void)
{
    start_rt();
    mb_spawn_opts o = { .kind = "counter", .config = "7" };
    mb_agent_id id;
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(mb_runtime_spawn(RT, &o, &id, &err), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_checkpoint_agent(RT, id), MB_OK);
    CU_ASSERT(MB_WAIT_UNTIL(ck_seen(NULL) >= 1, 5000));
    int64_t last;
    CU_ASSERT_EQUAL(ck_seen(&last), 1);
    CU_ASSERT_EQUAL(last, 7);
    int64_t five = 5;
    CU_ASSERT_EQUAL(mb_runtime_deliver(RT, 0, id, MB_TAG_COUNTER_ADD, &five, 8), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_checkpoint_agent(RT, id), MB_OK);
    CU_ASSERT_EQUAL(mb_runtime_stop_agent(RT, id), MB_OK);
    CU_ASSERT(MB_WAIT_UNTIL(gone(id), 5000));
    ck_seen(&last);
    CU_ASSERT_EQUAL(last, 12);
    CU_ASSERT_EQUAL(mb_runtime_checkpoint_agent(RT, id), MB_ENOAGENT);
    stop_rt();
}

static CU_TestInfo tests[] = {
    { "test_spawn_with_checkpoint_restores_the_state",
      test_spawn_with_checkpoint_restores_the_state },
    { "test_checkpoint_request_follows_queued_messages_and_precedes_stop",
      test_checkpoint_request_follows_queued_messages_and_precedes_stop },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "runtime_placement", NULL, NULL, NULL, NULL, tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
