/* NNG sockets closed on a thread of their own: see closer.h for why. */
#include "cluster/closer.h"
#include "internal/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <mabeam/error.h>

struct sock_closer {
    pthread_mutex_t mu;
    pthread_cond_t work; /* queue not empty, or stop */
    pthread_cond_t idle; /* a close finished */
    pthread_t thr;
    int (*close_fn)(nng_socket);
    struct closing {
        nng_socket sock;
        void *after; /* freed once sock is closed */
        struct closing *next;
    } * head, *tail; /* FIFO */
    int running;     /* a close is in progress */
    int stop;        /* the owner is closing: exit once the queue is empty */
    int abandoned;   /* the owner gave up waiting: the thread frees c */
};

static atomic_uint g_stuck;

static int close_default(nng_socket s)
{
    return nng_close(s);
}

static void closer_free(sock_closer *c)
{
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void *closer_main(void *arg)
{
    sock_closer *c = arg;
    pthread_setname_np(pthread_self(), "mb-nng-close");
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->head == NULL && !c->stop)
            pthread_cond_wait(&c->work, &c->mu);
        struct closing *one = c->head;
        if (one == NULL)
            break; /* stop, and nothing left */
        if ((c->head = one->next) == NULL)
            c->tail = NULL;
        c->running = 1;
        pthread_mutex_unlock(&c->mu);
        c->close_fn(one->sock); /* NNG_ECLOSED for a socket closed twice: nothing to do */
        free(one->after);
        free(one);
        pthread_mutex_lock(&c->mu);
        c->running = 0;
        pthread_cond_broadcast(&c->idle);
    }
    int abandoned = c->abandoned;
    pthread_mutex_unlock(&c->mu);
    if (abandoned) {
        /* The owner left while a close hung; it finished after all. */
        atomic_fetch_sub(&g_stuck, 1);
        closer_free(c);
    }
    return NULL;
}

int sock_closer_open(sock_closer **out, int (*close_fn)(nng_socket))
{
    *out = NULL;
    sock_closer *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return MB_ENOMEM;
    c->close_fn = close_fn != NULL ? close_fn : close_default;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work, NULL);
    mb_cond_init_monotonic(&c->idle);
    if (pthread_create(&c->thr, NULL, closer_main, c) != 0) {
        closer_free(c);
        return MB_EIO;
    }
    *out = c;
    return MB_OK;
}

void sock_closer_submit(sock_closer *c, nng_socket s, void *after)
{
    struct closing *one = malloc(sizeof(*one));
    pthread_mutex_lock(&c->mu);
    if (c->stop || one == NULL) {
        pthread_mutex_unlock(&c->mu);
        free(one);
        c->close_fn(s);
        free(after);
        return;
    }
    *one = (struct closing){ .sock = s, .after = after };
    if (c->tail != NULL)
        c->tail->next = one;
    else
        c->head = one;
    c->tail = one;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
}

unsigned sock_closer_pending(sock_closer *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned n = (unsigned)c->running;
    for (const struct closing *q = c->head; q != NULL; q = q->next)
        n++;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int sock_closer_close(sock_closer *c, uint64_t timeout_ms)
{
    if (c == NULL)
        return MB_OK;
    struct timespec until = mb_deadline_in_ms(timeout_ms);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->work);
    int timed_out = 0;
    while ((c->head != NULL || c->running) && !timed_out)
        timed_out = pthread_cond_timedwait(&c->idle, &c->mu, &until) == ETIMEDOUT;
    if (c->head != NULL || c->running) {
        /* The thread frees c if the close ever returns. */
        pthread_t thr = c->thr; /* c may be gone once mu is released */
        c->abandoned = 1;
        atomic_fetch_add(&g_stuck, 1);
        pthread_mutex_unlock(&c->mu);
        pthread_detach(thr);
        return MB_ETIMEDOUT;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thr, NULL);
    closer_free(c);
    return MB_OK;
}

unsigned sock_closer_stuck(void)
{
    return atomic_load(&g_stuck);
}
