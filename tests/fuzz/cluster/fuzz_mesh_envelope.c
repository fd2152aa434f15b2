/* Fuzz target: the mesh envelope decoder and verifier (wire_open) on
 * arbitrary bytes, then the body decoders of whatever opens; and the
 * seal/open round trip with the input as the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "tests/fuzz/fuzz_check.h"

static const char key[] = "fuzz-cluster-secret-0123456789";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_header h;
    Mabeam__Mesh__Envelope *env = NULL;
    mb_error e;
    if (wire_open(key, sizeof(key) - 1, data, size, &h, &env, &e) == MB_OK) {
        Mabeam__Mesh__Request *r = wire_decode_request(env->body.data, env->body.len, &e);
        if (r)
            mabeam__mesh__request__free_unpacked(r, NULL);
        Mabeam__Mesh__Reply *rp = wire_decode_reply(env->body.data, env->body.len, &e);
        if (rp)
            mabeam__mesh__reply__free_unpacked(rp, NULL);
        wire_envelope_free(env);
    }
    /* round trip: anything sealed opens to the same header and body */
    wire_header in = { WIRE_VERSION, 1, 2, 3, 4, 5, WIRE_KIND_REQUEST };
    uint8_t *buf;
    size_t len;
    if (wire_seal(key, sizeof(key) - 1, &in, data, size, &buf, &len) == MB_OK) {
        int rc = wire_open(key, sizeof(key) - 1, buf, len, &h, &env, &e);
        CHECK(rc == MB_OK);
        CHECK(env->body.len == size && (size == 0 || memcmp(env->body.data, data, size) == 0));
        /* field by field: the structs' padding bytes are not part of it */
        CHECK(h.version == in.version && h.sender_id == in.sender_id &&
              h.sender_incarnation == in.sender_incarnation && h.receiver_id == in.receiver_id &&
              h.counter == in.counter && h.timestamp_ms == in.timestamp_ms && h.kind == in.kind);
        wire_envelope_free(env);
        free(buf);
    }
    return 0;
}
