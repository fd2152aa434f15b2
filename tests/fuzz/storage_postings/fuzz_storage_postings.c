/* Fuzz target: rec_postings_check() must never crash or read out of bounds,
 * must accept only well-formed rows of either version (which re-encode to
 * the same bytes; the records of a covering row lie inside it) and report
 * everything else as MB_ECORRUPT. Input: be64(key seq) || value. */
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
    size_t len = size - 8, n = 0;
    mb_error err;
    int rc = rec_postings_check(v, len, key_seq, &n, &err);
    if (rc != 0) {
        if (rc != MB_ECORRUPT || err.code != MB_ECORRUPT)
            abort();
        return 0;
    }
    int covering = v[0] == POST_VERSION_REC;
    if (n == 0 || (!covering && rec_postings_size(n) != len))
        abort();
    rec_posting *p = malloc(n * sizeof(*p));
    const uint8_t **recs = malloc(n * sizeof(*recs));
    size_t *lens = malloc(n * sizeof(*lens));
    uint8_t *again = malloc(len);
    if (p == NULL || again == NULL || recs == NULL || lens == NULL) {
        free(p);
        free(recs);
        free(lens);
        free(again);
        return 0;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = rec_posting_at(v, i);
        if (i > 0 && p[i].seq <= p[i - 1].seq)
            abort();
        rec_posting_record(v, i, &recs[i], &lens[i]);
        if (covering != (recs[i] != NULL))
            abort();
        if (covering && (recs[i] < v || recs[i] + lens[i] > v + len))
            abort();
        bytes += lens[i];
        /* Reading the record must be safe, whatever it holds. */
        storage_event ev;
        if (covering)
            (void)rec_decode(recs[i], lens[i], p[i].seq, &ev, NULL);
    }
    if (p[n - 1].seq != key_seq || (covering && rec_postings_rec_size(n, bytes) != len))
        abort();
    if (covering)
        rec_postings_rec_encode(p, recs, lens, n, again);
    else
        rec_postings_encode(p, n, again);
    if (memcmp(again, v, len) != 0)
        abort();
    free(p);
    free(recs);
    free(lens);
    free(again);
    return 0;
}
