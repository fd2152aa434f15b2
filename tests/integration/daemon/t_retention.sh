#!/usr/bin/env bash
# event_retention prunes old node-local events; it is reloadable.
. "$(dirname "$0")/lib.sh"

start_node n1
A="http://$NODE_ADDR"
"$MABEAM" --addr "$NODE_ADDR" config set log_format json >/dev/null
http GET "$A/v1/events"
# node.started and config.changed (agent.* events of the root supervisor aside).
[ "$(jget "$T/body" 'len([e for e in j["events"] if not e["type"].startswith("agent.")])')" = 2 ] ||
    fail "events before: $(cat "$T/body")"
"$MABEAM" --addr "$NODE_ADDR" config set event_retention 1s >/dev/null || fail "set retention"
# Everything older than 1 s goes: only events younger than that may remain.
old_gone() {
    http GET "$A/v1/events?type=node.started" && [ "$(jget "$T/body" 'len(j["events"])')" = 0 ]
}
wait_until 10 old_gone || fail "node.started not pruned: $(cat "$T/body")"
curl -fsS -o "$T/metrics" "$A/metrics" || fail "metrics"
grep -q '^mb_node_events_pruned_total [1-9]' "$T/metrics" || fail "pruned counter"
stop_node "$NODE_PID"
pass "retention"
