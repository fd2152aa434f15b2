/* Fuzz target of the HTTP server's request-head parsing (node/http_parse.c:
 * http_request_head_end, http_request_head_parse), which sees raw bytes
 * from any client: the input is what a connection sent. Neither may crash,
 * read outside the buffer or leak; every string of a parsed head must be
 * NUL-terminated inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/http_parse.h"

static size_t sink;

static void touch(const char *s, const char *buf, size_t len)
{
    if (s == NULL)
        return;
    if (s < buf || s >= buf + len)
        abort(); /* a pointer outside the parsed buffer */
    sink += strlen(s);
}

static void parse_copy(const uint8_t *data, size_t len)
{
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return;
    memcpy(buf, data, len);
    buf[len] = 'X'; /* not part of the head: must never be read as one */
    http_request_head h;
    if (http_request_head_parse(buf, len, &h) == MB_OK) {
        sink += strlen(h.method);
        touch(h.uri, buf, len);
        touch(h.content_length, buf, len);
        touch(h.transfer_encoding, buf, len);
        touch(h.authorization, buf, len);
        touch(h.expect, buf, len);
        touch(h.connection, buf, len);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t end = http_request_head_end((const char *)data, size);
    if (end > size)
        abort();
    if (end > 0)
        parse_copy(data, end);
    parse_copy(data, size); /* a head cut anywhere must be refused cleanly */
    return 0;
}
