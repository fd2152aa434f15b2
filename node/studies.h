/* node/studies.h: the studies driver of mabeamd (pieces "studies" and
 * "studyagents", docs/studies.md "Who runs what"). Optimisers and
 * evaluators are placed cluster agents (kinds `optimiser`, `evaluator`):
 * the raft leader places one optimiser agent per running study and removes
 * it when the study ends; the node that runs it runs the study's optimiser
 * (rebuilt by replaying the replicated trials, so any host can take over)
 * and keeps `parallelism` trials suggested. Every node places
 * `study_evaluators` evaluator agents on itself; each evaluator agent that
 * runs on a node gets a slot there that claims suggested trials and
 * evaluates them (builtin functions in-process, command and python
 * objectives as child processes), reporting through the replicated log.
 *
 * Threads: the driver lives on the control loop; each evaluator slot is a
 * thread that hands results back through a uv_async. */
#ifndef MB_NODE_STUDIES_H
#define MB_NODE_STUDIES_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <mabeam/error.h>

struct node;
typedef struct studies studies;

/* Start the driver of node `n` (borrowed; must outlive it) into
 * n->studies; it places `slots` evaluator agents on this node (0 = none;
 * at most 256) once the node is up in the cluster. MB_ENOMEM. */
int studies_open(struct node *n, unsigned slots, mb_error *err);

/* Stop: kill running objective processes, join the slot threads, close
 * the handles; the module frees itself once its pending replicated writes
 * have answered (the loop must keep running). NULL is a no-op. */
void studies_close(studies *s);

/* Replicated study state changed (a study./trial. event was applied):
 * run the driver soon and answer watches. Loop thread; no-op when the
 * driver is not open. */
void studies_notify(struct node *n);

/* The cluster id of study `study_id`'s optimiser agent (both borrowed)
 * into `out` (size >= CONSENSUS_ID_MAX + 1): "optimiser-<id>" when that is
 * a valid agent id, else "optimiser-<16 hex digits of a hash of id>". */
void studies_optimiser_name(const char *study_id, char *out, size_t size);

/* Local evaluator view for `GET /v1/studies` ("evaluators": slots, busy). */
void studies_local_json(const studies *s, cJSON *obj);

/* Long-poll watches of studies (api_studies.c): called by studies_notify. */
void api_studies_notify(struct node *n);

#endif /* MB_NODE_STUDIES_H */
