/* node/agent_msg.c: agent message framing across nodes (agent_msg.h). */
#include "node/agent_msg.h"

#include <inttypes.h>
#include <stdio.h>

void agent_msg_id_text(mb_agent_id id, char *buf)
{
    snprintf(buf, AGENT_MSG_ID_CHARS + 1, "%016" PRIx64, (uint64_t)id);
}

int agent_msg_id_parse(const char *s, mb_agent_id *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (s == NULL)
        return 0;
    for (; s[i] != '\0'; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0 || i >= AGENT_MSG_ID_CHARS)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    if (i != AGENT_MSG_ID_CHARS || v == 0)
        return 0;
    *out = v;
    return 1;
}

void agent_msg_put_tag(unsigned char *buf, uint32_t tag)
{
    buf[0] = (unsigned char)(tag >> 24);
    buf[1] = (unsigned char)(tag >> 16);
    buf[2] = (unsigned char)(tag >> 8);
    buf[3] = (unsigned char)tag;
}

const char *agent_msg_decode(uint64_t self_node, uint64_t from_node, const char *from_agent,
                             const char *to_agent, const void *payload, size_t len, agent_msg *out)
{
    if (!agent_msg_id_parse(to_agent, &out->to) || MB_AGENT_NODE(out->to) != self_node)
        return "bad receiving agent id";
    if (!agent_msg_id_parse(from_agent, &out->from) || MB_AGENT_NODE(out->from) != from_node)
        return "bad sending agent id";
    if (payload == NULL || len < AGENT_MSG_TAG_BYTES)
        return "message too short";
    const unsigned char *p = payload;
    out->tag = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    out->data = p + AGENT_MSG_TAG_BYTES;
    out->len = len - AGENT_MSG_TAG_BYTES;
    return NULL;
}
