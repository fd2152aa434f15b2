#!/usr/bin/env bash
# Voters as placed cluster agents (placement): voters by capability; a
# voter that is killed leaves the eligible set as soon as its node reports
# it crashed, and the proposal completes without it (long before its
# deadline); a proposal whose voter never answers expires at its deadline
# (closed by the leader).
. "$(dirname "$0")/lib_proposals.sh"

# place NAME NODE CAPS CONFIG: a cluster agent of kind voter on node NODE.
place() {
    http POST "http://${HTTP[1]}/v1/agents" "{\"kind\":\"voter\",\"name\":\"$1\",
      \"placement\":\"node:$2\",\"capabilities\":$3,\"config\":$4}"
    [ "$HTTP_CODE" = 201 ] || fail "place $1 on node $2: $HTTP_CODE $(cat "$T/body")"
}
# running NAME: the replicated status of cluster agent NAME is running.
running() {
    curl -fsS -m 3 "http://${HTTP[1]}/v1/cluster/agents/$1" 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["status"]=="running" else 1)'
}

start_cluster 3
define_consensus 1 k
place a 1 '["tuner"]' '{"vote":"yes"}'
place b 2 '["tuner"]' '{"vote":"yes"}'
place c 3 '["tuner"]' '{"vote":"yes","delay_ms":600000}'
place d 3 '["other"]' '{"vote":"no"}'
for x in a b c d; do wait_until 30 running "$x" || fail "cluster agent $x not running"; done

# Voters by capability: a, b, c (not d). c answers only in 10 minutes.
propose 2 '{"variable":"k","value":5,"rule":"unanimous","caps":["tuner"],"timeout_ms":60000}'
P=$PROP
http GET "http://${HTTP[2]}/v1/proposals/$P"
[ "$(jget "$T/body" 'sorted(j["voters"])')" = "['a', 'b', 'c']" ] ||
    fail "voters by capability: $(cat "$T/body")"
wait_until 20 test "$(curl -fsS "http://${HTTP[1]}/v1/proposals/$P" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("yes"))')" = 2 ||
    fail "a and b did not vote"
outcome_is 1 "$P" open || fail "decided without c: $(outcome_of 1 "$P")"
pass "voters resolved by capability; the slow voter holds the proposal open"

# Kill c on its node: placement reports it crashed, it leaves the voters,
# and the two yes votes decide.
t0=$(now_ms)
http POST "http://${HTTP[3]}/v1/agents/c/kill?namespace=cluster" ''
[ "$HTTP_CODE" = 202 ] || fail "kill c: $HTTP_CODE $(cat "$T/body")"
wait_until 20 outcome_is 1 "$P" accepted || fail "after the kill: $(outcome_of 1 "$P")"
echo "decided $(($(now_ms) - t0)) ms after the voter was killed (deadline was 60 s)"
wait_until 10 value_is 3 k 5 || fail "k not set on node 3"
curl -fsS "http://${HTTP[2]}/v1/events?log=cluster&subject=k&type=proposal.voter_left" >"$T/left"
[ "$(jget "$T/left" '[e["payload"]["voter"] for e in j["events"]]')" = "['c']" ] ||
    fail "voter_left event: $(cat "$T/left")"
pass "a killed voter leaves the eligible set at once; the proposal completes without it"

# Expiry: c is back (restarted by placement) and answers too late again.
wait_until 30 running c || fail "c not restarted"
propose 1 '{"variable":"k","value":6,"rule":"unanimous","voters":["a","c"],"timeout_ms":2000}'
P=$PROP
outcome_is 1 "$P" open || fail "not open: $(outcome_of 1 "$P")"
wait_until 20 outcome_is 2 "$P" expired || fail "no expiry: $(outcome_of 2 "$P")"
value_is 3 k 5 || fail "expired proposal changed k"
pass "a proposal whose voter never answers expires at its deadline"
