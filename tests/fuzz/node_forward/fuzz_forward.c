/* Fuzz target for node/forward.c: a batch of forwarded writes (received
 * by the leader from a peer) and the answer to one (received by the
 * follower). Input: 1 byte n (results expected), then the bytes, decoded
 * both ways. A decoded batch has 1..FWD_BATCH_MAX non-empty commands and
 * re-encodes to a batch that decodes to the same commands; decoded
 * results re-encode and decode to the same codes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/forward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checked in every build type (NDEBUG removes assert). */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_batch(const uint8_t *p, size_t len)
{
    fwd_batch *b = NULL;
    if (fwd_batch_decode(p, len, &b) != MB_OK)
        return;
    size_t n = fwd_batch_count(b);
    CHECK(n >= 1 && n <= FWD_BATCH_MAX);
    fwd_item items[FWD_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        items[i] = fwd_batch_item(b, i);
        CHECK(items[i].len > 0 && items[i].data != NULL);
    }
    void *enc = NULL;
    size_t enc_len = 0;
    if (fwd_batch_encode(items, n, &enc, &enc_len) == MB_OK) {
        fwd_batch *again = NULL;
        CHECK(fwd_batch_decode(enc, enc_len, &again) == MB_OK);
        CHECK(fwd_batch_count(again) == n);
        for (size_t i = 0; i < n; i++) {
            fwd_item x = fwd_batch_item(again, i);
            CHECK(x.len == items[i].len && memcmp(x.data, items[i].data, x.len) == 0);
        }
        fwd_batch_free(again);
        free(enc);
    }
    fwd_batch_free(b);
}

static void check_results(size_t n, const uint8_t *p, size_t len)
{
    consensus_result *res = calloc(n > 0 ? n : 1, sizeof(*res));
    consensus_result *res2 = calloc(n > 0 ? n : 1, sizeof(*res2));
    if (res == NULL || res2 == NULL)
        goto out;
    if (fwd_results_decode(p, len, n, res) != MB_OK)
        goto out;
    void *enc = NULL;
    size_t enc_len = 0;
    if (fwd_results_encode(res, n, &enc, &enc_len) == MB_OK) {
        int rc = fwd_results_decode(enc, enc_len, n, res2);
        CHECK(rc == MB_OK || (n == 0 && enc_len == 0));
        for (size_t i = 0; rc == MB_OK && i < n; i++)
            CHECK(res2[i].code == res[i].code && res2[i].version == res[i].version);
        free(enc);
    }
out:
    free(res);
    free(res2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    check_batch(data + 1, size - 1);
    check_results(data[0], data + 1, size - 1);
    return 0;
}
