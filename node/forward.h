/* node/forward.h: the wire format of writes that a follower forwards to the
 * raft leader in batches (mesh method M_PROPOSE_BATCH of
 * node/replication.c; docs/consensus.md §4 "Forwarding"): one request
 * carries up to FWD_BATCH_MAX encoded commands, its answer one encoded
 * result per command, in the same order. Both are protobuf
 * (consensus/proto/forward.proto). Pure: no I/O, any thread. */
#ifndef MB_NODE_FORWARD_H
#define MB_NODE_FORWARD_H

#include <stddef.h>

#include "consensus/consensus.h"

#define FWD_BATCH_MAX   256u
#define FWD_BATCH_BYTES (1u << 20) /* commands of one batch, above: a new batch */

/* One encoded command (borrowed). */
typedef struct fwd_item {
    const void *data;
    size_t len;
} fwd_item;

/* Encode `n` (1..FWD_BATCH_MAX) commands (borrowed) into a malloc'd buffer
 * *out the caller frees. MB_EINVAL for a bad n, MB_ENOMEM. */
int fwd_batch_encode(const fwd_item *cmds, size_t n, void **out, size_t *out_len);

/* A decoded batch: its items point into it. */
typedef struct fwd_batch fwd_batch;

/* Decode a batch received from a peer (borrowed bytes). On success *out
 * (free with fwd_batch_free) holds 1..FWD_BATCH_MAX non-empty commands;
 * MB_EPROTO for anything else, MB_ENOMEM. */
int fwd_batch_decode(const void *buf, size_t len, fwd_batch **out);
size_t fwd_batch_count(const fwd_batch *b);
/* The i-th command (i < count), valid until fwd_batch_free. */
fwd_item fwd_batch_item(const fwd_batch *b, size_t i);
void fwd_batch_free(fwd_batch *b);

/* Encode `n` results (borrowed) into a malloc'd buffer *out the caller
 * frees. MB_ENOMEM. */
int fwd_results_encode(const consensus_result *res, size_t n, void **out, size_t *out_len);

/* Decode the answer to a batch of `n` commands into out[0..n-1]: exactly n
 * well-formed results, else MB_EPROTO (out then undefined). */
int fwd_results_decode(const void *buf, size_t len, size_t n, consensus_result *out);

#endif
