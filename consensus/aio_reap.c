/* Deferred io_destroy for libraft 0.15's segment writers.
 *
 * libraft's uv backend gives each open segment a kernel AIO context and
 * destroys it with io_destroy(2) when the writer closes: at every segment
 * roll-over and every snapshot's barrier. io_destroy waits until the kernel
 * has retired the context (an RCU grace period), 30-42 ms on the project's
 * 2-vCPU machine, and libraft makes the call on the loop thread, which then
 * neither reads requests nor handles raft messages (docs/consensus.md §4).
 * libraft 0.15 has no setting for it, and its io_destroy wrapper is a
 * hidden symbol that calls syscall(2).
 *
 * This file defines syscall() in the executable. The dynamic linker binds
 * libraft.so's calls to it (an executable's definitions come first), so
 * SYS_io_destroy is handed to one helper thread ("mb-aio-reap") and
 * reported done at once; every other number goes to the C library's
 * syscall() unchanged. Deferring is safe because libraft destroys a context
 * only after every write submitted on it has completed, never uses the
 * context id again, and ignores io_destroy's result. Where the definition
 * is not the one bound (a library loaded without the executable's symbols,
 * a static libraft) libraft calls the C library directly and nothing
 * changes. consensus_aio_reap_set(0) turns the deferral off. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, pthread_setname_np */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "consensus/internal.h"

/* Queued contexts beyond this are destroyed by the caller (synchronously):
 * the queue holds what a few seconds of segment closes produce. */
#define REAP_QUEUE 64

typedef long (*syscall_fn)(long number, ...);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* work queued, or stop */
    unsigned long ctx[REAP_QUEUE];
    unsigned head, count;
    int busy;    /* the thread is destroying one */
    int running; /* the thread exists */
    int stop;    /* the thread should exit once the queue is empty */
    int joining; /* consensus_aio_reap_drain is joining it */
    pthread_t thread;
    uint64_t deferred, synchronous, failed;
} reap = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static atomic_int reap_enabled = 1;
static _Atomic(syscall_fn) next_syscall;

/* The C library's syscall(), found once. */
static syscall_fn real_syscall(void)
{
    syscall_fn f = atomic_load_explicit(&next_syscall, memory_order_acquire);
    if (f == NULL) {
        f = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
        atomic_store_explicit(&next_syscall, f, memory_order_release);
    }
    return f;
}

static void *reap_main(void *arg)
{
    (void)arg;
    syscall_fn sys = real_syscall();
    pthread_mutex_lock(&reap.mu);
    for (;;) {
        while (reap.count == 0 && !reap.stop)
            pthread_cond_wait(&reap.cv, &reap.mu);
        if (reap.count == 0)
            break; /* stop, and nothing left */
        unsigned long ctx = reap.ctx[reap.head];
        reap.head = (reap.head + 1) % REAP_QUEUE;
        reap.count--;
        reap.busy = 1;
        pthread_mutex_unlock(&reap.mu);
        long rc = sys(SYS_io_destroy, ctx);
        pthread_mutex_lock(&reap.mu);
        reap.busy = 0;
        if (rc != 0)
            reap.failed++;
    }
    pthread_mutex_unlock(&reap.mu);
    return NULL;
}

/* Queue `ctx` for the thread (started if needed); 0 when queued, -1 when
 * the caller must destroy it itself (deferral off, queue full, draining, no
 * thread). */
static int reap_defer(unsigned long ctx)
{
    int on = atomic_load_explicit(&reap_enabled, memory_order_relaxed);
    int rc = -1;
    if (on && real_syscall() == NULL)
        return -1; /* resolved here, not first on the helper's small stack */
    pthread_mutex_lock(&reap.mu);
    if (on && !reap.running && !reap.joining) {
        pthread_attr_t at;
        sigset_t all, old;
        /* The helper takes no signals: they stay with the daemon's threads. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_attr_init(&at) == 0) {
            /* A small stack: the thread makes one system call at a time. */
            (void)pthread_attr_setstacksize(&at, 128 * 1024);
            reap.stop = 0;
            if (pthread_create(&reap.thread, &at, reap_main, NULL) == 0) {
                reap.running = 1;
                (void)pthread_setname_np(reap.thread, "mb-aio-reap");
            }
            pthread_attr_destroy(&at);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (on && reap.running && !reap.joining && reap.count < REAP_QUEUE) {
        reap.ctx[(reap.head + reap.count) % REAP_QUEUE] = ctx;
        reap.count++;
        reap.deferred++;
        pthread_cond_signal(&reap.cv);
        rc = 0;
    } else {
        reap.synchronous++;
    }
    pthread_mutex_unlock(&reap.mu);
    return rc;
}

/* Every system call made through syscall() in this process comes here:
 * libraft's AIO calls, and any other library's. Six arguments are passed
 * on, as the C library's own syscall() does (the kernel ignores those a
 * call does not take). */
long syscall(long number, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_io_destroy && reap_defer((unsigned long)a[0]) == 0)
        return 0;
    syscall_fn sys = real_syscall();
    if (sys == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return sys(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void consensus_aio_reap_set(int on)
{
    atomic_store_explicit(&reap_enabled, on != 0, memory_order_relaxed);
}

void consensus_aio_reap_drain(void)
{
    pthread_mutex_lock(&reap.mu);
    if (!reap.running || reap.joining) {
        pthread_mutex_unlock(&reap.mu);
        return;
    }
    reap.joining = 1;
    reap.stop = 1;
    pthread_cond_signal(&reap.cv);
    pthread_t t = reap.thread;
    pthread_mutex_unlock(&reap.mu);
    pthread_join(t, NULL); /* it exits once the queue is empty */
    pthread_mutex_lock(&reap.mu);
    reap.running = 0;
    reap.joining = 0;
    reap.stop = 0;
    pthread_mutex_unlock(&reap.mu);
}

void consensus_aio_reap_stats(consensus_aio_reap_counts *out)
{
    pthread_mutex_lock(&reap.mu);
    out->deferred = reap.deferred;
    out->synchronous = reap.synchronous;
    out->failed = reap.failed;
    out->queued = reap.count + (unsigned)reap.busy;
    out->thread = reap.running;
    pthread_mutex_unlock(&reap.mu);
}
