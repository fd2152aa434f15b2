/* The raft_fsm adapter: raft entry -> pure state machine -> effects
 * callback; snapshot/restore with raft_malloc'd buffers (LIBS.md §1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "consensus/consensus.h"

struct consensus_fsm {
    struct raft_fsm fsm;
    consensus_sm *sm;
    struct raft *raft;
    consensus_effects fx;
    consensus_effects_cb cb;
    void *cb_arg;
    uint64_t skip_through;
    consensus_result last;
    consensus_applied_cb applied_cb; /* raft-perf: per-entry result hook */
    void *applied_arg;
    /* snapshot policy (consensus_fsm_set_snapshot_policy) */
    unsigned snap_threshold, snap_trailing;
    uint64_t snap_max_bytes;
    uint64_t bytes_since, entries_since;     /* applied since the last snapshot */
    int snap_forced;                         /* threshold lowered to 1 by the byte limit */
    uint64_t snap_deferred;                  /* snapshots put off (snapshot_must_wait) */
    unsigned snap_phase_num, snap_phase_den; /* consensus_fsm_set_snapshot_phase; den 0 = none */
};

/* Entries from the last snapshot (at the applied index now: this is called
 * when one is taken, installed or the policy set) to the next one. With a
 * phase num/den, the next snapshot falls on the next index i with
 * (i + threshold * num / den) % threshold == 0 at least half a threshold
 * away: nodes of different phases snapshot at different indexes, one
 * threshold apart on average. */
static unsigned snap_threshold_now(const consensus_fsm *f)
{
    uint64_t t = f->snap_threshold;
    if (f->snap_phase_den == 0 || t < 4)
        return (unsigned)t;
    uint64_t phase = t * f->snap_phase_num / f->snap_phase_den;
    uint64_t d = t - (consensus_sm_applied_index(f->sm) + phase) % t;
    if (d < t / 2)
        d += t;
    return (unsigned)d;
}

void consensus_fsm_set_snapshot_policy(consensus_fsm *f, unsigned threshold, unsigned trailing,
                                       uint64_t max_bytes)
{
    f->snap_threshold = threshold;
    f->snap_trailing = trailing;
    f->snap_max_bytes = max_bytes;
    if (f->raft != NULL) {
        raft_set_snapshot_threshold(f->raft, snap_threshold_now(f));
        raft_set_snapshot_trailing(f->raft, trailing);
    }
}

void consensus_fsm_set_snapshot_phase(consensus_fsm *f, unsigned num, unsigned den)
{
    f->snap_phase_num = den > 0 ? num % den : 0;
    f->snap_phase_den = den;
    if (f->raft != NULL && f->snap_threshold > 0 && !f->snap_forced)
        raft_set_snapshot_threshold(f->raft, snap_threshold_now(f));
}

/* An entry of `len` bytes was applied: past the byte limit, the next check
 * raft makes after this apply pass takes a snapshot. */
static void snap_count(consensus_fsm *f, size_t len)
{
    f->bytes_since += len;
    f->entries_since++;
    if (f->snap_max_bytes > 0 && f->bytes_since >= f->snap_max_bytes && !f->snap_forced &&
        f->raft != NULL) {
        raft_set_snapshot_threshold(f->raft, 1);
        f->snap_forced = 1;
    }
}

/* A snapshot is being taken (or was installed): start counting again,
 * with the trailing entries it keeps bounded by the byte limit. */
static void snap_reset(consensus_fsm *f)
{
    if (f->raft != NULL && f->snap_threshold > 0) {
        unsigned trailing = f->snap_trailing;
        if (f->snap_max_bytes > 0 && f->entries_since > 0) {
            uint64_t avg = f->bytes_since / f->entries_since;
            if (avg > 0 && (uint64_t)trailing * avg > f->snap_max_bytes) {
                uint64_t fit = f->snap_max_bytes / avg;
                trailing = fit < 2 ? 2 : (unsigned)fit;
            }
        }
        raft_set_snapshot_trailing(f->raft, trailing);
        raft_set_snapshot_threshold(f->raft, snap_threshold_now(f));
    }
    f->snap_forced = 0;
    f->bytes_since = 0;
    f->entries_since = 0;
}

#define ENTRY_MAGIC "MBE1"

int consensus_entry_frame(const void *cmd, size_t len, void *(*alloc_fn)(size_t), void **out,
                          size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len > UINT32_MAX - 16)
        return MB_ETOOBIG;
    size_t total = CONSENSUS_ENTRY_HEADER + ((len + 7) & ~(size_t)7);
    uint8_t *p = (alloc_fn != NULL ? alloc_fn : malloc)(total);
    if (p == NULL)
        return MB_ENOMEM;
    memcpy(p, ENTRY_MAGIC, 4);
    p[4] = (uint8_t)(len >> 24);
    p[5] = (uint8_t)(len >> 16);
    p[6] = (uint8_t)(len >> 8);
    p[7] = (uint8_t)len;
    if (len > 0)
        memcpy(p + CONSENSUS_ENTRY_HEADER, cmd, len);
    memset(p + CONSENSUS_ENTRY_HEADER + len, 0, total - CONSENSUS_ENTRY_HEADER - len);
    *out = p;
    *out_len = total;
    return MB_OK;
}

int consensus_entry_unframe(const void *entry, size_t len, const void **cmd, size_t *cmd_len)
{
    const uint8_t *p = entry;
    *cmd = NULL;
    *cmd_len = 0;
    if (p == NULL || len < CONSENSUS_ENTRY_HEADER || len % 8 != 0 || memcmp(p, ENTRY_MAGIC, 4) != 0)
        return MB_EPROTO;
    size_t n = (size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7];
    if (CONSENSUS_ENTRY_HEADER + ((n + 7) & ~(size_t)7) != len)
        return MB_EPROTO;
    for (size_t i = CONSENSUS_ENTRY_HEADER + n; i < len; i++)
        if (p[i] != 0)
            return MB_EPROTO;
    *cmd = p + CONSENSUS_ENTRY_HEADER;
    *cmd_len = n;
    return MB_OK;
}

static int fsm_apply_cb(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    consensus_fsm *f = fsm->data;
    /* raft 0.15 bumps last_applied after apply returns; barriers and
     * configuration entries never reach the FSM but do count. */
    uint64_t index =
        f->raft != NULL ? raft_last_applied(f->raft) + 1 : consensus_sm_applied_index(f->sm) + 1;
    const void *cmd = NULL;
    size_t cmd_len = 0;
    consensus_effects_clear(&f->fx);
    if (consensus_entry_unframe(buf->base, buf->len, &cmd, &cmd_len) != MB_OK) {
        /* Not ours: consumes the index, changes nothing. */
        cmd = NULL;
        cmd_len = 0;
    }
    snap_count(f, buf->len);
    consensus_sm_apply(f->sm, index, cmd, cmd_len, &f->last, &f->fx);
    if (f->cb != NULL && f->fx.n > 0 && index > f->skip_through)
        f->cb(f->cb_arg, index, &f->fx);
    consensus_effects_clear(&f->fx);
    /* Per-entry results: one raft_apply may carry many entries, and raft
     * calls its request callback for the first entry only. */
    if (f->applied_cb != NULL)
        f->applied_cb(f->applied_arg, index, &f->last);
    /* The result lives in the adapter: raft hands it to the leader's apply
     * callback right away and drops it on followers. */
    *result = &f->last;
    return 0;
}

int consensus_snapshot_may_meet_truncation(uint64_t commit_index, uint64_t last_index,
                                           uint64_t last_term, uint64_t current_term,
                                           int leader_known)
{
    if (!leader_known)
        return 1;
    /* Committed entries are never truncated; an entry of the current term
     * came from the current leader, and by log matching so did all before
     * it, so that leader has nothing of ours to cut. */
    return last_index > commit_index && last_term < current_term;
}

/* Term of the last entry of raft's log: libraft 0.15 keeps struct raft_log
 * public (a circular buffer [front, back) after offset) and has no getter. */
static uint64_t last_log_term(const struct raft *r)
{
    const struct raft_log *l = &r->log;
    if (l->entries == NULL || l->size == 0 || l->front == l->back)
        return l->snapshot.last_term;
    size_t pos = l->back == 0 ? l->size - 1 : l->back - 1;
    return l->entries[pos].term;
}

/* libraft 0.15 loses a follower's log truncation that arrives while one of
 * its snapshots waits for the open segments to close: the truncation's
 * barrier attaches to no segment and never fires (canonical/raft#372,
 * fixed after 0.15), so the disk keeps the entries the memory log dropped
 * and a restart loads them instead of their replacements (shown by
 * tests/unit/consensus/test_libraft_traps.c). A
 * follower truncates only an uncommitted tail of an older term than the
 * current one, so no snapshot starts while such a tail exists or while no
 * leader is known: raft retries after its next apply. The window left is a
 * new leader cutting this node's current-term tail within the few
 * milliseconds a snapshot's barrier lasts, which needs an election first. */
static int snapshot_must_wait(consensus_fsm *f)
{
    struct raft *r = f->raft;
    if (r == NULL)
        return 0;
    raft_id id = 0;
    const char *address = NULL;
    int leader = raft_state(r) == RAFT_LEADER;
    if (!leader) {
        raft_leader(r, &id, &address);
        leader = id != 0;
    }
    return consensus_snapshot_may_meet_truncation(r->commit_index, raft_last_index(r),
                                                  last_log_term(r), r->current_term, leader);
}

static int fsm_snapshot_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    consensus_fsm *f = fsm->data;
    if (snapshot_must_wait(f)) {
        f->snap_deferred++;
        return RAFT_BUSY;
    }
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    if (b == NULL)
        return RAFT_NOMEM;
    if (consensus_sm_snapshot(f->sm, raft_malloc, &b->base, &b->len, NULL) != MB_OK) {
        raft_free(b);
        return RAFT_NOMEM;
    }
    *bufs = b;
    *n_bufs = 1;
    /* raft reads the trailing count when this snapshot is stored. */
    snap_reset(f);
    return 0;
}

static int fsm_restore_cb(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    consensus_fsm *f = fsm->data;
    consensus_sm *sm = NULL;
    mb_error e;
    int rc = consensus_sm_restore(buf->base, buf->len, &sm, &e);
    if (rc != MB_OK)
        return rc == MB_ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
    /* The event log of this node holds the effects of entries up to the
     * old state's index (or what the shell said it already has). */
    uint64_t had = consensus_sm_applied_index(f->sm);
    if (had < f->skip_through)
        had = f->skip_through;
    consensus_sm_free(f->sm);
    f->sm = sm;
    raft_free(buf->base);
    snap_reset(f);
    uint64_t index = consensus_sm_applied_index(sm);
    if (f->cb != NULL && index > had) {
        /* Entries had+1..index were not applied here one by one: their
         * events are not in this node's event log. Say so with a marker
         * event at `index` (docs/consensus.md, "Snapshot installs"). */
        consensus_effects fx;
        consensus_effects_init(&fx);
        char payload[96];
        snprintf(payload, sizeof(payload), "{\"from_index\":%llu,\"applied_index\":%llu}",
                 (unsigned long long)had + 1, (unsigned long long)index);
        consensus_effect e1 = { .kind = CONSENSUS_FX_EVENT,
                                .type = (char *)"state.restore",
                                .subject = (char *)"",
                                .payload = payload,
                                .version = index };
        fx.items = &e1;
        fx.n = fx.cap = 1;
        f->cb(f->cb_arg, index, &fx);
    }
    return 0;
}

int consensus_fsm_new(const consensus_sm_options *opts, consensus_effects_cb cb, void *cb_arg,
                      uint64_t skip_effects_through, consensus_fsm **out)
{
    consensus_fsm *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return MB_ENOMEM;
    int rc = consensus_sm_new(opts, &f->sm);
    if (rc != MB_OK) {
        free(f);
        return rc;
    }
    consensus_effects_init(&f->fx);
    f->cb = cb;
    f->cb_arg = cb_arg;
    f->skip_through = skip_effects_through;
    f->fsm.version = 1;
    f->fsm.data = f;
    f->fsm.apply = fsm_apply_cb;
    f->fsm.snapshot = fsm_snapshot_cb;
    f->fsm.restore = fsm_restore_cb;
    *out = f;
    return MB_OK;
}

void consensus_fsm_free(consensus_fsm *f)
{
    if (f == NULL)
        return;
    consensus_sm_free(f->sm);
    consensus_effects_free(&f->fx);
    free(f);
}

struct raft_fsm *consensus_fsm_raft(consensus_fsm *f)
{
    return &f->fsm;
}

void consensus_fsm_attach(consensus_fsm *f, struct raft *r)
{
    f->raft = r;
}

uint64_t consensus_fsm_snapshots_deferred(const consensus_fsm *f)
{
    return f->snap_deferred;
}

const consensus_sm *consensus_fsm_sm(const consensus_fsm *f)
{
    return f->sm;
}

void consensus_fsm_set_applied_cb(consensus_fsm *f, consensus_applied_cb cb, void *arg)
{
    f->applied_cb = cb;
    f->applied_arg = arg;
}

const consensus_result *consensus_fsm_last_result(const consensus_fsm *f)
{
    return &f->last;
}
