/* node/proposals.h: the node's side of multi-agent consensus on variables
 * (docs/proposals.md). When a proposal opens (CONSENSUS_FX_PROPOSAL_OPEN)
 * every node asks its LOCAL eligible agents — the voter ids registered in
 * namespace "cluster" on this node — through mb_runtime_vote_request;
 * their mb_vote answers come back through node_cluster_ops.vote and are
 * replicated in batches (PROPOSAL_VOTES, at most CONSENSUS_VOTE_BATCH_MAX
 * votes each, one batch per loop turn) with repl_submit. Agents propose
 * with mb_propose (node_cluster_ops.propose).
 *
 * Numeric ids: agents see a proposal as a uint64 (mb_proposal.id). A
 * proposal whose string id is a decimal number (the cluster names
 * proposals after the raft index of their open; agents' proposals get a
 * decimal id from this node) has that number; any other id maps to the
 * raft index of its open.
 *
 * Threads: start/stop/hooks on the control loop; the ops functions on
 * agent worker threads (they take the module's mutex and wake the loop
 * with uv_async). */
#ifndef MB_NODE_PROPOSALS_H
#define MB_NODE_PROPOSALS_H

#include <stdint.h>

#include <mabeam/error.h>

#include "consensus/consensus.h"
#include "node/services.h"

struct node;
typedef struct node_proposals node_proposals;

/* Start the module for node `n` (borrowed; its services must be started;
 * n->repl is used when votes are submitted). Sets n->proposals. The ops
 * below find the module from the calling agent's id (its node id bits),
 * not from their ctx, which belongs to the wiring's table. MB_ENOMEM,
 * MB_EIO. */
int node_proposals_start(struct node *n, mb_error *err);

/* Stop: refuse further votes and proposals (MB_ECLOSED), close the
 * handles, and free the module once every submitted batch has been
 * answered (the loop must keep running). Call after node_services_stop
 * (no agent thread calls in any more). Clears n->proposals. NULL is a
 * no-op. */
void node_proposals_stop(node_proposals *p);

/* Set ops->propose and ops->vote (the other members are untouched). */
void node_proposals_fill_ops(node_cluster_ops *ops);

/* Apply hook (node/replication.c): the effects of entry `index`
 * (borrowed). Asks local voters of opened proposals, forgets closed ones
 * and answers the API's watchers of them. */
void node_proposals_on_effects(node_proposals *p, uint64_t index, const consensus_effects *fx);

/* The numeric id of proposal `p` (see above). Pure. */
uint64_t node_proposal_num(const consensus_proposal *p);
/* Same from a string id and the index of its open. */
uint64_t node_proposal_num_of(const char *id, uint64_t opened);

/* Voters of a proposal by capability: the ids of the cluster agents in
 * `sm` (borrowed) that are placed or running and have every capability
 * of caps[0..ncaps). *out is a malloc'd array of borrowed strings (valid
 * until the next apply), *n its length. MB_ENOMEM. */
int node_proposals_voters_by_caps(const consensus_sm *sm, const char *const *caps, size_t ncaps,
                                  const char ***out, uint32_t *n);

/* The notices owed to an agent that opened a proposal on this node
 * (loop thread only). Its OPENED notice follows the open's result and
 * its DECIDED notice the decision's apply here, and on a follower the
 * decision can be applied first: the open's result comes back from the
 * leader over the mesh, the votes and the decision through raft. The
 * entry is listed before the open is submitted, so either order gives
 * OPENED, then DECIDED, each once. */
typedef struct node_agent_open {
    struct node_agent_open *next;
    char id[24];  /* the proposal's id (decimal) */
    uint64_t who; /* the proposing agent */
    uint64_t num; /* the id as agents see it */
    char *name;   /* the variable (owned) */
    int told_open;
} node_agent_open;

#define NODE_TELL_OPENED  1u
#define NODE_TELL_DECIDED 2u
#define NODE_TELL_REFUSED 4u

/* List an open about to be submitted. MB_ENOMEM. */
int node_agent_open_add(node_agent_open **head, const char *id, uint64_t who, uint64_t num,
                        const char *name);
/* The open's result came: `ok` or not. Returns the notice to send for
 * *entry: NODE_TELL_OPENED (once; the entry stays listed for the
 * decision), NODE_TELL_REFUSED (the entry is taken out of the list: the
 * caller frees it), or 0 with *entry NULL when the decision came first
 * and was told already. */
unsigned node_agent_open_on_result(node_agent_open **head, const char *id, int ok,
                                   node_agent_open **entry);
/* Proposal `id` was decided here. Returns NODE_TELL_DECIDED, with
 * NODE_TELL_OPENED first if its result has not come yet, and takes the
 * entry out of the list (the caller frees it); 0 and NULL when no agent
 * of this node opened it. */
unsigned node_agent_open_on_close(node_agent_open **head, const char *id, node_agent_open **entry);
void node_agent_open_free(node_agent_open *e);

/* Registered by api_proposals.c: proposal `id` closed at `index`;
 * `close_json` (borrowed, may be NULL) is the payload of its
 * proposal.close event. Answers parked watches of it. */
void api_proposals_notify(struct node *n, const char *id, uint64_t index, const char *close_json);

#endif /* MB_NODE_PROPOSALS_H */
