#!/usr/bin/env bash
# Bad configuration: exit status 2 and a message that names the key (and
# the line of the file).
. "$(dirname "$0")/lib.sh"

expect_exit2() { # grep-pattern args...
    local pat=$1
    shift
    local rc=0
    timeout 20 "$MABEAMD" --data_dir="$T/d" "$@" >"$T/out.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "mabeamd $* exited $rc, want 2: $(cat "$T/out.log")"
    grep -q -- "$pat" "$T/out.log" || fail "message for $* lacks '$pat': $(cat "$T/out.log")"
}

expect_exit2 "http_max_body" --http_max_body=lots
expect_exit2 "log_level" --log_level=loud
expect_exit2 "http_address" --http_address=127.0.0.1:99999
expect_exit2 "did you mean 'http_address'" --htp_address=127.0.0.1:1
MABEAM_LOG_LEVEL=shouty expect_exit2 "log_level"
printf 'node_name = ok\nagent_workers = many\n' >"$T/bad.conf"
expect_exit2 "agent_workers" --config="$T/bad.conf"
grep -q "line 2" "$T/out.log" || fail "file error does not give the line: $(cat "$T/out.log")"
expect_exit2 "mabeamd" stray-argument
pass "bad configuration refused with status 2"
