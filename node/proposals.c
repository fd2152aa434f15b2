/* node/proposals.c: vote requests to local agents, vote batches and agent
 * proposals through the replicated state machine (see proposals.h and
 * docs/proposals.md). */
#include "node/proposals.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mabeam/proposal.h>

#include "node/node.h"
#include "node/replication.h"

#define NS_CLUSTER          "cluster"
#define SWEEP_MS            500          /* ask voters that started after the open */
#define SUBMIT_TIMEOUT_MS   0            /* repl's write_timeout */
#define SUBMIT_ATTEMPTS     3            /* a batch that failed is sent again this often */
#define AGENT_DEADLINE_MS   30000        /* agents' proposals */
#define AGENT_PROPOSAL_BASE (1ull << 52) /* < 2^53: exact in JSON (port agents) */

/* One local voter asked about a proposal. */
typedef struct asked {
    mb_agent_id aid;
    char *voter; /* the replicated agent id */
    int answered;
} asked;

/* An open proposal this node tracks (the loop creates and drops them;
 * agent threads read them under the mutex). */
typedef struct tracked {
    struct tracked *next;
    char *id;
    uint64_t num;  /* numeric id agents see */
    asked *voters; /* sorted by aid */
    size_t n, cap;
} tracked;

/* A vote waiting to be replicated. */
typedef struct pending_vote {
    char *proposal_id;
    char *voter;
    int yes;
    unsigned attempts;
} pending_vote;

/* An agent's proposal waiting for the loop. */
typedef struct agent_prop {
    struct agent_prop *next;
    mb_agent_id who;
    char *name;
    mb_value value;
    uint64_t num;
} agent_prop;

/* One submitted batch. */
typedef struct batch {
    node_proposals *p;
    pending_vote *votes;
    uint32_t n;
} batch;

struct node_proposals {
    node *n;
    pthread_mutex_t mu; /* tracked, queue, props, closed */
    tracked *tracked;
    pending_vote *queue;
    size_t nq, capq;
    agent_prop *props;
    int closed;
    uint64_t next_num; /* agents' proposal numbers */
    uv_async_t async;
    uv_timer_t sweep;
    int handles;   /* open handles */
    unsigned refs; /* batches and opens in flight + 1 while running */
    uint64_t sent_batches, sent_votes;
    node_agent_open *agent_opens; /* loop only: notices owed to proposing agents */
    node_proposals *next_module;
    int registered;
};

/* The modules of this process by node id (one in mabeamd; tests may run
 * several nodes in one process). The ops find theirs from the agent id,
 * whose high 16 bits are the node id: their ctx belongs to the wiring. */
static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static node_proposals *modules;

static void module_unref(node_proposals *p);

static void modules_remove(node_proposals *p)
{
    pthread_mutex_lock(&modules_mu);
    for (node_proposals **pp = &modules; *pp != NULL; pp = &(*pp)->next_module)
        if (*pp == p) {
            *pp = p->next_module;
            break;
        }
    p->registered = 0;
    pthread_mutex_unlock(&modules_mu);
}

/* The module of the node that runs agent `who`; NULL when none. Valid
 * while that node's agents run (the module stops after them). */
static node_proposals *module_of(mb_agent_id who)
{
    pthread_mutex_lock(&modules_mu);
    node_proposals *p = modules;
    while (p != NULL && (p->n->node_id & 0xFFFF) != MB_AGENT_NODE(who))
        p = p->next_module;
    pthread_mutex_unlock(&modules_mu);
    return p;
}

/* ---- numeric ids ---- */

uint64_t node_proposal_num_of(const char *id, uint64_t opened)
{
    uint64_t v = 0;
    if (id == NULL || id[0] == '\0' || strlen(id) > 20)
        return opened;
    for (const char *s = id; *s; s++) {
        if (*s < '0' || *s > '9')
            return opened;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return opened;
        v = v * 10 + d;
    }
    return v != 0 ? v : opened;
}

uint64_t node_proposal_num(const consensus_proposal *p)
{
    return node_proposal_num_of(p->id, p->opened);
}

/* ---- tracking (loop thread writes, under the mutex) ---- */

static void tracked_free(tracked *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->voters[i].voter);
    free(t->voters);
    free(t->id);
    free(t);
}

static tracked *tracked_find_locked(node_proposals *p, uint64_t num)
{
    for (tracked *t = p->tracked; t != NULL; t = t->next)
        if (t->num == num)
            return t;
    return NULL;
}

static asked *asked_find(tracked *t, mb_agent_id aid)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->voters[mid].aid == aid)
            return &t->voters[mid];
        if (t->voters[mid].aid < aid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Insert (aid, voter) keeping the order; 0 when it was there already. */
static int asked_insert(tracked *t, mb_agent_id aid, const char *voter, int *err)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->voters[mid].aid == aid)
            return 0;
        if (t->voters[mid].aid < aid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        asked *v = realloc(t->voters, cap * sizeof(*v));
        if (v == NULL) {
            *err = MB_ENOMEM;
            return 0;
        }
        t->voters = v;
        t->cap = cap;
    }
    char *s = strdup(voter);
    if (s == NULL) {
        *err = MB_ENOMEM;
        return 0;
    }
    memmove(&t->voters[lo + 1], &t->voters[lo], (t->n - lo) * sizeof(asked));
    t->voters[lo] = (asked){ .aid = aid, .voter = s };
    t->n++;
    return 1;
}

/* Ask the local agents among the voters of `cp` that have not voted and
 * were not asked yet. */
static void ask_local_voters(node_proposals *p, const consensus_proposal *cp)
{
    node *n = p->n;
    if (n->services == NULL)
        return;
    mb_runtime *rt = node_services_runtime(n->services);
    uint64_t num = node_proposal_num(cp);
    pthread_mutex_lock(&p->mu);
    tracked *t = tracked_find_locked(p, num);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL || (t->id = strdup(cp->id)) == NULL) {
            free(t);
            pthread_mutex_unlock(&p->mu);
            return;
        }
        t->num = num;
        t->next = p->tracked;
        p->tracked = t;
    }
    pthread_mutex_unlock(&p->mu);
    mb_proposal mp = { .id = num,
                       .variable = cp->variable,
                       .value = &cp->value,
                       .proposer = 0,
                       .deadline_ms = cp->deadline_ms > 0 ? (uint64_t)cp->deadline_ms : 0 };
    for (uint32_t i = 0; i < cp->n_voters; i++) {
        if (cp->votes[i] != CONSENSUS_VOTE_NONE)
            continue;
        mb_agent_id aid;
        if (node_services_lookup(n->services, NS_CLUSTER, cp->voters[i], &aid) != MB_OK)
            continue;
        int err = MB_OK;
        pthread_mutex_lock(&p->mu);
        int fresh = asked_insert(t, aid, cp->voters[i], &err);
        pthread_mutex_unlock(&p->mu);
        if (!fresh)
            continue;
        int rc = mb_runtime_vote_request(rt, aid, &mp);
        if (rc != MB_OK)
            NC_LOGKV(n->log, NC_LOG_WARN, "proposals", "cannot ask a voter",
                     NC_F_STR("proposal", cp->id), NC_F_STR("voter", cp->voters[i]),
                     NC_F_STR("error", mb_strerror(rc)));
    }
}

static void forget(node_proposals *p, const char *id)
{
    pthread_mutex_lock(&p->mu);
    for (tracked **pp = &p->tracked; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            tracked *t = *pp;
            *pp = t->next;
            tracked_free(t);
            break;
        }
    pthread_mutex_unlock(&p->mu);
}

/* ---- vote batches (loop thread) ---- */

static void pending_free(pending_vote *v)
{
    free(v->proposal_id);
    free(v->voter);
}

static void submit_votes(node_proposals *p, pending_vote *votes, size_t n);

static void batch_done_cb(void *arg, const consensus_result *res)
{
    batch *b = arg;
    node_proposals *p = b->p;
    if (res->code != MB_OK && res->code != MB_ECONFLICT) {
        /* (MB_ECONFLICT: every vote came after its decision; nothing to do.)
         * Outcome unknown or not committed in time: send the votes that
         * still count again (a vote applied twice is skipped). */
        int again = !p->closed && res->code != MB_ECLOSED && p->n->repl != NULL;
        const consensus_sm *sm = again ? repl_sm(p->n->repl) : NULL;
        size_t keep = 0;
        for (uint32_t i = 0; i < b->n; i++) {
            pending_vote *v = &b->votes[i];
            const consensus_proposal *cp =
                sm != NULL ? consensus_sm_proposal_get(sm, v->proposal_id) : NULL;
            if (cp != NULL && ++v->attempts < SUBMIT_ATTEMPTS)
                b->votes[keep++] = *v;
            else
                pending_free(v);
        }
        NC_LOGKV(p->n->log, NC_LOG_WARN, "proposals", "vote batch not applied",
                 NC_F_STR("error", res->msg[0] ? res->msg : mb_strerror(res->code)),
                 NC_F_U64("votes", b->n), NC_F_U64("resent", keep));
        if (keep > 0)
            submit_votes(p, b->votes, keep);
        else
            free(b->votes);
    } else {
        for (uint32_t i = 0; i < b->n; i++)
            pending_free(&b->votes[i]);
        free(b->votes);
    }
    free(b);
    module_unref(p);
}

/* Submit `votes` (taken over: the array and its strings) in batches of
 * at most CONSENSUS_VOTE_BATCH_MAX. */
static void submit_votes(node_proposals *p, pending_vote *votes, size_t n)
{
    for (size_t off = 0; off < n;) {
        uint32_t k =
            (uint32_t)(n - off < CONSENSUS_VOTE_BATCH_MAX ? n - off : CONSENSUS_VOTE_BATCH_MAX);
        batch *b = calloc(1, sizeof(*b));
        pending_vote *mine = malloc(k * sizeof(*mine));
        consensus_vote_item *items = calloc(k, sizeof(*items));
        int rc = b != NULL && mine != NULL && items != NULL ? MB_OK : MB_ENOMEM;
        if (rc == MB_OK) {
            memcpy(mine, votes + off, k * sizeof(*mine));
            b->p = p;
            b->votes = mine;
            b->n = k;
            for (uint32_t i = 0; i < k; i++)
                items[i] = (consensus_vote_item){ mine[i].proposal_id, mine[i].voter, mine[i].yes };
            consensus_cmd cmd = { .kind = CONSENSUS_CMD_PROPOSAL_VOTES,
                                  .votes = items,
                                  .n_votes = k,
                                  .by = p->n->node_name };
            p->refs++;
            rc = p->n->repl != NULL
                     ? repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, batch_done_cb, b)
                     : MB_EUNAVAIL;
            if (rc != MB_OK)
                p->refs--;
        }
        free(items);
        if (rc != MB_OK) {
            NC_LOGKV(p->n->log, NC_LOG_WARN, "proposals", "cannot submit votes",
                     NC_F_STR("error", mb_strerror(rc)), NC_F_U64("votes", k));
            for (uint32_t i = 0; i < k; i++)
                pending_free(&votes[off + i]);
            free(mine);
            free(b);
        } else {
            p->sent_batches++;
            p->sent_votes += k;
        }
        off += k;
    }
    free(votes);
}

/* ---- agents' proposals (loop thread) ---- */

/* An open in flight: who proposed it is in its node_agent_open entry. */
typedef struct open_req {
    node_proposals *p;
    char id[24];
} open_req;

/* ---- the notices owed to proposing agents (pure; loop thread) ---- */

int node_agent_open_add(node_agent_open **head, const char *id, uint64_t who, uint64_t num,
                        const char *name)
{
    node_agent_open *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return MB_ENOMEM;
    }
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->who = who;
    e->num = num;
    e->next = *head;
    *head = e;
    return MB_OK;
}

static node_agent_open **agent_open_slot(node_agent_open **head, const char *id)
{
    node_agent_open **pp = head;
    while (*pp != NULL && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

unsigned node_agent_open_on_result(node_agent_open **head, const char *id, int ok,
                                   node_agent_open **entry)
{
    node_agent_open **pp = agent_open_slot(head, id);
    node_agent_open *e = *entry = *pp;
    if (e == NULL)
        return 0; /* decided first: OPENED and DECIDED told already */
    if (!ok) {
        *pp = e->next;
        e->next = NULL;
        return NODE_TELL_REFUSED;
    }
    if (e->told_open)
        return 0;
    e->told_open = 1;
    return NODE_TELL_OPENED;
}

unsigned node_agent_open_on_close(node_agent_open **head, const char *id, node_agent_open **entry)
{
    node_agent_open **pp = agent_open_slot(head, id);
    node_agent_open *e = *entry = *pp;
    if (e == NULL)
        return 0;
    *pp = e->next;
    e->next = NULL;
    return NODE_TELL_DECIDED | (e->told_open ? 0 : NODE_TELL_OPENED);
}

void node_agent_open_free(node_agent_open *e)
{
    if (e != NULL) {
        free(e->name);
        free(e);
    }
}

/* failover2: tell the proposing agent (MB_TAG_PROPOSAL_*, JSON `j`, which
 * this consumes). A gone agent is not an error. */
static void tell_agent(node_proposals *p, mb_agent_id who, uint32_t tag, cJSON *j)
{
    char *text = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    mb_runtime *rt = p->n->services != NULL ? node_services_runtime(p->n->services) : NULL;
    if (text != NULL && rt != NULL &&
        mb_runtime_deliver(rt, MB_AGENT_NONE, who, tag, text, strlen(text)) != MB_OK)
        NC_LOGKV(p->n->log, NC_LOG_DEBUG, "proposals", "proposal notice not delivered",
                 NC_F_U64("agent", who));
    free(text);
}

static void tell_refused(node_proposals *p, mb_agent_id who, uint64_t num, const char *name,
                         int code, const char *msg)
{
    NC_LOGKV(p->n->log, NC_LOG_WARN, "proposals", "an agent's proposal was not opened",
             NC_F_STR("variable", name), NC_F_U64("agent", who), NC_F_STR("error", msg));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "proposal", (double)num);
    cJSON_AddStringToObject(j, "variable", name);
    cJSON_AddStringToObject(j, "code", mb_errname(code));
    cJSON_AddStringToObject(j, "error", msg);
    tell_agent(p, who, MB_TAG_PROPOSAL_REFUSED, j);
}

static void tell_opened(node_proposals *p, const node_agent_open *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "proposal", (double)e->num);
    cJSON_AddStringToObject(j, "id", e->id);
    cJSON_AddStringToObject(j, "variable", e->name);
    tell_agent(p, e->who, MB_TAG_PROPOSAL_OPENED, j);
}

static void open_done_cb(void *arg, const consensus_result *res)
{
    open_req *o = arg;
    node_proposals *p = o->p;
    node_agent_open *e = NULL;
    unsigned tell = node_agent_open_on_result(&p->agent_opens, o->id, res->code == MB_OK, &e);
    if (tell & NODE_TELL_REFUSED) {
        tell_refused(p, e->who, e->num, e->name, res->code,
                     res->msg[0] ? res->msg : mb_strerror(res->code));
        node_agent_open_free(e);
    } else if (tell & NODE_TELL_OPENED) {
        tell_opened(p, e);
    }
    free(o);
    module_unref(p);
}

/* A proposal closed (`payload` = its proposal.close event, may be NULL):
 * an agent of this node that opened it hears the decision, after OPENED
 * if the open's result is still on its way. */
static void agent_open_decided(node_proposals *p, const char *id, const char *payload)
{
    node_agent_open *e = NULL;
    unsigned tell = node_agent_open_on_close(&p->agent_opens, id, &e);
    if (tell & NODE_TELL_OPENED)
        tell_opened(p, e);
    if (tell & NODE_TELL_DECIDED) {
        cJSON *j = payload != NULL ? cJSON_Parse(payload) : NULL;
        if (j == NULL)
            j = cJSON_CreateObject();
        cJSON_DeleteItemFromObjectCaseSensitive(j, "proposal");
        cJSON_AddNumberToObject(j, "proposal", (double)e->num);
        tell_agent(p, e->who, MB_TAG_PROPOSAL_DECIDED, j);
    }
    node_agent_open_free(e);
}

/* Voters of an agent's proposal: every live cluster agent. */
static void open_agent_proposal(node_proposals *p, agent_prop *ap)
{
    const consensus_sm *sm = p->n->repl != NULL ? repl_sm(p->n->repl) : NULL;
    const consensus_var *var = sm != NULL ? consensus_sm_var_get(sm, ap->name) : NULL;
    open_req *o = calloc(1, sizeof(*o));
    size_t na = sm != NULL ? consensus_sm_agent_count(sm) : 0;
    char **voters = calloc(na > 0 ? na : 1, sizeof(char *));
    int rc = o != NULL && voters != NULL ? MB_OK : MB_ENOMEM;
    uint32_t nv = 0;
    for (size_t i = 0; rc == MB_OK && i < na && nv < CONSENSUS_MAX_VOTERS; i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        /* The studies' own service agents never vote: counting them would
         * keep a majority out of reach. */
        if (a->kind != NULL &&
            (strcmp(a->kind, "optimiser") == 0 || strcmp(a->kind, "evaluator") == 0))
            continue;
        if (a->status == CONSENSUS_AGENT_PLACED || a->status == CONSENSUS_AGENT_RUNNING)
            voters[nv++] = a->id;
    }
    if (rc == MB_OK && (var == NULL || nv == 0))
        rc = var == NULL ? MB_ENOTFOUND : MB_ENOAGENT;
    if (rc == MB_OK) {
        o->p = p;
        snprintf(o->id, sizeof(o->id), "%llu", (unsigned long long)ap->num);
        char by[40];
        snprintf(by, sizeof(by), "agent:%016llx", (unsigned long long)ap->who);
        consensus_cmd cmd = { .kind = CONSENSUS_CMD_PROPOSAL_OPEN,
                              .proposal_id = o->id,
                              .name = ap->name,
                              .value = ap->value,
                              .by = by,
                              .rule = CONSENSUS_RULE_MAJORITY,
                              .voters = voters,
                              .n_voters = nv,
                              .deadline_ms = node_wall_ms() + AGENT_DEADLINE_MS };
        /* Listed first: the decision may be applied here before the
         * open's result comes back (node_agent_open). */
        rc = node_agent_open_add(&p->agent_opens, o->id, ap->who, ap->num, ap->name);
        if (rc == MB_OK) {
            p->refs++;
            rc = repl_submit(p->n->repl, &cmd, SUBMIT_TIMEOUT_MS, open_done_cb, o);
            if (rc != MB_OK) {
                p->refs--;
                node_agent_open *e = NULL;
                (void)node_agent_open_on_result(&p->agent_opens, o->id, 0, &e);
                node_agent_open_free(e);
            }
        }
    }
    free(voters);
    if (rc != MB_OK) {
        tell_refused(p, ap->who, ap->num, ap->name, rc,
                     rc == MB_ENOTFOUND  ? "no such variable"
                     : rc == MB_ENOAGENT ? "no live cluster agent to vote"
                                         : mb_strerror(rc));
        free(o);
    }
}

static void agent_prop_free(agent_prop *ap)
{
    free(ap->name);
    mb_value_free(&ap->value);
    free(ap);
}

/* ---- loop callbacks ---- */

static void async_cb(uv_async_t *h)
{
    node_proposals *p = h->data;
    pthread_mutex_lock(&p->mu);
    pending_vote *q = p->queue;
    size_t nq = p->nq;
    p->queue = NULL;
    p->nq = p->capq = 0;
    agent_prop *props = p->props;
    p->props = NULL;
    pthread_mutex_unlock(&p->mu);
    if (nq > 0)
        submit_votes(p, q, nq);
    else
        free(q);
    while (props != NULL) {
        agent_prop *next = props->next;
        open_agent_proposal(p, props);
        agent_prop_free(props);
        props = next;
    }
}

static void sweep_cb(uv_timer_t *t)
{
    node_proposals *p = t->data;
    /* idle: one-shot on the SWEEP_MS grid (woken with the other timers) */
    uv_timer_start(&p->sweep, sweep_cb, node_aligned_delay(&p->n->loop, SWEEP_MS), 0);
    if (p->n->repl == NULL)
        return;
    const consensus_sm *sm = repl_sm(p->n->repl);
    /* Forget proposals closed while this node did not see the effect
     * (effects of entries replayed after a restart are not handed on). */
    pthread_mutex_lock(&p->mu);
    for (tracked **pp = &p->tracked; *pp != NULL;) {
        if (consensus_sm_proposal_get(sm, (*pp)->id) == NULL) {
            tracked *gone = *pp;
            *pp = gone->next;
            tracked_free(gone);
        } else {
            pp = &(*pp)->next;
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < consensus_sm_proposal_count(sm); i++)
        ask_local_voters(p, consensus_sm_proposal_at(sm, i));
}

void node_proposals_on_effects(node_proposals *p, uint64_t index, const consensus_effects *fx)
{
    int pushed = 0;
    if (p == NULL || p->closed)
        return;
    for (size_t i = 0; i < fx->n; i++) {
        const consensus_effect *e = &fx->items[i];
        if (e->kind == CONSENSUS_FX_PROPOSAL_OPEN) {
            const consensus_proposal *cp =
                consensus_sm_proposal_get(repl_sm(p->n->repl), e->subject);
            if (cp != NULL) /* (it may have been decided in a later entry already) */
                ask_local_voters(p, cp);
        } else if (e->kind == CONSENSUS_FX_PROPOSAL_CLOSE) {
            forget(p, e->subject);
            /* Followers apply the decision now, not at the next heartbeat. */
            if (!pushed) {
                repl_commit_nudge(p->n->repl);
                pushed = 1;
            }
            /* The close event of this proposal in the same entry. */
            const char *payload = NULL;
            for (size_t k = 0; k < fx->n; k++) {
                const consensus_effect *ev = &fx->items[k];
                if (ev->kind == CONSENSUS_FX_EVENT && strcmp(ev->type, "proposal.close") == 0 &&
                    ev->payload != NULL) {
                    cJSON *j = cJSON_Parse(ev->payload);
                    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
                    int match = cJSON_IsString(id) && strcmp(id->valuestring, e->subject) == 0;
                    cJSON_Delete(j);
                    if (match) {
                        payload = ev->payload;
                        break;
                    }
                }
            }
            api_proposals_notify(p->n, e->subject, index, payload);
            agent_open_decided(p, e->subject, payload);
        }
    }
}

/* ---- ops (agent worker threads) ---- */

static int op_vote(void *ctx, mb_agent_id who, uint64_t proposal_id, int accept)
{
    (void)ctx;
    node_proposals *p = module_of(who);
    if (p == NULL)
        return MB_EUNAVAIL;
    int rc = MB_OK, wake = 0;
    pthread_mutex_lock(&p->mu);
    tracked *t = p->closed ? NULL : tracked_find_locked(p, proposal_id);
    asked *a = t != NULL ? asked_find(t, who) : NULL;
    if (p->closed)
        rc = MB_ECLOSED;
    else if (t == NULL)
        rc = MB_ENOTFOUND; /* decided already, or never open */
    else if (a == NULL)
        rc = MB_EPERM; /* this agent is not an eligible voter of it */
    else if (a->answered)
        rc = MB_EEXIST;
    if (rc == MB_OK && p->nq == p->capq) {
        size_t cap = p->capq ? p->capq * 2 : 64;
        pending_vote *q = realloc(p->queue, cap * sizeof(*q));
        if (q == NULL)
            rc = MB_ENOMEM;
        else {
            p->queue = q;
            p->capq = cap;
        }
    }
    if (rc == MB_OK) {
        pending_vote v = { .proposal_id = strdup(t->id), .voter = strdup(a->voter), .yes = accept };
        if (v.proposal_id == NULL || v.voter == NULL) {
            pending_free(&v);
            rc = MB_ENOMEM;
        } else {
            p->queue[p->nq++] = v;
            a->answered = 1;
            wake = p->nq == 1;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (wake)
        uv_async_send(&p->async);
    return rc;
}

static int op_propose(void *ctx, mb_agent_id who, const char *name, const mb_value *value,
                      uint64_t *proposal_id)
{
    (void)ctx;
    node_proposals *p = module_of(who);
    if (p == NULL)
        return MB_EUNAVAIL;
    mb_error e;
    if (mb_var_name_check(name, &e) != MB_OK)
        return MB_EINVAL;
    agent_prop *ap = calloc(1, sizeof(*ap));
    if (ap == NULL || (ap->name = strdup(name)) == NULL ||
        mb_value_copy(&ap->value, value) != MB_OK) {
        if (ap != NULL)
            free(ap->name);
        free(ap);
        return MB_ENOMEM;
    }
    ap->who = who;
    uint64_t num = 0;
    pthread_mutex_lock(&p->mu);
    int rc = p->closed ? MB_ECLOSED : MB_OK;
    if (rc == MB_OK) {
        ap->num = num = p->next_num++;
        ap->next = p->props;
        p->props = ap;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != MB_OK) {
        agent_prop_free(ap);
        return rc;
    }
    /* Not ap->num: once queued, the loop may have opened and freed it (an
     * async_cb woken by someone else's send), TSan saw that read race. */
    if (proposal_id != NULL)
        *proposal_id = num;
    uv_async_send(&p->async);
    return MB_OK;
}

void node_proposals_fill_ops(node_cluster_ops *ops)
{
    ops->propose = op_propose;
    ops->vote = op_vote;
}

/* ---- voters by capability ---- */

int node_proposals_voters_by_caps(const consensus_sm *sm, const char *const *caps, size_t ncaps,
                                  const char ***out, uint32_t *n)
{
    size_t na = consensus_sm_agent_count(sm);
    const char **v = calloc(na > 0 ? na : 1, sizeof(char *));
    *out = NULL;
    *n = 0;
    if (v == NULL)
        return MB_ENOMEM;
    uint32_t k = 0;
    for (size_t i = 0; i < na && k < CONSENSUS_MAX_VOTERS; i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->status != CONSENSUS_AGENT_PLACED && a->status != CONSENSUS_AGENT_RUNNING)
            continue;
        size_t have = 0;
        for (size_t c = 0; c < ncaps; c++)
            for (uint32_t j = 0; j < a->n_caps; j++)
                if (strcmp(a->caps[j], caps[c]) == 0) {
                    have++;
                    break;
                }
        if (have == ncaps)
            v[k++] = a->id;
    }
    *out = v;
    *n = k;
    return MB_OK;
}

/* ---- life ---- */

static void module_free(node_proposals *p)
{
    if (p->registered)
        modules_remove(p);
    for (size_t i = 0; i < p->nq; i++)
        pending_free(&p->queue[i]);
    free(p->queue);
    while (p->props != NULL) {
        agent_prop *next = p->props->next;
        agent_prop_free(p->props);
        p->props = next;
    }
    while (p->tracked != NULL) {
        tracked *next = p->tracked->next;
        tracked_free(p->tracked);
        p->tracked = next;
    }
    while (p->agent_opens != NULL) {
        node_agent_open *next = p->agent_opens->next;
        node_agent_open_free(p->agent_opens);
        p->agent_opens = next;
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void module_unref(node_proposals *p)
{
    if (--p->refs == 0)
        module_free(p);
}

static void handle_closed_cb(uv_handle_t *h)
{
    module_unref(h->data);
}

int node_proposals_start(node *n, mb_error *err)
{
    node_proposals *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return mb_errorf(err, MB_ENOMEM, "start proposals");
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    /* Agents' proposal numbers: 2^52 + 16 bits of node id + 36 bits of
     * start time (s, 20 bits) and serial (16 bits): above any raft index a
     * cluster reaches, distinct per node and per start, exact in JSON. */
    p->next_num = AGENT_PROPOSAL_BASE | ((n->node_id & 0xFFFF) << 36) |
                  ((((uint64_t)node_wall_ms() / 1000) & 0xFFFFF) << 16);
    p->refs = 1;
    if (uv_async_init(&n->loop, &p->async, async_cb) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return mb_errorf(err, MB_EIO, "start proposals: async handle");
    }
    p->async.data = p;
    p->refs++;
    uv_timer_init(&n->loop, &p->sweep);
    p->sweep.data = p;
    p->refs++;
    uv_timer_start(&p->sweep, sweep_cb, node_aligned_delay(&n->loop, SWEEP_MS), 0);
    p->handles = 2;
    pthread_mutex_lock(&modules_mu);
    p->next_module = modules;
    modules = p;
    p->registered = 1;
    pthread_mutex_unlock(&modules_mu);
    n->proposals = p;
    return MB_OK;
}

void node_proposals_stop(node_proposals *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    pthread_mutex_unlock(&p->mu);
    modules_remove(p);
    p->n->proposals = NULL;
    uv_close((uv_handle_t *)&p->async, handle_closed_cb);
    uv_close((uv_handle_t *)&p->sweep, handle_closed_cb);
    module_unref(p);
}
