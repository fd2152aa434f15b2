/* tests/unit/node_fixture.h: one in-process node for unit tests that need
 * the whole daemon core (node_services, node_idle, node_eventlog): a
 * temporary data directory (its path in `dir`), free loopback ports for the
 * HTTP, mesh and raft listeners (tests run in parallel), 2 agent workers
 * and a log file node.log in that directory at `level`. On success the
 * caller owns *cfg, *log and the opened node (close all with
 * nf_node_close); -1 (with a message on stderr) if any step fails.
 * Header-only: include it once per test binary. */
#ifndef MB_TEST_NODE_FIXTURE_H
#define MB_TEST_NODE_FIXTURE_H

#include <stdio.h>

#include "node/node.h"
#include "mb_test.h"

static int nf_node_open(char *dir, size_t dir_size, const char *tag, nc_log_level level,
                        nc_config **cfg, nc_log **log, node *n)
{
    mb_error e;
    mb_error_clear(&e);
    if (mb_test_mkdtemp(dir, dir_size, tag) != 0) {
        fprintf(stderr, "mkdtemp failed\n");
        return -1;
    }
    char dd[300], lf[320], ha[64], ma[64], ra[64];
    snprintf(dd, sizeof(dd), "--data_dir=%s/data", dir);
    snprintf(lf, sizeof(lf), "--log_file=%s/node.log", dir);
    snprintf(ha, sizeof(ha), "--http_address=127.0.0.1:%d", mb_test_free_port());
    snprintf(ma, sizeof(ma), "--mesh_address=127.0.0.1:%d", mb_test_free_port());
    snprintf(ra, sizeof(ra), "--raft_address=127.0.0.1:%d", mb_test_free_port());
    char *argv[] = { dd, lf, ha, ma, ra, "--agent_workers=2" };
    nc_config_sources src = { .argc = 6, .argv = argv };
    if (nc_config_new(cfg, &e) != MB_OK || nc_config_load(*cfg, &src, &e) != MB_OK) {
        fprintf(stderr, "config: %s\n", e.msg);
        return -1;
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/node.log", dir);
    nc_log_options lo = { .level = level, .format = NC_LOG_FORMAT_TEXT, .path = path };
    if (nc_log_open(log, &lo, &e) != MB_OK) {
        fprintf(stderr, "log: %s\n", e.msg);
        return -1;
    }
    if (node_open(n, *cfg, *log, &e) != MB_OK) {
        fprintf(stderr, "node_open: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* A storage_event_cb counting the events into the int at `arg`. */
static inline int nf_count_events(const storage_event *ev, void *arg)
{
    (void)ev;
    (*(int *)arg)++;
    return 0;
}

/* Undo nf_node_open: stop and close the node (node_close's result is
 * returned), close the log, free the config, remove the directory. */
static int nf_node_close(char *dir, nc_config *cfg, nc_log *log, node *n)
{
    node_stop(n);
    int rc = node_close(n);
    nc_log_close(log);
    nc_config_free(cfg);
    mb_test_rmtree(dir);
    return rc;
}

#endif
