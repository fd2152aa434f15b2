/* tests/fuzz/fuzz_check.h: CHECK(cond) for fuzz targets, checked in every
 * build type (CI builds with NDEBUG, where assert() would check nothing). */
#ifndef MB_TESTS_FUZZ_CHECK_H
#define MB_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
