#!/usr/bin/env bash
# A voter that is killed never holds a vote up: once its node reports it
# crashed (AGENT_STATUS), it leaves the eligible set and the proposal
# completes without it. A proposal whose voters never answer expires at
# its deadline (closed by the leader).
. "$(dirname "$0")/lib_proposals.sh"

start_cluster 3
define_consensus 1 k
spawn_voter 1 a '{"vote":"yes"}'
spawn_voter 2 b '{"vote":"yes"}'
spawn_voter 3 c '{"vote":"yes","delay_ms":600000}'

propose 1 '{"variable":"k","value":5,"rule":"unanimous","voters":["a","b","c"],"timeout_ms":2000}'
P=$PROP
outcome_is 1 "$P" open || fail "not open: $(outcome_of 1 "$P")"
wait_until 20 outcome_is 2 "$P" expired || fail "no expiry: $(outcome_of 2 "$P")"
value_is 3 k 0 || fail "expired proposal changed k"
pass "a proposal whose voter never answers expires at its deadline"
