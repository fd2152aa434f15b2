/* storage/: the node's RocksDB database — the event log with its indexes,
 * node-local (non-replicated) events, and a small metadata key space.
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

typedef struct storage_options {
    const char *path;              /* database directory; created if missing */
    storage_durability durability; /* default STORAGE_FAST */
    size_t block_cache_bytes;      /* 0 = a small default */
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

/* Close the database, flushing what is buffered. NULL is a no-op. */
void storage_close(storage *s);

/* Append `n` events atomically with their index rows: all or none. A seq of
 * 0 asks the store to assign the next sequence (last + 1); the assigned
 * sequences are written back into evs[i].seq (hence not const). An event
 * whose seq is already in the log is skipped (replay is harmless). */
int storage_append(storage *s, storage_event *evs, size_t n, mb_error *err);

/* Highest sequence in the log (0 if empty). */
uint64_t storage_last_seq(storage *s);

typedef struct storage_query {
    uint64_t from_seq;    /* inclusive; 0 = from the start */
    uint64_t to_seq;      /* inclusive; 0 = to the end */
    int64_t from_time_ms; /* inclusive; 0 = no lower bound */
    int64_t to_time_ms;   /* inclusive; 0 = no upper bound */
    const char *subject;  /* NULL = any subject */
    const char *type;     /* NULL = any type */
    size_t limit;         /* max events delivered; 0 = 100; capped at 10000 */
    int newest_first;     /* 0: ascending sequence; 1: descending */
    uint64_t cursor;      /* 0, or the next_cursor of the previous page */
} storage_query;

/* Called once per matching event, in order. Return 0 to continue, non-zero
 * to stop early (not an error). */
typedef int (*storage_event_cb)(const storage_event *ev, void *arg);

/* Run a query. *next_cursor (may be NULL) receives the cursor for the next
 * page, or 0 when there are no more events. A damaged or foreign record is
 * reported as MB_ECORRUPT with its sequence in the message, never a crash. */
int storage_query(storage *s, const storage_query *q, storage_event_cb cb, void *arg,
                  uint64_t *next_cursor, mb_error *err);

/* Fetch one event by sequence into the callback. MB_ENOTFOUND if absent. */
int storage_get(storage *s, uint64_t seq, storage_event_cb cb, void *arg, mb_error *err);

/* Retention: delete every event (and its index rows) with seq < before_seq,
 * or with time_ms < before_time_ms. *removed (may be NULL) gets the count. */
int storage_prune_before_seq(storage *s, uint64_t before_seq, uint64_t *removed, mb_error *err);
int storage_prune_before_time(storage *s, int64_t before_time_ms, uint64_t *removed, mb_error *err);

typedef struct storage_stats {
    uint64_t count;     /* events in the log */
    uint64_t bytes;     /* approximate bytes on disk of the event log */
    uint64_t first_seq; /* 0 if empty */
    uint64_t last_seq;  /* 0 if empty */
} storage_stats;

int storage_get_stats(storage *s, storage_stats *out, mb_error *err);

/* Metadata key space (the `meta` column family): small values such as the
 * last applied raft index. Get returns MB_ENOTFOUND when absent; *val is
 * malloc'd and owned by the caller (free()). */
int storage_meta_put(storage *s, const char *key, const void *val, size_t len, mb_error *err);
int storage_meta_get(storage *s, const char *key, void **val, size_t *len, mb_error *err);

#endif /* MB_STORAGE_H */
