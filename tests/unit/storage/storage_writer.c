/* Helper process of the storage unit tests (not a test by itself):
 *
 *   storage_writer append fast|durable DIR   append batches of 5 events until
 *                                             killed; after each acknowledged
 *                                             append print "ack <last seq>"
 *   storage_writer probe DIR                  open DIR and print "open <code>"
 *   storage_writer powercut DIR               append (durable) with a small index
 *                                             flush size and every 40 batches a
 *                                             flush of every memtable (new SST
 *                                             files, a new WAL), printing acks;
 *                                             run under the sync_shadow shim
 *   storage_writer flushkill DIR              append (fast) with a small index
 *                                             flush size; in the 3rd background
 *                                             index flush, once the subject rows
 *                                             are on disk and before the type
 *                                             rows, print "paused" and block
 *                                             (the parent SIGKILLs us there)
 *
 * Every event's payload is derived from its batch number and position, so
 * that the parent can verify after a SIGKILL that each acknowledged event is
 * present and intact and that no batch is partial (see test_storage.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "storage/storage.h"
#include "storage/storage_testing.h"
#include "storage_pattern.h"

/* Under TSan: RocksDB is not instrumented, so its lock-free memtable
 * shows as races with RocksDB frames (see test_storage_threaded.c). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:librocksdb.so\ncalled_from_lib:librocksdb.so\n";
}

/* Flush hook of `flushkill`: the flusher thread stops for good in the
 * middle of its 3rd flush, with the subject rows and their mark persisted
 * (memtables flushed) and the type rows not written. */
static void pause_in_flush(storage *s, void *arg)
{
    int *calls = arg;
    if (++*calls < 3)
        return;
    mb_error err;
    if (storage_testing_flush_memtables(s, &err) != 0)
        fprintf(stderr, "storage_writer: %s\n", err.msg);
    printf("paused\n");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    mb_error err;
    storage *s;
    if (argc == 3 && strcmp(argv[1], "probe") == 0) {
        storage_options o = { .path = argv[2] };
        int rc = storage_open(&o, &s, &err);
        printf("open %d %s\n", rc, rc ? err.msg : "");
        if (rc == 0)
            storage_close(s);
        return 0;
    }
    int flushkill = argc == 3 && strcmp(argv[1], "flushkill") == 0;
    int powercut = argc == 3 && strcmp(argv[1], "powercut") == 0;
    if (!flushkill && !powercut && (argc != 4 || strcmp(argv[1], "append") != 0)) {
        fprintf(stderr, "usage: storage_writer append fast|durable DIR | probe DIR | "
                        "flushkill DIR | powercut DIR\n");
        return 2;
    }
    storage_options o = { .path = argv[argc - 1],
                          .durability = powercut || (!flushkill && strcmp(argv[2], "durable") == 0)
                                            ? STORAGE_DURABLE
                                            : STORAGE_FAST };
    if (storage_open(&o, &s, &err) != 0) {
        fprintf(stderr, "storage_writer: %s\n", err.msg);
        return 1;
    }
    static int flush_calls;
    if (flushkill) {
        storage_testing_set_index_flush(s, 50);
        storage_testing_set_flush_hook(s, pause_in_flush, &flush_calls);
    }
    if (powercut)
        storage_testing_set_index_flush(s, 200);
    /* Bounded: the parent kills us long before this. */
    for (uint64_t batch = 0; batch < 2000000; batch++) {
        storage_event evs[PATTERN_BATCH];
        char payloads[PATTERN_BATCH][PATTERN_PAYLOAD_MAX];
        for (int i = 0; i < PATTERN_BATCH; i++) {
            uint64_t seq = batch * PATTERN_BATCH + (uint64_t)i + 1;
            evs[i] = (storage_event){ .seq = seq,
                                      .type = "test.kill",
                                      .subject = i % 2 ? "odd" : "even",
                                      .time_ms = (int64_t)seq * 10,
                                      .payload = payloads[i],
                                      .payload_len = pattern_payload(seq, payloads[i]) };
        }
        if (storage_append(s, evs, PATTERN_BATCH, &err) != 0) {
            fprintf(stderr, "storage_writer: %s\n", err.msg);
            return 1;
        }
        if (powercut && batch % 40 == 39 && storage_testing_flush_memtables(s, &err) != 0) {
            fprintf(stderr, "storage_writer: %s\n", err.msg);
            return 1;
        }
        if (printf("ack %llu\n", (unsigned long long)evs[PATTERN_BATCH - 1].seq) < 0 ||
            fflush(stdout) != 0)
            return 1;
    }
    storage_close(s);
    return 0;
}
