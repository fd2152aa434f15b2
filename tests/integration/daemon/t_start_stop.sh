#!/usr/bin/env bash
# mabeamd starts with defaults, answers health, stops cleanly on SIGTERM
# (exit 0; under ASan also no leaks), releases its lock and records
# node.started / node.stopped events that survive a restart.
. "$(dirname "$0")/lib.sh"

start_node n1
http GET "http://$NODE_ADDR/v1/health"
[ "$HTTP_CODE" = 200 ] || fail "health: $HTTP_CODE"
[ "$(jget "$T/body" 'j["status"]')" = ok ] || fail "health body $(cat "$T/body")"
[ -f "$T/n1/http.addr" ] || fail "no http.addr file"
[ "$(cat "$T/n1/http.addr")" = "$NODE_ADDR" ] || fail "http.addr says $(cat "$T/n1/http.addr")"
http GET "http://$NODE_ADDR/v1/status"
[ "$HTTP_CODE" = 200 ] || fail "status: $HTTP_CODE"
[ "$(jget "$T/body" 'j["pid"]')" = "$NODE_PID" ] || fail "status pid"
[ "$(jget "$T/body" 'j["data_dir"]')" = "$T/n1" ] || fail "status data_dir"
jget "$T/body" 'j["rss_bytes"] > 0 and j["uptime_s"] >= 0 and j["config_version"] >= 1' |
    grep -q True || fail "status figures $(cat "$T/body")"
stop_node "$NODE_PID"
grep -q "mabeamd stopped" "$T/n1.log" || fail "no stop line in the log"
[ ! -e "$T/n1/http.addr" ] || fail "http.addr left behind"
pass "first run started and stopped cleanly"

# Same directory again: the lock was released, and the first run's events
# are in the local log.
start_node n1
http GET "http://$NODE_ADDR/v1/events?type=node.stopped"
[ "$HTTP_CODE" = 200 ] || fail "events: $HTTP_CODE"
[ "$(jget "$T/body" 'len(j["events"])')" = 1 ] || fail "node.stopped events: $(cat "$T/body")"
http GET "http://$NODE_ADDR/v1/events?type=node.started"
[ "$(jget "$T/body" 'len(j["events"])')" = 2 ] || fail "node.started events: $(cat "$T/body")"
stop_node "$NODE_PID"
pass "restart on the same data directory"
