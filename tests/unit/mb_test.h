/* Shared helpers for the CUnit test binaries: a runner whose exit code
 * reflects failures (CU_basic_run_tests() returns success even when tests
 * fail, see LIBS.md §4), waiting on a condition with a deadline, and
 * temporary directories. Header-only; include it from exactly one .c per
 * test binary or from several (everything is static). */
#ifndef MB_TEST_H
#define MB_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The thread ids of this process whose name (comm) starts with `prefix`,
 * or is `prefix` when `exact`: the first `max` in `tids`. Returns how many
 * threads matched (more than max if they did not all fit). */
static inline int mb_test_threads_named(const char *prefix, int exact, int *tids, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 0;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* the thread ended */
        if (fgets(comm, sizeof(comm), f) == NULL)
            comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (strncmp(comm, prefix, plen) != 0 || (exact && comm[plen] != '\0'))
            continue;
        if (n < max)
            tids[n] = atoi(e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* Monotonic clock in milliseconds. */
static inline long long mb_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll `expr` every millisecond until it is true or `timeout_ms` passes;
 * evaluates to the final truth of `expr`. This waits on a condition with a
 * deadline: it is not a sleep used as synchronisation. */
#define MB_WAIT_UNTIL(expr, timeout_ms)                                                            \
    ({                                                                                             \
        long long mb_deadline_ = mb_test_now_ms() + (timeout_ms);                                  \
        int mb_ok_ = 0;                                                                            \
        for (;;) {                                                                                 \
            if (expr) {                                                                            \
                mb_ok_ = 1;                                                                        \
                break;                                                                             \
            }                                                                                      \
            if (mb_test_now_ms() >= mb_deadline_)                                                  \
                break;                                                                             \
            struct timespec mb_ts_ = { 0, 1000000 };                                               \
            nanosleep(&mb_ts_, NULL);                                                              \
        }                                                                                          \
        mb_ok_;                                                                                    \
    })

/* A TCP port on 127.0.0.1 that nobody listens on right now, for a server
 * the test starts next; -1 if none was found. Chosen at random below the
 * kernel's ephemeral range (net.ipv4.ip_local_port_range): a port from
 * bind(port 0) is an ephemeral one, and any outgoing connection of a test
 * running beside this one (curl, a mesh dial) may take it as its source
 * port before the server binds it. */
static inline int mb_test_free_port(void)
{
    int lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &lo) != 1)
            lo = 32768;
        fclose(f);
    }
    const int first = 12000, span = lo - 64 - first;
    if (span <= 0)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint32_t x = (uint32_t)getpid() * 2654435761u ^ (uint32_t)ts.tv_nsec;
    for (int tries = 0; tries < 200; tries++) {
        x ^= x << 13; /* xorshift32: leaves rand()'s sequence to the tests */
        x ^= x >> 17;
        x ^= x << 5;
        int port = first + (int)(x % (uint32_t)span);
        int sock = socket(AF_INET, SOCK_STREAM, 0);
        if (sock < 0)
            return -1;
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int ok = bind(sock, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(sock);
        if (ok)
            return port;
    }
    return -1;
}

/* Read one line (without its newline) from in_fd into buf, waiting at most
 * timeout_ms; its length, or -1 on timeout, end of file or error. */
static inline int mb_test_read_line(int in_fd, char *buf, size_t size, int timeout_ms)
{
    size_t n = 0;
    long long deadline = mb_test_now_ms() + timeout_ms;
    while (n + 1 < size) {
        long long left = deadline - mb_test_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = { .fd = in_fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        char c;
        if (read(in_fd, &c, 1) <= 0)
            return -1;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return (int)n;
}

/* Create a fresh directory under $TMPDIR (or /tmp) into `buf` (at least 256
 * bytes). Returns 0 on success. */
static inline int mb_test_mkdtemp(char *buf, size_t size, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(buf, size, "%s/mabeam-%s-XXXXXX", base, tag);
    return mkdtemp(buf) == NULL ? -1 : 0;
}

static inline int mb_test_rm_cb_(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove a directory tree (best effort). */
static inline void mb_test_rmtree(const char *path)
{
    nftw(path, mb_test_rm_cb_, 16, FTW_DEPTH | FTW_PHYS);
}

/* Register `suites`, run them (all, or only the suite/test named by argv[1]
 * as "suite" or "suite:test"), print CUnit's summary and a closing
 * "N passed, N failed" line, and return the process exit code: 0 only if
 * every test passed and every suite initialised. */
static inline int mb_test_run(int argc, char **argv, CU_SuiteInfo *suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    const char *verbose = getenv("MB_TEST_QUIET");
    CU_basic_set_mode(verbose != NULL && verbose[0] == '1' ? CU_BRM_NORMAL : CU_BRM_VERBOSE);
    if (argc > 1) {
        char want[256];
        snprintf(want, sizeof(want), "%s", argv[1]);
        char *test_name = strchr(want, ':');
        if (test_name != NULL)
            *test_name++ = '\0';
        CU_pSuite suite = CU_get_suite(want);
        if (suite == NULL) {
            fprintf(stderr, "no suite named '%s'\n", want);
            CU_cleanup_registry();
            return 2;
        }
        if (test_name != NULL) {
            CU_pTest test = CU_get_test(suite, test_name);
            if (test == NULL) {
                fprintf(stderr, "no test named '%s' in suite '%s'\n", test_name, want);
                CU_cleanup_registry();
                return 2;
            }
            CU_basic_run_test(suite, test);
        } else {
            CU_basic_run_suite(suite);
        }
    } else {
        CU_basic_run_tests();
    }
    unsigned failures = CU_get_number_of_failures();
    unsigned tests_failed = CU_get_number_of_tests_failed();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    unsigned tests_run = CU_get_number_of_tests_run();
    printf("\n%u passed, %u failed\n", tests_run - tests_failed, tests_failed);
    CU_cleanup_registry();
    return (failures || tests_failed || suites_failed) ? 1 : 0;
}

#endif /* MB_TEST_H */
