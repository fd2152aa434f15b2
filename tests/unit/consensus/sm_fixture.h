/* tests/unit/consensus/sm_fixture.h: the state-machine fixture shared by the
 * consensus unit tests — one state machine, its effects list and the next
 * raft index, with helpers to apply commands through the codec. */
#ifndef MB_TEST_SM_FIXTURE_H
#define MB_TEST_SM_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "consensus/consensus.h"

extern consensus_sm *sm;     /* the state machine under test */
extern consensus_effects fx; /* effects of the last run() */
extern uint64_t next_index;  /* raft index of the last run() */

/* A fresh empty state machine at index 0 (CUnit init: 0 = ok). */
int sm_fixture_setup(void);
/* Free it (CUnit cleanup: always 0). */
int sm_fixture_teardown(void);

/* Encode `c` (borrowed), apply it at the next index and return the result.
 * An encoding error comes back as the result's code (no apply). */
consensus_result run(const consensus_cmd *c);

/* Number of event effects of the last run() whose type is `type`. */
size_t count_events(const char *type);

/* Add node `id` (addresses 127.0.0.1:9000 / "" / ""); asserts success. */
void add_node(uint64_t id);

#endif /* MB_TEST_SM_FIXTURE_H */
