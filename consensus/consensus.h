/* consensus/: the replicated state machine of MABEAM and its raft glue.
 *
 * This is the module's one interface header. It has four parts:
 *  1. the replicated tables (variables, nodes, agents) as read by callers;
 *  2. commands (C form, protobuf-c encode/decode), results and effects;
 *  3. the pure state machine: apply(index, command) -> result + effects,
 *     deterministic snapshot/restore, reads;
 *  4. the JSON mapping of values and variable definitions (HTTP API);
 *  5. the raft glue (libraft 0.15 on a caller-owned libuv loop).
 * Parts 1-4 do no I/O and keep no clock: the same inputs give the same
 * state and the same bytes on every node. Part 5 runs on the control-loop
 * thread only. Formats and semantics: docs/consensus.md. */
#ifndef MB_CONSENSUS_H
#define MB_CONSENSUS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include <mabeam/error.h>
#include <mabeam/value.h>

/* ------------------------------------------------------------------ */
/* 1. Replicated tables                                                */

typedef enum consensus_node_role {
    CONSENSUS_ROLE_VOTER = 0,
    CONSENSUS_ROLE_STANDBY = 1,
} consensus_node_role;

typedef enum consensus_node_status {
    CONSENSUS_NODE_UP = 0,
    CONSENSUS_NODE_SUSPECT = 1,
    CONSENSUS_NODE_DOWN = 2,
    CONSENSUS_NODE_LEFT = 3,
    /* placement: agents are being moved away; nothing new is placed here */
    CONSENSUS_NODE_DRAINING = 4,
} consensus_node_status;

/* A cluster member. Addresses are "ip:port" strings ("" when unknown). */
typedef struct consensus_node {
    uint64_t id; /* > 0, the raft server id */
    char *raft_addr;
    char *mesh_addr;
    char *api_addr;
    consensus_node_role role;
    consensus_node_status status;
} consensus_node;

typedef enum consensus_agent_status {
    CONSENSUS_AGENT_PLACED = 0, /* assigned to a node, not yet reported running */
    CONSENSUS_AGENT_RUNNING = 1,
    CONSENSUS_AGENT_STOPPED = 2,
    CONSENSUS_AGENT_CRASHED = 3,
} consensus_agent_status;

/* A placed agent. `generation` starts at 1 and grows on every reassignment:
 * a copy running with an older generation is stale (fencing). */
typedef struct consensus_agent {
    char *id;
    char *kind;
    char *config; /* JSON text, "" when none */
    uint64_t node;
    consensus_agent_status status;
    uint64_t generation;
    int has_checkpoint;
    void *checkpoint; /* checkpoint_len bytes */
    size_t checkpoint_len;
    uint64_t checkpoint_version; /* raft index of the checkpoint */
    uint32_t restarts;           /* reassignments so far */
    /* placement: capabilities given at spawn (for placement constraints and
     * "all agents with capability X"), n_caps entries, sorted, unique */
    char **caps;
    uint32_t n_caps;
} consensus_agent;

typedef enum consensus_rule {
    CONSENSUS_RULE_MAJORITY = 0,      /* more than half of the voters say yes */
    CONSENSUS_RULE_SUPERMAJORITY = 1, /* at least `fraction` (0.5, 1] say yes */
    CONSENSUS_RULE_UNANIMOUS = 2,     /* every voter says yes */
    CONSENSUS_RULE_WEIGHTED = 3,      /* more than half of the total weight */
    /* proposals piece: Byzantine-tolerant. Declared f; needs n >= 3f+1
     * eligible voters at open; accepts at quorum = floor(2n/3)+1 yes (n at
     * open, fixed), rejects once that many yes are no longer possible. */
    CONSENSUS_RULE_BYZANTINE = 4,
} consensus_rule;

typedef enum consensus_outcome {
    CONSENSUS_PROPOSAL_OPEN = 0,
    CONSENSUS_PROPOSAL_ACCEPTED = 1,
    CONSENSUS_PROPOSAL_REJECTED = 2,
    CONSENSUS_PROPOSAL_EXPIRED = 3,
    CONSENSUS_PROPOSAL_CANCELLED = 4,
} consensus_outcome;

typedef enum consensus_vote {
    CONSENSUS_VOTE_NONE = 0,
    CONSENSUS_VOTE_YES = 1,
    CONSENSUS_VOTE_NO = 2,
} consensus_vote;

/* An open proposal to change a consensus-policy variable. The table holds
 * open proposals only: a decided, expired or cancelled one leaves it (its
 * history is in the event log). An agent that crashes, stops or is removed
 * leaves the voters of every open proposal it has not voted on. Voters are
 * kept sorted (bytewise) so that a vote finds its voter by binary search.
 * At most one proposal is open per variable, and it is accepted only if the
 * variable's version is still base_version (docs/proposals.md). */
typedef struct consensus_proposal {
    char *id;
    char *variable;
    mb_value value;
    char *proposer;
    consensus_rule rule;
    double fraction; /* SUPERMAJORITY */
    char **voters;   /* n_voters agent ids */
    double *weights; /* WEIGHTED: n_voters weights > 0; else NULL */
    uint8_t *votes;  /* n_voters consensus_vote */
    uint32_t n_voters;
    int64_t deadline_ms; /* wall clock ms, 0 = none; the leader closes it as expired */
    uint64_t opened;     /* raft index; also the numeric id agents see (mb_proposal.id) */
    /* proposals piece */
    uint32_t f;            /* BYZANTINE: declared faulty voters; else 0 */
    uint32_t quorum;       /* BYZANTINE: yes votes needed (floor(2n/3)+1 at open); else 0 */
    uint64_t base_version; /* the variable's version when the proposal opened */
    /* Unweighted rules: counts of yes and no votes, kept as votes come
     * (derived from votes[], not in snapshots). */
    uint32_t n_yes, n_no;
} consensus_proposal;

/* Voters of one proposal. Memory: about 100 bytes per voter per open
 * proposal (id string, vote, weight, pointer), 400 KiB at the limit. */
#define CONSENSUS_MAX_VOTERS 4096
/* Votes in one PROPOSAL_VOTES command: with the events of the decisions
 * they cause, an entry stays under REPL_SEQ_PER_ENTRY (1024) events. */
#define CONSENSUS_VOTE_BATCH_MAX 256

/* A variable. version = raft index of its last change (define or set). */
typedef struct consensus_var {
    char *name;
    mb_var_spec spec;
    mb_var_policy policy;
    mb_value value;
    uint64_t version;
    uint64_t created; /* raft index of its definition */
    char *changed_by; /* "" when unknown */
} consensus_var;

/* ---- studies (piece "studies"; consensus/study.c, docs/studies.md) ---- */

typedef enum consensus_objective_kind {
    CONSENSUS_OBJECTIVE_BUILTIN = 1, /* objective = function name (branin, sleep:50, ...) */
    CONSENSUS_OBJECTIVE_COMMAND = 2, /* argv: parameters as JSON on stdin */
    CONSENSUS_OBJECTIVE_PYTHON = 3,  /* objective = script run with the port-agent SDK */
} consensus_objective_kind;

typedef enum consensus_on_finish {
    CONSENSUS_ON_FINISH_NONE = 0,
    CONSENSUS_ON_FINISH_WRITE = 1,   /* write the best configuration to the variables */
    CONSENSUS_ON_FINISH_PROPOSE = 2, /* the shell opens proposals for it */
} consensus_on_finish;

typedef enum consensus_study_status {
    CONSENSUS_STUDY_RUNNING = 0,
    CONSENSUS_STUDY_STOPPED = 1,  /* stopped by a user */
    CONSENSUS_STUDY_FINISHED = 2, /* budget of trials or time used up */
} consensus_study_status;

typedef enum consensus_trial_status {
    CONSENSUS_TRIAL_SUGGESTED = 0, /* waiting for an evaluator (also after a re-queue) */
    CONSENSUS_TRIAL_RUNNING = 1,
    CONSENSUS_TRIAL_COMPLETED = 2,
    CONSENSUS_TRIAL_PRUNED = 3,
    CONSENSUS_TRIAL_FAILED = 4,
} consensus_trial_status;

/* One dimension of a study's search space. Values of a trial are doubles
 * in the encoding of <mabeam/optim.h>: FLOAT/PROBABILITY the value, INT an
 * integer, CHOICE the option index, BOOL 0 or 1. */
typedef struct consensus_study_param {
    char *name;
    mb_var_spec spec;  /* type NONE in a create command = from the variable */
    int from_variable; /* the spec was taken from the variable `name` */
    uint32_t group;    /* partition group (0..n_groups-1) */
} consensus_study_param;

#define CONSENSUS_STUDY_MAX_PARAMS   64
#define CONSENSUS_STUDY_MAX_TRIALS   100000
#define CONSENSUS_STUDY_MAX_STUDIES  1024
#define CONSENSUS_STUDY_MAX_ARGS     64
#define CONSENSUS_STUDY_ARG_MAX      4096
#define CONSENSUS_TRIAL_MAX_REPORTS  10000
#define CONSENSUS_TRIAL_ERROR_MAX    1024
#define CONSENSUS_STUDY_MAX_PARALLEL 1024

/* studyfeat: a study's pruner, the pruner part of mb_optim_config
 * (<mabeam/optim.h>); kind 0 none, 1 median, 2 asha, 3 hyperband. */
typedef struct consensus_study_pruner {
    uint32_t kind;
    uint32_t n_startup_trials, n_min_trials, reduction_factor, min_early_stopping_rate;
    uint64_t n_warmup_steps, min_resource, max_resource;
} consensus_study_pruner;

#define CONSENSUS_STUDY_MAX_CAPS 16

/* What a study is: its definition, as created. */
typedef struct consensus_study_def {
    char *id;
    consensus_study_param *params;
    uint32_t n_params;
    consensus_objective_kind objective_kind;
    char *objective; /* BUILTIN/PYTHON; NULL for COMMAND */
    char **argv;     /* COMMAND */
    uint32_t argc;
    int maximize;
    char *strategy; /* random, grid, sobol, halton, tpe, cmaes, portfolio */
    char *bandit;   /* "ucb" or "thompson"; NULL = ucb */
    uint32_t max_trials;
    uint64_t time_budget_ms;
    int64_t deadline_ms; /* wall clock, 0 = none */
    uint32_t parallelism;
    uint64_t seed;
    consensus_on_finish on_finish;
    uint32_t n_groups; /* partition: groups of params, each its own optimiser; 0 = none */
    uint64_t trial_timeout_ms;
    /* studyfeat: the pruner the state machine runs on every report, and
     * for on_finish propose the rule (majority, supermajority, unanimous),
     * its fraction and the capabilities of the voters (resolved when the
     * study finishes) */
    consensus_study_pruner pruner;
    consensus_rule propose_rule;
    double propose_fraction;
    char **propose_caps;
    uint32_t n_propose_caps;
} consensus_study_def;

typedef struct consensus_trial {
    uint32_t number; /* 1, 2, ... in order of suggestion */
    double *params;  /* n_params of the study */
    char *strategy;  /* strategy that suggested it ("" unknown) */
    uint32_t group;
    char *suggested_by;
    consensus_trial_status status;
    char *evaluator; /* RUNNING (and kept once finished); NULL otherwise */
    uint64_t generation;
    uint64_t node;
    int has_value;
    double value;
    uint64_t *report_steps;
    double *report_values;
    uint32_t n_reports;
    char *error; /* FAILED, or the reason of the last re-queue; NULL when none */
    uint32_t requeues;
    uint64_t suggested, started, finished; /* raft indexes, 0 = not yet */
    uint32_t basis; /* finished trials its optimiser had seen when suggesting it */
} consensus_trial;

typedef struct consensus_study {
    consensus_study_def def;
    consensus_study_status status;
    char *reason; /* why it stopped or finished; NULL while running */
    uint64_t created, finished;
    consensus_trial **trials; /* trials[k] has number k+1 */
    uint32_t n_trials, cap_trials;
    uint32_t n_done;    /* completed + pruned + failed */
    uint32_t n_pending; /* suggested + running */
    uint32_t n_running; /* at most `parallelism`; as many may wait suggested */
    uint32_t best;      /* number of the best completed trial, 0 = none */
} consensus_study;

/* Release what a definition owns and zero it. */
void consensus_study_def_free(consensus_study_def *d);
/* --- coordination (piece: agents/coord, consensus/coord.c) --- */

/* A lease held by an agent until expires_ms (wall clock of the proposers,
 * never earlier than a time already seen by the state machine). A released
 * or expired lease leaves the table. `acquired` (the raft index of the
 * grant) is a fencing token: it changes whenever the holder changes. */
typedef struct consensus_lease {
    char *name;
    char *holder; /* replicated agent id */
    uint64_t ttl_ms;
    int64_t expires_ms;
    uint64_t acquired; /* raft index of the grant */
    uint64_t renewed;  /* raft index of the last renewal (= acquired if none) */
} consensus_lease;

typedef enum consensus_barrier_state {
    CONSENSUS_BARRIER_OPEN = 0,      /* waiting for arrivals */
    CONSENSUS_BARRIER_PASSED = 1,    /* all parties arrived */
    CONSENSUS_BARRIER_TIMED_OUT = 2, /* deadline passed first */
} consensus_barrier_state;

/* A barrier for `parties` agents. An arrival at a finished barrier starts
 * the next round. arrived_count is the number that arrived when the round
 * ended (PASSED: parties; TIMED_OUT: fewer). */
typedef struct consensus_barrier {
    char *name;
    uint32_t parties;
    uint64_t timeout_ms;
    int64_t deadline_ms; /* 0 = none */
    uint64_t round;      /* 1 for the first */
    consensus_barrier_state state;
    char **arrived; /* n_arrived agent ids in arrival order (OPEN rounds) */
    uint32_t n_arrived;
    uint32_t arrived_count;
    uint64_t opened; /* raft index of the round's first arrival */
} consensus_barrier;

/* An election group: members in join order; members[0] leads. `term`
 * grows on every change of leader (a fencing token for the leader). An
 * empty group leaves the table. */
typedef struct consensus_election {
    char *group;
    char **members;
    uint64_t *joined; /* raft index of each member's join */
    uint32_t n_members;
    uint64_t term;
} consensus_election;

#define CONSENSUS_COORD_MAX_PARTIES 1024 /* barrier parties, election members */
#define CONSENSUS_LEASE_TTL_MAX_MS  (7ull * 24 * 3600 * 1000)

/* Limits of command fields (bytes). */
#define CONSENSUS_ID_MAX         128         /* agent ids, agent kinds, "by" */
#define CONSENSUS_ADDR_MAX       63          /* "a.b.c.d:port" and mesh URLs */
#define CONSENSUS_CONFIG_MAX     (64u << 10) /* agent config JSON */
#define CONSENSUS_CHECKPOINT_MAX (4u << 20)  /* checkpoint blob */
#define CONSENSUS_DEDUP_DEFAULT  4096        /* dedup table entries */
#define CONSENSUS_CAPS_MAX       64          /* placement: capabilities per agent */
#define CONSENSUS_BATCH_MAX      1000        /* placement: entries per batch command */

/* ------------------------------------------------------------------ */
/* 2. Commands, results, effects                                       */

typedef enum consensus_cmd_kind {
    CONSENSUS_CMD_NONE = 0,
    CONSENSUS_CMD_VAR_DEFINE = 1,
    CONSENSUS_CMD_VAR_SET = 2,    /* set; with has_expected: compare-and-set */
    CONSENSUS_CMD_VAR_DELETE = 3, /* with has_expected: compare-and-delete */
    CONSENSUS_CMD_NODE_ADD = 4,
    CONSENSUS_CMD_NODE_UPDATE = 5,
    CONSENSUS_CMD_NODE_REMOVE = 6,
    CONSENSUS_CMD_AGENT_PLACE = 7,
    CONSENSUS_CMD_AGENT_REASSIGN = 8, /* with has_expected: expected generation */
    CONSENSUS_CMD_AGENT_CHECKPOINT = 9,
    CONSENSUS_CMD_AGENT_STATUS = 10,
    CONSENSUS_CMD_AGENT_REMOVE = 11,
    CONSENSUS_CMD_PROPOSAL_OPEN = 12,
    CONSENSUS_CMD_PROPOSAL_VOTE = 13,
    CONSENSUS_CMD_PROPOSAL_CLOSE = 14,
    /* proposals piece (30-39) */
    CONSENSUS_CMD_PROPOSAL_VOTES = 30, /* a batch of (proposal, voter, yes) */
    /* placement (20-29): batches of per-agent entries (items). An entry
     * whose agent is gone or whose generation is stale is skipped, the
     * others apply; the result is MB_ECONFLICT only when every entry was
     * skipped. One event per applied entry (agent.status, agent.checkpoint,
     * agent.reassign), no FX_AGENT_START/STOP: nodes reconcile from the
     * table. */
    CONSENSUS_CMD_AGENT_STATUS_BATCH = 20,     /* items: id, generation, status */
    CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH = 21, /* items: id, generation, blob */
    /* items: id, node (target), generation (expected; 0 = any), blob when
     * has_blob (a fresh checkpoint that travels with the move). With
     * down_node != 0 that node is marked DOWN first, in the same entry. */
    CONSENSUS_CMD_AGENT_MOVE_BATCH = 22,
    /* coordination (consensus/coord.c): 40-49 */
    CONSENSUS_CMD_LEASE_ACQUIRE = 40,  /* coord: name, holder, ttl_ms, now_ms */
    CONSENSUS_CMD_LEASE_RENEW = 41,    /* coord: name, holder, ttl_ms, now_ms */
    CONSENSUS_CMD_LEASE_RELEASE = 42,  /* coord: name, holder */
    CONSENSUS_CMD_BARRIER_ARRIVE = 43, /* coord: name, holder, parties, timeout_ms, now_ms */
    CONSENSUS_CMD_ELECTION_JOIN = 45,  /* coord: name (group), holder (member) */
    CONSENSUS_CMD_ELECTION_LEAVE = 46, /* coord: name (group), holder (member) */
    CONSENSUS_CMD_COORD_EXPIRE = 47,   /* coord: now_ms */
    /* studies (piece "studies"): the command's `study` part */
    CONSENSUS_CMD_STUDY_CREATE = 50,  /* study->def */
    CONSENSUS_CMD_STUDY_STOP = 51,    /* study_id, reason */
    CONSENSUS_CMD_STUDY_FINISH = 52,  /* study_id, reason (time budget used up) */
    CONSENSUS_CMD_TRIAL_SUGGEST = 53, /* study_id, params, strategy, group */
    CONSENSUS_CMD_TRIAL_START = 54,   /* study_id, number, evaluator, generation, node */
    CONSENSUS_CMD_TRIAL_REPORT = 55,  /* study_id, number, evaluator, generation, step, value */
    CONSENSUS_CMD_TRIAL_FINISH = 56,  /* ... status (COMPLETED/PRUNED/FAILED), value, error */
    CONSENSUS_CMD_TRIAL_REQUEUE =
        57, /* study_id, number, reason; evaluator+generation: only that claim */
} consensus_cmd_kind;

/* One vote of a PROPOSAL_VOTES batch. */
typedef struct consensus_vote_item {
    char *proposal_id;
    char *voter;
    int yes;
} consensus_vote_item;

/* Fields of the coordination commands (piece: agents/coord). */
typedef struct consensus_coord_cmd {
    char *name;   /* lease, barrier or election group */
    char *holder; /* agent id: lease holder, barrier participant, member */
    uint64_t ttl_ms;
    int64_t now_ms; /* proposer's wall clock (ms since the epoch) */
    uint32_t parties;
    uint64_t timeout_ms;
} consensus_coord_cmd;

/* The study part of a STUDY_* or TRIAL_* command. */
typedef struct consensus_study_cmd {
    consensus_study_def def; /* STUDY_CREATE */
    char *study_id;
    char *reason;
    uint32_t number;
    double *params;
    uint32_t n_params;
    char *strategy;
    uint32_t group;
    uint32_t basis; /* SUGGEST; `number` there = the expected number, 0 = any */
    char *evaluator;
    uint64_t generation;
    uint64_t node;
    uint64_t step;
    double value;
    consensus_trial_status status;
    char *error;
} consensus_study_cmd;

/* Which fields a NODE_UPDATE changes. */
#define CONSENSUS_NODE_SET_RAFT_ADDR (1u << 0)
#define CONSENSUS_NODE_SET_MESH_ADDR (1u << 1)
#define CONSENSUS_NODE_SET_API_ADDR  (1u << 2)
#define CONSENSUS_NODE_SET_ROLE      (1u << 3)
#define CONSENSUS_NODE_SET_STATUS    (1u << 4)

/* placement: one entry of a batch command (see the batch kinds). */
typedef struct consensus_agent_item {
    char *id;
    uint64_t node;
    uint64_t generation;
    consensus_agent_status status;
    int has_blob;
    void *blob;
    size_t blob_len;
} consensus_agent_item;

/* One command in C form. Only the fields of `kind` are used; the rest stay
 * zero. When the caller builds one to encode, every pointer is borrowed.
 * After consensus_cmd_decode() the command owns its pointers: release them
 * with consensus_cmd_free(). */
typedef struct consensus_cmd {
    consensus_cmd_kind kind;
    /* Idempotency id: a command whose (client_id, request_seq) was already
     * applied is not applied again and returns the first result. client_id
     * 0 = no id. */
    uint64_t client_id;
    uint64_t request_seq;
    char *by; /* who asked: agent id or client name; NULL = "" */

    /* VAR_*: name; DEFINE: spec, policy, value (type NONE = default);
     * SET: value. has_expected/expected: CAS on the variable's version
     * (SET, DELETE) or on the agent's generation (AGENT_REASSIGN). */
    char *name;
    mb_var_spec spec;
    mb_var_policy policy;
    mb_value value;
    int has_expected;
    uint64_t expected;

    /* NODE_ADD: node (id > 0); NODE_UPDATE: node.id + fields in node_fields;
     * NODE_REMOVE: node.id. */
    consensus_node node;
    unsigned node_fields;

    /* AGENT_*: agent_id; PLACE: agent_kind, agent_config, agent_node;
     * REASSIGN: agent_node; CHECKPOINT: generation, blob; STATUS:
     * generation, agent_status. */
    char *agent_id;
    char *agent_kind;
    char *agent_config;
    uint64_t agent_node;
    uint64_t generation;
    consensus_agent_status agent_status;
    void *blob;
    size_t blob_len;

    /* PROPOSAL_*: proposal_id; OPEN: name (the variable), value, rule,
     * fraction, f (BYZANTINE), voters/weights/n_voters, deadline_ms;
     * proposal_id "" or NULL = the cluster names it: the decimal raft index
     * of the open; VOTE: voter, yes; CLOSE: outcome (EXPIRED or CANCELLED);
     * VOTES: votes/n_votes (1..CONSENSUS_VOTE_BATCH_MAX). */
    char *proposal_id;
    consensus_rule rule;
    double fraction;
    char **voters;
    double *weights;
    uint32_t n_voters;
    int64_t deadline_ms;
    char *voter;
    int yes;
    consensus_outcome outcome;
    uint32_t f;
    consensus_vote_item *votes;
    uint32_t n_votes;

    /* placement: PLACE: agent_caps/n_agent_caps (capabilities, at most
     * CONSENSUS_CAPS_MAX); *_BATCH: items/n_items (1..CONSENSUS_BATCH_MAX);
     * MOVE_BATCH: down_node (0 = none). */
    char **agent_caps;
    uint32_t n_agent_caps;
    consensus_agent_item *items;
    uint32_t n_items;
    uint64_t down_node;

    /* STUDY_* and TRIAL_* (piece "studies"); owned after decode. */
    consensus_study_cmd *study;
    /* LEASE_*, BARRIER_*, ELECTION_*, COORD_EXPIRE (piece: agents/coord) */
    consensus_coord_cmd coord;
} consensus_cmd;

/* Encode `cmd` (borrowed) into a new buffer of *len bytes allocated with
 * `alloc_fn` (malloc when NULL; pass raft_malloc for raft) and owned by the
 * caller. Checks the shape of the command (MB_EINVAL), not the state. */
int consensus_cmd_encode(const consensus_cmd *cmd, void *(*alloc_fn)(size_t), void **buf,
                         size_t *len, mb_error *err);

/* Decode `len` bytes (borrowed) into *out (overwritten; owned by the caller
 * on success, released with consensus_cmd_free). Defensive: bad input gives
 * MB_EPROTO or MB_EINVAL, never a crash. */
int consensus_cmd_decode(const void *buf, size_t len, consensus_cmd *out, mb_error *err);

/* Release what a decoded command owns and zero it. NULL is a no-op. */
void consensus_cmd_free(consensus_cmd *cmd);

/* Result of applying one command. `version` is the raft index the change got
 * (0 when nothing changed); leader_* are set with MB_ENOTLEADER. */
typedef struct consensus_result {
    int code; /* mb_err */
    uint64_t version;
    uint64_t leader_id;
    char leader_addr[CONSENSUS_ADDR_MAX + 1];
    char msg[256];
} consensus_result;

/* Encode a result (e.g. to answer a forwarded proposal) into a malloc'd
 * buffer owned by the caller; decode is defensive (MB_EPROTO). */
int consensus_result_encode(const consensus_result *res, void **buf, size_t *len);
int consensus_result_decode(const void *buf, size_t len, consensus_result *out);

typedef enum consensus_effect_kind {
    CONSENSUS_FX_EVENT = 1,       /* append (type, subject, payload) to the event log */
    CONSENSUS_FX_WATCH = 2,       /* notify watchers of variable `subject` at `version` */
    CONSENSUS_FX_AGENT_START = 3, /* node `node_id` must run agent `subject` at `generation` */
    CONSENSUS_FX_AGENT_STOP = 4,  /* node `node_id` must stop its copy of agent `subject` */
    /* proposals piece (20-29): `subject` = proposal id, `version` = the
     * raft index it opened at (its numeric id). OPEN: ask the local voters;
     * CLOSE: it was decided, expired or cancelled (`deleted` = outcome). */
    CONSENSUS_FX_PROPOSAL_OPEN = 20,
    CONSENSUS_FX_PROPOSAL_CLOSE = 21,
    /* coordination, 30-39: tell agent `subject` (running on node `node_id`
     * at `generation`) about lease/barrier/group `type`; payload is JSON
     * ({"name", "token"} for leases and leadership, {"name", "round",
     * "arrived", "parties"} for barriers). */
    CONSENSUS_FX_LEASE_GRANTED = 30,
    CONSENSUS_FX_LEASE_LOST = 31, /* expired, or holder gone */
    CONSENSUS_FX_BARRIER_PASSED = 32,
    CONSENSUS_FX_BARRIER_TIMED_OUT = 33,
    CONSENSUS_FX_LEADER_GAINED = 34,
    CONSENSUS_FX_LEADER_LOST = 35,
} consensus_effect_kind;

/* One effect for the shell. Strings are owned by the effects list. */
typedef struct consensus_effect {
    consensus_effect_kind kind;
    char *type;    /* EVENT: "var.set", "agent.place", ... */
    char *subject; /* EVENT/WATCH: variable name, node id, agent id */
    char *payload; /* EVENT: JSON text */
    uint64_t version;
    int deleted; /* WATCH: the variable was deleted */
    uint64_t node_id;
    uint64_t generation;
} consensus_effect;

typedef struct consensus_effects {
    consensus_effect *items;
    size_t n;
    size_t cap;
} consensus_effects;

void consensus_effects_init(consensus_effects *fx);
/* Drop every effect (keeping the capacity). */
void consensus_effects_clear(consensus_effects *fx);
/* Release everything; the struct may be reused after init. */
void consensus_effects_free(consensus_effects *fx);

/* ------------------------------------------------------------------ */
/* 3. The pure state machine                                           */

typedef struct consensus_sm consensus_sm;

typedef struct consensus_sm_options {
    /* Entries of the idempotency table (0 = CONSENSUS_DEDUP_DEFAULT). The
     * oldest (lowest raft index) entry is evicted first. Must be the same on
     * every node; it travels in snapshots. */
    uint32_t dedup_capacity;
} consensus_sm_options;

/* A new empty state machine (opts may be NULL). *out is owned by the
 * caller, released with consensus_sm_free(). MB_ENOMEM. */
int consensus_sm_new(const consensus_sm_options *opts, consensus_sm **out);
void consensus_sm_free(consensus_sm *sm);

/* Apply the command encoded in `buf` (borrowed) that committed at raft
 * `index`. Never fails: a bad command or one refused by the state changes
 * nothing and reports its error in *res. Effects are appended to `fx` (may
 * be NULL). An index at or below the last applied one changes nothing and
 * yields no effects (replay is harmless). */
void consensus_sm_apply(consensus_sm *sm, uint64_t index, const void *buf, size_t len,
                        consensus_result *res, consensus_effects *fx);

/* Same with an already decoded command (borrowed). */
void consensus_sm_apply_cmd(consensus_sm *sm, uint64_t index, const consensus_cmd *cmd,
                            consensus_result *res, consensus_effects *fx);

/* Dry run against the current state: the error apply would give now (0 if
 * it would succeed). For checking a write before proposing it. */
int consensus_sm_check(const consensus_sm *sm, const consensus_cmd *cmd, mb_error *err);

/* Whether (client_id, request_seq) was applied; if so *res (may be NULL)
 * gets its original result. */
int consensus_sm_dedup_lookup(const consensus_sm *sm, uint64_t client_id, uint64_t request_seq,
                              consensus_result *res);

uint64_t consensus_sm_applied_index(const consensus_sm *sm);

/* Encode the whole state into a buffer allocated with alloc_fn (malloc when
 * NULL), owned by the caller. Equal states give identical bytes. */
int consensus_sm_snapshot(const consensus_sm *sm, void *(*alloc_fn)(size_t), void **buf,
                          size_t *len, mb_error *err);

/* Build a new state machine from snapshot bytes (borrowed). Defensive:
 * anything malformed or inconsistent is MB_ECORRUPT, never a crash. */
int consensus_sm_restore(const void *buf, size_t len, consensus_sm **out, mb_error *err);

/* Reads (stale-local: the state as applied on this node). Returned pointers
 * are borrowed and valid until the next apply/free. */
const consensus_var *consensus_sm_var_get(const consensus_sm *sm, const char *name);
size_t consensus_sm_var_count(const consensus_sm *sm);
const consensus_var *consensus_sm_var_at(const consensus_sm *sm, size_t i); /* by name */
const consensus_node *consensus_sm_node_get(const consensus_sm *sm, uint64_t id);
size_t consensus_sm_node_count(const consensus_sm *sm);
const consensus_node *consensus_sm_node_at(const consensus_sm *sm, size_t i); /* by id */
const consensus_agent *consensus_sm_agent_get(const consensus_sm *sm, const char *id);
size_t consensus_sm_agent_count(const consensus_sm *sm);
const consensus_agent *consensus_sm_agent_at(const consensus_sm *sm, size_t i); /* by id */
const consensus_proposal *consensus_sm_proposal_get(const consensus_sm *sm, const char *id);
size_t consensus_sm_proposal_count(const consensus_sm *sm);
const consensus_proposal *consensus_sm_proposal_at(const consensus_sm *sm, size_t i); /* by id */
/* proposals piece: the open proposal with numeric id (= opened index)
 * `opened`, or the one open on variable `name`; NULL when none. */
const consensus_proposal *consensus_sm_proposal_by_index(const consensus_sm *sm, uint64_t opened);
const consensus_proposal *consensus_sm_proposal_on_var(const consensus_sm *sm, const char *name);
/* Name of a rule ("majority", ..., "byzantine") / outcome ("accepted");
 * "?" when out of range. Parse a rule name: MB_OK or MB_EINVAL. */
const char *consensus_rule_name(consensus_rule r);
const char *consensus_outcome_name(consensus_outcome o);
int consensus_rule_parse(const char *s, consensus_rule *out);
/* The proposal as JSON (id, variable, value, proposer, rule, fraction, f,
 * quorum, voters, votes, deadline_ms, opened, base_version). *out owned by
 * the caller. MB_ENOMEM. */
int consensus_proposal_to_json(const consensus_proposal *p, int with_votes, cJSON **out);
/* studies (piece "studies") */
const consensus_study *consensus_sm_study_get(const consensus_sm *sm, const char *id);
size_t consensus_sm_study_count(const consensus_sm *sm);
const consensus_study *consensus_sm_study_at(const consensus_sm *sm, size_t i); /* by id */
/* Trial `number` of a study, NULL when out of range. */
const consensus_trial *consensus_study_trial(const consensus_study *st, uint32_t number);
const char *consensus_trial_status_name(consensus_trial_status s);
const char *consensus_study_status_name(consensus_study_status s);
/* coordination (piece: agents/coord) */
const consensus_lease *consensus_sm_lease_get(const consensus_sm *sm, const char *name);
size_t consensus_sm_lease_count(const consensus_sm *sm);
const consensus_lease *consensus_sm_lease_at(const consensus_sm *sm, size_t i); /* by name */
const consensus_barrier *consensus_sm_barrier_get(const consensus_sm *sm, const char *name);
size_t consensus_sm_barrier_count(const consensus_sm *sm);
const consensus_barrier *consensus_sm_barrier_at(const consensus_sm *sm, size_t i);
const consensus_election *consensus_sm_election_get(const consensus_sm *sm, const char *group);
size_t consensus_sm_election_count(const consensus_sm *sm);
const consensus_election *consensus_sm_election_at(const consensus_sm *sm, size_t i);
/* The latest wall-clock time carried by a coordination command (ms). */
int64_t consensus_sm_coord_now(const consensus_sm *sm);
/* The earliest lease expiry or barrier deadline, or 0 when nothing is due
 * (the leader proposes COORD_EXPIRE once its clock passes it). */
int64_t consensus_sm_coord_next_due(const consensus_sm *sm);

/* ------------------------------------------------------------------ */
/* 4. JSON mapping (cJSON)                                             */

/* A value as JSON: number (float, int, probability), string (choice),
 * true/false (bool), array of numbers (distribution, embedding),
 * {"shape":[..],"data":[..]} (tensor). *out is owned by the caller
 * (cJSON_Delete). MB_ENOMEM, MB_EINVAL for a NONE value. */
int consensus_value_to_json(const mb_value *v, cJSON **out);

/* Parse the JSON of a value of type `type` (borrowed) into *out (owned by
 * the caller on success). Defensive; MB_EINVAL with a message naming
 * `name` (may be NULL). Does not check constraints: see
 * mb_value_validate(). */
int consensus_value_from_json(const cJSON *j, mb_vtype type, const char *name, mb_value *out,
                              mb_error *err);

/* Add the fields of a spec and its policy to the JSON object `obj`
 * ("type", "min", ..., "policy"). MB_ENOMEM. */
int consensus_spec_to_json(const mb_var_spec *s, mb_var_policy policy, cJSON *obj);

/* A variable definition {"name":..,"type":..,constraints..,"policy":..,
 * "value":..} (borrowed) as a VAR_DEFINE command in *out (owned by the
 * caller, release with consensus_cmd_free). The spec is checked and a
 * given value validated. MB_EINVAL/MB_ECONSTRAINT with a message. */
int consensus_define_from_json(const cJSON *j, consensus_cmd *out, mb_error *err);

/* A variable as JSON: name, spec fields, policy, value, version, created,
 * changed_by. *out owned by the caller. */
int consensus_var_to_json(const consensus_var *var, cJSON **out);

/* Studies (piece "studies"; format in docs/studies.md). A study definition
 * in JSON (borrowed) as a STUDY_CREATE command in *out (owned by the
 * caller: consensus_cmd_free). `now_ms` (wall clock) turns a time budget
 * into a deadline. Defensive: MB_EINVAL with a message. */
int consensus_study_from_json(const cJSON *j, int64_t now_ms, consensus_cmd *out, mb_error *err);
/* A study as JSON: definition, status, counts, best trial, strategy
 * allocation, and its trials when with_trials. *out owned by the caller. */
int consensus_study_to_json(const consensus_study *st, int with_trials, cJSON **out);
int consensus_trial_to_json(const consensus_study *st, const consensus_trial *t, cJSON **out);
/* A parameter value in the optim encoding as JSON (number, string for a
 * choice, true/false for a bool). */
cJSON *consensus_study_param_json(const consensus_study_param *p, double x);
/* Coordination records as JSON objects (*out owned by the caller). */
int consensus_lease_to_json(const consensus_lease *l, cJSON **out);
int consensus_barrier_to_json(const consensus_barrier *b, cJSON **out);
int consensus_election_to_json(const consensus_election *e, cJSON **out);

/* ------------------------------------------------------------------ */
/* 5. Raft glue                                                        */

struct raft_fsm;
struct raft;

/* Effects callback of the raft glue, called on the loop thread after each
 * applied entry that produced effects (borrowed for the call). */
typedef void (*consensus_effects_cb)(void *arg, uint64_t index, const consensus_effects *fx);

/* Raft log entry framing. libraft 0.15 writes entry buffers whose length
 * is not a multiple of 8 such that the closed segment fails to load on
 * restart and is set aside as corrupt, losing the entries (canonical/raft
 * issues #180, #189, #304). So every entry is framed: "MBE1", a big-endian
 * u32 command length, the command, zero padding to a multiple of 8. */
#define CONSENSUS_ENTRY_HEADER 8

/* Frame command bytes (borrowed) into a new buffer allocated with
 * alloc_fn (malloc when NULL; raft_malloc for raft_apply), owned by the
 * caller. MB_ENOMEM, MB_ETOOBIG. */
int consensus_entry_frame(const void *cmd, size_t len, void *(*alloc_fn)(size_t), void **out,
                          size_t *out_len);

/* Find the command inside a framed entry (borrowed; *cmd points into it).
 * Defensive: MB_EPROTO for a bad magic, length, size or padding. */
int consensus_entry_unframe(const void *entry, size_t len, const void **cmd, size_t *cmd_len);

/* The raft FSM adapter: decodes entries, runs the state machine, hands
 * effects on, snapshots/restores with raft_malloc'd buffers. Used by
 * consensus_raft and directly by tests with raft_fixture. */
typedef struct consensus_fsm consensus_fsm;

/* Create an adapter (version-1 raft_fsm) around a new state machine.
 * Effects of entries with index <= skip_effects_through are not handed to
 * `cb` (they are already in the event log). *out owned by the caller. */
int consensus_fsm_new(const consensus_sm_options *opts, consensus_effects_cb cb, void *cb_arg,
                      uint64_t skip_effects_through, consensus_fsm **out);
void consensus_fsm_free(consensus_fsm *f);
/* The raft_fsm to give raft_init / raft_fixture_grow (borrowed). */
struct raft_fsm *consensus_fsm_raft(consensus_fsm *f);
/* Tell the adapter which raft instance drives it (for the entry index). */
void consensus_fsm_attach(consensus_fsm *f, struct raft *r);
/* The state machine (borrowed; replaced on restore). */
const consensus_sm *consensus_fsm_sm(const consensus_fsm *f);
/* raft-perf: called after every applied command entry with its raft index
 * and result (borrowed for the call), after the effects callback. The raft
 * glue uses it to answer each entry of a batched raft_apply. */
typedef void (*consensus_applied_cb)(void *arg, uint64_t index, const consensus_result *res);
void consensus_fsm_set_applied_cb(consensus_fsm *f, consensus_applied_cb cb, void *arg);
/* Snapshot policy of the attached raft (set after consensus_fsm_attach):
 * a snapshot every `threshold` entries, or sooner once the entries applied
 * since the last one reach `max_bytes` (0 = by count only); each snapshot
 * keeps `trailing` entries, fewer when that many entries of the average
 * size seen since the last snapshot would exceed `max_bytes`. So the raft
 * log held in memory stays near 2 x max_bytes whatever the value sizes
 * (tensors of megabytes), and small writes keep the long interval. */
void consensus_fsm_set_snapshot_policy(consensus_fsm *f, unsigned threshold, unsigned trailing,
                                       uint64_t max_bytes);
/* Snapshots raft asked for and the adapter put off (RAFT_BUSY, raft asks
 * again after its next apply) because a log truncation could meet them:
 * libraft 0.15 drops a truncation issued during a snapshot's barrier. */
uint64_t consensus_fsm_snapshots_deferred(const consensus_fsm *f);
/* The rule behind it, pure: 1 when no leader is known, or when the log has
 * uncommitted entries (last_index > commit_index) whose last term is older
 * than the current term (a new leader may cut them). */
int consensus_snapshot_may_meet_truncation(uint64_t commit_index, uint64_t last_index,
                                           uint64_t last_term, uint64_t current_term,
                                           int leader_known);
/* Stagger this node's snapshots: they fall on the indexes i with
 * (i + threshold * num / den) % threshold == 0 (at least threshold / 2
 * apart), so nodes of different phases (0..den-1) do not all snapshot, and
 * stall their disks, at the same entry; on average still one per threshold.
 * den 0: plain threshold (the default). */
void consensus_fsm_set_snapshot_phase(consensus_fsm *f, unsigned num, unsigned den);
/* The result of the entry applied last (valid in the apply callback). */
const consensus_result *consensus_fsm_last_result(const consensus_fsm *f);

typedef struct consensus_peer {
    uint64_t id;
    const char *address; /* IPv4 literal "a.b.c.d:port" */
} consensus_peer;

typedef enum consensus_role {
    CONSENSUS_UNAVAILABLE = 0,
    CONSENSUS_FOLLOWER = 1,
    CONSENSUS_CANDIDATE = 2,
    CONSENSUS_LEADER = 3,
} consensus_role;

typedef struct consensus_status {
    consensus_role role;
    uint64_t leader_id; /* 0 when unknown */
    char leader_addr[CONSENSUS_ADDR_MAX + 1];
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    unsigned voters;
    unsigned pending; /* proposals waiting for their result */
    /* wiring: last entry of this node's log (committed or not) */
    uint64_t last_index;
    uint64_t snapshot_index;     /* last snapshot taken or installed here; 0 none */
    uint64_t snapshots_deferred; /* consensus_fsm_snapshots_deferred */
    uint64_t appends_clipped;    /* consensus_raft_clip_compacted rewrites */
    /* Process-wide: libraft io_destroy calls taken off the loop thread
     * (consensus/aio_reap.c) and those made on it. */
    uint64_t aio_destroys_deferred;
    uint64_t aio_destroys_synchronous;
} consensus_status;

typedef void (*consensus_status_cb)(void *arg, const consensus_status *st);

typedef struct consensus_raft_config {
    uint64_t id;                 /* > 0 */
    const char *address;         /* this node's raft address, IPv4 literal + port */
    const char *data_dir;        /* must exist */
    const consensus_peer *peers; /* bootstrap configuration (all voters,
                                    including this node); n_peers 0 = join mode:
                                    start empty and wait to be added */
    size_t n_peers;
    unsigned election_timeout_ms;    /* 0 = 3000 */
    unsigned heartbeat_timeout_ms;   /* 0 = 500 */
    int disable_pre_vote;            /* pre-vote is on unless set */
    unsigned snapshot_threshold;     /* 0 = 65536 */
    unsigned snapshot_trailing;      /* 0 = 8192 */
    uint64_t snapshot_max_bytes;     /* 0 = 64 MiB; see consensus_fsm_set_snapshot_policy */
    unsigned quorum_timeout_ms;      /* proposal not committed by then: MB_ENOQUORUM; 0 = 5000 */
    unsigned monitor_interval_ms;    /* 0 = 50; 1 s while nothing waits for raft */
    unsigned max_voters;             /* 3 or 5; 0 = 3 */
    uint32_t dedup_capacity;         /* 0 = default */
    consensus_effects_cb on_effects; /* may be NULL */
    void *effects_arg;
    uint64_t skip_effects_through; /* highest raft index already in the event log */
    consensus_status_cb on_status; /* on any change of role, leader or term; may be NULL */
    void *status_arg;
    /* While leader, the monitor proposes PROPOSAL_CLOSE expired for open
     * proposals whose deadline_ms (wall clock) has passed, unless set. */
    int disable_proposal_expiry;
    /* Leave libraft's io_destroy of a closed segment writer on the loop
     * thread (30-42 ms there on the project's machine) instead of handing
     * it to a helper thread (consensus/aio_reap.c). Process-wide: the last
     * consensus_raft_init decides. */
    int sync_aio_destroy;
} consensus_raft_config;

typedef struct consensus_raft consensus_raft;

/* Result of a proposal, a barrier or a membership change (borrowed for the
 * call). Fires exactly once on the loop thread, unless the call that
 * registered it returned an error. */
typedef void (*consensus_done_cb)(void *arg, const consensus_result *res);

/* Create the glue on `loop` (borrowed; owned by the daemon; must outlive
 * the glue) and bootstrap on first start when peers are given. The process
 * must ignore SIGPIPE (raft writes to peers that may have gone). Strings of
 * `cfg` are copied. *out owned by the caller; released by consensus_raft_free. */
int consensus_raft_init(uv_loop_t *loop, const consensus_raft_config *cfg, consensus_raft **out,
                        mb_error *err);

/* Start raft (restores the last snapshot and replays the log). */
int consensus_raft_start(consensus_raft *r, mb_error *err);

/* Propose an encoded command (borrowed; framed into a raft_malloc'd copy). On 0 `cb` fires once
 * with the apply result, MB_EUNKNOWN if leadership was lost before commit (retry with the same
 * idempotency id), MB_ENOQUORUM after quorum_timeout_ms, or MB_ECLOSED on close. Otherwise returns
 * the error now (cb never fires) and fills *now (may be NULL): MB_ENOTLEADER with the leader id and
 * address when known, MB_ECLOSED, MB_ENOMEM, MB_ETOOBIG. */
int consensus_raft_propose(consensus_raft *r, const void *cmd, size_t len, consensus_done_cb cb,
                           void *arg, consensus_result *now);

/* Linearizable read: `cb` fires once every entry committed before the call
 * has been applied here (then read consensus_raft_sm()); leader only.
 * Errors as for propose. */
int consensus_raft_barrier(consensus_raft *r, consensus_done_cb cb, void *arg,
                           consensus_result *now);

/* The local state machine (stale-local reads; borrowed). */
const consensus_sm *consensus_raft_sm(const consensus_raft *r);

/* Membership (leader only, one change at a time): add node `id` at
 * `address`, then promote it to voter while fewer than max_voters voters,
 * else to standby. res->version is 1 for voter, 2 for standby. */
int consensus_raft_add(consensus_raft *r, uint64_t id, const char *address, consensus_done_cb cb,
                       void *arg, consensus_result *now);
int consensus_raft_remove(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                          consensus_result *now);
/* Promote member `id` (a standby) to voter, e.g. after a voter left;
 * res->version is 1. Same rules as add. */
int consensus_raft_promote(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                           consensus_result *now);
/* Demote voter `id` to standby (it keeps receiving the log but no longer
 * counts for the quorum), e.g. a voter that has been down too long;
 * res->version is 2. Same rules as add. */
int consensus_raft_demote(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                          consensus_result *now);
/* Transfer leadership to `id` (0 = pick one); the result says who leads after. */
int consensus_raft_transfer(consensus_raft *r, uint64_t id, consensus_done_cb cb, void *arg,
                            consensus_result *now);

void consensus_raft_status(const consensus_raft *r, consensus_status *out);

/* raftperf2: leader only: send every follower the commit index now (a
 * heartbeat round; libraft 0.15 otherwise sends it only with the next
 * append or heartbeat), so followers apply committed entries at once.
 * No log entry, no disk write. The round goes (*sent = 1) only when some
 * follower can apply more than the last round told it (a follower applies
 * up to what it has stored). *lagging = 1 while some follower has not
 * stored every committed entry (call again once it may have).
 * MB_ENOTLEADER otherwise. Loop thread. */
int consensus_raft_send_commit(consensus_raft *r, int *sent, int *lagging);
/* `cb(arg)` runs on the loop thread each time raft has handled an
 * AppendEntries result from a follower (it stored entries, or refused):
 * the moment a lagging follower may be told the commit index
 * (consensus_raft_send_commit) without polling. NULL clears it. */
void consensus_raft_on_append_result(consensus_raft *r, void (*cb)(void *arg), void *arg);
/* libraft 0.15 (and 0.18) checks nothing for an AppendEntries with
 * prev_log_index 0 and takes every entry it no longer holds (compacted into
 * its snapshot) as missing: it appends them after its last entry, at wrong
 * indexes (in a release build a segfault follows, in its entry reference
 * counts). A leader that never got a success from a follower rewinds it to
 * index 1, and with staggered snapshots the follower may have compacted
 * while the leader still holds entry 1. Before raft sees such a message the
 * glue rewrites it to start at the snapshot's index (prev_log_index = the
 * snapshot's, its term; the entries up to it dropped and freed; with none
 * past it, leader_commit capped at the snapshot). Returns 1 when rewritten,
 * 0 when left alone (another prev_log_index, nothing compacted, or a
 * disagreement with the snapshot's term, left to raft), -1 out of memory
 * (message unchanged). */
struct raft_log;
struct raft_append_entries;
int consensus_raft_clip_compacted(const struct raft_log *log, struct raft_append_entries *a);

/* Close: refuse new requests, let pending ones finish (bounded by the
 * quorum timeout), close raft and its transport, then call `cb` (may be
 * NULL). The loop must keep running until then. `r` stays allocated:
 * libraft 0.15 may still touch its I/O state from handle close callbacks
 * after it reported the close, so release it with consensus_raft_free once
 * the loop has run out of handles (uv_run returned). */
void consensus_raft_close(consensus_raft *r, void (*cb)(void *arg), void *arg);

/* Release a glue whose close callback fired, after the loop ran dry
 * (see consensus_raft_close). NULL is a no-op. */
void consensus_raft_free(consensus_raft *r);

#endif /* MB_CONSENSUS_H */
