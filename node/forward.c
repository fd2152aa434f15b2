/* node/forward.c: batches of forwarded writes and their answers (see
 * forward.h). */
#include "node/forward.h"

#include <stdint.h>
#include <stdlib.h>

#include "forward.pb-c.h"

struct fwd_batch {
    Mabeam__ForwardBatch *pb;
};

int fwd_batch_encode(const fwd_item *cmds, size_t n, void **out, size_t *out_len)
{
    if (n == 0 || n > FWD_BATCH_MAX)
        return MB_EINVAL;
    ProtobufCBinaryData bins[FWD_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        bins[i].data = (uint8_t *)cmds[i].data;
        bins[i].len = cmds[i].len;
    }
    Mabeam__ForwardBatch b = MABEAM__FORWARD_BATCH__INIT;
    b.n_commands = n;
    b.commands = bins;
    size_t sz = mabeam__forward_batch__get_packed_size(&b);
    uint8_t *buf = malloc(sz > 0 ? sz : 1);
    if (buf == NULL)
        return MB_ENOMEM;
    mabeam__forward_batch__pack(&b, buf);
    *out = buf;
    *out_len = sz;
    return MB_OK;
}

int fwd_batch_decode(const void *buf, size_t len, fwd_batch **out)
{
    *out = NULL;
    if (buf == NULL || len == 0)
        return MB_EPROTO;
    Mabeam__ForwardBatch *pb = mabeam__forward_batch__unpack(NULL, len, buf);
    if (pb == NULL)
        return MB_EPROTO;
    int rc = MB_OK;
    if (pb->n_commands == 0 || pb->n_commands > FWD_BATCH_MAX)
        rc = MB_EPROTO;
    for (size_t i = 0; rc == MB_OK && i < pb->n_commands; i++)
        if (pb->commands[i].len == 0 || pb->commands[i].data == NULL)
            rc = MB_EPROTO;
    fwd_batch *b = rc == MB_OK ? malloc(sizeof(*b)) : NULL;
    if (rc == MB_OK && b == NULL)
        rc = MB_ENOMEM;
    if (rc != MB_OK) {
        mabeam__forward_batch__free_unpacked(pb, NULL);
        return rc;
    }
    b->pb = pb;
    *out = b;
    return MB_OK;
}

size_t fwd_batch_count(const fwd_batch *b)
{
    return b->pb->n_commands;
}

fwd_item fwd_batch_item(const fwd_batch *b, size_t i)
{
    return (fwd_item){ .data = b->pb->commands[i].data, .len = b->pb->commands[i].len };
}

void fwd_batch_free(fwd_batch *b)
{
    if (b == NULL)
        return;
    mabeam__forward_batch__free_unpacked(b->pb, NULL);
    free(b);
}

int fwd_results_encode(const consensus_result *res, size_t n, void **out, size_t *out_len)
{
    int rc = MB_ENOMEM;
    ProtobufCBinaryData *bins = calloc(n > 0 ? n : 1, sizeof(*bins));
    size_t done = 0;
    uint8_t *buf = NULL;
    if (bins == NULL)
        goto out;
    for (; done < n; done++) {
        void *one = NULL;
        size_t one_len = 0;
        if (consensus_result_encode(&res[done], &one, &one_len) != MB_OK)
            goto out;
        bins[done].data = one;
        bins[done].len = one_len;
    }
    Mabeam__ForwardResults r = MABEAM__FORWARD_RESULTS__INIT;
    r.n_results = n;
    r.results = bins;
    size_t sz = mabeam__forward_results__get_packed_size(&r);
    buf = malloc(sz > 0 ? sz : 1);
    if (buf == NULL)
        goto out;
    mabeam__forward_results__pack(&r, buf);
    *out = buf;
    *out_len = sz;
    rc = MB_OK;
out:
    for (size_t i = 0; i < done; i++)
        free(bins[i].data);
    free(bins);
    return rc;
}

int fwd_results_decode(const void *buf, size_t len, size_t n, consensus_result *out)
{
    if (buf == NULL || len == 0)
        return MB_EPROTO;
    Mabeam__ForwardResults *r = mabeam__forward_results__unpack(NULL, len, buf);
    if (r == NULL)
        return MB_EPROTO;
    int rc = r->n_results == n ? MB_OK : MB_EPROTO;
    for (size_t i = 0; rc == MB_OK && i < n; i++)
        rc = consensus_result_decode(r->results[i].data, r->results[i].len, &out[i]);
    mabeam__forward_results__free_unpacked(r, NULL);
    return rc == MB_OK ? MB_OK : MB_EPROTO;
}
