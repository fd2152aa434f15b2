/* Fuzz target: rec_decode() must never crash or read out of bounds on any
 * input, must accept only what it can re-encode to the same bytes, and must
 * report everything else as MB_ECORRUPT. Input: be64(seq) || record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t seq = rec_get_be64(data);
    const uint8_t *rec = data + 8;
    size_t len = size - 8;
    storage_event ev;
    mb_error err;
    int rc = rec_decode(rec, len, seq, &ev, &err);
    if (rc != 0) {
        if (rc != MB_ECORRUPT || err.code != MB_ECORRUPT)
            abort();
        return 0;
    }
    /* Accepted: the fields are in range and re-encode to the same bytes. */
    if (strlen(ev.type) == 0 || strlen(ev.type) > STORAGE_TYPE_MAX ||
        strlen(ev.subject) > STORAGE_SUBJECT_MAX || ev.payload_len > STORAGE_PAYLOAD_MAX ||
        rec_encoded_size(&ev) != len)
        abort();
    uint8_t *again = malloc(len);
    if (again == NULL)
        return 0;
    rec_encode(&ev, seq, again);
    if (memcmp(again, rec, len) != 0)
        abort();
    free(again);
    return 0;
}
