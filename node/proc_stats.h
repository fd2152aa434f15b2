/* node/proc_stats.h: process figures for /metrics and /v1/status, read
 * from /proc/self and getrusage (Linux). Any thread; no state. */
#ifndef MB_NODE_PROC_STATS_H
#define MB_NODE_PROC_STATS_H

#include <stdint.h>

/* Resident set size in bytes (0 if unreadable). */
uint64_t proc_rss_bytes(void);
/* User + system CPU time in seconds. */
double proc_cpu_seconds(void);
/* Number of open file descriptors (-1 if unreadable). */
int proc_open_fds(void);
/* Soft limit on open file descriptors. */
long proc_max_fds(void);
/* Number of threads of the process (0 if unreadable). */
int proc_threads(void);

#endif /* MB_NODE_PROC_STATS_H */
