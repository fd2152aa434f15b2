/* Tests of the node/core registry: register/lookup/unregister against a
 * reference model, namespaces, attributes and capability selection, wait
 * with a deadline (released by another thread's register), one-shot
 * watches with cancel, concurrency, and memory per entry. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mb_test.h"
#include "node/core/registry.h"
#include "node/core/registry_test.h"

static nc_registry *new_registry(nc_reg_ns *prod, nc_reg_ns *test)
{
    nc_registry *reg;
    CU_ASSERT_EQUAL_FATAL(nc_registry_new(&reg, 0, NULL), MB_OK);
    if (prod)
        CU_ASSERT_EQUAL_FATAL(nc_registry_namespace(reg, "prod", prod, NULL), MB_OK);
    if (test)
        CU_ASSERT_EQUAL_FATAL(nc_registry_namespace(reg, "test", test, NULL), MB_OK);
    return reg;
}

static void test_register_lookup_unregister(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    int obj;
    nc_reg_value v = { 42, &obj }, got;
    mb_error e;
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "agent-1", &got), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "agent-1", &v, NULL, 0, &e), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "agent-1", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 42);
    CU_ASSERT_PTR_EQUAL(got.ptr, &obj);
    nc_reg_value v2 = { 43, NULL };
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "agent-1", &v2, NULL, 0, &e), MB_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "agent-1"));
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "agent-1", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 42);
    CU_ASSERT_EQUAL(nc_registry_count(reg, 0), 1);
    CU_ASSERT_EQUAL(nc_registry_unregister(reg, ns, "agent-1", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 42);
    CU_ASSERT_EQUAL(nc_registry_unregister(reg, ns, "agent-1", &got), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "agent-1", NULL), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "agent-1", &v2, NULL, 0, &e), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "agent-1", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 43);
    nc_registry_free(reg);
}

static void test_namespaces_keep_equal_names_apart(void)
{
    nc_reg_ns prod, test, again;
    nc_registry *reg = new_registry(&prod, &test);
    CU_ASSERT_NOT_EQUAL(prod, test);
    CU_ASSERT_EQUAL(nc_registry_namespace(reg, "prod", &again, NULL), MB_OK);
    CU_ASSERT_EQUAL(again, prod);
    nc_reg_value a = { 1, NULL }, b = { 2, NULL }, got;
    CU_ASSERT_EQUAL(nc_registry_register(reg, prod, "svc", &a, NULL, 0, NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_register(reg, test, "svc", &b, NULL, 0, NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, prod, "svc", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 1);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, test, "svc", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 2);
    CU_ASSERT_EQUAL(nc_registry_count(reg, prod), 1);
    CU_ASSERT_EQUAL(nc_registry_count(reg, 0), 2);
    CU_ASSERT_EQUAL(nc_registry_unregister(reg, test, "svc", NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, prod, "svc", &got), MB_OK);
    /* Unknown namespace ids and bad names are refused. */
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, 0, "svc", &got), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, 99, "svc", &got), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_registry_register(reg, 99, "svc", &a, NULL, 0, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_registry_register(reg, prod, "", &a, NULL, 0, NULL), MB_EINVAL);
    mb_error e;
    CU_ASSERT_EQUAL(nc_registry_namespace(reg, "", &again, &e), MB_EINVAL);
    char name[16];
    int rc = MB_OK;
    for (int i = 0; i < NC_REG_NAMESPACES + 1 && rc == MB_OK; i++) {
        snprintf(name, sizeof(name), "ns%d", i);
        rc = nc_registry_namespace(reg, name, &again, &e);
    }
    CU_ASSERT_EQUAL(rc, MB_EFULL);
    nc_registry_free(reg);
}

static void test_long_names_and_limits(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    char name[NC_REG_NAME_MAX + 2];
    nc_reg_value v = { 7, NULL }, got;
    for (size_t len = 1; len <= NC_REG_NAME_MAX; len += 17) {
        memset(name, 'a' + (char)(len % 26), len);
        name[len] = '\0';
        v.id = len;
        CU_ASSERT_EQUAL(nc_registry_register(reg, ns, name, &v, NULL, 0, NULL), MB_OK);
    }
    for (size_t len = 1; len <= NC_REG_NAME_MAX; len += 17) {
        memset(name, 'a' + (char)(len % 26), len);
        name[len] = '\0';
        CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, name, &got), MB_OK);
        CU_ASSERT_EQUAL(got.id, len);
    }
    memset(name, 'z', NC_REG_NAME_MAX + 1);
    name[NC_REG_NAME_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, name, &v, NULL, 0, NULL), MB_EINVAL);
    nc_registry_free(reg);
}

/* Random register/unregister/lookup checked against a plain array. */
static void test_random_operations_match_a_reference_model(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    enum { N = 3000, OPS = 60000 };
    static bool present[N];
    memset(present, 0, sizeof(present));
    uint64_t x = 88172645463325252ULL;
    char name[48];
    int mismatches = 0;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned k = (unsigned)(x % N);
        /* Mix short inline names and long out-of-line ones. */
        snprintf(name, sizeof(name), k % 3 ? "a%u" : "a-rather-long-agent-name-%u", k);
        nc_reg_value v = { k, NULL }, got;
        switch ((x >> 32) % 3) {
        case 0: {
            int rc = nc_registry_register(reg, ns, name, &v, NULL, 0, NULL);
            mismatches += rc != (present[k] ? MB_EEXIST : MB_OK);
            present[k] = true;
            break;
        }
        case 1: {
            int rc = nc_registry_unregister(reg, ns, name, &got);
            mismatches += rc != (present[k] ? MB_OK : MB_ENOTFOUND);
            mismatches += rc == MB_OK && got.id != k;
            present[k] = false;
            break;
        }
        default: {
            int rc = nc_registry_lookup(reg, ns, name, &got);
            mismatches += rc != (present[k] ? MB_OK : MB_ENOTFOUND);
            mismatches += rc == MB_OK && got.id != k;
        }
        }
    }
    size_t expect = 0;
    for (int k = 0; k < N; k++) {
        expect += present[k];
        snprintf(name, sizeof(name), k % 3 ? "a%u" : "a-rather-long-agent-name-%u", k);
        mismatches += (nc_registry_lookup(reg, ns, name, NULL) == MB_OK) != present[k];
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT_EQUAL(nc_registry_count(reg, ns), expect);
    nc_registry_stats st;
    nc_registry_stats_get(reg, &st);
    CU_ASSERT_EQUAL(st.entries, expect);
    nc_registry_free(reg);
}

static int collect_cb(void *arg, const char *name, const nc_reg_value *v)
{
    (void)name;
    uint64_t *mask = arg;
    *mask |= 1ULL << v->id;
    return 0;
}

static int stop_cb(void *arg, const char *name, const nc_reg_value *v)
{
    (void)name;
    (void)v;
    (*(int *)arg)++;
    return 1;
}

static void test_select_by_attributes_and_capabilities(void)
{
    nc_reg_ns ns, other;
    nc_registry *reg = new_registry(&ns, &other);
    nc_reg_attr t0[] = { { "kind", "trainer" }, { "gpu", "yes" }, { "zone", "a" } };
    nc_reg_attr t1[] = { { "kind", "trainer" }, { "zone", "b" } };
    nc_reg_attr t2[] = { { "kind", "optimiser" }, { "gpu", "no" } };
    nc_reg_value v0 = { 0, NULL }, v1 = { 1, NULL }, v2 = { 2, NULL }, v3 = { 3, NULL };
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "t0", &v0, t0, 3, NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "a-long-name-for-t1-agent", &v1, t1, 2, NULL),
                    MB_OK);
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "t2", &v2, t2, 2, NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_register(reg, other, "t3", &v3, t0, 3, NULL), MB_OK);
    uint64_t mask = 0;
    nc_reg_attr q1[] = { { "kind", "trainer" } };
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, q1, 1, collect_cb, &mask), 2);
    CU_ASSERT_EQUAL(mask, 0x3);
    mask = 0;
    nc_reg_attr q2[] = { { "gpu", NULL } }; /* capability: has the key */
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, q2, 1, collect_cb, &mask), 2);
    CU_ASSERT_EQUAL(mask, 0x5);
    mask = 0;
    nc_reg_attr q3[] = { { "kind", "trainer" }, { "gpu", NULL }, { "zone", "a" } };
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, q3, 3, collect_cb, &mask), 1);
    CU_ASSERT_EQUAL(mask, 0x1);
    nc_reg_attr q4[] = { { "kind", "nobody" } };
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, q4, 1, collect_cb, &mask), 0);
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, NULL, 0, NULL, NULL), 3);
    int calls = 0;
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, NULL, 0, stop_cb, &calls), 1);
    CU_ASSERT_EQUAL(calls, 1);
    char buf[16];
    CU_ASSERT_EQUAL(nc_registry_attr(reg, ns, "a-long-name-for-t1-agent", "zone", buf, 16), MB_OK);
    CU_ASSERT_STRING_EQUAL(buf, "b");
    CU_ASSERT_EQUAL(nc_registry_attr(reg, ns, "t0", "kind", buf, 4), MB_ETOOBIG);
    CU_ASSERT_EQUAL(nc_registry_attr(reg, ns, "t0", "nope", buf, 16), MB_ENOTFOUND);
    nc_reg_attr dup[] = { { "k", "1" }, { "k", "2" } };
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "d", &v0, dup, 2, NULL), MB_EINVAL);
    nc_reg_attr noval[] = { { "k", NULL } };
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "d", &v0, noval, 1, NULL), MB_EINVAL);
    /* Unregistering frees the attributes (checked by ASan) and hides them. */
    CU_ASSERT_EQUAL(nc_registry_unregister(reg, ns, "t0", NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_select(reg, ns, q2, 1, NULL, NULL), 1);
    nc_registry_free(reg);
}

struct wait_arg {
    nc_registry *reg;
    nc_reg_ns ns;
    const char *name;
    int64_t timeout_ms;
    int rc;
    nc_reg_value got;
};

static void *wait_main(void *p)
{
    struct wait_arg *w = p;
    w->rc = nc_registry_wait(w->reg, w->ns, w->name, w->timeout_ms, &w->got);
    return NULL;
}

static size_t pending_of(nc_registry *reg)
{
    nc_registry_stats st;
    nc_registry_stats_get(reg, &st);
    return st.pending;
}

static void test_wait_is_released_by_register_from_another_thread(void)
{
    nc_reg_ns ns, test;
    nc_registry *reg = new_registry(&ns, &test);
    struct wait_arg w = { reg, ns, "late-service", 10000, -1, { 0, NULL } };
    pthread_t t;
    pthread_create(&t, NULL, wait_main, &w);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(pending_of(reg) == 1, 5000));
    /* The same name in another namespace does not release it. */
    nc_reg_value decoy = { 1, NULL }, v = { 77, &w };
    CU_ASSERT_EQUAL(nc_registry_register(reg, test, "late-service", &decoy, NULL, 0, NULL), MB_OK);
    CU_ASSERT_EQUAL(pending_of(reg), 1);
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "late-service", &v, NULL, 0, NULL), MB_OK);
    pthread_join(t, NULL);
    CU_ASSERT(mb_test_now_ms() - t0 < 5000);
    CU_ASSERT_EQUAL(w.rc, MB_OK);
    CU_ASSERT_EQUAL(w.got.id, 77);
    CU_ASSERT_PTR_EQUAL(w.got.ptr, &w);
    CU_ASSERT_EQUAL(pending_of(reg), 0);
    /* Already registered: returns at once. */
    nc_reg_value got;
    CU_ASSERT_EQUAL(nc_registry_wait(reg, ns, "late-service", 0, &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 77);
    nc_registry_free(reg);
}

static void test_wait_times_out_after_its_deadline(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(nc_registry_wait(reg, ns, "never", 25, NULL), MB_ETIMEDOUT);
    long long dt = mb_test_now_ms() - t0;
    CU_ASSERT(dt >= 24 && dt < 5000);
    CU_ASSERT_EQUAL(pending_of(reg), 0);
    /* A register after the timeout must not touch the gone waiter. */
    nc_reg_value v = { 1, NULL };
    CU_ASSERT_EQUAL(nc_registry_register(reg, ns, "never", &v, NULL, 0, NULL), MB_OK);
    nc_registry_free(reg);
}

struct watch_rec {
    _Atomic int calls;
    uint64_t id;
    char name[64];
    nc_registry *reg;
    nc_reg_ns ns;
};

static void watch_cb(void *arg, nc_reg_ns ns, const char *name, const nc_reg_value *v)
{
    (void)ns;
    struct watch_rec *r = arg;
    r->id = v->id;
    snprintf(r->name, sizeof(r->name), "%s", name);
    atomic_fetch_add(&r->calls, 1);
    if (r->reg != NULL) {
        /* The callback may use the registry. */
        nc_reg_value chained = { v->id + 1, NULL };
        CU_ASSERT_EQUAL(nc_registry_register(r->reg, r->ns, "chained", &chained, NULL, 0, NULL),
                        MB_OK);
    }
}

static void *register_main(void *p)
{
    struct wait_arg *w = p;
    nc_reg_value v = { 5, NULL };
    w->rc = nc_registry_register(w->reg, w->ns, w->name, &v, NULL, 0, NULL);
    return NULL;
}

static void test_watch_fires_once_and_cancel_prevents_it(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    struct watch_rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
    uint64_t id1, id2, id3;
    r1.reg = reg;
    r1.ns = ns;
    CU_ASSERT_EQUAL(nc_registry_watch(reg, ns, "svc", watch_cb, &r1, &id1), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_watch(reg, ns, "svc", watch_cb, &r2, &id2), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_watch(reg, ns, "svc-other", watch_cb, &r3, &id3), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_watch_cancel(reg, id2), MB_OK);
    CU_ASSERT_EQUAL(atomic_load(&r1.calls), 0);
    struct wait_arg w = { reg, ns, "svc", 0, -1, { 0, NULL } };
    pthread_t t;
    pthread_create(&t, NULL, register_main, &w);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(w.rc, MB_OK);
    CU_ASSERT_EQUAL(atomic_load(&r1.calls), 1);
    CU_ASSERT_EQUAL(r1.id, 5);
    CU_ASSERT_STRING_EQUAL(r1.name, "svc");
    CU_ASSERT_EQUAL(atomic_load(&r2.calls), 0);
    CU_ASSERT_EQUAL(atomic_load(&r3.calls), 0);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "chained", NULL), MB_OK);
    CU_ASSERT_EQUAL(nc_registry_watch_cancel(reg, id1), MB_ENOTFOUND);
    /* Unregister and register again: a fired watch stays fired. */
    nc_registry_unregister(reg, ns, "svc", NULL);
    nc_reg_value v = { 6, NULL };
    nc_registry_register(reg, ns, "svc", &v, NULL, 0, NULL);
    CU_ASSERT_EQUAL(atomic_load(&r1.calls), 1);
    /* A watch on a present name fires synchronously. */
    struct watch_rec r4 = { 0 };
    CU_ASSERT_EQUAL(nc_registry_watch(reg, ns, "svc", watch_cb, &r4, NULL), MB_OK);
    CU_ASSERT_EQUAL(atomic_load(&r4.calls), 1);
    CU_ASSERT_EQUAL(r4.id, 6);
    /* Pending watches are dropped by free without a call. */
    nc_registry_free(reg);
    CU_ASSERT_EQUAL(atomic_load(&r3.calls), 0);
}

#define THREADS    4
#define PER_THREAD 5000

struct churn_arg {
    nc_registry *reg;
    nc_reg_ns ns;
    int id;
    int errors;
};

static void *churn_main(void *p)
{
    struct churn_arg *c = p;
    char name[32];
    /* Round 0 registers every name and removes the even ones; round 1
     * registers the even ones again and removes them again. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < PER_THREAD; i += 1 + round) {
            snprintf(name, sizeof(name), "t%d-%d", c->id, i);
            nc_reg_value v = { (uint64_t)(c->id * PER_THREAD + i), NULL };
            c->errors += nc_registry_register(c->reg, c->ns, name, &v, NULL, 0, NULL) != MB_OK;
            /* Shared names are read by everyone all the time. */
            snprintf(name, sizeof(name), "shared-%d", i % 64);
            nc_reg_value got;
            c->errors += nc_registry_lookup(c->reg, c->ns, name, &got) != MB_OK ||
                         got.id != (uint64_t)(i % 64);
        }
        for (int i = 0; i < PER_THREAD; i += 2) {
            snprintf(name, sizeof(name), "t%d-%d", c->id, i);
            nc_reg_value got;
            c->errors += nc_registry_unregister(c->reg, c->ns, name, &got) != MB_OK ||
                         got.id != (uint64_t)(c->id * PER_THREAD + i);
        }
    }
    return NULL;
}

static void test_concurrent_register_lookup_unregister(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    char name[32];
    for (int i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "shared-%d", i);
        nc_reg_value v = { (uint64_t)i, NULL };
        nc_registry_register(reg, ns, name, &v, NULL, 0, NULL);
    }
    /* Waiters released by the churning threads. */
    struct wait_arg w[2] = { { reg, ns, "t1-4999", 20000, -1, { 0, NULL } },
                             { reg, ns, "t3-17", 20000, -1, { 0, NULL } } };
    pthread_t wt[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&wt[i], NULL, wait_main, &w[i]);
    pthread_t t[THREADS];
    struct churn_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct churn_arg){ reg, ns, i, 0 };
        pthread_create(&t[i], NULL, churn_main, &args[i]);
    }
    int errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        errors += args[i].errors;
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(wt[i], NULL);
        CU_ASSERT_EQUAL(w[i].rc, MB_OK);
    }
    CU_ASSERT_EQUAL(errors, 0);
    /* The odd names stay. */
    CU_ASSERT_EQUAL(nc_registry_count(reg, ns), 64 + THREADS * (PER_THREAD / 2));
    nc_registry_free(reg);
}

struct reader_arg {
    nc_registry *reg;
    nc_reg_ns ns;
    _Atomic int *stop;
    long reads, errors;
};

static void *stable_reader_main(void *p)
{
    struct reader_arg *r = p;
    char name[32];
    /* Bounded: stops when the writers are done, or after 50M reads. */
    while (!atomic_load(r->stop) && r->reads < 50000000) {
        for (int i = 0; i < 64; i++, r->reads++) {
            snprintf(name, sizeof(name), i % 2 ? "stable-%d" : "stable-name-long-%d", i);
            nc_reg_value got;
            if (nc_registry_lookup(r->reg, r->ns, name, &got) != MB_OK || got.id != (uint64_t)i)
                r->errors++;
        }
    }
    return NULL;
}

static void *growing_writer_main(void *p)
{
    struct churn_arg *c = p;
    char name[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 12000; i++) {
            snprintf(name, sizeof(name), "w%d-%d", c->id, i);
            nc_reg_value v = { (uint64_t)i, NULL };
            c->errors += nc_registry_register(c->reg, c->ns, name, &v, NULL, 0, NULL) != MB_OK;
        }
        for (int i = 0; i < 12000; i++) {
            snprintf(name, sizeof(name), "w%d-%d", c->id, i);
            c->errors += nc_registry_unregister(c->reg, c->ns, name, NULL) != MB_OK;
        }
    }
    return NULL;
}

/* Lock-free lookups race with table growth (a new table replaces the old)
 * and with backward-shift deletions that move entries: a present name must
 * never be reported missing or with a wrong value. */
static void test_lookups_stay_exact_during_growth_and_removals(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    char name[32];
    for (int i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), i % 2 ? "stable-%d" : "stable-name-long-%d", i);
        nc_reg_value v = { (uint64_t)i, NULL };
        CU_ASSERT_EQUAL_FATAL(nc_registry_register(reg, ns, name, &v, NULL, 0, NULL), MB_OK);
    }
    _Atomic int stop;
    atomic_init(&stop, 0);
    struct reader_arg readers[2] = { { reg, ns, &stop, 0, 0 }, { reg, ns, &stop, 0, 0 } };
    struct churn_arg writers[2] = { { reg, ns, 0, 0 }, { reg, ns, 1, 0 } };
    pthread_t rt[2], wt[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&rt[i], NULL, stable_reader_main, &readers[i]);
        pthread_create(&wt[i], NULL, growing_writer_main, &writers[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(rt[i], NULL);
    CU_ASSERT_EQUAL(writers[0].errors + writers[1].errors, 0);
    CU_ASSERT_EQUAL(readers[0].errors + readers[1].errors, 0);
    CU_ASSERT(readers[0].reads > 0 && readers[1].reads > 0);
    CU_ASSERT_EQUAL(nc_registry_count(reg, ns), 64);
    nc_registry_free(reg);
}

struct grow_hook {
    nc_registry *reg;
    nc_reg_ns ns;
    int fired;
};

/* Runs inside a lock-free lookup once: registers enough names that every
 * shard grows, so the table the lookup already holds is retired. */
static void grow_every_shard_hook(void *arg)
{
    struct grow_hook *g = arg;
    if (g->fired++)
        return;
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "filler-%d", i);
        nc_reg_value v = { 0, NULL };
        nc_registry_register(g->reg, g->ns, name, &v, NULL, 0, NULL);
    }
}

static void test_lookup_retries_when_the_table_is_replaced_underneath(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    nc_reg_value v = { 99, NULL }, got = { 0, NULL };
    CU_ASSERT_EQUAL_FATAL(nc_registry_register(reg, ns, "probe", &v, NULL, 0, NULL), MB_OK);
    struct grow_hook g = { reg, ns, 0 };
    nc_registry_set_test_hook_(reg, grow_every_shard_hook, &g);
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, "probe", &got), MB_OK);
    CU_ASSERT_EQUAL(got.id, 99);
    CU_ASSERT(g.fired >= 2); /* the first attempt was retried */
    nc_registry_set_test_hook_(reg, NULL, NULL);
    CU_ASSERT_EQUAL(nc_registry_count(reg, ns), 5001);
    nc_registry_free(reg);
}

static void test_memory_per_short_entry_is_small(void)
{
    nc_reg_ns ns;
    nc_registry *reg;
    CU_ASSERT_EQUAL_FATAL(nc_registry_new(&reg, 0, NULL), MB_OK);
    nc_registry_namespace(reg, "agents", &ns, NULL);
    char name[32];
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "agent-%d", i);
        nc_reg_value v = { (uint64_t)i, NULL };
        nc_registry_register(reg, ns, name, &v, NULL, 0, NULL);
    }
    nc_registry_stats st;
    nc_registry_stats_get(reg, &st);
    CU_ASSERT_EQUAL(st.entries, N);
    double per = (double)(st.bytes_table + st.bytes_heap) / N;
    CU_ASSERT(per < 150);
    nc_registry_free(reg);
}

/* Lookup finds a short name's length with one 16-byte read when that read
 * stays inside the name's page. Names ending just before an inaccessible
 * page must still be found (no read crosses into it), and the bytes after
 * the terminating NUL must not take part in the comparison. */
static void test_lookup_reads_names_at_page_ends_and_ignores_bytes_after_nul(void)
{
    nc_reg_ns ns;
    nc_registry *reg = new_registry(&ns, NULL);
    long page = sysconf(_SC_PAGESIZE);
    char *map =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(map != MAP_FAILED);
    CU_ASSERT_EQUAL_FATAL(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    char name[40];
    for (size_t len = 1; len <= 33; len++) {
        for (size_t i = 0; i < len; i++)
            name[i] = (char)('a' + (i * 7 + len) % 26);
        name[len] = '\0';
        nc_reg_value v = { len, NULL }, got = { 0, NULL };
        CU_ASSERT_EQUAL_FATAL(nc_registry_register(reg, ns, name, &v, NULL, 0, NULL), MB_OK);
        /* The NUL is the last accessible byte. */
        char *at_end = map + page - (len + 1);
        memcpy(at_end, name, len + 1);
        CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, at_end, &got), MB_OK);
        CU_ASSERT_EQUAL(got.id, len);
        /* Junk after the NUL, in the same 16 bytes. */
        char junk[64];
        memset(junk, 'z', sizeof(junk));
        memcpy(junk, name, len + 1);
        got.id = 0;
        CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, junk, &got), MB_OK);
        CU_ASSERT_EQUAL(got.id, len);
        /* Its one-byte-shorter prefix is not registered (the names of
         * different lengths differ in their first byte). */
        if (len > 1) {
            junk[len - 1] = '\0';
            CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, junk, NULL), MB_ENOTFOUND);
        }
    }
    /* The empty name at a page end is refused, not read past. */
    map[page - 1] = '\0';
    CU_ASSERT_EQUAL(nc_registry_lookup(reg, ns, map + page - 1, NULL), MB_EINVAL);
    munmap(map, (size_t)page * 2);
    nc_registry_free(reg);
}

static CU_TestInfo registry_tests[] = {
    { "register_lookup_unregister", test_register_lookup_unregister },
    { "namespaces_keep_equal_names_apart", test_namespaces_keep_equal_names_apart },
    { "long_names_and_limits", test_long_names_and_limits },
    { "random_operations_match_a_reference_model", test_random_operations_match_a_reference_model },
    { "select_by_attributes_and_capabilities", test_select_by_attributes_and_capabilities },
    { "wait_is_released_by_register_from_another_thread",
      test_wait_is_released_by_register_from_another_thread },
    { "wait_times_out_after_its_deadline", test_wait_times_out_after_its_deadline },
    { "watch_fires_once_and_cancel_prevents_it", test_watch_fires_once_and_cancel_prevents_it },
    { "concurrent_register_lookup_unregister", test_concurrent_register_lookup_unregister },
    { "lookups_stay_exact_during_growth_and_removals",
      test_lookups_stay_exact_during_growth_and_removals },
    { "lookup_retries_when_the_table_is_replaced_underneath",
      test_lookup_retries_when_the_table_is_replaced_underneath },
    { "memory_per_short_entry_is_small", test_memory_per_short_entry_is_small },
    { "lookup_reads_names_at_page_ends_and_ignores_bytes_after_nul",
      test_lookup_reads_names_at_page_ends_and_ignores_bytes_after_nul },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "registry", NULL, NULL, NULL, NULL, registry_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
