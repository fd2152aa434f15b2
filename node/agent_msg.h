/* node/agent_msg.h: the framing of an agent's message to an agent on
 * another node, as carried by the mesh's ordered agent channel
 * (mesh_send_agent): agent ids as 16 hex digits, payload = big-endian u32
 * tag then the message bytes (docs/cluster.md, "Delivery semantics").
 * Pure: no I/O, any thread. */
#ifndef MB_NODE_AGENT_MSG_H
#define MB_NODE_AGENT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/agent.h>

#define AGENT_MSG_TAG_BYTES 4u
#define AGENT_MSG_ID_CHARS  16u

/* `id` as 16 lower-case hex digits into buf (AGENT_MSG_ID_CHARS + 1). */
void agent_msg_id_text(mb_agent_id id, char *buf);

/* Parse exactly 16 hex digits (either case) of a non-zero id; 0 when the
 * text is anything else. `s` is borrowed (NUL-terminated). */
int agent_msg_id_parse(const char *s, mb_agent_id *out);

/* Write the tag into the first AGENT_MSG_TAG_BYTES of `buf`. */
void agent_msg_put_tag(unsigned char *buf, uint32_t tag);

/* A received message, checked (borrowed pointers into the input). */
typedef struct agent_msg {
    mb_agent_id from, to;
    uint32_t tag;
    const void *data;
    size_t len;
} agent_msg;

/* Decode and check what node `self_node` received from node `from_node`:
 * the receiving id must be of self_node, the sending id of from_node, the
 * payload (borrowed) at least the tag. NULL strings are refused. Returns
 * NULL on success, else the reason (a static string). */
const char *agent_msg_decode(uint64_t self_node, uint64_t from_node, const char *from_agent,
                             const char *to_agent, const void *payload, size_t len, agent_msg *out);

#endif /* MB_NODE_AGENT_MSG_H */
