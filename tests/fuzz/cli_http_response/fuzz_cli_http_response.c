/* Fuzz target of the mabeam CLI's HTTP response parser (the bytes a node,
 * or anything listening on the address, sends back). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    int st;
    size_t off, len;
    if (cli_http_parse_response(buf, size, &st, &off, &len) == MB_OK) {
        if (off > size || len > size - off)
            abort();
        cJSON *j = cJSON_ParseWithLength(buf + off, len);
        cJSON_Delete(j);
    }
    free(buf);
    return 0;
}
