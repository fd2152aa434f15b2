/* node/api_park.h: the parked long-poll watches of one API area
 * (GET /v1/vars/{name}/watch, /v1/proposals/{id}/watch,
 * /v1/studies/{id}/watch, /v1/config/watch): a list of HTTP calls waiting
 * for a change, each with a key, a "from" position and a deadline. The API
 * module says when a watch has something to tell (its answer function);
 * this module parks the call (api_call_park), offers changes to the
 * matching watches, answers at the deadline and refuses them at shutdown.
 * Control loop thread only. */
#ifndef MB_NODE_API_PARK_H
#define MB_NODE_API_PARK_H

#include <stdint.h>

#include "node/api.h"

#define API_PARK_DEFAULT_MS 30000  /* timeout_ms when the query has none */
#define API_PARK_MAX_MS     300000 /* longer timeouts are cut to this */

struct node;
struct api_park; /* one parked watch (private to api_park.c) */

/* The watches of one area; zero-initialised (part of struct node). */
typedef struct api_park_list {
    struct api_park *head;
} api_park_list;

/* Answer `c`, the watch of `key` (NULL for keyless watches) from position
 * `from`, when there is something to tell, or always when `force` (the
 * deadline passed, or the watch asked for timeout 0). `wake` is what
 * api_park_wake passes along (NULL when not called from a wake). Returns 1
 * when the call was answered (the watch then ends), 0 to keep waiting.
 * Borrowed pointers, valid during the call. */
typedef int (*api_park_answer_fn)(struct node *n, api_call *c, const char *key, uint64_t from,
                                  int force, const void *wake);

/* Read the "timeout_ms" query parameter (API_PARK_DEFAULT_MS when absent,
 * at most API_PARK_MAX_MS). On MB_EINVAL the call is already answered with
 * a 400 (api_query_u64) and the handler must return. */
int api_park_timeout(api_call *c, uint64_t *timeout_ms);

/* Watch: answer `c` now if `answer` has something (forced when timeout_ms
 * is 0), or park it in `l` until a wake answers it, `timeout_ms` passes
 * (answered with force) or the node shuts down (answered MB_ECLOSED). When
 * it cannot be parked (out of memory, too many parked calls) it is answered
 * with that error. In every case the call is answered or parked when this
 * returns. `key` is copied (may be NULL); `l` must outlive the watch (it is
 * a field of `n`). */
void api_park_watch(api_park_list *l, struct node *n, api_call *c, const char *key, uint64_t from,
                    uint64_t timeout_ms, api_park_answer_fn answer);

/* Offer a change to the watches in `l` of `key` (to every watch when `key`
 * is NULL): each one whose answer function answers leaves the list. `wake`
 * (borrowed) is handed to the answer functions. */
void api_park_wake(api_park_list *l, struct node *n, const char *key, const void *wake);

#endif /* MB_NODE_API_PARK_H */
