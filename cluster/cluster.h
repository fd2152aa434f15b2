/* cluster/: the NNG mesh between mabeamd nodes — authenticated envelopes,
 * reliable RPC with server-side deduplication, ordered at-most-once agent
 * messages, heartbeats, joining through seeds, leader discovery — and the
 * failure detector (a pure module with an injected clock).
 *
 * This is the module's one interface header. Threading: every function runs
 * on the thread of the uv loop given to mesh_open() unless it says
 * otherwise; every callback is invoked on that thread. NNG's threads only
 * enqueue and wake the loop with uv_async_send. See docs/cluster.md for the
 * wire format, delivery semantics, security and detector timings. */
#ifndef MB_CLUSTER_H
#define MB_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <nng/nng.h>
#include <uv.h>

#include <mabeam/error.h>

/* ------------------------------------------------------------------------ */
/* Failure detector (pure: no I/O, no clock; time is passed in).            */
/* ------------------------------------------------------------------------ */

typedef enum cluster_peer_status {
    CLUSTER_PEER_ALIVE = 0,
    CLUSTER_PEER_SUSPECT = 1,
    CLUSTER_PEER_DOWN = 2,
} cluster_peer_status;

/* "alive", "suspect", "down"; never NULL. */
const char *cluster_peer_status_name(cluster_peer_status s);

typedef struct fd_config {
    int64_t suspect_after_ms; /* silence before ALIVE -> SUSPECT; default 500 */
    /* silence before -> DOWN (> suspect) while the peer is not connected
     * (its process is gone: the connection was closed or refused);
     * default 600 */
    int64_t down_after_ms;
    /* silence before -> DOWN while a connection to the peer stays open (a
     * hung or paused process, a host gone without closing its connections);
     * 0 = down_after_ms; otherwise >= down_after_ms. Default 0. */
    int64_t down_connected_after_ms;
    /* Stall compensation: when two fd_tick() calls are further apart than
     * this, the detector's own loop was stalled and the time beyond
     * stall_after_ms is not counted as any peer's silence (signs of life
     * queued during the stall have not been seen yet). 0 = off. */
    int64_t stall_after_ms;
} fd_config;

#define FD_DEFAULT_SUSPECT_AFTER_MS 500
#define FD_DEFAULT_DOWN_AFTER_MS    600

/* Called on every status change of a peer, from fd_heard()/fd_tick(); it
 * may add or remove peers. */
typedef void (*fd_change_cb)(void *user, uint64_t node_id, cluster_peer_status from,
                             cluster_peer_status to);

typedef struct fd_peer_view {
    uint64_t node_id;
    cluster_peer_status status;
    int64_t last_heard_ms; /* detector clock; the time it was added if never heard */
    int64_t since_ms;      /* when the current status began */
    double rtt_ms;         /* smoothed round-trip time; < 0 when not measured yet */
    int connected;         /* as last set by fd_set_connected(); 0 at fd_add() */
} fd_peer_view;

typedef struct fd fd;

/* Create a detector. `cfg` is copied (NULL = defaults; zero fields take
 * defaults); fails with MB_EINVAL when down_after_ms <= suspect_after_ms
 * or when down_connected_after_ms (if set) < down_after_ms.
 * `cb` may be NULL. *out is owned by the caller: fd_free(). */
int fd_new(const fd_config *cfg, fd_change_cb cb, void *user, fd **out, mb_error *err);
void fd_free(fd *d);

/* Start watching `node_id` (> 0) at time now_ms as ALIVE (it gets a full
 * suspect_after_ms of grace). MB_EEXIST if already watched. */
int fd_add(fd *d, uint64_t node_id, int64_t now_ms);
/* Stop watching; MB_ENOTFOUND if unknown. No callback is made. */
int fd_remove(fd *d, uint64_t node_id);
/* A sign of life from `node_id` at now_ms; rtt_ms >= 0 feeds the RTT
 * estimate (EWMA 1/8), < 0 means "no measurement". A SUSPECT or DOWN peer
 * becomes ALIVE (with a callback). MB_ENOTFOUND if unknown. */
int fd_heard(fd *d, uint64_t node_id, int64_t now_ms, double rtt_ms);
/* Whether a connection to `node_id` is open (the second signal of a DOWN:
 * see down_connected_after_ms). MB_ENOTFOUND if unknown. */
int fd_set_connected(fd *d, uint64_t node_id, int connected);
/* Re-evaluate every peer at now_ms; makes the ALIVE->SUSPECT->DOWN
 * transitions (a peer silent past its down threshold goes straight to DOWN,
 * with one callback per step). Time going backwards is treated as no time;
 * a gap since the previous tick above stall_after_ms is discounted (see
 * fd_config). */
void fd_tick(fd *d, int64_t now_ms);
/* The earliest detector time at which fd_tick could change a status with
 * no further fd_heard: a watched ALIVE peer's last_heard + suspect_after, a
 * SUSPECT one's last_heard + down_after (down_connected_after is never
 * shorter); INT64_MAX when every peer is DOWN or none is watched. A caller
 * that ticks only then (and when it has other work) sees every transition
 * on time without polling. */
int64_t fd_next_deadline(const fd *d);
/* Status of one peer; MB_ENOTFOUND if unknown. */
int fd_get(const fd *d, uint64_t node_id, fd_peer_view *out);
/* Number of peers watched, and the i-th (0 <= i < count) in id order. */
size_t fd_count(const fd *d);
void fd_at(const fd *d, size_t i, fd_peer_view *out);

/* ------------------------------------------------------------------------ */
/* Mesh endpoint.                                                            */
/* ------------------------------------------------------------------------ */

typedef struct mesh mesh;

enum {
    MESH_LOG_DEBUG = 0,
    MESH_LOG_INFO = 1,
    MESH_LOG_WARN = 2,
    MESH_LOG_ERROR = 3,
};

/* First method number available to mesh_register(); below are the mesh's. */
#define MESH_METHOD_USER_MIN 16u

typedef struct mesh_callbacks {
    void *user;
    /* A log line (node/ owns logging). `msg` is valid during the call. */
    void (*log)(void *user, int level, const char *msg);
    /* A peer's failure-detector status changed. */
    void (*peer_status)(void *user, uint64_t node_id, cluster_peer_status from,
                        cluster_peer_status to);
    /* A node joined through this node (as a seed) or was first heard of:
     * the hook for the consensus layer's raft membership change. */
    void (*peer_joined)(void *user, uint64_t node_id, const char *url);
    /* The best known (term, leader) changed, learned locally or from a
     * heartbeat. `url` is "" when the leader's address is not known. */
    void (*leader_changed)(void *user, uint64_t term, uint64_t leader_id, const char *url);
    /* An agent message from `from_node`. Pointers are valid during the call. */
    void (*agent_message)(void *user, uint64_t from_node, const char *from_agent,
                          const char *to_agent, const void *payload, size_t len);
} mesh_callbacks;

typedef struct mesh_config {
    uint64_t node_id;          /* > 0, unique in the cluster */
    const char *listen_url;    /* "tcp://127.0.0.1:7710", "tls+tcp://..."; port 0 = any */
    const char *advertise_url; /* what peers dial; NULL = listen_url (with the bound port) */
    const void *secret;        /* shared cluster secret, >= 16 bytes; copied */
    size_t secret_len;
    const char *const *seeds; /* URLs of seed nodes to join through; may be NULL */
    size_t n_seeds;
    /* TLS, used for tls+tcp:// URLs. cert_key_file: PEM with this node's
     * certificate and private key. ca_file: PEM of the CA that signs every
     * node's certificate; peers are then verified in both directions.
     * server_name: the name expected in peers' certificates (NULL = the
     * host of the URL dialled). */
    const char *tls_cert_key_file;
    const char *tls_ca_file;
    const char *tls_server_name;
    uint32_t heartbeat_interval_ms;   /* default 200 */
    uint32_t suspect_after_ms;        /* default 500 */
    uint32_t down_after_ms;           /* default 600: silent and not connected */
    uint32_t down_connected_after_ms; /* default 5000: silent, connection open */
    uint32_t rpc_attempt_ms;    /* a call is re-sent (same request id) after this; default 500 */
    uint32_t max_clock_skew_ms; /* envelopes older/newer than this are refused; default 30000 */
    uint32_t server_contexts;   /* concurrent incoming requests; default 256 */
    uint32_t dedup_entries;     /* answered requests remembered; default 4096 */
    uint32_t max_message_bytes; /* largest envelope; default 4 MiB */
    uint32_t agent_queue_max;   /* queued agent messages, all peers; default 65536 */
    /* This start's incarnation: must exceed every earlier one of this node
     * id, or peers refuse its envelopes as replays. 0 = the wall clock in
     * microseconds (fine unless the clock steps back across a restart). */
    uint64_t incarnation;
    /* Lines below this level are neither formatted nor passed to cb.log;
     * default (0) MESH_LOG_DEBUG. The node maps levels as nc = mesh + 1. */
    int log_level;
    mesh_callbacks cb;
    /* How the mesh closes a socket it no longer uses, on its closer thread
     * (cluster/closer.h); NULL = nng_close. Tests pass a close that hangs. */
    int (*close_socket)(nng_socket s);
} mesh_config;

/* Open the endpoint: listen on cfg->listen_url, start heartbeats and join
 * through the seeds. Strings and the secret are copied. On success *out is
 * owned by the caller and released with mesh_close(). MB_EINVAL for a bad
 * configuration, MB_EIO/MB_EBUSY when the listener cannot start. */
int mesh_open(uv_loop_t *loop, const mesh_config *cfg, mesh **out, mb_error *err);

/* Close: stop NNG (no callback from NNG threads after this returns), fail
 * pending calls with MB_ECLOSED (their callbacks run inside this call),
 * drop pending incoming requests (mesh_request handles become invalid: close
 * the modules that hold them first) and queued agent messages, then close
 * the uv handles; `done` (may be NULL) runs from the loop once everything
 * is freed. `m` must not be used after this call. */
void mesh_close(mesh *m, void (*done)(void *user), void *user);

/* The URL peers dial to reach this node (the bound port filled in). */
const char *mesh_url(const mesh *m);
uint64_t mesh_node_id(const mesh *m);

/* Add a peer by id and URL (e.g. from the replicated node table); a known
 * id gets its URL updated. MB_EINVAL for id 0, our own id or a bad URL. */
int mesh_add_peer(mesh *m, uint64_t node_id, const char *url, mb_error *err);
/* Forget a peer: its pending calls fail with MB_ECLOSED, its queued agent
 * messages are dropped. MB_ENOTFOUND if unknown. */
int mesh_remove_peer(mesh *m, uint64_t node_id);
/* The detector's view of one peer; MB_ENOTFOUND if unknown. */
int mesh_peer(const mesh *m, uint64_t node_id, fd_peer_view *out);
/* How many status transitions the detector has made so far: a cheap test
 * for "some peer's status changed" (loop thread). */
uint64_t mesh_status_changes(const mesh *m);
size_t mesh_peer_count(const mesh *m);
/* 1 if this node has a connection open to the peer, 0 if not, -1 if the
 * peer is unknown. */
int mesh_peer_connected(const mesh *m, uint64_t node_id);

/* Leader discovery. mesh_set_leader records what the local raft says; the
 * best known value (highest term) is gossiped in heartbeats. mesh_leader
 * copies it: *leader_id 0 when unknown; url_buf gets "" when unknown. */
void mesh_set_leader(mesh *m, uint64_t term, uint64_t leader_id);
void mesh_leader(const mesh *m, uint64_t *term, uint64_t *leader_id, char *url_buf,
                 size_t url_size);

/* The membership view as JSON text for `mabeam cluster status`:
 * {"node_id":..,"url":..,"term":..,"leader_id":..,"leader_url":..,
 *  "peers":[{"node_id":..,"url":..,"status":"alive","connected":true,
 *  "last_heard_ms_ago":..,"rtt_ms":..}, ...]}. Returns a malloc'd string owned by the caller
 * (free()), or NULL when out of memory. */
char *mesh_view_json(const mesh *m);

/* ---- RPC ---------------------------------------------------------------- */

typedef struct mesh_request mesh_request;

/* A handler gets a request it must answer exactly once with mesh_reply(),
 * now or later (e.g. after a raft commit), on the loop thread. A retried
 * request (same sender, incarnation and request id) is not passed to the
 * handler again: it waits for, or gets, the first answer. */
typedef void (*mesh_handler_fn)(void *user, mesh *m, mesh_request *req);

/* Register the handler of `method` (>= MESH_METHOD_USER_MIN). MB_EEXIST if
 * taken, MB_EINVAL if reserved. */
int mesh_register(mesh *m, uint32_t method, mesh_handler_fn fn, void *user);

/* Accessors, valid until mesh_reply(). The payload is owned by the request. */
uint64_t mesh_request_sender(const mesh_request *req);
uint64_t mesh_request_id(const mesh_request *req);
uint32_t mesh_request_method(const mesh_request *req);
const void *mesh_request_payload(const mesh_request *req, size_t *len);

/* Answer `req` with `status` (an mb_err code) and a payload (copied; may be
 * NULL with len 0). The request handle is freed by this call. */
void mesh_reply(mesh_request *req, int status, const void *payload, size_t len);

/* Completion of a call. status: the handler's status, or MB_ETIMEDOUT (no
 * answer before the deadline), MB_ECLOSED (mesh closed or peer removed),
 * MB_ETOOBIG. The payload is valid during the call. */
typedef void (*mesh_call_cb)(void *user, int status, const void *payload, size_t len);

typedef struct mesh_call_args {
    uint64_t peer_id;    /* a known peer */
    uint32_t method;     /* >= MESH_METHOD_USER_MIN */
    const void *payload; /* copied */
    size_t len;
    uint32_t timeout_ms; /* overall deadline; 0 = 5000 */
    uint64_t request_id; /* 0 = a new id; or the id of an earlier call to retry it idempotently */
    mesh_call_cb cb;     /* required */
    void *user;
} mesh_call_args;

/* Start a call. The request is re-sent with the same request id every
 * rpc_attempt_ms until answered or the deadline passes; the peer executes it
 * at most once per (this incarnation, request id). On success the callback
 * will run exactly once and *request_id (may be NULL) gets the id used. */
int mesh_call(mesh *m, const mesh_call_args *args, uint64_t *request_id, mb_error *err);

/* ---- Agent messages ---------------------------------------------------- */

/* Queue a message for agent `to_agent` on node `peer_id`. THREAD-SAFE: may
 * be called from any thread (not after mesh_close() began). Messages from
 * this node to one peer are delivered in order and at most once (see
 * docs/cluster.md): they may be lost if the peer is DOWN or restarts, never
 * duplicated or reordered. Strings and payload are copied. MB_EFULL when
 * the peer's queue is full, MB_ETOOBIG when too large. */
int mesh_send_agent(mesh *m, uint64_t peer_id, const char *from_agent, const char *to_agent,
                    const void *payload, size_t len, mb_error *err);

/* ---- Counters ----------------------------------------------------------- */

typedef struct mesh_stats {
    uint64_t tx_bytes, rx_bytes; /* mesh messages incl. SP framing (not TCP/IP) */
    uint64_t tx_msgs, rx_msgs;
    uint64_t refused_auth;                      /* bad MAC, wrong receiver, undecodable */
    uint64_t refused_replay;                    /* stale timestamp or counter already seen */
    uint64_t dedup_hits;                        /* retried requests answered without re-execution */
    uint64_t agent_delivered, agent_duplicates; /* as receiver */
    uint64_t agent_acked, agent_dropped, agent_batches_sent; /* as sender */
    uint64_t calls_timed_out;
    uint64_t hb_calls, hb_skipped; /* heartbeat calls made, and skipped (the peer's came in) */
    uint64_t ticks;                /* times the heartbeat/detector timer fired */
} mesh_stats;

/* A snapshot of the counters. Loop thread. */
void mesh_get_stats(const mesh *m, mesh_stats *out);

#endif /* MB_CLUSTER_H */
