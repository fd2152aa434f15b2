/* node/node.h: the mabeamd process context — the one libuv control loop
 * and everything it owns (configuration, logger, metrics and alerts, the
 * node's storage, the HTTP server, signal handlers), and the node-local
 * event log.
 *
 * Threads: node state is touched only on the control loop thread (the
 * thread that calls node_run), which also runs the HTTP server
 * (http_server.h). The config, logger and
 * metrics objects of node/core are thread-safe on their own. */
#ifndef MB_NODE_NODE_H
#define MB_NODE_NODE_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "node/api.h"
#include "node/core/config.h"
#include "node/core/log.h"
#include "node/core/telemetry.h"
#include "node/api_park.h"
#include "node/http_server.h"
#include "storage/storage.h"

#define MABEAMD_VERSION "0.1.0"

struct node_services; /* node/services.h: the agent runtime and its services */
struct repl;
struct consensus_raft;
struct node_coord;
struct api_mailbox;

typedef struct node {
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t alert_timer;
    uv_timer_t retention_timer;
    int handles_open; /* signals and timer initialised */

    nc_config *cfg; /* borrowed from main */
    nc_log *log;    /* borrowed from main */
    nc_metrics *metrics;
    nc_alerts *alerts;
    storage *store;
    http_server *http;
    api_router router;

    int lock_fd;
    char data_dir[4096];
    char addr_file[4200];
    char http_addr[300]; /* "127.0.0.1:7700", the bound port */
    uint64_t node_id;
    char node_name[256];
    int64_t start_wall_ms;
    uint64_t start_mono_ms;

    uint64_t cfg_sub_id;
    int cfg_subscribed;
    uint64_t cfg_seen_version;    /* changes up to here have been handled */
    api_park_list config_watches; /* parked GET /v1/config/watch (api_config.c) */

    /* HTTP metrics: per route (router index; the last is "unmatched") and
     * per status class 1xx..5xx. */
    nc_counter *http_requests[API_ROUTES_MAX + 1][5];
    nc_hist *http_latency[API_ROUTES_MAX + 1];
    nc_counter *events_written;
    nc_counter *events_pruned;
    nc_counter *http_handler_bugs; /* handlers that neither answered nor parked */
    nc_hist *event_log_append;     /* loop: one batch of replicated events, ns */

    struct node_services *services; /* NULL before start / after stop */

    int stopping;

    struct repl *repl;                 /* raft + mesh (node/replication.c) */
    struct consensus_raft *raft_spent; /* closed raft glue, freed after the loop ran dry */
    struct node_cluster *cluster;      /* agents' cluster ops (node/cluster_ops.c) */
    struct placement *placement;       /* cluster agents (node/placement.c) */
    api_park_list var_watches;         /* parked variable watches (api_vars.c) */

    /* proposals piece */
    struct node_proposals *proposals; /* node/proposals.c */
    api_park_list proposal_watches;   /* parked watches (api_proposals.c) */
    struct node_coord *coord;         /* lease/barrier expiry (node/coord.c) */
    struct api_mailbox *mailbox;      /* sender of API messages (node/api_mailbox.c) */
    struct studies *studies;          /* piece "studies": node/studies.c */
    api_park_list study_watches;      /* parked study watches (api_studies.c) */
} node;

/* Open the node: take the data directory lock, open storage, register
 * metrics and routes, start the HTTP server and the signal handlers, and
 * record a node.started event. `cfg` and `log` are borrowed and must
 * outlive the node. On error everything opened is released again (the node
 * must still be passed to node_close to release the loop).
 * Errors: MB_EBUSY (another mabeamd holds the data directory, or the HTTP
 * address is in use), MB_EIO, MB_EPERM, MB_EINVAL. */
int node_open(node *n, nc_config *cfg, nc_log *log, mb_error *err);

/* Run the control loop until the node stops (SIGTERM/SIGINT or node_stop). */
void node_run(node *n);

/* Begin a clean shutdown (loop thread): answer pending requests, stop the
 * HTTP server, record node.stopped, close the loop's handles. */
void node_stop(node *n);

/* Release everything after node_run returned (or after a failed
 * node_open). Returns the result of uv_loop_close (0 when every handle was
 * closed). */
int node_close(node *n);

/* Apply configuration changes made since the last call (after a runtime
 * set or a reload): record config.changed events and answer config
 * watchers. Loop thread. */
void node_config_changed(node *n);

/* Append one event to the node-local log. `payload` (may be NULL) is
 * borrowed and rendered as JSON. Loop thread. Errors are logged, not
 * returned: an event that cannot be written must not stop the node. */
void node_event(node *n, const char *type, const char *subject, const cJSON *payload);

/* Wall clock in ms since the epoch, and the loop's monotonic ms. */
int64_t node_wall_ms(void);

/* idle: the delay (1..period_ms) to the next multiple of `period_ms` of
 * `loop`'s time. Periodic timers armed with it fire in the same loop
 * iteration as every other one on a multiple of that period (the mesh's
 * failure-detector tick is on the 50 ms grid), instead of each waking the
 * loop on its own. */
static inline uint64_t node_aligned_delay(uv_loop_t *loop, uint64_t period_ms)
{
    return period_ms - uv_now(loop) % period_ms;
}

/* Registered by the API modules (api_config.c): answer every parked watch
 * whose from_version is now behind. */
void api_config_notify_watchers(node *n);

/* Registered by api_vars.c: variable `name` (borrowed) changed at `version`
 * (raft index); answer the parked watches of it. Loop thread. */
void api_vars_notify(node *n, const char *name, uint64_t version);

#endif /* MB_NODE_NODE_H */
