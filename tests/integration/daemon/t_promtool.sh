#!/usr/bin/env bash
# The real /metrics output passes `promtool check metrics` and carries the
# process and HTTP metrics, and the event log's append time once a write
# was applied.
. "$(dirname "$0")/lib.sh"

if ! command -v promtool >/dev/null; then
    echo "SKIP: promtool not installed (Debian package prometheus)"
    exit $SKIP
fi
start_node n1
A="http://$NODE_ADDR"
defined() {
    http POST "$A/v1/vars" '{"name":"m","type":"int","min":0,"max":9,"value":0}'
    [ "$HTTP_CODE" = 201 ] || [ "$HTTP_CODE" = 200 ]
}
wait_until 20 defined || fail "define: $HTTP_CODE $(cat "$T/body")"
http PUT "$A/v1/vars/m" '{"value":3}'
[ "$HTTP_CODE" = 200 ] || fail "set: $HTTP_CODE $(cat "$T/body")"
appended() {
    http GET "$A/metrics"
    awk '$1 == "mb_event_log_append_seconds_count" && $2 >= 1 { ok = 1 } END { exit !ok }' "$T/body"
}
wait_until 10 appended || fail "no event log append in /metrics"
http GET "$A/v1/status"
http GET "$A/v1/nothing"
http GET "$A/metrics"
[ "$HTTP_CODE" = 200 ] || fail "metrics: $HTTP_CODE"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers" || fail "content type"
for m in process_resident_memory_bytes process_cpu_seconds process_open_fds \
    process_start_time_seconds mb_node_uptime_seconds 'mb_http_requests_total{route="status",code="2xx"}' \
    'mb_http_requests_total{route="unmatched",code="4xx"}' 'mb_http_request_seconds_bucket{route="status"' \
    'mb_event_log_append_seconds_bucket{le='; do
    grep -qF "$m" "$T/body" || fail "missing $m"
done
promtool check metrics <"$T/body" >"$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"
stop_node "$NODE_PID"
pass "promtool check metrics"
