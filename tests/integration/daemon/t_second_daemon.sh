#!/usr/bin/env bash
# A second mabeamd on the same data directory refuses to start with a clear
# message and exit status 1, and the first keeps running.
. "$(dirname "$0")/lib.sh"

start_node n1
first_pid=$NODE_PID
first_addr=$NODE_ADDR
port=$(free_port)
rc=0
timeout 20 "$MABEAMD" --data_dir="$T/n1" --http_address="127.0.0.1:$port" \
    >"$T/second.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "second daemon exited with $rc, want 1"
grep -q "in use by another mabeamd (pid $first_pid)" "$T/second.log" ||
    fail "message does not name the running daemon: $(cat "$T/second.log")"
health_ok "$first_addr" || fail "first daemon no longer healthy"
# Another data directory but the same HTTP address: also refused, status 1.
rc=0
timeout 20 "$MABEAMD" --data_dir="$T/n2" --http_address="$first_addr" >"$T/third.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "daemon on a busy address exited with $rc, want 1"
grep -q "Address in use" "$T/third.log" || fail "busy address message: $(cat "$T/third.log")"
stop_node "$first_pid"
pass "second daemon refused"
