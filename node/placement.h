/* node/placement.h: cluster agents on this node — placement decisions,
 * level-triggered reconciliation of the replicated agents table with the
 * local agent runtime, generation fencing, failover of a dead node's
 * agents (leader), replicated checkpoints (periodic, on request, size
 * limited, batched) and drain. See docs/agents.md "Placement" and
 * docs/operations.md "Failover, drain and fencing".
 *
 * A cluster agent's id is its replicated name; the node that runs it
 * registers the local runtime agent under that name in namespace
 * PLACEMENT_NS.
 *
 * Threads: everything here runs on the control loop thread. */
#ifndef MB_NODE_PLACEMENT_H
#define MB_NODE_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/agent.h>
#include <mabeam/error.h>

#include "consensus/consensus.h"
#include "node/api.h"

struct node;
typedef struct placement placement;

/* Registry namespace of the local copies of cluster agents. */
#define PLACEMENT_NS "cluster"

/* Start placement for node `n` (borrowed; its services and replication
 * must be open) and store it in n->placement. MB_ENOMEM, MB_EIO. */
int placement_open(struct node *n, mb_error *err);

/* Stop the timers and answer parked drains with MB_ECLOSED; local copies
 * are left to the runtime's own stop. Frees itself once its handles are
 * closed (the loop must keep running). NULL is a no-op. */
void placement_close(placement *p);

/* The runtime saved a checkpoint of local agent `id` (blob borrowed);
 * replicated when the agent is a cluster agent. */
void placement_checkpoint_saved(placement *p, mb_agent_id id, const void *blob, size_t len);

/* How a new cluster agent is placed. */
typedef enum placement_mode {
    PLACEMENT_ANY = 0,         /* least loaded live node */
    PLACEMENT_NODE = 1,        /* the given node */
    PLACEMENT_SPREAD_LOAD = 2, /* same as ANY */
    PLACEMENT_SPREAD_CAP = 3,  /* live node with the fewest agents having `cap` */
} placement_mode;

/* Parse "any", "node:N" (or "N"), "spread:load", "spread:cap=X" (`s`
 * borrowed; cap is copied into cap_buf of cap_size bytes). MB_EINVAL. */
int placement_parse(const char *s, placement_mode *mode, uint64_t *node_id, char *cap_buf,
                    size_t cap_size, mb_error *err);

/* Choose the node for a new agent from the replicated table `sm`
 * (borrowed) and the failure detector: live = status up and, for peers,
 * not suspected. MB_ENOTFOUND (given node unknown), MB_ESTATE (not live
 * or no live node). */
int placement_choose(placement *p, const consensus_sm *sm, placement_mode mode, uint64_t node_id,
                     const char *cap, uint64_t *out, mb_error *err);

/* The local runtime id of cluster agent `name` when it runs here. */
int placement_local_id(placement *p, const char *name, mb_agent_id *out);

/* POST /v1/nodes/{id}/drain: mark node `node_id` draining (replicated),
 * then answer `c` (200, progress JSON) once every agent that was on it
 * runs elsewhere, or at once (202) when `wait` is 0. */
void placement_drain(placement *p, api_call *c, uint64_t node_id, int wait, uint64_t timeout_ms);

/* Progress of a drain of `node_id` as JSON (owned by the caller):
 * {"node","status","remaining","moving","done"}. */
cJSON *placement_drain_progress(placement *p, uint64_t node_id);

/* One replicated agent as JSON (owned by the caller). */
cJSON *placement_agent_json(const consensus_agent *a);

#endif /* MB_NODE_PLACEMENT_H */
