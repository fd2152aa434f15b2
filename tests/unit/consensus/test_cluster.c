/* Deterministic cluster tests: the real FSM adapter and state machine on
 * 3-5 simulated servers of raft's own fixture (virtual time, no disk, no
 * sockets): replication, minority partitions, leader loss, catch-up,
 * snapshot install to a lagging server, identical state everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/fixture.h>

#include "consensus/consensus.h"
#include "mb_test.h"

#define MAX_SERVERS 5

static struct raft_fixture f;
static consensus_fsm *fsms[MAX_SERVERS];
static unsigned n_servers;

/* Per-server effect counters. */
static struct fx_count {
    unsigned events;
    unsigned restores;
    uint64_t max_index;
    uint64_t index_before_restore; /* max_index when the last restore came */
    char restore_payload[128];
} counts[MAX_SERVERS];

static void effects_cb(void *arg, uint64_t index, const consensus_effects *fx)
{
    struct fx_count *c = arg;
    for (size_t i = 0; i < fx->n; i++) {
        if (fx->items[i].kind != CONSENSUS_FX_EVENT)
            continue;
        if (strcmp(fx->items[i].type, "state.restore") == 0) {
            c->restores++;
            c->index_before_restore = c->max_index;
            snprintf(c->restore_payload, sizeof(c->restore_payload), "%s", fx->items[i].payload);
        } else
            c->events++;
    }
    if (index > c->max_index)
        c->max_index = index;
}

static void cluster_up(unsigned n, unsigned snapshot_threshold)
{
    memset(&f, 0, sizeof(f)); /* 0.15 does not reset f->n */
    memset(counts, 0, sizeof(counts));
    n_servers = n;
    CU_ASSERT_EQUAL_FATAL(raft_fixture_initialize(&f), 0);
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_EQUAL_FATAL(consensus_fsm_new(NULL, effects_cb, &counts[i], 0, &fsms[i]), MB_OK);
        CU_ASSERT_EQUAL_FATAL(raft_fixture_grow(&f, consensus_fsm_raft(fsms[i])), 0);
    }
    for (unsigned i = 0; i < n; i++) {
        struct raft *r = raft_fixture_get(&f, i);
        consensus_fsm_attach(fsms[i], r);
        if (snapshot_threshold > 0) {
            raft_set_snapshot_threshold(r, snapshot_threshold);
            raft_set_snapshot_trailing(r, 2);
        }
    }
    struct raft_configuration conf;
    CU_ASSERT_EQUAL_FATAL(raft_fixture_configuration(&f, n, &conf), 0);
    CU_ASSERT_EQUAL_FATAL(raft_fixture_bootstrap(&f, &conf), 0);
    raft_configuration_close(&conf);
    CU_ASSERT_EQUAL_FATAL(raft_fixture_start(&f), 0);
    CU_ASSERT_TRUE_FATAL(raft_fixture_step_until_has_leader(&f, 10000));
}

static void cluster_down(void)
{
    raft_fixture_close(&f);
    for (unsigned i = 0; i < n_servers; i++) {
        consensus_fsm_free(fsms[i]);
        fsms[i] = NULL;
    }
}

typedef struct apply_ctx {
    struct raft_apply req;
    int done;
    int status;
    consensus_result res;
} apply_ctx;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    apply_ctx *c = req->data;
    c->done = 1;
    c->status = status;
    if (status == 0)
        c->res = *(const consensus_result *)result;
}

static int propose(unsigned server, const consensus_cmd *cmd, apply_ctx *ctx)
{
    struct raft_buffer buf;
    void *raw;
    size_t raw_len;
    memset(ctx, 0, sizeof(*ctx));
    ctx->req.data = ctx;
    CU_ASSERT_EQUAL_FATAL(consensus_cmd_encode(cmd, NULL, &raw, &raw_len, NULL), MB_OK);
    CU_ASSERT_EQUAL_FATAL(consensus_entry_frame(raw, raw_len, raft_malloc, &buf.base, &buf.len),
                          MB_OK);
    free(raw);
    int rv = raft_apply(raft_fixture_get(&f, server), &ctx->req, &buf, 1, apply_cb);
    if (rv != 0)
        raft_free(buf.base);
    return rv;
}

static bool ctx_done(struct raft_fixture *fx, void *arg)
{
    (void)fx;
    return ((apply_ctx *)arg)->done;
}

static int propose_and_wait(unsigned server, const consensus_cmd *cmd, consensus_result *res)
{
    apply_ctx ctx;
    int rv = propose(server, cmd, &ctx);
    if (rv != 0)
        return rv;
    raft_fixture_step_until(&f, ctx_done, &ctx, 10000);
    CU_ASSERT_TRUE_FATAL(ctx.done);
    if (res != NULL)
        *res = ctx.res;
    return ctx.status;
}

static unsigned leader_of(const unsigned *members, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        if (raft_state(raft_fixture_get(&f, members[k])) == RAFT_LEADER)
            return members[k];
    return MAX_SERVERS;
}

static consensus_cmd define_cmd(const char *name)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = (char *)name };
    c.spec.type = MB_VT_INT;
    c.spec.imin = 0;
    c.spec.imax = 1000000;
    return c;
}

static consensus_cmd set_cmd(const char *name, int64_t v, uint64_t client, uint64_t seq)
{
    consensus_cmd c = {
        .kind = CONSENSUS_CMD_VAR_SET, .name = (char *)name, .client_id = client, .request_seq = seq
    };
    c.value.type = MB_VT_INT;
    c.value.u.i = v;
    return c;
}

/* Every server's state encodes to the same bytes. */
static void assert_identical_states(void)
{
    void *ref = NULL;
    size_t ref_len = 0;
    CU_ASSERT_EQUAL_FATAL(
        consensus_sm_snapshot(consensus_fsm_sm(fsms[0]), NULL, &ref, &ref_len, NULL), MB_OK);
    for (unsigned i = 1; i < n_servers; i++) {
        void *b = NULL;
        size_t l = 0;
        CU_ASSERT_EQUAL_FATAL(consensus_sm_snapshot(consensus_fsm_sm(fsms[i]), NULL, &b, &l, NULL),
                              MB_OK);
        CU_ASSERT_TRUE(l == ref_len && memcmp(b, ref, l) == 0);
        free(b);
    }
    free(ref);
}

static int64_t value_on(unsigned server, const char *name)
{
    const consensus_var *v = consensus_sm_var_get(consensus_fsm_sm(fsms[server]), name);
    return v != NULL ? v->value.u.i : -1;
}

static void test_commands_replicate_to_every_server_identically(void)
{
    cluster_up(3, 0);
    unsigned l = raft_fixture_leader_index(&f);
    consensus_cmd d = define_cmd("x");
    consensus_result res;
    CU_ASSERT_EQUAL(propose_and_wait(l, &d, &res), 0);
    CU_ASSERT_EQUAL(res.code, MB_OK);
    for (int i = 1; i <= 10; i++) {
        consensus_cmd s = set_cmd("x", i, 1, (uint64_t)i);
        CU_ASSERT_EQUAL(propose_and_wait(l, &s, &res), 0);
        CU_ASSERT_EQUAL(res.code, MB_OK);
    }
    /* A retried request id is answered, not re-applied. */
    consensus_cmd again = set_cmd("x", 999, 1, 3);
    CU_ASSERT_EQUAL(propose_and_wait(l, &again, &res), 0);
    CU_ASSERT_EQUAL(res.code, MB_OK);
    raft_index last = raft_last_applied(raft_fixture_get(&f, l));
    CU_ASSERT_TRUE(raft_fixture_step_until_applied(&f, n_servers, last, 5000));
    for (unsigned i = 0; i < n_servers; i++) {
        CU_ASSERT_EQUAL(value_on(i, "x"), 10);
        CU_ASSERT_EQUAL(counts[i].events, 11);
    }
    assert_identical_states();
    cluster_down();
}

static void isolate(const unsigned *a, unsigned na, const unsigned *b, unsigned nb)
{
    for (unsigned i = 0; i < na; i++)
        for (unsigned j = 0; j < nb; j++) {
            raft_fixture_saturate(&f, a[i], b[j]);
            raft_fixture_saturate(&f, b[j], a[i]);
        }
}

static void heal(const unsigned *a, unsigned na, const unsigned *b, unsigned nb)
{
    for (unsigned i = 0; i < na; i++)
        for (unsigned j = 0; j < nb; j++) {
            raft_fixture_desaturate(&f, a[i], b[j]);
            raft_fixture_desaturate(&f, b[j], a[i]);
        }
}

static void test_minority_partition_cannot_commit_and_heals_by_catching_up(void)
{
    cluster_up(5, 0);
    unsigned l = raft_fixture_leader_index(&f);
    consensus_cmd d = define_cmd("x");
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &d, NULL), 0);
    /* The leader and one follower on one side, three servers on the other. */
    unsigned minority[2] = { l, (l + 1) % 5 }, majority[3];
    for (unsigned k = 0; k < 3; k++)
        majority[k] = (l + 2 + k) % 5;
    isolate(minority, 2, majority, 3);
    apply_ctx stuck;
    consensus_cmd lost = set_cmd("x", 666, 2, 1);
    CU_ASSERT_EQUAL_FATAL(propose(l, &lost, &stuck), 0);
    raft_fixture_step_until_elapsed(&f, 10000);
    /* Never acknowledged as applied: the old leader stepped down. */
    CU_ASSERT_TRUE(!stuck.done || stuck.status != 0);
    CU_ASSERT_NOT_EQUAL(raft_state(raft_fixture_get(&f, l)), RAFT_LEADER);
    unsigned nl = leader_of(majority, 3);
    CU_ASSERT_FATAL(nl < MAX_SERVERS);
    consensus_cmd s = set_cmd("x", 7, 3, 1);
    consensus_result res;
    CU_ASSERT_EQUAL(propose_and_wait(nl, &s, &res), 0);
    CU_ASSERT_EQUAL(res.code, MB_OK);
    CU_ASSERT_EQUAL(value_on(minority[0], "x"), 0);
    heal(minority, 2, majority, 3);
    raft_fixture_step_until(&f, ctx_done, &stuck, 10000);
    raft_index last = raft_last_applied(raft_fixture_get(&f, nl));
    CU_ASSERT_TRUE(raft_fixture_step_until_applied(&f, n_servers, last, 10000));
    for (unsigned i = 0; i < n_servers; i++)
        CU_ASSERT_EQUAL(value_on(i, "x"), 7);
    assert_identical_states();
    cluster_down();
}

static void test_leader_loss_elects_a_new_leader_and_keeps_committed_writes(void)
{
    cluster_up(3, 0);
    unsigned l = raft_fixture_leader_index(&f);
    consensus_cmd d = define_cmd("x");
    consensus_cmd s1 = set_cmd("x", 1, 4, 1);
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &d, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &s1, NULL), 0);
    raft_fixture_kill(&f, l);
    unsigned others[2] = { (l + 1) % 3, (l + 2) % 3 };
    for (int t = 0; t < 100 && leader_of(others, 2) == MAX_SERVERS; t++)
        raft_fixture_step_until_elapsed(&f, 200);
    unsigned nl = leader_of(others, 2);
    CU_ASSERT_FATAL(nl < MAX_SERVERS);
    CU_ASSERT_EQUAL(value_on(nl, "x"), 1);
    consensus_cmd s2 = set_cmd("x", 2, 4, 2);
    consensus_result res;
    CU_ASSERT_EQUAL(propose_and_wait(nl, &s2, &res), 0);
    CU_ASSERT_EQUAL(res.code, MB_OK);
    raft_fixture_revive(&f, l);
    raft_index last = raft_last_applied(raft_fixture_get(&f, nl));
    CU_ASSERT_TRUE(raft_fixture_step_until_applied(&f, n_servers, last, 10000));
    CU_ASSERT_EQUAL(value_on(l, "x"), 2);
    assert_identical_states();
    cluster_down();
}

static void test_lagging_server_catches_up_by_snapshot_install(void)
{
    cluster_up(3, 4);
    unsigned l = raft_fixture_leader_index(&f);
    unsigned lag = (l + 1) % 3;
    consensus_cmd d = define_cmd("x");
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &d, NULL), 0);
    raft_fixture_kill(&f, lag);
    for (int i = 1; i <= 30; i++) {
        consensus_cmd s = set_cmd("x", i, 5, (uint64_t)i);
        CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &s, NULL), 0);
    }
    CU_ASSERT_TRUE(value_on(lag, "x") <= 0); /* not defined yet, or never set */
    raft_fixture_revive(&f, lag);
    raft_index last = raft_last_applied(raft_fixture_get(&f, l));
    CU_ASSERT_TRUE(raft_fixture_step_until_applied(&f, lag, last, 20000));
    CU_ASSERT_EQUAL(value_on(lag, "x"), 30);
    /* It got there through InstallSnapshot, not entry by entry. */
    CU_ASSERT_TRUE(counts[lag].restores >= 1);
    CU_ASSERT_TRUE(counts[lag].events < 30);
    /* The marker names the gap of this server's event log: from the entry
     * after the last one it applied itself up to the snapshot's index. */
    char want[128];
    snprintf(want, sizeof(want), "{\"from_index\":%llu,\"applied_index\":",
             (unsigned long long)counts[lag].index_before_restore + 1);
    CU_ASSERT_EQUAL(strncmp(counts[lag].restore_payload, want, strlen(want)), 0);
    /* The dedup table came along: a retry of request 30 is not re-applied. */
    CU_ASSERT_TRUE(consensus_sm_dedup_lookup(consensus_fsm_sm(fsms[lag]), 5, 30, NULL));
    assert_identical_states();
    cluster_down();
}

/* raftperf2 (docs/consensus.md §4 "Snapshot installs"): libraft 0.15 keeps
 * no log entries on a server that installed a snapshot (logRestore empties
 * its log), so once that server leads, a follower only a few entries
 * behind its snapshot index gets the whole snapshot, whatever the
 * trailing setting. Documents the library behaviour the partition suite
 * met ("a few hundred entries behind"). */
static void lag_after_install(int installer_leads)
{
    cluster_up(5, 8);
    for (unsigned i = 0; i < 5; i++)
        raft_set_snapshot_trailing(raft_fixture_get(&f, i), 64);
    unsigned l = raft_fixture_leader_index(&f);
    unsigned few = (l + 1) % 5, inst = (l + 2) % 5; /* a little behind; installer */
    consensus_cmd d = define_cmd("x");
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &d, NULL), 0);
    raft_fixture_kill(&f, inst);
    uint64_t seq = 0;
    for (int i = 1; i <= 100; i++) { /* inst: more than `trailing` behind */
        consensus_cmd s = set_cmd("x", i, 7, ++seq);
        CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &s, NULL), 0);
    }
    raft_fixture_kill(&f, few);
    raft_index few_last = raft_last_applied(raft_fixture_get(&f, few));
    for (int i = 101; i <= 120; i++) { /* few: 20 behind, well inside 64 */
        consensus_cmd s = set_cmd("x", i, 7, ++seq);
        CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &s, NULL), 0);
    }
    raft_index last = raft_last_applied(raft_fixture_get(&f, l));
    CU_ASSERT_TRUE(last - few_last < 64);
    raft_fixture_revive(&f, inst);
    CU_ASSERT_TRUE_FATAL(raft_fixture_step_until_applied(&f, inst, last, 20000));
    CU_ASSERT_EQUAL_FATAL(counts[inst].restores, 1); /* expected: far behind */
    /* The installer becomes leader (or not), then the slightly lagging
     * server returns. */
    if (installer_leads) {
        raft_fixture_depose(&f);
        raft_fixture_elect(&f, inst);
        CU_ASSERT_EQUAL_FATAL(raft_fixture_leader_index(&f), inst);
        l = inst;
    }
    consensus_cmd s = set_cmd("x", 121, 7, ++seq);
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &s, NULL), 0);
    last = raft_last_applied(raft_fixture_get(&f, l));
    raft_fixture_revive(&f, few);
    CU_ASSERT_TRUE_FATAL(raft_fixture_step_until_applied(&f, few, last, 20000));
    CU_ASSERT_EQUAL(value_on(few, "x"), 121);
    /* 0.15: from the installer a snapshot, not the ~20 entries it missed;
     * from a leader with its trailing log the entries. */
    CU_ASSERT_EQUAL(counts[few].restores, installer_leads ? 1u : 0u);
    assert_identical_states();
    cluster_down();
}

static void test_snapshot_installer_as_leader_sends_snapshot_to_slightly_lagging_server(void)
{
    lag_after_install(1);
}

static void test_leader_with_trailing_log_sends_entries_to_slightly_lagging_server(void)
{
    lag_after_install(0);
}

/* Raft entries held in memory by server i (the fixture's log). */
static size_t log_entries(unsigned i)
{
    const struct raft_log *lg = &raft_fixture_get(&f, i)->log;
    return lg->back >= lg->front ? lg->back - lg->front : lg->size - lg->front + lg->back;
}

/* Large values: the byte limit starts snapshots long before the entry
 * threshold, and each keeps only the trailing entries that fit in it, so
 * the log in memory stays near twice the limit. */
static void test_snapshot_starts_on_bytes_and_bounds_trailing_entries(void)
{
    cluster_up(3, 0);
    enum { DIM = 1000 };        /* one entry ~ 8 KB (float64 elements) */
    uint64_t limit = 64u << 10; /* ~8 entries */
    for (unsigned i = 0; i < n_servers; i++)
        consensus_fsm_set_snapshot_policy(fsms[i], 1000000, 8192, limit);
    unsigned l = raft_fixture_leader_index(&f);
    consensus_cmd d = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "emb" };
    d.spec.type = MB_VT_EMBEDDING;
    d.spec.dim = DIM;
    consensus_result res;
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &d, &res), 0);
    CU_ASSERT_EQUAL_FATAL(res.code, MB_OK);
    static double data[DIM];
    size_t most = 0;
    for (int k = 1; k <= 60; k++) {
        data[0] = k;
        consensus_cmd s = {
            .kind = CONSENSUS_CMD_VAR_SET, .name = "emb", .client_id = 5, .request_seq = (uint64_t)k
        };
        s.value.type = MB_VT_EMBEDDING;
        s.value.u.vec.n = DIM;
        s.value.u.vec.data = data;
        CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &s, &res), 0);
        CU_ASSERT_EQUAL(res.code, MB_OK);
        for (unsigned i = 0; i < n_servers; i++)
            if (log_entries(i) > most)
                most = log_entries(i);
    }
    raft_index last = raft_last_applied(raft_fixture_get(&f, l));
    CU_ASSERT_TRUE(raft_fixture_step_until_applied(&f, n_servers, last, 5000));
    for (unsigned i = 0; i < n_servers; i++) {
        /* 61 entries, far below the threshold of 1,000,000: snapshots
         * come from the byte limit alone. */
        CU_ASSERT_TRUE(raft_fixture_get(&f, i)->log.snapshot.last_index > 8);
        CU_ASSERT_EQUAL(consensus_sm_var_get(consensus_fsm_sm(fsms[i]), "emb")->value.u.vec.data[0],
                        60);
    }
    /* Without the bound the log would hold all 60 (trailing 8192); with it
     * about 8 since the last snapshot plus 8 kept. */
    CU_ASSERT_TRUE(most <= 24);
    cluster_down();
}

/* libraft 0.15 drops a truncation issued during a snapshot's barrier, so
 * the adapter puts a snapshot off while a truncation may come: no leader
 * known, or an uncommitted tail of an older term than the current one. */
static void test_snapshot_waits_while_an_older_term_tail_could_be_truncated(void)
{
    /* The rule alone. */
    CU_ASSERT_TRUE(consensus_snapshot_may_meet_truncation(10, 12, 4, 5, 1));
    CU_ASSERT_FALSE(consensus_snapshot_may_meet_truncation(10, 12, 5, 5, 1));
    CU_ASSERT_FALSE(consensus_snapshot_may_meet_truncation(12, 12, 4, 5, 1));
    CU_ASSERT_TRUE(consensus_snapshot_may_meet_truncation(12, 12, 5, 5, 0));

    /* Through the raft_fsm callback, on a follower whose raft state is laid
     * out by hand: entries 9..11 in the log (offset 8), commit index 10. */
    static struct raft r; /* zeroed; libraft 0.15 keeps these fields public */
    struct raft_entry entries[4] = { { .term = 4 }, { .term = 4 }, { .term = 4 } };
    r.state = RAFT_FOLLOWER;
    r.follower_state.current_leader.id = 2;
    r.current_term = 5;
    r.commit_index = 10;
    r.log.entries = entries;
    r.log.size = 4;
    r.log.front = 0;
    r.log.back = 3;
    r.log.offset = 8;
    consensus_fsm *fsm;
    CU_ASSERT_EQUAL_FATAL(consensus_fsm_new(NULL, NULL, NULL, 0, &fsm), MB_OK);
    consensus_fsm_attach(fsm, &r);
    struct raft_fsm *rf = consensus_fsm_raft(fsm);
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    /* Entry 11 is of term 4, uncommitted, and the term is 5: wait. */
    CU_ASSERT_EQUAL(rf->snapshot(rf, &bufs, &n), RAFT_BUSY);
    CU_ASSERT_EQUAL(consensus_fsm_snapshots_deferred(fsm), 1);
    /* The leader of term 5 sent entry 11 (laid out as a wrapped buffer:
     * positions 1..3, back at 0). */
    entries[1].term = entries[2].term = 4;
    entries[3].term = 5;
    r.log.front = 1;
    r.log.back = 0;
    CU_ASSERT_EQUAL(raft_last_index(&r), 11);
    CU_ASSERT_EQUAL_FATAL(rf->snapshot(rf, &bufs, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    raft_free(bufs[0].base);
    raft_free(bufs);
    /* No leader known (an election is on): wait again. */
    r.follower_state.current_leader.id = 0;
    CU_ASSERT_EQUAL(rf->snapshot(rf, &bufs, &n), RAFT_BUSY);
    CU_ASSERT_EQUAL(consensus_fsm_snapshots_deferred(fsm), 2);
    consensus_fsm_free(fsm);
}

/* With phases 0, 1 and 2 of 3 the servers snapshot at different indexes
 * (never two at the same one), each about once per threshold. */
static void test_snapshot_phases_stagger_the_servers_snapshots(void)
{
    enum { T = 30, N = 150 };
    cluster_up(3, 0);
    for (unsigned i = 0; i < n_servers; i++) {
        consensus_fsm_set_snapshot_policy(fsms[i], T, 2, 0);
        consensus_fsm_set_snapshot_phase(fsms[i], i, 3);
    }
    unsigned l = raft_fixture_leader_index(&f);
    consensus_cmd d = define_cmd("x");
    consensus_result res;
    CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &d, &res), 0);
    raft_index snaps[3][16];
    unsigned nsnaps[3] = { 0 };
    for (int k = 1; k <= N; k++) {
        consensus_cmd c = set_cmd("x", k, 9, (uint64_t)k);
        CU_ASSERT_EQUAL_FATAL(propose_and_wait(l, &c, &res), 0);
        raft_index last = raft_last_applied(raft_fixture_get(&f, l));
        CU_ASSERT_TRUE_FATAL(raft_fixture_step_until_applied(&f, n_servers, last, 5000));
        for (unsigned i = 0; i < n_servers; i++) {
            raft_index at = raft_fixture_get(&f, i)->log.snapshot.last_index;
            if (at != 0 && (nsnaps[i] == 0 || snaps[i][nsnaps[i] - 1] != at) && nsnaps[i] < 16)
                snaps[i][nsnaps[i]++] = at;
        }
    }
    for (unsigned i = 0; i < n_servers; i++) {
        /* ~150 entries / 30: about 5 each, a phase shifts the first one */
        CU_ASSERT_TRUE(nsnaps[i] >= 3 && nsnaps[i] <= 6);
        for (unsigned j = 0; j < i; j++)
            for (unsigned a = 0; a < nsnaps[i]; a++)
                for (unsigned b = 0; b < nsnaps[j]; b++)
                    CU_ASSERT_NOT_EQUAL(snaps[i][a], snaps[j][b]);
    }
    cluster_down();
}

static CU_TestInfo cluster_tests[] = {
    { "test_snapshot_waits_while_an_older_term_tail_could_be_truncated",
      test_snapshot_waits_while_an_older_term_tail_could_be_truncated },
    { "test_snapshot_phases_stagger_the_servers_snapshots",
      test_snapshot_phases_stagger_the_servers_snapshots },
    { "test_snapshot_starts_on_bytes_and_bounds_trailing_entries",
      test_snapshot_starts_on_bytes_and_bounds_trailing_entries },
    { "test_commands_replicate_to_every_server_identically",
      test_commands_replicate_to_every_server_identically },
    { "test_minority_partition_cannot_commit_and_heals_by_catching_up",
      test_minority_partition_cannot_commit_and_heals_by_catching_up },
    { "test_leader_loss_elects_a_new_leader_and_keeps_committed_writes",
      test_leader_loss_elects_a_new_leader_and_keeps_committed_writes },
    { "test_lagging_server_catches_up_by_snapshot_install",
      test_lagging_server_catches_up_by_snapshot_install },
    { "test_snapshot_installer_as_leader_sends_snapshot_to_slightly_lagging_server",
      test_snapshot_installer_as_leader_sends_snapshot_to_slightly_lagging_server },
    { "test_leader_with_trailing_log_sends_entries_to_slightly_lagging_server",
      test_leader_with_trailing_log_sends_entries_to_slightly_lagging_server },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "fixture", NULL, NULL, NULL, NULL, cluster_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
