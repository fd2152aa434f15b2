/* Fuzz target: node config file text. Parses it with nc_config_parse_text
 * and runs every known key's value through the schema's checks (type
 * parsers, address, duration, size, enum, alert rules); also feeds the
 * whole input to the address/duration/size parsers as one string. Must
 * never crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/core/config.h"

static int entry_cb(void *arg, int line, const char *key, const char *value, mb_error *err)
{
    (void)arg;
    (void)line;
    const nc_config_key *k = nc_config_key_find(key);
    if (k == NULL) {
        (void)nc_config_key_suggest(key);
        return MB_OK;
    }
    (void)nc_config_check_value(k, value, err);
    return MB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mb_error err;
    mb_error_clear(&err);
    (void)nc_config_parse_text((const char *)data, size, entry_cb, NULL, &err);

    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char host[64];
    uint16_t port;
    int64_t ms;
    uint64_t bytes;
    (void)nc_config_parse_address(s, host, sizeof(host), &port, &err);
    (void)nc_config_parse_duration_ms(s, &ms);
    (void)nc_config_parse_size(s, &bytes);
    const nc_config_key *schema = nc_config_schema();
    (void)nc_config_check_value(&schema[NC_CFG_SEEDS], s, &err);
    free(s);
    return 0;
}
