/* Fuzz snapshot restore: garbage is an error, never a crash; whatever
 * restores must snapshot to bytes that restore and snapshot identically. */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Snapshots carry a CRC over their body: fix it up so that the fuzzer's
 * mutations reach the decoder (same polynomial as consensus/sm.c). */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static void check(const uint8_t *data, size_t size)
{
    consensus_sm *sm = NULL;
    if (consensus_sm_restore(data, size, &sm, NULL) != MB_OK)
        return;
    void *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    consensus_sm *again = NULL;
    if (consensus_sm_snapshot(sm, NULL, &a, &la, NULL) != MB_OK)
        abort();
    if (consensus_sm_restore(a, la, &again, NULL) != MB_OK)
        abort();
    if (consensus_sm_snapshot(again, NULL, &b, &lb, NULL) != MB_OK)
        abort();
    if (la != lb || memcmp(a, b, la) != 0)
        abort();
    free(a);
    free(b);
    consensus_sm_free(again);
    consensus_sm_free(sm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= 12 && size < (1u << 20)) {
        uint8_t *copy = malloc(size);
        if (copy == NULL)
            return 0;
        memcpy(copy, data, size);
        uint32_t crc = crc32_of(copy + 12, size - 12);
        copy[8] = (uint8_t)(crc >> 24);
        copy[9] = (uint8_t)(crc >> 16);
        copy[10] = (uint8_t)(crc >> 8);
        copy[11] = (uint8_t)crc;
        check(copy, size);
        free(copy);
    }
    return 0;
}
