# Helpers for the mabeamd integration tests: real processes on loopback,
# each test in its own temporary directory with its own free ports, every
# wait bounded by a deadline, and nothing left running on exit.
# Sourced by the t_*.sh scripts; needs $MABEAMD and $MABEAM (set by CTest).
set -euo pipefail

: "${MABEAMD:?MABEAMD must point at the mabeamd binary}"
: "${MABEAM:?MABEAM must point at the mabeam binary}"
SKIP=77
# A test that passed still fails when a node logged an internal error: a
# broken contract such as an API handler that neither answered nor parked
# its call (node/http_server.c counts and logs those in every build type;
# an assert would be compiled out of CI's RelWithDebInfo build).
BUG_MARK="internal error (bug)"
# The daemon writes that mark (node/node.c, http_bug): if the two ever
# differ, the check in cleanup goes blind, so say so at once.
grep -qF "$BUG_MARK" "$(dirname "${BASH_SOURCE[0]}")/../../../node/node.c" || {
    echo "FAIL: node/node.c no longer logs \"$BUG_MARK\"; update BUG_MARK in tests/integration/daemon/lib.sh" >&2
    exit 1
}

T=$(mktemp -d "${TMPDIR:-/tmp}/mabeam-it-XXXXXX")
PIDS=()

cleanup() {
    local rc=$? p bugs
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "$rc" = 0 ] && bugs=$(grep -rlF --include='*.log' "$BUG_MARK" "$T" 2>/dev/null); then
        echo "FAIL: a node logged \"$BUG_MARK\":" >&2
        grep -rhF --include='*.log' "$BUG_MARK" $bugs >&2 || true
        rc=1
    fi
    if [ "${KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$T"/*.log; do
        [ -e "$f" ] || continue
        echo "---- $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
    exit 1
}

pass() {
    echo "ok: $*"
}

# now_ms: monotonic-ish wall clock in ms.
now_ms() {
    date +%s%3N
}

# wait_until SECONDS CMD...: poll CMD until it succeeds or the deadline passes.
wait_until() {
    local secs=$1
    shift
    local deadline=$(($(now_ms) + secs * 1000))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$(now_ms)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.02
    done
}

# free_port: a TCP port that nobody listens on right now, below the
# kernel's ephemeral range (scripts/free_port.py says why).
free_port() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/free_port.py"
}

# start_node NAME [flags...]: start mabeamd with data in $T/NAME on a free
# port; sets NODE_PID, NODE_PORT, NODE_ADDR; waits for /v1/health.
start_node() {
    local name=$1
    shift
    local try
    for try in 1 2 3; do
        NODE_PORT=$(free_port)
        NODE_ADDR="127.0.0.1:$NODE_PORT"
        # mabeamd also runs raft and the mesh: give them free ports too, so
        # tests can run in parallel.
        "$MABEAMD" --data_dir="$T/$name" --http_address="$NODE_ADDR" \
            --mesh_address="127.0.0.1:$(free_port)" --raft_address="127.0.0.1:$(free_port)" "$@" \
            >"$T/$name.log" 2>&1 &
        NODE_PID=$!
        PIDS+=("$NODE_PID")
        if wait_until 20 health_ok "$NODE_ADDR"; then
            return 0
        fi
        if kill -0 "$NODE_PID" 2>/dev/null; then
            fail "mabeamd $name did not answer /v1/health within 20 s"
        fi
        wait "$NODE_PID" 2>/dev/null || true
        grep -q "in use" "$T/$name.log" || fail "mabeamd $name exited at start"
    done
    fail "no free port for mabeamd $name"
}

health_ok() {
    curl -fsS -m 2 "http://$1/v1/health" >/dev/null
}

# stop_node PID [SECONDS]: SIGTERM and expect a clean exit (status 0) in time.
stop_node() {
    local pid=$1 secs=${2:-20}
    kill -TERM "$pid"
    if ! wait_until "$secs" bash -c "! kill -0 $pid 2>/dev/null"; then
        fail "mabeamd pid $pid did not stop within $secs s of SIGTERM"
    fi
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "mabeamd pid $pid exited with status $rc after SIGTERM"
}

# http METHOD URL [BODY]: sets HTTP_CODE, writes the body to $T/body and
# the headers to $T/headers. Extra curl arguments in CURL_EXTRA (array).
CURL_EXTRA=()
http() {
    local method=$1 url=$2 body=${3-}
    local args=(-sS -m 10 -X "$method" -o "$T/body" -D "$T/headers" -w '%{http_code}')
    if [ -n "$body" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    HTTP_CODE=$(curl "${args[@]}" "${CURL_EXTRA[@]}" "$url") || HTTP_CODE=000
}

# jget FILE PYEXPR: evaluate a Python expression on the JSON document j.
jget() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# expect_error STATUS CODE: the last http answer had this status and a JSON
# error body with this code.
expect_error() {
    [ "$HTTP_CODE" = "$1" ] || fail "expected HTTP $1, got $HTTP_CODE: $(cat "$T/body")"
    local code
    code=$(jget "$T/body" 'j["error"]["code"]') || fail "no JSON error body: $(cat "$T/body")"
    [ "$code" = "$2" ] || fail "expected error code $2, got $code"
    jget "$T/body" 'j["error"]["message"]' | grep -q . || fail "empty error message"
}
