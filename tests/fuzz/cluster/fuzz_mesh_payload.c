/* Fuzz target: the decoders of every mesh payload (request, reply,
 * heartbeat, join request/reply, agent batch/ack) — what a peer that holds
 * the cluster secret but misbehaves could send. The first byte picks the
 * decoder; accepted values must respect the documented limits. */
#include <stdint.h>
#include <string.h>

#include "cluster/wire.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    mb_error e;
    switch (data[0] % 7) {
    case 0: {
        Mabeam__Mesh__Request *r = wire_decode_request(p, n, &e);
        if (r) {
            CHECK(r->request_id > 0 && r->method > 0);
            mabeam__mesh__request__free_unpacked(r, NULL);
        }
        break;
    }
    case 1: {
        Mabeam__Mesh__Reply *r = wire_decode_reply(p, n, &e);
        if (r) {
            CHECK(r->status >= 0 && r->status < MB_ERR_COUNT_);
            mabeam__mesh__reply__free_unpacked(r, NULL);
        }
        break;
    }
    case 2: {
        Mabeam__Mesh__Heartbeat *hb = wire_decode_heartbeat(p, n, &e);
        if (hb) {
            CHECK(wire_url_ok(hb->url));
            mabeam__mesh__heartbeat__free_unpacked(hb, NULL);
        }
        break;
    }
    case 3: {
        Mabeam__Mesh__JoinRequest *j = wire_decode_join_request(p, n, &e);
        if (j)
            mabeam__mesh__join_request__free_unpacked(j, NULL);
        break;
    }
    case 4: {
        Mabeam__Mesh__JoinReply *j = wire_decode_join_reply(p, n, &e);
        if (j) {
            CHECK(j->n_members > 0 && j->n_members <= WIRE_MEMBERS_MAX);
            for (size_t i = 0; i < j->n_members; i++)
                CHECK(j->members[i]->node_id > 0 && wire_url_ok(j->members[i]->url));
            mabeam__mesh__join_reply__free_unpacked(j, NULL);
        }
        break;
    }
    case 5: {
        Mabeam__Mesh__AgentBatch *b = wire_decode_agent_batch(p, n, &e);
        if (b) {
            CHECK(b->first_seq > 0 && b->n_messages > 0 && b->n_messages <= WIRE_BATCH_MAX);
            for (size_t i = 0; i < b->n_messages; i++)
                CHECK(strlen(b->messages[i]->to_agent) <= WIRE_AGENT_ID_MAX);
            mabeam__mesh__agent_batch__free_unpacked(b, NULL);
        }
        break;
    }
    default: {
        Mabeam__Mesh__AgentAck *a = wire_decode_agent_ack(p, n, &e);
        if (a)
            mabeam__mesh__agent_ack__free_unpacked(a, NULL);
        break;
    }
    }
    return 0;
}
