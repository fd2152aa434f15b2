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

void sm_fixture_fresh(void)
{
    sm_fixture_teardown();
    sm_fixture_setup();
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

void place_voters(char **voters, uint32_t n)
{
    if (n > 0 && consensus_sm_node_get(sm, 1) == NULL)
        add_node(1);
    for (uint32_t i = 0; i < n; i++) {
        consensus_cmd pc = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                             .agent_id = voters[i],
                             .agent_kind = "voter",
                             .agent_node = 1 };
        if (consensus_sm_agent_get(sm, voters[i]) == NULL)
            run(&pc);
    }
}

static int effect_is(const consensus_effect *e, consensus_effect_kind kind, const char *type)
{
    return e->kind == kind && (type == NULL || (e->type != NULL && strcmp(e->type, type) == 0));
}

const consensus_effect *find_effect(consensus_effect_kind kind, const char *type)
{
    for (size_t i = 0; i < fx.n; i++)
        if (effect_is(&fx.items[i], kind, type))
            return &fx.items[i];
    return NULL;
}

size_t count_effects(consensus_effect_kind kind, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < fx.n; i++)
        n += effect_is(&fx.items[i], kind, type);
    return n;
}

void define_consensus_int(const char *name)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_VAR_DEFINE,
                        .name = (char *)name,
                        .policy = MB_POLICY_CONSENSUS };
    c.spec = (mb_var_spec){ .type = MB_VT_INT, .imin = 0, .imax = 100 };
    CU_ASSERT_EQUAL_FATAL(run(&c).code, MB_OK);
}

consensus_result place_agent(const char *id, const char *kind, uint64_t node, char **caps,
                             uint32_t ncaps)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                        .agent_id = (char *)id,
                        .agent_kind = (char *)kind,
                        .agent_config = "",
                        .agent_node = node,
                        .agent_caps = caps,
                        .n_agent_caps = ncaps };
    return run(&c);
}

consensus_result agent_status(const char *id, consensus_agent_status st)
{
    const consensus_agent *a = consensus_sm_agent_get(sm, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    consensus_cmd c = { .kind = CONSENSUS_CMD_AGENT_STATUS,
                        .agent_id = (char *)id,
                        .generation = a->generation,
                        .agent_status = st };
    return run(&c);
}

consensus_result vote(const char *id, const char *voter, int yes)
{
    consensus_cmd c = { .kind = CONSENSUS_CMD_PROPOSAL_VOTE,
                        .proposal_id = (char *)id,
                        .voter = (char *)voter,
                        .yes = yes };
    return run(&c);
}
