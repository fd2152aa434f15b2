/* Fuzz target for node/agent_msg.c: an agent message received from
 * another node (ids and payload come from a peer). Input layout: 1 byte
 * from-node, 1 byte self-node, then from-id text, NUL, to-id text, NUL,
 * payload. A decoded message must lie inside the input and name ids of the
 * right nodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/agent_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t from_node = data[0], self_node = data[1];
    char *buf = malloc(size - 2 + 2);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 2, size - 2);
    buf[size - 2] = '\0';
    buf[size - 1] = '\0';
    const char *from = buf;
    const char *to = from + strlen(from) + 1;
    size_t used = (size_t)(to - buf) + strlen(to) + 1;
    const char *payload = used <= size - 2 ? buf + used : NULL;
    size_t len = used <= size - 2 ? size - 2 - used : 0;
    agent_msg m;
    if (agent_msg_decode(self_node, from_node, from, to, payload, len, &m) == NULL) {
        /* Checked in every build (NDEBUG too): a violation is a crash. */
        if (MB_AGENT_NODE(m.to) != self_node || MB_AGENT_NODE(m.from) != from_node ||
            len < AGENT_MSG_TAG_BYTES || m.len != len - AGENT_MSG_TAG_BYTES ||
            (const char *)m.data != payload + AGENT_MSG_TAG_BYTES)
            abort();
        char t[AGENT_MSG_ID_CHARS + 1];
        agent_msg_id_text(m.to, t);
        mb_agent_id back = 0;
        if (!agent_msg_id_parse(t, &back) || back != m.to)
            abort();
    }
    free(buf);
    return 0;
}
