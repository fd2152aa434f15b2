#!/usr/bin/env bash
# Suite `daemon`: idle resident memory of mabeamd once start-up has settled
# (target <= 30 MB), and GET /v1/health requests per second for reference.
# Needs $MB_BENCH_BUILD (Release, MB_BENCH=ON), set by scripts/bench.sh.
# JSON lines on stdout, progress on stderr; medians of repeated runs.
set -euo pipefail
B=${MB_BENCH_BUILD:?run through scripts/bench.sh}
MABEAMD="$B/node/mabeamd"
BENCH="$B/tests/bench/daemon/bench_http_health"
RUNS=${MB_DAEMON_RUNS:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/mabeam-bench-XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { # below the ephemeral range: scripts/free_port.py says why
    python3 "$(dirname "${BASH_SOURCE[0]}")/../free_port.py"
}
rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
median() {
    sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}
start() { # dir
    port=$(free_port)
    # Raft and the mesh on free ports too: their defaults may be taken by
    # a cluster running beside the benchmark.
    "$MABEAMD" --data_dir="$1" --http_address="127.0.0.1:$port" --log_level=warn \
        --mesh_address="127.0.0.1:$(free_port)" --raft_address="127.0.0.1:$(free_port)" \
        >"$work/log" 2>&1 &
    pid=$!
    local deadline=$(($(date +%s) + 20))
    until curl -fs -m 1 "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1; do
        kill -0 "$pid" || { cat "$work/log" >&2; exit 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "daemon: no health in 20 s" >&2; exit 1; }
        sleep 0.05
    done
}
stop() {
    kill -TERM "$pid"
    wait "$pid"
    pid=""
}

# Idle RSS: sample every 250 ms until four samples in a row are within 1%
# (start-up has settled), at most 15 s.
: >"$work/rss"
for r in $(seq 1 "$RUNS"); do
    start "$work/data$r"
    prev=0
    stable=0
    deadline=$(($(date +%s) + 15))
    while [ "$stable" -lt 4 ] && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.25
        cur=$(rss_kib "$pid")
        if [ "$prev" -gt 0 ] && [ $((cur * 100)) -le $((prev * 101)) ] &&
            [ $((cur * 100)) -ge $((prev * 99)) ]; then
            stable=$((stable + 1))
        else
            stable=0
        fi
        prev=$cur
    done
    echo "daemon: run $r idle RSS $cur KiB" >&2
    echo "$cur" >>"$work/rss"
    stop
done
rss=$(median <"$work/rss")
printf '{"suite":"daemon","metric":"idle_rss","value":%.1f,"unit":"MiB","target":30,"runs":%d}\n' \
    "$(awk -v v="$rss" 'BEGIN {print v / 1024}')" "$RUNS"

# Health requests/s: 4 keep-alive connections for 3 s, 3 runs.
start "$work/data-http"
: >"$work/rps"
for r in 1 2 3; do
    line=$("$BENCH" 127.0.0.1 "$port" 4 3)
    echo "daemon: run $r $line" >&2
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rps"])' "$line" >>"$work/rps"
done
rss_after=$(rss_kib "$pid")
stop
rps=$(median <"$work/rps")
printf '{"suite":"daemon","metric":"http_health_rps","value":%.0f,"unit":"req/s","connections":4,"runs":3}\n' "$rps"
printf '{"suite":"daemon","metric":"rss_after_load","value":%.1f,"unit":"MiB"}\n' \
    "$(awk -v v="$rss_after" 'BEGIN {print v / 1024}')"
