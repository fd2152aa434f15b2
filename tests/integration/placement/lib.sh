# Helpers for the placement integration tests: a 3-node cluster (see
# ../cluster/lib.sh) with a short failure timeout, counter agents placed
# on it, and readers of the replicated agents table. Every wait has a
# deadline.
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"

# No study evaluator agents: these tests count the cluster agents they place.
CLUSTER_FLAGS+=(--heartbeat_interval=100ms --failure_timeout=1500ms --study_evaluators=0)

# spawn NODE NAME PLACEMENT: a counter cluster agent through node NODE's API.
spawn() {
    http POST "http://${HTTP[$1]}/v1/agents" \
        "{\"kind\":\"counter\",\"name\":\"$2\",\"placement\":\"$3\"}"
    [ "$HTTP_CODE" = 201 ] || fail "spawn $2 ($3): $HTTP_CODE $(cat "$T/body")"
}

# table NODE PYEXPR: evaluate PYEXPR over `a` = {id: agent} of NODE's table.
table() {
    curl -fsS -m 3 "http://${HTTP[$1]}/v1/cluster/agents?limit=10000" | python3 -c '
import json, sys
a = {x["id"]: x for x in json.load(sys.stdin)["agents"]}
r = eval(sys.argv[1])
if r is False: sys.exit(1)
if r is not True: print(r)' "$2"
}

# agent_node NAME: the node NAME is placed on (as node 1 sees it, or any).
agent_node() {
    local i
    for i in 1 2 3; do
        curl -fsS -m 3 "http://${HTTP[$i]}/v1/cluster/agents/$1" 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["node"])' && return 0
    done
    return 1
}

# add NAME DELTA: send counter ADD to NAME on the node that runs it.
add() {
    local n d64
    n=$(agent_node "$1") || fail "no node for $1"
    d64=$(python3 -c 'import base64,struct,sys; print(base64.b64encode(struct.pack("<q", int(sys.argv[1]))).decode())' "$2")
    http POST "http://${HTTP[$n]}/v1/agents/$1/messages?namespace=cluster" "{\"tag\":1,\"data_b64\":\"$d64\"}"
    [ "$HTTP_CODE" = 202 ] || fail "add to $1 on node $n: $HTTP_CODE $(cat "$T/body")"
}

# ckpt_value NODE NAME: the counter value in NAME's replicated checkpoint.
ckpt_value() {
    curl -fsS -m 3 "http://${HTTP[$1]}/v1/cluster/agents/$2/checkpoint" 2>/dev/null | python3 -c '
import base64, json, struct, sys
print(struct.unpack("<q", base64.b64decode(json.load(sys.stdin)["data_b64"]))[0])'
}

ckpt_is() { [ "$(ckpt_value "$1" "$2")" = "$3" ]; }

# local_cluster_agents NODE: how many cluster agents run in NODE's runtime.
local_cluster_agents() {
    curl -fsS -m 3 "http://${HTTP[$1]}/v1/agents?namespace=cluster" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

local_is() { [ "$(local_cluster_agents "$1")" = "$2" ]; }
