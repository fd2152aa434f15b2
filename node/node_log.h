/* node/node_log.h: the daemon's one adapter onto storage/ for events — the
 * node-local log (non-replicated node events: started, stopped, config
 * changed, alerts) and the cluster event log (replicated commands). All
 * storage calls for events go through here, so that a change of the
 * storage API touches one file. */
#ifndef MB_NODE_NODE_LOG_H
#define MB_NODE_NODE_LOG_H

#include "storage/storage.h"

/* Append one event to the node-local log; ev->seq is assigned (written
 * back). Strings and payload are borrowed for the call. */
int node_log_append(storage *s, storage_event *ev, mb_error *err);

/* Query the node-local log (cluster == 0) or the cluster event log
 * (cluster != 0) with the semantics of storage_query. */
int node_log_query(storage *s, int cluster, const struct storage_query *q, storage_event_cb cb,
                   void *arg, uint64_t *next_cursor, mb_error *err);

/* Statistics of the node-local log (cluster == 0) or the cluster log. */
int node_log_stats(storage *s, int cluster, storage_stats *out, mb_error *err);

#endif /* MB_NODE_NODE_LOG_H */
