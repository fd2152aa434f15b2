#!/usr/bin/env bash
# A write on a follower is forwarded to the leader; killing the leader
# elects a new one and writes continue (with the same request id, applied
# once); the killed node restarts and catches up; afterwards every node's
# replicated event log is identical (same seq -> same event).
. "$(dirname "$0")/lib.sh"

start_cluster 3
L=$(leader_of "${HTTP[1]}")
[ "$L" = 1 ] || fail "bootstrap node should lead first, leader is $L"
http POST "http://${HTTP[1]}/v1/vars" '{"name":"lr","type":"float","min":0,"max":1,"value":0.1}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"

# Set on a follower: forwarded, and readable (linearizable) everywhere.
http PUT "http://${HTTP[2]}/v1/vars/lr" '{"value":0.25}'
[ "$HTTP_CODE" = 200 ] || fail "set on follower: $HTTP_CODE $(cat "$T/body")"
v=$(jget "$T/body" 'j["version"]')
for i in 1 2 3; do
    http GET "http://${HTTP[$i]}/v1/vars/lr"
    [ "$HTTP_CODE" = 200 ] || fail "get on $i: $HTTP_CODE"
    [ "$(jget "$T/body" 'j["value"], j["version"]')" = "(0.25, $v)" ] ||
        fail "node $i reads $(cat "$T/body"), want 0.25 at $v"
done
pass "write on a follower forwarded; linearizable reads agree"

# Kill the leader; a write on a follower succeeds once a new leader is in.
kill_node 1
t0=$(now_ms)
http PUT "http://${HTTP[2]}/v1/vars/lr" '{"value":0.5,"request_id":"after-kill"}'
t1=$(now_ms)
[ "$HTTP_CODE" = 200 ] || fail "write after leader kill: $HTTP_CODE $(cat "$T/body")"
v2=$(jget "$T/body" 'j["version"]')
echo "write accepted $((t1 - t0)) ms after the leader was killed"
L=$(leader_of "${HTTP[2]}")
[ "$L" = 2 ] || [ "$L" = 3 ] || fail "new leader is $L"
# The same request id again: the same version, not applied twice.
http PUT "http://${HTTP[3]}/v1/vars/lr" '{"value":0.5,"request_id":"after-kill"}'
[ "$HTTP_CODE" = 200 ] || fail "retry: $HTTP_CODE"
[ "$(jget "$T/body" 'j["version"]')" = "$v2" ] || fail "retry applied again: $(cat "$T/body")"
pass "new leader elected, writes continue, retried request applied once"

for k in 1 2 3 4 5; do
    http PUT "http://${HTTP[3]}/v1/vars/lr" "{\"value\":0.$k}"
    [ "$HTTP_CODE" = 200 ] || fail "write $k: $HTTP_CODE"
done
last=$(jget "$T/body" 'j["version"]')
launch 1
wait_until 30 version_is "${HTTP[1]}" lr "$last" || fail "node 1 did not catch up to $last"
wait_until 30 members_ok "${HTTP[2]}" 3 || fail "cluster not whole again"
pass "restarted node caught up"

# Event logs agree on every node.
for i in 1 2 3; do
    wait_until 20 version_is "${HTTP[$i]}" lr "$last" || fail "node $i behind"
done
http PUT "http://${HTTP[1]}/v1/vars/lr" '{"value":0.9}'
[ "$HTTP_CODE" = 200 ] || fail "final write: $HTTP_CODE"
last=$(jget "$T/body" 'j["version"]')
for i in 1 2 3; do
    wait_until 20 version_is "${HTTP[$i]}" lr "$last" || fail "node $i behind at the end"
    cluster_log "${HTTP[$i]}" >"$T/log$i" || fail "event log of node $i"
done
[ "$(grep -c var.set "$T/log2")" -ge 8 ] || fail "too few var.set events: $(cat "$T/log2")"
cmp -s "$T/log2" "$T/log3" || fail "event logs of nodes 2 and 3 differ: $(diff "$T/log2" "$T/log3")"
# Node 1 was down for part of the run; what it has must be identical, and
# it must have the events from after its restart.
join -j1 <(sort "$T/log1") <(sort "$T/log2") >/dev/null
python3 - "$T/log1" "$T/log2" <<'PY' || fail "node 1's event log disagrees with node 2's"
import sys
a = dict(l.split(" ", 1) for l in open(sys.argv[1]))
b = dict(l.split(" ", 1) for l in open(sys.argv[2]))
bad = [s for s in a if s in b and a[s] != b[s]]
sys.exit(1 if bad or not a else 0)
PY
for i in 1 2 3; do stop_node "${PID[$i]}"; done
pass "event logs agree (same seq, same event); clean stops"
