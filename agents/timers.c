/* Agent timers: a hashed timing wheel (1 ms ticks, 512 slots) driven by the
 * services' monotonic clock, either by its own thread or, with
 * manual_timers, by explicit mb_runtime_tick() calls (tests with an
 * injected clock). Timers are found by id through a small hash table.
 *
 * The thread sleeps until the earliest deadline (on CLOCK_MONOTONIC, so
 * the services' clock is expected to run at its rate), at most
 * TIMER_WAIT_MAX_MS; a timer added with an earlier deadline wakes it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents/internal.h"
#include "internal/clock.h"

#define WHEEL_SLOTS       512u
#define TIMER_WAIT_MAX_MS 10000u /* the thread looks at least this often */

struct rt_timer {
    uint64_t id;
    uint64_t deadline_ms;
    uint64_t period_ms; /* 0 = one-shot */
    mb_agent_id target;
    uint32_t tag;
    struct rt_timer *prev, *next; /* wheel slot list */
    struct rt_timer *hnext;       /* id hash chain */
    size_t len;
    unsigned char data[];
};

struct rt_timers {
    struct mb_runtime *rt;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int manual;
    int stop;
    struct rt_timer *slots[WHEEL_SLOTS];
    struct rt_timer **hash;
    size_t hmask;
    size_t n;
    uint64_t next_id;
    uint64_t last_ms;    /* every deadline <= last_ms has fired */
    uint64_t wake_ms;    /* the thread's wait ends then; 0 while it is awake */
    int short_of_memory; /* the last tick stopped for want of memory */
};

static size_t hslot(const struct rt_timers *t, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 17) & t->hmask;
}

static void wheel_insert(struct rt_timers *t, struct rt_timer *tm)
{
    struct rt_timer **head = &t->slots[tm->deadline_ms % WHEEL_SLOTS];
    tm->prev = NULL;
    tm->next = *head;
    if (*head != NULL)
        (*head)->prev = tm;
    *head = tm;
}

static void wheel_remove(struct rt_timers *t, struct rt_timer *tm)
{
    if (tm->prev != NULL)
        tm->prev->next = tm->next;
    else
        t->slots[tm->deadline_ms % WHEEL_SLOTS] = tm->next;
    if (tm->next != NULL)
        tm->next->prev = tm->prev;
    tm->prev = tm->next = NULL;
}

static int hash_insert(struct rt_timers *t, struct rt_timer *tm)
{
    if (t->n + 1 > (t->hmask + 1)) {
        size_t ncap = (t->hmask + 1) * 2;
        struct rt_timer **nh = calloc(ncap, sizeof(*nh));
        if (nh == NULL)
            return MB_ENOMEM;
        struct rt_timer **oh = t->hash;
        size_t om = t->hmask;
        t->hash = nh;
        t->hmask = ncap - 1;
        for (size_t i = 0; i <= om; i++) {
            struct rt_timer *x = oh[i];
            while (x != NULL) {
                struct rt_timer *nx = x->hnext;
                size_t k = hslot(t, x->id);
                x->hnext = nh[k];
                nh[k] = x;
                x = nx;
            }
        }
        free(oh);
    }
    size_t k = hslot(t, tm->id);
    tm->hnext = t->hash[k];
    t->hash[k] = tm;
    t->n++;
    return 0;
}

static struct rt_timer *hash_take(struct rt_timers *t, uint64_t id, mb_agent_id owner)
{
    struct rt_timer **pp = &t->hash[hslot(t, id)];
    while (*pp != NULL && (*pp)->id != id)
        pp = &(*pp)->hnext;
    struct rt_timer *tm = *pp;
    if (tm == NULL || (owner != 0 && tm->target != owner))
        return NULL;
    *pp = tm->hnext;
    t->n--;
    return tm;
}

static uint64_t now_ms(struct rt_timers *t)
{
    return rt_monotonic_ms(t->rt);
}

int rt_timer_add(struct rt_timers *t, mb_agent_id target, uint64_t delay_ms, uint64_t period_ms,
                 uint32_t tag, const void *data, size_t len, uint64_t *id)
{
    struct rt_timer *tm = calloc(1, sizeof(*tm) + len);
    if (tm == NULL)
        return MB_ENOMEM;
    tm->period_ms = period_ms;
    tm->target = target;
    tm->tag = tag;
    tm->len = len;
    if (len > 0)
        memcpy(tm->data, data, len);
    pthread_mutex_lock(&t->mu);
    if (t->stop) {
        pthread_mutex_unlock(&t->mu);
        free(tm);
        return MB_ECLOSED;
    }
    tm->id = ++t->next_id;
    uint64_t now = now_ms(t);
    if (now < t->last_ms)
        now = t->last_ms;
    tm->deadline_ms = now + (delay_ms == 0 ? 1 : delay_ms);
    if (hash_insert(t, tm) != 0) {
        pthread_mutex_unlock(&t->mu);
        free(tm);
        return MB_ENOMEM;
    }
    wheel_insert(t, tm);
    if (id != NULL)
        *id = tm->id;
    if (tm->deadline_ms < t->wake_ms) /* the thread sleeps past it */
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int rt_timer_cancel(struct rt_timers *t, mb_agent_id owner, uint64_t id)
{
    pthread_mutex_lock(&t->mu);
    struct rt_timer *tm = hash_take(t, id, owner);
    if (tm != NULL)
        wheel_remove(t, tm);
    pthread_mutex_unlock(&t->mu);
    free(tm);
    return tm ? 0 : MB_ENOTFOUND;
}

/* Collect due timers into a list of messages (under the lock), deliver
 * them after. */
struct due {
    struct rt_msg *m;
    mb_agent_id target;
    uint64_t id;
    int periodic;
};

unsigned rt_timers_tick(struct rt_timers *t)
{
    struct due *due = NULL;
    size_t ndue = 0, capdue = 0;
    pthread_mutex_lock(&t->mu);
    uint64_t now = now_ms(t);
    if (now <= t->last_ms || t->n == 0) {
        if (now > t->last_ms)
            t->last_ms = now;
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    uint64_t from = t->last_ms + 1;
    uint64_t span = now - t->last_ms;
    if (span > WHEEL_SLOTS)
        span = WHEEL_SLOTS;
    struct rt_timer *requeue = NULL;
    uint64_t fired_to = now; /* every deadline <= fired_to has fired */
    int short_of_memory = 0;
    for (uint64_t i = 0; i < span && !short_of_memory; i++) {
        struct rt_timer *tm = t->slots[(from + i) % WHEEL_SLOTS];
        while (tm != NULL) {
            struct rt_timer *nx = tm->next;
            if (tm->deadline_ms <= now) {
                struct rt_msg *m = NULL;
                if (ndue == capdue) {
                    size_t nc = capdue ? capdue * 2 : 16;
                    struct due *nd = realloc(due, nc * sizeof(*nd));
                    if (nd != NULL) {
                        due = nd;
                        capdue = nc;
                    }
                }
                if (ndue < capdue)
                    m = rt_msg_new(tm->target, MB_MSG_TIMER, tm->tag, tm->data, tm->len);
                if (m == NULL) {
                    /* The next tick starts again at this slot, whose
                     * fired timers have left it. */
                    short_of_memory = 1;
                    fired_to = from + i - 1;
                    break;
                }
                due[ndue++] = (struct due){ m, tm->target, tm->id, tm->period_ms != 0 };
                wheel_remove(t, tm);
                if (tm->period_ms != 0) {
                    tm->deadline_ms += tm->period_ms;
                    if (tm->deadline_ms <= now)
                        tm->deadline_ms = now + tm->period_ms;
                    tm->next = requeue;
                    requeue = tm;
                } else {
                    hash_take(t, tm->id, 0);
                    free(tm);
                }
            }
            tm = nx;
        }
    }
    while (requeue != NULL) {
        struct rt_timer *nx = requeue->next;
        wheel_insert(t, requeue);
        requeue = nx;
    }
    t->last_ms = fired_to;
    t->short_of_memory = short_of_memory;
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < ndue; i++) {
        if (rt_deliver(t->rt, due[i].target, due[i].m) != 0) {
            rt_msg_free(due[i].m);
            if (due[i].periodic) /* its agent is gone */
                rt_timer_cancel(t, 0, due[i].id);
        }
    }
    free(due);
    return (unsigned)ndue;
}

/* Caller holds t->mu. The earliest deadline of a pending timer: the first
 * slot after last_ms that holds one due in this turn of the wheel, else
 * (every chain has then been looked at) the least deadline of all. */
static uint64_t next_deadline_locked(const struct rt_timers *t)
{
    uint64_t least = UINT64_MAX;
    for (uint64_t d = t->last_ms + 1; d <= t->last_ms + WHEEL_SLOTS; d++) {
        for (const struct rt_timer *tm = t->slots[d % WHEEL_SLOTS]; tm != NULL; tm = tm->next) {
            if (tm->deadline_ms <= d)
                return tm->deadline_ms;
            if (tm->deadline_ms < least)
                least = tm->deadline_ms;
        }
    }
    return least;
}

static void *timer_main(void *arg)
{
    struct rt_timers *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        if (t->n == 0) {
            t->wake_ms = UINT64_MAX;
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        t->wake_ms = 0; /* awake: timers added now are seen below */
        pthread_mutex_unlock(&t->mu);
        rt_timers_tick(t);
        pthread_mutex_lock(&t->mu);
        if (t->stop || t->n == 0)
            continue;
        uint64_t now = now_ms(t);
        uint64_t next = t->short_of_memory ? now + 1 : next_deadline_locked(t);
        if (next <= now)
            continue; /* due meanwhile */
        uint64_t wait = next - now < TIMER_WAIT_MAX_MS ? next - now : TIMER_WAIT_MAX_MS;
        t->wake_ms = now + wait;
        /* On CLOCK_MONOTONIC: a step of the wall clock (NTP, an operator)
         * must not stall every agent timer. The wait ends at or after
         * `next` on the services' clock (its milliseconds are whole, the
         * deadline adds to the current nanoseconds), so the tick after it
         * finds the timer due. */
        struct timespec ts = mb_deadline_in_ms(wait);
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int rt_timers_start(struct mb_runtime *rt, int manual, struct rt_timers **out)
{
    struct rt_timers *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MB_ENOMEM;
    t->rt = rt;
    t->manual = manual;
    t->hmask = 63;
    t->hash = calloc(t->hmask + 1, sizeof(*t->hash));
    if (t->hash == NULL) {
        free(t);
        return MB_ENOMEM;
    }
    pthread_mutex_init(&t->mu, NULL);
    mb_cond_init_monotonic(&t->cv);
    t->last_ms = rt_monotonic_ms(rt);
    if (!manual && pthread_create(&t->th, NULL, timer_main, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t->hash);
        free(t);
        return MB_EUNAVAIL;
    }
    if (!manual) /* named here, so that it has its name once start returns */
        pthread_setname_np(t->th, "mb-timers");
    *out = t;
    return 0;
}

void rt_timers_stop(struct rt_timers *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (!t->manual)
        pthread_join(t->th, NULL);
    for (size_t i = 0; i <= t->hmask; i++) {
        struct rt_timer *x = t->hash[i];
        while (x != NULL) {
            struct rt_timer *nx = x->hnext;
            free(x);
            x = nx;
        }
    }
    free(t->hash);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
