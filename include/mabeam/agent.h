/* The MABEAM agent SDK: what an agent kind implements and what it may call.
 *
 * An agent is an actor: a kind (the table of callbacks below), its private
 * state, and a mailbox. The runtime (agents/, see <mabeam/agent_runtime.h>)
 * calls a kind's callbacks on one of its worker threads, never on two
 * threads at once for the same agent, so an agent's state needs no locks.
 * Callbacks must not block: use timers and messages instead of sleeping.
 *
 * Ownership rules for the whole SDK:
 *  - every pointer the runtime passes into a callback (messages, config,
 *    values, proposals) is borrowed for the duration of that callback;
 *  - every buffer an agent passes to an mb_* call is copied before the call
 *    returns (the caller keeps ownership), except where a comment says the
 *    runtime takes it;
 *  - an mb_ctx is valid only during the callback it was passed to.
 * Reference: docs/agents.md. */
#ifndef MABEAM_AGENT_H
#define MABEAM_AGENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>
#include <mabeam/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Agent ids are unique across the cluster: the high 16 bits are the node id
 * of the node that created the agent, the low 48 bits a per-node serial that
 * is never reused while the node runs. 0 is "no agent". */
typedef uint64_t mb_agent_id;
#define MB_AGENT_NONE            ((mb_agent_id)0)
#define MB_AGENT_ID(node, local) (((uint64_t)(node) << 48) | ((uint64_t)(local)&0xFFFFFFFFFFFFull))
#define MB_AGENT_NODE(id)        ((uint16_t)((uint64_t)(id) >> 48))
#define MB_AGENT_LOCAL(id)       ((uint64_t)(id)&0xFFFFFFFFFFFFull)

/* Version of the kind table layout; a kind sets .abi to this. */
#define MB_AGENT_ABI 1u

/* Why an agent ended. NORMAL is a clean stop; every other reason is
 * abnormal: it propagates over links and makes transient children restart. */
typedef enum mb_exit_reason {
    MB_EXIT_NORMAL = 0,   /* mb_stop_self() or a stop request */
    MB_EXIT_CRASH = 1,    /* a callback returned an error */
    MB_EXIT_KILLED = 2,   /* killed: brutal, no terminate callback */
    MB_EXIT_SHUTDOWN = 3, /* stopped by its supervisor or the runtime */
    MB_EXIT_LINK = 4,     /* a linked agent ended abnormally */
    MB_EXIT_NOPROC = 5,   /* (in notices) the agent did not exist */
} mb_exit_reason;

/* Short name of an exit reason ("crash"); never NULL. */
const char *mb_exit_reason_name(int reason);

/* Message types the handle callback sees. */
typedef enum mb_msg_type {
    MB_MSG_USER = 0,        /* an ordinary message: tag + bytes */
    MB_MSG_TIMER = 1,       /* a timer of this agent fired: tag + bytes */
    MB_MSG_DOWN = 2,        /* a monitored agent ended: data is mb_exit_info */
    MB_MSG_EXIT = 3,        /* a linked agent or child ended and this agent
                               traps exits: data is mb_exit_info */
    MB_MSG_UNDELIVERED = 4, /* a message sent with MB_SEND_NOTIFY reached no
                               agent: from = the dead target, tag/bytes = the
                               original message */
} mb_msg_type;

/* A message as a handler sees it. Borrowed: valid during the callback. */
typedef struct mb_msg {
    mb_agent_id from; /* sender, or the agent a notice is about */
    uint32_t type;    /* mb_msg_type */
    uint32_t tag;     /* user-chosen small integer, e.g. the request type */
    const void *data; /* len bytes; for DOWN/EXIT an mb_exit_info */
    size_t len;
} mb_msg;

/* Content of DOWN and EXIT notices. Borrowed like the message. */
typedef struct mb_exit_info {
    mb_agent_id id;         /* the agent that ended */
    int reason;             /* mb_exit_reason */
    int code;               /* mb_err of a crash, else 0 */
    const char *detail;     /* human text ("handle returned MB_EINVAL"), never NULL */
    uint64_t monitor_ref;   /* DOWN: the reference mb_monitor() returned */
    const void *checkpoint; /* EXIT to the parent: the child's last checkpoint */
    size_t checkpoint_len;  /* (NULL/0 if it never made one) */
} mb_exit_info;

/* A proposal this agent is asked to vote on. Borrowed. */
typedef struct mb_proposal {
    uint64_t id;
    const char *variable;
    const mb_value *value; /* the proposed value */
    mb_agent_id proposer;
    uint64_t deadline_ms; /* wall clock, ms since the epoch */
} mb_proposal;

typedef struct mb_ctx mb_ctx;

/* A kind: the code of an agent. All callbacks but handle are optional
 * (NULL). A callback that returns non-zero (an mb_err) crashes the agent. */
typedef struct mb_agent_kind {
    uint32_t abi;     /* MB_AGENT_ABI */
    const char *name; /* unique kind name, e.g. "counter" */
    uint32_t version; /* a newer version of a loaded kind hot-swaps agents */

    /* Create the state from `config` (NUL-terminated text, may be ""). On
     * success store the state (may be NULL) in *state; the agent owns it. */
    int (*init)(mb_ctx *ctx, const char *config, void **state);
    /* Handle one message. */
    int (*handle)(mb_ctx *ctx, void *state, const mb_msg *msg);
    /* A watched variable changed (see mb_var_watch). */
    int (*var_changed)(mb_ctx *ctx, void *state, const char *name, const mb_value *value,
                       uint64_t version);
    /* Vote on a proposal: call mb_vote() now or later (e.g. from a timer). */
    int (*vote)(mb_ctx *ctx, void *state, const mb_proposal *proposal);
    /* Serialise the state: store a malloc'd buffer in *blob (the runtime
     * takes it and frees it with free()) and its size in *len. */
    int (*checkpoint)(mb_ctx *ctx, void *state, void **blob, size_t *len);
    /* Rebuild the state from a checkpoint (instead of init) after a
     * restart. Without it, a restarted agent is re-initialised from config. */
    int (*restore)(mb_ctx *ctx, const char *config, const void *blob, size_t len, void **state);
    /* Called on the NEW version of a kind to take over the state of an agent
     * running `old_version`. On success the new code owns the result in
     * *new_state and has released whatever of old_state it does not keep;
     * on failure old_state must be left untouched (the agent rolls back to
     * the old code). Without it the runtime uses old checkpoint + new
     * restore. */
    int (*upgrade)(mb_ctx *ctx, uint32_t old_version, void *old_state, void **new_state);
    /* Clean end (stop, crash, shutdown): release the state. Not called when
     * the agent is killed (destroy is, see below). */
    void (*terminate)(mb_ctx *ctx, void *state, int reason);
    /* Release memory only, no side effects: used when the agent is killed.
     * NULL means free(state). */
    void (*destroy)(void *state);
} mb_agent_kind;

/* Name of the symbol a kind shared object exports; its type is
 * mb_agent_kind_fn. The table it returns must stay valid while the library
 * is loaded (a static const table). */
#define MB_AGENT_KIND_SYMBOL "mb_agent_kind_v1"
typedef const mb_agent_kind *(*mb_agent_kind_fn)(void);

/* ---- the context: what a callback may do ---- */

/* This agent's id. */
mb_agent_id mb_self(mb_ctx *ctx);

/* Send flags. */
#define MB_SEND_NOTIFY                                                                             \
    1u /* if the target is dead or dies before handling                                            \
          the message, the sender receives it back as                                              \
          MB_MSG_UNDELIVERED */

/* Send `len` bytes (copied) with `tag` to agent `to` (local or remote).
 * Returns MB_ENOAGENT if a local target does not exist (with
 * MB_SEND_NOTIFY an UNDELIVERED notice is also queued), MB_EFULL if its
 * mailbox is bounded and full (see docs/agents.md, overflow policy). */
int mb_send(mb_ctx *ctx, mb_agent_id to, uint32_t tag, const void *data, size_t len);
/* Send to the agent registered as `name` in namespace `ns`. An agent of
 * this node is sent to at once (mb_send). In namespace "cluster" a name
 * not registered here is a cluster agent placed elsewhere: the message is
 * routed through the node to the node that runs it now (its placement in
 * the replicated state) and delivered there by name — at most once, in
 * order per sender-receiver pair while neither moves (docs/node-services.md,
 * "Agents and the cluster"); a "cluster" name with no placement is
 * dropped and counted. MB_ENOAGENT for a name of another namespace not
 * registered here; MB_EUNAVAIL without cluster services; MB_EFULL when the
 * node's queue is full. */
int mb_send_name(mb_ctx *ctx, const char *ns, const char *name, uint32_t tag, const void *data,
                 size_t len);
int mb_send_flags(mb_ctx *ctx, mb_agent_id to, uint32_t tag, const void *data, size_t len,
                  unsigned flags);

/* Timers: deliver an MB_MSG_TIMER with `tag` and a copy of `data` to this
 * agent after `delay_ms` (once) or every `period_ms`. *timer_id (may be
 * NULL) receives an id for mb_timer_cancel. Timers of an ended agent die. */
int mb_send_after(mb_ctx *ctx, uint64_t delay_ms, uint32_t tag, const void *data, size_t len,
                  uint64_t *timer_id);
int mb_send_every(mb_ctx *ctx, uint64_t period_ms, uint32_t tag, const void *data, size_t len,
                  uint64_t *timer_id);
/* Cancel a timer; MB_ENOTFOUND if it already fired (one-shot) or is gone. */
int mb_timer_cancel(mb_ctx *ctx, uint64_t timer_id);

/* Spawn options (also used by the management API). Strings are copied. */
typedef struct mb_spawn_opts {
    const char *kind;        /* kind name (required) */
    const char *config;      /* NULL = "" */
    const char *name;        /* registry name, NULL = unnamed */
    const char *ns;          /* registry namespace, NULL = "default" */
    const char *const *caps; /* capabilities, ncaps entries */
    size_t ncaps;
    mb_agent_id supervisor; /* management API: add as a child of
                               this supervisor agent (0 = none) */
    int restart;            /* mb_restart_type, for supervised children */
    uint32_t mailbox_max;   /* 0 = unbounded */
    int overflow;           /* mb_overflow_policy when full */
    int link;               /* link the child to the spawner */
    int trap_exits;         /* start trapping exits */
    /* Management API (placement): start from this checkpoint (borrowed,
     * checkpoint_len bytes) through the kind's restore instead of init;
     * NULL = init. Ignored by kinds without restore. */
    const void *checkpoint;
    size_t checkpoint_len;
} mb_spawn_opts;

typedef enum mb_restart_type {
    MB_RESTART_PERMANENT = 0, /* always restarted */
    MB_RESTART_TRANSIENT = 1, /* restarted only after an abnormal exit */
    MB_RESTART_TEMPORARY = 2, /* never restarted */
} mb_restart_type;

typedef enum mb_overflow_policy {
    MB_OVERFLOW_REJECT = 0, /* the send fails with MB_EFULL */
    MB_OVERFLOW_CRASH = 1,  /* the send fails and the receiver crashes */
} mb_overflow_policy;

/* Spawn an agent; its init runs before this returns (an init error is
 * returned here). The new agent's parent is the caller: when it ends, the
 * caller gets an MB_MSG_EXIT (if it traps exits or is linked). */
int mb_spawn(mb_ctx *ctx, const mb_spawn_opts *opts, mb_agent_id *out, mb_error *err);

/* End this agent normally after the current callback returns. */
void mb_stop_self(mb_ctx *ctx);
/* Ask another agent to end with `reason` (MB_EXIT_KILLED = kill). */
int mb_exit_agent(mb_ctx *ctx, mb_agent_id id, int reason);

/* Take a checkpoint after the current callback returns (calls the kind's
 * checkpoint; the blob is kept for restarts and handed to services). */
int mb_request_checkpoint(mb_ctx *ctx);

/* Links (both ways; an abnormal end of one ends the other unless it traps
 * exits) and monitors (one way; the monitor receives MB_MSG_DOWN). A
 * monitor of a dead agent fires at once with reason MB_EXIT_NOPROC. */
int mb_link(mb_ctx *ctx, mb_agent_id id);
int mb_monitor(mb_ctx *ctx, mb_agent_id id, uint64_t *ref);
void mb_trap_exits(mb_ctx *ctx, int on);

/* Log levels. */
enum { MB_LOG_DEBUG = 0, MB_LOG_INFO = 1, MB_LOG_WARN = 2, MB_LOG_ERROR = 3 };
void mb_log(mb_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* This agent's own counters. */
typedef struct mb_agent_usage {
    uint64_t messages;     /* handled so far */
    uint32_t mailbox_len;  /* waiting now */
    uint32_t restarts;     /* restarts of this agent (same id, or by its supervisor) */
    uint64_t memory_bytes; /* runtime memory of the agent + queued messages */
    /* Time in its callbacks, estimated from the coarse clock (unbiased over
     * many turns); for port agents (info) the process's user+system CPU. */
    uint64_t cpu_ns;
} mb_agent_usage;
void mb_usage(mb_ctx *ctx, mb_agent_usage *out);

/* Clock and randomness (from the node services, so tests can inject them). */
uint64_t mb_now_ms(mb_ctx *ctx);
uint64_t mb_random(mb_ctx *ctx);

/* Variables and proposals, through the node services. out values are owned
 * by the caller afterwards (mb_value_free). */
int mb_var_get(mb_ctx *ctx, const char *name, mb_value *out, uint64_t *version);
int mb_var_set(mb_ctx *ctx, const char *name, const mb_value *value);
int mb_var_watch(mb_ctx *ctx, const char *name, uint64_t from_version);
int mb_propose(mb_ctx *ctx, const char *name, const mb_value *value, uint64_t *proposal_id);
int mb_vote(mb_ctx *ctx, uint64_t proposal_id, int accept);

/* Registry lookups, through the node services. */
int mb_lookup(mb_ctx *ctx, const char *ns, const char *name, mb_agent_id *out);
/* Agents having all `ncaps` capabilities; returns how many were found
 * (up to max stored in out). */
size_t mb_lookup_caps(mb_ctx *ctx, const char *ns, const char *const *caps, size_t ncaps,
                      mb_agent_id *out, size_t max);

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_AGENT_H */
