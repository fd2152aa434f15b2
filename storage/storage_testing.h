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

/* Write the subject/type index tail into posting rows every `events`
 * events instead of every 65536, so that tests exercise rows and tail
 * together. */
void storage_testing_set_index_flush(storage *s, size_t events);

/* Number of RocksDB writes (hence WAL fsyncs in DURABLE mode) issued for
 * append groups since open: fewer than the append calls means concurrent
 * calls were committed together. */
uint64_t storage_testing_append_writes(storage *s);

/* Number of rows in the column family named `cf_name` (e.g.
 * "events_by_time", to see that the time index holds one row per run of
 * events, not one per event). MB_ENOTFOUND for an unknown family. */
int storage_testing_count_rows(storage *s, const char *cf_name, uint64_t *rows, mb_error *err);

#endif /* MB_STORAGE_TESTING_H */
