#!/usr/bin/env bash
# mabeam exit codes: 0 ok, 1 error (message on stderr), 2 usage; --help on
# every subcommand.
. "$(dirname "$0")/lib.sh"

start_node n1
M=("$MABEAM" --addr "$NODE_ADDR")
code() { local rc=0; "$@" >"$T/out" 2>"$T/err" || rc=$?; echo "$rc"; }

[ "$(code "${M[@]}" status)" = 0 ] || fail "status"
grep -q "^pid  *$NODE_PID" "$T/out" || fail "status table: $(cat "$T/out")"
[ "$(code "${M[@]}" --json status)" = 0 ] || fail "status --json"
[ "$(jget "$T/out" 'j["pid"]')" = "$NODE_PID" ] || fail "status json"
[ "$(code "${M[@]}" config get)" = 0 ] || fail "config get"
grep -q "^log_level" "$T/out" || fail "config table"
[ "$(code "${M[@]}" config get log_level)" = 0 ] || fail "config get key"
[ "$(code "${M[@]}" metrics --grep mb_http_requests_total)" = 0 ] || fail "metrics"
grep -q '^mb_http_requests_total' "$T/out" || fail "metrics grep"
for c in status events config metrics; do
    [ "$(code "$MABEAM" "$c" --help)" = 0 ] || fail "$c --help"
    grep -q "usage: mabeam" "$T/out" || fail "$c --help text"
done
[ "$(code "$MABEAM" --help)" = 0 ] || fail "--help"
[ "$(code "$MABEAM" help config)" = 0 ] || fail "help config"
pass "exit 0"

[ "$(code "${M[@]}" config set no_such_key 1)" = 1 ] || fail "unknown key"
grep -q "MB_ENOTFOUND" "$T/err" || fail "error text: $(cat "$T/err")"
[ "$(code "${M[@]}" config set log_level loud)" = 1 ] || fail "bad value"
[ "$(code "${M[@]}" config set data_dir /x)" = 1 ] || fail "not reloadable"
grep -q "HTTP 409" "$T/err" || fail "409 text: $(cat "$T/err")"
port=$(free_port)
[ "$(code "$MABEAM" --addr "127.0.0.1:$port" status)" = 1 ] || fail "unreachable"
grep -q "cannot connect" "$T/err" || fail "unreachable text: $(cat "$T/err")"
pass "exit 1"

[ "$(code "$MABEAM")" = 2 ] || fail "no command"
[ "$(code "$MABEAM" frobnicate)" = 2 ] || fail "unknown command"
[ "$(code "$MABEAM" --bogus status)" = 2 ] || fail "unknown global"
[ "$(code "${M[@]}" config)" = 2 ] || fail "config without action"
[ "$(code "${M[@]}" config set log_level)" = 2 ] || fail "config set missing value"
[ "$(code "${M[@]}" events --limit)" = 2 ] || fail "missing option value"
[ "$(code "${M[@]}" config watch --count x)" = 2 ] || fail "bad count"
[ "$(code "$MABEAM" --addr)" = 2 ] || fail "--addr without value"
stop_node "$NODE_PID"
pass "exit 2"
