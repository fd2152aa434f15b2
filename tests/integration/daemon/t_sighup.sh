#!/usr/bin/env bash
# SIGHUP reloads the config file: a changed log_level takes effect (debug
# lines appear), is visible in the API with source "file", is recorded as a
# config.changed event; a non-reloadable change is reported and ignored; a
# broken file leaves the configuration unchanged.
. "$(dirname "$0")/lib.sh"

printf 'log_level = info\nnode_name = before\n' >"$T/node.conf"
start_node n1 --config="$T/node.conf"
A="http://$NODE_ADDR"
http GET "$A/v1/status"
grep -q '"route":"status"\|route=status' "$T/n1.log" && fail "debug line logged at info level"

printf 'log_level = debug\nnode_name = after\n' >"$T/node.conf"
kill -HUP "$NODE_PID"
is_debug() { [ "$("$MABEAM" --addr "$NODE_ADDR" config get log_level)" = debug ]; }
wait_until 10 is_debug || fail "log_level not reloaded"
http GET "$A/v1/config/log_level"
[ "$(jget "$T/body" 'j["source"]')" = file ] || fail "source after reload: $(cat "$T/body")"
http GET "$A/v1/status"
has_debug_line() { grep -q 'route=status' "$T/n1.log"; }
wait_until 5 has_debug_line || fail "no debug line after reload: $(tail -5 "$T/n1.log")"
# node_name is not reloadable: unchanged, and the log says why.
http GET "$A/v1/status"
[ "$(jget "$T/body" 'j["node_name"]')" = before ] || fail "node_name changed by reload"
grep -q "not reloadable" "$T/n1.log" || fail "no warning about node_name"
http GET "$A/v1/events?type=config.changed&subject=log_level"
[ "$(jget "$T/body" 'j["events"][-1]["payload"]["new"]')" = debug ] || fail "event: $(cat "$T/body")"
[ "$(jget "$T/body" 'j["events"][-1]["payload"]["source"]')" = file ] || fail "event source"
pass "SIGHUP applied log_level"

# A broken file: reload refused, config unchanged, node alive.
printf 'log_level = shouty\n' >"$T/node.conf"
kill -HUP "$NODE_PID"
reload_failed() { grep -q "reload failed" "$T/n1.log"; }
wait_until 10 reload_failed || fail "no reload failure logged"
[ "$("$MABEAM" --addr "$NODE_ADDR" config get log_level)" = debug ] || fail "bad reload applied"
stop_node "$NODE_PID"
pass "broken reload refused"
