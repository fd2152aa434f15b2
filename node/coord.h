/* node/coord.h: the node side of the coordination primitives (leases,
 * barriers, elections; consensus/coord.c holds the replicated tables).
 * While this node leads raft, a timer proposes COORD_EXPIRE once a lease
 * or a barrier deadline is due (the timer runs only while some exist); applied coordination effects
 * addressed to agents of this node are delivered to them as messages
 * (<mabeam/coord.h>). Control loop thread only. */
#ifndef MB_NODE_COORD_H
#define MB_NODE_COORD_H

#include <stdint.h>

#include <mabeam/error.h>

#include "consensus/consensus.h"

struct node;

/* How often the leader looks for due leases and barriers (ms). */
#define NODE_COORD_TICK_MS 50

/* Start the expiry timer of node `n` (borrowed; its loop and n->repl must
 * be open) and set n->coord. MB_ENOMEM. */
int node_coord_start(struct node *n, mb_error *err);

/* Stop the timer; the module frees itself once its close callback and any
 * expiry still being replicated have finished (the loop must keep
 * running). Sets n->coord to NULL. NULL n->coord is a no-op. */
void node_coord_stop(struct node *n);

/* Deliver the coordination effects of one applied entry (`fx` borrowed)
 * to the local agents they name. */
void node_coord_effects(struct node *n, const consensus_effects *fx);

/* Whether the expiry timer is armed: only while the replicated tables
 * hold a lease or a barrier with a deadline (`n` borrowed; tests). */
int node_coord_ticking(const struct node *n);

/* Expiry proposals made by this node so far (tests, metrics). */
uint64_t node_coord_expiries(const struct node *n);

#endif /* MB_NODE_COORD_H */
