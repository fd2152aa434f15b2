/* node/studies.h: the studies driver of mabeamd (piece "studies",
 * docs/studies.md). On the raft leader it runs the optimiser of every
 * running study (rebuilt by replaying the replicated trials, so any leader
 * can take over) and keeps `parallelism` trials suggested; on every node it
 * runs `study_evaluators` evaluator slots that claim suggested trials and
 * evaluate them (builtin functions in-process, command and python
 * objectives as child processes), reporting through the replicated log.
 *
 * Threads: the driver lives on the control loop; each evaluator slot is a
 * thread that hands results back through a uv_async. */
#ifndef MB_NODE_STUDIES_H
#define MB_NODE_STUDIES_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <mabeam/error.h>

struct node;
typedef struct studies studies;

/* Start the driver of node `n` (borrowed; must outlive it) into
 * n->studies, with `slots` evaluator threads (0 = none). MB_ENOMEM,
 * MB_EIO (thread creation). */
int studies_open(struct node *n, unsigned slots, mb_error *err);

/* Stop: kill running objective processes, join the slot threads, close
 * the handles; the module frees itself once its pending replicated writes
 * have answered (the loop must keep running). NULL is a no-op. */
void studies_close(studies *s);

/* Replicated study state changed (a study./trial. event was applied):
 * run the driver soon and answer watches. Loop thread; no-op when the
 * driver is not open. */
void studies_notify(struct node *n);

/* Local evaluator view for `GET /v1/studies` ("evaluators": slots, busy). */
void studies_local_json(const studies *s, cJSON *obj);

/* Long-poll watches of studies (api_studies.c): called by studies_notify. */
void api_studies_notify(struct node *n);

#endif /* MB_NODE_STUDIES_H */
