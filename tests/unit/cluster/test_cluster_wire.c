/* Mesh envelope: HMAC seal/open, refusal of a wrong secret or tampering,
 * clock-skew check, anti-replay window, payload decoders' limits. */
#include <string.h>

#include "cluster/wire.h"
#include "mb_test.h"

static const char key[] = "0123456789abcdef-cluster-secret";

static wire_header hdr(uint64_t counter)
{
    return (wire_header){ .version = WIRE_VERSION,
                          .sender_id = 3,
                          .sender_incarnation = 77,
                          .receiver_id = 4,
                          .counter = counter,
                          .timestamp_ms = 1700000000000ull,
                          .kind = WIRE_KIND_REQUEST };
}

/* Field by field: the struct has padding (after version and kind) that
 * neither the initialiser above nor wire_open sets, so memcmp would
 * compare stack garbage (it failed that way under ASan once). */
static int hdr_equal(const wire_header *a, const wire_header *b)
{
    return a->version == b->version && a->sender_id == b->sender_id &&
           a->sender_incarnation == b->sender_incarnation && a->receiver_id == b->receiver_id &&
           a->counter == b->counter && a->timestamp_ms == b->timestamp_ms && a->kind == b->kind;
}

static void test_sealed_envelope_opens_with_same_secret(void)
{
    wire_header h = hdr(5), got;
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(wire_seal(key, sizeof(key), &h, "body", 4, &buf, &len), MB_OK);
    Mabeam__Mesh__Envelope *env = NULL;
    CU_ASSERT_EQUAL_FATAL(wire_open(key, sizeof(key), buf, len, &got, &env, NULL), MB_OK);
    CU_ASSERT(hdr_equal(&got, &h));
    CU_ASSERT_EQUAL(env->body.len, 4);
    CU_ASSERT(memcmp(env->body.data, "body", 4) == 0);
    wire_envelope_free(env);
    free(buf);
}

static void test_wrong_secret_is_refused(void)
{
    wire_header h = hdr(5), got;
    uint8_t *buf;
    size_t len;
    wire_seal(key, sizeof(key), &h, "body", 4, &buf, &len);
    Mabeam__Mesh__Envelope *env = NULL;
    mb_error e;
    CU_ASSERT_EQUAL(wire_open("another-secret-xyz", 18, buf, len, &got, &env, &e), MB_EAUTH);
    CU_ASSERT_PTR_NULL(env);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "MAC mismatch"));
    free(buf);
}

static void test_any_tampered_byte_is_refused(void)
{
    wire_header h = hdr(5), got;
    uint8_t *buf;
    size_t len;
    wire_seal(key, sizeof(key), &h, "some body bytes", 15, &buf, &len);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        Mabeam__Mesh__Envelope *env = NULL;
        int rc = wire_open(key, sizeof(key), buf, len, &got, &env, NULL);
        CU_ASSERT_NOT_EQUAL(rc, MB_OK);
        if (rc == MB_OK)
            wire_envelope_free(env);
        buf[i] ^= 0x01;
    }
    free(buf);
}

static void test_garbage_and_wrong_version_are_corrupt(void)
{
    wire_header got;
    Mabeam__Mesh__Envelope *env = NULL;
    CU_ASSERT_EQUAL(wire_open(key, sizeof(key), "\xff\xff\xff", 3, &got, &env, NULL), MB_ECORRUPT);
    wire_header h = hdr(1);
    h.version = 2;
    uint8_t *buf;
    size_t len;
    wire_seal(key, sizeof(key), &h, NULL, 0, &buf, &len);
    CU_ASSERT_EQUAL(wire_open(key, sizeof(key), buf, len, &got, &env, NULL), MB_ECORRUPT);
    free(buf);
}

static void test_timestamp_outside_skew_is_refused(void)
{
    CU_ASSERT_EQUAL(wire_check_time(1000, 1000, 0), MB_OK);
    CU_ASSERT_EQUAL(wire_check_time(1000, 31000, 30000), MB_OK);
    CU_ASSERT_EQUAL(wire_check_time(1000, 31001, 30000), MB_EAUTH);
    CU_ASSERT_EQUAL(wire_check_time(31001, 1000, 30000), MB_EAUTH);
}

static void test_replay_window_refuses_repeated_counters(void)
{
    wire_replay w;
    memset(&w, 0, sizeof(w));
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 1), MB_OK);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 1), MB_EAUTH);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 5), MB_OK);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 3), MB_OK); /* reordered: fine */
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 3), MB_EAUTH);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 0), MB_EAUTH);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 5 + WIRE_REPLAY_WINDOW), MB_OK);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 4), MB_EAUTH);     /* older than the window */
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 10, 6), MB_OK);        /* inside, never seen */
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 9, 100000), MB_EAUTH); /* older incarnation */
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 11, 1), MB_OK);        /* restart resets */
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 11, 1), MB_EAUTH);
}

static void test_replay_window_survives_long_runs(void)
{
    wire_replay w;
    memset(&w, 0, sizeof(w));
    for (uint64_t c = 1; c <= 3 * WIRE_REPLAY_WINDOW; c += 2)
        CU_ASSERT_EQUAL(wire_replay_accept(&w, 1, c), MB_OK);
    /* even counters inside the window were never used */
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 1, 3 * WIRE_REPLAY_WINDOW - 10), MB_OK);
    CU_ASSERT_EQUAL(wire_replay_accept(&w, 1, 3 * WIRE_REPLAY_WINDOW - 11), MB_EAUTH);
}

static void test_decoders_refuse_out_of_limit_payloads(void)
{
    mb_error e;
    Mabeam__Mesh__Heartbeat hb = MABEAM__MESH__HEARTBEAT__INIT;
    hb.url = "http://x";
    uint8_t buf[512];
    size_t n = mabeam__mesh__heartbeat__pack(&hb, buf);
    CU_ASSERT_PTR_NULL(wire_decode_heartbeat(buf, n, &e));
    hb.url = "tcp://127.0.0.1:1";
    n = mabeam__mesh__heartbeat__pack(&hb, buf);
    Mabeam__Mesh__Heartbeat *ok = wire_decode_heartbeat(buf, n, &e);
    CU_ASSERT_PTR_NOT_NULL(ok);
    mabeam__mesh__heartbeat__free_unpacked(ok, NULL);

    Mabeam__Mesh__AgentBatch b = MABEAM__MESH__AGENT_BATCH__INIT;
    b.first_seq = 0; /* sequences start at 1 */
    Mabeam__Mesh__AgentMessage am = MABEAM__MESH__AGENT_MESSAGE__INIT, *pam = &am;
    am.to_agent = "a";
    b.messages = &pam;
    b.n_messages = 1;
    n = mabeam__mesh__agent_batch__pack(&b, buf);
    CU_ASSERT_PTR_NULL(wire_decode_agent_batch(buf, n, &e));
    b.first_seq = UINT64_MAX; /* would overflow */
    n = mabeam__mesh__agent_batch__pack(&b, buf);
    CU_ASSERT_PTR_NULL(wire_decode_agent_batch(buf, n, &e));
    b.first_seq = 1;
    am.to_agent = "";
    n = mabeam__mesh__agent_batch__pack(&b, buf);
    CU_ASSERT_PTR_NULL(wire_decode_agent_batch(buf, n, &e));

    Mabeam__Mesh__JoinReply jr = MABEAM__MESH__JOIN_REPLY__INIT; /* no members */
    n = mabeam__mesh__join_reply__pack(&jr, buf);
    CU_ASSERT_PTR_NULL(wire_decode_join_reply(buf, n, &e));

    Mabeam__Mesh__Reply r = MABEAM__MESH__REPLY__INIT;
    r.request_id = 1;
    r.status = 9999;
    n = mabeam__mesh__reply__pack(&r, buf);
    CU_ASSERT_PTR_NULL(wire_decode_reply(buf, n, &e));

    CU_ASSERT(wire_url_ok("tls+tcp://10.0.0.1:7710"));
    CU_ASSERT(!wire_url_ok("tcp://"));
    CU_ASSERT(!wire_url_ok("tcp://a\nb"));
    CU_ASSERT(!wire_url_ok(NULL));
}

static CU_TestInfo wire_tests[] = {
    { "test_sealed_envelope_opens_with_same_secret", test_sealed_envelope_opens_with_same_secret },
    { "test_wrong_secret_is_refused", test_wrong_secret_is_refused },
    { "test_any_tampered_byte_is_refused", test_any_tampered_byte_is_refused },
    { "test_garbage_and_wrong_version_are_corrupt", test_garbage_and_wrong_version_are_corrupt },
    { "test_timestamp_outside_skew_is_refused", test_timestamp_outside_skew_is_refused },
    { "test_replay_window_refuses_repeated_counters",
      test_replay_window_refuses_repeated_counters },
    { "test_replay_window_survives_long_runs", test_replay_window_survives_long_runs },
    { "test_decoders_refuse_out_of_limit_payloads", test_decoders_refuse_out_of_limit_payloads },
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    CU_SuiteInfo suites[] = {
        { "wire", NULL, NULL, NULL, NULL, wire_tests },
        CU_SUITE_INFO_NULL,
    };
    return mb_test_run(argc, argv, suites);
}
