#!/usr/bin/env bash
# Leases, barriers and elections of cluster agents on 3 nodes:
# - a lease held by an agent is released (in the same raft entry) when the
#   agent is killed, and another agent can take it at once;
# - a barrier for 3 with a timeout times out reporting how many arrived;
# - an election group re-elects (next member by join order) when its
#   leader is stopped.
# Cluster agents come from placement (`mabeam agent spawn --placement`);
# without it the test is skipped with a message.
. "$(dirname "$0")/../cluster/lib.sh"

start_cluster 3
M1=("$MABEAM" --addr "${HTTP[1]}")

# spawn NAME NODE: a cluster agent of kind echo named NAME on node NODE.
spawn() {
    "${M1[@]}" agent spawn echo --name "$1" --placement "node:$2" >"$T/spawn.out" 2>"$T/spawn.err"
}
if ! spawn ca 2; then
    if grep -qi "placement" "$T/spawn.err"; then
        echo "SKIP: cluster agents (agent spawn --placement) are not in this build" >&2
        exit "$SKIP"
    fi
    fail "spawn ca: $(cat "$T/spawn.err")"
fi
spawn cb 3 || fail "spawn cb: $(cat "$T/spawn.err")"
spawn cc 1 || fail "spawn cc: $(cat "$T/spawn.err")"
placed() { "${M1[@]}" lease acquire probe --holder "$1" --ttl-ms 1 >/dev/null 2>&1; }
for a in ca cb cc; do
    wait_until 20 placed "$a" || fail "agent $a never became a lease holder (not placed?)"
done

# ---- lease: released when its holder is killed
"${M1[@]}" lease acquire db --holder ca --ttl-ms 60000 >"$T/l.out" || fail "acquire: $(cat "$T/l.out")"
expect_busy() { ! "$MABEAM" --addr "${HTTP[2]}" lease acquire db --holder cb >/dev/null 2>&1; }
expect_busy || fail "cb took a lease ca holds"
"$MABEAM" --addr "${HTTP[2]}" agent kill ca --namespace cluster >/dev/null || fail "kill ca on node 2"
released() { ! "$MABEAM" --addr "${HTTP[3]}" lease show db >/dev/null 2>&1; }
wait_until 20 released || fail "lease db still held after its holder was killed"
"$MABEAM" --addr "${HTTP[3]}" lease acquire db --holder cb --ttl-ms 60000 >/dev/null ||
    fail "cb cannot take the released lease"
curl -fsS "http://${HTTP[1]}/v1/events?log=cluster&type=lease.lost&limit=10" >"$T/ev.json"
[ "$(jget "$T/ev.json" 'j["events"][0]["payload"]["agent"]')" = ca ] ||
    fail "no lease.lost event for ca: $(cat "$T/ev.json")"
pass "a lease is released when its holder is killed"

# ---- barrier: times out with the arrived count
"${M1[@]}" barrier arrive sync --participant cb --parties 3 --timeout-ms 1500 >/dev/null ||
    fail "arrive cb"
"$MABEAM" --addr "${HTTP[2]}" barrier arrive sync --participant cc >/dev/null || fail "arrive cc"
rc=0
"$MABEAM" --addr "${HTTP[3]}" barrier arrive sync --participant cb --wait >"$T/b.out" 2>&1 || rc=$?
# cb already arrived: refused; wait on the round instead
grep -q "already arrived" "$T/b.out" || fail "double arrival not refused: $(cat "$T/b.out")"
timed_out() {
    "$MABEAM" --addr "${HTTP[3]}" --json barrier show sync >"$T/b.json" 2>/dev/null &&
        [ "$(jget "$T/b.json" 'j["state"]')" = timed_out ]
}
wait_until 20 timed_out || fail "barrier did not time out: $(cat "$T/b.json")"
[ "$(jget "$T/b.json" 'j["arrived"]')" = 2 ] || fail "arrived count: $(cat "$T/b.json")"
curl -fsS "http://${HTTP[2]}/v1/events?log=cluster&type=barrier.timeout&limit=10" >"$T/ev.json"
[ "$(jget "$T/ev.json" 'j["events"][0]["payload"]["arrived"]')" = 2 ] ||
    fail "barrier.timeout event: $(cat "$T/ev.json")"
pass "a barrier for 3 times out reporting 2 arrived"

# ---- election: re-elected when the leader stops
"${M1[@]}" election join g --member cc >/dev/null || fail "join cc"
"$MABEAM" --addr "${HTTP[2]}" election join g --member cb >/dev/null || fail "join cb"
leader() {
    "$MABEAM" --addr "${HTTP[$1]}" --json election show g >"$T/e.json" 2>/dev/null &&
        [ "$(jget "$T/e.json" 'j["leader"]')" = "$2" ]
}
leader 3 cc || fail "first member does not lead: $(cat "$T/e.json")"
"${M1[@]}" agent stop cc --namespace cluster >/dev/null || fail "stop cc on node 1"
wait_until 20 leader 2 cb || fail "no re-election after the leader stopped: $(cat "$T/e.json")"
[ "$(jget "$T/e.json" 'j["term"]')" = 2 ] || fail "term: $(cat "$T/e.json")"
pass "an election group re-elects when its leader stops"

for i in 1 2 3; do stop_node "${PID[$i]}"; done
pass "clean stops"
