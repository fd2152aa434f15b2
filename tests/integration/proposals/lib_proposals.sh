# Helpers for the proposal tests: voter agents in namespace "cluster" and
# waiting for a proposal's outcome. Builds on ../cluster/lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"

# spawn_voter I NAME CONFIG-JSON: a voter cluster agent placed on node I
# (voters are cluster agents: placement registers it as NAME in namespace
# "cluster" on its node).
spawn_voter() {
    http POST "http://${HTTP[$1]}/v1/agents" \
        "{\"kind\":\"voter\",\"name\":\"$2\",\"placement\":\"node:$1\",\"config\":$3}"
    [ "$HTTP_CODE" = 201 ] || fail "spawn voter $2 on node $1: $HTTP_CODE $(cat "$T/body")"
}

# agent_id_of FILE: the runtime id in a spawn answer.
agent_id_of() { jget "$1" 'j["id"]'; }

# propose I BODY: POST /v1/proposals on node I; sets PID_ (proposal id).
propose() {
    http POST "http://${HTTP[$1]}/v1/proposals" "$2"
    [ "$HTTP_CODE" = 201 ] || fail "propose on node $1: $HTTP_CODE $(cat "$T/body")"
    PROP=$(jget "$T/body" 'j["id"]')
}

# outcome_of I ID: the outcome of proposal ID as node I knows it.
outcome_of() {
    curl -fsS -m 3 "http://${HTTP[$1]}/v1/proposals/$2" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["outcome"])' 2>/dev/null || echo none
}

outcome_is() { [ "$(outcome_of "$1" "$2")" = "$3" ]; }

# define_consensus I NAME: an int variable in [0, 100] with policy consensus.
define_consensus() {
    http POST "http://${HTTP[$1]}/v1/vars" \
        "{\"name\":\"$2\",\"type\":\"int\",\"min\":0,\"max\":100,\"policy\":\"consensus\"}"
    [ "$HTTP_CODE" = 201 ] || fail "define $2: $HTTP_CODE $(cat "$T/body")"
}

# value_on I NAME: stale local value of NAME on node I.
value_on() {
    curl -fsS -m 3 "http://${HTTP[$1]}/v1/vars/$2?consistency=stale" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])' 2>/dev/null || echo none
}
value_is() { [ "$(value_on "$1" "$2")" = "$3" ]; }
