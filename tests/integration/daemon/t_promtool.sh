#!/usr/bin/env bash
# The real /metrics output passes `promtool check metrics` and carries the
# process and HTTP metrics.
. "$(dirname "$0")/lib.sh"

if ! command -v promtool >/dev/null; then
    echo "SKIP: promtool not installed (Debian package prometheus)"
    exit $SKIP
fi
start_node n1
A="http://$NODE_ADDR"
http GET "$A/v1/status"
http GET "$A/v1/nothing"
http GET "$A/metrics"
[ "$HTTP_CODE" = 200 ] || fail "metrics: $HTTP_CODE"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers" || fail "content type"
for m in process_resident_memory_bytes process_cpu_seconds process_open_fds \
    process_start_time_seconds mb_node_uptime_seconds 'mb_http_requests_total{route="status",code="2xx"}' \
    'mb_http_requests_total{route="unmatched",code="4xx"}' 'mb_http_request_seconds_bucket{route="status"'; do
    grep -qF "$m" "$T/body" || fail "missing $m"
done
promtool check metrics <"$T/body" >"$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"
stop_node "$NODE_PID"
pass "promtool check metrics"
