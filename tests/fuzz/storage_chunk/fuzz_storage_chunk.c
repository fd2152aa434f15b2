/* Fuzz target: rec_chunk_parse() must never crash or read out of bounds,
 * must accept only well-formed record rows (whose records lie inside the
 * row, seqs strictly increasing from the key) and report everything else as
 * MB_ECORRUPT; decoding each record of an accepted row must be safe.
 * Input: be64(key seq) || row value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t key_seq = rec_get_be64(data);
    const uint8_t *v = data + 8;
    size_t len = size - 8;
    rec_chunk c;
    mb_error err;
    int rc = rec_chunk_parse(v, len, key_seq, &c, &err);
    if (rc != 0) {
        if (rc != MB_ECORRUPT || err.code != MB_ECORRUPT)
            abort();
        return 0;
    }
    if (c.n == 0 || rec_chunk_seq(&c, 0) != key_seq)
        abort();
    size_t total = CHUNK_HEADER_SIZE;
    for (size_t i = 0; i < c.n; i++) {
        if (i > 0 && rec_chunk_seq(&c, i) <= rec_chunk_seq(&c, i - 1))
            abort();
        if (rec_chunk_lower(&c, rec_chunk_seq(&c, i)) != i)
            abort();
        const uint8_t *rec;
        size_t rl;
        rec_chunk_record(&c, i, &rec, &rl);
        if (rec < v + CHUNK_HEADER_SIZE || rec + rl > v + len)
            abort();
        total += rl;
        storage_event ev;
        (void)rec_decode(rec, rl, rec_chunk_seq(&c, i), &ev, NULL);
    }
    if (total + c.n * CHUNK_ENTRY_SIZE != len)
        abort();
    return 0;
}
