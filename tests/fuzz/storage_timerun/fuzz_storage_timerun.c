/* Fuzz target: rec_trun_check() must never crash or read out of bounds,
 * must accept only well-formed time runs (which re-encode to the same bytes,
 * end at their key and span at most the window) and report everything else
 * as MB_ECORRUPT. Input: be64(key time) || be64(key seq) || value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16)
        return 0;
    int64_t key_time = (int64_t)rec_get_be64(data);
    uint64_t key_seq = rec_get_be64(data + 8);
    const uint8_t *v = data + 16;
    size_t len = size - 16, n = 0;
    mb_error err;
    int rc = rec_trun_check(v, len, key_time, key_seq, &n, &err);
    if (rc != 0) {
        if (rc != MB_ECORRUPT || err.code != MB_ECORRUPT)
            abort();
        return 0;
    }
    if (n == 0 || TRUN_HEADER + n * TRUN_ENTRY_SIZE != len)
        abort();
    uint8_t *again = malloc(len);
    if (again == NULL)
        return 0;
    rec_trun_header(again, n);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = rec_trun_seq(v, i);
        int64_t t = rec_trun_time(v, i);
        if (i > 0 && (seq <= rec_trun_seq(v, i - 1) || t < rec_trun_time(v, i - 1)))
            abort();
        if ((uint64_t)key_time - (uint64_t)t > (uint64_t)TRUN_WINDOW_MS)
            abort();
        rec_trun_entry(again + TRUN_HEADER + i * TRUN_ENTRY_SIZE, seq, t);
    }
    if (rec_trun_seq(v, n - 1) != key_seq || rec_trun_time(v, n - 1) != key_time)
        abort();
    if (memcmp(again, v, len) != 0)
        abort();
    free(again);
    return 0;
}
