#!/usr/bin/env bash
# A watcher sees every version of a variable, in order, none skipped, while
# writes continue through a leader kill; it resumes from its last version
# after its node changes (reconnect elsewhere), filled in from the event log.
. "$(dirname "$0")/lib.sh"

start_cluster 3
http POST "http://${HTTP[1]}/v1/vars" '{"name":"step","type":"int","min":0,"max":1000000,"value":0}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"
v0=$(jget "$T/body" 'j["version"]')

# Watcher on node 3 (the CLI, JSON lines), counting 30 versions.
"$MABEAM" --addr "${HTTP[3]}" --json var watch step --from-version "$v0" --count 30 \
    --timeout-ms 2000 >"$T/watch.out" 2>"$T/watch.err" &
W=$!
PIDS+=("$W")

write() { # VALUE via node 2 or 3 (retry on 503 while electing)
    local k
    for k in 1 2 3; do
        http PUT "http://${HTTP[$2]}/v1/vars/step" "{\"value\":$1,\"request_id\":\"w$1\"}"
        [ "$HTTP_CODE" = 200 ] && return 0
    done
    fail "write $1: $HTTP_CODE $(cat "$T/body")"
}
for k in $(seq 1 10); do write "$k" 2; done
kill_node 1
for k in $(seq 11 20); do write "$k" 2; done
for k in $(seq 21 30); do write "$k" 3; done
wait_until 30 bash -c "! kill -0 $W 2>/dev/null" || fail "watcher did not see 30 versions: $(cat "$T/watch.out")"
wait "$W" || fail "watcher failed: $(cat "$T/watch.err")"
python3 - "$T/watch.out" <<'PY' || fail "watch output wrong: $(cat "$T/watch.out")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
vals = [e["value"] for e in evs]
vers = [e["version"] for e in evs]
assert vals == list(range(1, 31)), vals
assert vers == sorted(set(vers)), vers
PY
pass "watch saw all 30 versions in order across a leader kill"

# Resume from the 10th version on another node: the rest comes from the
# event log, in order, the same versions.
v10=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][9]["version"])' "$T/watch.out")
"$MABEAM" --addr "${HTTP[2]}" --json var watch step --from-version "$v10" --count 20 \
    --timeout-ms 2000 >"$T/watch2.out" || fail "resumed watch"
python3 - "$T/watch.out" "$T/watch2.out" <<'PY' || fail "resumed watch differs"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])][10:]
b = [json.loads(l) for l in open(sys.argv[2])]
assert [(e["version"], e["value"]) for e in a] == [(e["version"], e["value"]) for e in b]
PY
# A long-poll with nothing new times out empty and reports where it is.
http GET "http://${HTTP[2]}/v1/vars/step/watch?from_version=999999999&timeout_ms=200"
[ "$HTTP_CODE" = 200 ] && [ "$(jget "$T/body" 'len(j["events"])')" = 0 ] || fail "empty watch: $(cat "$T/body")"
pass "watch resumes from its last version on another node"
