/* storage/storage.c: the RocksDB event store — opening the database and its
 * column families, group-committed appends, queries over the event log and
 * its indexes, retention, stats, meta and blobs. Formats: docs/storage.md
 * and record.h. */
#include "storage/storage.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <linux/ioprio.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "storage/record.h"
#include "storage/storage_testing.h"

/* Marker in the default column family: a store without it is foreign. */
#define FORMAT_KEY     "mabeam.storage.format"
#define FORMAT_MAGIC   "MABEAM-STORAGE"
#define FORMAT_VERSION 4u
/* Version 3 kept the `indexed` marks in the default family; opened and
 * upgraded in place (docs/storage.md). */
#define FORMAT_VERSION_OLD 3u
/* Key of the "rows cover seqs up to here" mark inside each subject/type
 * index family: 8 bytes, the length of the families' fixed prefix (RocksDB
 * asserts keys are at least that long) and shorter than a posting key, so
 * never inside the key range of a hash (it sorts before hash || seq). */
#define INDEXED_KEY "indexed."

/* Versioned prefix byte of every meta and blob value (never empty). */
#define VALUE_VERSION 1u

#define QUERY_LIMIT_DEFAULT 100u
#define QUERY_LIMIT_MAX     10000u
#define QUERY_BATCH         64u /* index candidates fetched per MultiGet */
#define PRUNE_CHUNK         4096u
#define GROUP_MAX_EVENTS    65536u
#define GROUP_MAX_BYTES     (64u << 20)
#define TAIL_FLUSH_EVENTS   131072u
#define TAIL_FLUSH_BYTES    (64u << 20) /* or at this many bytes of records */
/* A record row (rec_chunk) holds at most this many records, and closes once
 * it passes this many bytes. */
#define CHUNK_MAX_EVENTS 512u
#define CHUNK_MAX_BYTES  (64u << 10)
/* rocksdb::ChecksumType kXXH3 (the C API takes the enum's number). */
#define TABLE_CHECKSUM_XXH3 4

enum {
    CF_DEFAULT,
    CF_EVENTS,
    CF_EVENTS_SUBJECT,
    CF_EVENTS_TYPE,
    CF_EVENTS_TIME,
    CF_LOCAL,
    CF_LOCAL_SUBJECT,
    CF_LOCAL_TYPE,
    CF_LOCAL_TIME,
    CF_META,
    CF_BLOBS,
    CF_OURS /* number of column families of the format */
};

static const char *const cf_names[CF_OURS] = {
    "default", "events",           "events_by_subject", "events_by_type", "events_by_time",
    "local",   "local_by_subject", "local_by_type",     "local_by_time",  "meta",
    "blobs",
};

enum { LOG_EVENTS, LOG_LOCAL, LOG_COUNT };

/* An index entry of one event: key hash, seq, time and the other hash (the
 * type's in the subject index, the subject's in the type index). */
typedef struct irow {
    uint64_t h, seq, other;
    int64_t time_ms;
    uint64_t off; /* subject tail: the record, at itail.recs + off */
    size_t len;   /* its length */
} irow;

/* The two indexes of a log, in the order of slog.indexed[]. */
enum { IDX_SUBJECT, IDX_TYPE, IDX_COUNT };

/* One buffer of the index tail: the index entries of events not yet in
 * posting rows, in seq order, with a copy of their records for the
 * covering subject rows. */
typedef struct itail {
    irow *subj, *type;
    size_t n, cap;
    uint8_t *recs;
    size_t recs_len, recs_cap;
} itail;

/* One event log (the replicated one or the node-local one): its record
 * column family, its three index families and its counters. */
typedef struct slog {
    const char *name;
    int cf_rec, cf_subject, cf_type, cf_time;
    /* Guarded by storage.mu; changed only by the writer. */
    uint64_t last_seq; /* high-water mark of appended sequences */
    uint64_t count;    /* events present */
    uint64_t floor;    /* every seq below it has been pruned */
    /* The index tail, double-buffered (docs/storage.md, "Subject and type
     * indexes"). tails[active] receives the entries of new events (the
     * writer only); tails[!active] is frozen while flush_pending, being
     * written to posting rows by the flusher thread, and empty otherwise.
     * Contents, `active` and `indexed` are guarded by storage.tail_lock;
     * `active` changes only with storage.mu held too. */
    itail tails[2];
    int active;
    uint64_t indexed[IDX_COUNT]; /* posting rows cover seqs up to here */
    int tail_incomplete;         /* out of memory: index queries fail until reopen */
    /* Guarded by storage.mu. */
    int flush_pending; /* tails[!active] is frozen, waiting for the flusher */
    int flush_failed;  /* its flush failed; retried at the next group write */
    int index_dirty;   /* posting rows written without WAL may still be in memtables */
    size_t freeze_at;  /* the writer freezes the active tail at this many events (0: draw) */
} slog;

/* A prepared event of an append request. */
typedef struct wev {
    size_t off, len; /* record within wreq.recs */
    uint64_t hsubject, htype;
    uint32_t crc;
} wev;

/* Builder of one record row during a group write: the row is handed to
 * RocksDB as slices (header, the records where they lie, the entry table),
 * so the records are copied once, into the WriteBatch. */
typedef struct cbuild {
    uint64_t first;
    size_t n, bytes;
    const char *parts[CHUNK_MAX_EVENTS + 2];
    size_t sizes[CHUNK_MAX_EVENTS + 2];
    uint8_t header[CHUNK_HEADER_SIZE];
    uint8_t table[CHUNK_MAX_EVENTS * CHUNK_ENTRY_SIZE];
} cbuild;

/* Builder of one time-index run during a group write (record.h). */
typedef struct tbuild {
    size_t n;
    int64_t first_time, last_time;
    uint64_t last_seq;
    uint8_t buf[TRUN_HEADER + TRUN_MAX_EVENTS * TRUN_ENTRY_SIZE];
} tbuild;

/* A request in the writer queue: an append, or an exclusive section. */
typedef struct wreq wreq;
struct wreq {
    int exclusive;
    slog *log;
    storage_event *evs;
    size_t n;
    uint8_t *recs;
    wev *ev;
    size_t bytes;
    const char *meta_key;
    const void *meta_val;
    size_t meta_len;
    int done, rc;
    mb_error err;
    wreq *next;
};

struct storage {
    char *path;
    rocksdb_t *db;
    rocksdb_options_t *dbopts;
    rocksdb_options_t *cfopts[CF_OURS];
    rocksdb_block_based_table_options_t *table_plain, *table_prefix;
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t **handles; /* every opened family */
    size_t nhandles;
    rocksdb_column_family_handle_t *cf[CF_OURS];
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    slog logs[LOG_COUNT];

    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_rwlock_t tail_lock;
    size_t tail_flush_events; /* flush the tail into posting rows at this size */
    int tail_exact;           /* at exactly that size (tests), not a draw around it */
    uint64_t draw_rng;        /* xorshift state of tail_draw: at open, then writer only */
    int durable;
    int bg_low; /* STORAGE_BG_LOW: the flusher lowers its own priority */
    /* The flusher thread: writes frozen index tails as posting rows. */
    pthread_cond_t flush_cond; /* with mu: a tail was frozen or a flush ended */
    pthread_t flusher;
    int flusher_started, flusher_stop;
    void (*flush_hook)(storage *s, void *arg); /* testing */
    void *flush_hook_arg;
    /* Owned by whoever writes a tail: the flusher while a flush is pending,
     * else the holder of the writer role (never both at once). */
    rocksdb_writeoptions_t *wo_index; /* posting rows: no WAL (derived data) */
    rocksdb_writebatch_t *ibatch;
    irow *grouped;      /* tail entries grouped by hash */
    uint32_t *gslot;    /* hash table: group index + 1, 0 = empty */
    uint32_t *gid;      /* group of each entry */
    struct hgroup *grp; /* the groups */
    size_t grouped_cap, gslot_cap, gid_cap, grp_cap;
    uint64_t append_writes; /* RocksDB writes issued for append groups (testing) */
    wreq *q_head, *q_tail;
    int writer_active;
    /* Owned by the holder of the writer role. */
    rocksdb_writebatch_t *batch; /* reused by every group write */
    cbuild build[LOG_COUNT];
    tbuild tbuild[LOG_COUNT];
};

/* ---------------------------------------------------------------- errors */

/* Convert a RocksDB error string into an mb_err plus message, free it and
 * reset the pointer (LIBS.md §3). */
static int rdb_fail(mb_error *err, char **e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rdb_fail(mb_error *err, char **e, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *m = *e != NULL ? *e : "unknown RocksDB error";
    int code = MB_EIO;
    if (strstr(m, "lock") != NULL || strstr(m, "LOCK") != NULL)
        code = MB_EBUSY;
    else if (strncmp(m, "Corruption", 10) == 0)
        code = MB_ECORRUPT;
    else if (strstr(m, "No space") != NULL || strstr(m, "ENOSPC") != NULL)
        code = MB_ENOSPC;
    if (code == MB_EBUSY)
        mb_errorf(err, code, "%s: the database is in use by another process or handle (%s)", what,
                  m);
    else
        mb_errorf(err, code, "%s: %s", what, m);
    rocksdb_free(*e);
    *e = NULL;
    return code;
}

/* --------------------------------------------------------------- helpers */

static void put_u64_value(rocksdb_writebatch_t *b, rocksdb_column_family_handle_t *cf,
                          const char *key, uint64_t v)
{
    uint8_t buf[8];
    rec_put_be64(buf, v);
    rocksdb_writebatch_put_cf(b, cf, key, strlen(key), (const char *)buf, sizeof(buf));
}

static void log_key(char *buf, size_t size, const slog *lg, const char *what)
{
    snprintf(buf, size, "%s.%s", lg->name, what);
}

static int valid_key(const char *key)
{
    return key != NULL && key[0] != '\0' && strlen(key) <= STORAGE_KEY_MAX;
}

static int validate_events(const storage_event *evs, size_t n, mb_error *err)
{
    if (evs == NULL)
        return mb_errorf(err, MB_EINVAL, "append: NULL event array");
    for (size_t i = 0; i < n; i++) {
        const storage_event *ev = &evs[i];
        if (ev->type == NULL || ev->type[0] == '\0')
            return mb_errorf(err, MB_EINVAL, "append: event %zu has no type", i);
        if (strnlen(ev->type, STORAGE_TYPE_MAX + 1) > STORAGE_TYPE_MAX)
            return mb_errorf(err, MB_EINVAL, "append: event %zu type longer than %d bytes", i,
                             STORAGE_TYPE_MAX);
        if (ev->subject == NULL)
            return mb_errorf(err, MB_EINVAL, "append: event %zu subject is NULL (use \"\")", i);
        if (strnlen(ev->subject, STORAGE_SUBJECT_MAX + 1) > STORAGE_SUBJECT_MAX)
            return mb_errorf(err, MB_EINVAL, "append: event %zu subject longer than %d bytes", i,
                             STORAGE_SUBJECT_MAX);
        if (ev->payload_len > STORAGE_PAYLOAD_MAX)
            return mb_errorf(err, MB_EINVAL, "append: event %zu payload of %zu bytes over %u", i,
                             ev->payload_len, STORAGE_PAYLOAD_MAX);
        if (ev->payload == NULL && ev->payload_len > 0)
            return mb_errorf(err, MB_EINVAL, "append: event %zu has a NULL payload of %zu bytes", i,
                             ev->payload_len);
    }
    return 0;
}

/* ------------------------------------------------------------------ open */

static void tail_append(storage *s, slog *lg, const irow *subj, const irow *type,
                        const uint8_t *const *recs, size_t n);
static int tail_write(storage *s, slog *lg, itail *t, int background, mb_error *err);
static void *flusher_main(void *arg);
static void lower_rocksdb_threads(void);

/* Flush the memtables of the index families that got rows without WAL
 * (index_dirty) to disk. */
static int index_persist(storage *s, mb_error *err)
{
    int rc = 0;
    for (int i = 0; i < LOG_COUNT && rc == 0; i++) {
        slog *lg = &s->logs[i];
        pthread_mutex_lock(&s->mu);
        int dirty = lg->index_dirty;
        pthread_mutex_unlock(&s->mu);
        if (!dirty)
            continue;
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        const int cfs[IDX_COUNT] = { lg->cf_subject, lg->cf_type };
        for (int k = 0; k < IDX_COUNT && rc == 0; k++) {
            char *e = NULL;
            rocksdb_flush_cf(s->db, fo, s->cf[cfs[k]], &e);
            if (e != NULL)
                rc = rdb_fail(err, &e, "persist the index rows of %s", lg->name);
        }
        rocksdb_flushoptions_destroy(fo);
        if (rc == 0) {
            pthread_mutex_lock(&s->mu);
            lg->index_dirty = 0;
            pthread_mutex_unlock(&s->mu);
        }
    }
    return rc;
}

/* A number drawn from [0, n), n > 0 (xorshift): the sizes that keep the
 * nodes of a cluster from flushing together. At open, then writer only. */
static uint64_t tail_draw(storage *s, uint64_t n)
{
    uint64_t x = s->draw_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->draw_rng = x;
    return (x >> 11) % n;
}

/* The `events` family's write buffer: drawn per store from [48, 80) MiB.
 * The nodes of a cluster append the same events, so with one size their
 * memtables filled, and RocksDB flushed them, at the same moment on all
 * of them (tests/bench/cluster/flush_probe.sh; docs/storage.md,
 * "Staggered freezes"). */
static size_t events_write_buffer(storage *s)
{
    return ((size_t)48 << 20) + (size_t)tail_draw(s, (uint64_t)32 << 20);
}

static rocksdb_options_t *cf_options(storage *s, int cf)
{
    rocksdb_options_t *o = rocksdb_options_create();
    switch (cf) {
    case CF_EVENTS:
    case CF_LOCAL: {
        rocksdb_options_set_block_based_table_factory(o, s->table_plain);
        rocksdb_options_set_write_buffer_size(o,
                                              cf == CF_EVENTS ? events_write_buffer(s) : 8u << 20);
        rocksdb_options_set_max_write_buffer_number(o, 4);
        /* LZ4 from the first flush on: in the daemon the log shares the
         * disk with raft's synchronous appends, and an uncompressed flush
         * wrote bursts that stalled them (docs/storage.md, "Tuning"). */
        rocksdb_options_set_compression(o, rocksdb_lz4_compression);
        break;
    }
    case CF_EVENTS_SUBJECT:
    case CF_EVENTS_TYPE:
    case CF_LOCAL_SUBJECT:
    case CF_LOCAL_TYPE:
        rocksdb_options_set_block_based_table_factory(o, s->table_prefix);
        rocksdb_options_set_prefix_extractor(o, rocksdb_slicetransform_create_fixed_prefix(8));
        rocksdb_options_set_write_buffer_size(
            o, cf == CF_EVENTS_SUBJECT || cf == CF_EVENTS_TYPE ? 32u << 20 : 4u << 20);
        rocksdb_options_set_max_write_buffer_number(o, 4);
        /* The subject rows carry a copy of every record: LZ4 like them. */
        rocksdb_options_set_compression(o, rocksdb_lz4_compression);
        break;
    case CF_EVENTS_TIME:
    case CF_LOCAL_TIME:
        rocksdb_options_set_block_based_table_factory(o, s->table_plain);
        rocksdb_options_set_write_buffer_size(o, cf == CF_EVENTS_TIME ? 32u << 20 : 4u << 20);
        rocksdb_options_set_max_write_buffer_number(o, 4);
        rocksdb_options_set_compression(o, rocksdb_lz4_compression);
        break;
    default: /* default, meta, blobs and foreign families */
        rocksdb_options_set_block_based_table_factory(o, s->table_plain);
        rocksdb_options_set_write_buffer_size(o, 4u << 20);
        rocksdb_options_set_compression(o, rocksdb_lz4_compression);
        break;
    }
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    return o;
}

/* A directory that holds files but no RocksDB CURRENT file is not ours: we
 * refuse to create a store among someone else's files. */
static int check_directory(const char *path, int *exists, mb_error *err)
{
    struct stat st;
    *exists = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return mb_errorf(err, MB_EIO, "open event store at %s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return mb_errorf(err, MB_EINVAL, "open event store at %s: not a directory", path);
    char current[4096];
    snprintf(current, sizeof(current), "%s/CURRENT", path);
    if (stat(current, &st) == 0) {
        *exists = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (d == NULL)
        return mb_errorf(err, MB_EIO, "open event store at %s: %s", path, strerror(errno));
    struct dirent *de;
    int nonempty = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            nonempty = 1;
            break;
        }
    }
    closedir(d);
    if (nonempty)
        return mb_errorf(err, MB_ECORRUPT,
                         "open event store at %s: not a MABEAM store (a non-empty directory "
                         "without a RocksDB database)",
                         path);
    return 0;
}

static int load_u64(storage *s, const char *key, uint64_t *out, mb_error *err)
{
    char *e = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(s->db, s->ro, s->cf[CF_DEFAULT], key, strlen(key), &len, &e);
    if (e != NULL)
        return rdb_fail(err, &e, "open event store at %s: read %s", s->path, key);
    *out = 0;
    if (v == NULL)
        return 0;
    int rc = 0;
    if (len != 8)
        rc = mb_errorf(err, MB_ECORRUPT, "open event store at %s: counter %s has %zu bytes",
                       s->path, key, len);
    else
        *out = rec_get_be64((const uint8_t *)v);
    rocksdb_free(v);
    return rc;
}

/* ----------------------------------------------------------- record rows */

/* A cursor over the record rows of one log: an iterator and the row it is
 * on, checked. */
typedef struct rcur {
    rocksdb_iterator_t *it;
    const char *log; /* name, for messages */
    int have;        /* c/first/last describe the current row */
    rec_chunk c;
    uint64_t first, last;
} rcur;

static void rcur_init(rcur *cur, storage *s, rocksdb_readoptions_t *ro, int cf, const char *log)
{
    memset(cur, 0, sizeof(*cur));
    cur->it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    cur->log = log;
}

/* Iterator error of the cursor, if any (as an mb_err). */
static int rcur_error(rcur *cur, mb_error *err)
{
    char *e = NULL;
    rocksdb_iter_get_error(cur->it, &e);
    if (e != NULL)
        return rdb_fail(err, &e, "read %s", cur->log);
    return 0;
}

static void rcur_close(rcur *cur)
{
    if (cur->it != NULL)
        rocksdb_iter_destroy(cur->it);
    cur->it = NULL;
}

/* Check the row the iterator is on. MB_ECORRUPT for a damaged row. */
static int rcur_load(rcur *cur, mb_error *err)
{
    size_t kl, vl;
    const char *k = rocksdb_iter_key(cur->it, &kl);
    const char *v = rocksdb_iter_value(cur->it, &vl);
    cur->have = 0;
    if (kl != KEY_SEQ_SIZE)
        return mb_errorf(err, MB_ECORRUPT, "read %s: foreign key of %zu bytes", cur->log, kl);
    uint64_t key = rec_get_be64((const uint8_t *)k);
    int rc = rec_chunk_parse((const uint8_t *)v, vl, key, &cur->c, err);
    if (rc != 0)
        return rc;
    cur->have = 1;
    cur->first = key;
    cur->last = rec_chunk_seq(&cur->c, cur->c.n - 1);
    return 0;
}

/* Find the record of `seq`: *rec and *len point into the current row (valid
 * until the cursor moves), or *rec = NULL when there is no such event. */
static int rcur_find(rcur *cur, uint64_t seq, const uint8_t **rec, size_t *len, mb_error *err)
{
    *rec = NULL;
    *len = 0;
    if (!cur->have || seq < cur->first || seq > cur->last) {
        uint8_t k[KEY_SEQ_SIZE];
        rec_put_be64(k, seq);
        rocksdb_iter_seek_for_prev(cur->it, (const char *)k, sizeof(k));
        cur->have = 0;
        if (!rocksdb_iter_valid(cur->it))
            return rcur_error(cur, err);
        int rc = rcur_load(cur, err);
        if (rc != 0)
            return rc;
        if (seq > cur->last)
            return 0;
    }
    size_t i = rec_chunk_lower(&cur->c, seq);
    if (i < cur->c.n && rec_chunk_seq(&cur->c, i) == seq)
        rec_chunk_record(&cur->c, i, rec, len);
    return 0;
}

/* Lowest (first != 0) or highest seq of a record family; 0 when the family
 * is empty. */
static int edge_seq(storage *s, int cf, uint64_t floor, int first, uint64_t *out, mb_error *err)
{
    uint8_t lo[8];
    rec_put_be64(lo, floor > 0 ? floor : 1);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    if (first)
        rocksdb_iter_seek_to_first(it);
    else
        rocksdb_iter_seek_to_last(it);
    *out = 0;
    int rc = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 8) {
            rc = mb_errorf(err, MB_ECORRUPT, "event store %s: key of %zu bytes in %s", s->path,
                           klen, cf_names[cf]);
        } else {
            *out = rec_get_be64((const uint8_t *)k);
            rec_chunk c;
            size_t vl;
            const char *v = rocksdb_iter_value(it, &vl);
            /* A damaged last row counts by its key: its records report
             * themselves when read. */
            if (!first && rec_chunk_parse((const uint8_t *)v, vl, *out, &c, NULL) == 0)
                *out = rec_chunk_seq(&c, c.n - 1);
        }
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e != NULL)
        rc = rdb_fail(err, &e, "event store %s: scan %s", s->path, cf_names[cf]);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

/* Rebuild the index tail from the events above the `indexed` mark (at
 * most about one flush worth). A damaged record gets no index entry; seq
 * and time queries still report it. */
static int rebuild_tail(storage *s, slog *lg, mb_error *err)
{
    /* After a crash during a flush one index may be ahead of the other:
     * start at the lower mark; tail_write and queries skip, per index, the
     * entries its rows already hold. */
    uint64_t low = lg->indexed[IDX_SUBJECT] < lg->indexed[IDX_TYPE] ? lg->indexed[IDX_SUBJECT]
                                                                    : lg->indexed[IDX_TYPE];
    uint64_t from = low + 1 > lg->floor ? low + 1 : lg->floor;
    uint8_t lo[8];
    rec_put_be64(lo, from);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rcur cur;
    rcur_init(&cur, s, ro, lg->cf_rec, lg->name);
    /* The row holding `from` may start below it. */
    rocksdb_iter_seek_for_prev(cur.it, (const char *)lo, sizeof(lo));
    if (!rocksdb_iter_valid(cur.it))
        rocksdb_iter_seek(cur.it, (const char *)lo, sizeof(lo));
    for (; rocksdb_iter_valid(cur.it); rocksdb_iter_next(cur.it)) {
        if (rcur_load(&cur, NULL) != 0)
            continue; /* a damaged row: its events get no index entries */
        for (size_t i = rec_chunk_lower(&cur.c, from); i < cur.c.n; i++) {
            uint64_t seq = rec_chunk_seq(&cur.c, i);
            const uint8_t *rec;
            size_t len;
            storage_event ev;
            rec_chunk_record(&cur.c, i, &rec, &len);
            if (rec_decode(rec, len, seq, &ev, NULL) != 0)
                continue;
            uint64_t hs = rec_hash(ev.subject), ht = rec_hash(ev.type);
            irow a = { hs, seq, ht, ev.time_ms, 0, len }, b = { ht, seq, hs, ev.time_ms, 0, 0 };
            tail_append(s, lg, &a, &b, &rec, 1);
        }
    }
    int rc = rcur_error(&cur, err);
    rcur_close(&cur);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

static int load_log(storage *s, slog *lg, mb_error *err)
{
    char key[64];
    int rc;
    log_key(key, sizeof(key), lg, "last");
    if ((rc = load_u64(s, key, &lg->last_seq, err)) != 0)
        return rc;
    log_key(key, sizeof(key), lg, "count");
    if ((rc = load_u64(s, key, &lg->count, err)) != 0)
        return rc;
    log_key(key, sizeof(key), lg, "floor");
    if ((rc = load_u64(s, key, &lg->floor, err)) != 0)
        return rc;
    /* The marks live in the index families themselves (format 4): rows
     * and mark are written without WAL, so only their own family persists
     * them together. A version 3 store has one mark in the default family. */
    uint64_t old_mark;
    log_key(key, sizeof(key), lg, "indexed");
    if ((rc = load_u64(s, key, &old_mark, err)) != 0)
        return rc;
    const int icf[IDX_COUNT] = { lg->cf_subject, lg->cf_type };
    for (int k = 0; k < IDX_COUNT; k++) {
        char *e = NULL;
        size_t len = 0;
        char *v =
            rocksdb_get_cf(s->db, s->ro, s->cf[icf[k]], INDEXED_KEY, strlen(INDEXED_KEY), &len, &e);
        if (e != NULL)
            return rdb_fail(err, &e, "open event store at %s: read %s mark", s->path,
                            cf_names[icf[k]]);
        lg->indexed[k] = old_mark;
        if (v != NULL && len == 8)
            lg->indexed[k] = rec_get_be64((const uint8_t *)v);
        rocksdb_free(v);
        if (v != NULL && len != 8)
            return mb_errorf(err, MB_ECORRUPT, "open event store at %s: %s mark has %zu bytes",
                             s->path, cf_names[icf[k]], len);
    }
    uint64_t top;
    if ((rc = edge_seq(s, lg->cf_rec, lg->floor, 0, &top, err)) != 0)
        return rc;
    if (top > lg->last_seq)
        return mb_errorf(err, MB_ECORRUPT,
                         "open event store at %s: %s holds seq %llu above its recorded last "
                         "seq %llu",
                         s->path, lg->name, (unsigned long long)top,
                         (unsigned long long)lg->last_seq);
    return 0;
}

/* Check the format marker, or write it into a new store. */
static int check_format(storage *s, int existed, mb_error *err)
{
    char *e = NULL;
    size_t len = 0;
    char *v =
        rocksdb_get_cf(s->db, s->ro, s->cf[CF_DEFAULT], FORMAT_KEY, strlen(FORMAT_KEY), &len, &e);
    if (e != NULL)
        return rdb_fail(err, &e, "open event store at %s: read format marker", s->path);
    size_t mlen = strlen(FORMAT_MAGIC);
    if (v != NULL) {
        int rc = 0;
        int old = 0;
        if (len != mlen + 1 || memcmp(v, FORMAT_MAGIC, mlen) != 0)
            rc = mb_errorf(err, MB_ECORRUPT, "open event store at %s: bad format marker", s->path);
        else if ((uint8_t)v[mlen] == FORMAT_VERSION_OLD)
            old = 1;
        else if ((uint8_t)v[mlen] != FORMAT_VERSION)
            rc = mb_errorf(err, MB_ECORRUPT,
                           "open event store at %s: format version %u, this build reads %u and %u",
                           s->path, (uint8_t)v[mlen], FORMAT_VERSION_OLD, FORMAT_VERSION);
        rocksdb_free(v);
        if (rc != 0 || !old)
            return rc;
        /* Version 3: the `indexed` marks are read from the default family
         * (load_log); mark the store as version 4 before anything is
         * written without WAL, so that a version 3 build refuses it. */
    }
    if (existed) {
        /* Our families exist but no marker: a creation cut short is fine
         * (nothing written yet); anything with events is not ours. */
        uint64_t top;
        int rc = edge_seq(s, CF_EVENTS, 0, 0, &top, err);
        if (rc != 0)
            return rc;
        if (top != 0)
            return mb_errorf(err, MB_ECORRUPT,
                             "open event store at %s: not a MABEAM store (no format marker)",
                             s->path);
    }
    return 0;
}

/* Write the format marker (new store, or a version 3 store upgraded) and
 * the `indexed` marks of every index family, synced. */
static int write_format(storage *s, mb_error *err)
{
    size_t mlen = strlen(FORMAT_MAGIC);
    char marker[32];
    memcpy(marker, FORMAT_MAGIC, mlen);
    marker[mlen] = (char)FORMAT_VERSION;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], FORMAT_KEY, strlen(FORMAT_KEY), marker,
                              mlen + 1);
    for (int i = 0; i < LOG_COUNT; i++) {
        const slog *lg = &s->logs[i];
        put_u64_value(b, s->cf[lg->cf_subject], INDEXED_KEY, lg->indexed[IDX_SUBJECT]);
        put_u64_value(b, s->cf[lg->cf_type], INDEXED_KEY, lg->indexed[IDX_TYPE]);
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    char *e = NULL;
    rocksdb_write(s->db, wo, b, &e);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_writebatch_destroy(b);
    if (e != NULL)
        return rdb_fail(err, &e, "open event store at %s: write format marker", s->path);
    return 0;
}

static void storage_free(storage *s)
{
    if (s->db != NULL) {
        for (size_t i = 0; i < s->nhandles; i++)
            rocksdb_column_family_handle_destroy(s->handles[i]);
        rocksdb_close(s->db);
    }
    free(s->handles);
    for (int i = 0; i < CF_OURS; i++)
        if (s->cfopts[i] != NULL)
            rocksdb_options_destroy(s->cfopts[i]);
    if (s->dbopts != NULL)
        rocksdb_options_destroy(s->dbopts);
    if (s->table_plain != NULL)
        rocksdb_block_based_options_destroy(s->table_plain);
    if (s->table_prefix != NULL)
        rocksdb_block_based_options_destroy(s->table_prefix);
    if (s->cache != NULL)
        rocksdb_cache_destroy(s->cache);
    if (s->wo != NULL)
        rocksdb_writeoptions_destroy(s->wo);
    if (s->ro != NULL)
        rocksdb_readoptions_destroy(s->ro);
    if (s->batch != NULL)
        rocksdb_writebatch_destroy(s->batch);
    if (s->ibatch != NULL)
        rocksdb_writebatch_destroy(s->ibatch);
    if (s->wo_index != NULL)
        rocksdb_writeoptions_destroy(s->wo_index);
    for (int i = 0; i < LOG_COUNT; i++) {
        for (int k = 0; k < 2; k++) {
            free(s->logs[i].tails[k].subj);
            free(s->logs[i].tails[k].type);
            free(s->logs[i].tails[k].recs);
        }
    }
    free(s->grouped);
    free(s->gslot);
    free(s->gid);
    free(s->grp);
    pthread_cond_destroy(&s->flush_cond);
    pthread_rwlock_destroy(&s->tail_lock);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

int storage_open(const storage_options *opts, storage **out, mb_error *err)
{
    if (out == NULL || opts == NULL || opts->path == NULL || opts->path[0] == '\0')
        return mb_errorf(err, MB_EINVAL, "open event store: no path given");
    if (opts->durability != STORAGE_FAST && opts->durability != STORAGE_DURABLE)
        return mb_errorf(err, MB_EINVAL, "open event store at %s: bad durability %d", opts->path,
                         (int)opts->durability);
    if (opts->background != STORAGE_BG_LOW && opts->background != STORAGE_BG_NORMAL)
        return mb_errorf(err, MB_EINVAL, "open event store at %s: bad background priority %d",
                         opts->path, (int)opts->background);
    *out = NULL;
    int existed = 0;
    int rc = check_directory(opts->path, &existed, err);
    if (rc != 0)
        return rc;

    storage *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "open event store at %s: out of memory", opts->path);
    char **names = NULL;
    size_t nnames = 0;
    const char **open_names = NULL;
    const rocksdb_options_t **open_opts = NULL;
    rocksdb_options_t **foreign_opts = NULL;
    size_t nforeign = 0;
    char *e = NULL;

    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_rwlock_init(&s->tail_lock, NULL);
    pthread_cond_init(&s->flush_cond, NULL);
    s->tail_flush_events = TAIL_FLUSH_EVENTS;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->draw_rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                      ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)s;
        if (s->draw_rng == 0)
            s->draw_rng = 0x9E3779B97F4A7C15ull;
    }
    s->durable = opts->durability == STORAGE_DURABLE;
    s->bg_low = opts->background == STORAGE_BG_LOW;
    if (s->bg_low)
        lower_rocksdb_threads();
    s->path = strdup(opts->path);
    if (s->path == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "open event store at %s: out of memory", opts->path);
        goto fail_store;
    }
    s->cache = rocksdb_cache_create_lru(opts->block_cache_bytes ? opts->block_cache_bytes
                                                                : (size_t)32 << 20);
    s->table_plain = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(s->table_plain, s->cache);
    rocksdb_block_based_options_set_filter_policy(s->table_plain,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_format_version(s->table_plain, 5);
    /* XXH3 block checksums: Debian's portable librocksdb computes CRC-32C
     * in software, which showed up at ~10% of the append CPU. */
    rocksdb_block_based_options_set_checksum(s->table_plain, TABLE_CHECKSUM_XXH3);
    s->table_prefix = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(s->table_prefix, s->cache);
    rocksdb_block_based_options_set_filter_policy(s->table_prefix,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_whole_key_filtering(s->table_prefix, 0);
    rocksdb_block_based_options_set_format_version(s->table_prefix, 5);
    rocksdb_block_based_options_set_checksum(s->table_prefix, TABLE_CHECKSUM_XXH3);

    s->dbopts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->dbopts, 1);
    rocksdb_options_set_create_missing_column_families(s->dbopts, 1);
    rocksdb_options_increase_parallelism(s->dbopts, 2);
    rocksdb_options_set_max_background_jobs(s->dbopts, 2);
    rocksdb_options_set_keep_log_file_num(s->dbopts, 4);
    rocksdb_options_set_max_total_wal_size(s->dbopts, 512u << 20);
    rocksdb_options_set_bytes_per_sync(s->dbopts, 1u << 20);
    rocksdb_options_set_wal_bytes_per_sync(s->dbopts, 1u << 20);
    /* One writer at a time (our group commit). */
    rocksdb_options_set_allow_concurrent_memtable_write(s->dbopts, 0);
    /* Posting rows are written without WAL, which makes RocksDB flush
     * every memtable at close (the record rows' too, which the WAL already
     * holds). storage_close persists the index families itself
     * (index_persist), so that flush is skipped. No C setter in 7.8.3. */
    {
        rocksdb_options_t *o = rocksdb_options_create();
        rocksdb_get_options_from_string(s->dbopts, "avoid_flush_during_shutdown=true", o, &e);
        if (e != NULL) {
            rocksdb_options_destroy(o);
            rc = rdb_fail(err, &e, "open event store at %s: options", s->path);
            goto fail_store;
        }
        rocksdb_options_destroy(s->dbopts);
        s->dbopts = o;
    }
    for (int i = 0; i < CF_OURS; i++)
        s->cfopts[i] = cf_options(s, i);

    s->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo, opts->durability == STORAGE_DURABLE);
    s->ro = rocksdb_readoptions_create();
    s->batch = rocksdb_writebatch_create();
    s->ibatch = rocksdb_writebatch_create();
    s->wo_index = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(s->wo_index, 1);

    /* Every existing family must be opened (LIBS.md §3), ours plus any
     * foreign one; an existing database without our families is foreign. */
    if (existed) {
        names = rocksdb_list_column_families(s->dbopts, s->path, &nnames, &e);
        if (e != NULL) {
            rc = rdb_fail(err, &e, "open event store at %s: list column families", s->path);
            goto fail_store;
        }
        int has_events = 0;
        for (size_t i = 0; i < nnames; i++)
            if (strcmp(names[i], "events") == 0)
                has_events = 1;
        if (!has_events) {
            rc = mb_errorf(err, MB_ECORRUPT,
                           "open event store at %s: not a MABEAM store (a RocksDB database "
                           "without an events column family)",
                           s->path);
            goto fail_store;
        }
    }
    size_t nopen = CF_OURS;
    open_names = calloc(CF_OURS + nnames, sizeof(*open_names));
    open_opts = calloc(CF_OURS + nnames, sizeof(*open_opts));
    foreign_opts = calloc(nnames + 1, sizeof(*foreign_opts));
    s->handles = calloc(CF_OURS + nnames, sizeof(*s->handles));
    if (open_names == NULL || open_opts == NULL || foreign_opts == NULL || s->handles == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "open event store at %s: out of memory", s->path);
        goto fail_store;
    }
    for (int i = 0; i < CF_OURS; i++) {
        open_names[i] = cf_names[i];
        open_opts[i] = s->cfopts[i];
    }
    for (size_t i = 0; i < nnames; i++) {
        int ours = 0;
        for (int k = 0; k < CF_OURS; k++)
            if (strcmp(names[i], cf_names[k]) == 0)
                ours = 1;
        if (ours)
            continue;
        foreign_opts[nforeign] = cf_options(s, -1);
        open_names[nopen] = names[i];
        open_opts[nopen] = foreign_opts[nforeign];
        nforeign++;
        nopen++;
    }
    s->db = rocksdb_open_column_families(s->dbopts, s->path, (int)nopen, open_names, open_opts,
                                         s->handles, &e);
    if (e != NULL) {
        s->db = NULL;
        rc = rdb_fail(err, &e, "open event store at %s", s->path);
        goto fail_store;
    }
    s->nhandles = nopen;
    for (int i = 0; i < CF_OURS; i++)
        s->cf[i] = s->handles[i];

    s->logs[LOG_EVENTS] = (slog){ .name = "events",
                                  .cf_rec = CF_EVENTS,
                                  .cf_subject = CF_EVENTS_SUBJECT,
                                  .cf_type = CF_EVENTS_TYPE,
                                  .cf_time = CF_EVENTS_TIME };
    s->logs[LOG_LOCAL] = (slog){ .name = "local",
                                 .cf_rec = CF_LOCAL,
                                 .cf_subject = CF_LOCAL_SUBJECT,
                                 .cf_type = CF_LOCAL_TYPE,
                                 .cf_time = CF_LOCAL_TIME };
    if ((rc = check_format(s, existed, err)) != 0)
        goto fail_store;
    for (int i = 0; i < LOG_COUNT; i++)
        if ((rc = load_log(s, &s->logs[i], err)) != 0 ||
            (rc = rebuild_tail(s, &s->logs[i], err)) != 0)
            goto fail_store;
    if ((rc = write_format(s, err)) != 0)
        goto fail_store;
    if ((rc = pthread_create(&s->flusher, NULL, flusher_main, s)) != 0) {
        rc = mb_errorf(err, MB_ENOMEM, "open event store at %s: start index flusher: %s", s->path,
                       strerror(rc));
        goto fail_store;
    }
    s->flusher_started = 1;

    for (size_t i = 0; i < nforeign; i++)
        rocksdb_options_destroy(foreign_opts[i]);
    free(foreign_opts);
    free(open_names);
    free(open_opts);
    if (names != NULL)
        rocksdb_list_column_families_destroy(names, nnames);
    *out = s;
    return 0;

fail_store:
    storage_free(s);
    if (foreign_opts != NULL)
        for (size_t i = 0; i < nforeign; i++)
            rocksdb_options_destroy(foreign_opts[i]);
    free(foreign_opts);
    free(open_names);
    free(open_opts);
    if (names != NULL)
        rocksdb_list_column_families_destroy(names, nnames);
    return rc;
}

void storage_close(storage *s)
{
    if (s == NULL)
        return;
    /* Closing while other threads still append is a caller bug. */
    assert(!s->writer_active && s->q_head == NULL);
    /* The flusher finishes a pending flush, then stops. */
    pthread_mutex_lock(&s->mu);
    s->flusher_stop = 1;
    pthread_cond_broadcast(&s->flush_cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->flusher, NULL);
    /* Write the index tails out (a frozen one whose flush failed first, it
     * holds the lower seqs) and persist them, so that the next open has
     * little to rebuild; on failure the next open rebuilds them from the
     * events. */
    for (int i = 0; i < LOG_COUNT; i++) {
        slog *lg = &s->logs[i];
        if (lg->flush_pending && tail_write(s, lg, &lg->tails[!lg->active], 0, NULL) != 0)
            continue;
        tail_write(s, lg, &lg->tails[lg->active], 0, NULL);
    }
    index_persist(s, NULL);
    storage_free(s);
}

/* ---------------------------------------------------------------- writer */

/* Queue `r` and wait until it is done by another writer or until this thread
 * is the writer. Returns 1 when done (r->rc is the result); 0 when this
 * thread holds the writer role and *group is the list of requests (starting
 * with r) it must carry out, with the logs' counters as of now in t_last /
 * t_count. */
static int writer_enter(storage *s, wreq *r, wreq **group, uint64_t *t_last, uint64_t *t_count,
                        uint64_t *t_floor)
{
    pthread_mutex_lock(&s->mu);
    r->next = NULL;
    if (s->q_tail != NULL)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    while (!r->done && (s->writer_active || s->q_head != r))
        pthread_cond_wait(&s->cond, &s->mu);
    if (r->done) {
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    s->writer_active = 1;
    wreq *last = r;
    size_t events = r->n, bytes = r->bytes;
    if (!r->exclusive) {
        while (last->next != NULL && !last->next->exclusive &&
               events + last->next->n <= GROUP_MAX_EVENTS &&
               bytes + last->next->bytes <= GROUP_MAX_BYTES) {
            last = last->next;
            events += last->n;
            bytes += last->bytes;
        }
    }
    s->q_head = last->next;
    if (s->q_head == NULL)
        s->q_tail = NULL;
    last->next = NULL;
    for (int i = 0; i < LOG_COUNT; i++) {
        t_last[i] = s->logs[i].last_seq;
        t_count[i] = s->logs[i].count;
        t_floor[i] = s->logs[i].floor;
    }
    pthread_mutex_unlock(&s->mu);
    *group = r;
    return 0;
}

/* Give up the writer role: on success publish the new counters, then finish
 * every request of the group with rc/err. */
static void writer_leave(storage *s, wreq *group, int rc, const mb_error *gerr,
                         const uint64_t *t_last, const uint64_t *t_count, const uint64_t *t_floor)
{
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        for (int i = 0; i < LOG_COUNT; i++) {
            s->logs[i].last_seq = t_last[i];
            s->logs[i].count = t_count[i];
            s->logs[i].floor = t_floor[i];
        }
    }
    for (wreq *q = group; q != NULL;) {
        wreq *next = q->next;
        q->rc = rc;
        if (rc != 0 && gerr != NULL)
            q->err = *gerr;
        q->done = 1;
        q = next;
    }
    s->writer_active = 0;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void put_log_counters(storage *s, rocksdb_writebatch_t *b, const slog *lg, uint64_t last,
                             uint64_t count, uint64_t floor, int with_floor)
{
    char key[64];
    log_key(key, sizeof(key), lg, "last");
    put_u64_value(b, s->cf[CF_DEFAULT], key, last);
    log_key(key, sizeof(key), lg, "count");
    put_u64_value(b, s->cf[CF_DEFAULT], key, count);
    if (with_floor) {
        log_key(key, sizeof(key), lg, "floor");
        put_u64_value(b, s->cf[CF_DEFAULT], key, floor);
    }
}

static int irow_cmp(const void *a, const void *b)
{
    const irow *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Grow buffer *p (of *cap elements of `size` bytes) to hold `need`; 0 or
 * -1 when out of memory (*p is kept). */
static int grow(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    void *a = realloc(*p, c * size);
    if (a == NULL)
        return -1;
    *p = a;
    *cap = c;
    return 0;
}

/* Add index entries of newly written events (seq order) to the active tail,
 * with a copy of their records (recs[i], subj[i].len bytes) for the
 * covering subject rows. Writer only. */
static void tail_append(storage *s, slog *lg, const irow *subj, const irow *type,
                        const uint8_t *const *recs, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += subj[i].len;
    pthread_rwlock_wrlock(&s->tail_lock);
    itail *t = &lg->tails[lg->active];
    if (!lg->tail_incomplete && t->n + n > t->cap) {
        size_t cap = t->cap, cap2 = t->cap;
        if (grow((void **)&t->subj, &cap, t->n + n, sizeof(irow), 1024) != 0 ||
            grow((void **)&t->type, &cap2, t->n + n, sizeof(irow), 1024) != 0)
            lg->tail_incomplete = 1;
        else
            t->cap = cap;
    }
    if (!lg->tail_incomplete &&
        grow((void **)&t->recs, &t->recs_cap, t->recs_len + bytes, 1, 65536) != 0)
        lg->tail_incomplete = 1;
    if (!lg->tail_incomplete) {
        memcpy(t->subj + t->n, subj, n * sizeof(*subj));
        memcpy(t->type + t->n, type, n * sizeof(*type));
        for (size_t i = 0; i < n; i++) {
            irow *e = &t->subj[t->n + i];
            e->off = t->recs_len;
            memcpy(t->recs + t->recs_len, recs[i], e->len);
            t->recs_len += e->len;
        }
        t->n += n;
    }
    pthread_rwlock_unlock(&s->tail_lock);
}

/* Put the posting rows of `rows` (sorted by hash, seq): one row per run of
 * one hash, keyed by the run's highest seq. With `recs` (the subject
 * index) the rows are covering (version 2): they carry each event's record,
 * found at recs + row.off. */
static int put_postings(rocksdb_writebatch_t *b, rocksdb_column_family_handle_t *cf,
                        const irow *rows, size_t n, const uint8_t *recs)
{
    rec_posting *p = malloc((n ? n : 1) * sizeof(*p));
    const char **parts = malloc((n + 1) * sizeof(*parts));
    size_t *sizes = malloc((n + 1) * sizeof(*sizes));
    size_t vcap = 65536;
    uint8_t *v = malloc(vcap);
    int rc = 0;
    if (p == NULL || parts == NULL || sizes == NULL || v == NULL)
        rc = MB_ENOMEM;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && rows[j].h == rows[i].h) {
            p[j - i] = (rec_posting){ rows[j].seq, rows[j].time_ms, rows[j].other };
            if (recs != NULL) {
                parts[1 + j - i] = (const char *)recs + rows[j].off;
                sizes[1 + j - i] = rows[j].len;
            }
            j++;
        }
        size_t k = j - i;
        /* The entries; a covering row's records follow as slices of the
         * tail's record copies (no second copy here). */
        size_t hlen = recs != NULL ? rec_postings_rec_size(k, 0) : rec_postings_size(k);
        if (hlen > vcap) {
            while (vcap < hlen)
                vcap *= 2;
            uint8_t *nv = realloc(v, vcap);
            if (nv == NULL) {
                rc = MB_ENOMEM;
                break;
            }
            v = nv;
        }
        uint8_t key[KEY_IDX_SIZE];
        rec_put_be64(key, rows[i].h);
        rec_put_be64(key + 8, rows[j - 1].seq);
        if (recs != NULL) {
            rec_postings_rec_header(p, &sizes[1], k, v);
            parts[0] = (const char *)v;
            sizes[0] = hlen;
            const char *kp = (const char *)key;
            size_t ks = sizeof(key);
            rocksdb_writebatch_putv_cf(b, cf, 1, &kp, &ks, (int)k + 1, parts, sizes);
        } else {
            rec_postings_encode(p, k, v);
            rocksdb_writebatch_put_cf(b, cf, (const char *)key, sizeof(key), (const char *)v, hlen);
        }
        i = j;
    }
    free(p);
    free(parts);
    free(sizes);
    free(v);
    return rc;
}

/* A group of index entries of one hash (group_by_hash). */
struct hgroup {
    uint64_t h;
    size_t count, pos;
};

static int hgroup_cmp(const void *a, const void *b)
{
    const struct hgroup *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* Group rows[0..n) (in seq order) by hash into s->grouped: (hash, seq)
 * order, by one pass through a hash table of the distinct hashes, a sort
 * of those, and one scatter pass (it was an 8-pass radix sort of every
 * entry). Called by the owner of the flush buffers only. */
static int group_by_hash(storage *s, const irow *rows, size_t n)
{
    size_t slots = 1024;
    while (slots < 2 * n)
        slots *= 2;
    if (grow((void **)&s->grouped, &s->grouped_cap, n, sizeof(irow), 1024) != 0 ||
        grow((void **)&s->gid, &s->gid_cap, n, sizeof(uint32_t), 1024) != 0 ||
        grow((void **)&s->grp, &s->grp_cap, n, sizeof(struct hgroup), 1024) != 0)
        return MB_ENOMEM;
    if (slots > s->gslot_cap) {
        uint32_t *a = realloc(s->gslot, slots * sizeof(*a));
        if (a == NULL)
            return MB_ENOMEM;
        s->gslot = a;
        s->gslot_cap = slots;
    }
    memset(s->gslot, 0, slots * sizeof(*s->gslot));
    size_t mask = slots - 1, ng = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = rows[i].h;
        size_t j = (size_t)((h ^ (h >> 31)) * 0x9E3779B97F4A7C15ull >> 20) & mask;
        while (s->gslot[j] != 0 && s->grp[s->gslot[j] - 1].h != h)
            j = (j + 1) & mask;
        if (s->gslot[j] == 0) {
            s->grp[ng] = (struct hgroup){ h, 0, 0 };
            s->gslot[j] = (uint32_t)++ng;
        }
        uint32_t g = s->gslot[j] - 1;
        s->grp[g].count++;
        s->gid[i] = g;
    }
    /* Sort the groups by hash; gslot (no longer needed as a table) maps a
     * group's old index to its sorted position. */
    for (size_t g = 0; g < ng; g++)
        s->grp[g].pos = g;
    qsort(s->grp, ng, sizeof(*s->grp), hgroup_cmp);
    size_t at = 0;
    for (size_t g = 0; g < ng; g++) {
        s->gslot[s->grp[g].pos] = (uint32_t)g;
        s->grp[g].pos = at;
        at += s->grp[g].count;
    }
    for (size_t i = 0; i < n; i++)
        s->grouped[s->grp[s->gslot[s->gid[i]]].pos++] = rows[i];
    return 0;
}

/* Write tail `t` of `lg` as posting rows, each index with its `indexed`
 * mark in the same batch and family, without WAL (the rows are derived
 * from the records, which are already in the log: docs/storage.md), then
 * empty `t`. Entries an index already holds (seq <= its mark, after a
 * crash between the two writes) are left out of it. Called by the
 * flusher for the frozen tail (`background`), or by the holder of the
 * writer role when no flush is pending. */
static int tail_write(storage *s, slog *lg, itail *t, int background, mb_error *err)
{
    size_t n = t->n;
    if (n == 0 || lg->tail_incomplete)
        return 0;
    uint64_t last = t->subj[n - 1].seq;
    int rc = 0;
    char *e = NULL;
    if (!s->durable) {
        /* FAST mode: the rows must not reach the disk before the records
         * they index, so sync the WAL (which holds them) first. One fsync
         * per flush, off the appending thread. */
        rocksdb_flush_wal(s->db, 1, &e);
        if (e != NULL)
            return rdb_fail(err, &e, "index %s: sync the log before the index rows", lg->name);
    }
    const int cfs[IDX_COUNT] = { lg->cf_subject, lg->cf_type };
    uint64_t marks[IDX_COUNT];
    pthread_rwlock_rdlock(&s->tail_lock);
    marks[IDX_SUBJECT] = lg->indexed[IDX_SUBJECT];
    marks[IDX_TYPE] = lg->indexed[IDX_TYPE];
    pthread_rwlock_unlock(&s->tail_lock);
    for (int k = 0; k < IDX_COUNT && rc == 0; k++) {
        const irow *src = k == IDX_SUBJECT ? t->subj : t->type;
        size_t from = 0;
        while (from < n && src[from].seq <= marks[k])
            from++;
        if (from == n)
            continue;
        rocksdb_writebatch_t *b = s->ibatch;
        rocksdb_writebatch_clear(b);
        if (group_by_hash(s, src + from, n - from) != 0 ||
            put_postings(b, s->cf[cfs[k]], s->grouped, n - from,
                         k == IDX_SUBJECT ? t->recs : NULL) != 0) {
            rc = mb_errorf(err, MB_ENOMEM, "index %s: out of memory", lg->name);
            break;
        }
        put_u64_value(b, s->cf[cfs[k]], INDEXED_KEY, last);
        rocksdb_write(s->db, s->wo_index, b, &e);
        rocksdb_writebatch_clear(b);
        if (e != NULL)
            rc = rdb_fail(err, &e, "index %s: write posting rows", lg->name);
        if (rc == 0 && k == IDX_SUBJECT && background && s->flush_hook != NULL)
            s->flush_hook(s, s->flush_hook_arg);
    }
    if (rc == 0) {
        pthread_rwlock_wrlock(&s->tail_lock);
        for (int k = 0; k < IDX_COUNT; k++)
            if (lg->indexed[k] < last)
                lg->indexed[k] = last;
        t->n = 0;
        t->recs_len = 0;
        pthread_rwlock_unlock(&s->tail_lock);
        pthread_mutex_lock(&s->mu);
        lg->index_dirty = 1;
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

/* The calling thread at nice 19 and in the idle I/O class (both are per
 * thread on Linux). Failures are ignored: the work is done either way. */
static void lower_this_thread(void)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    (void)setpriority(PRIO_PROCESS, (id_t)tid, 19);
    (void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0));
}

/* STORAGE_BG_LOW for RocksDB's two thread pools (flushes, compactions):
 * each pool thread lowers itself before its next job. Process-wide and
 * one-way (storage.h). */
static void lower_rocksdb_threads(void)
{
    rocksdb_env_t *env = rocksdb_create_default_env(); /* a handle on the shared env */
    if (env == NULL)
        return;
    rocksdb_env_lower_thread_pool_cpu_priority(env);
    rocksdb_env_lower_high_priority_thread_pool_cpu_priority(env);
    rocksdb_env_lower_thread_pool_io_priority(env);
    rocksdb_env_lower_high_priority_thread_pool_io_priority(env);
    rocksdb_env_destroy(env); /* the handle only; the env is RocksDB's */
}

/* The flusher thread: writes every frozen tail as posting rows. */
static void *flusher_main(void *arg)
{
    storage *s = arg;
    pthread_setname_np(pthread_self(), "mb-index-flush");
    if (s->bg_low)
        lower_this_thread();
    pthread_mutex_lock(&s->mu);
    for (;;) {
        slog *lg = NULL;
        for (int i = 0; i < LOG_COUNT; i++)
            if (s->logs[i].flush_pending && !s->logs[i].flush_failed)
                lg = &s->logs[i];
        if (lg == NULL) {
            if (s->flusher_stop)
                break;
            pthread_cond_wait(&s->flush_cond, &s->mu);
            continue;
        }
        itail *t = &lg->tails[!lg->active]; /* `active` is stable while pending */
        pthread_mutex_unlock(&s->mu);
        int rc = tail_write(s, lg, t, 1, NULL);
        pthread_mutex_lock(&s->mu);
        if (rc == 0)
            lg->flush_pending = 0;
        else
            lg->flush_failed = 1; /* kept frozen; retried at the next group write */
        pthread_cond_broadcast(&s->flush_cond);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The size at which the writer freezes the next tail: drawn uniformly from
 * [1/2, 3/2) of tail_flush_events for every freeze. Nodes that apply the
 * same events would otherwise all flush their index rows (tens of MiB of
 * covering rows, then RocksDB's flush of them) at the same moment, and a
 * raft commit needs two of the three disks. Writer only. */
static size_t next_freeze_at(storage *s)
{
    size_t base = s->tail_flush_events;
    if (s->tail_exact || base < 2)
        return base;
    return base / 2 + (size_t)tail_draw(s, base);
}

/* After a group write (writer only): when the active tail is big enough,
 * freeze it and wake the flusher; if the frozen one is still being
 * written and the active one has grown to twice the size, wait for the
 * flusher first (back-pressure). */
static void tail_maybe_freeze(storage *s, slog *lg)
{
    const itail *a = &lg->tails[lg->active];
    if (lg->freeze_at == 0)
        lg->freeze_at = next_freeze_at(s);
    size_t events = lg->freeze_at;
    if (a->n < events && a->recs_len < TAIL_FLUSH_BYTES)
        return;
    pthread_mutex_lock(&s->mu);
    if (lg->flush_failed) {
        lg->flush_failed = 0; /* retry it */
        pthread_cond_broadcast(&s->flush_cond);
    }
    while (lg->flush_pending && !lg->flush_failed &&
           (a->n >= 2 * events || a->recs_len >= 2 * (size_t)TAIL_FLUSH_BYTES))
        pthread_cond_wait(&s->flush_cond, &s->mu);
    if (!lg->flush_pending && !lg->tail_incomplete) {
        pthread_rwlock_wrlock(&s->tail_lock);
        lg->active = !lg->active;
        pthread_rwlock_unlock(&s->tail_lock);
        lg->flush_pending = 1;
        lg->freeze_at = 0; /* the next tail draws its own size */
        pthread_cond_broadcast(&s->flush_cond);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Holder of the writer role only: wait until no flush of `lg` is pending,
 * then make sure every posting row written without WAL is on disk
 * (RocksDB flush of the index families), so that a write WITH WAL that
 * rewrites rows (a prune) can never be replayed after a crash on top of
 * rows that were lost. */
static int index_quiesce(storage *s, slog *lg, mb_error *err)
{
    pthread_mutex_lock(&s->mu);
    while (lg->flush_pending && !lg->flush_failed)
        pthread_cond_wait(&s->flush_cond, &s->mu);
    int failed = lg->flush_pending;
    pthread_mutex_unlock(&s->mu);
    if (failed)
        return mb_errorf(err, MB_EIO, "%s: writing the index rows failed; retry later", lg->name);
    return index_persist(s, err);
}
static void trun_key(uint8_t k[KEY_IDX_SIZE], int64_t time_ms, uint64_t seq)
{
    rec_put_be64(k, rec_time_to_key(time_ms));
    rec_put_be64(k + 8, seq);
}

/* Write the run being built (if any) into the batch. */
static void trun_put(storage *s, rocksdb_writebatch_t *b, const slog *lg, tbuild *t)
{
    if (t->n == 0)
        return;
    uint8_t k[KEY_IDX_SIZE];
    trun_key(k, t->last_time, t->last_seq);
    rec_trun_header(t->buf, t->n);
    rocksdb_writebatch_put_cf(b, s->cf[lg->cf_time], (const char *)k, sizeof(k),
                              (const char *)t->buf, TRUN_HEADER + t->n * TRUN_ENTRY_SIZE);
    t->n = 0;
}

/* Add an event to the time run being built, closing the run first when the
 * event would break its order, window or size. */
static void trun_add(storage *s, rocksdb_writebatch_t *b, const slog *lg, tbuild *t, uint64_t seq,
                     int64_t time_ms)
{
    if (t->n > 0 && (time_ms < t->last_time || t->n == TRUN_MAX_EVENTS ||
                     (uint64_t)time_ms - (uint64_t)t->first_time > (uint64_t)TRUN_WINDOW_MS))
        trun_put(s, b, lg, t);
    if (t->n == 0)
        t->first_time = time_ms;
    rec_trun_entry(t->buf + TRUN_HEADER + t->n * TRUN_ENTRY_SIZE, seq, time_ms);
    t->n++;
    t->last_time = time_ms;
    t->last_seq = seq;
}

/* Rewrite the run row the iterator is on (checked, n entries) without the
 * entries for which drop(seq, time) holds: delete it, and put the kept
 * entries, if any, under the key of the last kept one. Returns the number
 * of entries dropped. */
typedef int (*trun_drop_fn)(uint64_t seq, int64_t time_ms, const void *arg);
static size_t trun_rewrite(storage *s, rocksdb_writebatch_t *b, const slog *lg, const uint8_t *k,
                           const uint8_t *v, size_t n, trun_drop_fn drop, const void *arg)
{
    tbuild t;
    t.n = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = rec_trun_seq(v, i);
        int64_t tm = rec_trun_time(v, i);
        if (drop(seq, tm, arg))
            continue;
        rec_trun_entry(t.buf + TRUN_HEADER + t.n * TRUN_ENTRY_SIZE, seq, tm);
        t.n++;
        t.last_time = tm;
        t.last_seq = seq;
    }
    if (t.n == n)
        return 0;
    rocksdb_writebatch_delete_cf(b, s->cf[lg->cf_time], (const char *)k, KEY_IDX_SIZE);
    trun_put(s, b, lg, &t);
    return n - t.n;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Take the entries (h, seq) of deleted events out of the posting rows of
 * family `cf`: rows left empty are deleted, others rewritten (under a new
 * key when their last entry went). Entries that are still in the tail have
 * no row and are skipped here. */
static int prune_postings(storage *s, rocksdb_writebatch_t *b, int cf, irow *pairs, size_t n,
                          mb_error *err)
{
    if (n == 0)
        return 0;
    qsort(pairs, n, sizeof(*pairs), irow_cmp);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        uint64_t h = pairs[i].h;
        uint8_t k[KEY_IDX_SIZE];
        rec_put_be64(k, h);
        rec_put_be64(k + 8, pairs[i].seq);
        rocksdb_iter_seek(it, (const char *)k, sizeof(k));
        size_t kl = 0, vl = 0, cnt = 0;
        const uint8_t *rk =
            rocksdb_iter_valid(it) ? (const uint8_t *)rocksdb_iter_key(it, &kl) : NULL;
        if (rk == NULL || kl != KEY_IDX_SIZE || rec_get_be64(rk) != h) {
            while (i < n && pairs[i].h == h) /* no row: these are in the tail */
                i++;
            continue;
        }
        uint64_t key_seq = rec_get_be64(rk + 8);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        size_t j = i;
        while (j < n && pairs[j].h == h && pairs[j].seq <= key_seq)
            j++;
        if (rec_postings_check(v, vl, key_seq, &cnt, NULL) != 0) {
            rocksdb_writebatch_delete_cf(b, s->cf[cf], (const char *)rk, kl); /* damaged */
            i = j;
            continue;
        }
        rec_posting *keep = malloc(cnt * sizeof(*keep));
        const uint8_t **rp = malloc(cnt * sizeof(*rp));
        size_t *rl = malloc(cnt * sizeof(*rl));
        uint8_t *nv = malloc(vl > rec_postings_size(cnt) ? vl : rec_postings_size(cnt));
        if (keep == NULL || nv == NULL || rp == NULL || rl == NULL) {
            free(keep);
            free(rp);
            free(rl);
            free(nv);
            rc = mb_errorf(err, MB_ENOMEM, "prune: out of memory");
            break;
        }
        size_t nk = 0, d = i, bytes = 0;
        for (size_t e = 0; e < cnt; e++) {
            rec_posting p = rec_posting_at(v, e);
            while (d < j && pairs[d].seq < p.seq)
                d++;
            if (d < j && pairs[d].seq == p.seq)
                continue;
            rec_posting_record(v, e, &rp[nk], &rl[nk]);
            bytes += rl[nk];
            keep[nk++] = p;
        }
        if (nk != cnt) {
            rocksdb_writebatch_delete_cf(b, s->cf[cf], (const char *)rk, kl);
            if (nk > 0) {
                int covering = v[0] == POST_VERSION_REC;
                size_t nvl = covering ? rec_postings_rec_size(nk, bytes) : rec_postings_size(nk);
                rec_put_be64(k + 8, keep[nk - 1].seq);
                if (covering)
                    rec_postings_rec_encode(keep, rp, rl, nk, nv);
                else
                    rec_postings_encode(keep, nk, nv);
                rocksdb_writebatch_put_cf(b, s->cf[cf], (const char *)k, sizeof(k),
                                          (const char *)nv, nvl);
            }
        }
        free(keep);
        free(rp);
        free(rl);
        free(nv);
        i = j;
    }
    if (rc == 0) {
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "prune: read index rows");
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

/* Drop the tail entries of deleted events (`seqs` sorted). */
static void tail_remove(storage *s, slog *lg, const uint64_t *seqs, size_t n)
{
    if (n == 0)
        return;
    pthread_rwlock_wrlock(&s->tail_lock);
    for (int b = 0; b < 2; b++) {
        itail *t = &lg->tails[b];
        size_t w = 0;
        for (size_t i = 0; i < t->n; i++) {
            uint64_t seq = t->subj[i].seq;
            if (bsearch(&seq, seqs, n, sizeof(*seqs), u64_cmp) != NULL)
                continue;
            t->subj[w] = t->subj[i];
            t->type[w] = t->type[i];
            w++;
        }
        t->n = w;
    }
    pthread_rwlock_unlock(&s->tail_lock);
}

/* Put the record row being built into the batch and start a new one. */
static void chunk_put(rocksdb_writebatch_t *b, rocksdb_column_family_handle_t *cf, cbuild *c)
{
    if (c->n == 0)
        return;
    rec_chunk_header(c->header, c->n);
    c->parts[0] = (const char *)c->header;
    c->sizes[0] = CHUNK_HEADER_SIZE;
    c->parts[c->n + 1] = (const char *)c->table;
    c->sizes[c->n + 1] = c->n * CHUNK_ENTRY_SIZE;
    uint8_t k[KEY_SEQ_SIZE];
    rec_put_be64(k, c->first);
    const char *kp = (const char *)k;
    size_t ks = sizeof(k);
    rocksdb_writebatch_putv_cf(b, cf, 1, &kp, &ks, (int)c->n + 2, c->parts, c->sizes);
    c->n = 0;
}

/* Add a sealed record (borrowed until chunk_put) to the row being built. */
static void chunk_add(rocksdb_writebatch_t *b, rocksdb_column_family_handle_t *cf, cbuild *c,
                      uint64_t seq, const uint8_t *rec, size_t len)
{
    if (c->n == CHUNK_MAX_EVENTS || (c->n > 0 && c->bytes + len > CHUNK_MAX_BYTES))
        chunk_put(b, cf, c);
    if (c->n == 0) {
        c->first = seq;
        c->bytes = CHUNK_HEADER_SIZE;
    }
    c->parts[c->n + 1] = (const char *)rec;
    c->sizes[c->n + 1] = len;
    c->bytes += len;
    rec_chunk_entry(c->table + c->n * CHUNK_ENTRY_SIZE, seq, c->bytes);
    c->n++;
}

/* Build one WriteBatch from a group of append requests (events, time index
 * rows, counters, meta) and write it; then add the subject/type entries to
 * the index tail. */
static int write_group(storage *s, wreq *group, uint64_t *t_last, uint64_t *t_count, mb_error *err)
{
    size_t total = 0;
    for (wreq *r = group; r != NULL; r = r->next)
        total += r->n;
    irow *rows = total > 0 ? malloc(2 * LOG_COUNT * total * sizeof(*rows)) : NULL;
    const uint8_t **recp = total > 0 ? malloc(LOG_COUNT * total * sizeof(*recp)) : NULL;
    if (total > 0 && (rows == NULL || recp == NULL)) {
        free(rows);
        free(recp);
        return mb_errorf(err, MB_ENOMEM, "append: out of memory for %zu events", total);
    }
    /* rows of log li: subject at [2*li*total], type at [(2*li+1)*total] */
    size_t nrows[LOG_COUNT] = { 0 };
    rocksdb_writebatch_t *b = s->batch;
    rocksdb_writebatch_clear(b);
    for (int li = 0; li < LOG_COUNT; li++) {
        s->build[li].n = 0;
        s->tbuild[li].n = 0;
    }
    int touched[LOG_COUNT] = { 0 };
    int rc = 0;
    for (wreq *r = group; r != NULL; r = r->next) {
        int li = (int)(r->log - s->logs);
        for (size_t i = 0; i < r->n; i++) {
            storage_event *ev = &r->evs[i];
            uint64_t seq = ev->seq;
            if (seq == 0) {
                if (t_last[li] == UINT64_MAX) {
                    rc = mb_errorf(err, MB_ERANGE, "append to %s: sequence space exhausted",
                                   r->log->name);
                    goto out;
                }
                seq = t_last[li] + 1;
                ev->seq = seq;
            } else if (seq <= t_last[li]) {
                continue; /* already in the log, or pruned: replay */
            }
            uint8_t *rec = r->recs + r->ev[i].off;
            rec_seal(rec, r->ev[i].crc, seq);
            chunk_add(b, s->cf[r->log->cf_rec], &s->build[li], seq, rec, r->ev[i].len);
            trun_add(s, b, r->log, &s->tbuild[li], seq, ev->time_ms);
            irow *subj = &rows[2 * li * total + nrows[li]];
            irow *type = &rows[(2 * li + 1) * total + nrows[li]];
            *subj = (irow){ r->ev[i].hsubject, seq, r->ev[i].htype, ev->time_ms, 0, r->ev[i].len };
            *type = (irow){ r->ev[i].htype, seq, r->ev[i].hsubject, ev->time_ms, 0, 0 };
            recp[li * total + nrows[li]] = rec;
            nrows[li]++;
            t_last[li] = seq;
            t_count[li]++;
            touched[li] = 1;
        }
        if (r->meta_key != NULL) {
            size_t klen = strlen(r->meta_key);
            uint8_t *v = malloc(r->meta_len + 1);
            if (v == NULL) {
                rc = mb_errorf(err, MB_ENOMEM, "append: out of memory");
                goto out;
            }
            v[0] = VALUE_VERSION;
            if (r->meta_len > 0)
                memcpy(v + 1, r->meta_val, r->meta_len);
            rocksdb_writebatch_put_cf(b, s->cf[CF_META], r->meta_key, klen, (const char *)v,
                                      r->meta_len + 1);
            free(v);
        }
    }
    for (int li = 0; li < LOG_COUNT; li++) {
        if (!touched[li])
            continue;
        const slog *lg = &s->logs[li];
        chunk_put(b, s->cf[lg->cf_rec], &s->build[li]);
        trun_put(s, b, lg, &s->tbuild[li]);
        put_log_counters(s, b, lg, t_last[li], t_count[li], 0, 0);
    }
    if (rocksdb_writebatch_count(b) > 0) {
        char *e = NULL;
        rocksdb_write(s->db, s->wo, b, &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "append to event store at %s", s->path);
        __atomic_add_fetch(&s->append_writes, 1, __ATOMIC_RELAXED);
    }
    /* The events are in; their index entries join the tail, which the
     * flusher thread writes as posting rows when big enough (a failed
     * flush is retried later: the tail keeps the entries). */
    for (int li = 0; rc == 0 && li < LOG_COUNT; li++) {
        if (nrows[li] == 0)
            continue;
        slog *lg = &s->logs[li];
        tail_append(s, lg, &rows[2 * li * total], &rows[(2 * li + 1) * total], &recp[li * total],
                    nrows[li]);
        tail_maybe_freeze(s, lg);
    }
out:
    rocksdb_writebatch_clear(b);
    free(rows);
    free(recp);
    return rc;
}

static int do_append(storage *s, slog *lg, storage_event *evs, size_t n, const char *meta_key,
                     const void *meta_val, size_t meta_len, mb_error *err)
{
    if (s == NULL)
        return mb_errorf(err, MB_EINVAL, "append: NULL store");
    if (n == 0 && meta_key == NULL)
        return mb_errorf(err, MB_EINVAL, "append: no events");
    if (n > 0) {
        int rc = validate_events(evs, n, err);
        if (rc != 0)
            return rc;
    }
    if (meta_key != NULL && !valid_key(meta_key))
        return mb_errorf(err, MB_EINVAL, "append: meta key empty or over %d bytes",
                         STORAGE_KEY_MAX);
    if (meta_key != NULL && meta_val == NULL && meta_len > 0)
        return mb_errorf(err, MB_EINVAL, "append: NULL meta value of %zu bytes", meta_len);

    wreq r = { 0 };
    r.log = lg;
    r.evs = evs;
    r.n = n;
    r.meta_key = meta_key;
    r.meta_val = meta_val;
    r.meta_len = meta_len;
    if (n > 0) {
        r.ev = malloc(n * sizeof(*r.ev));
        size_t total = 0;
        if (r.ev != NULL) {
            for (size_t i = 0; i < n; i++) {
                r.ev[i].off = total;
                r.ev[i].len = rec_encoded_size(&evs[i]);
                total += r.ev[i].len;
            }
            r.recs = malloc(total);
        }
        if (r.ev == NULL || r.recs == NULL) {
            free(r.ev);
            free(r.recs);
            return mb_errorf(err, MB_ENOMEM, "append: out of memory for %zu events", n);
        }
        for (size_t i = 0; i < n; i++) {
            r.ev[i].crc = rec_prepare(&evs[i], r.recs + r.ev[i].off);
            r.ev[i].hsubject = rec_hash(evs[i].subject);
            r.ev[i].htype = rec_hash(evs[i].type);
        }
        r.bytes = total;
    }

    wreq *group;
    uint64_t t_last[LOG_COUNT], t_count[LOG_COUNT], t_floor[LOG_COUNT];
    int rc;
    if (writer_enter(s, &r, &group, t_last, t_count, t_floor) == 0) {
        mb_error gerr;
        mb_error_clear(&gerr);
        rc = write_group(s, group, t_last, t_count, &gerr);
        writer_leave(s, group, rc, &gerr, t_last, t_count, t_floor);
    }
    rc = r.rc;
    if (rc != 0 && err != NULL)
        *err = r.err;
    free(r.ev);
    free(r.recs);
    return rc;
}

int storage_append(storage *s, storage_event *evs, size_t n, mb_error *err)
{
    return do_append(s, s ? &s->logs[LOG_EVENTS] : NULL, evs, n, NULL, NULL, 0, err);
}

int storage_append_meta(storage *s, storage_event *evs, size_t n, const char *meta_key,
                        const void *meta_val, size_t meta_len, mb_error *err)
{
    if (meta_key == NULL)
        return mb_errorf(err, MB_EINVAL, "append: NULL meta key");
    return do_append(s, s ? &s->logs[LOG_EVENTS] : NULL, evs, n, meta_key, meta_val, meta_len, err);
}

int storage_local_append(storage *s, storage_event *evs, size_t n, mb_error *err)
{
    return do_append(s, s ? &s->logs[LOG_LOCAL] : NULL, evs, n, NULL, NULL, 0, err);
}

static uint64_t log_last_seq(storage *s, int li)
{
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->logs[li].last_seq;
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t storage_last_seq(storage *s)
{
    return log_last_seq(s, LOG_EVENTS);
}

uint64_t storage_local_last_seq(storage *s)
{
    return log_last_seq(s, LOG_LOCAL);
}

/* ----------------------------------------------------------------- query */

enum { MODE_SEQ, MODE_SUBJECT, MODE_TYPE, MODE_TIME };

typedef struct qrun {
    storage *s;
    slog *lg;
    const struct storage_query *q;
    storage_event_cb cb;
    void *arg;
    int mode;
    uint64_t hsubject, htype;
    uint64_t seq_lo, seq_hi;
    int64_t t_lo, t_hi;
    size_t limit, delivered;
    int stopping;               /* limit reached or callback said stop: look for the cursor */
    uint64_t cursor;            /* next_cursor result */
    rocksdb_readoptions_t *ro;  /* point reads, on the query's snapshot */
    rcur cur;                   /* record rows, on the query's snapshot */
    uint64_t cand[QUERY_BATCH]; /* index candidates waiting for their records */
    size_t ncand;
} qrun;

/* Check a decoded (or about to be decoded) record against the filters and
 * deliver it. Returns 0 to go on, 1 when the query is finished, or an error. */
static int q_offer(qrun *r, uint64_t seq, const uint8_t *rec, size_t len, mb_error *err)
{
    storage_event ev;
    int rc = rec_decode(rec, len, seq, &ev, err);
    if (rc != 0)
        return rc;
    const struct storage_query *q = r->q;
    if (seq < r->seq_lo || seq > r->seq_hi || ev.time_ms < r->t_lo || ev.time_ms > r->t_hi)
        return 0;
    if (q->subject != NULL && strcmp(q->subject, ev.subject) != 0)
        return 0; /* hash collision */
    if (q->type != NULL && strcmp(q->type, ev.type) != 0)
        return 0;
    if (r->stopping) {
        r->cursor = seq;
        return 1;
    }
    r->delivered++;
    if (r->cb(&ev, r->arg) != 0 || r->delivered >= r->limit)
        r->stopping = 1;
    return 0;
}

/* Fetch the records of `n` candidate seqs (in delivery order) and offer
 * them; a candidate whose record is gone (pruned meanwhile) is skipped.
 * Consecutive candidates often share a record row, which the cursor keeps. */
static int q_fetch(qrun *r, const uint64_t *seqs, size_t n, mb_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const uint8_t *rec;
        size_t len;
        rc = rcur_find(&r->cur, seqs[i], &rec, &len, err);
        if (rc == 0 && rec != NULL)
            rc = q_offer(r, seqs[i], rec, len, err);
    }
    return rc;
}

/* Queue one index candidate; fetch the queue when full, or as soon as it
 * holds what the page still needs (so a short page does not read ahead).
 * Returns 0 to go on, 1 when the query is finished, or an error. */
static int q_push(qrun *r, uint64_t seq, mb_error *err)
{
    r->cand[r->ncand++] = seq;
    size_t want = r->stopping ? 1 : r->limit - r->delivered + 1;
    if (r->ncand < QUERY_BATCH && r->ncand < want)
        return 0;
    int rc = q_fetch(r, r->cand, r->ncand, err);
    r->ncand = 0;
    return rc;
}

static int q_drain(qrun *r, mb_error *err)
{
    if (r->ncand == 0)
        return 0;
    int rc = q_fetch(r, r->cand, r->ncand, err);
    r->ncand = 0;
    return rc;
}

/* Does an index entry pass the filters that the index itself can check? */
static int q_entry_matches(const qrun *r, uint64_t seq, int64_t time_ms, uint64_t other)
{
    if (seq < r->seq_lo || seq > r->seq_hi || time_ms < r->t_lo || time_ms > r->t_hi)
        return 0;
    if (r->mode == MODE_SUBJECT && r->q->type != NULL && other != r->htype)
        return 0;
    return 1;
}

/* Candidates from the posting rows of hash `h` with seqs in
 * [r->seq_lo, top], in the query's direction. */
static int q_postings(qrun *r, int cf, uint64_t h, uint64_t top, const rocksdb_snapshot_t *snap,
                      mb_error *err)
{
    if (top < r->seq_lo)
        return 0;
    uint8_t lo[KEY_IDX_SIZE], hi[KEY_IDX_SIZE + 1], start[KEY_IDX_SIZE];
    rec_put_be64(lo, h);
    rec_put_be64(lo + 8, r->seq_lo); /* rows ending below seq_lo hold nothing for us */
    rec_put_be64(hi, h);
    rec_put_be64(hi + 8, UINT64_MAX);
    hi[KEY_IDX_SIZE] = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
    rocksdb_readoptions_set_prefix_same_as_start(ro, 1);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->s->db, ro, r->s->cf[cf]);
    int desc = r->q->newest_first;
    if (desc) {
        /* The row holding `top` is the first one ending at or above it. */
        memcpy(start, lo, 8);
        rec_put_be64(start + 8, top);
        rocksdb_iter_seek(it, (const char *)start, sizeof(start));
        if (!rocksdb_iter_valid(it))
            rocksdb_iter_seek_for_prev(it, (const char *)hi, KEY_IDX_SIZE);
    } else {
        rocksdb_iter_seek(it, (const char *)lo, sizeof(lo));
    }
    int rc = 0, past = 0;
    while (rc == 0 && !past && rocksdb_iter_valid(it)) {
        size_t kl, vl, n;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (kl != KEY_IDX_SIZE || rec_get_be64(k) != h) {
            rc = mb_errorf(err, MB_ECORRUPT, "query %s: foreign key of %zu bytes in %s",
                           r->lg->name, kl, cf_names[cf]);
            break;
        }
        if ((rc = rec_postings_check(v, vl, rec_get_be64(k + 8), &n, err)) != 0) {
            mb_errorf(err, MB_ECORRUPT, "query %s: damaged row in %s: %s", r->lg->name,
                      cf_names[cf], err != NULL ? err->msg : "");
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            rec_posting e = rec_posting_at(v, desc ? n - 1 - i : i);
            if (desc ? e.seq < r->seq_lo : e.seq > top) {
                past = 1;
                break;
            }
            if (e.seq > top || !q_entry_matches(r, e.seq, e.time_ms, e.other))
                continue;
            const uint8_t *rec;
            size_t rlen;
            rec_posting_record(v, desc ? n - 1 - i : i, &rec, &rlen);
            if (rec == NULL) {
                rc = q_push(r, e.seq, err); /* fetch it from the record rows */
            } else if ((rc = q_drain(r, err)) == 0) {
                /* A covering row: the record is here, no point read. A
                 * copy pruned meanwhile cannot be here: rows are read on
                 * the query's snapshot, and prune rewrites them. */
                rc = q_offer(r, e.seq, rec, rlen, err);
            }
        }
        if (desc)
            rocksdb_iter_prev(it);
        else
            rocksdb_iter_next(it);
    }
    if (rc == 0) {
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "query %s", r->lg->name);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

/* Candidates from the copy of the index tail (ascending seqs). */
static int q_tail(qrun *r, const irow *t, size_t n, mb_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = q_push(r, t[r->q->newest_first ? n - 1 - i : i].seq, err);
    return rc;
}

/* Scan the record rows for seqs in [seq_lo, seq_hi] (MODE_SEQ). */
static int q_scan_seq(qrun *r, mb_error *err)
{
    rcur *cur = &r->cur;
    int desc = r->q->newest_first;
    uint8_t k[KEY_SEQ_SIZE];
    rec_put_be64(k, desc ? r->seq_hi : r->seq_lo);
    /* The row holding the first wanted seq starts at or below it. */
    rocksdb_iter_seek_for_prev(cur->it, (const char *)k, sizeof(k));
    if (!desc && !rocksdb_iter_valid(cur->it))
        rocksdb_iter_seek(cur->it, (const char *)k, sizeof(k));
    int rc = 0, past = 0;
    while (rc == 0 && !past && rocksdb_iter_valid(cur->it)) {
        if ((rc = rcur_load(cur, err)) != 0)
            break;
        size_t n = cur->c.n;
        for (size_t j = 0; j < n && rc == 0; j++) {
            size_t i = desc ? n - 1 - j : j;
            uint64_t seq = rec_chunk_seq(&cur->c, i);
            if (desc ? seq > r->seq_hi : seq < r->seq_lo)
                continue;
            if (desc ? seq < r->seq_lo : seq > r->seq_hi) {
                past = 1;
                break;
            }
            const uint8_t *rec;
            size_t len;
            rec_chunk_record(&cur->c, i, &rec, &len);
            rc = q_offer(r, seq, rec, len, err);
        }
        cur->have = 0;
        if (desc)
            rocksdb_iter_prev(cur->it);
        else
            rocksdb_iter_next(cur->it);
    }
    if (rc == 0)
        rc = rcur_error(cur, err);
    return rc;
}

/* A (time, seq) entry of the time index. */
typedef struct tent {
    int64_t time;
    uint64_t seq;
} tent;

/* a before b in delivery order (descending: reversed). */
static int tent_before(tent a, tent b, int desc)
{
    int lt = a.time < b.time || (a.time == b.time && a.seq < b.seq);
    int gt = a.time > b.time || (a.time == b.time && a.seq > b.seq);
    return desc ? gt : lt;
}

/* Binary heap of pending time entries, first in delivery order on top. */
typedef struct theap {
    tent *v;
    size_t n, cap;
    int desc;
} theap;

static int theap_push(theap *h, tent e)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        tent *v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return MB_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && tent_before(e, h->v[(i - 1) / 2], h->desc)) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = e;
    return 0;
}

static tent theap_pop(theap *h)
{
    tent top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && tent_before(h->v[c + 1], h->v[c], h->desc))
            c++;
        if (!tent_before(h->v[c], last, h->desc))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* Scan the time index (MODE_TIME): runs in key order, their entries merged
 * through a heap. Ascending, an entry is delivered once a run key's time
 * is more than TRUN_WINDOW_MS past its time (no later run can hold an
 * earlier entry); descending, once a run key is below it (every entry of a
 * run is <= its key). */
static int q_scan(qrun *r, int64_t cursor_time, const rocksdb_snapshot_t *snap, mb_error *err)
{
    const struct storage_query *q = r->q;
    slog *lg = r->lg;
    int desc = q->newest_first;
    tent lo = { r->t_lo, 0 }, hi = { r->t_hi, UINT64_MAX };
    if (q->cursor != 0 && !desc)
        lo = (tent){ cursor_time, q->cursor };
    else if (q->cursor != 0)
        hi = (tent){ cursor_time, q->cursor };
    if (tent_before(hi, lo, 0))
        return 0;
    uint8_t k0[KEY_IDX_SIZE];
    if (desc) {
        /* Runs holding entries <= hi have keys up to hi.time + window. */
        int64_t top = hi.time > INT64_MAX - TRUN_WINDOW_MS ? INT64_MAX : hi.time + TRUN_WINDOW_MS;
        trun_key(k0, top, UINT64_MAX);
    } else {
        trun_key(k0, lo.time, lo.seq);
    }
    rocksdb_readoptions_t *iro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(iro, snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->s->db, iro, r->s->cf[lg->cf_time]);
    if (desc)
        rocksdb_iter_seek_for_prev(it, (const char *)k0, sizeof(k0));
    else
        rocksdb_iter_seek(it, (const char *)k0, sizeof(k0));
    theap h = { .desc = desc };
    int rc = 0, end = 0;
    while (rc == 0 && !end && rocksdb_iter_valid(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (kl != KEY_IDX_SIZE) {
            rc = mb_errorf(err, MB_ECORRUPT, "query %s: key of %zu bytes in %s", lg->name, kl,
                           cf_names[lg->cf_time]);
            break;
        }
        tent key = { rec_key_to_time(rec_get_be64(k)), rec_get_be64(k + 8) };
        /* Deliver what no run from here on can precede. */
        if (!desc && key.time > hi.time &&
            (uint64_t)key.time - (uint64_t)hi.time > (uint64_t)TRUN_WINDOW_MS)
            end = 1; /* every entry from here on is past hi */
        if (desc && tent_before(key, lo, 0))
            end = 1; /* every entry from here on is below lo */
        while (rc == 0 && h.n > 0) {
            tent e = h.v[0];
            int ready = desc ? tent_before(e, key, 1)
                             : (e.time < key.time &&
                                (uint64_t)key.time - (uint64_t)e.time > (uint64_t)TRUN_WINDOW_MS);
            if (!ready && !end)
                break;
            theap_pop(&h);
            rc = q_push(r, e.seq, err);
        }
        if (rc != 0 || end)
            break;
        size_t n;
        if ((rc = rec_trun_check(v, vl, key.time, key.seq, &n, err)) != 0)
            break;
        for (size_t i = 0; i < n && rc == 0; i++) {
            tent e = { rec_trun_time(v, i), rec_trun_seq(v, i) };
            if (tent_before(e, lo, 0) || tent_before(hi, e, 0) || e.seq < r->seq_lo ||
                e.seq > r->seq_hi)
                continue;
            if (theap_push(&h, e) != 0)
                rc = mb_errorf(err, MB_ENOMEM, "query %s: out of memory", lg->name);
        }
        if (desc)
            rocksdb_iter_prev(it);
        else
            rocksdb_iter_next(it);
    }
    while (rc == 0 && h.n > 0)
        rc = q_push(r, theap_pop(&h).seq, err);
    if (rc == 0) {
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "query %s", lg->name);
    }
    free(h.v);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(iro);
    return rc;
}

static int run_query(storage *s, slog *lg, const struct storage_query *q, storage_event_cb cb,
                     void *arg, uint64_t *next_cursor, mb_error *err)
{
    if (next_cursor != NULL)
        *next_cursor = 0;
    if (s == NULL || q == NULL || cb == NULL)
        return mb_errorf(err, MB_EINVAL, "query: NULL store, query or callback");
    if (q->subject != NULL && strnlen(q->subject, STORAGE_SUBJECT_MAX + 1) > STORAGE_SUBJECT_MAX)
        return mb_errorf(err, MB_EINVAL, "query: subject longer than %d bytes",
                         STORAGE_SUBJECT_MAX);
    if (q->type != NULL && strnlen(q->type, STORAGE_TYPE_MAX + 1) > STORAGE_TYPE_MAX)
        return mb_errorf(err, MB_EINVAL, "query: type longer than %d bytes", STORAGE_TYPE_MAX);

    qrun r = { .s = s, .lg = lg, .q = q, .cb = cb, .arg = arg };
    r.limit = q->limit == 0 ? QUERY_LIMIT_DEFAULT
                            : (q->limit > QUERY_LIMIT_MAX ? QUERY_LIMIT_MAX : q->limit);
    pthread_mutex_lock(&s->mu);
    uint64_t floor = lg->floor;
    pthread_mutex_unlock(&s->mu);
    r.seq_lo = q->from_seq > floor ? q->from_seq : floor;
    if (r.seq_lo == 0)
        r.seq_lo = 1;
    r.seq_hi = q->to_seq != 0 ? q->to_seq : UINT64_MAX;
    r.t_lo = q->from_time_ms != 0 ? q->from_time_ms : INT64_MIN;
    r.t_hi = q->to_time_ms != 0 ? q->to_time_ms : INT64_MAX;
    uint64_t h = 0;
    if (q->subject != NULL) {
        r.mode = MODE_SUBJECT;
        r.hsubject = h = rec_hash(q->subject);
    } else if (q->type != NULL) {
        r.mode = MODE_TYPE;
    } else if (q->from_time_ms != 0 || q->to_time_ms != 0) {
        r.mode = MODE_TIME;
    } else {
        r.mode = MODE_SEQ;
    }
    if (q->type != NULL) {
        r.htype = rec_hash(q->type);
        if (r.mode == MODE_TYPE)
            h = r.htype;
    }
    if (q->cursor != 0 && r.mode != MODE_TIME) {
        if (q->newest_first) {
            if (q->cursor < r.seq_hi)
                r.seq_hi = q->cursor;
        } else if (q->cursor > r.seq_lo) {
            r.seq_lo = q->cursor;
        }
    }
    int index_mode = r.mode == MODE_SUBJECT || r.mode == MODE_TYPE;

    /* One consistent view: the snapshot, the index tail and the `indexed`
     * mark are taken together (docs/storage.md, "Index tail"). */
    irow *tail = NULL;
    size_t ntail = 0;
    uint64_t indexed = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&s->tail_lock);
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(s->db);
    if (index_mode) {
        int k = r.mode == MODE_SUBJECT ? IDX_SUBJECT : IDX_TYPE;
        indexed = lg->indexed[k];
        if (lg->tail_incomplete)
            rc = mb_errorf(err, MB_ENOMEM,
                           "query %s: index incomplete after running out of "
                           "memory; reopen the store",
                           lg->name);
        /* The frozen buffer (lower seqs), then the active one; entries the
         * index's rows already hold are left out. */
        const itail *bufs[2] = { &lg->tails[!lg->active], &lg->tails[lg->active] };
        size_t n = 0;
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
            if (pass == 1 && n > 0 && (tail = malloc(n * sizeof(*tail))) == NULL)
                rc = mb_errorf(err, MB_ENOMEM, "query %s: out of memory", lg->name);
            for (int b = 0; b < 2 && rc == 0; b++) {
                const irow *src = k == IDX_SUBJECT ? bufs[b]->subj : bufs[b]->type;
                for (size_t i = 0; i < bufs[b]->n; i++) {
                    if (src[i].h != h || src[i].seq <= indexed ||
                        !q_entry_matches(&r, src[i].seq, src[i].time_ms, src[i].other))
                        continue;
                    if (pass == 0)
                        n++;
                    else
                        tail[ntail++] = src[i];
                }
            }
            if (n == 0)
                break;
        }
    }
    pthread_rwlock_unlock(&s->tail_lock);
    r.ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(r.ro, snap);
    rcur_init(&r.cur, s, r.ro, lg->cf_rec, lg->name);
    if (rc != 0)
        goto out;

    /* Time-ordered cursor: resume at the cursor event's (time, seq). */
    int64_t cursor_time = 0;
    if (r.mode == MODE_TIME && q->cursor != 0) {
        const uint8_t *v;
        size_t len = 0;
        if ((rc = rcur_find(&r.cur, q->cursor, &v, &len, err)) != 0)
            goto out;
        if (v == NULL) {
            rc = mb_errorf(err, MB_ENOTFOUND, "query %s: cursor event %llu is no longer in the log",
                           lg->name, (unsigned long long)q->cursor);
            goto out;
        }
        storage_event cev;
        rc = rec_decode(v, len, q->cursor, &cev, err);
        cursor_time = cev.time_ms;
        if (rc != 0)
            goto out;
    }
    if (r.seq_lo > r.seq_hi || r.t_lo > r.t_hi)
        goto out;

    if (r.mode == MODE_SEQ) {
        rc = q_scan_seq(&r, err);
    } else if (!index_mode) {
        rc = q_scan(&r, cursor_time, snap, err);
    } else {
        /* Posting rows hold seqs up to `indexed`, the tail the ones above. */
        int cf = r.mode == MODE_SUBJECT ? lg->cf_subject : lg->cf_type;
        uint64_t top = r.seq_hi < indexed ? r.seq_hi : indexed;
        if (q->newest_first) {
            rc = q_tail(&r, tail, ntail, err);
            if (rc == 0)
                rc = q_postings(&r, cf, h, top, snap, err);
        } else {
            rc = q_postings(&r, cf, h, top, snap, err);
            if (rc == 0)
                rc = q_tail(&r, tail, ntail, err);
        }
    }
    if (rc == 0)
        rc = q_drain(&r, err);
    if (rc == 1)
        rc = 0;
out:
    if (rc == 0 && next_cursor != NULL)
        *next_cursor = r.cursor;
    free(tail);
    rcur_close(&r.cur);
    rocksdb_readoptions_destroy(r.ro);
    rocksdb_release_snapshot(s->db, snap);
    return rc;
}

int storage_query(storage *s, const struct storage_query *q, storage_event_cb cb, void *arg,
                  uint64_t *next_cursor, mb_error *err)
{
    return run_query(s, s ? &s->logs[LOG_EVENTS] : NULL, q, cb, arg, next_cursor, err);
}

int storage_local_query(storage *s, const struct storage_query *q, storage_event_cb cb, void *arg,
                        uint64_t *next_cursor, mb_error *err)
{
    return run_query(s, s ? &s->logs[LOG_LOCAL] : NULL, q, cb, arg, next_cursor, err);
}

int storage_get(storage *s, uint64_t seq, storage_event_cb cb, void *arg, mb_error *err)
{
    if (s == NULL || cb == NULL || seq == 0)
        return mb_errorf(err, MB_EINVAL, "get event: NULL store or callback, or seq 0");
    rcur cur;
    rcur_init(&cur, s, s->ro, CF_EVENTS, "events");
    const uint8_t *v;
    size_t len = 0;
    int rc = rcur_find(&cur, seq, &v, &len, err);
    if (rc == 0 && v == NULL)
        rc =
            mb_errorf(err, MB_ENOTFOUND, "get event %llu: not in the log", (unsigned long long)seq);
    storage_event ev;
    if (rc == 0 && (rc = rec_decode(v, len, seq, &ev, err)) == 0)
        cb(&ev, arg);
    rcur_close(&cur);
    return rc;
}

/* ------------------------------------------------------------- retention */

/* Take the writer role alone (appends queue up behind it). */
static void exclusive_enter(storage *s, wreq *r, uint64_t *t_last, uint64_t *t_count,
                            uint64_t *t_floor)
{
    wreq *group;
    memset(r, 0, sizeof(*r));
    r->exclusive = 1;
    int done = writer_enter(s, r, &group, t_last, t_count, t_floor);
    (void)done; /* an exclusive request is never done by another writer */
}

/* Rewrite the record row the cursor is on without the events listed in
 * dseqs[*i..nd) that it holds (advancing *i past them): their time rows and
 * index entries are collected in ps/pt (*np), the row is deleted, and the
 * kept records, if any, are put under the key of the first kept seq. A
 * damaged record is deleted too (its index entries cannot be known). */
static int prune_row(storage *s, rocksdb_writebatch_t *b, slog *lg, rcur *cur,
                     const uint64_t *dseqs, size_t nd, size_t *i, irow *ps, irow *pt, size_t *np,
                     uint64_t *removed, mb_error *err)
{
    const rec_chunk *c = &cur->c;
    size_t vlen = (size_t)(c->table - c->buf) + c->n * CHUNK_ENTRY_SIZE;
    uint8_t *nv = malloc(vlen);
    uint8_t *table = malloc(c->n * CHUNK_ENTRY_SIZE);
    if (nv == NULL || table == NULL) {
        free(nv);
        free(table);
        return mb_errorf(err, MB_ENOMEM, "prune %s: out of memory", lg->name);
    }
    size_t kept = 0, off = CHUNK_HEADER_SIZE;
    uint64_t first_kept = 0;
    for (size_t e = 0; e < c->n; e++) {
        uint64_t seq = rec_chunk_seq(c, e);
        while (*i < nd && dseqs[*i] < seq)
            (*i)++;
        const uint8_t *rec;
        size_t len;
        rec_chunk_record(c, e, &rec, &len);
        if (*i < nd && dseqs[*i] == seq) {
            storage_event ev;
            if (rec_decode(rec, len, seq, &ev, NULL) == 0) {
                uint64_t hs = rec_hash(ev.subject), ht = rec_hash(ev.type);
                ps[*np] = (irow){ hs, seq, ht, ev.time_ms, 0, 0 };
                pt[*np] = (irow){ ht, seq, hs, ev.time_ms, 0, 0 };
                (*np)++;
            }
            (*removed)++;
            continue;
        }
        if (kept == 0)
            first_kept = seq;
        memcpy(nv + off, rec, len);
        off += len;
        rec_chunk_entry(table + kept * CHUNK_ENTRY_SIZE, seq, off);
        kept++;
    }
    while (*i < nd && dseqs[*i] <= cur->last)
        (*i)++;
    if (kept != c->n) {
        uint8_t k[KEY_SEQ_SIZE];
        rec_put_be64(k, cur->first);
        rocksdb_writebatch_delete_cf(b, s->cf[lg->cf_rec], (const char *)k, sizeof(k));
        if (kept > 0) {
            rec_chunk_header(nv, kept);
            memcpy(nv + off, table, kept * CHUNK_ENTRY_SIZE);
            rec_put_be64(k, first_kept);
            rocksdb_writebatch_put_cf(b, s->cf[lg->cf_rec], (const char *)k, sizeof(k),
                                      (const char *)nv, off + kept * CHUNK_ENTRY_SIZE);
        }
    }
    free(nv);
    free(table);
    return 0;
}

static int drop_before_time(uint64_t seq, int64_t time_ms, const void *arg)
{
    (void)seq;
    return time_ms < *(const int64_t *)arg;
}

typedef struct seqset {
    const uint64_t *v;
    size_t n;
} seqset;

static int drop_in_set(uint64_t seq, int64_t time_ms, const void *arg)
{
    (void)time_ms;
    const seqset *d = arg;
    return bsearch(&seq, d->v, d->n, sizeof(*d->v), u64_cmp) != NULL;
}

static int irow_time_cmp(const void *a, const void *b)
{
    const irow *x = a, *y = b;
    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Take the events dseqs[0..nd) (sorted) out of the time runs: the run of
 * an event of time t lies among the keys [(t, seq), (t + window, max)], so
 * the events, taken in (time, seq) order, are found by one forward pass
 * over those key ranges, each run read once. pairs[0..np) are the deleted
 * events whose time is known (damaged records have none: their entries stay,
 * and queries skip them). Sorts pairs. */
static int prune_time_runs(storage *s, rocksdb_writebatch_t *b, rocksdb_readoptions_t *ro,
                           const slog *lg, irow *pairs, size_t np, const uint64_t *dseqs, size_t nd,
                           mb_error *err)
{
    qsort(pairs, np, sizeof(*pairs), irow_time_cmp);
    seqset set = { dseqs, nd };
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[lg->cf_time]);
    uint8_t done[KEY_IDX_SIZE]; /* runs up to this key were handled */
    int have_done = 0, rc = 0;
    for (size_t i = 0; i < np; i++) {
        uint8_t k0[KEY_IDX_SIZE];
        trun_key(k0, pairs[i].time_ms, pairs[i].seq);
        /* Runs with keys up to `done` were handled: start after them. */
        int after_done = have_done && memcmp(k0, done, KEY_IDX_SIZE) <= 0;
        if (after_done)
            rocksdb_iter_seek(it, (const char *)done, sizeof(done));
        else
            rocksdb_iter_seek(it, (const char *)k0, sizeof(k0));
        for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t dl;
            const char *dk = rocksdb_iter_key(it, &dl);
            if (after_done && dl == KEY_IDX_SIZE && memcmp(dk, done, KEY_IDX_SIZE) == 0)
                continue;
            size_t kl, vl, n;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
            if (kl != KEY_IDX_SIZE)
                continue;
            int64_t kt = rec_key_to_time(rec_get_be64(k));
            if ((uint64_t)kt - (uint64_t)pairs[i].time_ms > (uint64_t)TRUN_WINDOW_MS)
                break;
            memcpy(done, k, KEY_IDX_SIZE);
            have_done = 1;
            if (rec_trun_check(v, vl, kt, rec_get_be64(k + 8), &n, NULL) != 0)
                continue; /* damaged run: left for queries to report */
            trun_rewrite(s, b, lg, k, v, n, drop_in_set, &set);
        }
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e != NULL)
        rc = rdb_fail(err, &e, "prune %s: read time index", lg->name);
    rocksdb_iter_destroy(it);
    return rc;
}

/* Delete one chunk of events below `before` (by seq), or with a time below
 * `before_time` (by_time). Sets *more when the chunk was full. */
static int prune_chunk(storage *s, slog *lg, int by_time, uint64_t before, int64_t before_time,
                       uint64_t *removed, int *more, mb_error *err)
{
    wreq r;
    uint64_t t_last[LOG_COUNT], t_count[LOG_COUNT], t_floor[LOG_COUNT];
    exclusive_enter(s, &r, t_last, t_count, t_floor);
    int li = (int)(lg - s->logs);
    *more = 0;
    int rc = index_quiesce(s, lg, err);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    size_t cap = PRUNE_CHUNK + CHUNK_MAX_EVENTS, nd = 0, npairs = 0;
    irow *ps = malloc(cap * sizeof(*ps));
    irow *pt = malloc(cap * sizeof(*pt));
    uint64_t *dseqs = malloc(cap * sizeof(*dseqs));
    uint64_t n_removed = 0;
    rcur cur;
    rcur_init(&cur, s, ro, lg->cf_rec, lg->name);
    if (rc == 0 && (ps == NULL || pt == NULL || dseqs == NULL))
        rc = mb_errorf(err, MB_ENOMEM, "prune %s: out of memory", lg->name);

    if (rc == 0 && by_time) {
        /* The events to delete: from the time runs, oldest first. A run
         * holds entries down to its key time - window, so the runs to look
         * at have key times below before_time + window. */
        uint8_t lo[KEY_IDX_SIZE] = { 0 };
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[lg->cf_time]);
        for (rocksdb_iter_seek(it, (const char *)lo, sizeof(lo)); rc == 0 && rocksdb_iter_valid(it);
             rocksdb_iter_next(it)) {
            size_t kl, vl, n;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
            if (kl != KEY_IDX_SIZE)
                continue; /* not a key of ours: leave it */
            int64_t kt = rec_key_to_time(rec_get_be64(k));
            if (kt >= before_time && (uint64_t)kt - (uint64_t)before_time >= TRUN_WINDOW_MS)
                break;
            if (rec_trun_check(v, vl, kt, rec_get_be64(k + 8), &n, NULL) != 0) {
                if (kt < before_time) /* damaged run, all below: drop it */
                    rocksdb_writebatch_delete_cf(b, s->cf[lg->cf_time], (const char *)k, kl);
                continue;
            }
            size_t below = 0;
            while (below < n && rec_trun_time(v, below) < before_time)
                below++;
            if (below == 0)
                continue;
            if (nd + below > PRUNE_CHUNK) {
                *more = 1;
                break;
            }
            for (size_t i = 0; i < below; i++)
                dseqs[nd++] = rec_trun_seq(v, i);
            trun_rewrite(s, b, lg, k, v, n, drop_before_time, &before_time);
        }
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "prune %s: read time index", lg->name);
        rocksdb_iter_destroy(it);
        qsort(dseqs, nd, sizeof(*dseqs), u64_cmp);
        for (size_t i = 0; rc == 0 && i < nd;) {
            const uint8_t *rec;
            size_t len;
            if ((rc = rcur_find(&cur, dseqs[i], &rec, &len, err)) != 0) {
                if (rc == MB_ECORRUPT && !cur.have) /* damaged row: drop it */
                    rc = 0;
                if (rc == 0 && rocksdb_iter_valid(cur.it)) {
                    size_t kl;
                    const char *k = rocksdb_iter_key(cur.it, &kl);
                    rocksdb_writebatch_delete_cf(b, s->cf[lg->cf_rec], k, kl);
                }
                i++;
                continue;
            }
            if (rec == NULL) {
                i++; /* no such record */
                continue;
            }
            rc = prune_row(s, b, lg, &cur, dseqs, nd, &i, ps, pt, &npairs, &n_removed, err);
        }
    } else if (rc == 0) {
        /* Whole rows from the floor up, the last one possibly in part. */
        uint8_t lo[KEY_SEQ_SIZE];
        rec_put_be64(lo, t_floor[li] > 0 ? t_floor[li] : 1);
        rocksdb_iter_seek_for_prev(cur.it, (const char *)lo, sizeof(lo));
        if (!rocksdb_iter_valid(cur.it))
            rocksdb_iter_seek(cur.it, (const char *)lo, sizeof(lo));
        while (rc == 0 && rocksdb_iter_valid(cur.it)) {
            size_t kl;
            const char *k = rocksdb_iter_key(cur.it, &kl);
            if (kl == KEY_SEQ_SIZE && rec_get_be64((const uint8_t *)k) >= before)
                break;
            if (nd >= PRUNE_CHUNK) {
                *more = 1;
                break;
            }
            if (rcur_load(&cur, NULL) != 0 || cur.c.n > CHUNK_MAX_EVENTS) {
                /* A damaged row, a foreign key or a row bigger than any
                 * writer makes, below `before`: its events cannot be
                 * known; drop it. */
                rocksdb_writebatch_delete_cf(b, s->cf[lg->cf_rec], k, kl);
                rocksdb_iter_next(cur.it);
                continue;
            }
            size_t from = nd;
            for (size_t e = 0; e < cur.c.n && rec_chunk_seq(&cur.c, e) < before; e++)
                dseqs[nd++] = rec_chunk_seq(&cur.c, e);
            size_t i = from;
            if (nd > from)
                rc = prune_row(s, b, lg, &cur, dseqs, nd, &i, ps, pt, &npairs, &n_removed, err);
            if (rc == 0 && *more == 0 && nd > from)
                t_floor[li] = dseqs[nd - 1] + 1;
            cur.have = 0;
            rocksdb_iter_next(cur.it);
        }
    }
    if (rc == 0)
        rc = rcur_error(&cur, err);
    if (rc == 0 && !by_time && !*more && before > t_floor[li])
        t_floor[li] = before;
    if (rc == 0 && !by_time && nd > 0)
        rc = prune_time_runs(s, b, ro, lg, ps, npairs, dseqs, nd, err);
    if (rc == 0)
        rc = prune_postings(s, b, lg->cf_subject, ps, npairs, err);
    if (rc == 0)
        rc = prune_postings(s, b, lg->cf_type, pt, npairs, err);
    if (rc == 0) {
        t_count[li] = t_count[li] >= n_removed ? t_count[li] - n_removed : 0;
        put_log_counters(s, b, lg, t_last[li], t_count[li], t_floor[li], !by_time);
        char *e = NULL;
        rocksdb_write(s->db, s->wo, b, &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "prune %s", lg->name);
    }
    rcur_close(&cur);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writebatch_destroy(b);
    if (rc == 0) {
        tail_remove(s, lg, dseqs, nd);
        *removed += n_removed;
    }
    free(ps);
    free(pt);
    free(dseqs);
    writer_leave(s, &r, rc, NULL, t_last, t_count, t_floor);
    return rc;
}

static int prune(storage *s, slog *lg, int by_time, uint64_t before, int64_t before_time,
                 uint64_t *removed, mb_error *err)
{
    uint64_t total = 0;
    int more = 1, rc = 0;
    if (removed != NULL)
        *removed = 0;
    if (s == NULL)
        return mb_errorf(err, MB_EINVAL, "prune: NULL store");
    while (more && rc == 0)
        rc = prune_chunk(s, lg, by_time, before, before_time, &total, &more, err);
    if (removed != NULL)
        *removed = total;
    return rc;
}

int storage_prune_before_seq(storage *s, uint64_t before_seq, uint64_t *removed, mb_error *err)
{
    return prune(s, s ? &s->logs[LOG_EVENTS] : NULL, 0, before_seq, 0, removed, err);
}

int storage_prune_before_time(storage *s, int64_t before_time_ms, uint64_t *removed, mb_error *err)
{
    return prune(s, s ? &s->logs[LOG_EVENTS] : NULL, 1, 0, before_time_ms, removed, err);
}

int storage_local_prune_before_seq(storage *s, uint64_t before_seq, uint64_t *removed,
                                   mb_error *err)
{
    return prune(s, s ? &s->logs[LOG_LOCAL] : NULL, 0, before_seq, 0, removed, err);
}

int storage_local_prune_before_time(storage *s, int64_t before_time_ms, uint64_t *removed,
                                    mb_error *err)
{
    return prune(s, s ? &s->logs[LOG_LOCAL] : NULL, 1, 0, before_time_ms, removed, err);
}

/* ----------------------------------------------------------------- stats */

static int log_stats(storage *s, int li, storage_stats *out, mb_error *err)
{
    if (s == NULL || out == NULL)
        return mb_errorf(err, MB_EINVAL, "stats: NULL store or output");
    memset(out, 0, sizeof(*out));
    slog *lg = &s->logs[li];
    pthread_mutex_lock(&s->mu);
    out->count = lg->count;
    uint64_t floor = lg->floor;
    pthread_mutex_unlock(&s->mu);
    int rc = edge_seq(s, lg->cf_rec, floor, 1, &out->first_seq, err);
    if (rc == 0)
        rc = edge_seq(s, lg->cf_rec, floor, 0, &out->last_seq, err);
    if (rc != 0)
        return rc;
    const int cfs[4] = { lg->cf_rec, lg->cf_subject, lg->cf_type, lg->cf_time };
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        if (rocksdb_property_int_cf(s->db, s->cf[cfs[i]], "rocksdb.total-sst-files-size", &v) == 0)
            out->bytes += v;
        if (rocksdb_property_int_cf(s->db, s->cf[cfs[i]], "rocksdb.cur-size-all-mem-tables", &v) ==
            0)
            out->bytes += v;
    }
    return 0;
}

int storage_get_stats(storage *s, storage_stats *out, mb_error *err)
{
    return log_stats(s, LOG_EVENTS, out, err);
}

int storage_local_get_stats(storage *s, storage_stats *out, mb_error *err)
{
    return log_stats(s, LOG_LOCAL, out, err);
}

int storage_compact(storage *s, mb_error *err)
{
    if (s == NULL)
        return mb_errorf(err, MB_EINVAL, "compact: NULL store");
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_change_level(co, 0);
    /* The C API of 7.8.3 has no error output for this call: a failed
     * compaction shows up as a background error on the next write. */
    for (int i = 0; i < CF_OURS; i++)
        rocksdb_compact_range_cf_opt(s->db, s->cf[i], co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
    return 0;
}

/* ---------------------------------------------------------- meta, blobs */

static int kv_put(storage *s, int cf, const char *what, const char *key, const void *val,
                  size_t len, mb_error *err)
{
    if (s == NULL || !valid_key(key))
        return mb_errorf(err, MB_EINVAL, "%s put: NULL store, or key empty or over %d bytes", what,
                         STORAGE_KEY_MAX);
    if (val == NULL && len > 0)
        return mb_errorf(err, MB_EINVAL, "%s put %s: NULL value of %zu bytes", what, key, len);
    if (len > STORAGE_BLOB_MAX)
        return mb_errorf(err, MB_ETOOBIG, "%s put %s: %zu bytes over the limit", what, key, len);
    uint8_t *v = malloc(len + 1);
    if (v == NULL)
        return mb_errorf(err, MB_ENOMEM, "%s put %s: out of memory for %zu bytes", what, key, len);
    v[0] = VALUE_VERSION;
    if (len > 0)
        memcpy(v + 1, val, len);
    char *e = NULL;
    rocksdb_put_cf(s->db, s->wo, s->cf[cf], key, strlen(key), (const char *)v, len + 1, &e);
    free(v);
    if (e != NULL)
        return rdb_fail(err, &e, "%s put %s", what, key);
    return 0;
}

static int kv_get(storage *s, int cf, const char *what, const char *key, void **val, size_t *len,
                  mb_error *err)
{
    if (s == NULL || !valid_key(key) || val == NULL || len == NULL)
        return mb_errorf(err, MB_EINVAL, "%s get: NULL argument, or key empty or too long", what);
    *val = NULL;
    *len = 0;
    char *e = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(s->db, s->ro, s->cf[cf], key, strlen(key), &vlen, &e);
    if (e != NULL)
        return rdb_fail(err, &e, "%s get %s", what, key);
    if (v == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "%s get %s: no such key", what, key);
    int rc = 0;
    if (vlen < 1 || (uint8_t)v[0] != VALUE_VERSION) {
        rc = mb_errorf(err, MB_ECORRUPT, "%s get %s: foreign or damaged value", what, key);
    } else {
        uint8_t *copy = malloc(vlen > 1 ? vlen - 1 : 1);
        if (copy == NULL) {
            rc = mb_errorf(err, MB_ENOMEM, "%s get %s: out of memory", what, key);
        } else {
            memcpy(copy, v + 1, vlen - 1);
            *val = copy;
            *len = vlen - 1;
        }
    }
    rocksdb_free(v);
    return rc;
}

int storage_meta_put(storage *s, const char *key, const void *val, size_t len, mb_error *err)
{
    return kv_put(s, CF_META, "meta", key, val, len, err);
}

int storage_meta_get(storage *s, const char *key, void **val, size_t *len, mb_error *err)
{
    return kv_get(s, CF_META, "meta", key, val, len, err);
}

int storage_blob_put(storage *s, const char *key, const void *val, size_t len, mb_error *err)
{
    return kv_put(s, CF_BLOBS, "blob", key, val, len, err);
}

int storage_blob_get(storage *s, const char *key, void **val, size_t *len, mb_error *err)
{
    return kv_get(s, CF_BLOBS, "blob", key, val, len, err);
}

int storage_blob_delete(storage *s, const char *key, mb_error *err)
{
    if (s == NULL || !valid_key(key))
        return mb_errorf(err, MB_EINVAL, "blob delete: NULL store, or key empty or too long");
    char *e = NULL;
    rocksdb_delete_cf(s->db, s->wo, s->cf[CF_BLOBS], key, strlen(key), &e);
    if (e != NULL)
        return rdb_fail(err, &e, "blob delete %s", key);
    return 0;
}

/* --------------------------------------------------------------- testing */

uint64_t storage_testing_append_writes(storage *s)
{
    return __atomic_load_n(&s->append_writes, __ATOMIC_RELAXED);
}

void storage_testing_set_index_flush(storage *s, size_t events)
{
    pthread_mutex_lock(&s->mu);
    s->tail_flush_events = events > 0 ? events : 1;
    s->tail_exact = 1;
    for (int i = 0; i < LOG_COUNT; i++)
        s->logs[i].freeze_at = 0;
    pthread_mutex_unlock(&s->mu);
}

void storage_testing_freeze_draws(storage *s, size_t *out, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        out[i] = next_freeze_at(s);
    pthread_mutex_unlock(&s->mu);
}

void storage_testing_set_flush_hook(storage *s, void (*hook)(storage *s, void *arg), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->flush_hook = hook;
    s->flush_hook_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

int storage_testing_index_sync(storage *s, mb_error *err)
{
    wreq r;
    uint64_t t_last[LOG_COUNT], t_count[LOG_COUNT], t_floor[LOG_COUNT];
    exclusive_enter(s, &r, t_last, t_count, t_floor);
    int rc = 0;
    for (int i = 0; i < LOG_COUNT && rc == 0; i++) {
        slog *lg = &s->logs[i];
        pthread_mutex_lock(&s->mu);
        while (lg->flush_pending && !lg->flush_failed)
            pthread_cond_wait(&s->flush_cond, &s->mu);
        int failed = lg->flush_pending;
        pthread_mutex_unlock(&s->mu);
        if (failed)
            rc = mb_errorf(err, MB_EIO, "index sync: a flush of %s failed", lg->name);
        else
            rc = tail_write(s, lg, &lg->tails[lg->active], 0, err);
    }
    writer_leave(s, &r, rc, NULL, t_last, t_count, t_floor);
    return rc;
}

void storage_testing_index_marks(storage *s, uint64_t *subject, uint64_t *type)
{
    pthread_rwlock_rdlock(&s->tail_lock);
    *subject = s->logs[LOG_EVENTS].indexed[IDX_SUBJECT];
    *type = s->logs[LOG_EVENTS].indexed[IDX_TYPE];
    pthread_rwlock_unlock(&s->tail_lock);
}

int storage_testing_flush_memtables(storage *s, mb_error *err)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    int rc = 0;
    for (int i = 0; i < CF_OURS && rc == 0; i++) {
        char *e = NULL;
        rocksdb_flush_cf(s->db, fo, s->cf[i], &e);
        if (e != NULL)
            rc = rdb_fail(err, &e, "flush %s", cf_names[i]);
    }
    rocksdb_flushoptions_destroy(fo);
    return rc;
}

/* Our column family named `cf_name`, or NULL. */
static rocksdb_column_family_handle_t *testing_cf(storage *s, const char *cf_name)
{
    for (int i = 0; i < CF_OURS; i++)
        if (strcmp(cf_names[i], cf_name) == 0)
            return s->cf[i];
    return NULL;
}

int storage_testing_put_raw(storage *s, const char *cf_name, const void *key, size_t key_len,
                            const void *val, size_t val_len, mb_error *err)
{
    rocksdb_column_family_handle_t *cf = testing_cf(s, cf_name);
    if (cf == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "raw put: no column family %s", cf_name);
    char *e = NULL;
    rocksdb_put_cf(s->db, s->wo, cf, key, key_len, val, val_len, &e);
    if (e != NULL)
        return rdb_fail(err, &e, "raw put into %s", cf_name);
    return 0;
}

int storage_testing_count_rows(storage *s, const char *cf_name, uint64_t *rows, mb_error *err)
{
    *rows = 0;
    rocksdb_column_family_handle_t *cf = testing_cf(s, cf_name);
    if (cf == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "count rows: no column family %s", cf_name);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, cf);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
        (*rows)++;
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e != NULL)
        return rdb_fail(err, &e, "count rows of %s", cf_name);
    return 0;
}

int storage_testing_level0_ratio(storage *s, const char *cf_name, double *ratio, mb_error *err)
{
    rocksdb_column_family_handle_t *cf = testing_cf(s, cf_name);
    if (cf == NULL)
        return mb_errorf(err, MB_ENOTFOUND, "compression ratio: no column family %s", cf_name);
    char *v = rocksdb_property_value_cf(s->db, cf, "rocksdb.compression-ratio-at-level0");
    if (v == NULL)
        return mb_errorf(err, MB_EIO, "compression ratio of %s: no such property", cf_name);
    *ratio = strtod(v, NULL);
    rocksdb_free(v);
    return 0;
}

int storage_testing_replace_record(storage *s, uint64_t seq, const void *rec, size_t len,
                                   mb_error *err)
{
    rcur cur;
    rcur_init(&cur, s, s->ro, CF_EVENTS, "events");
    const uint8_t *old;
    size_t old_len;
    int rc = rcur_find(&cur, seq, &old, &old_len, err);
    if (rc == 0 && old == NULL)
        rc = mb_errorf(err, MB_ENOTFOUND, "replace record %llu: no such event",
                       (unsigned long long)seq);
    uint8_t *nv = NULL;
    if (rc == 0) {
        const rec_chunk *c = &cur.c;
        nv = malloc((size_t)(c->table - c->buf) + len + c->n * CHUNK_ENTRY_SIZE);
        if (nv == NULL)
            rc = mb_errorf(err, MB_ENOMEM, "replace record: out of memory");
        size_t off = CHUNK_HEADER_SIZE;
        uint8_t *table = NULL;
        if (rc == 0 && (table = malloc(c->n * CHUNK_ENTRY_SIZE)) == NULL)
            rc = mb_errorf(err, MB_ENOMEM, "replace record: out of memory");
        for (size_t i = 0; rc == 0 && i < c->n; i++) {
            const uint8_t *r;
            size_t rl;
            rec_chunk_record(c, i, &r, &rl);
            if (rec_chunk_seq(c, i) == seq) {
                r = rec;
                rl = len;
            }
            memcpy(nv + off, r, rl);
            off += rl;
            rec_chunk_entry(table + i * CHUNK_ENTRY_SIZE, rec_chunk_seq(c, i), off);
        }
        if (rc == 0) {
            rec_chunk_header(nv, c->n);
            memcpy(nv + off, table, c->n * CHUNK_ENTRY_SIZE);
            uint8_t k[KEY_SEQ_SIZE];
            rec_put_be64(k, cur.first);
            char *e = NULL;
            rocksdb_put_cf(s->db, s->wo, s->cf[CF_EVENTS], (const char *)k, sizeof(k),
                           (const char *)nv, off + c->n * CHUNK_ENTRY_SIZE, &e);
            if (e != NULL)
                rc = rdb_fail(err, &e, "replace record %llu", (unsigned long long)seq);
        }
        free(table);
    }
    free(nv);
    rcur_close(&cur);
    return rc;
}
