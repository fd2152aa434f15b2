/* Fuzz target: rec_postings_check() must never crash or read out of bounds,
 * must accept only well-formed rows (which re-encode to the same bytes) and
 * report everything else as MB_ECORRUPT. Input: be64(key seq) || value. */
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
    if (n == 0 || rec_postings_size(n) != len)
        abort();
    rec_posting *p = malloc(n * sizeof(*p));
    uint8_t *again = malloc(len);
    if (p == NULL || again == NULL) {
        free(p);
        free(again);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = rec_posting_at(v, i);
        if (i > 0 && p[i].seq <= p[i - 1].seq)
            abort();
    }
    if (p[n - 1].seq != key_seq)
        abort();
    rec_postings_encode(p, n, again);
    if (memcmp(again, v, len) != 0)
        abort();
    free(p);
    free(again);
    return 0;
}
