/* node/coord.c: the leader's expiry tick for leases and barriers, and the
 * delivery of coordination effects to local agents (node/coord.h). */
#include "node/coord.h"

#include <stdlib.h>
#include <string.h>

#include <mabeam/coord.h>

#include "node/node.h"
#include "node/replication.h"
#include "node/services.h"

typedef struct node_coord {
    node *n;
    uv_timer_t timer;
    uv_check_t check;    /* idle: starts or stops the timer (plan_cb) */
    int check_closed;    /* the check's close callback ran */
    uint64_t planned_at; /* state machine index the timer was planned for */
    int inflight;        /* a COORD_EXPIRE is being replicated */
    int stopping;        /* node_coord_stop was called */
    int timer_closed;    /* the timer's close callback ran */
    uint64_t expiries;   /* proposals made */
} node_coord;

static void coord_maybe_free(node_coord *c)
{
    if (c->stopping && c->timer_closed && c->check_closed && !c->inflight)
        free(c);
}

static void expire_done(void *arg, const consensus_result *res)
{
    node_coord *c = arg;
    c->inflight = 0;
    if (!c->stopping && res->code != MB_OK && res->code != MB_ESTATE)
        NC_LOGKV(c->n->log, NC_LOG_DEBUG, "coord", "lease/barrier expiry not applied",
                 NC_F_STR("error", res->msg));
    coord_maybe_free(c);
}

static void tick_cb(uv_timer_t *t)
{
    node_coord *c = t->data;
    node *n = c->n;
    if (c->inflight || n->repl == NULL || !repl_is_leader(n->repl))
        return;
    int64_t due = consensus_sm_coord_next_due(repl_sm(n->repl));
    int64_t now = node_wall_ms();
    if (due == 0 || due > now)
        return;
    consensus_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = CONSENSUS_CMD_COORD_EXPIRE;
    cmd.by = "coord-expiry";
    cmd.coord.now_ms = now;
    if (repl_submit(n->repl, &cmd, 2000, expire_done, c) == MB_OK) {
        c->inflight = 1;
        c->expiries++;
    }
}

static void timer_closed_cb(uv_handle_t *h)
{
    node_coord *c = h->data;
    c->timer_closed = 1;
    coord_maybe_free(c);
}

static void check_closed_cb(uv_handle_t *h)
{
    node_coord *c = h->data;
    c->check_closed = 1;
    coord_maybe_free(c);
}

/* idle: the tick runs only while some lease or barrier can expire. Leases
 * and barriers change only by applied entries, so the plan is made again
 * after each loop iteration that applied some (a uv_check, no wake-up). */
static void plan_cb(uv_check_t *h)
{
    node_coord *c = h->data;
    node *n = c->n;
    if (c->stopping || n->repl == NULL)
        return;
    const consensus_sm *sm = repl_sm(n->repl);
    uint64_t applied = consensus_sm_applied_index(sm);
    if (applied == c->planned_at && c->planned_at != 0)
        return;
    c->planned_at = applied;
    int want = consensus_sm_coord_next_due(sm) != 0;
    if (want && !uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, tick_cb, NODE_COORD_TICK_MS, NODE_COORD_TICK_MS);
    else if (!want)
        uv_timer_stop(&c->timer);
}

int node_coord_ticking(const node *n)
{
    return n->coord != NULL && uv_is_active((const uv_handle_t *)&n->coord->timer);
}

int node_coord_start(node *n, mb_error *err)
{
    node_coord *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return mb_errorf(err, MB_ENOMEM, "start coordination timer: out of memory");
    c->n = n;
    uv_timer_init(&n->loop, &c->timer);
    c->timer.data = c;
    uv_check_init(&n->loop, &c->check);
    c->check.data = c;
    uv_check_start(&c->check, plan_cb);
    n->coord = c;
    return MB_OK;
}

void node_coord_stop(node *n)
{
    node_coord *c = n->coord;
    if (c == NULL)
        return;
    n->coord = NULL;
    c->stopping = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
    uv_check_stop(&c->check);
    uv_close((uv_handle_t *)&c->check, check_closed_cb);
}

uint64_t node_coord_expiries(const node *n)
{
    return n->coord != NULL ? n->coord->expiries : 0;
}

static uint32_t tag_of(consensus_effect_kind k)
{
    switch (k) {
    case CONSENSUS_FX_LEASE_GRANTED:
        return MB_TAG_COORD_LEASE_GRANTED;
    case CONSENSUS_FX_LEASE_LOST:
        return MB_TAG_COORD_LEASE_LOST;
    case CONSENSUS_FX_BARRIER_PASSED:
        return MB_TAG_COORD_BARRIER_PASSED;
    case CONSENSUS_FX_BARRIER_TIMED_OUT:
        return MB_TAG_COORD_BARRIER_TIMED_OUT;
    case CONSENSUS_FX_LEADER_GAINED:
        return MB_TAG_COORD_LEADER_GAINED;
    case CONSENSUS_FX_LEADER_LOST:
        return MB_TAG_COORD_LEADER_LOST;
    default:
        return 0;
    }
}

void node_coord_effects(node *n, const consensus_effects *fx)
{
    if (n->services == NULL || n->stopping)
        return;
    mb_runtime *rt = node_services_runtime(n->services);
    for (size_t i = 0; i < fx->n; i++) {
        const consensus_effect *e = &fx->items[i];
        uint32_t tag = tag_of(e->kind);
        if (tag == 0 || e->node_id != n->node_id || e->subject == NULL)
            continue;
        mb_agent_id id;
        if (node_services_lookup(n->services, "cluster", e->subject, &id) != MB_OK)
            continue; /* not (or no longer) running here */
        const char *pl = e->payload != NULL ? e->payload : "{}";
        if (mb_runtime_deliver(rt, MB_AGENT_NONE, id, tag, pl, strlen(pl)) != MB_OK)
            NC_LOGKV(n->log, NC_LOG_DEBUG, "coord", "coordination message not delivered",
                     NC_F_STR("agent", e->subject), NC_F_STR("about", e->type));
    }
}
