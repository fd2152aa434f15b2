/* The failure detector: per peer ALIVE -> SUSPECT -> DOWN by silence,
 * back to ALIVE on any sign of life. DOWN needs a longer silence while a
 * connection to the peer stays open, and the detector's own stalls are not
 * counted as silence. Pure: time and connectivity come in as arguments. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

struct fd {
    fd_config cfg;
    fd_change_cb cb;
    void *user;
    fd_peer_view *peers; /* sorted by node_id */
    size_t n, cap;
    int64_t last_tick_ms; /* 0 before the first tick */
};

const char *cluster_peer_status_name(cluster_peer_status s)
{
    switch (s) {
    case CLUSTER_PEER_ALIVE:
        return "alive";
    case CLUSTER_PEER_SUSPECT:
        return "suspect";
    case CLUSTER_PEER_DOWN:
        return "down";
    }
    return "unknown";
}

int fd_new(const fd_config *cfg, fd_change_cb cb, void *user, fd **out, mb_error *err)
{
    fd_config c = { FD_DEFAULT_SUSPECT_AFTER_MS, FD_DEFAULT_DOWN_AFTER_MS, 0, 0 };
    if (cfg != NULL) {
        if (cfg->suspect_after_ms > 0)
            c.suspect_after_ms = cfg->suspect_after_ms;
        if (cfg->down_after_ms > 0)
            c.down_after_ms = cfg->down_after_ms;
        if (cfg->down_connected_after_ms > 0)
            c.down_connected_after_ms = cfg->down_connected_after_ms;
        if (cfg->stall_after_ms > 0)
            c.stall_after_ms = cfg->stall_after_ms;
    }
    if (c.down_after_ms <= c.suspect_after_ms)
        return mb_errorf(err, MB_EINVAL,
                         "failure detector: down_after_ms (%lld) must exceed suspect_after_ms "
                         "(%lld)",
                         (long long)c.down_after_ms, (long long)c.suspect_after_ms);
    if (c.down_connected_after_ms == 0)
        c.down_connected_after_ms = c.down_after_ms;
    if (c.down_connected_after_ms < c.down_after_ms)
        return mb_errorf(err, MB_EINVAL,
                         "failure detector: down_connected_after_ms (%lld) must be at least "
                         "down_after_ms (%lld)",
                         (long long)c.down_connected_after_ms, (long long)c.down_after_ms);
    fd *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return mb_errorf(err, MB_ENOMEM, "failure detector: out of memory");
    d->cfg = c;
    d->cb = cb;
    d->user = user;
    *out = d;
    return MB_OK;
}

void fd_free(fd *d)
{
    if (d == NULL)
        return;
    free(d->peers);
    free(d);
}

/* Index of node_id, or of where it would be inserted (with *found = 0). */
static size_t fd_find(const fd *d, uint64_t node_id, int *found)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->peers[mid].node_id < node_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < d->n && d->peers[lo].node_id == node_id;
    return lo;
}

int fd_add(fd *d, uint64_t node_id, int64_t now_ms)
{
    int found;
    if (node_id == 0)
        return MB_EINVAL;
    size_t i = fd_find(d, node_id, &found);
    if (found)
        return MB_EEXIST;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        fd_peer_view *p = realloc(d->peers, cap * sizeof(*p));
        if (p == NULL)
            return MB_ENOMEM;
        d->peers = p;
        d->cap = cap;
    }
    memmove(&d->peers[i + 1], &d->peers[i], (d->n - i) * sizeof(*d->peers));
    d->peers[i] = (fd_peer_view){ .node_id = node_id,
                                  .status = CLUSTER_PEER_ALIVE,
                                  .last_heard_ms = now_ms,
                                  .since_ms = now_ms,
                                  .rtt_ms = -1.0 };
    d->n++;
    return MB_OK;
}

int fd_remove(fd *d, uint64_t node_id)
{
    int found;
    size_t i = fd_find(d, node_id, &found);
    if (!found)
        return MB_ENOTFOUND;
    memmove(&d->peers[i], &d->peers[i + 1], (d->n - i - 1) * sizeof(*d->peers));
    d->n--;
    return MB_OK;
}

/* The one place where a peer's status changes. */
static void fd_transition(fd *d, size_t i, cluster_peer_status to, int64_t now_ms)
{
    fd_peer_view *p = &d->peers[i];
    cluster_peer_status from = p->status;
    assert(from != to);
    /* allowed: ALIVE->SUSPECT, SUSPECT->DOWN, SUSPECT->ALIVE, DOWN->ALIVE */
    assert((from == CLUSTER_PEER_ALIVE && to == CLUSTER_PEER_SUSPECT) ||
           (from == CLUSTER_PEER_SUSPECT && to == CLUSTER_PEER_DOWN) || to == CLUSTER_PEER_ALIVE);
    p->status = to;
    p->since_ms = now_ms;
    uint64_t id = p->node_id;
    if (d->cb != NULL)
        d->cb(d->user, id, from, to); /* may add or remove peers */
}

int fd_heard(fd *d, uint64_t node_id, int64_t now_ms, double rtt_ms)
{
    int found;
    size_t i = fd_find(d, node_id, &found);
    if (!found)
        return MB_ENOTFOUND;
    fd_peer_view *p = &d->peers[i];
    if (now_ms > p->last_heard_ms)
        p->last_heard_ms = now_ms;
    if (rtt_ms >= 0)
        p->rtt_ms = p->rtt_ms < 0 ? rtt_ms : p->rtt_ms + (rtt_ms - p->rtt_ms) / 8.0;
    if (p->status != CLUSTER_PEER_ALIVE)
        fd_transition(d, i, CLUSTER_PEER_ALIVE, now_ms);
    return MB_OK;
}

int fd_set_connected(fd *d, uint64_t node_id, int connected)
{
    int found;
    size_t i = fd_find(d, node_id, &found);
    if (!found)
        return MB_ENOTFOUND;
    d->peers[i].connected = connected != 0;
    return MB_OK;
}

/* The detector's own loop did not tick for longer than stall_after_ms:
 * whatever the peers sent meanwhile waits unread in queues, so the stall
 * beyond stall_after_ms does not count as their silence. */
static void fd_discount_stall(fd *d, int64_t now_ms)
{
    int64_t gap = d->last_tick_ms != 0 ? now_ms - d->last_tick_ms : 0;
    if (d->cfg.stall_after_ms <= 0 || gap <= d->cfg.stall_after_ms)
        return;
    int64_t excess = gap - d->cfg.stall_after_ms;
    for (size_t i = 0; i < d->n; i++) {
        fd_peer_view *p = &d->peers[i];
        p->last_heard_ms = p->last_heard_ms + excess < now_ms ? p->last_heard_ms + excess : now_ms;
    }
}

void fd_tick(fd *d, int64_t now_ms)
{
    if (now_ms > d->last_tick_ms) {
        fd_discount_stall(d, now_ms);
        d->last_tick_ms = now_ms;
    }
    /* by id, so that a callback may add or remove peers */
    uint64_t next_id = 1;
    for (;;) {
        int found;
        size_t i = fd_find(d, next_id, &found);
        if (i >= d->n)
            break;
        uint64_t id = d->peers[i].node_id;
        int64_t silent = now_ms - d->peers[i].last_heard_ms;
        if (silent < 0)
            silent = 0;
        if (d->peers[i].status == CLUSTER_PEER_ALIVE && silent >= d->cfg.suspect_after_ms)
            fd_transition(d, i, CLUSTER_PEER_SUSPECT, now_ms);
        i = fd_find(d, id, &found);
        int64_t down_after =
            found && d->peers[i].connected ? d->cfg.down_connected_after_ms : d->cfg.down_after_ms;
        if (found && d->peers[i].status == CLUSTER_PEER_SUSPECT && silent >= down_after)
            fd_transition(d, i, CLUSTER_PEER_DOWN, now_ms);
        if (id == UINT64_MAX)
            break;
        next_id = id + 1;
    }
}

int64_t fd_next_deadline(const fd *d)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < d->n; i++) {
        const fd_peer_view *p = &d->peers[i];
        int64_t at = p->status == CLUSTER_PEER_ALIVE ? p->last_heard_ms + d->cfg.suspect_after_ms
                     : p->status == CLUSTER_PEER_SUSPECT ? p->last_heard_ms + d->cfg.down_after_ms
                                                         : INT64_MAX;
        if (at < next)
            next = at;
    }
    return next;
}

int fd_get(const fd *d, uint64_t node_id, fd_peer_view *out)
{
    int found;
    size_t i = fd_find(d, node_id, &found);
    if (!found)
        return MB_ENOTFOUND;
    *out = d->peers[i];
    return MB_OK;
}

size_t fd_count(const fd *d)
{
    return d->n;
}

void fd_at(const fd *d, size_t i, fd_peer_view *out)
{
    assert(i < d->n);
    *out = d->peers[i];
}
