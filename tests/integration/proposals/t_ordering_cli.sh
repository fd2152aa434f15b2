#!/usr/bin/env bash
# Proposals on one variable are ordered (a second open is refused while
# one is open); watch returns at the decision; the CLI (propose --wait,
# proposal list/show/watch, set refused); a port agent votes through the
# protocol. Voters spread over 3 nodes.
. "$(dirname "$0")/lib_proposals.sh"

start_cluster 3
for i in 1 2 3; do
    spawn_voter "$i" "y$i" '{"min":0,"max":50}'
    spawn_voter "$i" "n$i" '{"vote":"no"}'
done

# Concurrent proposals on one variable: the second is refused while the
# first is open (slow voters keep it open), accepted after it.
define_consensus 1 slow
spawn_voter 1 s1 '{"vote":"yes","delay_ms":6000}'
spawn_voter 2 s2 '{"vote":"yes","delay_ms":6000}'
wait_until 10 value_is 3 slow 0 || fail "slow not defined on node 3"
propose 1 '{"variable":"slow","value":1,"rule":"unanimous","voters":["s1","s2"]}'
PS=$PROP
http POST "http://${HTTP[1]}/v1/proposals" '{"variable":"slow","value":2,"rule":"majority","voters":["s1","s2"]}'
[ "$HTTP_CODE" = 409 ] || fail "second open on slow: $HTTP_CODE $(cat "$T/body")"
grep -q "already has proposal" "$T/body" || fail "second open error: $(cat "$T/body")"
wait_until 20 outcome_is 1 "$PS" accepted || fail "slow: $(outcome_of 1 "$PS")"
propose 3 '{"variable":"slow","value":2,"rule":"majority","voters":["s1","s2"]}'
wait_until 20 outcome_is 3 "$PROP" accepted || fail "slow second: $(outcome_of 3 "$PROP")"
wait_until 10 value_is 2 slow 2 || fail "slow second not applied"
pass "proposals on one variable are ordered: one open at a time"

# Watch: long-poll until decided.
propose 2 '{"variable":"slow","value":3,"rule":"majority","voters":["s1","s2"]}'
http GET "http://${HTTP[2]}/v1/proposals/$PROP/watch?timeout_ms=20000"
[ "$HTTP_CODE" = 200 ] || fail "watch: $HTTP_CODE"
[ "$(jget "$T/body" 'j["outcome"]')" = accepted ] || fail "watch answered $(cat "$T/body")"
pass "watch returns when the proposal is decided"

# The CLI: propose --wait exits 0 when accepted, 1 when rejected; list and
# show; a set through the CLI points at propose.
define_consensus 1 cli
"$MABEAM" --addr "${HTTP[2]}" propose cli 21 --voters y1,y2,n3 --rule majority --wait \
    >"$T/cli.out" 2>&1 || fail "mabeam propose --wait: $(cat "$T/cli.out")"
grep -q "accepted" "$T/cli.out" || fail "propose output: $(cat "$T/cli.out")"
if "$MABEAM" --addr "${HTTP[3]}" propose cli 22 --voters y1,n1,n2 --wait >"$T/cli.out" 2>&1; then
    fail "rejected proposal exited 0: $(cat "$T/cli.out")"
fi
grep -q "rejected" "$T/cli.out" || fail "propose output: $(cat "$T/cli.out")"
"$MABEAM" --addr "${HTTP[1]}" propose cli 23 --voters s1,s2 --deadline 30s >"$T/cli.out" ||
    fail "propose: $(cat "$T/cli.out")"
PC=$(awk '{print $2}' "$T/cli.out")
"$MABEAM" --addr "${HTTP[1]}" proposal list >"$T/cli.out" || fail "proposal list"
grep -q "^$PC " "$T/cli.out" || fail "proposal list lacks $PC: $(cat "$T/cli.out")"
"$MABEAM" --addr "${HTTP[1]}" --json proposal show "$PC" >"$T/cli.out" || fail "proposal show"
grep -q '"outcome":[[:space:]]*"open"' "$T/cli.out" || fail "show: $(cat "$T/cli.out")"
"$MABEAM" --addr "${HTTP[1]}" proposal watch "$PC" --timeout-ms 20000 >"$T/cli.out" ||
    fail "proposal watch: $(cat "$T/cli.out")"
if "$MABEAM" --addr "${HTTP[1]}" var set cli 5 >"$T/cli.out" 2>&1; then
    fail "var set of a consensus variable succeeded"
fi
grep -q "mabeam propose" "$T/cli.out" || fail "var set error: $(cat "$T/cli.out")"
pass "CLI: propose --wait, proposal list/show/watch, set refused"

# A port agent (an external Python process) votes through the protocol's
# vote request.
if command -v python3 >/dev/null; then
    http POST "http://${HTTP[2]}/v1/agents" "{\"kind\":\"port\",\"name\":\"py1\",\"placement\":\"node:2\",
      \"config\":{\"cmd\":[\"$(command -v python3)\",\"-B\",\"$(cd "$(dirname "$0")" && pwd)/port_voter.py\"]}}"
    [ "$HTTP_CODE" = 201 ] || fail "spawn port voter: $HTTP_CODE $(cat "$T/body")"
    define_consensus 1 port
    propose 3 '{"variable":"port","value":30,"rule":"unanimous","voters":["py1","y3"]}'
    wait_until 20 outcome_is 3 "$PROP" accepted || fail "port voter yes: $(outcome_of 3 "$PROP")"
    propose 1 '{"variable":"port","value":60,"rule":"majority","voters":["py1"]}'
    wait_until 20 outcome_is 1 "$PROP" rejected || fail "port voter no: $(outcome_of 1 "$PROP")"
    pass "a port agent votes through the protocol"
fi
