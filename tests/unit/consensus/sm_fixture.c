/* tests/unit/consensus/sm_fixture.c: see sm_fixture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "sm_fixture.h"

consensus_sm *sm;
consensus_effects fx;
uint64_t next_index;

int sm_fixture_setup(void)
{
    next_index = 0;
    consensus_effects_init(&fx);
    return consensus_sm_new(NULL, &sm);
}

int sm_fixture_teardown(void)
{
    consensus_sm_free(sm);
    consensus_effects_free(&fx);
    sm = NULL;
    return 0;
}

consensus_result run(const consensus_cmd *c)
{
    consensus_result res;
    void *buf = NULL;
    size_t len = 0;
    mb_error e;
    consensus_effects_clear(&fx);
    if (consensus_cmd_encode(c, NULL, &buf, &len, &e) != MB_OK) {
        memset(&res, 0, sizeof(res));
        res.code = e.code;
        snprintf(res.msg, sizeof(res.msg), "%s", e.msg);
        return res;
    }
    consensus_sm_apply(sm, ++next_index, buf, len, &res, &fx);
    free(buf);
    return res;
}

size_t count_events(const char *type)
{
    size_t k = 0;
    for (size_t i = 0; i < fx.n; i++)
        k += fx.items[i].kind == CONSENSUS_FX_EVENT && fx.items[i].type != NULL &&
             strcmp(fx.items[i].type, type) == 0;
    return k;
}

void add_node(uint64_t id)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_NODE_ADD };
    c.node.id = id;
    c.node.raft_addr = "127.0.0.1:9000";
    c.node.mesh_addr = "";
    c.node.api_addr = "";
    CU_ASSERT_EQUAL_FATAL(run(&c).code, MB_OK);
}
