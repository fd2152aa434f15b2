/* node/replication.h: the replicated part of mabeamd — raft (consensus/)
 * and the NNG mesh (cluster/) on the node's control loop. Bootstraps or
 * joins the cluster, applies committed entries into the replicated event
 * log, forwards writes and linearizable reads from followers to the
 * leader with bounded retries, and answers the cluster view.
 *
 * Threads: everything here runs on the control loop thread. */
#ifndef MB_NODE_REPLICATION_H
#define MB_NODE_REPLICATION_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#include "consensus/consensus.h"
#include "node/api.h"
#include "node/node_log.h"

struct node;
typedef struct repl repl;

/* Raft log entry index -> first event sequence of that entry in the
 * replicated event log (seq = index * REPL_SEQ_PER_ENTRY + i). The same
 * sequence is the same event on every node. */
#define REPL_SEQ_PER_ENTRY 1024u

/* The cluster-log sequence of the i-th event effect (of type `type`,
 * borrowed) of the entry at raft `index`. The "state.restore" marker of a
 * snapshot install (at the snapshot's index, whose own events this node
 * never wrote) takes the entry's last slot, index * N + N - 1, so that it
 * never has the seq of another node's event. Pure. */
uint64_t repl_event_seq(uint64_t index, size_t i, const char *type);

/* Open raft + mesh for node `n` (borrowed; must outlive the module) and
 * store the module in n->repl. Errors: MB_EINVAL (configuration), MB_EIO,
 * MB_EBUSY (address in use). On error n->repl stays NULL. */
int repl_open(struct node *n, mb_error *err);

/* Begin the ordered close: a leader first transfers leadership, then raft
 * closes (pending proposals are answered), then the mesh. The module frees
 * itself from the loop; the loop must keep running. Call after the HTTP
 * server has been closed. NULL is a no-op. */
void repl_close(repl *r);

/* The local state machine (stale-local reads; borrowed). */
const consensus_sm *repl_sm(const repl *r);

/* Whether this node is the raft leader now (0 for NULL or closing). */
int repl_is_leader(const repl *r);

/* idle: the period of repl's housekeeping tick now (ms): 20 while some
 * write, read or leave is open, 250 otherwise (`r` borrowed; tests). */
uint64_t repl_tick_ms(const repl *r);
/* Followers learn that an entry committed only from the leader's next
 * append or heartbeat, and libraft 0.15 sends none when the commit index
 * moves: they would apply a change up to one heartbeat late. On the
 * leader, this sends a heartbeat round now (consensus_raft_send_commit:
 * no log entry), once the entries in flight have committed, and again
 * for followers still storing them. Called for changes someone waits for
 * on other nodes (forwarded writes, proposals). No-op on followers or a
 * one-node cluster. Loop thread. */
void repl_commit_nudge(repl *r);
/* raftperf2: repl_commit_nudge only when some follower has watchers
 * (parked API long-polls or agents' variable watches), as each follower
 * tells the leader every second while it has some (docs/consensus.md §4
 * "Commit nudges"). Without watchers a change costs one raft entry, not
 * two. Loop thread. */
void repl_commit_nudge_watched(repl *r);

struct mesh;
/* The node's mesh endpoint (borrowed; valid until repl_close). Only
 * mesh_send_agent may be called on it from other threads. */
struct mesh *repl_mesh(repl *r);

/* Completion of a write or read for the API layer. `res` says the outcome
 * (res->code 0 = success; version set for writes); `json` is the read's
 * JSON text (NULL for writes or errors). Called once with the call still
 * unanswered; it must answer it. Borrowed for the call. */
typedef void (*repl_done_fn)(struct node *n, api_call *c, const consensus_result *res,
                             const char *json, void *arg);

/* Replicate `cmd` (borrowed; encoded now). When cmd->client_id is 0 an
 * idempotency id is assigned, so retries after an election never apply it
 * twice. The call is parked; `done` runs with the result, or the call is
 * answered 503 MB_ENOQUORUM when write_timeout passes. On a follower the
 * answer waits until the change is applied locally (read-your-writes). */
void repl_write(repl *r, api_call *c, consensus_cmd *cmd, repl_done_fn done, void *arg);

/* Completion of repl_submit: `res` (borrowed for the call) is the
 * outcome, res->code 0 = applied (res->version = the raft index of the
 * change). */
typedef void (*repl_submit_cb)(void *arg, const consensus_result *res);

/* Replicate `cmd` (borrowed, encoded now) from inside the node (no HTTP
 * call): forwarded to the leader when this node is a follower, retried
 * with the same idempotency id across leader changes (an id is assigned
 * when cmd->client_id is 0), `cb` called exactly once on the loop thread,
 * never from inside repl_submit: code 0 (or the command's own error, e.g.
 * MB_ECONSTRAINT, MB_ECONFLICT) once the change is applied locally (if
 * the deadline passes after the commit but before the local apply, the
 * commit's result is given then), MB_ENOQUORUM after timeout_ms (0 =
 * write_timeout; the outcome may then be unknown), MB_ECLOSED at
 * shutdown. Loop thread only. Returns MB_OK (then cb will fire), or an
 * error now and cb never fires: MB_ECLOSED (closing), MB_EINVAL (the
 * command does not encode), MB_ENOMEM. */
int repl_submit(repl *r, consensus_cmd *cmd, uint64_t timeout_ms, repl_submit_cb cb, void *arg);

/* Build the encoded command of a write from the local state `sm`
 * (borrowed): on MB_OK *buf (malloc'd, owned by the op) and *len are set
 * and an idempotency id must be in it; MB_ENOTFOUND when the variable is
 * not known here (yet); any other code fails the write with res->msg. */
typedef int (*repl_prepare_fn)(struct node *n, const consensus_sm *sm, void *arg, void **buf,
                               size_t *len, consensus_result *res);

/* As repl_write, but the command is built by `prep` (with `prep_arg`,
 * released with prep_free, always called). When `var` (borrowed; may be
 * NULL) is not known on this node yet, the leader is asked first and the
 * op waits until this node has applied it, so a write on a follower right
 * after a definition elsewhere works. */
void repl_write_prepare(repl *r, api_call *c, const char *var, repl_prepare_fn prep, void *prep_arg,
                        void (*prep_free)(void *), repl_done_fn done, void *arg);

/* Linearizable read of variable `name` (borrowed; NULL = the list of all
 * variables) through a leader barrier, forwarded when this node is a
 * follower. `json` is the variable as JSON, or {"vars":[...]}. */
void repl_read(repl *r, api_call *c, const char *name, repl_done_fn done, void *arg);

/* GET /v1/cluster: answers `c` with every node's role and indexes. */
void repl_cluster_status(repl *r, api_call *c);

/* POST /v1/cluster/leave: this node leaves the cluster (transferring
 * leadership first), answers `c`, then stops. */
void repl_leave(repl *r, api_call *c);

/* placement: this node's raft status (role, leader, commit and applied
 * indexes). Loop thread. (repl_peer_status, below, gives the failure
 * detector's view of a peer.) */
void repl_raft_status(repl *r, consensus_status *out);

/* Query the replicated event log (node_log_query with cluster = 1) as of
 * everything applied so far: the events of entries applied in this loop
 * iteration are batched and written after the poll phase, so they are
 * written first. `r` is not NULL. Every reader of the replicated log goes through here (a
 * proposal watch that looked between the apply of its close and that write
 * answered "not found"). */
int repl_log_query(repl *r, const struct storage_query *q, storage_event_cb cb, void *arg,
                   uint64_t *next_cursor, mb_error *err);

/* A fresh idempotency id of this process. */
void repl_new_id(repl *r, uint64_t *client_id, uint64_t *seq);

/* Map (client-chosen request id string) -> idempotency id. Pure. */
void repl_request_id(const char *request_id, uint64_t *client_id, uint64_t *seq);

/* piece "studies": this node's id (repl_is_leader is above), and how the
 * failure detector sees peer `node_id` (0 alive, 1 suspect, 2 down, -1
 * unknown; this node is always alive). */
uint64_t repl_node_id(const repl *r);
int repl_peer_status(const repl *r, uint64_t node_id);

/* Failure-detector transitions so far (any peer, any direction): changes
 * when some repl_peer_status answer may have changed. Loop thread. */
uint64_t repl_peer_changes(const repl *r);

#endif /* MB_NODE_REPLICATION_H */
