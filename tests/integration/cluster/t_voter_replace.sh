#!/usr/bin/env bash
# Dead voters are replaced (voter_replace_after): 4 nodes, max_voters 3, so
# one node is a standby. A voter is killed; once the failure detector has
# shown it down for voter_replace_after, the leader demotes it to standby
# and promotes node 4. Then a second voter (the leader) is killed: the two
# remaining voters elect a leader and writes continue. Which node ends up
# the standby depends on the order the joins are served in (usually 4, but
# not on a loaded machine): the test finds it instead of assuming it.
. "$(dirname "$0")/lib.sh"

CLUSTER_FLAGS+=(--max_voters=3 --failure_timeout=1s --voter_replace_after=2s)
start_cluster 4
http POST "http://${HTTP[1]}/v1/vars" '{"name":"x","type":"int","min":0,"max":1000,"value":0}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"

# role_of ADDR ID: the role of node ID in the node table as ADDR sees it.
role_of() {
    curl -fsS -m 3 "http://$1/v1/cluster" 2>/dev/null |
        python3 -c 'import json,sys; print([n["role"] for n in json.load(sys.stdin)["nodes"] if n["id"]==int(sys.argv[1])][0])' "$2" 2>/dev/null
}
role_is() { [ "$(role_of "$1" "$2")" = "$3" ]; }
# voters_at ADDR: raft voters in the configuration as ADDR's raft sees it.
voters_at() {
    curl -fsS -m 3 "http://$1/v1/cluster" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(sum(1 for n in j["nodes"] if n.get("role") == "voter"))'
}
voters_are() { [ "$(voters_at "$1")" = "$2" ]; }
# write_ok ADDR VALUE: a set on ADDR answered 200.
write_ok() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 -XPUT "http://$1/v1/vars/x" \
        -d "{\"value\":$2,\"request_id\":\"w$2\"}")" = 200 ]
}

# standby_of ADDR: the id of the one standby as ADDR sees the node table
# once all 4 nodes are in it with 3 voters (nothing otherwise).
standby_of() {
    curl -fsS -m 3 "http://$1/v1/cluster" 2>/dev/null | python3 -c '
import json, sys
n = json.load(sys.stdin)["nodes"]
s = [x["id"] for x in n if x.get("role") == "standby"]
if len(n) == 4 and len(s) == 1:
    print(s[0])'
}
has_standby() { [ -n "$(standby_of "$1")" ]; }

wait_until 30 has_standby "${HTTP[1]}" || fail "one of the 4 nodes should start as a standby: $(curl -s "http://${HTTP[1]}/v1/cluster")"
S=$(standby_of "${HTTP[1]}")
L=$(leader_of "${HTTP[1]}")
V=1
while [ "$V" = "$L" ] || [ "$V" = "$S" ]; do V=$((V + 1)); done
kill_node "$V"
t0=$(date +%s%3N)
wait_until 30 role_is "${HTTP[$L]}" "$S" voter || fail "standby $S was not promoted: $(curl -s "http://${HTTP[$L]}/v1/cluster")"
wait_until 10 role_is "${HTTP[$L]}" "$V" standby || fail "dead voter $V was not demoted"
dt=$(($(date +%s%3N) - t0))
# failure_timeout (1 s) + voter_replace_after (2 s): not before ~3 s.
[ "$dt" -ge 2500 ] || fail "replaced after $dt ms, before voter_replace_after"
grep -q "dead voter demoted to standby" "$T/n$L.log" || fail "no demotion in the leader's log"
wait_until 10 voters_are "${HTTP[$L]}" 3 || fail "voters: $(voters_at "${HTTP[$L]}")"
write_ok "${HTTP[$S]}" 1 || fail "write through the promoted node"
pass "dead voter $V demoted, standby $S promoted after $dt ms"

# Second voter kill: the leader. Voters left: node S and one more (O).
kill_node "$L"
O=0
for i in 1 2 3 4; do
    [ "$i" = "$L" ] || [ "$i" = "$V" ] || [ "$i" = "$S" ] || O=$i
done
wait_until 20 write_ok "${HTTP[$O]}" 2 || fail "no write after the second voter kill"
wait_until 10 version_is "${HTTP[$S]}" x "$(var_version "${HTTP[$O]}" x)" || fail "node $S lags"
pass "writes continue after a second voter kill"
