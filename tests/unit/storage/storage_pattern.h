/* Deterministic event payloads shared by the kill -9 test and its writer
 * process: each seq gets a payload whose length and bytes depend on it. */
#ifndef MB_TEST_STORAGE_PATTERN_H
#define MB_TEST_STORAGE_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PATTERN_BATCH       5
#define PATTERN_PAYLOAD_MAX 600

/* Fill out (PATTERN_PAYLOAD_MAX bytes) with the payload of `seq`; returns
 * its length. */
static inline size_t pattern_payload(uint64_t seq, char *out)
{
    size_t len = 16 + (size_t)(seq * 7919 % (PATTERN_PAYLOAD_MAX - 16));
    uint64_t x = seq * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (char)x;
    }
    return len;
}

/* 1 if `payload` is exactly the payload of `seq`. */
static inline int pattern_check(uint64_t seq, const void *payload, size_t len)
{
    char want[PATTERN_PAYLOAD_MAX];
    size_t wlen = pattern_payload(seq, want);
    return len == wlen && memcmp(payload, want, len) == 0;
}

#endif /* MB_TEST_STORAGE_PATTERN_H */
