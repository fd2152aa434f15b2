/* cluster/ internal: the mesh envelope (seal with HMAC-SHA256, open and
 * verify), the anti-replay window, and the defensive decoders of the mesh's
 * own payloads. No I/O, no clock: the caller passes the time. The format is
 * described in docs/cluster.md. */
#ifndef MB_CLUSTER_WIRE_H
#define MB_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#include "mesh.pb-c.h"

#define WIRE_VERSION       1u
#define WIRE_KIND_REQUEST  1u
#define WIRE_KIND_REPLY    2u
#define WIRE_MAC_LEN       32u
#define WIRE_URL_MAX       255u
#define WIRE_AGENT_ID_MAX  255u
#define WIRE_BATCH_MAX     4096u /* agent messages per batch */
#define WIRE_MEMBERS_MAX   1024u /* members in a join reply */
#define WIRE_REPLAY_WINDOW 4096u /* counters remembered per sender */

typedef struct wire_header {
    uint32_t version;
    uint64_t sender_id;
    uint64_t sender_incarnation;
    uint64_t receiver_id;
    uint64_t counter;
    uint64_t timestamp_ms;
    uint32_t kind;
} wire_header;

/* Build a sealed envelope around `body` (borrowed). On success *out is a
 * malloc'd buffer owned by the caller (free()) of *out_len bytes. */
int wire_seal(const void *key, size_t key_len, const wire_header *h, const void *body,
              size_t body_len, uint8_t **out, size_t *out_len);

/* Decode `buf` (borrowed) and verify version, MAC and the basic sanity of
 * the header (sender > 0, known kind). On success *env is owned by the
 * caller (wire_envelope_free) and h is filled in; the body is env->body.
 * MB_ECORRUPT for undecodable input, MB_EAUTH for a wrong MAC. */
int wire_open(const void *key, size_t key_len, const void *buf, size_t len, wire_header *h,
              Mabeam__Mesh__Envelope **env, mb_error *err);
void wire_envelope_free(Mabeam__Mesh__Envelope *env);

/* MB_OK if |now_ms - ts_ms| <= skew_ms, else MB_EAUTH. */
int wire_check_time(uint64_t ts_ms, uint64_t now_ms, uint64_t skew_ms);

/* Anti-replay state for one (sender, channel). Zero-initialise. */
typedef struct wire_replay {
    uint64_t incarnation;
    uint64_t highest;
    uint64_t bits[WIRE_REPLAY_WINDOW / 64];
} wire_replay;

/* Accept (and remember) `counter` of `incarnation`, or refuse it with
 * MB_EAUTH: counter 0, an older incarnation than the one seen, a counter
 * seen before, or one older than the window. A newer incarnation resets. */
int wire_replay_accept(wire_replay *w, uint64_t incarnation, uint64_t counter);

/* Defensive decoders of bodies and the mesh's own payloads: NULL with
 * `err` set (MB_ECORRUPT) when undecodable or outside the limits above.
 * Results are owned by the caller (protobuf-c *_free_unpacked). */
Mabeam__Mesh__Request *wire_decode_request(const void *buf, size_t len, mb_error *err);
Mabeam__Mesh__Reply *wire_decode_reply(const void *buf, size_t len, mb_error *err);
Mabeam__Mesh__Heartbeat *wire_decode_heartbeat(const void *buf, size_t len, mb_error *err);
Mabeam__Mesh__JoinRequest *wire_decode_join_request(const void *buf, size_t len, mb_error *err);
Mabeam__Mesh__JoinReply *wire_decode_join_reply(const void *buf, size_t len, mb_error *err);
Mabeam__Mesh__AgentBatch *wire_decode_agent_batch(const void *buf, size_t len, mb_error *err);
Mabeam__Mesh__AgentAck *wire_decode_agent_ack(const void *buf, size_t len, mb_error *err);

/* 1 if `url` is an acceptable mesh URL (tcp://, tls+tcp://, ipc://; at most
 * WIRE_URL_MAX bytes, no control characters). NULL gives 0. */
int wire_url_ok(const char *url);

#endif /* MB_CLUSTER_WIRE_H */
