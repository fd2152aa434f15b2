#!/usr/bin/env bash
# The README's main command: installs the build dependencies that are
# missing, builds MABEAM, starts one mabeamd with its embedded defaults in a
# temporary directory, takes a short narrated tour through the mabeam CLI
# (status, config get/set/watch, events, metrics), then stops the node with
# SIGTERM and reports whether it exited cleanly. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target mabeamd mabeam

MABEAMD="${MB_DEMO_BUILD:-$root/build}/node/mabeamd"
MABEAM="${MB_DEMO_BUILD:-$root/build}/node/cli/mabeam"
work=$(mktemp -d "${TMPDIR:-/tmp}/mabeam-demo-XXXXXX")
pid=""
watch_pid=""

cleanup() {
    local rc=$?
    if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then
        kill "$watch_pid" 2>/dev/null || true
        wait "$watch_pid" 2>/dev/null || true
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() {
    printf '\n\033[1m==> %s\033[0m\n' "$*"
}
run() {
    printf '$ %s\n' "$*"
    "$@"
}

# Embedded defaults: data in ./mabeam-data, HTTP on 127.0.0.1:7700. If that
# port is taken on this machine, use the next free one instead.
port=7700
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
done
if [ "$port" != 7700 ]; then
    echo "demo: 127.0.0.1:7700 is busy; using port $port (MABEAM_HTTP_ADDRESS)"
    export MABEAM_HTTP_ADDRESS="127.0.0.1:$port"
fi
export MABEAM_ADDR="127.0.0.1:$port"

say "Starting mabeamd with its embedded defaults in $work"
cd "$work"
"$MABEAMD" >"$work/mabeamd.log" 2>&1 &
pid=$!
deadline=$(($(date +%s) + 30))
until "$MABEAM" status >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "demo: mabeamd exited during start-up:" >&2
        cat "$work/mabeamd.log" >&2
        pid=""
        exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "demo: mabeamd did not answer /v1/health within 30 s" >&2
        exit 1
    fi
    sleep 0.05
done
echo "mabeamd (pid $pid) answers on http://$MABEAM_ADDR"

say "The node's status (GET /v1/status)"
run "$MABEAM" status

say "Its configuration: every key, its value and where the value came from"
run "$MABEAM" config get

say "Watching configuration changes in the background, then changing two keys at runtime"
"$MABEAM" config watch --count 2 >"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
# The watcher starts from the version it read first; wait until it has.
deadline=$(($(date +%s) + 10))
until grep -q watching "$work/watch.err" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "demo: the watcher did not start" >&2
        exit 1
    fi
    sleep 0.05
done
run "$MABEAM" config set log_level debug
run "$MABEAM" config set alert_interval 5s
wait "$watch_pid"
watch_pid=""
echo "the watcher saw, in order:"
sed 's/^/    /' "$work/watch.out"

say "A bad value is refused by the node with a clear message (exit status 1)"
run "$MABEAM" config set log_level loud || echo "(exit status $?)"

say "The node-local event log (GET /v1/events), newest first"
run "$MABEAM" events --order desc --limit 5

say "A few Prometheus metrics (GET /metrics)"
run "$MABEAM" metrics --grep process_resident_memory_bytes
run "$MABEAM" metrics --grep 'mb_http_requests_total{route="config_set"'

say "Stopping the node with SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if [ "$rc" -eq 0 ]; then
    echo "mabeamd exited cleanly (status 0). Its last log lines:"
    tail -n 3 "$work/mabeamd.log" | sed 's/^/    /'
else
    echo "mabeamd exited with status $rc" >&2
    cat "$work/mabeamd.log" >&2
    exit 1
fi
say "Demo done. Run 'scripts/test.sh' for the test suite; docs/cli.md and docs/api.md for more."
