/* Unit tests of storage/: appends, every query filter and combination,
 * pagination, retention, stats, meta, local events, blobs, bad input,
 * damaged records, a second open, and kill -9 of a writer process in both
 * durability modes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mb_test.h"
#include "storage/record.h"
#include "storage/storage.h"
#include "storage/storage_testing.h"
#include "storage_pattern.h"

/* ------------------------------------------------------------- fixtures */

static char dir[512];
static storage *st;

static storage *open_at(const char *path, storage_durability d)
{
    storage_options o = { .path = path, .durability = d };
    storage *s = NULL;
    mb_error err;
    int rc = storage_open(&o, &s, &err);
    if (rc != 0)
        fprintf(stderr, "open %s: %s\n", path, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return s;
}

/* Index entries go from the in-memory tail to posting rows every 37
 * events here (131072 by default), so that queries and retention always
 * cross both. */
#define TEST_INDEX_FLUSH 37

static void setup(void)
{
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "storage"), 0);
    st = open_at(dir, STORAGE_FAST);
    storage_testing_set_index_flush(st, TEST_INDEX_FLUSH);
}

static void teardown(void)
{
    storage_close(st);
    st = NULL;
    mb_test_rmtree(dir);
}

static void reopen(void)
{
    storage_close(st);
    st = open_at(dir, STORAGE_FAST);
    storage_testing_set_index_flush(st, TEST_INDEX_FLUSH);
}

#define MAX_GOT 20000

/* What a query delivered (copied out of the callback). */
typedef struct got {
    size_t n;
    uint64_t seq[MAX_GOT];
    int64_t time_ms[MAX_GOT];
    char type[MAX_GOT][16];
    char subject[MAX_GOT][16];
    int ok_payload;
    size_t stop_after; /* 0 = never stop */
} got;

static got g;

static int collect_cb(const storage_event *ev, void *arg)
{
    got *x = arg;
    if (x->n < MAX_GOT) {
        x->seq[x->n] = ev->seq;
        x->time_ms[x->n] = ev->time_ms;
        snprintf(x->type[x->n], sizeof(x->type[0]), "%s", ev->type);
        snprintf(x->subject[x->n], sizeof(x->subject[0]), "%s", ev->subject);
    }
    char want[64];
    int len = snprintf(want, sizeof(want), "payload-%" PRIu64, ev->seq);
    if (ev->payload_len != (size_t)len || memcmp(ev->payload, want, (size_t)len) != 0)
        x->ok_payload = 0;
    x->n++;
    return x->stop_after != 0 && x->n >= x->stop_after;
}

static int query(const struct storage_query *q, uint64_t *cursor)
{
    memset(&g, 0, sizeof(g));
    g.ok_payload = 1;
    mb_error err;
    int rc = storage_query(st, q, collect_cb, &g, cursor, &err);
    if (rc != 0)
        fprintf(stderr, "query: %s\n", err.msg);
    return rc;
}

static const char *subjects[] = { "var.lr", "var.momentum", "agent-7", "node-2" };
static const char *types[] = { "var.set", "agent.crashed", "node.up" };

/* Append n events (seq assigned), event i: subject subjects[i%4], type
 * types[i%3], time 1000 + 10*i, payload "payload-<seq>". */
static void append_pattern(storage *s, size_t n, int64_t t0)
{
    static char payloads[1000][32];
    static storage_event evs[1000];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < 1000 ? n - done : 1000;
        uint64_t next = storage_last_seq(s) + 1;
        for (size_t i = 0; i < k; i++) {
            size_t idx = done + i;
            uint64_t seq = next + i;
            int len = snprintf(payloads[i], sizeof(payloads[i]), "payload-%" PRIu64, seq);
            evs[i] = (storage_event){ .seq = 0,
                                      .type = types[idx % 3],
                                      .subject = subjects[idx % 4],
                                      .time_ms = t0 + 10 * (int64_t)idx,
                                      .payload = payloads[i],
                                      .payload_len = (size_t)len };
        }
        mb_error err;
        CU_ASSERT_EQUAL_FATAL(storage_append(s, evs, k, &err), 0);
        CU_ASSERT_EQUAL(evs[k - 1].seq, next + k - 1);
        done += k;
    }
}

/* Brute-force reference: does event i of append_pattern (seq i+1) match? */
static int pattern_matches(size_t i, const struct storage_query *q)
{
    uint64_t seq = i + 1;
    int64_t t = 1000 + 10 * (int64_t)i;
    if (q->from_seq && seq < q->from_seq)
        return 0;
    if (q->to_seq && seq > q->to_seq)
        return 0;
    if (q->from_time_ms && t < q->from_time_ms)
        return 0;
    if (q->to_time_ms && t > q->to_time_ms)
        return 0;
    if (q->subject && strcmp(q->subject, subjects[i % 4]) != 0)
        return 0;
    if (q->type && strcmp(q->type, types[i % 3]) != 0)
        return 0;
    return 1;
}

/* Run `q` page by page (both directions) and compare with the reference
 * over the first n events of the pattern. */
static void check_query_against_reference(struct storage_query q, size_t n, size_t page)
{
    for (int dir_ = 0; dir_ < 2; dir_++) {
        q.newest_first = dir_;
        q.limit = page;
        q.cursor = 0;
        uint64_t expect[4000];
        size_t ne = 0;
        for (size_t i = 0; i < n; i++)
            if (pattern_matches(i, &q))
                expect[ne++] = i + 1;
        size_t seen = 0;
        for (int pages = 0; pages < 10000; pages++) {
            uint64_t cursor = 0;
            CU_ASSERT_EQUAL_FATAL(query(&q, &cursor), 0);
            CU_ASSERT(g.ok_payload);
            CU_ASSERT(g.n <= page);
            for (size_t k = 0; k < g.n && seen < ne; k++, seen++) {
                size_t want = dir_ ? expect[ne - 1 - seen] : expect[seen];
                if (g.seq[k] != want) {
                    CU_FAIL("query delivered the wrong event");
                    return;
                }
            }
            if (cursor == 0)
                break;
            q.cursor = cursor;
        }
        CU_ASSERT_EQUAL(seen, ne);
    }
}

/* ---------------------------------------------------------------- tests */

static void test_append_assigns_sequences_and_get_returns_event(void)
{
    setup();
    storage_event evs[3] = {
        { .type = "var.set", .subject = "lr", .time_ms = 5, .payload = "a", .payload_len = 1 },
        { .type = "var.set", .subject = "", .time_ms = 6, .payload = NULL, .payload_len = 0 },
        { .type = "node.up", .subject = "n1", .time_ms = -7, .payload = "ccc", .payload_len = 3 },
    };
    mb_error err;
    CU_ASSERT_EQUAL(storage_append(st, evs, 3, &err), 0);
    CU_ASSERT_EQUAL(evs[0].seq, 1);
    CU_ASSERT_EQUAL(evs[2].seq, 3);
    CU_ASSERT_EQUAL(storage_last_seq(st), 3);
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(storage_get(st, 3, collect_cb, &g, &err), 0);
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_STRING_EQUAL(g.type[0], "node.up");
    CU_ASSERT_STRING_EQUAL(g.subject[0], "n1");
    CU_ASSERT_EQUAL(g.time_ms[0], -7);
    CU_ASSERT_EQUAL(storage_get(st, 4, collect_cb, &g, &err), MB_ENOTFOUND);
    teardown();
}

static void test_events_and_last_seq_survive_reopen(void)
{
    setup();
    append_pattern(st, 50, 1000);
    reopen();
    CU_ASSERT_EQUAL(storage_last_seq(st), 50);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 50);
    struct storage_query q = { .limit = 1000 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 50);
    CU_ASSERT(g.ok_payload);
    append_pattern(st, 1, 1000);
    CU_ASSERT_EQUAL(storage_last_seq(st), 51);
    teardown();
}

static void test_replay_of_existing_seq_is_skipped(void)
{
    setup();
    storage_event ev = {
        .seq = 10, .type = "t", .subject = "s", .payload = "new", .payload_len = 3
    };
    mb_error err;
    CU_ASSERT_EQUAL(storage_append(st, &ev, 1, &err), 0);
    storage_event again[2] = {
        { .seq = 10, .type = "t", .subject = "s", .payload = "other", .payload_len = 5 },
        { .seq = 12, .type = "t", .subject = "s", .payload = "x", .payload_len = 1 },
    };
    CU_ASSERT_EQUAL(storage_append(st, again, 2, &err), 0);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 2);
    CU_ASSERT_EQUAL(stats.first_seq, 10);
    CU_ASSERT_EQUAL(stats.last_seq, 12);
    /* the replayed event kept its original payload */
    struct storage_query q = { .subject = "s" };
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(storage_get(st, 10, collect_cb, &g, &err), 0);
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 2);
    /* an explicit seq below the last one (a gap) counts as replay too */
    storage_event low = { .seq = 11, .type = "t", .subject = "s" };
    CU_ASSERT_EQUAL(storage_append(st, &low, 1, &err), 0);
    CU_ASSERT_EQUAL(storage_get(st, 11, collect_cb, &g, &err), MB_ENOTFOUND);
    teardown();
}

static void test_append_rejects_bad_input_and_writes_nothing(void)
{
    setup();
    mb_error err;
    char long_type[STORAGE_TYPE_MAX + 2], long_subject[STORAGE_SUBJECT_MAX + 2];
    memset(long_type, 't', sizeof(long_type) - 1);
    long_type[sizeof(long_type) - 1] = '\0';
    memset(long_subject, 's', sizeof(long_subject) - 1);
    long_subject[sizeof(long_subject) - 1] = '\0';
    storage_event good = { .type = "ok", .subject = "" };
    storage_event bad[] = {
        { .type = long_type, .subject = "" },
        { .type = "ok", .subject = long_subject },
        { .type = "", .subject = "" },
        { .type = NULL, .subject = "" },
        { .type = "ok", .subject = NULL },
        { .type = "ok", .subject = "", .payload = NULL, .payload_len = 4 },
        { .type = "ok", .subject = "", .payload = "x", .payload_len = STORAGE_PAYLOAD_MAX + 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        storage_event batch[2] = { good, bad[i] };
        CU_ASSERT_EQUAL(storage_append(st, batch, 2, &err), MB_EINVAL);
        CU_ASSERT_EQUAL(err.code, MB_EINVAL);
    }
    CU_ASSERT_EQUAL(storage_append(st, NULL, 1, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_append(st, &good, 0, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_append(NULL, &good, 1, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_last_seq(st), 0);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 0);
    /* exactly at the limits is fine */
    long_type[STORAGE_TYPE_MAX] = '\0';
    long_subject[STORAGE_SUBJECT_MAX] = '\0';
    storage_event edge = { .type = long_type, .subject = long_subject };
    CU_ASSERT_EQUAL(storage_append(st, &edge, 1, &err), 0);
    /* over-long query filters are refused */
    long_type[STORAGE_TYPE_MAX] = 't';
    struct storage_query q = { .type = long_type };
    CU_ASSERT_EQUAL(storage_query(st, &q, collect_cb, &g, NULL, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_query(st, NULL, collect_cb, &g, NULL, &err), MB_EINVAL);
    teardown();
}

static void test_query_by_seq_range_both_directions(void)
{
    setup();
    append_pattern(st, 300, 1000);
    struct storage_query q = { .from_seq = 20, .to_seq = 40 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 21);
    CU_ASSERT_EQUAL(g.seq[0], 20);
    CU_ASSERT_EQUAL(g.seq[20], 40);
    q.newest_first = 1;
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 21);
    CU_ASSERT_EQUAL(g.seq[0], 40);
    CU_ASSERT_EQUAL(g.seq[20], 20);
    check_query_against_reference((struct storage_query){ .from_seq = 7 }, 300, 50);
    check_query_against_reference((struct storage_query){ .to_seq = 77 }, 300, 13);
    /* empty and inverted ranges */
    q = (struct storage_query){ .from_seq = 50, .to_seq = 40 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 0);
    q = (struct storage_query){ .from_seq = 301 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 0);
    teardown();
}

static void test_query_limit_defaults_to_100_and_caps_at_10000(void)
{
    setup();
    append_pattern(st, 10050, 1000);
    struct storage_query q = { 0 };
    uint64_t cursor;
    CU_ASSERT_EQUAL(query(&q, &cursor), 0);
    CU_ASSERT_EQUAL(g.n, 100);
    CU_ASSERT_EQUAL(cursor, 101);
    q.limit = 20000;
    CU_ASSERT_EQUAL(query(&q, &cursor), 0);
    CU_ASSERT_EQUAL(g.n, 10000);
    CU_ASSERT_EQUAL(cursor, 10001);
    teardown();
}

static void test_query_by_subject_type_and_time_alone_and_combined(void)
{
    setup();
    append_pattern(st, 600, 1000);
    struct storage_query qs[] = {
        { .subject = "var.lr" },
        { .subject = "agent-7" },
        { .subject = "nobody" },
        { .subject = "" },
        { .type = "agent.crashed" },
        { .type = "none" },
        { .from_time_ms = 2000, .to_time_ms = 3000 },
        { .from_time_ms = 5000 },
        { .to_time_ms = 1500 },
        { .subject = "var.momentum", .type = "var.set" },
        { .subject = "var.momentum", .from_time_ms = 1500, .to_time_ms = 4000 },
        { .type = "node.up", .from_time_ms = 2500 },
        { .subject = "node-2",
          .type = "agent.crashed",
          .from_time_ms = 1200,
          .to_time_ms = 5000,
          .from_seq = 30,
          .to_seq = 400 },
        { .type = "var.set", .from_seq = 100, .to_seq = 200 },
        { .from_time_ms = 1100, .to_time_ms = 6000, .from_seq = 50, .to_seq = 300 },
    };
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        check_query_against_reference(qs[i], 600, 7);
        check_query_against_reference(qs[i], 600, 1000);
    }
    /* sanity: the subject filter really filters */
    struct storage_query q = { .subject = "var.lr", .limit = 1000 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 150);
    for (size_t k = 0; k < g.n; k++)
        CU_ASSERT_STRING_EQUAL(g.subject[k], "var.lr");
    teardown();
}

static void test_time_query_orders_by_time_when_times_are_not_monotonic(void)
{
    setup();
    int64_t times[] = { 50, 10, 40, 20, 30 };
    mb_error err;
    for (int i = 0; i < 5; i++) {
        char p[32];
        int len = snprintf(p, sizeof(p), "payload-%d", i + 1);
        storage_event ev = { .type = "t",
                             .subject = "s",
                             .time_ms = times[i],
                             .payload = p,
                             .payload_len = (size_t)len };
        CU_ASSERT_EQUAL(storage_append(st, &ev, 1, &err), 0);
    }
    struct storage_query q = { .from_time_ms = 15, .to_time_ms = 45, .limit = 2 };
    uint64_t cursor;
    CU_ASSERT_EQUAL(query(&q, &cursor), 0);
    CU_ASSERT_EQUAL(g.n, 2);
    CU_ASSERT_EQUAL(g.seq[0], 4); /* t=20 */
    CU_ASSERT_EQUAL(g.seq[1], 5); /* t=30 */
    CU_ASSERT_EQUAL(cursor, 3);
    q.cursor = cursor;
    CU_ASSERT_EQUAL(query(&q, &cursor), 0);
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_EQUAL(g.seq[0], 3); /* t=40 */
    CU_ASSERT_EQUAL(cursor, 0);
    q.cursor = 0;
    q.newest_first = 1;
    CU_ASSERT_EQUAL(query(&q, &cursor), 0);
    CU_ASSERT_EQUAL(g.seq[0], 3);
    CU_ASSERT_EQUAL(g.seq[1], 5);
    CU_ASSERT_EQUAL(cursor, 4);
    teardown();
}

static void test_callback_stop_gives_cursor_to_resume(void)
{
    setup();
    append_pattern(st, 40, 1000);
    struct storage_query q = { .subject = "var.lr" }; /* seqs 1,5,9,... */
    memset(&g, 0, sizeof(g));
    g.ok_payload = 1;
    g.stop_after = 3;
    uint64_t cursor;
    CU_ASSERT_EQUAL(storage_query(st, &q, collect_cb, &g, &cursor, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 3);
    CU_ASSERT_EQUAL(g.seq[2], 9);
    CU_ASSERT_EQUAL(cursor, 13);
    q.cursor = cursor;
    CU_ASSERT_EQUAL(query(&q, &cursor), 0);
    CU_ASSERT_EQUAL(g.n, 7);
    CU_ASSERT_EQUAL(g.seq[0], 13);
    CU_ASSERT_EQUAL(cursor, 0);
    teardown();
}

static void test_prune_before_seq_removes_events_and_index_rows(void)
{
    setup();
    append_pattern(st, 9000, 1000); /* more than one prune chunk */
    uint64_t removed = 0;
    mb_error err;
    CU_ASSERT_EQUAL(storage_prune_before_seq(st, 8001, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 8000);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 1000);
    CU_ASSERT_EQUAL(stats.first_seq, 8001);
    CU_ASSERT_EQUAL(stats.last_seq, 9000);
    /* index rows are gone too: every index answers from 8001 on */
    struct storage_query qs[] = { { .subject = "var.lr", .limit = 10000 },
                                  { .type = "var.set", .limit = 10000 },
                                  { .from_time_ms = 1, .limit = 10000 },
                                  { .limit = 10000 } };
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(query(&qs[i], NULL), 0);
        CU_ASSERT(g.n > 0);
        for (size_t k = 0; k < g.n; k++)
            CU_ASSERT(g.seq[k] >= 8001);
    }
    check_query_against_reference((struct storage_query){ .subject = "agent-7", .from_seq = 8001 },
                                  9000, 100);
    /* pruned seqs are not resurrected by a replay; last_seq stays */
    storage_event ev = { .seq = 5, .type = "t", .subject = "s" };
    CU_ASSERT_EQUAL(storage_append(st, &ev, 1, &err), 0);
    CU_ASSERT_EQUAL(storage_get(st, 5, collect_cb, &g, &err), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(storage_last_seq(st), 9000);
    /* the index CFs hold no rows below 8001 (checked through reopen + stats) */
    reopen();
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 1000);
    CU_ASSERT_EQUAL(storage_last_seq(st), 9000);
    teardown();
}

static void test_prune_before_time_removes_events_and_index_rows(void)
{
    setup();
    append_pattern(st, 500, 1000); /* times 1000 .. 5990 */
    uint64_t removed = 0;
    CU_ASSERT_EQUAL(storage_prune_before_time(st, 2000, &removed, NULL), 0);
    CU_ASSERT_EQUAL(removed, 100);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 400);
    CU_ASSERT_EQUAL(stats.first_seq, 101);
    struct storage_query qs[] = { { .subject = "node-2", .limit = 1000 },
                                  { .type = "agent.crashed", .limit = 1000 },
                                  { .to_time_ms = 3000, .limit = 1000 } };
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(query(&qs[i], NULL), 0);
        CU_ASSERT(g.n > 0);
        for (size_t k = 0; k < g.n; k++)
            CU_ASSERT(g.time_ms[k] >= 2000);
    }
    /* pruning again removes nothing */
    CU_ASSERT_EQUAL(storage_prune_before_time(st, 2000, &removed, NULL), 0);
    CU_ASSERT_EQUAL(removed, 0);
    teardown();
}

static void test_stats_report_count_bytes_and_range(void)
{
    setup();
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 0);
    CU_ASSERT_EQUAL(stats.first_seq, 0);
    CU_ASSERT_EQUAL(stats.last_seq, 0);
    append_pattern(st, 200, 1000);
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 200);
    CU_ASSERT_EQUAL(stats.first_seq, 1);
    CU_ASSERT_EQUAL(stats.last_seq, 200);
    CU_ASSERT(stats.bytes > 200 * 20);
    teardown();
}

static void test_meta_put_get_and_append_meta_is_atomic_with_events(void)
{
    setup();
    mb_error err;
    void *val;
    size_t len;
    CU_ASSERT_EQUAL(storage_meta_get(st, "raft.applied", &val, &len, &err), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(storage_meta_put(st, "k", "v1", 2, &err), 0);
    CU_ASSERT_EQUAL(storage_meta_get(st, "k", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(memcmp(val, "v1", 2), 0);
    free(val);
    CU_ASSERT_EQUAL(storage_meta_put(st, "empty", NULL, 0, &err), 0);
    CU_ASSERT_EQUAL(storage_meta_get(st, "empty", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(len, 0);
    free(val);

    storage_event evs[2] = { { .type = "var.set", .subject = "a" },
                             { .type = "var.set", .subject = "b" } };
    uint64_t idx = 42;
    CU_ASSERT_EQUAL(storage_append_meta(st, evs, 2, "raft.applied", &idx, sizeof(idx), &err), 0);
    idx = 43; /* an apply batch without events still records its index */
    CU_ASSERT_EQUAL(storage_append_meta(st, NULL, 0, "raft.applied", &idx, sizeof(idx), &err), 0);
    reopen();
    CU_ASSERT_EQUAL(storage_meta_get(st, "raft.applied", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(len, sizeof(uint64_t));
    CU_ASSERT_EQUAL(*(uint64_t *)val, 43);
    free(val);
    CU_ASSERT_EQUAL(storage_last_seq(st), 2);
    /* a bad event fails the whole call: the meta key is not written either */
    storage_event bad = { .type = "", .subject = "" };
    idx = 44;
    CU_ASSERT_EQUAL(storage_append_meta(st, &bad, 1, "raft.applied", &idx, sizeof(idx), &err),
                    MB_EINVAL);
    CU_ASSERT_EQUAL(storage_meta_get(st, "raft.applied", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(*(uint64_t *)val, 43);
    free(val);
    CU_ASSERT_EQUAL(storage_meta_put(st, "", "x", 1, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_append_meta(st, evs, 1, NULL, NULL, 0, &err), MB_EINVAL);
    teardown();
}

static void test_local_events_have_their_own_sequence_space(void)
{
    setup();
    append_pattern(st, 10, 1000);
    storage_event evs[3] = { { .type = "node.restart", .subject = "n1", .time_ms = 1 },
                             { .type = "warning", .subject = "n1", .time_ms = 2 },
                             { .type = "warning", .subject = "disk", .time_ms = 3 } };
    mb_error err;
    CU_ASSERT_EQUAL(storage_local_append(st, evs, 3, &err), 0);
    CU_ASSERT_EQUAL(evs[0].seq, 1);
    CU_ASSERT_EQUAL(storage_local_last_seq(st), 3);
    CU_ASSERT_EQUAL(storage_last_seq(st), 10);
    struct storage_query q = { .type = "warning" };
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(storage_local_query(st, &q, collect_cb, &g, NULL, &err), 0);
    CU_ASSERT_EQUAL(g.n, 2);
    CU_ASSERT_EQUAL(g.seq[0], 2);
    /* local events never show in the replicated log and vice versa */
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 0);
    q = (struct storage_query){ .subject = "var.lr" };
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(storage_local_query(st, &q, collect_cb, &g, NULL, &err), 0);
    CU_ASSERT_EQUAL(g.n, 0);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_local_get_stats(st, &stats, &err), 0);
    CU_ASSERT_EQUAL(stats.count, 3);
    uint64_t removed;
    CU_ASSERT_EQUAL(storage_local_prune_before_seq(st, 2, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 1);
    CU_ASSERT_EQUAL(storage_local_prune_before_time(st, 3, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 1);
    reopen();
    CU_ASSERT_EQUAL(storage_local_last_seq(st), 3);
    CU_ASSERT_EQUAL(storage_local_get_stats(st, &stats, &err), 0);
    CU_ASSERT_EQUAL(stats.count, 1);
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, &err), 0);
    CU_ASSERT_EQUAL(stats.count, 10);
    teardown();
}

static void test_blobs_put_get_replace_delete(void)
{
    setup();
    mb_error err;
    void *val;
    size_t len;
    static char big[3 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 31);
    CU_ASSERT_EQUAL(storage_blob_put(st, "agent/7/checkpoint", big, sizeof(big), &err), 0);
    CU_ASSERT_EQUAL(storage_blob_get(st, "agent/7/checkpoint", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(len, sizeof(big));
    CU_ASSERT_EQUAL(memcmp(val, big, len), 0);
    free(val);
    CU_ASSERT_EQUAL(storage_blob_put(st, "agent/7/checkpoint", "v2", 2, &err), 0);
    CU_ASSERT_EQUAL(storage_blob_put(st, "empty", NULL, 0, &err), 0);
    reopen();
    CU_ASSERT_EQUAL(storage_blob_get(st, "agent/7/checkpoint", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(memcmp(val, "v2", 2), 0);
    free(val);
    CU_ASSERT_EQUAL(storage_blob_get(st, "empty", &val, &len, &err), 0);
    CU_ASSERT_EQUAL(len, 0);
    free(val);
    CU_ASSERT_EQUAL(storage_blob_delete(st, "agent/7/checkpoint", &err), 0);
    CU_ASSERT_EQUAL(storage_blob_get(st, "agent/7/checkpoint", &val, &len, &err), MB_ENOTFOUND);
    CU_ASSERT_PTR_NULL(val);
    CU_ASSERT_EQUAL(storage_blob_delete(st, "never-there", &err), 0);
    char long_key[STORAGE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    CU_ASSERT_EQUAL(storage_blob_put(st, long_key, "x", 1, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_blob_put(st, NULL, "x", 1, &err), MB_EINVAL);
    CU_ASSERT_EQUAL(storage_blob_get(st, "x", NULL, &len, &err), MB_EINVAL);
    /* a blob value that is not ours is reported, not returned */
    CU_ASSERT_EQUAL(storage_testing_put_raw(st, "blobs", "raw", 3, "\x07zz", 3, &err), 0);
    CU_ASSERT_EQUAL(storage_blob_get(st, "raw", &val, &len, &err), MB_ECORRUPT);
    teardown();
}

static void test_damaged_record_is_reported_as_corrupt_with_its_seq(void)
{
    setup();
    append_pattern(st, 20, 1000);
    mb_error err;
    CU_ASSERT_EQUAL(storage_testing_replace_record(st, 7, "{\"json\":1}", 10, &err), 0);
    struct storage_query q = { .limit = 100 };
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(storage_query(st, &q, collect_cb, &g, NULL, &err), MB_ECORRUPT);
    CU_ASSERT_EQUAL(err.code, MB_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "event 7"));
    CU_ASSERT_EQUAL(g.n, 6); /* delivered up to the damage, never past it */
    CU_ASSERT_EQUAL(storage_get(st, 7, collect_cb, &g, &err), MB_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "event 7"));
    /* through an index too (seq 7 has subject "node-2": index 6 % 4 = 2) */
    q = (struct storage_query){ .subject = subjects[6 % 4] };
    CU_ASSERT_EQUAL(query(&q, NULL), MB_ECORRUPT);

    /* a genuine record copied under another seq fails its checksum */
    storage_event ev = { .type = "t", .subject = "s", .payload = "p", .payload_len = 1 };
    uint8_t rec[64];
    rec_encode(&ev, 3, rec);
    CU_ASSERT_EQUAL(storage_testing_replace_record(st, 9, rec, rec_encoded_size(&ev), &err), 0);
    CU_ASSERT_EQUAL(storage_get(st, 9, collect_cb, &g, &err), MB_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "checksum"));
    /* one flipped payload bit */
    rec_encode(&ev, 9, rec);
    rec[rec_encoded_size(&ev) - 1] ^= 1;
    CU_ASSERT_EQUAL(storage_testing_replace_record(st, 9, rec, rec_encoded_size(&ev), &err), 0);
    CU_ASSERT_EQUAL(storage_get(st, 9, collect_cb, &g, &err), MB_ECORRUPT);
    /* retention deletes damaged records instead of failing on them */
    uint64_t removed;
    CU_ASSERT_EQUAL(storage_prune_before_seq(st, 10, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 9);
    q = (struct storage_query){ .limit = 100 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 11);
    teardown();
}

static void test_prune_inside_a_record_row_keeps_the_rest_of_the_row(void)
{
    setup();
    append_pattern(st, 3000, 1000); /* rows of up to 512 records */
    uint64_t removed = 0;
    mb_error err;
    CU_ASSERT_EQUAL(storage_prune_before_seq(st, 1234, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 1233);
    CU_ASSERT_EQUAL(storage_get(st, 1233, collect_cb, &g, &err), MB_ENOTFOUND);
    memset(&g, 0, sizeof(g));
    g.ok_payload = 1;
    CU_ASSERT_EQUAL(storage_get(st, 1234, collect_cb, &g, &err), 0);
    CU_ASSERT_EQUAL(g.n, 1);
    struct storage_query q = { .limit = 10000 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 3000 - 1233);
    CU_ASSERT(g.ok_payload);
    for (size_t k = 0; k < g.n; k++)
        CU_ASSERT_EQUAL(g.seq[k], 1234 + k);
    q.newest_first = 1;
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 3000 - 1233);
    CU_ASSERT_EQUAL(g.seq[g.n - 1], 1234);
    /* by time, again inside a row: event i has time 1000 + 10 * i */
    CU_ASSERT_EQUAL(storage_prune_before_time(st, 1000 + 10 * 1700, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 1700 - 1233);
    q = (struct storage_query){ .limit = 10000 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 1300);
    CU_ASSERT_EQUAL(g.seq[0], 1701);
    CU_ASSERT(g.ok_payload);
    q = (struct storage_query){ .subject = "var.lr", .limit = 10000 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 325); /* events 1700..2999 with i % 4 == 0 */
    CU_ASSERT(g.ok_payload);
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(st, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, 1300);
    CU_ASSERT_EQUAL(stats.first_seq, 1701);
    CU_ASSERT_EQUAL(stats.last_seq, 3000);
    teardown();
}

static void test_damaged_record_row_is_reported_as_corrupt(void)
{
    setup();
    append_pattern(st, 20, 1000);
    mb_error err;
    uint8_t key[8];
    rec_put_be64(key, 30); /* a row of its own, above the log's rows */
    CU_ASSERT_EQUAL(storage_testing_put_raw(st, "events", key, 8, "\xC5\x01\x00\x00zzzz", 8, &err),
                    0);
    struct storage_query q = { .limit = 100 };
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(storage_query(st, &q, collect_cb, &g, NULL, &err), MB_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "event row at seq 30"));
    CU_ASSERT_EQUAL(g.n, 20); /* the good rows before it were delivered */
    CU_ASSERT_EQUAL(storage_get(st, 31, collect_cb, &g, &err), MB_ECORRUPT);
    teardown();
}

static void test_subject_query_reads_records_from_the_covering_index(void)
{
    setup();
    storage_testing_set_index_flush(st, 1); /* every entry in a posting row */
    append_pattern(st, 40, 1000);
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(storage_testing_index_sync(st, &err), 0);
    /* Damage the record row copy of seq 5 (subject var.lr): the subject
     * index holds its own copy of the record, so a subject query needs no
     * record row and still delivers it intact, while the log reports it. */
    CU_ASSERT_EQUAL(storage_testing_replace_record(st, 5, "garbage", 7, &err), 0);
    CU_ASSERT_EQUAL(storage_get(st, 5, collect_cb, &g, &err), MB_ECORRUPT);
    struct storage_query q = { .subject = "var.lr", .limit = 100 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 10);
    CU_ASSERT(g.ok_payload);
    CU_ASSERT_EQUAL(g.seq[1], 5);
    q.newest_first = 1;
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 10);
    CU_ASSERT_EQUAL(g.seq[8], 5);
    CU_ASSERT(g.ok_payload);
    /* pruning rewrites covering rows with the records they keep */
    uint64_t removed;
    CU_ASSERT_EQUAL(storage_prune_before_seq(st, 10, &removed, &err), 0);
    q = (struct storage_query){ .subject = "var.lr", .limit = 100 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 7); /* 13, 17, ..., 37 */
    CU_ASSERT_EQUAL(g.seq[0], 13);
    CU_ASSERT(g.ok_payload);
    teardown();
}

static void test_index_entry_of_another_subject_is_filtered_out(void)
{
    setup();
    storage_testing_set_index_flush(st, 1); /* every entry in a posting row */
    append_pattern(st, 8, 1000);
    CU_ASSERT_EQUAL_FATAL(storage_testing_index_sync(st, NULL), 0);
    /* a posting row of "var.lr" that also lists seq 2 (subject
     * "var.momentum"), as a hash collision would */
    rec_posting p[3] = { { 1, 1000, rec_hash("var.set") },
                         { 2, 1010, rec_hash("var.set") },
                         { 5, 1040, rec_hash("var.set") } };
    uint8_t k[16], v[128];
    rec_put_be64(k, rec_hash("var.lr"));
    rec_put_be64(k + 8, 5);
    rec_postings_encode(p, 3, v);
    mb_error err;
    CU_ASSERT_EQUAL(
        storage_testing_put_raw(st, "events_by_subject", k, 16, v, rec_postings_size(3), &err), 0);
    struct storage_query q = { .subject = "var.lr" };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 2); /* seqs 1 and 5 only */
    CU_ASSERT_EQUAL(g.seq[0], 1);
    CU_ASSERT_EQUAL(g.seq[1], 5);
    teardown();
}

static void test_damaged_index_row_is_reported_as_corrupt(void)
{
    setup();
    storage_testing_set_index_flush(st, 1);
    append_pattern(st, 8, 1000);
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(storage_testing_index_sync(st, &err), 0);
    uint8_t k[16];
    rec_put_be64(k, rec_hash("var.lr"));
    rec_put_be64(k + 8, 5);
    CU_ASSERT_EQUAL(storage_testing_put_raw(st, "events_by_subject", k, 16, "x", 1, &err), 0);
    struct storage_query q = { .subject = "var.lr" };
    memset(&g, 0, sizeof(g));
    int rc = storage_query(st, &q, collect_cb, &g, NULL, &err);
    if (rc != MB_ECORRUPT)
        fprintf(stderr, "rc %d n %zu msg %s\n", rc, g.n, rc ? err.msg : "");
    CU_ASSERT_EQUAL(rc, MB_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "events_by_subject"));
    /* a foreign key (17 bytes) inside the range of a type */
    uint8_t k17[17] = { 0 };
    rec_put_be64(k17, rec_hash("var.set"));
    rec_put_be64(k17 + 8, 2);
    CU_ASSERT_EQUAL(storage_testing_put_raw(st, "events_by_type", k17, 17, "x", 1, &err), 0);
    q = (struct storage_query){ .type = "var.set" };
    CU_ASSERT_EQUAL(storage_query(st, &q, collect_cb, &g, NULL, &err), MB_ECORRUPT);
    /* retention drops the damaged row instead of failing on it */
    uint64_t removed;
    CU_ASSERT_EQUAL(storage_prune_before_seq(st, 6, &removed, &err), 0);
    q = (struct storage_query){ .subject = "var.lr" };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(storage_testing_put_raw(st, "nope", k, 9, "x", 1, &err), MB_ENOTFOUND);
    teardown();
}

static void test_index_tail_is_rebuilt_after_a_crash(void)
{
    /* Default flush size: everything stays in the tail; the writer process
     * is killed so the tail is never written; the reopened store rebuilds
     * it from the events. Covered with real SIGKILLs below; here the
     * rebuild is checked directly by reopening without a flush. */
    setup();
    storage_testing_set_index_flush(st, 1000000);
    append_pattern(st, 100, 1000);
    struct storage_query q = { .subject = "agent-7", .limit = 1000 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 25);
    reopen(); /* close writes the tail; reopen reads rows */
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 25);
    teardown();
}

/* Run the helper binary next to this test binary. */
static void helper_path(char *out, size_t size)
{
    char self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CU_ASSERT_FATAL(n > 0);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(out, size, "%s/storage_writer", self);
}

static pid_t spawn_helper(char *const argv[], int *out_fd)
{
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Nodes that apply the same events must not freeze (and flush) their index
 * tails at the same moment: each freeze size is drawn from [1/2, 3/2) of
 * 131072 events; a test's explicit size is used as it is. */
static void test_index_tail_freeze_sizes_are_drawn_around_the_default(void)
{
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "storage"), 0);
    st = open_at(dir, STORAGE_FAST); /* not setup(): it sets an exact size */
    enum { N = 400 };
    size_t d[N];
    storage_testing_freeze_draws(st, d, N);
    size_t lo = SIZE_MAX, hi = 0;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        CU_ASSERT(d[i] >= 65536 && d[i] < 196608);
        lo = d[i] < lo ? d[i] : lo;
        hi = d[i] > hi ? d[i] : hi;
        sum += (double)d[i];
    }
    CU_ASSERT(hi - lo > 65536); /* spread over most of the range */
    CU_ASSERT(sum / N > 0.9 * 131072 && sum / N < 1.1 * 131072);
    storage_testing_set_index_flush(st, 1000);
    storage_testing_freeze_draws(st, d, 4);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(d[i], 1000);
    teardown();
}

/* The events family's write_buffer_size in the newest OPTIONS file RocksDB
 * wrote for the store at `path` (0 when not found). */
static unsigned long long events_write_buffer_of(const char *path)
{
    DIR *d = opendir(path);
    char newest[600] = "";
    unsigned long long best = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        unsigned long long n;
        if (sscanf(e->d_name, "OPTIONS-%llu", &n) == 1 && n >= best) {
            best = n;
            snprintf(newest, sizeof(newest), "%s/%s", path, e->d_name);
        }
    }
    if (d != NULL)
        closedir(d);
    FILE *f = newest[0] != '\0' ? fopen(newest, "r") : NULL;
    char line[512];
    int in_events = 0;
    unsigned long long size = 0;
    while (f != NULL && size == 0 && fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '[')
            in_events = strncmp(line, "[CFOptions \"events\"]", 20) == 0;
        else if (in_events)
            (void)sscanf(line, " write_buffer_size=%llu", &size);
    }
    if (f != NULL)
        fclose(f);
    return size;
}

/* Nodes that append the same events must not fill (and flush) their events
 * memtables at the same moment: each store draws its write buffer from
 * [48, 80) MiB. */
static void test_events_write_buffer_is_drawn_per_store(void)
{
    char dir2[512];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "storage"), 0);
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir2, sizeof(dir2), "storage"), 0);
    storage *a = open_at(dir, STORAGE_FAST);
    storage *b = open_at(dir2, STORAGE_FAST);
    unsigned long long wa = events_write_buffer_of(dir), wb = events_write_buffer_of(dir2);
    CU_ASSERT(wa >= 48ull << 20 && wa < 80ull << 20);
    CU_ASSERT(wb >= 48ull << 20 && wb < 80ull << 20);
    CU_ASSERT_NOT_EQUAL(wa, wb); /* equal by chance: 1 in 2^25 */
    storage_close(a);
    storage_close(b);
    mb_test_rmtree(dir2);
    mb_test_rmtree(dir);
}

static void test_second_open_fails_with_ebusy(void)
{
    setup();
    storage_options o = { .path = dir };
    storage *s2 = NULL;
    mb_error err;
    CU_ASSERT_EQUAL(storage_open(&o, &s2, &err), MB_EBUSY);
    CU_ASSERT_PTR_NULL(s2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, dir));
    /* from another process */
    char helper[4096];
    helper_path(helper, sizeof(helper));
    char *argv[] = { helper, "probe", dir, NULL };
    int fd;
    pid_t pid = spawn_helper(argv, &fd);
    char line[512];
    CU_ASSERT(mb_test_read_line(fd, line, sizeof(line), 20000) > 0);
    int code = -1;
    sscanf(line, "open %d", &code);
    CU_ASSERT_EQUAL(code, MB_EBUSY);
    close(fd);
    waitpid(pid, NULL, 0);
    teardown();
}

static void test_open_refuses_a_foreign_directory(void)
{
    char d[512];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(d, sizeof(d), "storage-foreign"), 0);
    char f[600];
    snprintf(f, sizeof(f), "%s/notes.txt", d);
    FILE *fp = fopen(f, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs("not a database\n", fp);
    fclose(fp);
    storage_options o = { .path = d };
    storage *s = NULL;
    mb_error err;
    CU_ASSERT_EQUAL(storage_open(&o, &s, &err), MB_ECORRUPT);
    CU_ASSERT_PTR_NULL(s);
    o.path = f; /* a file, not a directory */
    CU_ASSERT_EQUAL(storage_open(&o, &s, &err), MB_EINVAL);
    o.path = "";
    CU_ASSERT_EQUAL(storage_open(&o, &s, &err), MB_EINVAL);
    mb_test_rmtree(d);
}

struct verify {
    uint64_t expect;
    int intact;
};

/* Every event must be the next seq with its exact payload. */
static int verify_cb(const storage_event *ev, void *arg)
{
    struct verify *v = arg;
    if (ev->seq != v->expect || !pattern_check(ev->seq, ev->payload, ev->payload_len))
        v->intact = 0;
    v->expect++;
    return 0;
}

/* Start a writer, SIGKILL it after `acks` acknowledged batches, reopen and
 * check: every acknowledged event present and intact, no partial batch, and
 * no damaged record anywhere. */
static void kill_writer_and_verify(const char *mode, int acks)
{
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "storage-kill"), 0);
    char helper[4096];
    helper_path(helper, sizeof(helper));
    char *argv[] = { helper, "append", (char *)mode, dir, NULL };
    int fd;
    pid_t pid = spawn_helper(argv, &fd);
    uint64_t last_acked = 0;
    char line[256];
    for (int i = 0; i < acks; i++) {
        if (mb_test_read_line(fd, line, sizeof(line), 30000) <= 0)
            break;
        unsigned long long v;
        if (sscanf(line, "ack %llu", &v) == 1)
            last_acked = v;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(fd);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CU_ASSERT_EQUAL_FATAL(last_acked, (uint64_t)acks * PATTERN_BATCH);

    storage *s = open_at(dir, STORAGE_FAST);
    uint64_t last = storage_last_seq(s);
    CU_ASSERT(last >= last_acked);
    CU_ASSERT_EQUAL(last % PATTERN_BATCH, 0); /* no partial batch */
    storage_stats stats;
    CU_ASSERT_EQUAL(storage_get_stats(s, &stats, NULL), 0);
    CU_ASSERT_EQUAL(stats.count, last);
    /* read everything back through the log and check every payload */
    struct storage_query q = { .limit = 10000 };
    uint64_t cursor = 0;
    struct verify v = { .expect = 1, .intact = 1 };
    do {
        q.cursor = cursor;
        mb_error err;
        int rc = storage_query(s, &q, verify_cb, &v, &cursor, &err);
        if (rc != 0)
            fprintf(stderr, "verify: %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    } while (cursor != 0);
    uint64_t expect = v.expect;
    int intact = v.intact;
    CU_ASSERT(intact);
    CU_ASSERT_EQUAL(expect - 1, last);
    storage_close(s);
    mb_test_rmtree(dir);
}

static void test_kill9_fast_mode_loses_no_acknowledged_event(void)
{
    kill_writer_and_verify("fast", 400);
}

static void test_kill9_durable_mode_loses_no_acknowledged_event(void)
{
    kill_writer_and_verify("durable", 150);
}

/* Subject and type queries of the events of the kill tests: every seq
 * 1..last exactly once, in order, intact. */
struct idx_verify {
    uint64_t prev, n;
    int ok;
};

static int idx_verify_cb(const storage_event *ev, void *arg)
{
    struct idx_verify *v = arg;
    if (ev->seq <= v->prev || !pattern_check(ev->seq, ev->payload, ev->payload_len))
        v->ok = 0;
    v->prev = ev->seq;
    v->n++;
    return 0;
}

/* Query `subject` or `type` over every page; *n gets the events seen. */
static int idx_query_all(storage *s, const char *subject, const char *type, uint64_t *n)
{
    struct storage_query q = { .subject = subject, .type = type, .limit = 10000 };
    struct idx_verify v = { .ok = 1 };
    uint64_t cursor = 0;
    do {
        q.cursor = cursor;
        mb_error err;
        if (storage_query(s, &q, idx_verify_cb, &v, &cursor, &err) != 0) {
            fprintf(stderr, "index query: %s\n", err.msg);
            return 0;
        }
    } while (cursor != 0);
    *n = v.n;
    return v.ok;
}

/* Events 1..last of the writer's pattern with subject "even" (positions
 * 0, 2, 4 of each batch of 5). */
static uint64_t evens_up_to(uint64_t last)
{
    uint64_t n = 0;
    for (uint64_t seq = 1; seq <= last; seq++)
        n += (seq - 1) % PATTERN_BATCH % 2 == 0;
    return n;
}

static void check_index_complete(storage *s)
{
    uint64_t last = storage_last_seq(s), n = 0;
    CU_ASSERT(idx_query_all(s, NULL, "test.kill", &n));
    CU_ASSERT_EQUAL(n, last);
    CU_ASSERT(idx_query_all(s, "even", NULL, &n));
    CU_ASSERT_EQUAL(n, evens_up_to(last));
    CU_ASSERT(idx_query_all(s, "odd", NULL, &n));
    CU_ASSERT_EQUAL(n, last - evens_up_to(last));
    CU_ASSERT(idx_query_all(s, "even", "test.kill", &n));
    CU_ASSERT_EQUAL(n, evens_up_to(last));
}

static void test_kill9_during_background_index_flush_leaves_index_complete(void)
{
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "storage-flushkill"), 0);
    char helper[4096];
    helper_path(helper, sizeof(helper));
    char *argv[] = { helper, "flushkill", dir, NULL };
    int fd;
    pid_t pid = spawn_helper(argv, &fd);
    uint64_t last_acked = 0;
    int paused = 0;
    char line[256];
    for (int i = 0; i < 100000 && !paused; i++) { /* bounded; the writer blocks soon */
        if (mb_test_read_line(fd, line, sizeof(line), 30000) <= 0)
            break;
        unsigned long long v;
        if (sscanf(line, "ack %llu", &v) == 1)
            last_acked = v;
        paused = strcmp(line, "paused") == 0;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(fd);
    CU_ASSERT_FATAL(paused);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* On disk: the subject family holds the rows of the interrupted flush
     * and its mark, the type family does not. */
    storage *s = open_at(dir, STORAGE_FAST);
    uint64_t msubj, mtype;
    storage_testing_index_marks(s, &msubj, &mtype);
    CU_ASSERT(msubj > mtype);
    CU_ASSERT(storage_last_seq(s) >= last_acked);
    CU_ASSERT(last_acked > msubj);
    check_index_complete(s);
    /* More events, everything written as rows: still each event once (the
     * subject rows of the interrupted flush are not written twice). */
    storage_testing_set_index_flush(s, 50);
    for (int b = 0; b < 40; b++) {
        storage_event evs[PATTERN_BATCH];
        char payloads[PATTERN_BATCH][PATTERN_PAYLOAD_MAX];
        uint64_t base = storage_last_seq(s);
        for (int i = 0; i < PATTERN_BATCH; i++) {
            uint64_t seq = base + (uint64_t)i + 1;
            evs[i] = (storage_event){ .type = "test.kill",
                                      .subject = i % 2 ? "odd" : "even",
                                      .time_ms = (int64_t)seq * 10,
                                      .payload = payloads[i],
                                      .payload_len = pattern_payload(seq, payloads[i]) };
        }
        CU_ASSERT_EQUAL_FATAL(storage_append(s, evs, PATTERN_BATCH, NULL), 0);
    }
    CU_ASSERT_EQUAL(storage_testing_index_sync(s, NULL), 0);
    storage_testing_index_marks(s, &msubj, &mtype);
    CU_ASSERT_EQUAL(msubj, storage_last_seq(s));
    CU_ASSERT_EQUAL(mtype, storage_last_seq(s));
    check_index_complete(s);
    storage_close(s);
    s = open_at(dir, STORAGE_FAST);
    check_index_complete(s);
    storage_close(s);
    mb_test_rmtree(dir);
}

/* Times of the events appended by append_times, by seq. */
#define TR_MAX 3000
static int64_t tr_time[TR_MAX + 1];
static size_t tr_n;

/* Append one call of k events with times t0, t0 + step, ... */
static void append_times(size_t k, int64_t t0, int64_t step)
{
    static storage_event evs[1000];
    static char payloads[1000][32];
    CU_ASSERT_FATAL(k <= 1000 && tr_n + k <= TR_MAX);
    for (size_t i = 0; i < k; i++) {
        int len = snprintf(payloads[i], sizeof(payloads[i]), "payload-%zu", tr_n + i + 1);
        evs[i] = (storage_event){ .type = "t",
                                  .subject = "s",
                                  .time_ms = t0 + step * (int64_t)i,
                                  .payload = payloads[i],
                                  .payload_len = (size_t)len };
    }
    mb_error err;
    CU_ASSERT_EQUAL_FATAL(storage_append(st, evs, k, &err), 0);
    for (size_t i = 0; i < k; i++) {
        CU_ASSERT_EQUAL_FATAL(evs[i].seq, tr_n + i + 1);
        tr_time[tr_n + i + 1] = evs[i].time_ms;
    }
    tr_n += k;
}

static int tr_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    if (tr_time[x] != tr_time[y])
        return tr_time[x] < tr_time[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Run the time query [lo, hi] (seqs >= floor present) in pages of `page`,
 * both directions, and compare with the (time, seq) order of tr_time. */
static void check_time_query(int64_t lo, int64_t hi, uint64_t floor, size_t page)
{
    static uint64_t expect[TR_MAX];
    size_t ne = 0;
    for (uint64_t seq = floor; seq <= tr_n; seq++)
        if (tr_time[seq] >= lo && tr_time[seq] <= hi)
            expect[ne++] = seq;
    qsort(expect, ne, sizeof(*expect), tr_cmp); /* (time, seq) order */
    for (int desc = 0; desc < 2; desc++) {
        struct storage_query q = {
            .from_time_ms = lo, .to_time_ms = hi, .limit = page, .newest_first = desc
        };
        size_t seen = 0;
        for (int pages = 0; pages < 2000; pages++) {
            uint64_t cursor = 0;
            CU_ASSERT_EQUAL_FATAL(query(&q, &cursor), 0);
            for (size_t k = 0; k < g.n; k++, seen++) {
                CU_ASSERT_FATAL(seen < ne);
                CU_ASSERT_EQUAL_FATAL(g.seq[k], desc ? expect[ne - 1 - seen] : expect[seen]);
            }
            if (cursor == 0)
                break;
            q.cursor = cursor;
        }
        CU_ASSERT_EQUAL(seen, ne);
    }
}

static void test_time_index_holds_one_row_per_run_not_per_event(void)
{
    setup();
    tr_n = 0;
    append_times(1000, 10000, 1); /* 1000 ms: two runs (512 + 488) */
    append_times(100, 50000, 0);  /* equal times: one run */
    append_times(10, 90000, -1);  /* decreasing: one run each */
    uint64_t rows = 0;
    mb_error err;
    CU_ASSERT_EQUAL(storage_testing_count_rows(st, "events_by_time", &rows, &err), 0);
    CU_ASSERT_EQUAL(rows, 2 + 1 + 10);
    check_time_query(10000, 90000, 1, 97);
    /* Runs span at most the window: times 3 * window apart each start one. */
    append_times(5, 200000, 3 * TRUN_WINDOW_MS);
    CU_ASSERT_EQUAL(storage_testing_count_rows(st, "events_by_time", &rows, &err), 0);
    CU_ASSERT_EQUAL(rows, 2 + 1 + 10 + 5);
    check_time_query(0, 300000, 1, 3);
    teardown();
}

static void test_time_query_merges_overlapping_runs_both_directions(void)
{
    setup();
    tr_n = 0;
    /* Groups whose time ranges interleave, so runs overlap in time. */
    append_times(600, 1000, 3);  /* 1000 .. 2797 */
    append_times(600, 1001, 3);  /* 1001 .. 2798 */
    append_times(300, 2000, -2); /* decreasing */
    append_times(400, 1500, 0);  /* all at 1500 */
    append_times(500, 900, 5);   /* 900 .. 3395 */
    check_time_query(0 + 1, 5000, 1, 250);
    check_time_query(1500, 1500, 1, 33);
    check_time_query(1490, 2010, 1, 77);
    check_time_query(2799, 3000, 1, 1000);
    /* Retention rewrites runs it cuts through; queries see the rest. */
    uint64_t removed = 0;
    mb_error err;
    CU_ASSERT_EQUAL(storage_prune_before_seq(st, 900, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 899);
    check_time_query(1, 5000, 900, 250);
    check_time_query(1490, 2010, 900, 61);
    reopen();
    check_time_query(1, 5000, 900, 500);
    teardown();
}

static void test_prune_before_time_rewrites_runs_it_cuts_through(void)
{
    setup();
    tr_n = 0;
    append_times(1000, 1000, 1); /* 1000 .. 1999 */
    append_times(1000, 1500, 1); /* 1500 .. 2499 */
    uint64_t removed = 0;
    mb_error err;
    CU_ASSERT_EQUAL(storage_prune_before_time(st, 1700, &removed, &err), 0);
    CU_ASSERT_EQUAL(removed, 700 + 200);
    /* What is left: seqs 701..1000 and 1201..2000. */
    for (uint64_t seq = 1; seq <= 2000; seq++)
        if (tr_time[seq] < 1700)
            tr_time[seq] = INT64_MIN; /* matches no query below */
    check_time_query(1, 3000, 1, 111);
    struct storage_query q = { .to_time_ms = 1699, .limit = 10 };
    CU_ASSERT_EQUAL(query(&q, NULL), 0);
    CU_ASSERT_EQUAL(g.n, 0);
    teardown();
}

/* Records and the subject rows that copy them reach disk LZ4-compressed
 * from the first flush on: in the daemon the event log shares the disk with
 * raft's synchronous appends, and uncompressed flushes stalled them. */
static void test_flushed_records_are_compressed_from_level0(void)
{
    setup();
    mb_error err;
    char payload[2000][64];
    storage_event evs[2000];
    char subj[10][8];
    for (int i = 0; i < 10; i++)
        snprintf(subj[i], sizeof(subj[i]), "var%d", i);
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(payload[i], sizeof(payload[i]),
                         "{\"version\":%d,\"value\":0.%012d,\"by\":\"\"}", i + 1, i * 7919);
        evs[i] = (storage_event){ .type = "var.set",
                                  .subject = subj[i % 10],
                                  .time_ms = 1700000000000 + i,
                                  .payload = payload[i],
                                  .payload_len = (size_t)n };
    }
    CU_ASSERT_EQUAL_FATAL(storage_append(st, evs, 2000, &err), 0);
    CU_ASSERT_EQUAL_FATAL(storage_testing_index_sync(st, &err), 0);
    CU_ASSERT_EQUAL_FATAL(storage_testing_flush_memtables(st, &err), 0);
    const char *cfs[] = { "events", "events_by_subject" };
    for (int i = 0; i < 2; i++) {
        double ratio = 0;
        CU_ASSERT_EQUAL_FATAL(storage_testing_level0_ratio(st, cfs[i], &ratio, &err), 0);
        if (ratio < 1.5)
            fprintf(stderr, "%s: level-0 compression ratio %.2f\n", cfs[i], ratio);
        CU_ASSERT(ratio >= 1.5);
    }
    double r;
    CU_ASSERT_EQUAL(storage_testing_level0_ratio(st, "no_such_family", &r, &err), MB_ENOTFOUND);
    teardown();
}

static CU_TestInfo append_tests[] = {
    { "append_assigns_sequences_and_get_returns_event",
      test_append_assigns_sequences_and_get_returns_event },
    { "events_and_last_seq_survive_reopen", test_events_and_last_seq_survive_reopen },
    { "replay_of_existing_seq_is_skipped", test_replay_of_existing_seq_is_skipped },
    { "append_rejects_bad_input_and_writes_nothing",
      test_append_rejects_bad_input_and_writes_nothing },
    { "flushed_records_are_compressed_from_level0",
      test_flushed_records_are_compressed_from_level0 },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo query_tests[] = {
    { "query_by_seq_range_both_directions", test_query_by_seq_range_both_directions },
    { "query_limit_defaults_to_100_and_caps_at_10000",
      test_query_limit_defaults_to_100_and_caps_at_10000 },
    { "query_by_subject_type_and_time_alone_and_combined",
      test_query_by_subject_type_and_time_alone_and_combined },
    { "time_query_orders_by_time_when_times_are_not_monotonic",
      test_time_query_orders_by_time_when_times_are_not_monotonic },
    { "callback_stop_gives_cursor_to_resume", test_callback_stop_gives_cursor_to_resume },
    { "time_index_holds_one_row_per_run_not_per_event",
      test_time_index_holds_one_row_per_run_not_per_event },
    { "time_query_merges_overlapping_runs_both_directions",
      test_time_query_merges_overlapping_runs_both_directions },
    { "prune_before_time_rewrites_runs_it_cuts_through",
      test_prune_before_time_rewrites_runs_it_cuts_through },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo retention_tests[] = {
    { "prune_before_seq_removes_events_and_index_rows",
      test_prune_before_seq_removes_events_and_index_rows },
    { "prune_before_time_removes_events_and_index_rows",
      test_prune_before_time_removes_events_and_index_rows },
    { "stats_report_count_bytes_and_range", test_stats_report_count_bytes_and_range },
    { "prune_inside_a_record_row_keeps_the_rest_of_the_row",
      test_prune_inside_a_record_row_keeps_the_rest_of_the_row },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo kv_tests[] = {
    { "meta_put_get_and_append_meta_is_atomic_with_events",
      test_meta_put_get_and_append_meta_is_atomic_with_events },
    { "local_events_have_their_own_sequence_space",
      test_local_events_have_their_own_sequence_space },
    { "blobs_put_get_replace_delete", test_blobs_put_get_replace_delete },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo fault_tests[] = {
    { "damaged_record_is_reported_as_corrupt_with_its_seq",
      test_damaged_record_is_reported_as_corrupt_with_its_seq },
    { "index_entry_of_another_subject_is_filtered_out",
      test_index_entry_of_another_subject_is_filtered_out },
    { "damaged_index_row_is_reported_as_corrupt", test_damaged_index_row_is_reported_as_corrupt },
    { "damaged_record_row_is_reported_as_corrupt", test_damaged_record_row_is_reported_as_corrupt },
    { "subject_query_reads_records_from_the_covering_index",
      test_subject_query_reads_records_from_the_covering_index },
    { "index_tail_freeze_sizes_are_drawn_around_the_default",
      test_index_tail_freeze_sizes_are_drawn_around_the_default },
    { "events_write_buffer_is_drawn_per_store", test_events_write_buffer_is_drawn_per_store },
    { "index_tail_is_rebuilt_after_a_crash", test_index_tail_is_rebuilt_after_a_crash },
    { "second_open_fails_with_ebusy", test_second_open_fails_with_ebusy },
    { "open_refuses_a_foreign_directory", test_open_refuses_a_foreign_directory },
    { "kill9_fast_mode_loses_no_acknowledged_event",
      test_kill9_fast_mode_loses_no_acknowledged_event },
    { "kill9_during_background_index_flush_leaves_index_complete",
      test_kill9_during_background_index_flush_leaves_index_complete },
    { "kill9_durable_mode_loses_no_acknowledged_event",
      test_kill9_durable_mode_loses_no_acknowledged_event },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "append", NULL, NULL, NULL, NULL, append_tests },
    { "query", NULL, NULL, NULL, NULL, query_tests },
    { "retention", NULL, NULL, NULL, NULL, retention_tests },
    { "kv", NULL, NULL, NULL, NULL, kv_tests },
    { "faults", NULL, NULL, NULL, NULL, fault_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
