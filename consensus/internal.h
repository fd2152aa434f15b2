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

#endif /* MB_CONSENSUS_INTERNAL_H */
