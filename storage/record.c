/* storage/record.c: event record codec, CRC-32C and the index hash. See
 * record.h and docs/storage.md. */
#include "storage/record.h"

#include <pthread.h>
#include <string.h>

/* ---- CRC-32C: hardware (SSE4.2) when the CPU has it, else slicing-by-8 ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_have_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
            crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len)
{
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t rec_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (crc_have_hw)
        return ~crc_hw(c, data, len);
#endif
    return ~crc_sw(c, data, len);
}

uint64_t rec_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- record ---- */

size_t rec_encoded_size(const storage_event *ev)
{
    return REC_HEADER_SIZE + strlen(ev->type) + 1 + strlen(ev->subject) + 1 + ev->payload_len;
}

/* CRC of header bytes [0, 18), the strings and payload, then be64(seq). */
static uint32_t rec_crc_body(const uint8_t *rec, size_t len)
{
    uint32_t c = rec_crc32c(0, rec, 18);
    return rec_crc32c(c, rec + REC_HEADER_SIZE, len - REC_HEADER_SIZE);
}

static uint32_t rec_crc_seq(uint32_t c, uint64_t seq)
{
    uint8_t seqbuf[8];
    rec_put_be64(seqbuf, seq);
    return rec_crc32c(c, seqbuf, sizeof(seqbuf));
}

uint32_t rec_prepare(const storage_event *ev, uint8_t *out)
{
    size_t type_len = strlen(ev->type);
    size_t subject_len = strlen(ev->subject);
    size_t len = REC_HEADER_SIZE + type_len + 1 + subject_len + 1 + ev->payload_len;
    out[0] = REC_MAGIC;
    out[1] = REC_VERSION;
    out[2] = (uint8_t)type_len;
    out[3] = 0; /* flags: none defined in version 1 */
    out[4] = (uint8_t)(subject_len >> 8);
    out[5] = (uint8_t)subject_len;
    out[6] = (uint8_t)(ev->payload_len >> 24);
    out[7] = (uint8_t)(ev->payload_len >> 16);
    out[8] = (uint8_t)(ev->payload_len >> 8);
    out[9] = (uint8_t)ev->payload_len;
    rec_put_be64(out + 10, (uint64_t)ev->time_ms);
    uint8_t *p = out + REC_HEADER_SIZE;
    memcpy(p, ev->type, type_len + 1);
    p += type_len + 1;
    memcpy(p, ev->subject, subject_len + 1);
    p += subject_len + 1;
    if (ev->payload_len > 0)
        memcpy(p, ev->payload, ev->payload_len);
    return rec_crc_body(out, len);
}

void rec_seal(uint8_t *out, uint32_t crc_state, uint64_t seq)
{
    uint32_t crc = rec_crc_seq(crc_state, seq);
    out[18] = (uint8_t)(crc >> 24);
    out[19] = (uint8_t)(crc >> 16);
    out[20] = (uint8_t)(crc >> 8);
    out[21] = (uint8_t)crc;
}

void rec_encode(const storage_event *ev, uint64_t seq, uint8_t *out)
{
    rec_seal(out, rec_prepare(ev, out), seq);
}

int rec_decode(const uint8_t *buf, size_t len, uint64_t seq, storage_event *ev, mb_error *err)
{
    if (buf == NULL || len < REC_HEADER_SIZE)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: record truncated (%zu bytes)",
                         (unsigned long long)seq, len);
    if (buf[0] != REC_MAGIC)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: foreign record (magic 0x%02x)",
                         (unsigned long long)seq, buf[0]);
    if (buf[1] != REC_VERSION)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: unknown record version %u",
                         (unsigned long long)seq, buf[1]);
    size_t type_len = buf[2];
    size_t subject_len = (size_t)buf[4] << 8 | buf[5];
    size_t payload_len =
        (size_t)buf[6] << 24 | (size_t)buf[7] << 16 | (size_t)buf[8] << 8 | (size_t)buf[9];
    if (buf[3] != 0 || type_len == 0 || type_len > STORAGE_TYPE_MAX ||
        subject_len > STORAGE_SUBJECT_MAX || payload_len > STORAGE_PAYLOAD_MAX)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: record header out of range",
                         (unsigned long long)seq);
    if (len != REC_HEADER_SIZE + type_len + 1 + subject_len + 1 + payload_len)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: record length %zu does not match header",
                         (unsigned long long)seq, len);
    const uint8_t *type = buf + REC_HEADER_SIZE;
    const uint8_t *subject = type + type_len + 1;
    if (type[type_len] != 0 || subject[subject_len] != 0 || memchr(type, 0, type_len) != NULL ||
        memchr(subject, 0, subject_len) != NULL)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: record strings malformed",
                         (unsigned long long)seq);
    uint32_t stored = (uint32_t)buf[18] << 24 | (uint32_t)buf[19] << 16 | (uint32_t)buf[20] << 8 |
                      (uint32_t)buf[21];
    if (rec_crc_seq(rec_crc_body(buf, len), seq) != stored)
        return mb_errorf(err, MB_ECORRUPT, "event %llu: record checksum mismatch",
                         (unsigned long long)seq);
    ev->seq = seq;
    ev->type = (const char *)type;
    ev->subject = (const char *)subject;
    ev->time_ms = (int64_t)rec_get_be64(buf + 10);
    ev->payload_len = payload_len;
    ev->payload = payload_len > 0 ? subject + subject_len + 1 : NULL;
    return 0;
}

/* ---- posting rows ---- */

void rec_postings_encode(const rec_posting *p, size_t n, uint8_t *out)
{
    out[0] = POST_VERSION;
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = out + 1 + i * POST_ENTRY_SIZE;
        rec_put_be64(e, p[i].seq);
        rec_put_be64(e + 8, (uint64_t)p[i].time_ms);
        rec_put_be64(e + 16, p[i].other);
    }
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void rec_postings_rec_header(const rec_posting *p, const size_t *lens, size_t n, uint8_t *out)
{
    out[0] = POST_VERSION_REC;
    be32_put(out + 1, (uint32_t)n);
    size_t off = POST_REC_HEADER + n * POST_REC_ENTRY_SIZE;
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = out + POST_REC_HEADER + i * POST_REC_ENTRY_SIZE;
        off += lens[i];
        rec_put_be64(e, p[i].seq);
        rec_put_be64(e + 8, (uint64_t)p[i].time_ms);
        rec_put_be64(e + 16, p[i].other);
        be32_put(e + 24, (uint32_t)off);
    }
}

void rec_postings_rec_encode(const rec_posting *p, const uint8_t *const *recs, const size_t *lens,
                             size_t n, uint8_t *out)
{
    rec_postings_rec_header(p, lens, n, out);
    size_t off = POST_REC_HEADER + n * POST_REC_ENTRY_SIZE;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + off, recs[i], lens[i]);
        off += lens[i];
    }
}

void rec_posting_record(const uint8_t *buf, size_t i, const uint8_t **rec, size_t *len)
{
    *rec = NULL;
    *len = 0;
    if (buf[0] != POST_VERSION_REC)
        return;
    size_t n = be32_at(buf + 1);
    const uint8_t *e = buf + POST_REC_HEADER + i * POST_REC_ENTRY_SIZE;
    size_t start = i == 0 ? POST_REC_HEADER + n * POST_REC_ENTRY_SIZE : be32_at(e - 4);
    *rec = buf + start;
    *len = be32_at(e + 24) - start;
}

int rec_postings_check(const uint8_t *buf, size_t len, uint64_t key_seq, size_t *n, mb_error *err)
{
    size_t count, stride, base;
    if (buf != NULL && len >= POST_REC_HEADER && buf[0] == POST_VERSION_REC) {
        count = be32_at(buf + 1);
        if (count == 0 || count > (len - POST_REC_HEADER) / POST_REC_ENTRY_SIZE)
            return mb_errorf(err, MB_ECORRUPT, "index row up to seq %llu: bad count %zu",
                             (unsigned long long)key_seq, count);
        stride = POST_REC_ENTRY_SIZE;
        base = POST_REC_HEADER;
    } else {
        if (buf == NULL || len < 1 + POST_ENTRY_SIZE || (len - 1) % POST_ENTRY_SIZE != 0)
            return mb_errorf(err, MB_ECORRUPT, "index row up to seq %llu: bad length %zu",
                             (unsigned long long)key_seq, len);
        if (buf[0] != POST_VERSION)
            return mb_errorf(err, MB_ECORRUPT, "index row up to seq %llu: unknown version %u",
                             (unsigned long long)key_seq, buf[0]);
        count = (len - 1) / POST_ENTRY_SIZE;
        stride = POST_ENTRY_SIZE;
        base = 1;
    }
    uint64_t prev = 0;
    size_t prev_end = base + count * stride;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = buf + base + i * stride;
        uint64_t seq = rec_get_be64(e);
        if (seq == 0 || (i > 0 && seq <= prev))
            return mb_errorf(err, MB_ECORRUPT, "index row up to seq %llu: entries out of order",
                             (unsigned long long)key_seq);
        prev = seq;
        if (stride == POST_REC_ENTRY_SIZE) {
            size_t end = be32_at(e + 24);
            if (end < prev_end || end > len || (i == count - 1 && end != len))
                return mb_errorf(err, MB_ECORRUPT, "index row up to seq %llu: bad record offsets",
                                 (unsigned long long)key_seq);
            prev_end = end;
        }
    }
    if (prev != key_seq)
        return mb_errorf(err, MB_ECORRUPT, "index row up to seq %llu: ends at seq %llu",
                         (unsigned long long)key_seq, (unsigned long long)prev);
    *n = count;
    return 0;
}

/* ---- record rows ---- */

void rec_chunk_header(uint8_t out[CHUNK_HEADER_SIZE], size_t n)
{
    out[0] = CHUNK_MAGIC;
    out[1] = CHUNK_VERSION;
    out[2] = 0;
    out[3] = 0;
    be32_put(out + 4, (uint32_t)n);
}

void rec_chunk_entry(uint8_t out[CHUNK_ENTRY_SIZE], uint64_t seq, size_t end)
{
    rec_put_be64(out, seq);
    be32_put(out + 8, (uint32_t)end);
}

int rec_chunk_parse(const uint8_t *buf, size_t len, uint64_t key_seq, rec_chunk *c, mb_error *err)
{
    if (buf == NULL || len < CHUNK_HEADER_SIZE)
        return mb_errorf(err, MB_ECORRUPT, "event row at seq %llu: truncated (%zu bytes)",
                         (unsigned long long)key_seq, len);
    if (buf[0] != CHUNK_MAGIC || buf[1] != CHUNK_VERSION || buf[2] != 0 || buf[3] != 0)
        return mb_errorf(err, MB_ECORRUPT, "event row at seq %llu: foreign or unknown header",
                         (unsigned long long)key_seq);
    size_t n = be32_at(buf + 4);
    if (n == 0 || n > (len - CHUNK_HEADER_SIZE) / CHUNK_ENTRY_SIZE)
        return mb_errorf(err, MB_ECORRUPT, "event row at seq %llu: bad count %zu",
                         (unsigned long long)key_seq, n);
    size_t table_off = len - n * CHUNK_ENTRY_SIZE;
    const uint8_t *t = buf + table_off;
    size_t prev_end = CHUNK_HEADER_SIZE;
    uint64_t prev_seq = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = rec_get_be64(t + i * CHUNK_ENTRY_SIZE);
        size_t end = be32_at(t + i * CHUNK_ENTRY_SIZE + 8);
        if ((i == 0 && seq != key_seq) || (i > 0 && seq <= prev_seq) || seq == 0)
            return mb_errorf(err, MB_ECORRUPT, "event row at seq %llu: seqs out of order",
                             (unsigned long long)key_seq);
        if (end < prev_end || end > table_off || (i == n - 1 && end != table_off))
            return mb_errorf(err, MB_ECORRUPT, "event row at seq %llu: bad record offsets",
                             (unsigned long long)key_seq);
        prev_seq = seq;
        prev_end = end;
    }
    c->buf = buf;
    c->table = t;
    c->n = n;
    return 0;
}

void rec_chunk_record(const rec_chunk *c, size_t i, const uint8_t **rec, size_t *len)
{
    size_t start = i == 0 ? CHUNK_HEADER_SIZE : be32_at(c->table + (i - 1) * CHUNK_ENTRY_SIZE + 8);
    size_t end = be32_at(c->table + i * CHUNK_ENTRY_SIZE + 8);
    *rec = c->buf + start;
    *len = end - start;
}

size_t rec_chunk_lower(const rec_chunk *c, uint64_t seq)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rec_chunk_seq(c, mid) < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void rec_trun_header(uint8_t out[TRUN_HEADER], size_t n)
{
    out[0] = TRUN_VERSION;
    be32_put(out + 1, (uint32_t)n);
}

void rec_trun_entry(uint8_t out[TRUN_ENTRY_SIZE], uint64_t seq, int64_t time_ms)
{
    rec_put_be64(out, seq);
    rec_put_be64(out + 8, (uint64_t)time_ms);
}

int rec_trun_check(const uint8_t *buf, size_t len, int64_t key_time, uint64_t key_seq, size_t *n,
                   mb_error *err)
{
    *n = 0;
    if (buf == NULL || len < TRUN_HEADER + TRUN_ENTRY_SIZE ||
        (len - TRUN_HEADER) % TRUN_ENTRY_SIZE != 0)
        return mb_errorf(err, MB_ECORRUPT, "time run up to seq %llu: bad length %zu",
                         (unsigned long long)key_seq, len);
    if (buf[0] != TRUN_VERSION)
        return mb_errorf(err, MB_ECORRUPT, "time run up to seq %llu: unknown version %u",
                         (unsigned long long)key_seq, buf[0]);
    size_t count = be32_at(buf + 1);
    if (count != (len - TRUN_HEADER) / TRUN_ENTRY_SIZE || count > TRUN_MAX_EVENTS)
        return mb_errorf(err, MB_ECORRUPT, "time run up to seq %llu: bad count %zu",
                         (unsigned long long)key_seq, count);
    int64_t first = rec_trun_time(buf, 0);
    for (size_t i = 1; i < count; i++) {
        if (rec_trun_seq(buf, i) <= rec_trun_seq(buf, i - 1) ||
            rec_trun_time(buf, i) < rec_trun_time(buf, i - 1))
            return mb_errorf(err, MB_ECORRUPT, "time run up to seq %llu: entries out of order",
                             (unsigned long long)key_seq);
    }
    int64_t last = rec_trun_time(buf, count - 1);
    if (rec_trun_seq(buf, 0) == 0 || rec_trun_seq(buf, count - 1) != key_seq || last != key_time)
        return mb_errorf(err, MB_ECORRUPT, "time run up to seq %llu: does not end at its key",
                         (unsigned long long)key_seq);
    if ((uint64_t)last - (uint64_t)first > (uint64_t)TRUN_WINDOW_MS)
        return mb_errorf(err, MB_ECORRUPT, "time run up to seq %llu: spans more than %d ms",
                         (unsigned long long)key_seq, TRUN_WINDOW_MS);
    *n = count;
    return 0;
}
