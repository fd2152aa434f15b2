/* Unit tests of the partition suite's checkers: known non-linearizable and
 * linearizable register histories, the budget, the parser, and the further
 * checks (lost writes, checkpoint versions, event-log agreement). */
#include "lincheck.h"
#include "mb_test.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Build a history from JSON lines; asserts they parse. */
static void build(lc_history *h, const char *lines)
{
    char err[256] = "";
    lc_history_init(h);
    int rc = lc_parse_history(lines, strlen(lines), h, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "parse: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
}

/* The verdict for `var` in the history text (budget 10 s). */
static lc_verdict verdict_of(const char *lines, const char *var)
{
    lc_history h;
    lc_limits lim = { .budget_ms = 10000, .max_memo_bytes = (size_t)256 << 20 };
    lc_var_result *res = NULL;
    size_t n = 0;
    lc_verdict v = LC_BUDGET;
    int found = 0;
    build(&h, lines);
    CU_ASSERT_FATAL(lc_check(&h, &lim, &res, &n) == 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(res[i].var, var) == 0) {
            v = res[i].verdict;
            found = 1;
        }
        lc_var_result_close(&res[i]);
    }
    free(res);
    lc_history_close(&h);
    CU_ASSERT(found);
    return v;
}

#define SET(p, var, v, t0, t1)                                                                     \
    "{\"process\":" #p ",\"op\":\"set\",\"var\":\"" var "\",\"value\":" #v ",\"invoke_ns\":" #t0   \
    ",\"complete_ns\":" #t1 ",\"outcome\":\"ok\"}\n"
#define SETU(p, var, v, t0)                                                                        \
    "{\"process\":" #p ",\"op\":\"set\",\"var\":\"" var "\",\"value\":" #v ",\"invoke_ns\":" #t0   \
    ",\"outcome\":\"unknown\",\"error\":\"MB_EUNKNOWN\"}\n"
#define SETF(p, var, v, t0, t1)                                                                    \
    "{\"process\":" #p ",\"op\":\"set\",\"var\":\"" var "\",\"value\":" #v ",\"invoke_ns\":" #t0   \
    ",\"complete_ns\":" #t1 ",\"outcome\":\"fail\",\"error\":\"MB_ENOQUORUM\"}\n"
#define GET(p, var, r, t0, t1)                                                                     \
    "{\"process\":" #p ",\"op\":\"get\",\"var\":\"" var "\",\"result\":" #r ",\"invoke_ns\":" #t0  \
    ",\"complete_ns\":" #t1 ",\"outcome\":\"ok\"}\n"
#define CASV(p, var, ev, v, t0, t1, out)                                                           \
    "{\"process\":" #p ",\"op\":\"cas\",\"var\":\"" var "\",\"expected_version\":" #ev             \
    ",\"value\":" #v ",\"invoke_ns\":" #t0 ",\"complete_ns\":" #t1 ",\"outcome\":\"" out "\"}\n"
#define CASX(p, var, e, v, t0, t1, out, err)                                                       \
    "{\"process\":" #p ",\"op\":\"cas\",\"var\":\"" var "\",\"expected\":" #e ",\"value\":" #v     \
    ",\"invoke_ns\":" #t0 ",\"complete_ns\":" #t1 ",\"outcome\":\"" out "\",\"error\":\"" err      \
    "\"}\n"

static void test_sequential_history_is_linearizable(void)
{
    CU_ASSERT_EQUAL(verdict_of(GET(1, "x", null, 0, 5) SET(1, "x", 1, 10, 20) GET(2, "x", 1, 30, 40)
                                   SET(2, "x", 2, 50, 60) GET(1, "x", 2, 70, 80),
                               "x"),
                    LC_LINEARIZABLE);
}

static void test_stale_read_after_completed_write_is_violation(void)
{
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 10) SET(1, "x", 2, 20, 30) GET(2, "x", 1, 40, 50), "x"),
        LC_VIOLATION);
}

static void test_lost_acknowledged_write_is_violation(void)
{
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) GET(2, "x", null, 20, 30), "x"), LC_VIOLATION);
}

static void test_cas_succeeding_twice_from_same_version_is_violation(void)
{
    const char *h =
        SET(1, "x", 1, 0, 10) CASV(2, "x", 1, 2, 20, 40, "ok") CASV(3, "x", 1, 3, 25, 45, "ok");
    CU_ASSERT_EQUAL(verdict_of(h, "x"), LC_VIOLATION);
    /* Control: one of them failing with a conflict is fine. */
    const char *ok =
        SET(1, "x", 1, 0, 10) CASV(2, "x", 1, 2, 20, 40, "ok") CASV(3, "x", 1, 3, 25, 45, "fail");
    CU_ASSERT_EQUAL(verdict_of(ok, "x"), LC_LINEARIZABLE);
}

static void test_read_of_never_written_value_is_violation(void)
{
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) GET(2, "x", 99, 5, 30), "x"), LC_VIOLATION);
}

static void test_read_of_failed_write_is_violation(void)
{
    /* ENOQUORUM means definitely not applied: nobody may read it. */
    CU_ASSERT_EQUAL(verdict_of(SETF(1, "x", 7, 0, 10) GET(2, "x", 7, 20, 30), "x"), LC_VIOLATION);
}

static void test_reads_concurrent_with_write_may_see_old_then_new(void)
{
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 100) GET(2, "x", null, 10, 20)
                                   GET(3, "x", 1, 30, 40) GET(2, "x", 1, 50, 60),
                               "x"),
                    LC_LINEARIZABLE);
}

static void test_new_then_old_read_during_write_is_violation(void)
{
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 100) GET(2, "x", 1, 10, 20) GET(3, "x", null, 30, 40), "x"),
        LC_VIOLATION);
}

static void test_touching_intervals_count_as_concurrent(void)
{
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) GET(2, "x", null, 10, 20), "x"),
                    LC_LINEARIZABLE);
}

static void test_unknown_write_may_or_may_not_take_effect(void)
{
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 10) SETU(2, "x", 2, 20) GET(3, "x", 2, 1000, 1010), "x"),
        LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 10) SETU(2, "x", 2, 20) GET(3, "x", 1, 1000, 1010), "x"),
        LC_LINEARIZABLE);
    /* But once it has been seen, it cannot un-happen. */
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) SETU(2, "x", 2, 20) GET(3, "x", 2, 1000, 1010)
                                   GET(3, "x", 1, 1100, 1110),
                               "x"),
                    LC_VIOLATION);
    /* And it cannot take effect before it was invoked. */
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 10) GET(3, "x", 2, 12, 15) SETU(2, "x", 2, 20), "x"),
        LC_VIOLATION);
}

static void test_conflicting_cas_must_have_seen_another_state(void)
{
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 10) CASX(2, "x", 1, 5, 20, 30, "fail", "MB_ECONFLICT"), "x"),
        LC_VIOLATION);
    /* A cas refused for lack of quorum observed nothing. */
    CU_ASSERT_EQUAL(
        verdict_of(SET(1, "x", 1, 0, 10) CASX(2, "x", 1, 5, 20, 30, "fail", "MB_ENOQUORUM"), "x"),
        LC_LINEARIZABLE);
    /* A conflict is fine when a concurrent write changed the value. */
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) SET(3, "x", 4, 15, 35)
                                   CASX(2, "x", 1, 5, 20, 30, "fail", "MB_ECONFLICT"),
                               "x"),
                    LC_LINEARIZABLE);
}

static void test_cas_by_value_applies_only_on_match(void)
{
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) CASX(2, "x", 1, 5, 20, 30, "ok", "")
                                   GET(1, "x", 5, 40, 50),
                               "x"),
                    LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(verdict_of(SET(1, "x", 1, 0, 10) CASX(2, "x", 3, 5, 20, 30, "ok", ""), "x"),
                    LC_VIOLATION);
}

static void test_read_version_must_be_the_last_writes_version(void)
{
    const char *ok = "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":1,\"invoke_ns\":0,"
                     "\"complete_ns\":10,\"outcome\":\"ok\",\"version\":1}\n"
                     "{\"process\":2,\"op\":\"get\",\"var\":\"x\",\"result\":1,\"version\":1,"
                     "\"invoke_ns\":20,\"complete_ns\":30,\"outcome\":\"ok\"}\n";
    const char *bad = "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":1,\"invoke_ns\":0,"
                      "\"complete_ns\":10,\"outcome\":\"ok\",\"version\":1}\n"
                      "{\"process\":2,\"op\":\"get\",\"var\":\"x\",\"result\":1,\"version\":3,"
                      "\"invoke_ns\":20,\"complete_ns\":30,\"outcome\":\"ok\"}\n";
    CU_ASSERT_EQUAL(verdict_of(ok, "x"), LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(verdict_of(bad, "x"), LC_VIOLATION);
}

/* Versioned ops of the index-version model (versions are raft indexes). */
#define SETV(p, var, v, ver, t0, t1)                                                               \
    "{\"process\":" #p ",\"op\":\"set\",\"var\":\"" var "\",\"value\":" #v ",\"version\":" #ver    \
    ",\"invoke_ns\":" #t0 ",\"complete_ns\":" #t1 ",\"outcome\":\"ok\"}\n"
#define GETV(p, var, r, ver, t0, t1)                                                               \
    "{\"process\":" #p ",\"op\":\"get\",\"var\":\"" var "\",\"result\":" #r ",\"version\":" #ver   \
    ",\"invoke_ns\":" #t0 ",\"complete_ns\":" #t1 ",\"outcome\":\"ok\"}\n"
#define CASVV(p, var, ev, v, ver, t0, t1)                                                          \
    "{\"process\":" #p ",\"op\":\"cas\",\"var\":\"" var "\",\"expected_version\":" #ev             \
    ",\"value\":" #v ",\"version\":" #ver ",\"invoke_ns\":" #t0 ",\"complete_ns\":" #t1            \
    ",\"outcome\":\"ok\"}\n"
#define CASVU(p, var, ev, v, t0)                                                                   \
    "{\"process\":" #p ",\"op\":\"cas\",\"var\":\"" var "\",\"expected_version\":" #ev             \
    ",\"value\":" #v ",\"invoke_ns\":" #t0 ",\"outcome\":\"unknown\",\"error\":\"timeout\"}\n"
#define CASVF(p, var, ev, v, t0, t1)                                                               \
    "{\"process\":" #p ",\"op\":\"cas\",\"var\":\"" var "\",\"expected_version\":" #ev             \
    ",\"value\":" #v ",\"invoke_ns\":" #t0 ",\"complete_ns\":" #t1                                 \
    ",\"outcome\":\"fail\",\"error\":\"MB_ECONFLICT\"}\n"

static void test_versions_are_increasing_indexes_with_gaps(void)
{
    /* Raft indexes skip the entries of other variables: gaps are normal. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) CASVV(2, "x", 5, 2, 9, 20, 30)
                                   GETV(3, "x", 2, 9, 40, 50) SETV(1, "x", 3, 40, 60, 70)
                                       GETV(2, "x", 3, 40, 80, 90),
                               "x"),
                    LC_LINEARIZABLE);
}

static void test_write_version_going_backwards_is_violation(void)
{
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 10, 0, 10) SETV(2, "x", 2, 7, 20, 30), "x"),
                    LC_VIOLATION);
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 10, 0, 10) SETV(2, "x", 2, 10, 20, 30), "x"),
                    LC_VIOLATION);
    /* Concurrent writes: the order of their indexes is the order they took. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 10, 0, 30) SETV(2, "x", 2, 7, 5, 35)
                                   GETV(3, "x", 1, 10, 40, 50),
                               "x"),
                    LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 10, 0, 30) SETV(2, "x", 2, 7, 5, 35)
                                   GETV(3, "x", 2, 7, 40, 50),
                               "x"),
                    LC_VIOLATION);
}

static void test_cas_on_a_version_that_is_no_longer_current_is_violation(void)
{
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETV(1, "x", 2, 8, 20, 30)
                                   CASVV(2, "x", 5, 3, 12, 40, 50),
                               "x"),
                    LC_VIOLATION);
    /* The same cas concurrent with the second write may come before it. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETV(1, "x", 2, 14, 20, 30)
                                   CASVV(2, "x", 5, 3, 12, 25, 50) GETV(3, "x", 2, 14, 60, 70),
                               "x"),
                    LC_LINEARIZABLE);
    /* A conflict on the current version is a violation. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) CASVF(2, "x", 5, 3, 20, 30), "x"),
                    LC_VIOLATION);
}

static void test_unknown_write_leaves_a_version_only_known_to_be_larger(void)
{
    /* The unknown write took effect at some index above 5; a read then tells
     * which, and a cas on that index succeeds. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETU(2, "x", 2, 20) GETV(
                                   3, "x", 2, 12, 1000, 1010) CASVV(3, "x", 12, 3, 15, 1100, 1110),
                               "x"),
                    LC_LINEARIZABLE);
    /* Without the read, a cas may guess the unknown index... */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETU(2, "x", 2, 20) CASVV(
                                   3, "x", 7, 3, 9, 1100, 1110) GETV(1, "x", 3, 9, 1200, 1210),
                               "x"),
                    LC_LINEARIZABLE);
    /* ...and a conflict tells nothing about it. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETU(2, "x", 2, 20)
                                   GETV(3, "x", 2, 12, 1000, 1010) CASVF(3, "x", 6, 3, 1100, 1110),
                               "x"),
                    LC_LINEARIZABLE);
    /* But its index cannot be below the one it replaced... */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETU(2, "x", 2, 20)
                                   GETV(3, "x", 2, 4, 1000, 1010),
                               "x"),
                    LC_VIOLATION);
    /* ...nor can a cas on the old version succeed once it is seen. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETU(2, "x", 2, 20)
                                   GET(3, "x", 2, 1000, 1010) CASVV(3, "x", 5, 3, 15, 1100, 1110),
                               "x"),
                    LC_VIOLATION);
    /* Once read, the index is known: a later read of another is a violation. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETU(2, "x", 2, 20)
                                   GETV(3, "x", 2, 12, 1000, 1010) GETV(3, "x", 2, 13, 1100, 1110),
                               "x"),
                    LC_VIOLATION);
}

static void test_unknown_cas_may_apply_on_a_guessed_version(void)
{
    /* An unknown cas expecting the current version: applied or not. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) CASVU(2, "x", 5, 2, 20)
                                   GET(3, "x", 2, 1000, 1010),
                               "x"),
                    LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) CASVU(2, "x", 5, 2, 20)
                                   GETV(3, "x", 1, 5, 1000, 1010),
                               "x"),
                    LC_LINEARIZABLE);
    /* An unknown cas expecting a stale version can never apply. */
    CU_ASSERT_EQUAL(verdict_of(SETV(1, "x", 1, 5, 0, 10) SETV(1, "x", 2, 8, 20, 30)
                                   CASVU(2, "x", 5, 3, 40) GET(3, "x", 3, 1000, 1010),
                               "x"),
                    LC_VIOLATION);
}

static void test_init_record_sets_the_initial_state(void)
{
    const char *init = "{\"op\":\"init\",\"var\":\"x\",\"value\":0,\"version\":1}\n";
    char with[512], without[512];
    snprintf(with, sizeof with, "%s%s", init,
             GET(1, "x", 0, 0, 5) CASV(2, "x", 1, 3, 10, 20, "ok") GET(1, "x", 3, 30, 40));
    snprintf(without, sizeof without, "%s",
             GET(1, "x", 0, 0, 5) CASV(2, "x", 1, 3, 10, 20, "ok") GET(1, "x", 3, 30, 40));
    CU_ASSERT_EQUAL(verdict_of(with, "x"), LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(verdict_of(without, "x"), LC_VIOLATION);
}

static void test_variables_are_checked_independently(void)
{
    const char *h =
        SET(1, "x", 1, 0, 10) SET(1, "y", 1, 0, 10) GET(2, "y", 2, 20, 30) GET(2, "x", 1, 20, 30);
    CU_ASSERT_EQUAL(verdict_of(h, "x"), LC_LINEARIZABLE);
    CU_ASSERT_EQUAL(verdict_of(h, "y"), LC_VIOLATION);
}

static void test_violation_reports_a_window_with_the_blocked_op(void)
{
    lc_history h;
    lc_limits lim = { .budget_ms = 10000 };
    lc_var_result *res = NULL;
    size_t n = 0;
    build(&h, SET(1, "x", 1, 0, 10) SET(1, "x", 2, 20, 30) GET(2, "x", 1, 40, 50));
    CU_ASSERT_FATAL(lc_check(&h, &lim, &res, &n) == 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL_FATAL(res[0].verdict, LC_VIOLATION);
    CU_ASSERT_FATAL(res[0].window != NULL);
    CU_ASSERT_EQUAL(res[0].blocked_op, 2);
    CU_ASSERT(res[0].window_len >= 2 && res[0].window_len <= 3);
    CU_ASSERT_EQUAL(res[0].window[0], 2);
    lc_var_result_close(&res[0]);
    free(res);
    lc_history_close(&h);
}

/* Many fully concurrent writes and an impossible read: exponential search,
 * which must stop at the budget instead of hanging. */
static void test_search_gives_up_when_budget_is_exhausted(void)
{
    lc_history h;
    lc_history_init(&h);
    for (int i = 0; i < 60; i++) {
        lc_op op = { .process = i,
                     .kind = LC_SET,
                     .value = i + 1,
                     .invoke_ns = i,
                     .complete_ns = 1000,
                     .outcome = LC_OK };
        strcpy(op.var, "x");
        CU_ASSERT_FATAL(lc_history_add(&h, &op) == 0);
    }
    for (int i = 0; i < 60; i++) {
        lc_op op = { .process = 100 + i,
                     .kind = LC_GET,
                     .result = -5,
                     .invoke_ns = 10 + i,
                     .complete_ns = 2000 + i,
                     .outcome = LC_OK };
        strcpy(op.var, "x");
        CU_ASSERT_FATAL(lc_history_add(&h, &op) == 0);
    }
    lc_limits lim = { .budget_ms = 200, .max_memo_bytes = (size_t)64 << 20 };
    lc_var_result *res = NULL;
    size_t n = 0;
    long long t0 = mb_test_now_ms();
    CU_ASSERT_FATAL(lc_check(&h, &lim, &res, &n) == 0);
    CU_ASSERT(mb_test_now_ms() - t0 < 5000);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(res[0].verdict, LC_BUDGET);
    lc_var_result_close(&res[0]);
    free(res);
    lc_history_close(&h);
}

/* A random concurrent history produced by a real register (each op takes
 * effect at a point inside its interval) is linearizable; corrupting one
 * read makes it a violation. */
static void random_history(lc_history *h, unsigned seed, int corrupt)
{
    uint64_t s = seed * 2654435761u + 1;
#define RND() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
    lc_history_init(h);
    int has = 0;
    int64_t value = 0;
    uint64_t version = 0;
    int64_t t = 0;
    int64_t busy_until[6] = { 0 };
    for (int i = 0; i < 3000; i++) {
        int p = (int)(RND() % 6);
        t += 1 + (int64_t)(RND() % 5);
        lc_op op = { .process = p };
        strcpy(op.var, (RND() & 1) ? "a" : "b");
        if (op.var[0] == 'b')
            continue; /* keep one register's state simple: only "a" */
        if (busy_until[p] > t)
            continue;
        op.invoke_ns = t - (int64_t)(RND() % 8);
        if (op.invoke_ns < busy_until[p])
            op.invoke_ns = busy_until[p];
        op.complete_ns = t + (int64_t)(RND() % 8);
        busy_until[p] = op.complete_ns + 1;
        op.outcome = LC_OK;
        switch (RND() % 3) {
        case 0:
            op.kind = LC_SET;
            op.value = i;
            has = 1;
            value = i;
            op.has_version = 1;
            version += 1 + RND() % 3; /* raft indexes: increasing, with gaps */
            op.version = version;
            break;
        case 1:
            op.kind = LC_CAS;
            op.value = i;
            op.has_expected_version = 1;
            op.expected_version = version - (RND() % 2);
            if (op.expected_version == version) {
                has = 1;
                value = i;
                op.has_version = 1;
                version += 1 + RND() % 3;
                op.version = version;
            } else {
                op.outcome = LC_FAIL;
                op.conflict = 1;
            }
            break;
        default:
            op.kind = LC_GET;
            op.result_null = !has;
            op.result = value;
            if (corrupt && i > 2000 && corrupt-- == 1) {
                op.result_null = 0;
                op.result = -42;
            }
            break;
        }
        CU_ASSERT_FATAL(lc_history_add(h, &op) == 0);
    }
#undef RND
}

static void test_random_register_histories_are_linearizable(void)
{
    for (unsigned seed = 1; seed <= 5; seed++) {
        lc_history h;
        lc_limits lim = { .budget_ms = 20000, .max_memo_bytes = (size_t)512 << 20 };
        lc_var_result *res = NULL;
        size_t n = 0;
        random_history(&h, seed, 0);
        CU_ASSERT_FATAL(lc_check(&h, &lim, &res, &n) == 0);
        CU_ASSERT_EQUAL_FATAL(n, 1);
        CU_ASSERT_EQUAL(res[0].verdict, LC_LINEARIZABLE);
        CU_ASSERT(res[0].ops_checked > 500);
        lc_var_result_close(&res[0]);
        free(res);
        lc_history_close(&h);

        random_history(&h, seed, 1);
        CU_ASSERT_FATAL(lc_check(&h, &lim, &res, &n) == 0);
        CU_ASSERT_EQUAL(res[0].verdict, LC_VIOLATION);
        lc_var_result_close(&res[0]);
        free(res);
        lc_history_close(&h);
    }
}

/* A long sequential history of one register with `unknown` unknown-outcome
 * sets sprinkled in; when `observed`, a read right after each returns its
 * value; when `stale_after`, a read after the last one returns the value
 * before it (a violation). Versions are raft-like indexes. */
static void history_with_unknown_writes(lc_history *h, int unknown, int observed, int stale_after)
{
    lc_history_init(h);
    int64_t t = 0, value = 0;
    uint64_t version = 0;
    int64_t before_last_unknown = 0;
    for (int i = 0; i < 3000; i++) {
        lc_op op = { .process = i % 4, .outcome = LC_OK };
        strcpy(op.var, "x");
        op.invoke_ns = t;
        op.complete_ns = t + 5;
        t += 10;
        int slot = unknown > 0 ? i % (3000 / unknown) : 1;
        if (slot == 0) {
            op.kind = LC_SET;
            op.value = 1000000 + i;
            op.outcome = LC_UNKNOWN;
            op.complete_ns = INT64_MAX;
            before_last_unknown = value;
            if (observed) {
                value = op.value;
                version += 2;
            }
        } else if (i % 3 == 0 && !(observed && slot == 1)) { /* observed: a read follows */
            op.kind = LC_SET;
            op.value = i;
            version += 1 + (uint64_t)(i % 4);
            op.has_version = 1;
            op.version = version;
            value = i;
        } else {
            op.kind = LC_GET;
            op.result = value;
            op.result_null = i < 3;
        }
        CU_ASSERT_FATAL(lc_history_add(h, &op) == 0);
    }
    if (stale_after) {
        lc_op op = { .process = 9, .kind = LC_GET, .result = before_last_unknown };
        strcpy(op.var, "x");
        op.invoke_ns = t;
        op.complete_ns = t + 5;
        CU_ASSERT_FATAL(lc_history_add(h, &op) == 0);
    }
}

static lc_verdict verdict_of_history(lc_history *h, int64_t budget_ms)
{
    lc_limits lim = { .budget_ms = budget_ms, .max_memo_bytes = (size_t)256 << 20 };
    lc_var_result *res = NULL;
    size_t n = 0;
    CU_ASSERT_FATAL(lc_check(h, &lim, &res, &n) == 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    lc_verdict v = res[0].verdict;
    lc_var_result_close(&res[0]);
    free(res);
    lc_history_close(h);
    return v;
}

static void test_unobserved_unknown_writes_may_never_apply(void)
{
    /* 60 writes that may each be applied anywhere later: a search keeping
     * them all pending has to consider every subset. */
    lc_history h;
    long long t0 = mb_test_now_ms();
    history_with_unknown_writes(&h, 60, 0, 0);
    CU_ASSERT_EQUAL(verdict_of_history(&h, 3000), LC_LINEARIZABLE);
    CU_ASSERT(mb_test_now_ms() - t0 < 3000);
}

static void test_observed_unknown_writes_cannot_unhappen(void)
{
    lc_history h;
    long long t0 = mb_test_now_ms();
    history_with_unknown_writes(&h, 60, 1, 0);
    CU_ASSERT_EQUAL(verdict_of_history(&h, 3000), LC_LINEARIZABLE);
    /* Once observed it cannot un-happen: reading the older value again. */
    history_with_unknown_writes(&h, 60, 1, 1);
    CU_ASSERT_EQUAL(verdict_of_history(&h, 3000), LC_VIOLATION);
    CU_ASSERT(mb_test_now_ms() - t0 < 6000);
}

/* A small random history of one register with raft-like versions, ops
 * overlapping in time, a third of the writes of unknown outcome (applied or
 * not), and now and then a read of a wrong value. */
static void small_random_history(lc_history *h, uint64_t *s)
{
#define RND() (*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17, *s)
    lc_history_init(h);
    int has = 0, counter = 0;
    int64_t value = 0, t = 0;
    uint64_t version = 5, index = 5;
    lc_op init = { .kind = LC_INIT, .result_null = 1, .version = 5, .has_version = 1 };
    strcpy(init.var, "x");
    CU_ASSERT_FATAL(lc_history_add(h, &init) == 0);
    int n = 8 + (int)(RND() % 15);
    for (int i = 0; i < n; i++) {
        lc_op op = { .process = 1 + (int)(RND() % 4), .outcome = LC_OK };
        strcpy(op.var, "x");
        op.invoke_ns = t + (int64_t)(RND() % 4);
        op.complete_ns = op.invoke_ns + 1 + (int64_t)(RND() % 12);
        t += 1 + (int64_t)(RND() % 4);
        counter++;
        if (RND() % 100 < 45) {
            op.kind = RND() % 10 < 6 ? LC_SET : LC_CAS;
            op.value = 1000 + counter;
            int applies = 1;
            if (op.kind == LC_CAS) {
                op.has_expected_version = 1;
                op.expected_version = RND() % 10 < 6 ? version : version - 1 - RND() % 3;
                applies = op.expected_version == version;
            }
            if (RND() % 100 < 35) {
                op.outcome = LC_UNKNOWN;
                op.complete_ns = INT64_MAX;
                applies = applies && RND() % 2;
            } else if (!applies) {
                op.outcome = LC_FAIL;
                op.conflict = 1;
            }
            if (applies) {
                index += 1 + RND() % 3;
                version = index;
                has = 1;
                value = op.value;
                if (op.outcome == LC_OK) {
                    op.has_version = 1;
                    op.version = version;
                }
            }
        } else {
            op.kind = LC_GET;
            op.result_null = !has;
            op.result = value;
            if (RND() % 100 < 8) {
                op.result_null = RND() % 2;
                op.result = 1000 + 1 + (int64_t)(RND() % (uint64_t)counter);
            }
            if (RND() % 2 && !op.result_null && op.result == value) {
                op.has_version = 1;
                op.version = version;
            }
        }
        CU_ASSERT_FATAL(lc_history_add(h, &op) == 0);
    }
#undef RND
}

static void test_reductions_agree_with_the_plain_search(void)
{
    /* Tightening observed unknown writes and the first pass without the
     * unobserved ones must never change a verdict. */
    uint64_t s = 88172645463325252ull;
    int violations = 0;
    for (int k = 0; k < 2000; k++) {
        lc_history h;
        small_random_history(&h, &s);
        lc_limits plain = { .budget_ms = 10000, .plain = 1 };
        lc_limits reduced = { .budget_ms = 10000 };
        lc_var_result *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CU_ASSERT_FATAL(lc_check(&h, &plain, &a, &na) == 0);
        CU_ASSERT_FATAL(lc_check(&h, &reduced, &b, &nb) == 0);
        CU_ASSERT_EQUAL_FATAL(na, 1);
        CU_ASSERT_EQUAL_FATAL(nb, 1);
        CU_ASSERT_EQUAL(a[0].verdict, b[0].verdict);
        violations += a[0].verdict == LC_VIOLATION;
        lc_var_result_close(&a[0]);
        lc_var_result_close(&b[0]);
        free(a);
        free(b);
        lc_history_close(&h);
    }
    /* Both kinds of history were generated. */
    CU_ASSERT(violations > 200 && violations < 1800);
}

static void test_parser_rejects_malformed_lines(void)
{
    static const char *bad[] = {
        "",
        "{",
        "[]",
        "{\"op\":\"set\"}",
        "{\"process\":1,\"op\":\"put\",\"var\":\"x\",\"value\":1,\"invoke_ns\":0,\"complete_ns\":1,"
        "\"outcome\":\"ok\"}",
        "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":1,\"invoke_ns\":5,\"complete_ns\":1,"
        "\"outcome\":\"ok\"}",
        "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":1.5,\"invoke_ns\":0,\"complete_ns\":"
        "1,"
        "\"outcome\":\"ok\"}",
        "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":1,\"invoke_ns\":1e3,\"complete_ns\":"
        "2000,\"outcome\":\"ok\"}",
        "{\"process\":1,\"op\":\"cas\",\"var\":\"x\",\"value\":1,\"expected\":1,\"expected_"
        "version\":"
        "2,\"invoke_ns\":0,\"complete_ns\":1,\"outcome\":\"ok\"}",
        "{\"process\":1,\"op\":\"get\",\"var\":\"x\",\"invoke_ns\":0,\"complete_ns\":1,\"outcome\":"
        "\"ok\"}",
        "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":99999999999999999999,\"invoke_ns\":"
        "0,"
        "\"complete_ns\":1,\"outcome\":\"ok\"}",
        "{\"process\":1,\"process\":2,\"op\":\"get\",\"var\":\"x\",\"result\":1,\"invoke_ns\":0,"
        "\"complete_ns\":1,\"outcome\":\"ok\"}",
        "{\"process\":1,\"op\":\"get\",\"var\":\"x\",\"result\":1,\"invoke_ns\":0,\"complete_ns\":"
        "1,"
        "\"outcome\":\"ok\"} x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lc_op op;
        char err[256] = "";
        CU_ASSERT_EQUAL(lc_parse_line(bad[i], strlen(bad[i]), &op, err, sizeof err), -1);
        CU_ASSERT(err[0] != '\0');
    }
}

static void test_parser_keeps_nanosecond_timestamps_exact(void)
{
    const char *line = "{\"process\":3,\"op\":\"get\",\"var\":\"x\",\"result\":-7,\"extra\":{\"a\":"
                       "[1,2,{\"b\":null}]},\"invoke_ns\":1764111111000000001,\"complete_ns\":"
                       "1764111111000000003,\"outcome\":\"ok\"}";
    lc_op op;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(lc_parse_line(line, strlen(line), &op, err, sizeof err), 0);
    CU_ASSERT_EQUAL(op.invoke_ns, 1764111111000000001LL);
    CU_ASSERT_EQUAL(op.complete_ns, 1764111111000000003LL);
    CU_ASSERT_EQUAL(op.result, -7);
    CU_ASSERT_EQUAL(op.process, 3);
    const char *unk = "{\"process\":1,\"op\":\"set\",\"var\":\"x\",\"value\":2,\"invoke_ns\":5,"
                      "\"outcome\":\"unknown\"}";
    CU_ASSERT_EQUAL_FATAL(lc_parse_line(unk, strlen(unk), &op, err, sizeof err), 0);
    CU_ASSERT_EQUAL(op.complete_ns, INT64_MAX);
}

static size_t lost_count(const char *lines)
{
    lc_history h;
    size_t *lost = NULL, n = 0;
    build(&h, lines);
    CU_ASSERT_FATAL(lc_check_lost_writes(&h, &lost, &n) == 0);
    free(lost);
    lc_history_close(&h);
    return n;
}

static void test_lost_writes_check_flags_unobserved_acknowledged_write(void)
{
    /* x=1 acknowledged, then the final read sees only the older value 0. */
    CU_ASSERT_EQUAL(lost_count(SET(1, "x", 0, 0, 5) SET(1, "x", 1, 10, 20) GET(2, "x", 0, 30, 40)),
                    1);
    /* Observed directly. */
    CU_ASSERT_EQUAL(lost_count(SET(1, "x", 1, 10, 20) GET(2, "x", 1, 30, 40)), 0);
    /* Superseded by a later write that was observed afterwards. */
    CU_ASSERT_EQUAL(
        lost_count(SET(1, "x", 1, 10, 20) SET(2, "x", 2, 25, 28) GET(2, "x", 2, 30, 40)), 0);
    /* Superseded by a possibly-applied unknown write that was observed. */
    CU_ASSERT_EQUAL(lost_count(SET(1, "x", 1, 10, 20) SETU(2, "x", 2, 15) GET(2, "x", 2, 30, 40)),
                    0);
    /* A write completed before x=1 was invoked does not supersede it. */
    CU_ASSERT_EQUAL(lost_count(SET(2, "x", 2, 0, 5) SET(1, "x", 1, 10, 20) GET(2, "x", 2, 30, 40)),
                    1);
}

static void test_checkpoint_versions_must_not_go_backwards(void)
{
    char msg[256];
    const char *ok = "{\"node\":1,\"name\":\"a\",\"version\":3,\"t_ns\":20}\n"
                     "{\"node\":1,\"name\":\"a\",\"version\":1,\"t_ns\":10}\n"
                     "{\"node\":2,\"name\":\"a\",\"version\":1,\"t_ns\":30}\n"
                     "{\"node\":1,\"name\":\"b\",\"version\":1,\"t_ns\":40}\n";
    CU_ASSERT_EQUAL(lc_check_checkpoints(ok, strlen(ok), msg, sizeof msg), 0);
    const char *bad = "{\"node\":1,\"name\":\"a\",\"version\":3,\"t_ns\":20}\n"
                      "{\"node\":1,\"name\":\"a\",\"version\":2,\"t_ns\":30}\n";
    CU_ASSERT_EQUAL(lc_check_checkpoints(bad, strlen(bad), msg, sizeof msg), 1);
    CU_ASSERT(strstr(msg, "version 2") != NULL);
    const char *junk = "{\"node\":\"one\"}\n";
    CU_ASSERT_EQUAL(lc_check_checkpoints(junk, strlen(junk), msg, sizeof msg), -1);
}

static int events_verdict(const char *a, const char *b, char *msg, size_t msg_size)
{
    const char *t[2] = { a, b };
    size_t l[2] = { strlen(a), strlen(b) };
    size_t gaps = 0;
    int rc = lc_check_event_logs(t, l, 2, msg, msg_size, &gaps);
    CU_ASSERT(rc != 0 || gaps == 0 || strstr(msg, "snapshot") != NULL);
    return rc;
}

static void test_event_log_gap_left_by_snapshot_install_is_not_divergence(void)
{
    char msg[256];
    size_t gaps = 0;
    /* Node b missed entries 2..3 (seqs 2048, 3072) and got a snapshot up to
     * index 3 (marker at 3 * 1024 + 1023): a gap, not a divergence. */
    const char *a = "{\"events\":[{\"seq\":1024,\"type\":\"a\"},{\"seq\":2048,\"type\":\"b\"},"
                    "{\"seq\":3072,\"type\":\"c\"},{\"seq\":4096,\"type\":\"d\"}]}";
    const char *b = "{\"events\":[{\"seq\":1024,\"type\":\"a\"},{\"seq\":4095,\"type\":"
                    "\"state.restore\",\"payload\":{\"applied_index\":3}},{\"seq\":4096,"
                    "\"type\":\"d\"}]}";
    const char *t[2] = { a, b };
    size_t l[2] = { strlen(a), strlen(b) };
    CU_ASSERT_EQUAL(lc_check_event_logs(t, l, 2, msg, sizeof msg, &gaps), 0);
    CU_ASSERT_EQUAL(gaps, 2);
    /* A marker covering less than the hole does not explain it. */
    const char *short_marker = "{\"events\":[{\"seq\":1024,\"type\":\"a\"},{\"seq\":4095,"
                               "\"type\":\"state.restore\",\"payload\":{\"applied_index\":2}},"
                               "{\"seq\":4096,\"type\":\"d\"}]}";
    t[1] = short_marker;
    l[1] = strlen(short_marker);
    CU_ASSERT_EQUAL(lc_check_event_logs(t, l, 2, msg, sizeof msg, &gaps), 1);
    /* A marker taking the seq of another node's event is a divergence. */
    const char *clash = "{\"events\":[{\"seq\":1024,\"type\":\"a\"},{\"seq\":3072,\"type\":"
                        "\"state.restore\",\"payload\":{\"applied_index\":3}},{\"seq\":4096,"
                        "\"type\":\"d\"}]}";
    t[1] = clash;
    l[1] = strlen(clash);
    CU_ASSERT_EQUAL(lc_check_event_logs(t, l, 2, msg, sizeof msg, &gaps), 1);
    CU_ASSERT(strstr(msg, "seq 3072 differs") != NULL);
}

static void test_event_logs_must_agree_on_common_seqs(void)
{
    char msg[256];
    const char *n0 = "{\"log\":\"cluster\",\"events\":[{\"seq\":1,\"type\":\"a\"},{\"seq\":2,"
                     "\"type\":\"b\"}]}\n{\"events\":[{\"seq\":3,\"type\":\"c\"}]}";
    const char *lag = "{\"events\":[{\"seq\":1,\"type\":\"a\"},{\"seq\":2,\"type\":\"b\"}]}";
    const char *div = "{\"events\":[{\"seq\":1,\"type\":\"a\"},{\"seq\":2,\"type\":\"X\"}]}";
    const char *unordered = "{\"events\":[{\"seq\":2,\"type\":\"b\"},{\"seq\":1,\"type\":\"a\"}]}";
    CU_ASSERT_EQUAL(events_verdict(n0, lag, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(events_verdict(n0, div, msg, sizeof msg), 1);
    CU_ASSERT(strstr(msg, "seq 2") != NULL);
    CU_ASSERT_EQUAL(events_verdict(n0, unordered, msg, sizeof msg), 1);
    /* Each node stamps events with its own clock when it writes them. */
    const char *t1 = "{\"events\":[{\"seq\":1,\"type\":\"a\",\"time_ms\":100,\"time\":\"x\"}]}";
    const char *t2 = "{\"events\":[{\"seq\":1,\"type\":\"a\",\"time_ms\":250,\"time\":\"y\"}]}";
    const char *t3 = "{\"events\":[{\"seq\":1,\"type\":\"b\",\"time_ms\":100,\"time\":\"x\"}]}";
    CU_ASSERT_EQUAL(events_verdict(t1, t2, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(events_verdict(t1, t3, msg, sizeof msg), 1);
    /* A hole (seq 2 missing before seq 3) is not lagging behind. */
    const char *hole = "{\"events\":[{\"seq\":1,\"type\":\"a\"},{\"seq\":3,\"type\":\"c\"}]}";
    CU_ASSERT_EQUAL(events_verdict(n0, hole, msg, sizeof msg), 1);
    CU_ASSERT(strstr(msg, "lacks seq 2") != NULL);
    CU_ASSERT_EQUAL(events_verdict(hole, n0, msg, sizeof msg), 1);
    CU_ASSERT_EQUAL(events_verdict(n0, "{\"events\":5}", msg, sizeof msg), -1);
    CU_ASSERT_EQUAL(events_verdict(n0, "{\"events\":[", msg, sizeof msg), -1);
}

int main(int argc, char **argv)
{
    CU_TestInfo tests[] = {
        { "sequential_history_is_linearizable", test_sequential_history_is_linearizable },
        { "stale_read_after_completed_write_is_violation",
          test_stale_read_after_completed_write_is_violation },
        { "lost_acknowledged_write_is_violation", test_lost_acknowledged_write_is_violation },
        { "cas_succeeding_twice_from_same_version_is_violation",
          test_cas_succeeding_twice_from_same_version_is_violation },
        { "read_of_never_written_value_is_violation",
          test_read_of_never_written_value_is_violation },
        { "read_of_failed_write_is_violation", test_read_of_failed_write_is_violation },
        { "reads_concurrent_with_write_may_see_old_then_new",
          test_reads_concurrent_with_write_may_see_old_then_new },
        { "new_then_old_read_during_write_is_violation",
          test_new_then_old_read_during_write_is_violation },
        { "touching_intervals_count_as_concurrent", test_touching_intervals_count_as_concurrent },
        { "unknown_write_may_or_may_not_take_effect",
          test_unknown_write_may_or_may_not_take_effect },
        { "conflicting_cas_must_have_seen_another_state",
          test_conflicting_cas_must_have_seen_another_state },
        { "cas_by_value_applies_only_on_match", test_cas_by_value_applies_only_on_match },
        { "read_version_must_be_the_last_writes_version",
          test_read_version_must_be_the_last_writes_version },
        { "versions_are_increasing_indexes_with_gaps",
          test_versions_are_increasing_indexes_with_gaps },
        { "write_version_going_backwards_is_violation",
          test_write_version_going_backwards_is_violation },
        { "cas_on_a_version_that_is_no_longer_current_is_violation",
          test_cas_on_a_version_that_is_no_longer_current_is_violation },
        { "unknown_write_leaves_a_version_only_known_to_be_larger",
          test_unknown_write_leaves_a_version_only_known_to_be_larger },
        { "unknown_cas_may_apply_on_a_guessed_version",
          test_unknown_cas_may_apply_on_a_guessed_version },
        { "init_record_sets_the_initial_state", test_init_record_sets_the_initial_state },
        { "variables_are_checked_independently", test_variables_are_checked_independently },
        { "violation_reports_a_window_with_the_blocked_op",
          test_violation_reports_a_window_with_the_blocked_op },
        { "search_gives_up_when_budget_is_exhausted",
          test_search_gives_up_when_budget_is_exhausted },
        { "random_register_histories_are_linearizable",
          test_random_register_histories_are_linearizable },
        { "unobserved_unknown_writes_may_never_apply",
          test_unobserved_unknown_writes_may_never_apply },
        { "observed_unknown_writes_cannot_unhappen", test_observed_unknown_writes_cannot_unhappen },
        { "reductions_agree_with_the_plain_search", test_reductions_agree_with_the_plain_search },
        { "parser_rejects_malformed_lines", test_parser_rejects_malformed_lines },
        { "parser_keeps_nanosecond_timestamps_exact",
          test_parser_keeps_nanosecond_timestamps_exact },
        { "lost_writes_check_flags_unobserved_acknowledged_write",
          test_lost_writes_check_flags_unobserved_acknowledged_write },
        { "checkpoint_versions_must_not_go_backwards",
          test_checkpoint_versions_must_not_go_backwards },
        { "event_logs_must_agree_on_common_seqs", test_event_logs_must_agree_on_common_seqs },
        { "event_log_gap_left_by_snapshot_install_is_not_divergence",
          test_event_log_gap_left_by_snapshot_install_is_not_divergence },
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = { { "lincheck", NULL, NULL, NULL, NULL, tests }, CU_SUITE_INFO_NULL };
    return mb_test_run(argc, argv, suites);
}
