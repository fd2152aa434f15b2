#!/usr/bin/env bash
# Cluster-wide messages by name (mb_send_name, namespace "cluster"): an
# agent on node 1 sends to the cluster agent "tgt" placed on node 3 by its
# name; the messages arrive in order; node 3 is killed with kill -9 (the
# default failure detection); tgt moves, and the same name now reaches the
# new copy on its new node.
. "$(dirname "$0")/lib.sh"
: "${KIND_WATCH:?KIND_WATCH must point at the itwatch kind library}"
CLUSTER_FLAGS=() # the default failure detection

start_cluster 3
http POST "http://${HTTP[1]}/v1/vars" '{"name":"k","type":"int","min":0,"max":100,"value":0}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"
for i in 1 2 3; do
    http POST "http://${HTTP[$i]}/v1/kinds" "{\"path\":\"$KIND_WATCH\"}"
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 201 ] || fail "kind load on $i: $HTTP_CODE $(cat "$T/body")"
done
L=$(leader_of "${HTTP[1]}")
[ "$L" != 3 ] || fail "node 3 leads; this test kills a follower" # node 1 bootstraps and leads

http POST "http://${HTTP[1]}/v1/agents" '{"kind":"itwatch","name":"tgt","placement":"node:3","config":{"var":"k"}}'
[ "$HTTP_CODE" = 201 ] || fail "place tgt: $HTTP_CODE $(cat "$T/body")"
wait_until 30 table 1 'a["tgt"]["status"] == "running" and a["tgt"]["node"] == 3' || fail "tgt not running on 3"
http POST "http://${HTTP[1]}/v1/agents" '{"kind":"itwatch","name":"snd","config":"k"}'
[ "$HTTP_CODE" = 201 ] || [ "$HTTP_CODE" = 200 ] || fail "spawn snd: $HTTP_CODE $(cat "$T/body")"
SND=$(jget "$T/body" 'j["id"]')

tell() {
    http POST "http://${HTTP[1]}/v1/agents/$SND/messages" "{\"tag\":105,\"data\":\"$1\"}"
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 202 ] || fail "message to snd: $HTTP_CODE $(cat "$T/body")"
}
# tgt_log: tgt's text log (its checkpoint) from the node that runs it.
tgt_log() {
    local n
    n=$(agent_node tgt) || return 1
    curl -fsS -m 3 "http://${HTTP[$n]}/v1/agents/tgt/checkpoint?namespace=cluster" 2>/dev/null |
        python3 -c 'import base64,json,sys; sys.stdout.write(base64.b64decode(json.load(sys.stdin)["data_b64"]).decode())'
}
got() { [ "$(tgt_log | grep -c "^m $SND $1\$")" = 1 ]; }

for i in 1 2 3 4 5; do tell "tgt a$i"; done
wait_until 15 got a5 || fail "a5 did not reach tgt on node 3: $(tgt_log)"
order=$(tgt_log | grep "^m $SND a" | cut -d' ' -f3 | tr '\n' ' ')
[ "$order" = "a1 a2 a3 a4 a5 " ] || fail "order or count by name: '$order'"
pass "messages by name reach the cluster agent on another node, once each, in order"

kill_node 3
wait_until 20 table 1 'a["tgt"]["node"] != 3 and a["tgt"]["status"] == "running"' ||
    fail "tgt did not move: $(table 1 'a["tgt"]')"
for i in 1 2 3; do tell "tgt b$i"; done
wait_until 15 got b3 || fail "b3 did not reach tgt after the move: $(tgt_log)"
order=$(tgt_log | grep "^m $SND b" | cut -d' ' -f3 | tr '\n' ' ')
[ "$order" = "b1 b2 b3 " ] || fail "order or count after the move: '$order'"
pass "after the failover the name resolves to the new node"
