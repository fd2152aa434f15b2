/* node/services.h: the daemon's implementation of the agent runtime's node
 * services (mb_services, <mabeam/agent_runtime.h>) and the life of the
 * node's agent runtime: registry of agent names and capabilities, agent
 * lifecycle events into the node-local event log, agent telemetry, the node
 * log for agents, clocks, randomness and checkpoint storage.
 *
 * Variables, proposals/votes and sends to other nodes belong to the
 * cluster wiring (raft + mesh). It plugs in through node_cluster_ops; while
 * none is set those calls fail with MB_EUNAVAIL, "cluster services not
 * available on this node".
 *
 * Threads: the mb_services functions run on agent worker threads. They
 * never touch control-loop state directly: lifecycle events are queued and
 * written by the loop (uv_async). node_services_start/stop and the
 * accessors run on the loop thread. */
#ifndef MB_NODE_SERVICES_H
#define MB_NODE_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/agent_runtime.h>
#include <mabeam/error.h>

struct node;
typedef struct node_services node_services;

/* What the cluster wiring provides to agents. Every function may be NULL
 * (that call then fails with MB_EUNAVAIL). They are called from agent
 * worker threads and must be thread-safe; `ctx` is passed back. Borrowed
 * arguments are valid during the call only. Semantics as the matching
 * mb_services members. */
typedef struct node_cluster_ops {
    void *ctx;
    int (*send_remote)(void *ctx, mb_agent_id from, mb_agent_id to, uint32_t tag, const void *data,
                       size_t len);
    int (*var_get)(void *ctx, const char *name, mb_value *out, uint64_t *version);
    int (*var_set)(void *ctx, mb_agent_id who, const char *name, const mb_value *value);
    int (*var_watch)(void *ctx, mb_agent_id who, const char *name, uint64_t from_version);
    int (*propose)(void *ctx, mb_agent_id who, const char *name, const mb_value *value,
                   uint64_t *proposal_id);
    int (*vote)(void *ctx, mb_agent_id who, uint64_t proposal_id, int accept);
    int (*send_name)(void *ctx, mb_agent_id from, const char *name, uint32_t tag, const void *data,
                     size_t len);
} node_cluster_ops;

/* Message of the MB_EUNAVAIL answer while no cluster ops are set. */
#define NODE_CLUSTER_UNAVAILABLE "cluster services not available on this node"

/* Name and namespace of the node's root supervisor, which supervises the
 * agents spawned through the API unless told otherwise. */
#define NODE_ROOT_SUPERVISOR_NS   "system"
#define NODE_ROOT_SUPERVISOR_NAME "root"

/* Start the services and the agent runtime (workers from agent_workers)
 * and spawn the root supervisor. `n` is borrowed and must have its loop,
 * storage, metrics and log open. On success n->services is set. Loop
 * thread. Errors: MB_EINVAL (node_id above 65535), MB_ENOMEM, runtime
 * start errors. On failure nothing is left running. */
int node_services_start(struct node *n, mb_error *err);

/* Stop the runtime (every agent is killed, threads joined), write the
 * queued lifecycle events, close the async handle and free everything.
 * Storage must still be open. Loop thread; NULL is a no-op. */
void node_services_stop(node_services *s);

/* Set (or with NULL clear) the cluster operations; the table is copied,
 * its ctx must outlive the runtime or the next call. Any thread. */
void node_services_set_cluster(node_services *s, const node_cluster_ops *ops);

/* The runtime (borrowed; valid until node_services_stop). */
mb_runtime *node_services_runtime(node_services *s);
/* The id of the root supervisor, or 0 when it is gone (escalated). */
mb_agent_id node_services_root(node_services *s);

/* Registry lookups for the API (any thread). */
int node_services_lookup(node_services *s, const char *ns, const char *name, mb_agent_id *out);
/* Ids of the agents of `ns` having capability `cap`; returns how many
 * match (fills up to max). */
size_t node_services_with_cap(node_services *s, const char *ns, const char *cap, mb_agent_id *out,
                              size_t max);

/* Write what the agent workers queued (lifecycle events, checkpoints)
 * now instead of at the next wake-up. Loop thread. */
void node_services_flush(node_services *s);

/* Storage key of an agent's last checkpoint ("agent/ckpt/<16 hex>"). */
void node_services_ckpt_key(mb_agent_id id, char *buf, size_t size);

#endif /* MB_NODE_SERVICES_H */
