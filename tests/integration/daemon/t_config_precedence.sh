#!/usr/bin/env bash
# Configuration precedence: default < file < environment < flag, visible in
# /v1/config/{key} (value and source).
. "$(dirname "$0")/lib.sh"

cat >"$T/node.conf" <<CONF
# test config
node_name = from-file
event_retention = 1h
CONF

check() { # name want_value want_source
    http GET "http://$NODE_ADDR/v1/config/node_name"
    [ "$HTTP_CODE" = 200 ] || fail "config get: $HTTP_CODE"
    [ "$(jget "$T/body" 'j["value"]')" = "$1" ] || fail "node_name is $(jget "$T/body" 'j["value"]'), want $1"
    [ "$(jget "$T/body" 'j["source"]')" = "$2" ] || fail "source is $(jget "$T/body" 'j["source"]'), want $2"
}

start_node a
http GET "http://$NODE_ADDR/v1/config/node_name"
[ "$(jget "$T/body" 'j["source"]')" = default ] || fail "default source: $(cat "$T/body")"
stop_node "$NODE_PID"

start_node b --config="$T/node.conf"
check from-file file
stop_node "$NODE_PID"

MABEAM_NODE_NAME=from-env start_node c --config="$T/node.conf"
check from-env env
stop_node "$NODE_PID"

MABEAM_NODE_NAME=from-env start_node d --config="$T/node.conf" --node_name=from-flag
check from-flag flag
http GET "http://$NODE_ADDR/v1/status"
[ "$(jget "$T/body" 'j["node_name"]')" = from-flag ] || fail "status node_name"
stop_node "$NODE_PID"

# MABEAM_CONFIG names the file too.
MABEAM_CONFIG="$T/node.conf" start_node e
check from-file file
stop_node "$NODE_PID"
pass "default < file < env < flag"
