/* The port-agent wire protocol (docs/port-protocol.md): decoding one line
 * the external process wrote, and encoding the lines the runtime writes.
 * Pure functions, no I/O: the decoder is fuzzed (tests/fuzz/port_proto). */
#ifndef MB_AGENTS_PORT_PROTO_H
#define MB_AGENTS_PORT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/agent.h>
#include <mabeam/error.h>
#include <mabeam/value.h>

#define PORT_MAX_LINE (1u << 20) /* longer lines are a protocol error */

typedef enum port_cmd_type {
    PORT_CMD_READY = 1,      /* init done */
    PORT_CMD_SEND = 2,       /* to, tag, data */
    PORT_CMD_LOG = 3,        /* level, text */
    PORT_CMD_CHECKPOINT = 4, /* data (decoded from base64) */
    PORT_CMD_VOTE = 5,       /* proposal, accept */
    PORT_CMD_SET = 6,        /* name, value */
    PORT_CMD_STOP = 7,       /* normal exit */
    PORT_CMD_ERROR = 8,      /* text: the agent reports a failure (a crash) */
    PORT_CMD_PROPOSE = 9,    /* name, value, ref: answered with "proposed" */
} port_cmd_type;

/* A decoded line. Owns its heap parts; release with port_cmd_free. */
typedef struct port_cmd {
    int type;
    mb_agent_id to;
    uint32_t tag;
    unsigned char *data; /* SEND, CHECKPOINT: len bytes (NUL-terminated too) */
    size_t len;
    int level;         /* LOG */
    char *text;        /* LOG, ERROR: message; SET, PROPOSE: variable name */
    uint64_t proposal; /* VOTE */
    int accept;        /* VOTE */
    uint64_t ref;      /* PROPOSE: the process's own number, echoed in the answer */
    mb_value value;    /* SET, PROPOSE */
} port_cmd;

/* Decode one line (without its newline; need not be NUL-terminated). On
 * error returns MB_EPROTO (or MB_ENOMEM) with a message in err and leaves
 * *out empty. */
int port_decode_line(const char *line, size_t len, port_cmd *out, mb_error *err);
void port_cmd_free(port_cmd *c);

/* Encoders: each returns a malloc'd NUL-terminated line ending in "\n"
 * (caller frees), or NULL when out of memory. */
char *port_encode_init(mb_agent_id self, const char *config, const void *ckpt, size_t ckpt_len);
char *port_encode_message(mb_agent_id from, uint32_t type, uint32_t tag, const void *data,
                          size_t len);
char *port_encode_variable(const char *name, const mb_value *v, uint64_t version);
char *port_encode_vote(const mb_proposal *p);
/* The answer to a PROPOSE: {"type":"proposed","ref":R,"proposal":ID} when
 * rc is MB_OK, else {"type":"proposed","ref":R,"error":"MB_...","msg":msg}. */
char *port_encode_proposed(uint64_t ref, uint64_t proposal, int rc, const char *msg);
char *port_encode_simple(const char *type); /* {"type":"checkpoint"} / "stop" */

/* Base64 (RFC 4648, with padding). decode returns MB_EPROTO on bad input;
 * *out is malloc'd (len+1 bytes, NUL-terminated). */
char *port_b64_encode(const void *data, size_t len);
int port_b64_decode(const char *s, size_t slen, unsigned char **out, size_t *len);

#endif /* MB_AGENTS_PORT_PROTO_H */
