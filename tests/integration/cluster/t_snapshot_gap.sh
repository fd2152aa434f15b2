#!/usr/bin/env bash
# A node that catches up through a snapshot install has a gap in its
# replicated event log (the entries the snapshot covers were never applied
# there one by one). The gap is marked, not hidden: a state.restore event
# names it, and history/watch of a variable report it as "gaps".
. "$(dirname "$0")/lib.sh"

CLUSTER_FLAGS+=(--snapshot_threshold=8 --snapshot_trailing=4)
start_cluster 3
http POST "http://${HTTP[1]}/v1/vars" '{"name":"x","type":"int","min":0,"max":1000,"value":0}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"
wait_until 20 version_is "${HTTP[3]}" x "$(jget "$T/body" 'j["version"]')" || fail "node 3 lags"
L=$(leader_of "${HTTP[1]}")
K=3
[ "$L" = 3 ] && K=2
kill_node "$K"
A=${HTTP[$L]}
for v in $(seq 1 60); do
    http PUT "http://$A/v1/vars/x" "{\"value\":$v}"
    [ "$HTTP_CODE" = 200 ] || fail "set $v: $HTTP_CODE $(cat "$T/body")"
done
last=$(jget "$T/body" 'j["version"]')
launch "$K"
wait_until 30 version_is "${HTTP[$K]}" x "$last" || fail "node $K did not catch up"

curl -fsS "http://${HTTP[$K]}/v1/events?log=cluster&type=state.restore&limit=100" >"$T/restore.json"
[ "$(jget "$T/restore.json" 'len(j["events"])')" -ge 1 ] ||
    fail "no state.restore marker on node $K: $(cat "$T/restore.json")"
from=$(jget "$T/restore.json" 'j["events"][-1]["payload"]["from_index"]')
to=$(jget "$T/restore.json" 'j["events"][-1]["payload"]["applied_index"]')
[ "$from" -ge 2 ] && [ "$to" -gt "$from" ] || fail "marker range $from..$to"
pass "snapshot install marked in the event log ($from..$to)"

# History on the node with the gap says so; the leader has every version.
curl -fsS "http://${HTTP[$K]}/v1/vars/x/history?limit=1000" >"$T/h.json"
[ "$(jget "$T/h.json" 'len(j.get("gaps", []))')" -ge 1 ] || fail "history hides the gap: $(cat "$T/h.json")"
n_k=$(jget "$T/h.json" 'len(j["events"])')
curl -fsS "http://$A/v1/vars/x/history?limit=1000" >"$T/hl.json"
[ "$(jget "$T/hl.json" 'len(j.get("gaps", []))')" = 0 ] || fail "leader reports a gap"
[ "$(jget "$T/hl.json" 'len(j["events"])')" = 61 ] || fail "leader history: $(cat "$T/hl.json")"
[ "$n_k" -lt 61 ] || fail "node $K history has every version although it installed a snapshot"
pass "history reports the gap ($n_k of 61 versions on node $K)"

# A watch from before the gap answers at once with the gap, past it.
curl -fsS -m 10 "http://${HTTP[$K]}/v1/vars/x/watch?from_version=1&timeout_ms=5000" >"$T/w.json"
[ "$(jget "$T/w.json" 'len(j.get("gaps", []))')" -ge 1 ] || fail "watch hides the gap: $(cat "$T/w.json")"
[ "$(jget "$T/w.json" 'j["last_version"]')" -ge "$to" ] || fail "watch did not move past the gap"
pass "watch reports the gap"

# The leader closed log segments at its snapshots (and at start-up, libraft
# probes AIO with a context of its own). Every context went to the helper
# thread, none stayed on the loop thread: libraft.so called mabeamd's
# syscall() (consensus/aio_reap.c, docs/consensus.md §4).
curl -fsS "http://$A/v1/cluster" | python3 -c '
import json, sys
j = json.load(sys.stdin)
n = [x for x in j["nodes"] if x["id"] == int(sys.argv[1])][0]
print(n["aio_destroys_deferred"], n["aio_destroys_synchronous"])' "$L" >"$T/aio"
read -r deferred sync <"$T/aio"
[ "$deferred" -ge 2 ] && [ "$sync" = 0 ] ||
    fail "leader: $deferred io_destroy calls deferred, $sync on the loop thread"
pass "libraft's io_destroy calls left the loop thread ($deferred deferred)"
