/* Fuzz the JSON parsers: variable definitions and values of every type.
 * Whatever parses must validate, encode as a command, and map back to JSON
 * that parses to the same value. */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j == NULL)
        return 0;
    consensus_cmd c;
    if (consensus_define_from_json(j, &c, NULL) == MB_OK) {
        if (c.value.type != MB_VT_NONE &&
            mb_value_validate(c.name, &c.spec, &c.value, NULL) != MB_OK)
            abort();
        void *buf = NULL;
        size_t len = 0;
        if (consensus_cmd_encode(&c, NULL, &buf, &len, NULL) == MB_OK) {
            consensus_cmd d;
            if (consensus_cmd_decode(buf, len, &d, NULL) != MB_OK ||
                !mb_var_spec_equal(&c.spec, &d.spec) || !mb_value_equal(&c.value, &d.value))
                abort();
            consensus_cmd_free(&d);
            free(buf);
        }
        consensus_cmd_free(&c);
    }
    for (int t = MB_VT_FLOAT; t <= MB_VT_TENSOR; t++) {
        mb_value v;
        if (consensus_value_from_json(j, (mb_vtype)t, "x", &v, NULL) != MB_OK)
            continue;
        cJSON *out = NULL;
        if (consensus_value_to_json(&v, &out) == MB_OK) {
            mb_value w;
            if (consensus_value_from_json(out, (mb_vtype)t, "x", &w, NULL) != MB_OK)
                abort();
            /* Floats may not round-trip NaN bit patterns through text. */
            mb_value_free(&w);
            cJSON_Delete(out);
        }
        mb_value_free(&v);
    }
    cJSON_Delete(j);
    return 0;
}
