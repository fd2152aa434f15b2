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

/* Free the state machine and start a fresh one (CUnit per-test setup). */
void sm_fixture_fresh(void);

/* Encode `c` (borrowed), apply it at the next index and return the result.
 * An encoding error comes back as the result's code (no apply). */
consensus_result run(const consensus_cmd *c);

/* Number of event effects of the last run() whose type is `type`. */
size_t count_events(const char *type);

/* The first effect of the last run() of `kind` whose type is `type` (any
 * type when NULL), or NULL. Borrowed from fx. */
const consensus_effect *find_effect(consensus_effect_kind kind, const char *type);

/* Number of effects of the last run() of `kind` and type `type` (any type
 * when NULL). */
size_t count_effects(consensus_effect_kind kind, const char *type);

/* --- Command builders: each builds one command and runs it. Strings and
 * arrays are borrowed. --- */

/* Define `name`: int in [0, 100], consensus policy; asserts success. */
void define_consensus_int(const char *name);

/* Place agent `id` of `kind` on `node` with capabilities caps[0..ncaps)
 * (NULL, 0 for none). */
consensus_result place_agent(const char *id, const char *kind, uint64_t node, char **caps,
                             uint32_t ncaps);

/* Report status `st` of the placed agent `id` at its current generation. */
consensus_result agent_status(const char *id, consensus_agent_status st);

/* Vote yes/no on proposal `id` as `voter`. */
consensus_result vote(const char *id, const char *voter, int yes);

/* Add node `id` (addresses 127.0.0.1:9000 / "" / ""); asserts success. */
void add_node(uint64_t id);

/* Voters are cluster agents: place those of `voters` (borrowed) not in
 * the table yet, kind "voter", on node 1 (added if missing). */
void place_voters(char **voters, uint32_t n);

#endif /* MB_TEST_SM_FIXTURE_H */
