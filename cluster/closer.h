/* cluster/ internal: NNG sockets closed on a thread of their own.
 *
 * With libnng 1.5.2, nng_close can wait forever for a pipe whose receive
 * never completes (the reaper stuck in req0_pipe_stop; it matches
 * nanomsg/nng#1636, a TCP pipe closed while its receive callback runs,
 * fixed upstream in 1.6.0). On the loop thread such a close would stop the whole node; here it
 * parks one thread and keeps one socket, and the node goes on. Seen about
 * once in 50 ASan runs of test_cluster_mesh (docs/cluster.md, "Known
 * limits"). */
#ifndef MB_CLUSTER_CLOSER_H
#define MB_CLUSTER_CLOSER_H

#include <stdint.h>

#include <mabeam/error.h>
#include <nng/nng.h>

typedef struct sock_closer sock_closer;

/* Start the closer's thread. `close_fn` closes one socket (NULL =
 * nng_close; tests pass their own). Returns MB_OK or MB_ENOMEM / MB_EIO. */
int sock_closer_open(sock_closer **out, int (*close_fn)(nng_socket));

/* Queue `s` for closing; the caller must not use it any more. `after`
 * (may be NULL) is free()d once the close returned: memory the socket's
 * callbacks (nng_pipe_notify) may still touch until then. When the queue
 * cannot grow (out of memory) both happen here, on the caller's thread.
 * Thread-safe. */
void sock_closer_submit(sock_closer *c, nng_socket s, void *after);

/* Closes waiting or running now (queued + in progress). Thread-safe. */
unsigned sock_closer_pending(sock_closer *c);

/* Wait up to `timeout_ms` for every queued close, then stop the thread and
 * free the closer: MB_OK. If a close is still running at the deadline the
 * thread is detached and what it holds is left behind on purpose (the
 * process-wide count of sock_closer_stuck() goes up): MB_ETIMEDOUT. NULL
 * is a no-op. */
int sock_closer_close(sock_closer *c, uint64_t timeout_ms);

/* Closers abandoned with a close still running, in this process. While it
 * is not 0, nng_fini() would wait for that close forever: skip it. */
unsigned sock_closer_stuck(void);

#endif
