#!/usr/bin/env bash
# config set + watch: a watcher sees every change exactly once, in order,
# none skipped, both through the CLI (long-poll loop) and the raw API.
. "$(dirname "$0")/lib.sh"

start_node n1
A="http://$NODE_ADDR"
http GET "$A/v1/config"
v0=$(jget "$T/body" 'j["version"]')

N=12
"$MABEAM" --addr "$NODE_ADDR" --json config watch --from-version "$v0" --count "$N" \
    --timeout-ms 2000 >"$T/watch.out" 2>"$T/watch.err" &
watch_pid=$!
PIDS+=("$watch_pid")

# Rapid changes, alternating keys; some arrive while no poll is parked.
levels=(debug info warn error trace debug)
for i in $(seq 1 "$N"); do
    if [ $((i % 3)) = 0 ]; then
        "$MABEAM" --addr "$NODE_ADDR" config set alert_interval "$((i))s" >/dev/null
    else
        "$MABEAM" --addr "$NODE_ADDR" config set log_level "${levels[$((i % 6))]}" >/dev/null ||
            true
    fi
done
# Setting the current value again is not a change.
cur=$("$MABEAM" --addr "$NODE_ADDR" config get log_level)
"$MABEAM" --addr "$NODE_ADDR" config set log_level "$cur" >"$T/same.out" || fail "re-set"
grep -q unchanged "$T/same.out" || fail "re-setting the same value should be unchanged"

http GET "$A/v1/config"
vend=$(jget "$T/body" 'j["version"]')
changes=$((vend - v0))
[ "$changes" -ge 1 ] || fail "no changes recorded"
if [ "$changes" -lt "$N" ]; then
    # Some sets repeated the current value; top up with distinct ones.
    for i in $(seq 1 $((N - changes))); do
        "$MABEAM" --addr "$NODE_ADDR" config set alert_interval "$((100 + i))s" >/dev/null
    done
fi
wait_until 20 bash -c "! kill -0 $watch_pid 2>/dev/null" || fail "watcher did not finish"
wait "$watch_pid" || fail "watcher failed: $(cat "$T/watch.err")"
python3 - "$T/watch.out" "$v0" "$N" <<'PY' || fail "watch output wrong: $(cat "$T/watch.out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
v0, n = int(sys.argv[2]), int(sys.argv[3])
vs = [c["version"] for c in lines]
assert vs == list(range(v0 + 1, v0 + n + 1)), vs
assert all(c["key"] in ("log_level", "alert_interval") for c in lines)
PY
pass "CLI watcher saw $N changes once, in order"

# Raw long-poll: parked until a change, then answered with it.
http GET "$A/v1/config"
v=$(jget "$T/body" 'j["version"]')
curl -sS -m 20 -o "$T/poll.json" "$A/v1/config/watch?from_version=$v&timeout_ms=15000" &
poll_pid=$!
PIDS+=("$poll_pid")
parked() { curl -s "$A/v1/status" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["http_parked"] >= 1 else 1)'; }
wait_until 10 parked || fail "poll never parked"
"$MABEAM" --addr "$NODE_ADDR" config set log_format json >/dev/null
wait "$poll_pid" || fail "poll failed"
[ "$(jget "$T/poll.json" 'j["changes"][0]["key"]')" = log_format ] || fail "poll: $(cat "$T/poll.json")"
[ "$(jget "$T/poll.json" 'j["changes"][0]["version"]')" = $((v + 1)) ] || fail "poll version"
# Timeout: empty list, same version.
http GET "$A/v1/config/watch?from_version=$((v + 1))&timeout_ms=200"
[ "$HTTP_CODE" = 200 ] || fail "timed-out poll: $HTTP_CODE"
[ "$(jget "$T/body" 'len(j["changes"])')" = 0 ] || fail "timed-out poll has changes"
# Ahead of the node: refused.
http GET "$A/v1/config/watch?from_version=999999&timeout_ms=10"
expect_error 400 MB_ERANGE
pass "raw long-poll"

# A parked poll is answered (503) when the node stops, and the stop is clean.
curl -sS -m 20 -o "$T/poll2.json" -w '%{http_code}' \
    "$A/v1/config/watch?timeout_ms=60000" >"$T/poll2.code" &
poll_pid=$!
PIDS+=("$poll_pid")
wait_until 10 parked || fail "second poll never parked"
stop_node "$NODE_PID"
wait "$poll_pid" || true
code=$(cat "$T/poll2.code")
[ "$code" = 503 ] || fail "parked poll at shutdown: $code"
pass "shutdown with a parked watch"
