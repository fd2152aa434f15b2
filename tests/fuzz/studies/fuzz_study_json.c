/* Fuzz the study JSON parser and the study command path: whatever parses
 * must encode, decode, apply to a state machine (or be refused), and the
 * state must snapshot, restore and snapshot to the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void apply(consensus_sm *sm, uint64_t index, const consensus_cmd *c)
{
    void *buf = NULL;
    size_t len = 0;
    consensus_result res;
    if (consensus_cmd_encode(c, NULL, &buf, &len, NULL) != MB_OK)
        abort();
    consensus_sm_apply(sm, index, buf, len, &res, NULL);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j == NULL)
        return 0;
    consensus_cmd c;
    if (consensus_study_from_json(j, 1000, &c, NULL) != MB_OK) {
        cJSON_Delete(j);
        return 0;
    }
    cJSON_Delete(j);
    void *buf = NULL;
    size_t len = 0;
    consensus_cmd d;
    if (consensus_cmd_encode(&c, NULL, &buf, &len, NULL) != MB_OK ||
        consensus_cmd_decode(buf, len, &d, NULL) != MB_OK || d.kind != CONSENSUS_CMD_STUDY_CREATE)
        abort();
    free(buf);
    consensus_cmd_free(&d);

    consensus_sm *sm = NULL;
    if (consensus_sm_new(NULL, &sm) != MB_OK)
        abort();
    consensus_cmd node = { .kind = CONSENSUS_CMD_NODE_ADD };
    node.node.id = 1;
    node.node.raft_addr = "127.0.0.1:1";
    node.node.mesh_addr = "";
    apply(sm, 1, &node);
    consensus_cmd var = { .kind = CONSENSUS_CMD_VAR_DEFINE, .name = "lr" };
    var.spec.type = MB_VT_FLOAT;
    var.spec.min = 0;
    var.spec.max = 1;
    apply(sm, 2, &var);
    apply(sm, 3, &c);
    const consensus_study *st = consensus_sm_study_get(sm, c.study->def.id);
    if (st != NULL) {
        /* one trial through its life: the low corner of the space */
        double x[CONSENSUS_STUDY_MAX_PARAMS];
        for (uint32_t i = 0; i < st->def.n_params; i++) {
            const mb_var_spec *s = &st->def.params[i].spec;
            x[i] = s->type == MB_VT_FLOAT ? s->min : s->type == MB_VT_INT ? (double)s->imin : 0;
        }
        consensus_study_cmd sc = { .study_id = st->def.id,
                                   .params = x,
                                   .n_params = st->def.n_params,
                                   .number = 1,
                                   .evaluator = "ev",
                                   .generation = 1,
                                   .node = 1,
                                   .status = CONSENSUS_TRIAL_COMPLETED,
                                   .value = 1.5 };
        consensus_cmd t = { .kind = CONSENSUS_CMD_TRIAL_SUGGEST, .study = &sc };
        apply(sm, 4, &t);
        t.kind = CONSENSUS_CMD_TRIAL_START;
        apply(sm, 5, &t);
        t.kind = CONSENSUS_CMD_TRIAL_FINISH;
        apply(sm, 6, &t);
        cJSON *o = NULL;
        if (consensus_study_to_json(st, 1, &o) != MB_OK)
            abort();
        cJSON_Delete(o);
    }
    void *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    consensus_sm *r = NULL;
    if (consensus_sm_snapshot(sm, NULL, &a, &la, NULL) != MB_OK ||
        consensus_sm_restore(a, la, &r, NULL) != MB_OK ||
        consensus_sm_snapshot(r, NULL, &b, &lb, NULL) != MB_OK || la != lb || memcmp(a, b, la) != 0)
        abort();
    free(a);
    free(b);
    consensus_sm_free(r);
    consensus_sm_free(sm);
    consensus_cmd_free(&c);
    return 0;
}
