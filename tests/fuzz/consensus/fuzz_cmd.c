/* Fuzz the command and result decoders, and apply whatever decodes to a
 * small state machine: apply must never crash, and a decoded command must
 * re-encode and decode to the same kind. */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    consensus_result res;
    consensus_result_decode(data, size, &res);
    const void *inner;
    size_t inner_len;
    if (consensus_entry_unframe(data, size, &inner, &inner_len) == MB_OK &&
        (inner_len > size || (inner_len > 0 && inner == NULL)))
        abort();

    consensus_cmd c;
    if (consensus_cmd_decode(data, size, &c, NULL) == MB_OK) {
        void *buf = NULL;
        size_t len = 0;
        if (consensus_cmd_encode(&c, NULL, &buf, &len, NULL) == MB_OK) {
            consensus_cmd d;
            if (consensus_cmd_decode(buf, len, &d, NULL) != MB_OK || d.kind != c.kind)
                abort();
            consensus_cmd_free(&d);
            free(buf);
        }
        consensus_cmd_free(&c);
    }

    /* Apply it after a node and a variable exist, so deeper paths run. */
    consensus_sm *sm = NULL;
    if (consensus_sm_new(NULL, &sm) != MB_OK)
        return 0;
    consensus_cmd n = { .kind = CONSENSUS_CMD_NODE_ADD };
    n.node.id = 1;
    consensus_sm_apply_cmd(sm, 1, &n, &res, NULL);
    consensus_cmd v = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "x" };
    v.spec.type = MB_VT_FLOAT;
    v.spec.max = 1;
    consensus_sm_apply_cmd(sm, 2, &v, &res, NULL);
    /* coordination (piece: agents/coord): an agent that can hold leases,
     * arrive at barriers and join elections (seeds use holder "a") */
    consensus_cmd pl = { .kind = CONSENSUS_CMD_AGENT_PLACE, .agent_id = "a", .agent_kind = "k" };
    pl.agent_node = 1;
    consensus_sm_apply_cmd(sm, 3, &pl, &res, NULL);
    consensus_effects fx;
    consensus_effects_init(&fx);
    consensus_sm_apply(sm, 4, data, size, &res, &fx);
    if (res.code == MB_OK && fx.n == 0)
        abort(); /* every successful command has an effect */
    consensus_sm_apply(sm, 5, data, size, &res, &fx);
    consensus_effects_free(&fx);
    consensus_sm_free(sm);
    return 0;
}
