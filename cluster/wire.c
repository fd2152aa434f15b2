/* The mesh envelope: HMAC-SHA256 seal/open, anti-replay window, and the
 * defensive decoders of every mesh payload. */
#include "cluster/wire.h"

#include <mbedtls/md.h>
#include <stdlib.h>
#include <string.h>

static const char wire_mac_label[] = "MABEAM-MESH-1";

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(v >> (i * 8));
    return p;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(v >> (i * 8));
    return p;
}

/* HMAC-SHA256(key, label || header fields || be64(body_len) || body). */
static int wire_mac(const void *key, size_t key_len, const wire_header *h, const void *body,
                    size_t body_len, uint8_t mac[WIRE_MAC_LEN])
{
    uint8_t hdr[sizeof(wire_mac_label) + 4 + 5 * 8 + 4 + 8];
    uint8_t *p = hdr;
    memcpy(p, wire_mac_label, sizeof(wire_mac_label));
    p += sizeof(wire_mac_label);
    p = put_be32(p, h->version);
    p = put_be64(p, h->sender_id);
    p = put_be64(p, h->sender_incarnation);
    p = put_be64(p, h->receiver_id);
    p = put_be64(p, h->counter);
    p = put_be64(p, h->timestamp_ms);
    p = put_be32(p, h->kind);
    p = put_be64(p, (uint64_t)body_len);

    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    int rc = MB_OK;
    if (info == NULL || mbedtls_md_setup(&ctx, info, 1) != 0) {
        rc = MB_ENOMEM;
        goto out;
    }
    if (mbedtls_md_hmac_starts(&ctx, key, key_len) != 0 ||
        mbedtls_md_hmac_update(&ctx, hdr, (size_t)(p - hdr)) != 0 ||
        (body_len > 0 && mbedtls_md_hmac_update(&ctx, body, body_len) != 0) ||
        mbedtls_md_hmac_finish(&ctx, mac) != 0)
        rc = MB_EINTERNAL;
out:
    mbedtls_md_free(&ctx);
    return rc;
}

int wire_seal(const void *key, size_t key_len, const wire_header *h, const void *body,
              size_t body_len, uint8_t **out, size_t *out_len)
{
    uint8_t mac[WIRE_MAC_LEN];
    int rc = wire_mac(key, key_len, h, body, body_len, mac);
    if (rc != MB_OK)
        return rc;
    Mabeam__Mesh__Envelope env = MABEAM__MESH__ENVELOPE__INIT;
    env.version = h->version;
    env.sender_id = h->sender_id;
    env.sender_incarnation = h->sender_incarnation;
    env.receiver_id = h->receiver_id;
    env.counter = h->counter;
    env.timestamp_ms = h->timestamp_ms;
    env.kind = h->kind;
    env.body.data = (uint8_t *)body;
    env.body.len = body_len;
    env.mac.data = mac;
    env.mac.len = sizeof(mac);
    size_t n = mabeam__mesh__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return MB_ENOMEM;
    *out_len = mabeam__mesh__envelope__pack(&env, buf);
    *out = buf;
    return MB_OK;
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

int wire_open(const void *key, size_t key_len, const void *buf, size_t len, wire_header *h,
              Mabeam__Mesh__Envelope **envp, mb_error *err)
{
    Mabeam__Mesh__Envelope *env = mabeam__mesh__envelope__unpack(NULL, len, buf);
    if (env == NULL)
        return mb_errorf(err, MB_ECORRUPT, "mesh envelope: undecodable (%zu bytes)", len);
    int rc;
    if (env->version != WIRE_VERSION) {
        rc = mb_errorf(err, MB_ECORRUPT, "mesh envelope: unsupported version %u", env->version);
        goto fail;
    }
    if (env->sender_id == 0 || (env->kind != WIRE_KIND_REQUEST && env->kind != WIRE_KIND_REPLY)) {
        rc = mb_errorf(err, MB_ECORRUPT, "mesh envelope: bad sender %llu or kind %u",
                       (unsigned long long)env->sender_id, env->kind);
        goto fail;
    }
    if (env->mac.len != WIRE_MAC_LEN) {
        rc = mb_errorf(err, MB_EAUTH, "mesh envelope from node %llu: no valid MAC",
                       (unsigned long long)env->sender_id);
        goto fail;
    }
    *h = (wire_header){ .version = env->version,
                        .sender_id = env->sender_id,
                        .sender_incarnation = env->sender_incarnation,
                        .receiver_id = env->receiver_id,
                        .counter = env->counter,
                        .timestamp_ms = env->timestamp_ms,
                        .kind = env->kind };
    uint8_t mac[WIRE_MAC_LEN];
    rc = wire_mac(key, key_len, h, env->body.data, env->body.len, mac);
    if (rc != MB_OK) {
        mb_errorf(err, rc, "mesh envelope: HMAC computation failed");
        goto fail;
    }
    if (!ct_equal(mac, env->mac.data, WIRE_MAC_LEN)) {
        rc = mb_errorf(err, MB_EAUTH,
                       "mesh envelope claiming node %llu: MAC mismatch (wrong cluster secret "
                       "or tampered)",
                       (unsigned long long)env->sender_id);
        goto fail;
    }
    *envp = env;
    return MB_OK;
fail:
    mabeam__mesh__envelope__free_unpacked(env, NULL);
    return rc;
}

void wire_envelope_free(Mabeam__Mesh__Envelope *env)
{
    if (env != NULL)
        mabeam__mesh__envelope__free_unpacked(env, NULL);
}

int wire_check_time(uint64_t ts_ms, uint64_t now_ms, uint64_t skew_ms)
{
    uint64_t d = ts_ms > now_ms ? ts_ms - now_ms : now_ms - ts_ms;
    return d <= skew_ms ? MB_OK : MB_EAUTH;
}

int wire_replay_accept(wire_replay *w, uint64_t incarnation, uint64_t counter)
{
    if (counter == 0 || incarnation < w->incarnation)
        return MB_EAUTH;
    if (incarnation > w->incarnation) {
        memset(w, 0, sizeof(*w));
        w->incarnation = incarnation;
    }
    if (counter > w->highest) {
        uint64_t shift = counter - w->highest;
        if (shift >= WIRE_REPLAY_WINDOW) {
            memset(w->bits, 0, sizeof(w->bits));
        } else {
            /* clear the bits of the counters that the window moves over */
            for (uint64_t c = w->highest + 1; c <= counter; c++)
                w->bits[(c % WIRE_REPLAY_WINDOW) / 64] &= ~(1ull << (c % 64));
        }
        w->highest = counter;
    } else if (w->highest - counter >= WIRE_REPLAY_WINDOW) {
        return MB_EAUTH;
    } else if (w->bits[(counter % WIRE_REPLAY_WINDOW) / 64] & (1ull << (counter % 64))) {
        return MB_EAUTH;
    }
    w->bits[(counter % WIRE_REPLAY_WINDOW) / 64] |= 1ull << (counter % 64);
    return MB_OK;
}

int wire_url_ok(const char *url)
{
    if (url == NULL)
        return 0;
    size_t n = strnlen(url, WIRE_URL_MAX + 1);
    if (n == 0 || n > WIRE_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
            return 0;
    const char *rest = NULL;
    if (strncmp(url, "tcp://", 6) == 0)
        rest = url + 6;
    else if (strncmp(url, "tls+tcp://", 10) == 0)
        rest = url + 10;
    else if (strncmp(url, "ipc://", 6) == 0)
        rest = url + 6;
    return rest != NULL && rest[0] != '\0';
}

static int agent_id_ok(const char *s)
{
    return s != NULL && strnlen(s, WIRE_AGENT_ID_MAX + 1) <= WIRE_AGENT_ID_MAX;
}

#define WIRE_DECODE_FAIL(what)                                                                     \
    do {                                                                                           \
        mb_errorf(err, MB_ECORRUPT, "mesh %s: %s", what, why);                                     \
        return NULL;                                                                               \
    } while (0)

Mabeam__Mesh__Request *wire_decode_request(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__Request *r = mabeam__mesh__request__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (r == NULL)
        WIRE_DECODE_FAIL("request");
    if (r->request_id == 0 || r->method == 0) {
        why = "request id and method must be > 0";
        mabeam__mesh__request__free_unpacked(r, NULL);
        WIRE_DECODE_FAIL("request");
    }
    return r;
}

Mabeam__Mesh__Reply *wire_decode_reply(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__Reply *r = mabeam__mesh__reply__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (r == NULL)
        WIRE_DECODE_FAIL("reply");
    if (r->request_id == 0 || r->status < 0 || r->status >= MB_ERR_COUNT_) {
        why = "bad request id or status";
        mabeam__mesh__reply__free_unpacked(r, NULL);
        WIRE_DECODE_FAIL("reply");
    }
    return r;
}

Mabeam__Mesh__Heartbeat *wire_decode_heartbeat(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__Heartbeat *hb = mabeam__mesh__heartbeat__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (hb == NULL)
        WIRE_DECODE_FAIL("heartbeat");
    if (!wire_url_ok(hb->url) || (hb->leader_url[0] != '\0' && !wire_url_ok(hb->leader_url)) ||
        (hb->leader_id == 0 && hb->leader_url[0] != '\0')) {
        why = "bad url";
        mabeam__mesh__heartbeat__free_unpacked(hb, NULL);
        WIRE_DECODE_FAIL("heartbeat");
    }
    return hb;
}

Mabeam__Mesh__JoinRequest *wire_decode_join_request(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__JoinRequest *j = mabeam__mesh__join_request__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (j == NULL)
        WIRE_DECODE_FAIL("join request");
    if (!wire_url_ok(j->url)) {
        why = "bad url";
        mabeam__mesh__join_request__free_unpacked(j, NULL);
        WIRE_DECODE_FAIL("join request");
    }
    return j;
}

Mabeam__Mesh__JoinReply *wire_decode_join_reply(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__JoinReply *j = mabeam__mesh__join_reply__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (j == NULL)
        WIRE_DECODE_FAIL("join reply");
    if (j->n_members == 0 || j->n_members > WIRE_MEMBERS_MAX) {
        why = "member count out of range";
        goto bad;
    }
    for (size_t i = 0; i < j->n_members; i++) {
        if (j->members[i]->node_id == 0 || !wire_url_ok(j->members[i]->url)) {
            why = "bad member";
            goto bad;
        }
    }
    return j;
bad:
    mabeam__mesh__join_reply__free_unpacked(j, NULL);
    WIRE_DECODE_FAIL("join reply");
}

Mabeam__Mesh__AgentBatch *wire_decode_agent_batch(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__AgentBatch *b = mabeam__mesh__agent_batch__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (b == NULL)
        WIRE_DECODE_FAIL("agent batch");
    if (b->n_messages == 0 || b->n_messages > WIRE_BATCH_MAX || b->first_seq == 0 ||
        b->first_seq > UINT64_MAX - b->n_messages) {
        why = "bad sequence or message count";
        goto bad;
    }
    for (size_t i = 0; i < b->n_messages; i++) {
        if (!agent_id_ok(b->messages[i]->from_agent) || !agent_id_ok(b->messages[i]->to_agent) ||
            b->messages[i]->to_agent[0] == '\0') {
            why = "bad agent id";
            goto bad;
        }
    }
    return b;
bad:
    mabeam__mesh__agent_batch__free_unpacked(b, NULL);
    WIRE_DECODE_FAIL("agent batch");
}

Mabeam__Mesh__AgentAck *wire_decode_agent_ack(const void *buf, size_t len, mb_error *err)
{
    Mabeam__Mesh__AgentAck *a = mabeam__mesh__agent_ack__unpack(NULL, len, buf);
    const char *why = "undecodable";
    if (a == NULL)
        WIRE_DECODE_FAIL("agent ack");
    return a;
}
