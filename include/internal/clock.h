/* include/internal/clock.h: condition variables whose timed waits run on
 * CLOCK_MONOTONIC, and deadlines for them. Internal to MABEAM (not part of
 * the public API in include/mabeam/); header-only, for every module.
 *
 * A timed wait on the default clock (CLOCK_REALTIME) follows steps of the
 * wall clock: a backward step (NTP, an operator) stretches the wait by the
 * size of the step, a forward one cuts it short. */
#ifndef MB_INTERNAL_CLOCK_H
#define MB_INTERNAL_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* pthread_cond_init with CLOCK_MONOTONIC; its result (0 or an errno). */
static inline int mb_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/* The CLOCK_MONOTONIC time `ms` milliseconds from now, for
 * pthread_cond_timedwait on a condition made by mb_cond_init_monotonic. */
static inline struct timespec mb_deadline_in_ms(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif /* MB_INTERNAL_CLOCK_H */
