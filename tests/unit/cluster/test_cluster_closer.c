/* cluster/closer.c: sockets closed on the closer's own thread, in order;
 * a close that hangs (libnng 1.5.2, nanomsg/nng#1636) blocks neither the
 * submitter nor, past its deadline, the owner; real NNG sockets closed. */
#include <pthread.h>
#include <stdatomic.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "cluster/closer.h"
#include "mb_test.h"

#define HANG_ID 7u

static pthread_t g_submitter;
static atomic_uint g_closed[16];
static atomic_uint g_order[16], g_n_closed;
static atomic_int g_on_submitter;
static atomic_int g_release; /* the hanging close returns once set */

static int fake_close(nng_socket s)
{
    if (pthread_equal(pthread_self(), g_submitter))
        atomic_store(&g_on_submitter, 1);
    if (s.id == HANG_ID)
        while (!atomic_load(&g_release)) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL); /* stands in for libnng's endless wait */
        }
    if (s.id < 16)
        atomic_fetch_add(&g_closed[s.id], 1);
    unsigned k = atomic_fetch_add(&g_n_closed, 1);
    if (k < 16)
        atomic_store(&g_order[k], s.id);
    return 0;
}

static void reset(void)
{
    g_submitter = pthread_self();
    for (int i = 0; i < 16; i++) {
        atomic_store(&g_closed[i], 0);
        atomic_store(&g_order[i], 0);
    }
    atomic_store(&g_n_closed, 0);
    atomic_store(&g_on_submitter, 0);
    atomic_store(&g_release, 0);
}

static void test_sockets_close_on_the_closers_thread_in_order(void)
{
    reset();
    sock_closer *c;
    CU_ASSERT_EQUAL_FATAL(sock_closer_open(&c, fake_close), MB_OK);
    for (uint32_t id = 1; id <= 5; id++)
        sock_closer_submit(c, (nng_socket){ .id = id }, malloc(16)); /* freed by the closer */
    CU_ASSERT_EQUAL(sock_closer_close(c, 5000), MB_OK);
    CU_ASSERT_EQUAL(atomic_load(&g_n_closed), 5);
    for (unsigned k = 0; k < 5; k++)
        CU_ASSERT_EQUAL(atomic_load(&g_order[k]), k + 1);
    CU_ASSERT_EQUAL(atomic_load(&g_on_submitter), 0);
    CU_ASSERT_EQUAL(sock_closer_stuck(), 0);
    CU_ASSERT_EQUAL(sock_closer_close(NULL, 0), MB_OK);
}

static void test_a_hung_close_blocks_neither_submitter_nor_owner(void)
{
    reset();
    sock_closer *c;
    CU_ASSERT_EQUAL_FATAL(sock_closer_open(&c, fake_close), MB_OK);
    sock_closer_submit(c, (nng_socket){ .id = HANG_ID }, NULL);
    sock_closer_submit(c, (nng_socket){ .id = 2 }, NULL);
    /* the submitter is back at once; the hanging close holds the queue */
    CU_ASSERT(MB_WAIT_UNTIL(sock_closer_pending(c) == 2, 5000));
    CU_ASSERT_EQUAL(atomic_load(&g_n_closed), 0);
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(sock_closer_close(c, 200), MB_ETIMEDOUT);
    long long waited = mb_test_now_ms() - t0;
    CU_ASSERT(waited >= 190 && waited < 3000);
    CU_ASSERT_EQUAL(sock_closer_stuck(), 1); /* nng_fini must be skipped */
    /* the close returns after all: the abandoned thread finishes the queue,
     * frees the closer (ASan/LSan watch that) and the count goes back */
    atomic_store(&g_release, 1);
    CU_ASSERT(MB_WAIT_UNTIL(sock_closer_stuck() == 0, 5000));
    CU_ASSERT_EQUAL(atomic_load(&g_closed[HANG_ID]), 1);
    CU_ASSERT_EQUAL(atomic_load(&g_closed[2]), 1);
}

static void test_real_nng_sockets_are_closed(void)
{
    sock_closer *c;
    CU_ASSERT_EQUAL_FATAL(sock_closer_open(&c, NULL), MB_OK);
    nng_socket s[3];
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(nng_req0_open(&s[i]), 0);
        sock_closer_submit(c, s[i], NULL);
    }
    CU_ASSERT_EQUAL(sock_closer_close(c, 5000), MB_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(nng_close(s[i]), NNG_ECLOSED); /* closed once already */
}

static CU_TestInfo closer_tests[] = {
    { "test_sockets_close_on_the_closers_thread_in_order",
      test_sockets_close_on_the_closers_thread_in_order },
    { "test_a_hung_close_blocks_neither_submitter_nor_owner",
      test_a_hung_close_blocks_neither_submitter_nor_owner },
    { "test_real_nng_sockets_are_closed", test_real_nng_sockets_are_closed },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "closer", NULL, NULL, NULL, NULL, closer_tests },
        CU_SUITE_INFO_NULL,
    };
    int rc = mb_test_run(argc, argv, suites);
    nng_fini();
    return rc;
}
