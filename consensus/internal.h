/* consensus/ internals shared by its .c files: protobuf <-> C conversions of
 * values and specs, number formatting. Not for other modules. */
#ifndef MB_CONSENSUS_INTERNAL_H
#define MB_CONSENSUS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include <mabeam/error.h>
#include <mabeam/value.h>

#include "consensus/consensus.h"

#include "command.pb-c.h"
#include "snapshot.pb-c.h"
#include "value.pb-c.h"

/* Deferred io_destroy (aio_reap.c): libraft 0.15 destroys a segment
 * writer's AIO context on the loop thread, which waits 30-42 ms for the
 * kernel; aio_reap.c's syscall() hands SYS_io_destroy to a helper thread
 * instead. Process-wide. */
typedef struct consensus_aio_reap_counts {
    uint64_t deferred;    /* io_destroy calls handed to the helper thread */
    uint64_t synchronous; /* made by the caller: deferral off, queue full,
                             draining, or no thread could be started */
    uint64_t failed;      /* destroys the helper saw fail */
    unsigned queued;      /* waiting, or being destroyed now */
    int thread;           /* the helper thread exists */
} consensus_aio_reap_counts;
/* On (the default) or off, for every later io_destroy of the process. */
void consensus_aio_reap_set(int on);
/* Wait until every deferred destroy is done, then end the helper thread (a
 * later io_destroy starts a new one). Any thread but the helper. */
void consensus_aio_reap_drain(void);
void consensus_aio_reap_stats(consensus_aio_reap_counts *out);

/* Shortest text of `x` that reads back as the same double; integral values
 * get ".0" ("1.0", "2.5", "1e-05"). */
void cs_fmt_double(char *buf, size_t size, double x);
/* The payload of a var.set event, byte for byte what cJSON_PrintUnformatted
 * gives for {"name","value","version","prev_version","by"}, without building
 * a cJSON tree: float, probability and bool values whose name and author
 * need no escaping. `*out` is malloc'd (caller frees). MB_ENOTSUP: use
 * cJSON; MB_ENOMEM. */
int cs_var_set_event_json(const char *name, const mb_value *v, uint64_t version,
                          uint64_t prev_version, const char *by, char **out);

/* Fill `pb` (initialised here) so that it points into `v` (borrowed: `pb`
 * is valid while `v` is). Only the fields of v->type are set. */
void cs_value_to_pb(const mb_value *v, Mabeam__Value *pb);

/* Copy an unpacked protobuf value into *out (owned by the caller). Checks
 * the shape (type known, fields of that type only, sizes within limits):
 * MB_EPROTO with a message, MB_ENOMEM. */
int cs_value_from_pb(const Mabeam__Value *pb, mb_value *out, mb_error *err);

/* Same pair for specs. */
void cs_spec_to_pb(const mb_var_spec *s, Mabeam__VarSpec *pb);
int cs_spec_from_pb(const Mabeam__VarSpec *pb, mb_var_spec *out, mb_error *err);

/* strdup that maps NULL to NULL; *ok set to 0 on allocation failure. */
char *cs_strdup_or_null(const char *s, int *ok);

/* Sorted pointer tables (sm.c), shared by the tables of coord.c and
 * study.c. cs_arr_grow makes room for `need` pointers (MB_OK, MB_ENOMEM);
 * insert/remove shift the tail. cs_str_find: binary search of pointers to
 * structs whose `char *` key sits at `key_offset`: 1 and *pos when found,
 * else 0 and the insertion point. */
int cs_arr_grow(void ***arr, size_t *cap, size_t need);
void cs_arr_insert(void **arr, size_t *n, size_t pos, void *item);
void cs_arr_remove(void **arr, size_t *n, size_t pos);
int cs_str_find(void *const *arr, size_t n, size_t key_offset, const char *key, size_t *pos);

/* ---- studies (piece "studies"): hooks between sm.c and study.c ---- */

#include <cjson/cJSON.h>

#include "consensus/consensus.h"

/* The studies table, sorted by id. Owned by the state machine. */
typedef struct cs_studies {
    consensus_study **items;
    size_t n, cap;
} cs_studies;

void cs_studies_free(cs_studies *t);
int cs_study_find(const cs_studies *t, const char *id, size_t *pos);

/* Dry-run check of a STUDY_* / TRIAL_* command against the state. */
int cs_study_check(const consensus_sm *sm, const cs_studies *t, const consensus_cmd *c,
                   mb_error *err);
/* Execute a checked command (all-or-nothing except on MB_ENOMEM). */
int cs_study_exec(consensus_sm *sm, cs_studies *t, uint64_t index, const consensus_cmd *c,
                  consensus_result *res, consensus_effects *fx);
/* Re-queue every running trial evaluated by agent `agent` (borrowed) with
 * a generation below `fence` (UINT64_MAX: any), or by node `node` when
 * agent is NULL, with `why` as the reason. */
int cs_studies_evaluator_gone(cs_studies *t, uint64_t index, const char *agent, uint64_t fence,
                              uint64_t node, const char *why, consensus_effects *fx);

/* Command codec: pack a study command (header fields already set in `c`)
 * into a buffer from alloc_fn; decode the body of an unpacked Command
 * (MB_ENOTSUP when the body is not a study one). */
int cs_study_cmd_pack(const consensus_cmd *cmd, Mabeam__Command *c, void *(*alloc_fn)(size_t),
                      void **buf, size_t *len, mb_error *err);
int cs_study_cmd_decode(const Mabeam__Command *c, consensus_cmd *d, mb_error *err);
void cs_study_cmd_free(consensus_study_cmd *s);

/* Snapshot: point s->studies at pb records built from `t` (*scratch owns
 * them: release with cs_studies_pb_free after packing); restore them
 * defensively (MB_ECORRUPT). */
int cs_studies_to_pb(const cs_studies *t, Mabeam__Snapshot *s, void **scratch);
void cs_studies_pb_free(void *scratch);
int cs_studies_restore(const consensus_sm *sm, cs_studies *t, const Mabeam__Snapshot *s,
                       uint64_t applied, mb_error *err);

/* From sm.c for study.c: push an EVENT effect whose payload is `obj`
 * (consumed), and write a validated value to a variable as VAR_SET does. */
int cs_sm_event(consensus_effects *fx, const char *type, const char *subject, cJSON *obj,
                uint64_t index);
int cs_sm_var_write(consensus_sm *sm, uint64_t index, const char *name, const mb_value *v,
                    const char *who, consensus_effects *fx);
/* studyfeat: open proposal `c` (a PROPOSAL_OPEN, borrowed) within the
 * current apply, as that command would (check then execute); the check's
 * refusal is returned with its message in `err`. */
int cs_sm_proposal_open(consensus_sm *sm, uint64_t index, const consensus_cmd *c,
                        consensus_effects *fx, mb_error *err);
/* cs_ident_check (the ident rule of ids) is declared below. */

/* ---- coordination (piece: agents/coord): consensus/coord.c ---- */

/* Leases, barriers and election groups of one state machine. */
typedef struct cs_coord cs_coord;

cs_coord *cs_coord_new(void);
void cs_coord_free(cs_coord *co);
/* The coordination tables of `sm` (borrowed; set by sm.c). */
cs_coord *cs_sm_coord(const consensus_sm *sm);
/* Whether `kind` is a coordination command. */
int cs_coord_is_cmd(int kind);
/* check_cmd/exec_cmd of a coordination command (see sm.c). */
int cs_coord_check(const consensus_sm *sm, const consensus_cmd *c, mb_error *err);
int cs_coord_exec(consensus_sm *sm, uint64_t index, const consensus_cmd *c, consensus_result *res,
                  consensus_effects *fx);
/* Agent `a` (borrowed; its record before the change) crashed, stopped, was
 * removed or reassigned: release its leases, take it out of open barriers
 * and election groups (the next member leads), with effects. */
int cs_coord_agent_gone(consensus_sm *sm, uint64_t index, const consensus_agent *a, const char *why,
                        consensus_effects *fx);

/* Effects helpers of sm.c: `payload` (cJSON-allocated, may be NULL) is
 * taken over even on failure; cs_fx_event consumes `obj`. */
int cs_fx_push(consensus_effects *fx, int kind, const char *type, const char *subject,
               char *payload, uint64_t version, uint64_t node_id, uint64_t generation);
int cs_fx_event(consensus_effects *fx, const char *type, const char *subject, cJSON *obj,
                uint64_t version);
/* An identifier check (non-empty, printable ASCII without quotes, at most
 * CONSENSUS_ID_MAX bytes). */
int cs_ident_check(const char *what, const char *s, mb_error *err);

/* Protobuf mapping of the coordination commands (codec.c). Scratch space
 * for encoding lives in cs_coord_pb. */
typedef struct cs_coord_pb {
    Mabeam__LeaseAcquire la;
    Mabeam__LeaseRelease lr;
    Mabeam__BarrierArrive ba;
    Mabeam__ElectionMember em;
    Mabeam__CoordExpire ce;
} cs_coord_pb;
/* Set the body of `c` from `cmd` (borrowed; `c` points into cmd and tmp).
 * Returns 0, or -1 when cmd->kind is not a coordination command. */
int cs_coord_cmd_to_pb(const consensus_cmd *cmd, Mabeam__Command *c, cs_coord_pb *tmp);
/* Fill `d` from a coordination body of `c` (copies; *ok = 0 on allocation
 * failure). Returns 0, -1 when the body is not a coordination one, or an
 * mb_err for a malformed body. */
int cs_coord_cmd_from_pb(const Mabeam__Command *c, consensus_cmd *d, int *ok, mb_error *err);

/* Snapshot: point the coordination fields of `s` into the tables
 * (*scratch, freed by cs_coord_snapshot_done, holds the pb structs), and
 * restore them from an unpacked snapshot after the agents (defensive:
 * MB_ECORRUPT). */
int cs_coord_snapshot_pb(const cs_coord *co, Mabeam__Snapshot *s, void **scratch);
void cs_coord_snapshot_done(void *scratch);
int cs_coord_restore_pb(consensus_sm *sm, const Mabeam__Snapshot *s, mb_error *err);

#endif /* MB_CONSENSUS_INTERNAL_H */
