/* Tests of the parked long-poll watches (node/api_park.c) behind a real
 * HTTP server on a loop thread: a watch is answered by a wake of its own
 * key and only by that, a keyless wake reaches every watch, the deadline
 * answers with force, timeout 0 answers at once, shutdown refuses the
 * parked ones (and frees them: ASan), and timeout_ms is checked and capped.
 *
 * The test area: a counter per key ("a", "b"); GET /t/watch/{key}?from=N
 * waits until the key's counter is above N and answers with it;
 * POST /t/bump/{key} (or /t/bump-all) raises counters and wakes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <uv.h>

#include "mb_test.h"
#include "http_fixture.h"
#include "node/api_park.h"

typedef struct fixture {
    http_fixture h;
    api_park_list watches; /* loop thread only */
    uint64_t count[2];     /* counters of keys "a" and "b"; loop thread only */
    atomic_int waiting;    /* answers that said "not yet" */
    atomic_int tries;      /* calls of the answer function */
    atomic_uint_fast64_t last_timeout_ms;
} fixture;

static fixture fx;

static uint64_t *counter(const char *key)
{
    return strcmp(key, "a") == 0 ? &fx.count[0] : strcmp(key, "b") == 0 ? &fx.count[1] : NULL;
}

static int answer(struct node *n, api_call *c, const char *key, uint64_t from, int force,
                  const void *wake)
{
    (void)n;
    atomic_fetch_add(&fx.tries, 1);
    uint64_t v = *counter(key);
    if (!force && v <= from) {
        atomic_fetch_add(&fx.waiting, 1);
        return 0;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "key", key);
    cJSON_AddNumberToObject(out, "value", (double)v);
    cJSON_AddBoolToObject(out, "forced", force);
    cJSON_AddBoolToObject(out, "woken", wake != NULL);
    api_reply_json(c, 200, out);
    return 1;
}

static void h_watch(struct node *n, api_call *c)
{
    const char *key = api_call_param(c, 0);
    uint64_t from, timeout;
    if (counter(key) == NULL) {
        api_reply_error(c, MB_ENOTFOUND, "no key %s", key);
        return;
    }
    if (api_query_u64(c, "from", 0, &from) != MB_OK || api_park_timeout(c, &timeout) != MB_OK)
        return;
    atomic_store(&fx.last_timeout_ms, timeout);
    api_park_watch(&fx.watches, n, c, key, from, timeout, answer);
}

static void h_bump(struct node *n, api_call *c)
{
    const char *key = api_call_param(c, 0);
    if (counter(key) == NULL) {
        api_reply_error(c, MB_ENOTFOUND, "no key %s", key);
        return;
    }
    (*counter(key))++;
    static const int token = 1;
    api_park_wake(&fx.watches, n, key, &token);
    api_reply_json(c, 200, NULL);
}

static void h_bump_all(struct node *n, api_call *c)
{
    fx.count[0]++;
    fx.count[1]++;
    static const int token = 1;
    api_park_wake(&fx.watches, n, NULL, &token);
    api_reply_json(c, 200, NULL);
}

static const api_route routes[] = {
    { "GET", "/t/watch/{key}", h_watch, 0, "watch" },
    { "POST", "/t/bump-all", h_bump_all, 0, "bump_all" },
    { "POST", "/t/bump/{key}", h_bump, 0, "bump" },
};

static int start(void)
{
    memset(&fx, 0, sizeof(fx));
    return http_fixture_start(&fx.h, routes, sizeof(routes) / sizeof(routes[0]), 1 << 20, 0);
}

static void stop(void)
{
    http_fixture_stop(&fx.h);
}

static int request(const char *method, const char *path, cli_response *r)
{
    return http_fixture_request(&fx.h, method, path, NULL, 20000, r);
}

/* A watch run by a client thread. */
typedef struct watch_req {
    char path[128];
    pthread_t th;
    atomic_int status; /* 0 while waiting, -1 transport error */
    char body[256];
} watch_req;

static void *watch_main(void *arg)
{
    watch_req *w = arg;
    cli_response r;
    if (request("GET", w->path, &r) == MB_OK) {
        snprintf(w->body, sizeof(w->body), "%s", r.body);
        atomic_store(&w->status, r.status);
        cli_response_free(&r);
    } else {
        atomic_store(&w->status, -1);
    }
    return NULL;
}

static void watch_start(watch_req *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&w->th, NULL, watch_main, w), 0);
}

static void bump(const char *path)
{
    cli_response r;
    CU_ASSERT_EQUAL(request("POST", path, &r), MB_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    cli_response_free(&r);
}

static void test_watch_is_answered_by_a_wake_of_its_key_only(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    watch_req w;
    watch_start(&w, "/t/watch/a?from=0&timeout_ms=20000");
    CU_ASSERT_TRUE_FATAL(MB_WAIT_UNTIL(atomic_load(&fx.waiting) == 1, 5000));
    int tries = atomic_load(&fx.tries);
    bump("/t/bump/b"); /* another key: the watch of "a" is not even asked */
    CU_ASSERT_EQUAL(atomic_load(&fx.tries), tries);
    CU_ASSERT_EQUAL(atomic_load(&w.status), 0);
    bump("/t/bump/a");
    pthread_join(w.th, NULL);
    CU_ASSERT_EQUAL(atomic_load(&w.status), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(w.body, "\"value\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(w.body, "\"forced\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(w.body, "\"woken\":true"));
    stop();
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static void test_wake_that_changes_nothing_keeps_the_watch_parked(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    watch_req w;
    watch_start(&w, "/t/watch/a?from=1&timeout_ms=20000"); /* waits for a value above 1 */
    CU_ASSERT_TRUE_FATAL(MB_WAIT_UNTIL(atomic_load(&fx.waiting) == 1, 5000));
    bump("/t/bump/a"); /* 1: asked, not yet */
    CU_ASSERT_EQUAL(atomic_load(&fx.waiting), 2);
    CU_ASSERT_EQUAL(atomic_load(&w.status), 0);
    bump("/t/bump/a"); /* 2: answered */
    pthread_join(w.th, NULL);
    CU_ASSERT_EQUAL(atomic_load(&w.status), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(w.body, "\"value\":2"));
    stop();
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static void test_keyless_wake_reaches_every_watch(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    watch_req wa, wb;
    watch_start(&wa, "/t/watch/a?timeout_ms=20000");
    watch_start(&wb, "/t/watch/b?timeout_ms=20000");
    CU_ASSERT_TRUE_FATAL(MB_WAIT_UNTIL(atomic_load(&fx.waiting) == 2, 5000));
    bump("/t/bump-all");
    pthread_join(wa.th, NULL);
    pthread_join(wb.th, NULL);
    CU_ASSERT_EQUAL(atomic_load(&wa.status), 200);
    CU_ASSERT_EQUAL(atomic_load(&wb.status), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(wa.body, "\"key\":\"a\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(wb.body, "\"key\":\"b\""));
    stop();
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static void test_deadline_answers_with_force(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    cli_response r;
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(request("GET", "/t/watch/a?timeout_ms=100", &r), MB_OK);
    CU_ASSERT(mb_test_now_ms() - t0 >= 95);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"forced\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"woken\":false"));
    cli_response_free(&r);
    stop();
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static void test_timeout_zero_answers_at_once(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    cli_response r;
    CU_ASSERT_EQUAL(request("GET", "/t/watch/a?timeout_ms=0", &r), MB_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"forced\":true"));
    CU_ASSERT_EQUAL(atomic_load(&fx.waiting), 0);
    cli_response_free(&r);
    stop();
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static void test_timeout_is_checked_and_capped(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    cli_response r;
    CU_ASSERT_EQUAL(request("GET", "/t/watch/a?timeout_ms=soon", &r), MB_OK);
    CU_ASSERT_EQUAL(r.status, 400);
    cli_response_free(&r);
    /* Answered right away (from=0 and the counter bumped), so the cap is
     * only recorded, not waited for. */
    bump("/t/bump/a");
    CU_ASSERT_EQUAL(request("GET", "/t/watch/a?timeout_ms=99999999", &r), MB_OK);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(atomic_load(&fx.last_timeout_ms), API_PARK_MAX_MS);
    cli_response_free(&r);
    CU_ASSERT_EQUAL(request("GET", "/t/watch/a", &r), MB_OK);
    CU_ASSERT_EQUAL(atomic_load(&fx.last_timeout_ms), API_PARK_DEFAULT_MS);
    cli_response_free(&r);
    stop();
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static void test_shutdown_refuses_parked_watches(void)
{
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    watch_req w[3];
    for (int i = 0; i < 3; i++)
        watch_start(&w[i], "/t/watch/b?timeout_ms=60000");
    CU_ASSERT_TRUE_FATAL(MB_WAIT_UNTIL(atomic_load(&fx.waiting) == 3, 5000));
    stop();
    int n503 = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(w[i].th, NULL);
        int st = atomic_load(&w[i].status);
        /* 503 MB_ECLOSED; a write unfinished after the close grace shows
         * as a closed connection (-1), as in test_http_server. */
        CU_ASSERT(st == 503 || st == -1);
        n503 += st == 503;
    }
    CU_ASSERT(n503 >= 1);
    CU_ASSERT_PTR_NULL(fx.watches.head); /* every watch left the list */
    CU_ASSERT_EQUAL(fx.h.loop_close_rv, 0);
}

static CU_TestInfo tests[] = {
    { "watch_is_answered_by_a_wake_of_its_key_only",
      test_watch_is_answered_by_a_wake_of_its_key_only },
    { "wake_that_changes_nothing_keeps_the_watch_parked",
      test_wake_that_changes_nothing_keeps_the_watch_parked },
    { "keyless_wake_reaches_every_watch", test_keyless_wake_reaches_every_watch },
    { "deadline_answers_with_force", test_deadline_answers_with_force },
    { "timeout_zero_answers_at_once", test_timeout_zero_answers_at_once },
    { "timeout_is_checked_and_capped", test_timeout_is_checked_and_capped },
    { "shutdown_refuses_parked_watches", test_shutdown_refuses_parked_watches },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "api_park", NULL, NULL, NULL, NULL, tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    int rv = mb_test_run(argc, argv, suites);
    nng_fini();
    return rv;
}
