#!/usr/bin/env bash
# A node that joins later receives the full state and becomes a standby
# (max_voters 3); a voter leaves gracefully (mabeam node leave) and the
# standby is promoted; SIGTERM on the leader hands leadership over first
# and the rest keep accepting writes.
. "$(dirname "$0")/lib.sh"

start_cluster 3
# The mesh's counters in /v1/status: the nodes have exchanged heartbeats.
http GET "http://${HTTP[1]}/v1/status"
[ "$(jget "$T/body" 'int(j["mesh"]["tx_msgs"] > 0 and j["mesh"]["rx_bytes"] > 0 and j["mesh"]["hb_calls"] + j["mesh"]["hb_skipped"] > 0)')" = 1 ] ||
    fail "mesh counters in /v1/status: $(cat "$T/body")"
for k in 1 2 3 4 5; do
    http POST "http://${HTTP[1]}/v1/vars" "{\"name\":\"v$k\",\"type\":\"int\",\"min\":0,\"max\":100,\"value\":$k}"
    [ "$HTTP_CODE" = 201 ] || fail "define v$k: $HTTP_CODE"
done
last=$(jget "$T/body" 'j["version"]')
launch 4
"$MABEAM" --addr "${HTTP[4]}" node join --timeout-ms 30000 >/dev/null || fail "node 4 did not join"
wait_until 30 version_is "${HTTP[4]}" v5 "$last" || fail "node 4 lacks the state"
http GET "http://${HTTP[4]}/v1/vars?consistency=stale"
[ "$(jget "$T/body" 'len(j["vars"])')" = 5 ] || fail "node 4 vars: $(cat "$T/body")"
wait_until 30 members_ok "${HTTP[1]}" 4 || fail "4 members"
"$MABEAM" --addr "${HTTP[1]}" --json cluster status >"$T/st.json" || fail "cluster status"
[ "$(jget "$T/st.json" '[n["role"] for n in j["nodes"] if n["id"] == 4][0]')" = standby ] ||
    fail "node 4 should be a standby: $(cat "$T/st.json")"
"$MABEAM" --addr "${HTTP[1]}" cluster status | grep -q "^4 .*standby" || fail "table"
pass "late joiner got the full state as a standby"

# Graceful leave of a follower voter.
F=2
[ "$(leader_of "${HTTP[1]}")" = 2 ] && F=3
"$MABEAM" --addr "${HTTP[$F]}" node leave >/dev/null || fail "leave"
wait_until 20 bash -c "! kill -0 ${PID[$F]} 2>/dev/null" || fail "left node did not stop"
rc=0
wait "${PID[$F]}" || rc=$?
[ "$rc" = 0 ] || fail "left node exited $rc"
wait_until 30 members_ok "${HTTP[1]}" 3 || fail "3 members after leave"
curl -fsS "http://${HTTP[1]}/v1/cluster" >"$T/st.json"
[ "$(jget "$T/st.json" 'sorted(n["id"] for n in j["nodes"])' | tr -d ' ')" != "" ] || fail "st"
jget "$T/st.json" "$F in [n['id'] for n in j['nodes']]" | grep -q False || fail "node $F still listed"
pass "graceful leave"

# SIGTERM on the leader: transfers leadership, exits 0, writes go on.
L=$(leader_of "${HTTP[4]}")
stop_node "${PID[$L]}"
O=4
for i in 1 2 3; do
    [ "$i" = "$L" ] || [ "$i" = "$F" ] || O=$i
done
http PUT "http://${HTTP[$O]}/v1/vars/v1" '{"value":42}'
[ "$HTTP_CODE" = 200 ] || fail "write after leader stop: $HTTP_CODE $(cat "$T/body")"
grep -q "transferring leadership" "$T/n$L.log" || fail "leader did not transfer"
pass "leader stopped with a handover; writes continue"
