/* node/node_log.c: events of the daemon onto storage/ (see node_log.h). */
#include "node/node_log.h"

int node_log_append(storage *s, storage_event *ev, mb_error *err)
{
    return storage_local_append(s, ev, 1, err);
}

int node_log_query(storage *s, int cluster, const struct storage_query *q, storage_event_cb cb,
                   void *arg, uint64_t *next_cursor, mb_error *err)
{
    if (cluster)
        return storage_query(s, q, cb, arg, next_cursor, err);
    return storage_local_query(s, q, cb, arg, next_cursor, err);
}

int node_log_stats(storage *s, int cluster, storage_stats *out, mb_error *err)
{
    if (cluster)
        return storage_get_stats(s, out, err);
    return storage_local_get_stats(s, out, err);
}
