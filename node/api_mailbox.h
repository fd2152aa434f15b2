/* node/api_mailbox.h: the sender of messages that come in through the API
 * (POST /v1/agents/{id}/messages, `mabeam agent send`). Such a message has
 * a real sender: the node's "api" agent (registered as system/api), which
 * takes and counts replies; or, when the caller waits for the reply, a
 * one-shot reply agent whose first incoming message answers the waiting
 * HTTP call (docs/api.md). Control loop thread unless stated. */
#ifndef MB_NODE_API_MAILBOX_H
#define MB_NODE_API_MAILBOX_H

#include <stdint.h>

#include <mabeam/agent.h>

#include "node/api.h"

struct node;
typedef struct api_reply_slot api_reply_slot;

#define API_MAILBOX_NS   "system"
#define API_MAILBOX_NAME "api"
#define API_REPLY_KIND   "api_reply"
#define API_REPLY_MAX_MS 300000

/* The id of the node's "api" agent, spawned on first use (the sender of
 * messages whose reply nobody waits for). MB_EUNAVAIL without a runtime,
 * spawn errors. */
int api_mailbox_sender(struct node *n, mb_agent_id *out, mb_error *err);

/* A one-shot reply agent for one request: *from is the id to send as,
 * *slot (owned by the module) is handed to api_mailbox_wait or
 * api_mailbox_cancel. */
int api_mailbox_open(struct node *n, mb_agent_id *from, api_reply_slot **slot, mb_error *err);

/* Park call `c` (borrowed until answered) until the reply agent of `slot`
 * receives a message (200 {"id","tag","bytes","reply":{"from","tag",
 * "data" | "data_b64","bytes"}}) or `wait_ms` passes (504 MB_ETIMEDOUT).
 * `sent_to`/`tag`/`bytes` describe the request for the answer. Answers
 * the call itself on every path. */
void api_mailbox_wait(struct node *n, api_reply_slot *slot, api_call *c, uint64_t wait_ms,
                      mb_agent_id sent_to, uint32_t tag, size_t bytes);

/* Drop a slot that will not be waited on (its agent is stopped). */
void api_mailbox_cancel(struct node *n, api_reply_slot *slot);

/* Replies the "api" agent took (nobody waited for them). Any thread. */
uint64_t api_mailbox_dropped(const struct node *n);

/* Release the module after the agent runtime has stopped (node_stop);
 * closes its async handle (the loop must keep running). */
void api_mailbox_close(struct node *n);

#endif /* MB_NODE_API_MAILBOX_H */
