/* storage/storage_testing.h: test-only hooks into storage/, used by the
 * unit tests to damage the database on purpose. Never called by production
 * code. */
#ifndef MB_STORAGE_TESTING_H
#define MB_STORAGE_TESTING_H

#include "storage/storage.h"

/* Write raw bytes `val` under raw `key` into the column family named
 * `cf_name` ("events", "events_by_subject", "local", ...), bypassing every
 * encoder. All pointers are borrowed. MB_ENOTFOUND for an unknown family. */
int storage_testing_put_raw(storage *s, const char *cf_name, const void *key, size_t key_len,
                            const void *val, size_t val_len, mb_error *err);

/* Replace the stored bytes of event `seq` of the replicated log, inside
 * its record row, with `rec` (len > 0 bytes), bypassing the encoder.
 * MB_ENOTFOUND when there is no such event. `rec` is borrowed. */
int storage_testing_replace_record(storage *s, uint64_t seq, const void *rec, size_t len,
                                   mb_error *err);

/* Freeze the subject/type index tail for the background flusher every
 * `events` events instead of every 131072, so that tests exercise rows and
 * tail together. The rows are written by the flusher thread: see
 * storage_testing_index_sync to wait for them. */
void storage_testing_set_index_flush(storage *s, size_t events);

/* The next `n` sizes at which the writer would freeze an index tail
 * (drawn around 131072 events, or exactly the storage_testing_set_index_flush
 * value once that was called); they are consumed. No append may run. */
void storage_testing_freeze_draws(storage *s, size_t *out, size_t n);

/* Call `hook` (from the flusher thread) in the middle of every background
 * flush of the index tail: after the subject rows (and their mark) are
 * written, before the type rows. A test uses it to kill the process there.
 * NULL removes it. Set it before appending. */
void storage_testing_set_flush_hook(storage *s, void (*hook)(storage *s, void *arg), void *arg);

/* Wait for any background flush of the index tail, then write the rest of
 * the tail as posting rows, so that every index entry is in a row. */
int storage_testing_index_sync(storage *s, mb_error *err);

/* Flush the memtables of every column family to SST files (the posting
 * rows are written without WAL: only this, or RocksDB's own flushes, put
 * them on disk). */
int storage_testing_flush_memtables(storage *s, mb_error *err);

/* The `indexed` marks of the replicated log's subject and type indexes:
 * their posting rows cover the seqs up to these. */
void storage_testing_index_marks(storage *s, uint64_t *subject, uint64_t *type);

/* Number of RocksDB writes (hence WAL fsyncs in DURABLE mode) issued for
 * append groups since open: fewer than the append calls means concurrent
 * calls were committed together. */
uint64_t storage_testing_append_writes(storage *s);

/* Number of rows in the column family named `cf_name` (e.g.
 * "events_by_time", to see that the time index holds one row per run of
 * events, not one per event). MB_ENOTFOUND for an unknown family. */
int storage_testing_count_rows(storage *s, const char *cf_name, uint64_t *rows, mb_error *err);

/* RocksDB's compression ratio (uncompressed over stored bytes) of the SST
 * files at level 0 of the column family named `cf_name`: about 1 when they
 * are stored uncompressed, -1 when level 0 has no file. MB_ENOTFOUND for
 * an unknown family. */
int storage_testing_level0_ratio(storage *s, const char *cf_name, double *ratio, mb_error *err);

#endif /* MB_STORAGE_TESTING_H */
