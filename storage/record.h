/* storage/record.h: internal to storage/ — the on-disk encodings of the
 * event store: the versioned event record, the key layouts of the events and
 * index column families, the subject/type hash and CRC-32C. Pure functions,
 * no RocksDB; the record decoder is the one decoder of disk input and has a
 * fuzz target (tests/fuzz/storage_record). docs/storage.md is the reference
 * for every byte written here. */
#ifndef MB_STORAGE_RECORD_H
#define MB_STORAGE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* First two bytes of every event record: magic, then format version. */
#define REC_MAGIC   0xE5u
#define REC_VERSION 1u
/* magic, version, type_len, flags, subject_len(2), payload_len(4),
 * time_ms(8), crc32c(4) */
#define REC_HEADER_SIZE 22u

/* Event key: be64(seq). Index keys: be64(hash or time) || be64(seq). */
#define KEY_SEQ_SIZE 8u
#define KEY_IDX_SIZE 16u
/* Subject and type index values: be64(time_ms) || be64(hash of the other). */
#define IDX_VALUE_SIZE 16u

static inline void rec_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t rec_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Order-preserving mapping of a signed time to unsigned bytes (flip the sign
 * bit), so that negative times sort before positive ones. */
static inline uint64_t rec_time_to_key(int64_t t)
{
    return (uint64_t)t ^ 0x8000000000000000ull;
}

static inline int64_t rec_key_to_time(uint64_t k)
{
    return (int64_t)(k ^ 0x8000000000000000ull);
}

/* CRC-32C (Castagnoli) of `len` bytes of `data`, continuing from `crc`
 * (start with 0). */
uint32_t rec_crc32c(uint32_t crc, const void *data, size_t len);

/* 64-bit FNV-1a hash of a NUL-terminated string; the index prefix of a
 * subject or a type. Stable: it is part of the disk format. */
uint64_t rec_hash(const char *s);

/* Size of the encoded record of `ev` (fields already validated). */
size_t rec_encoded_size(const storage_event *ev);

/* Encode `ev` (validated: type/subject within limits, payload_len within
 * STORAGE_PAYLOAD_MAX) into `out`, which has room for rec_encoded_size(ev)
 * bytes, all but the CRC; returns the CRC state to hand to rec_seal(). Done
 * by the appending thread before its sequence numbers are known. */
uint32_t rec_prepare(const storage_event *ev, uint8_t *out);

/* Finish the record prepared in `out` for sequence `seq`: the CRC covers
 * the seq (not stored), so a record copied under another key is detected. */
void rec_seal(uint8_t *out, uint32_t crc_state, uint64_t seq);

/* rec_prepare() then rec_seal(). */
void rec_encode(const storage_event *ev, uint64_t seq, uint8_t *out);

/* Decode the record stored under `seq`. On success fills *ev with pointers
 * into `buf` (valid as long as `buf` is) and returns 0. A record that is
 * truncated, foreign (bad magic), of an unknown version, inconsistent or
 * fails its CRC returns MB_ECORRUPT with a message naming the seq. Never
 * reads outside buf[0..len). */
int rec_decode(const uint8_t *buf, size_t len, uint64_t seq, storage_event *ev, mb_error *err);

/* Posting rows of the subject and type indexes: key = be64(hash) ||
 * be64(highest seq in the row). Two value versions:
 *  - POST_VERSION (type index): 01, then entries of be64(seq) ||
 *    be64(time_ms) || be64(hash of the other field);
 *  - POST_VERSION_REC (subject index, covering): 02, be32(n), then n entries
 *    of be64(seq) || be64(time_ms) || be64(other hash) || be32(end offset of
 *    the event's record in the value), then the n records (as in the record
 *    rows, each with its own CRC).
 * Seqs strictly increasing, the last one equal to the key's seq. */
#define POST_VERSION        1u
#define POST_ENTRY_SIZE     24u
#define POST_VERSION_REC    2u
#define POST_REC_HEADER     5u
#define POST_REC_ENTRY_SIZE 28u

typedef struct rec_posting {
    uint64_t seq;
    int64_t time_ms;
    uint64_t other;
} rec_posting;

/* Size of the value of a posting row of n entries (version 1). */
static inline size_t rec_postings_size(size_t n)
{
    return 1 + n * POST_ENTRY_SIZE;
}

/* Encode n entries (seqs strictly increasing) into out (version 1). */
void rec_postings_encode(const rec_posting *p, size_t n, uint8_t *out);

/* Size of a version 2 value of n entries whose records total rec_bytes. */
static inline size_t rec_postings_rec_size(size_t n, size_t rec_bytes)
{
    return POST_REC_HEADER + n * POST_REC_ENTRY_SIZE + rec_bytes;
}

/* Encode n entries with their records (recs[i], lens[i]) as version 2. */
void rec_postings_rec_encode(const rec_posting *p, const uint8_t *const *recs, const size_t *lens,
                             size_t n, uint8_t *out);

/* The header and entries of a version 2 value (rec_postings_rec_size(n,
 * 0) bytes), for records of lengths lens[] that the caller puts right
 * after it. */
void rec_postings_rec_header(const rec_posting *p, const size_t *lens, size_t n, uint8_t *out);

/* Check a posting row value (either version) stored under key seq
 * `key_seq`; on success *n is its number of entries (read them with
 * rec_posting_at, and the records of version 2 with rec_posting_record).
 * MB_ECORRUPT for anything malformed. Never reads outside buf[0..len). */
int rec_postings_check(const uint8_t *buf, size_t len, uint64_t key_seq, size_t *n, mb_error *err);

/* Entry i of a checked posting row value. */
static inline rec_posting rec_posting_at(const uint8_t *buf, size_t i)
{
    const uint8_t *p = buf[0] == POST_VERSION ? buf + 1 + i * POST_ENTRY_SIZE
                                              : buf + POST_REC_HEADER + i * POST_REC_ENTRY_SIZE;
    rec_posting e = { rec_get_be64(p), (int64_t)rec_get_be64(p + 8), rec_get_be64(p + 16) };
    return e;
}

/* Record of entry i of a checked version 2 value (*rec = NULL for a
 * version 1 value, which holds no records). */
void rec_posting_record(const uint8_t *buf, size_t i, const uint8_t **rec, size_t *len);

/* Record rows (format 2) of the `events` and `local` families: several
 * records packed into one RocksDB row, keyed by be64(first seq). Value:
 *   magic CHUNK_MAGIC, version CHUNK_VERSION, 2 zero bytes, be32(n),
 *   the n records back to back,
 *   n entries of be64(seq) || be32(end offset of the record in the value),
 * seqs strictly increasing, the first equal to the key's seq. Each record
 * keeps its own CRC (which covers its seq). */
#define CHUNK_MAGIC       0xC5u
#define CHUNK_VERSION     1u
#define CHUNK_HEADER_SIZE 8u
#define CHUNK_ENTRY_SIZE  12u

/* A checked record row; pointers into the caller's buffer. */
typedef struct rec_chunk {
    const uint8_t *buf;   /* the whole value */
    const uint8_t *table; /* the n entries */
    size_t n;
} rec_chunk;

/* Header of a row of n records (the entries follow the records). */
void rec_chunk_header(uint8_t out[CHUNK_HEADER_SIZE], size_t n);

/* Entry of a record ending at byte `end` of the value. */
void rec_chunk_entry(uint8_t out[CHUNK_ENTRY_SIZE], uint64_t seq, size_t end);

/* Check a record row stored under key seq `key_seq` (lengths, order of
 * seqs and offsets; not the records, which rec_decode checks one by one).
 * MB_ECORRUPT naming the row for anything malformed. Never reads outside
 * buf[0..len). */
int rec_chunk_parse(const uint8_t *buf, size_t len, uint64_t key_seq, rec_chunk *c, mb_error *err);

/* Seq of entry i of a checked row. */
static inline uint64_t rec_chunk_seq(const rec_chunk *c, size_t i)
{
    return rec_get_be64(c->table + i * CHUNK_ENTRY_SIZE);
}

/* Bytes of record i of a checked row. */
void rec_chunk_record(const rec_chunk *c, size_t i, const uint8_t **rec, size_t *len);

/* Index of the first entry with a seq >= `seq` (c->n if none). */
size_t rec_chunk_lower(const rec_chunk *c, uint64_t seq);

/* Time-index run rows (storage format 3) of `events_by_time` and
 * `local_by_time`: one row per run of consecutive events of one group write
 * whose times do not decrease and span at most TRUN_WINDOW_MS. Key:
 * be64(rec_time_to_key(time of the last entry)) || be64(last seq). Value:
 *   TRUN_VERSION, be32(n), n entries of be64(seq) || be64(time_ms),
 * seqs strictly increasing, times non-decreasing, the last (time, seq) equal
 * to the key's, at most TRUN_MAX_EVENTS entries. Every entry of a run thus has a (time, seq) <= its
 * key and a time >= key time - TRUN_WINDOW_MS. */
#define TRUN_VERSION    3u
#define TRUN_HEADER     5u
#define TRUN_ENTRY_SIZE 16u
#define TRUN_WINDOW_MS  1000
#define TRUN_MAX_EVENTS 512u

/* Header of a run of n entries; the entries follow. */
void rec_trun_header(uint8_t out[TRUN_HEADER], size_t n);

/* Entry of a run. */
void rec_trun_entry(uint8_t out[TRUN_ENTRY_SIZE], uint64_t seq, int64_t time_ms);

/* Check a run row value stored under key (key_time, key_seq); on success
 * *n is its number of entries (read them with rec_trun_seq/rec_trun_time).
 * MB_ECORRUPT for anything malformed. Never reads outside buf[0..len). */
int rec_trun_check(const uint8_t *buf, size_t len, int64_t key_time, uint64_t key_seq, size_t *n,
                   mb_error *err);

static inline uint64_t rec_trun_seq(const uint8_t *buf, size_t i)
{
    return rec_get_be64(buf + TRUN_HEADER + i * TRUN_ENTRY_SIZE);
}

static inline int64_t rec_trun_time(const uint8_t *buf, size_t i)
{
    return (int64_t)rec_get_be64(buf + TRUN_HEADER + i * TRUN_ENTRY_SIZE + 8);
}

#endif /* MB_STORAGE_RECORD_H */
