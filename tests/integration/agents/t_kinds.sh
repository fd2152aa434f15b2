#!/usr/bin/env bash
# Kind libraries through the CLI: load version 1, run an agent, load
# version 2 -> the running agent moves to it at its next message with its
# state; an older version, a missing file and a library without the kind
# symbol are refused.
. "$(dirname "$0")/lib_agents.sh"
: "${KIND_V1:?}" "${KIND_V2:?}" "${KIND_NOSYM:?}"

start_node n1
M=("$MABEAM" --addr "$NODE_ADDR")
"${M[@]}" kind load "$KIND_V1" >"$T/k1.txt" || fail "load v1"
grep -Eq '^itcount +1 ' "$T/k1.txt" || fail "v1 not listed: $(cat "$T/k1.txt")"
id=$("${M[@]}" agent spawn itcount --name it) || fail "spawn itcount"
"${M[@]}" agent send it >/dev/null
"${M[@]}" agent send it >/dev/null
wait_until 10 is_eq 2 ckpt_int64 it || fail "v1 count is not 2"
pass "kind v1 loaded and running"

"${M[@]}" kind load "$KIND_V2" >/dev/null || fail "load v2"
"${M[@]}" --json kind list >"$T/kl.json"
[ "$(jget "$T/kl.json" '[k["version"] for k in j["kinds"] if k["name"]=="itcount"][0]')" = 2 ] ||
    fail "kind list after v2: $(cat "$T/kl.json")"
"${M[@]}" agent send it >/dev/null
wait_until 10 is_eq 102 ckpt_int64 it || fail "v2 did not take over the state: $(ckpt_int64 it)"
[ "$(agent_field it 'j["version"]')" = 2 ] || fail "agent not on version 2"
[ "$(agent_field it 'j["id"]')" = "$id" ] || fail "hot swap changed the id"
wait_until 10 has_event agent.upgraded "$id" || fail "no agent.upgraded event"
pass "hot swap to v2 kept the agent and its state"

# Cluster services are wired: a variable nobody defined is MB_ENOTFOUND (3).
"${M[@]}" agent send it --tag 7 >/dev/null
wait_until 10 is_eq -3 ckpt_int64 it || fail "var_get of an unknown variable: $(ckpt_int64 it)"
pass "variables through the cluster wiring: unknown variable is MB_ENOTFOUND"

expect_exit 1 "${M[@]}" kind load "$KIND_V1"
grep -q "already" "$T/err.txt" || fail "older version: $(cat "$T/err.txt")"
expect_exit 1 "${M[@]}" kind load "$T/missing.so"
expect_exit 1 "${M[@]}" kind load "$KIND_NOSYM"
grep -q "mb_agent_kind_v1" "$T/err.txt" || fail "no-symbol error unclear: $(cat "$T/err.txt")"
echo "not an ELF file" >"$T/bad.so"
expect_exit 1 "${M[@]}" kind load "$T/bad.so"
expect_exit 2 "${M[@]}" kind load
health_ok "$NODE_ADDR" || fail "node unhealthy after bad loads"
stop_node "$NODE_PID"
pass "bad kind libraries refused, node healthy"
