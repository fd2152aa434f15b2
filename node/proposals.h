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

/* Registered by api_proposals.c: proposal `id` closed at `index`;
 * `close_json` (borrowed, may be NULL) is the payload of its
 * proposal.close event. Answers parked watches of it. */
void api_proposals_notify(struct node *n, const char *id, uint64_t index, const char *close_json);

#endif /* MB_NODE_PROPOSALS_H */
