/* consensus/ internals shared by its .c files: protobuf <-> C conversions of
 * values and specs, number formatting. Not for other modules. */
#ifndef MB_CONSENSUS_INTERNAL_H
#define MB_CONSENSUS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mabeam/error.h>
#include <mabeam/value.h>

#include "command.pb-c.h"
#include "snapshot.pb-c.h"
#include "value.pb-c.h"

/* Shortest text of `x` that reads back as the same double; integral values
 * get ".0" ("1.0", "2.5", "1e-05"). */
void cs_fmt_double(char *buf, size_t size, double x);

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
/* The ident rule of ids (printable ASCII, no quotes, <= CONSENSUS_ID_MAX). */
int cs_ident_check(const char *what, const char *s, mb_error *err);

#endif /* MB_CONSENSUS_INTERNAL_H */
