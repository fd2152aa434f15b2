/* The agent runtime of one node: the node-services interface it needs, and
 * the management API the daemon, HTTP API and CLI use (spawn, list, info,
 * stop, kill, restart, kinds).
 *
 * The runtime never talks to raft, NNG or RocksDB: everything outside the
 * node-local actor system goes through mb_services, a table of function
 * pointers the daemon implements (and tests replace with a fake).
 * Reference: docs/agents.md. */
#ifndef MABEAM_AGENT_RUNTIME_H
#define MABEAM_AGENT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/agent.h>
#include <mabeam/error.h>
#include <mabeam/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Message tags of the built-in kinds (docs/agents.md):
 *  echo:    any message is sent back to its sender with the same tag/bytes.
 *  counter: ADD (int64 little-endian delta, empty = 1) checkpoints after
 *           each change; GET replies GET with the int64 value. Config: the
 *           initial value in decimal.
 *  crasher: CRASH makes its handler fail (MB_ECRASH); anything else is
 *           echoed. Config "fail_init" makes init fail. */
#define MB_TAG_COUNTER_ADD   1u
#define MB_TAG_COUNTER_GET   2u
#define MB_TAG_CRASHER_CRASH 1u

/* Lifecycle events handed to services->event (to the event log). */
typedef enum mb_agent_event_type {
    MB_AEV_SPAWNED = 0,
    MB_AEV_STOPPED = 1, /* normal or shutdown end */
    MB_AEV_CRASHED = 2, /* abnormal end (crash, kill, link) */
    MB_AEV_RESTARTED = 3,
    MB_AEV_UPGRADED = 4,
    MB_AEV_UPGRADE_FAILED = 5, /* rolled back to the old version */
    MB_AEV_POOL_RESIZED = 6,   /* detail: "grow 2->3" / "shrink 3->2" */
    MB_AEV_ESCALATED = 7,      /* supervisor gave up: restart intensity */
} mb_agent_event_type;

/* Short name of an event type ("spawned"); never NULL. */
const char *mb_agent_event_name(int type);

/* One lifecycle event. Borrowed for the duration of services->event. */
typedef struct mb_agent_event {
    int type; /* mb_agent_event_type */
    mb_agent_id id;
    const char *kind;
    uint32_t version;
    int reason;         /* mb_exit_reason for STOPPED/CRASHED */
    int code;           /* mb_err for crashes, else 0 */
    const char *detail; /* never NULL */
    uint64_t time_ms;   /* services clock */
} mb_agent_event;

/* What the runtime needs from the node. `impl` is passed back to every
 * call. Any pointer may be NULL: the matching SDK call then fails with
 * MB_ENOTSUP (or is skipped, for event/telemetry/log). The functions are
 * called from worker threads and must be thread-safe and must not call
 * back into the runtime synchronously except mb_runtime_deliver. Borrowed
 * arguments are valid only during the call. */
typedef struct mb_services {
    void *impl;
    /* Deliver to an agent of another node (id's node part differs). */
    int (*send_remote)(void *impl, mb_agent_id from, mb_agent_id to, uint32_t tag, const void *data,
                       size_t len);
    /* Variables: get fills *out (caller owns it afterwards). */
    int (*var_get)(void *impl, const char *name, mb_value *out, uint64_t *version);
    int (*var_set)(void *impl, mb_agent_id who, const char *name, const mb_value *value);
    int (*var_watch)(void *impl, mb_agent_id who, const char *name, uint64_t from_version);
    int (*propose)(void *impl, mb_agent_id who, const char *name, const mb_value *value,
                   uint64_t *proposal_id);
    int (*vote)(void *impl, mb_agent_id who, uint64_t proposal_id, int accept);
    /* Registry: names (unique per namespace) with capabilities. */
    int (*name_register)(void *impl, mb_agent_id id, const char *ns, const char *name,
                         const char *const *caps, size_t ncaps);
    void (*name_unregister)(void *impl, mb_agent_id id, const char *ns, const char *name);
    int (*name_lookup)(void *impl, const char *ns, const char *name, mb_agent_id *out);
    size_t (*caps_lookup)(void *impl, const char *ns, const char *const *caps, size_t ncaps,
                          mb_agent_id *out, size_t max);
    /* Event log, telemetry, node log. */
    void (*event)(void *impl, const mb_agent_event *ev);
    void (*telemetry)(void *impl, const char *metric, const char *label, double value);
    void (*log)(void *impl, int level, mb_agent_id id, const char *msg);
    /* A checkpoint was taken (for replication). blob is borrowed. */
    void (*checkpoint_saved)(void *impl, mb_agent_id id, const void *blob, size_t len);
    /* Clocks and randomness. monotonic_ms drives timers and back-off. */
    uint64_t (*now_ms)(void *impl);
    uint64_t (*monotonic_ms)(void *impl);
    uint64_t (*random)(void *impl);
    /* Send to a cluster agent by name (namespace "cluster") that is not
     * registered on this node: routed to the node that runs it. */
    int (*send_name)(void *impl, mb_agent_id from, const char *name, uint32_t tag, const void *data,
                     size_t len);
} mb_services;

/* spin_us: idle workers sleep at once, without spinning. For runtimes
 * whose workers share cores with other busy threads (several nodes on one
 * host), where a spinning worker holds a core that another thread waits
 * for. */
#define MB_RUNTIME_NO_SPIN UINT64_MAX

/* Runtime configuration. Zero fields take the documented defaults. */
typedef struct mb_runtime_config {
    uint16_t node_id;       /* node part of agent ids (default 1) */
    unsigned workers;       /* worker threads (default: online CPUs) */
    unsigned batch;         /* messages per agent turn (default 64) */
    uint64_t slow_turn_us;  /* turns longer than this are reported (default 10000;
                               measured with the coarse clock, ~4 ms resolution) */
    uint64_t spin_us;       /* an idle worker spins this long before sleeping (default 50, at
                               most 1 s; MB_RUNTIME_NO_SPIN: it sleeps at once) */
    int manual_timers;      /* 1: no timer thread; call mb_runtime_tick() */
    uint64_t port_reply_ms; /* port agent reply deadline (default 5000) */
} mb_runtime_config;

typedef struct mb_runtime mb_runtime;

/* Create and start a runtime. `svc` is copied; svc->impl must outlive the
 * runtime. The built-in kinds (echo, counter, crasher, supervisor, pool,
 * port) are registered. */
int mb_runtime_start(const mb_runtime_config *cfg, const mb_services *svc, mb_runtime **out,
                     mb_error *err);
/* Kill every agent, stop the threads and free everything. Not from an
 * agent callback. */
void mb_runtime_stop(mb_runtime *rt);

/* Fire the timers that are due by services->monotonic_ms (only needed with
 * manual_timers; harmless otherwise). Returns how many fired. */
unsigned mb_runtime_tick(mb_runtime *rt);

/* Wait until no agent has pending work (mailboxes empty, no worker busy) or
 * timeout_ms passes; MB_ETIMEDOUT then. For tests and shutdown. */
int mb_runtime_quiesce(mb_runtime *rt, uint64_t timeout_ms);

/* ---- kinds ---- */

/* Register a kind compiled into the program. The table is borrowed and
 * must stay valid while the runtime runs. A higher version of a known kind
 * hot-swaps its agents (at their next message); an equal or lower version
 * is MB_EEXIST. */
int mb_runtime_kind_register(mb_runtime *rt, const mb_agent_kind *kind, mb_error *err);
/* Load a kind from a shared object exporting MB_AGENT_KIND_SYMBOL. The
 * library stays loaded until mb_runtime_stop. */
int mb_runtime_kind_load(mb_runtime *rt, const char *path, mb_error *err);

typedef struct mb_kind_info {
    char name[64];
    uint32_t version;
    char path[256];  /* "" for compiled-in kinds */
    uint64_t agents; /* running agents of this kind */
} mb_kind_info;
/* Fill up to max entries; returns the number of kinds. */
size_t mb_runtime_kind_list(mb_runtime *rt, mb_kind_info *out, size_t max);

/* ---- agents ---- */

/* Spawn an agent (see mb_spawn_opts). With opts->supervisor set, the agent
 * is added as a child of that supervisor, which then owns its restarts (the
 * call waits for the supervisor, up to 5 s; from an agent callback it fails
 * with MB_ESTATE). */
int mb_runtime_spawn(mb_runtime *rt, const mb_spawn_opts *opts, mb_agent_id *out, mb_error *err);
/* Stop (normal, terminate runs), kill (brutal, a crash) or restart in
 * place (same id; terminate, then restore from the last checkpoint or
 * init from config). Asynchronous: the agent acts at its next turn. */
int mb_runtime_stop_agent(mb_runtime *rt, mb_agent_id id);
int mb_runtime_kill_agent(mb_runtime *rt, mb_agent_id id);
int mb_runtime_restart_agent(mb_runtime *rt, mb_agent_id id);
/* Take a checkpoint at the agent's turn, after the messages queued before
 * this call (handed to services->checkpoint_saved like any other); a stop
 * requested right after it therefore ends the agent with that state
 * saved. Asynchronous; MB_ENOAGENT when there is no such agent. */
int mb_runtime_checkpoint_agent(mb_runtime *rt, mb_agent_id id);

/* Inject a message from outside (remote node, HTTP). Data copied. */
int mb_runtime_deliver(mb_runtime *rt, mb_agent_id from, mb_agent_id to, uint32_t tag,
                       const void *data, size_t len);
/* Hand a variable change or a vote request to an agent (from the node's
 * watch/proposal machinery). Arguments are copied. */
int mb_runtime_var_changed(mb_runtime *rt, mb_agent_id to, const char *name, const mb_value *value,
                           uint64_t version);
/* The same change to `n` agents at once (a watch fan-out): one shared copy
 * of name and value, and the agents that became runnable go to the run
 * queue under one lock with one wake-up, instead of a lock, a copy and a
 * possible futex wake per agent. `rcs[i]` gets each agent's result (0,
 * MB_ENOAGENT, MB_ENOMEM); `to` and `rcs` are the caller's (n entries).
 * Returns MB_ENOMEM if the shared copy cannot be made (then every rcs[i] is
 * MB_ENOMEM), else 0. */
int mb_runtime_var_changed_many(mb_runtime *rt, const mb_agent_id *to, size_t n, const char *name,
                                const mb_value *value, uint64_t version, int *rcs);
int mb_runtime_vote_request(mb_runtime *rt, mb_agent_id to, const mb_proposal *p);

typedef enum mb_agent_status {
    MB_AGENT_RUNNING = 0, /* idle or with pending messages */
    MB_AGENT_EXITING = 1, /* stop/kill requested, not yet ended */
} mb_agent_status;

typedef struct mb_agent_info {
    mb_agent_id id;
    char kind[64];
    uint32_t version;
    char name[64];
    char ns[64];
    int status;         /* mb_agent_status */
    mb_agent_id parent; /* supervisor or spawner, 0 = none */
    mb_agent_usage usage;
    int last_error; /* mb_err of the last restart cause, 0 = none */
    char last_error_msg[128];
    int is_port;
    int os_pid; /* port agents: the process, else 0 */
    /* Deliveries that ran a callback able to change the agent's state
     * (every kind of message but checkpoint requests). Unchanged since a
     * checkpoint was taken: the state is still what it saw (not for port
     * agents, whose process runs on its own). */
    uint64_t turns;
} mb_agent_info;

int mb_runtime_agent_info(mb_runtime *rt, mb_agent_id id, mb_agent_info *out);

/* The part of mb_agent_info a node asks about every agent many times a
 * second, without formatting names or reading /proc: running (no stop or
 * kill requested), turns and is_port as in mb_agent_info. MB_ENOAGENT when
 * the agent is gone. */
typedef struct mb_agent_state {
    int running;
    int is_port;
    uint64_t turns;
} mb_agent_state;
int mb_runtime_agent_state(mb_runtime *rt, mb_agent_id id, mb_agent_state *out);

/* Filter for list; NULL/0 fields match everything. */
typedef struct mb_agent_filter {
    const char *kind;
    const char *ns;
    mb_agent_id parent;
} mb_agent_filter;
/* Fill up to max entries (a snapshot; agents may end meanwhile); returns
 * how many matched in total. */
size_t mb_runtime_list(mb_runtime *rt, const mb_agent_filter *f, mb_agent_info *out, size_t max);
/* Number of live agents. */
uint64_t mb_runtime_agent_count(mb_runtime *rt);

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_AGENT_RUNTIME_H */
