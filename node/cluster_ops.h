/* node/cluster_ops.h: the agents' side of the cluster — mabeamd's
 * node_cluster_ops (node/services.h): variable get/set/watch for agents
 * through the replicated state machine (node/replication.h) and messages
 * to agents on other nodes over the mesh's ordered agent channel.
 * Semantics for agents: docs/node-services.md, "Agents and the cluster".
 *
 * Threads: node_cluster_open/close and the hooks below run on the control
 * loop thread. The node_cluster_ops functions run on agent worker threads:
 * they read a mutex-protected copy of the variables and queue work for
 * the loop (uv_async). */
#ifndef MB_NODE_CLUSTER_OPS_H
#define MB_NODE_CLUSTER_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

struct node;
typedef struct node_cluster node_cluster;

/* Create the cluster ops of node `n` (borrowed; its services and repl must
 * be open) and hand them to the agent runtime (node_services_set_cluster).
 * On success n->cluster is set. MB_ENOMEM, MB_EIO. */
int node_cluster_open(struct node *n, mb_error *err);

/* Withdraw the ops from the runtime (later calls fail with MB_EUNAVAIL),
 * refuse everything still queued and free the module from the loop once
 * its handles are closed. Call after repl_close (whose MB_ECLOSED results
 * arrive here) and before node_services_stop. NULL is a no-op. */
void node_cluster_close(node_cluster *c);

/* Apply hook (node/replication.c, for each CONSENSUS_FX_WATCH effect):
 * variable `name` (borrowed) changed at `version`; refresh the agents'
 * copy and call the var_changed callback of its local watchers. */
void node_cluster_var_changed(node_cluster *c, const char *name, uint64_t version);

/* Whether some local agent watches a variable (loop thread; 0 for NULL). */
int node_cluster_watching(const node_cluster *c);

/* Mesh hook: an agent message from node `from_node` (pointers borrowed
 * for the call) is delivered to the local agent it names. */
void node_cluster_agent_message(node_cluster *c, uint64_t from_node, const char *from_agent,
                                const char *to_agent, const void *payload, size_t len);

#endif /* MB_NODE_CLUSTER_OPS_H */
