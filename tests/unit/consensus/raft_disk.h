/* tests/unit/consensus/raft_disk.h: libraft 0.15's uv disk backend driven
 * directly, without raft (test_libraft_traps.c, test_aio_reap.c): open a
 * raft directory and load it, append entries, close, each step run on a
 * private loop until its callbacks came (bounded). Header-only: include it
 * once per test binary. */
#ifndef MB_TEST_RAFT_DISK_H
#define MB_TEST_RAFT_DISK_H

#include <string.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "consensus/internal.h"
#include "mb_test.h"

struct disk {
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    int pending; /* append and snapshot callbacks still to come */
    int closes;  /* close callbacks seen */
};

static inline void append_done(struct raft_io_append *req, int status)
{
    struct disk *d = req->data;
    CU_ASSERT_EQUAL(status, 0);
    d->pending--;
}

static inline void put_done(struct raft_io_snapshot_put *req, int status)
{
    struct disk *d = req->data;
    CU_ASSERT_EQUAL(status, 0);
    d->pending--;
}

static inline void closed(struct raft_io *io)
{
    struct disk *d = io->data;
    /* libraft 0.15 may call this twice (a truncate finishing while the
     * backend closes fires it again); count, do not decrement. */
    d->closes++;
}

/* Run the loop until every expected callback came (bounded). */
static inline void settle(struct disk *d)
{
    for (int i = 0; i < 100000 && d->pending > 0; i++)
        uv_run(&d->loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(d->pending, 0);
}

/* Open the raft directory; with `terms`, report the loaded log (the term of
 * each entry from index 1; the snapshot keeps trailing entries so the log
 * still starts at 1). Returns the number of entries loaded. */
static inline size_t disk_open(struct disk *d, const char *dir, raft_term *terms, size_t cap)
{
    memset(d, 0, sizeof(*d));
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&d->loop), 0);
    CU_ASSERT_EQUAL_FATAL(raft_uv_tcp_init(&d->transport, &d->loop), 0);
    CU_ASSERT_EQUAL_FATAL(raft_uv_init(&d->io, &d->loop, dir, &d->transport), 0);
    d->io.data = d;
    /* Never listens: start() is not called; the address is only a name. */
    CU_ASSERT_EQUAL_FATAL(d->io.init(&d->io, 1, "127.0.0.1:9"), 0);
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap = NULL;
    raft_index start = 0;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(d->io.load(&d->io, &term, &vote, &snap, &start, &entries, &n), 0);
    CU_ASSERT_EQUAL(start, 1);
    for (size_t i = 0; i < n && i < cap && terms != NULL; i++)
        terms[i] = entries[i].term;
    /* One batch per segment file loaded; entries of a batch are adjacent. */
    for (size_t i = 0; i < n; i++)
        if (i == 0 || entries[i].batch != entries[i - 1].batch)
            raft_free(entries[i].batch);
    raft_free(entries);
    if (snap != NULL) {
        raft_configuration_close(&snap->configuration);
        for (unsigned i = 0; i < snap->n_bufs; i++)
            raft_free(snap->bufs[i].base);
        raft_free(snap->bufs);
        raft_free(snap);
    }
    return n;
}

static inline void disk_close(struct disk *d)
{
    d->closes = 0;
    d->io.close(&d->io, closed);
    /* Run the loop dry before freeing the backend: a segment writer that is
     * still closing calls back into it after the first close callback (and
     * may fire that callback again, see closed()). consensus/raft_node.c
     * frees in the same order. */
    for (int i = 0; i < 100000 && uv_run(&d->loop, UV_RUN_ONCE) != 0; i++) {
    }
    CU_ASSERT(d->closes >= 1 && d->closes <= 2);
    raft_uv_close(&d->io);
    raft_uv_tcp_close(&d->transport);
    consensus_aio_reap_drain(); /* the writers' AIO contexts (aio_reap.c) */
    CU_ASSERT_EQUAL(uv_loop_close(&d->loop), 0);
}

static inline void append(struct disk *d, struct raft_io_append *req, raft_term term, unsigned n)
{
    struct raft_entry entries[16];
    for (unsigned i = 0; i < n; i++) {
        entries[i] = (struct raft_entry){ .term = term, .type = RAFT_COMMAND };
        entries[i].buf.len = 8;
        entries[i].buf.base = raft_malloc(8);
        memset(entries[i].buf.base, (int)term, 8);
    }
    req->data = d;
    d->pending++;
    CU_ASSERT_EQUAL_FATAL(d->io.append(&d->io, req, entries, n, append_done), 0);
    /* The backend copied what it writes; our buffers are ours again once
     * the callback ran (settle below). */
    settle(d);
    for (unsigned i = 0; i < n; i++)
        raft_free(entries[i].buf.base);
}

#endif
