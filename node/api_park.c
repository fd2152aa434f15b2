/* node/api_park.c: parked long-poll watches (see api_park.h). Control loop
 * thread. */
#include "node/api_park.h"

#include <stdlib.h>
#include <string.h>

typedef struct api_park {
    struct api_park *next, *prev;
    api_park_list *list;
    api_call *call;
    char *key; /* owned; NULL for keyless watches */
    uint64_t from;
    api_park_answer_fn answer;
} api_park;

int api_park_timeout(api_call *c, uint64_t *timeout_ms)
{
    int rv = api_query_u64(c, "timeout_ms", API_PARK_DEFAULT_MS, timeout_ms);
    if (rv == MB_OK && *timeout_ms > API_PARK_MAX_MS)
        *timeout_ms = API_PARK_MAX_MS;
    return rv;
}

static void park_unlink(api_park *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        w->list->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void park_free(api_park *w)
{
    free(w->key);
    free(w);
}

static void park_expire_cb(struct node *n, api_call *c, void *arg, int code)
{
    api_park *w = arg;
    park_unlink(w);
    if (code == MB_ECLOSED)
        api_reply_error(c, MB_ECLOSED, "node is shutting down");
    else
        w->answer(n, c, w->key, w->from, 1, NULL);
    park_free(w);
}

void api_park_watch(api_park_list *l, struct node *n, api_call *c, const char *key, uint64_t from,
                    uint64_t timeout_ms, api_park_answer_fn answer)
{
    if (answer(n, c, key, from, timeout_ms == 0, NULL))
        return;
    api_park *w = calloc(1, sizeof(*w));
    char *k = key != NULL ? strdup(key) : NULL;
    if (w == NULL || (key != NULL && k == NULL)) {
        free(w);
        free(k);
        api_reply_error(c, MB_ENOMEM, "out of memory for a watch");
        return;
    }
    w->list = l;
    w->call = c;
    w->key = k;
    w->from = from;
    w->answer = answer;
    int rv = api_call_park(n, c, timeout_ms, park_expire_cb, w);
    if (rv != MB_OK) {
        park_free(w);
        api_reply_error(c, rv, "%s",
                        rv == MB_EFULL ? "too many watches are waiting; retry later"
                                       : "cannot park the watch");
        return;
    }
    w->next = l->head;
    if (l->head != NULL)
        l->head->prev = w;
    l->head = w;
}

void api_park_wake(api_park_list *l, struct node *n, const char *key, const void *wake)
{
    for (api_park *w = l->head, *next; w != NULL; w = next) {
        next = w->next;
        if (key != NULL && (w->key == NULL || strcmp(w->key, key) != 0))
            continue;
        if (w->answer(n, w->call, w->key, w->from, 0, wake)) {
            park_unlink(w);
            park_free(w);
        }
    }
}
