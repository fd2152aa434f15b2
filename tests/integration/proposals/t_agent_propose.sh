#!/usr/bin/env bash
# An agent's own mb_propose on a 3-node cluster: the proposal opens, the
# voters (cluster agents on every node) vote, the decision sets the
# variable everywhere, and the proposing agent hears OPENED then DECIDED
# (mabeam/proposal.h); a refused open (a variable with the direct policy,
# an unknown variable) reaches the agent as REFUSED with the error. Then
# the same through the port protocol, from a Python agent.
. "$(dirname "$0")/lib_proposals.sh"
: "${KIND_WATCH:?KIND_WATCH must point at the itwatch kind library}"

start_cluster 3
for i in 1 2 3; do
    spawn_voter "$i" "y$i" '{"min":0,"max":50}'
    http POST "http://${HTTP[$i]}/v1/kinds" "{\"path\":\"$KIND_WATCH\"}"
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 201 ] || fail "kind load on $i: $HTTP_CODE $(cat "$T/body")"
done
define_consensus 1 k
http POST "http://${HTTP[1]}/v1/vars" '{"name":"d","type":"int","min":0,"max":100,"value":0}'
[ "$HTTP_CODE" = 201 ] || fail "define d: $HTTP_CODE $(cat "$T/body")"
for i in 1 2 3; do
    wait_until 30 test "$(curl -fsS -m 3 "http://${HTTP[1]}/v1/cluster/agents/y$i" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)" = running ||
        fail "voter y$i not running"
done

# The proposer: an itwatch agent (not a voter) on node 2, watching k.
http POST "http://${HTTP[2]}/v1/agents" '{"kind":"itwatch","config":"k","name":"prop"}'
[ "$HTTP_CODE" = 201 ] || [ "$HTTP_CODE" = 200 ] || fail "spawn proposer: $HTTP_CODE $(cat "$T/body")"
PA=$(jget "$T/body" 'j["id"]')
# Both proposers (this one, and the port agent below) keep their log as
# their checkpoint. ON_NODE and AGENT say which one the helpers talk to.
ON_NODE=2 AGENT=$PA
tell() {
    http POST "http://${HTTP[$ON_NODE]}/v1/agents/$AGENT/messages" "{\"tag\":$1,\"data\":\"$2\"}"
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 202 ] || fail "message to the proposer: $HTTP_CODE $(cat "$T/body")"
}
# For a failure: the proposal as each node has it (votes, or the outcome),
# k on each node and where the voters run.
state_of() {
    local i
    for i in 1 2 3; do
        echo "node $i: proposal $(curl -sS -m 3 "http://${HTTP[$i]}/v1/proposals/$1" 2>&1)"
        echo "node $i: k=$(value_on "$i" k)"
        echo "voter y$i: $(curl -sS -m 3 "http://${HTTP[1]}/v1/cluster/agents/y$i" 2>&1)"
    done
}
log_of() {
    curl -fsS -m 3 "http://${HTTP[$ON_NODE]}/v1/agents/$AGENT/checkpoint" 2>/dev/null |
        python3 -c 'import base64,json,sys; sys.stdout.write(base64.b64decode(json.load(sys.stdin)["data_b64"]).decode())'
}
has() { log_of | grep -q -- "$1"; }

tell 104 "k 21"
wait_until 10 has '^p 0 ' || fail "mb_propose: $(log_of)"
NUM=$(log_of | grep '^p 0 ' | head -n 1 | cut -d' ' -f3)
wait_until 10 has "^P 4d500001 .*\"id\":\"$NUM\"" || fail "no OPENED notice: $(log_of)"
wait_until 20 has "^P 4d500003 .*\"outcome\":\"accepted\"" ||
    fail "no DECIDED notice: $(log_of)$(echo; state_of "$NUM")"
log_of | grep "^P 4d500003" | grep -q "\"id\":\"$NUM\"" || fail "DECIDED of another proposal: $(log_of)"
for i in 1 2 3; do
    wait_until 10 value_is "$i" k 21 || fail "node $i has k=$(value_on "$i" k), want 21"
done
wait_until 10 has '^c [0-9]* 21$' || fail "the proposer's watch did not see 21: $(log_of)"
echo "proposer's log:"; log_of | sed 's/^/    /'
pass "an agent's mb_propose opens, the voters decide, the value is set everywhere, the agent hears the outcome"

# Refused opens reach the agent with the error: a direct-policy variable
# and an unknown one.
tell 104 "d 5"
wait_until 10 has '^P 4d500002 .*"variable":"d"' || fail "no REFUSED notice for d: $(log_of)"
log_of | grep '^P 4d500002 .*"variable":"d"' | grep -q '"code":"MB_' || fail "REFUSED without a code: $(log_of)"
tell 104 "nosuch 5"
wait_until 10 has '^P 4d500002 .*"variable":"nosuch".*"code":"MB_ENOTFOUND"' ||
    fail "no REFUSED notice for an unknown variable: $(log_of)"
value_is 1 d 0 || fail "d changed"
log_of | grep '^P 4d500002' | sed 's/^/    /'
pass "a refused open reaches the proposing agent as REFUSED, with the error code and message"

# A port agent proposes through the protocol (docs/port-protocol.md): the
# node answers with the proposal's number, the notices follow as messages,
# the decision sets the int variable (the protocol's number made an int by
# the variable's type); a bad name is refused in the answer itself.
PY=$(command -v python3) || fail "python3 is needed for the port proposer"
http POST "http://${HTTP[3]}/v1/agents" "{\"kind\":\"port\",\"name\":\"pyprop\",
  \"config\":{\"cmd\":[\"$PY\",\"-B\",\"$(cd "$(dirname "$0")" && pwd)/port_proposer.py\"]}}"
[ "$HTTP_CODE" = 201 ] || [ "$HTTP_CODE" = 200 ] || fail "spawn port proposer: $HTTP_CODE $(cat "$T/body")"
ON_NODE=3 AGENT=$(jget "$T/body" 'j["id"]')
tell 7 "k 33"
wait_until 10 has '^proposed 1 ' || fail "no answer to the port agent's propose: $(log_of)"
PNUM=$(log_of | grep '^proposed 1 ' | head -n 1 | cut -d' ' -f3)
wait_until 10 has "^notice 4d500001 .*\"id\":\"$PNUM\"" || fail "no OPENED notice for the port agent: $(log_of)"
wait_until 20 has "^notice 4d500003 .*\"id\":\"$PNUM\".*\"outcome\":\"accepted\"" ||
    fail "no DECIDED notice for the port agent: $(log_of)$(echo; state_of "$PNUM")"
for i in 1 2 3; do
    wait_until 10 value_is "$i" k 33 || fail "node $i has k=$(value_on "$i" k), want 33"
done
tell 7 "bad/name! 1"
wait_until 10 has '^refused 2 MB_EINVAL$' || fail "a bad name was not refused in the answer: $(log_of)"
echo "port proposer's log:"; log_of | sed 's/^/    /'
pass "a port agent proposes through the protocol: the answer, the notices and the decided value"
