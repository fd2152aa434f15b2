/* Internal interface of the agent runtime (agents/ only): the agent and
 * message structures, the mailbox, the scheduler hooks, timers, the kind
 * table, and the entry points the built-in kinds (supervisor, pool, port)
 * use beyond the public SDK. */
#ifndef MB_AGENTS_INTERNAL_H
#define MB_AGENTS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mabeam/agent.h>
#include <mabeam/agent_runtime.h>

/* Internal message types (signals), beyond the public mb_msg_type. */
enum {
    RT_SIG_EXIT = 100,       /* stop request; tag = mb_exit_reason */
    RT_SIG_LINK = 101,       /* `from` links to this agent */
    RT_SIG_MONITOR = 102,    /* `from` monitors this agent; data = uint64 ref */
    RT_SIG_LINK_EXIT = 103,  /* linked agent ended; data = struct rt_exit */
    RT_SIG_VAR = 104,        /* ext = struct rt_var */
    RT_SIG_VOTE = 105,       /* ext = struct rt_vote */
    RT_SIG_RESTART = 106,    /* restart in place */
    RT_SIG_CALL = 107,       /* ext = struct rt_call: run a function in the agent's turn */
    RT_SIG_PORT = 108,       /* port I/O event; tag = PORT_EV_*, data = line */
    RT_SIG_CHECKPOINT = 109, /* take a checkpoint now (placement: replication, drain) */
};

#define RT_MSG_NOTIFY 1u /* MB_SEND_NOTIFY */
/* Lives inside a block shared by a fan-out's messages (the variable change
 * of mb_runtime_var_changed_many): freeing it only calls ext_free, which
 * drops the block's reference; the last one frees the block. */
#define RT_MSG_INBLOCK 2u

/* One queued message: header + inline payload. */
struct rt_msg {
    struct rt_msg *_Atomic next;
    mb_agent_id from;
    uint32_t type;
    uint32_t tag;
    uint32_t flags;
    size_t len;
    void *ext;                /* signal payload owned by the message */
    void (*ext_free)(void *); /* releases ext when the message is freed */
    _Alignas(16) unsigned char data[];
};

/* Payload of LINK_EXIT and DOWN messages. */
struct rt_exit {
    mb_agent_id id;
    int reason;
    int code;
    uint64_t ref;
    void *ckpt; /* copy for the parent only; owned by the message (ext) */
    size_t ckpt_len;
    char detail[96];
};

/* A function run inside an agent's turn (RT_SIG_CALL). `fn` gets the
 * context and state; if the agent dies first, `cancel` runs instead (from
 * the exit path). Both get `arg`. */
struct rt_call {
    void (*fn)(mb_ctx *ctx, void *state, void *arg);
    void (*cancel)(void *arg);
    void *arg;
};

struct rt_kind;

/* Rarely used per-agent data, allocated on demand. */
struct rt_agent_ext {
    char *name;
    char *ns;
    int registered; /* name_register succeeded: unregister at the end */
    mb_agent_id *links;
    size_t nlinks, caplinks;
    struct {
        mb_agent_id who;
        uint64_t ref;
    } * mons;
    size_t nmons, capmons;
    void *ckpt;
    size_t ckpt_len;
    const mb_agent_kind *upgrade_failed; /* don't retry this version */
    int last_error;
    char last_error_msg[128];
    _Atomic int os_pid;
};

/* Layout: fields senders touch first, then cold fields and the stub (64
 * bytes), then the fields only the agent's own turn writes, so that a busy
 * sender and the receiver's worker do not share a cache line. */
struct rt_agent {
    /* read or written by senders (under the shard lock) */
    mb_agent_id id;
    struct rt_agent *hnext; /* agent map chain */
    struct rt_msg *_Atomic mb_head;
    _Atomic uint32_t mlen;
    _Atomic uint32_t sched; /* 0 idle; else queued or running (+1 per wake-up) */
    _Atomic int kill_req;   /* brutal kill requested: RT_KILL_* */
    _Atomic int crash_req;  /* mb_err: mailbox overflow with CRASH policy */
    uint32_t mmax;
    uint8_t overflow;
    /* cold */
    uint8_t trap_exits;
    struct mb_runtime *rt;
    struct rt_kind *kent;
    mb_agent_id parent;
    char *config;                     /* NULL = "" */
    struct rt_agent_ext *_Atomic ext; /* lazily made by the own turn; info reads it */
    struct rt_msg stub;               /* mailbox stub (Vyukov's intrusive MPSC queue) */
    /* written by the agent's own turn */
    struct rt_msg *mb_tail;
    void *state;
    const mb_agent_kind *_Atomic kind;
    _Atomic uint64_t msgs;
    _Atomic uint64_t turns; /* callbacks that may change the state: all but checkpoints */
    _Atomic uint64_t cpu_ns;
    _Atomic uint32_t restarts;
    uint8_t exiting;
    uint8_t want_ckpt;
    uint8_t brutal; /* ending without terminate (kill, runtime stop) */
    int exit_reason;
    int exit_code;
    char *exit_detail;
};

/* Values of rt_agent.kill_req: a kill from outside ends the agent as
 * MB_EXIT_KILLED (a crash); the runtime's stop ends it as MB_EXIT_SHUTDOWN
 * (a stop), equally brutal. */
#define RT_KILL_NONE     0
#define RT_KILL_CRASH    1
#define RT_KILL_SHUTDOWN 2

/* Context passed to callbacks. */
struct mb_ctx {
    struct mb_runtime *rt;
    struct rt_agent *a;
};

/* A registered kind name with its current version. */
struct rt_kind {
    struct rt_kind *next;
    char name[64];
    const mb_agent_kind *_Atomic current;
    char path[256];
    _Atomic uint64_t agents;
};

/* ---- runtime.c ---- */
const mb_services *rt_services(struct mb_runtime *rt);
const mb_runtime_config *rt_config(struct mb_runtime *rt);
uint64_t rt_monotonic_ms(struct mb_runtime *rt);
/* Emit a lifecycle event. */
void rt_event(struct mb_runtime *rt, int type, mb_agent_id id, const mb_agent_kind *kind,
              int reason, int code, const char *detail);
void rt_telemetry(struct mb_runtime *rt, const char *metric, const char *label, double value);
/* Allocate a message with a copy of data. NULL on OOM. */
struct rt_msg *rt_msg_new(mb_agent_id from, uint32_t type, uint32_t tag, const void *data,
                          size_t len);
void rt_msg_free(struct rt_msg *m);
/* Deliver m to `to`; takes m on success only. Returns MB_ENOAGENT/MB_EFULL. */
int rt_deliver(struct mb_runtime *rt, mb_agent_id to, struct rt_msg *m);
/* What a restart carries over into the new instance. */
struct rt_restart {
    const void *ckpt; /* borrowed; NULL = init from config */
    size_t ckpt_len;
    uint32_t restarts; /* seeds the restart counter */
    int last_error;    /* mb_err that caused the restart */
    const char *last_error_msg;
};
/* Spawn (see mb_spawn); parent may be NULL; restart NULL for a fresh agent
 * (else its checkpoint is restored instead of running init). */
int rt_spawn(struct mb_runtime *rt, struct rt_agent *parent, const mb_spawn_opts *opts,
             const struct rt_restart *restart, mb_agent_id *out, mb_error *err);
/* Send a stop/kill request. */
int rt_exit_agent(struct mb_runtime *rt, mb_agent_id id, int reason);
/* Mailbox length of a local agent, or -1 if it does not exist. */
long rt_mailbox_len(struct mb_runtime *rt, mb_agent_id id);
/* Crash the current agent after the callback with code and detail. */
void rt_crash(mb_ctx *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 1 if the calling thread is one of rt's workers. */
int rt_on_worker(struct mb_runtime *rt);
/* Record the OS pid of a port agent (for info). */
void rt_set_os_pid(mb_ctx *ctx, int pid);
/* Run fn in the turn of agent `to` (see struct rt_call). Takes call (a heap
 * object the caller allocated) on success; on failure nothing ran. */
int rt_call_agent(struct mb_runtime *rt, mb_agent_id to, struct rt_call *call);

/* ---- kinds.c ---- */
int rt_kinds_init(struct mb_runtime *rt);
void rt_kinds_close(struct mb_runtime *rt);
struct rt_kind *rt_kind_find(struct mb_runtime *rt, const char *name);

/* ---- timers.c ---- */
struct rt_timers;
int rt_timers_start(struct mb_runtime *rt, int manual, struct rt_timers **out);
void rt_timers_stop(struct rt_timers *t);
int rt_timer_add(struct rt_timers *t, mb_agent_id target, uint64_t delay_ms, uint64_t period_ms,
                 uint32_t tag, const void *data, size_t len, uint64_t *id);
int rt_timer_cancel(struct rt_timers *t, mb_agent_id owner, uint64_t id);
unsigned rt_timers_tick(struct rt_timers *t);
struct rt_timers *rt_timers_of(struct mb_runtime *rt);

/* ---- port.c ---- */
struct rt_port_io;
int rt_port_io_start(struct mb_runtime *rt, struct rt_port_io **out);
void rt_port_io_stop(struct rt_port_io *io);
struct rt_port_io *rt_port_io_of(struct mb_runtime *rt);
/* An RT_SIG_PORT message reached a port agent. */
void rt_port_event(mb_ctx *ctx, void *state, uint32_t tag, const void *data, size_t len);

/* ---- builtin kinds ---- */
extern const mb_agent_kind mb_kind_echo;
extern const mb_agent_kind mb_kind_counter;
extern const mb_agent_kind mb_kind_crasher;
extern const mb_agent_kind mb_kind_voter;     /* proposals piece */
extern const mb_agent_kind mb_kind_optimiser; /* studies: a study's optimiser */
extern const mb_agent_kind mb_kind_evaluator; /* studies: an evaluator slot */
extern const mb_agent_kind mb_kind_supervisor;
extern const mb_agent_kind mb_kind_pool;
extern const mb_agent_kind mb_kind_port;

/* supervisor.c: add a child through the management API (blocking). */
int rt_supervisor_add_child(struct mb_runtime *rt, mb_agent_id sup, const mb_spawn_opts *opts,
                            mb_agent_id *out, mb_error *err);

#endif /* MB_AGENTS_INTERNAL_H */
