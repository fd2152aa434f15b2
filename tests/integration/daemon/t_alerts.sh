#!/usr/bin/env bash
# Alert rules over the node's own metrics: an alert is raised (visible in
# /v1/alerts, /v1/status and as an alert.raised event) and cleared when its
# rule is removed at runtime (alert.cleared event).
. "$(dirname "$0")/lib.sh"

start_node n1 --alert_interval=100ms '--alert_rules=node_up: mb_node_uptime_seconds > 0'
A="http://$NODE_ADDR"
raised() {
    http GET "$A/v1/alerts" && [ "$(jget "$T/body" 'len(j["alerts"])')" = 1 ]
}
wait_until 10 raised || fail "alert not raised: $(cat "$T/body")"
[ "$(jget "$T/body" 'j["alerts"][0]["rule"]')" = node_up ] || fail "rule name"
http GET "$A/v1/status"
[ "$(jget "$T/body" 'len(j["alerts"])')" = 1 ] || fail "status alerts: $(cat "$T/body")"
http GET "$A/v1/events?type=alert.raised"
[ "$(jget "$T/body" 'j["events"][0]["subject"]')" = node_up ] || fail "alert.raised event"

"$MABEAM" --addr "$NODE_ADDR" config set alert_rules "" >/dev/null || fail "clear rules"
http GET "$A/v1/alerts"
[ "$(jget "$T/body" 'len(j["alerts"])')" = 0 ] || fail "alert still active: $(cat "$T/body")"
http GET "$A/v1/events?type=alert.cleared"
[ "$(jget "$T/body" 'len(j["events"])')" = 1 ] || fail "alert.cleared event: $(cat "$T/body")"
grep -q "alert raised" "$T/n1.log" || fail "no log line for the alert"
stop_node "$NODE_PID"
pass "alerts raised and cleared"
