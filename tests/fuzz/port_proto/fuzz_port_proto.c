/* Fuzz target: decode one port-protocol line, and base64-decode the input,
 * then re-encode what decoded. Must never crash, leak or read out of
 * bounds, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "agents/port_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    port_cmd c;
    mb_error err;
    if (port_decode_line((const char *)data, size, &c, &err) == 0) {
        if (c.type == PORT_CMD_SEND) {
            char *line = port_encode_message(c.to, MB_MSG_USER, c.tag, c.data, c.len);
            free(line);
        }
        if (c.type == PORT_CMD_PROPOSE) { /* both answers the node can give */
            free(port_encode_proposed(c.ref, c.ref + 1, MB_OK, NULL));
            free(port_encode_proposed(c.ref, 0, MB_EPERM, c.text));
        }
        port_cmd_free(&c);
    }
    unsigned char *out;
    size_t len;
    if (port_b64_decode((const char *)data, size, &out, &len) == 0) {
        char *again = port_b64_encode(out, len);
        free(again);
        free(out);
    }
    return 0;
}
