/* storage/: the node's RocksDB database — the event log with its indexes,
 * node-local (non-replicated) events, a small metadata key space and blobs
 * (agent checkpoints, raft snapshots).
 *
 * This is the module's one interface header; nothing outside storage/
 * includes RocksDB. All functions are thread-safe unless stated otherwise
 * (one RocksDB handle is shared; iterators are per call). Errors are mb_err
 * codes; `err` may be NULL. See docs/storage.md for the column families and
 * key encodings. */
#ifndef MB_STORAGE_H
#define MB_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

typedef struct storage storage;

/* Durability of appends. FAST: no fsync (survives kill -9 of the process,
 * not a power cut). DURABLE: the WAL is fsynced before an append returns;
 * concurrent appenders share one fsync (group commit). */
typedef enum storage_durability {
    STORAGE_FAST = 0,
    STORAGE_DURABLE = 1,
} storage_durability;

/* Priority of the store's background work: RocksDB's memtable flushes and
 * compactions, and the thread that writes the index tail (docs/storage.md,
 * "Tuning in use"). LOW: nice 19 and the idle I/O class, so that the
 * process's other threads (in the daemon: the control loop and raft's
 * appends) go first; the work is still done when the machine has time, and
 * RocksDB slows the writers down if it falls behind. */
typedef enum storage_bg_priority {
    STORAGE_BG_LOW = 0,    /* the default */
    STORAGE_BG_NORMAL = 1, /* the threads keep the priority they started with */
} storage_bg_priority;

typedef struct storage_options {
    const char *path;              /* database directory; created if missing */
    storage_durability durability; /* default STORAGE_FAST */
    size_t block_cache_bytes;      /* 0 = 32 MiB */
    /* Default STORAGE_BG_LOW. RocksDB's background threads are shared by
     * every store of the process and their priority can only go down:
     * after one store opened with LOW they stay low until the process
     * exits. The index thread is per store. */
    storage_bg_priority background;
} storage_options;

/* Limits of the fields of an event; longer ones are refused with MB_EINVAL. */
#define STORAGE_TYPE_MAX    63
#define STORAGE_SUBJECT_MAX 255
#define STORAGE_PAYLOAD_MAX (16u << 20)

/* One event. In an append the strings and the payload are borrowed for the
 * duration of the call. In a query callback every pointer is valid only
 * during the callback; copy what you keep. */
typedef struct storage_event {
    uint64_t seq;        /* > 0; strictly increasing in the log */
    const char *type;    /* e.g. "var.set", "agent.crashed"; NUL-terminated */
    const char *subject; /* variable name, agent id, node id; "" if none */
    int64_t time_ms;     /* wall-clock milliseconds since the epoch */
    const void *payload; /* usually JSON; may be NULL when payload_len is 0 */
    size_t payload_len;
} storage_event;

/* Open (creating if needed) the database at opts->path. Fails with
 * MB_EBUSY when another process holds it, MB_ECORRUPT when it is not a
 * MABEAM store, MB_EIO otherwise. On success *out is owned by the caller
 * and released with storage_close(). */
int storage_open(const storage_options *opts, storage **out, mb_error *err);

/* Close the database, writing the in-memory index tail out first (see
 * docs/storage.md). No other thread may be using `s`. NULL is a no-op. */
void storage_close(storage *s);

/* Append `n` (> 0) events atomically with their index rows: all or none. A
 * seq of 0 asks the store to assign the next sequence (last + 1); the
 * assigned sequences are written back into evs[i].seq (hence not const;
 * `evs` stays owned by the caller). An explicit seq may leave gaps; an event
 * whose seq is not above the log's last sequence (storage_last_seq, counting
 * events of earlier calls and earlier events of this call) is already in the
 * log or was pruned, and is skipped: replay is harmless. In DURABLE mode the
 * call returns after the WAL fsync; concurrent callers share it. MB_EINVAL for
 * bad input (NULL, n == 0, a field over its limit, an empty type). */
int storage_append(storage *s, storage_event *evs, size_t n, mb_error *err);

/* As storage_append, plus meta[meta_key] = meta_val in the SAME atomic write
 * (e.g. the last applied raft index with the events of an apply batch). n
 * may be 0 here (an apply batch without events). Every pointer is borrowed
 * for the call. */
int storage_append_meta(storage *s, storage_event *evs, size_t n, const char *meta_key,
                        const void *meta_val, size_t meta_len, mb_error *err);

/* Highest sequence ever appended to the log (0 if none). It does not go
 * down when events are pruned. */
uint64_t storage_last_seq(storage *s);

/* A query. Used as `struct storage_query` (no typedef: the name belongs to
 * the function storage_query() below; C shares one namespace for both). */
struct storage_query {
    uint64_t from_seq;    /* inclusive; 0 = from the start */
    uint64_t to_seq;      /* inclusive; 0 = to the end */
    int64_t from_time_ms; /* inclusive; 0 = no lower bound */
    int64_t to_time_ms;   /* inclusive; 0 = no upper bound */
    const char *subject;  /* NULL = any subject */
    const char *type;     /* NULL = any type */
    size_t limit;         /* max events delivered; 0 = 100; capped at 10000 */
    int newest_first;     /* 0: ascending sequence; 1: descending */
    uint64_t cursor;      /* 0, or the next_cursor of the previous page */
};

/* Order of results: by sequence (ascending, or descending with
 * newest_first), except a query whose only filters are a time range (plus an
 * optional seq range), which is answered from the time index in (time_ms,
 * seq) order; with non-decreasing timestamps the two orders are the same.
 * A query with subject and/or type is answered from the subject (else type)
 * index. See docs/storage.md. */

/* Called once per matching event, in order. Return 0 to continue, non-zero
 * to stop early (not an error). */
typedef int (*storage_event_cb)(const storage_event *ev, void *arg);

/* Run a query. *next_cursor (may be NULL) receives the cursor for the next
 * page (the seq of the next matching event), or 0 when there are no more
 * events; a callback that stops early also gets a cursor to resume after the
 * event it stopped at. A damaged or foreign record is reported as
 * MB_ECORRUPT with its sequence in the message, never a crash. A type or
 * subject filter over its limit is MB_EINVAL. `q`, `arg` are borrowed. */
int storage_query(storage *s, const struct storage_query *q, storage_event_cb cb, void *arg,
                  uint64_t *next_cursor, mb_error *err);

/* Fetch one event by sequence into the callback. MB_ENOTFOUND if absent. */
int storage_get(storage *s, uint64_t seq, storage_event_cb cb, void *arg, mb_error *err);

/* Retention: delete every event (and its index rows) with seq < before_seq,
 * or with time_ms < before_time_ms. *removed (may be NULL) gets the count.
 * Runs in chunks of a few thousand events, each atomic, so appends go on
 * meanwhile; a damaged record in the range is deleted too. */
int storage_prune_before_seq(storage *s, uint64_t before_seq, uint64_t *removed, mb_error *err);
int storage_prune_before_time(storage *s, int64_t before_time_ms, uint64_t *removed, mb_error *err);

typedef struct storage_stats {
    uint64_t count;     /* events in the log */
    uint64_t bytes;     /* approximate bytes on disk of the event log */
    uint64_t first_seq; /* 0 if empty */
    uint64_t last_seq;  /* 0 if empty */
} storage_stats;

/* count is exact; bytes are the SST files plus memtables of the log and its
 * indexes (approximate); first/last are the lowest and highest seq present. */
int storage_get_stats(storage *s, storage_stats *out, mb_error *err);

/* Compact every column family now (after loading or a large prune), so
 * that reads meet few files and pruned space is returned. Blocks for as
 * long as it takes; appends and queries may run meanwhile. RocksDB's C API
 * reports no error here: a failed compaction surfaces as an error of the
 * next append. */
int storage_compact(storage *s, mb_error *err);

/* Metadata key space (the `meta` column family): small values such as the
 * last applied raft index. Get returns MB_ENOTFOUND when absent; *val is
 * malloc'd and owned by the caller (free()). */
int storage_meta_put(storage *s, const char *key, const void *val, size_t len, mb_error *err);
int storage_meta_get(storage *s, const char *key, void **val, size_t *len, mb_error *err);

/* Limit of a meta or blob key (non-empty NUL-terminated string). */
#define STORAGE_KEY_MAX 1024

/* Node-local events (the `local` column family and its indexes): not
 * replicated, with their own sequence space starting at 1. Same event and
 * query structs and the same rules as the replicated log above. */
int storage_local_append(storage *s, storage_event *evs, size_t n, mb_error *err);
uint64_t storage_local_last_seq(storage *s);
int storage_local_query(storage *s, const struct storage_query *q, storage_event_cb cb, void *arg,
                        uint64_t *next_cursor, mb_error *err);
int storage_local_prune_before_seq(storage *s, uint64_t before_seq, uint64_t *removed,
                                   mb_error *err);
int storage_local_prune_before_time(storage *s, int64_t before_time_ms, uint64_t *removed,
                                    mb_error *err);
int storage_local_get_stats(storage *s, storage_stats *out, mb_error *err);

/* Blobs (the `blobs` column family): key string -> bytes, for agent
 * checkpoints and raft snapshots. Put replaces; `val` is borrowed (may be
 * NULL when len is 0); values above STORAGE_BLOB_MAX are MB_ETOOBIG. Get
 * returns MB_ENOTFOUND when absent, else *val malloc'd and owned by the
 * caller (free()). Delete of an absent key succeeds. */
#define STORAGE_BLOB_MAX (1ull << 30)
int storage_blob_put(storage *s, const char *key, const void *val, size_t len, mb_error *err);
int storage_blob_get(storage *s, const char *key, void **val, size_t *len, mb_error *err);
int storage_blob_delete(storage *s, const char *key, mb_error *err);

#endif /* MB_STORAGE_H */
