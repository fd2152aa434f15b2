#!/usr/bin/env bash
# A real Prometheus server (own temp config and storage, loopback only)
# scrapes the node; the scrape is verified through Prometheus' query API.
. "$(dirname "$0")/lib.sh"

if ! command -v prometheus >/dev/null; then
    echo "SKIP: prometheus not installed (Debian package prometheus)"
    exit $SKIP
fi
start_node n1 --api_token=scrape-token
ppt=$(free_port)
printf 'scrape-token' >"$T/token"
cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: mabeam
    authorization:
      credentials_file: $T/token
    static_configs:
      - targets: ['$NODE_ADDR']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$ppt" --log.level=warn >"$T/prometheus.log" 2>&1 &
PIDS+=("$!")
prom_pid=$!
q() { # PromQL -> number of result series with value 1 (for up) or any
    curl -fsS -m 5 "http://127.0.0.1:$ppt/api/v1/query" --data-urlencode "query=$1" >"$T/q.json"
}
up_is_1() {
    q 'up{job="mabeam"}' && [ "$(jget "$T/q.json" 'j["data"]["result"][0]["value"][1]')" = 1 ]
}
wait_until 45 up_is_1 || fail "Prometheus never scraped the node: $(cat "$T/q.json" 2>/dev/null)"
has_rss() {
    q 'process_resident_memory_bytes{job="mabeam"}' &&
        jget "$T/q.json" 'float(j["data"]["result"][0]["value"][1]) > 0' | grep -q True
}
wait_until 15 has_rss || fail "no RSS series in Prometheus"
has_http() {
    q 'mb_http_requests_total{job="mabeam",route="metrics",code="2xx"}' &&
        jget "$T/q.json" 'float(j["data"]["result"][0]["value"][1]) >= 1' | grep -q True
}
wait_until 15 has_http || fail "no scrape counter in Prometheus"
kill -TERM "$prom_pid"
wait_until 20 bash -c "! kill -0 $prom_pid 2>/dev/null" || fail "prometheus did not stop"
stop_node "$NODE_PID"
pass "Prometheus scraped the node with the bearer token"
