#!/usr/bin/env bash
# A Python port agent (python/examples/counter_agent.py) spawned from the
# CLI; killing its process is a crash: the supervisor restarts it from its
# checkpoint.
. "$(dirname "$0")/lib_agents.sh"
PY=$(command -v python3 || true)
[ -n "$PY" ] || exit $SKIP
: "${MB_SRC:?}"

start_node n1
M=("$MABEAM" --addr "$NODE_ADDR")
id=$("${M[@]}" agent spawn port --name pyc -- "$PY" -B "$MB_SRC/python/examples/counter_agent.py") ||
    fail "spawn port agent"
[ "$(agent_field pyc 'j["port"]')" = True ] || fail "not a port agent"
pid=$(agent_field pyc 'j["os_pid"]')
[ "$pid" -gt 0 ] || fail "no os pid"
"${M[@]}" agent send pyc --data inc >/dev/null || fail "send inc"
"${M[@]}" agent send pyc --data inc >/dev/null || fail "send inc"
wait_until 15 is_eq 2 ckpt_text pyc || fail "python counter checkpoint is not 2"
pass "python counter counted to 2"

kill -KILL "$pid"
restarted() { local p; p=$(agent_field pyc 'j["os_pid"]') && [ "$p" -gt 0 ] && [ "$p" != "$pid" ]; }
wait_until 20 restarted || fail "port agent not restarted after its process was killed"
id2=$(agent_field pyc 'j["id"]')
[ "$id2" != "$id" ] || fail "same id after a supervisor restart"
wait_until 10 has_event agent.crashed "$id" || fail "no agent.crashed event"
"${M[@]}" agent send pyc --data inc >/dev/null || fail "send after restart"
wait_until 15 is_eq 3 ckpt_text "$id2" || fail "restarted python counter did not resume: $(ckpt_text "$id2")"
grep -q "counter starting at 2" "$T/n1.log" || fail "port agent stderr not in the node log"
pass "process killed -> restarted from checkpoint (2 -> 3)"

expect_exit 1 "${M[@]}" agent spawn port -- /nonexistent/program
grep -qi "nonexistent\|not found\|no such" "$T/err.txt" || fail "unclear error: $(cat "$T/err.txt")"
newpid=$(agent_field pyc 'j["os_pid"]')
stop_node "$NODE_PID"
! kill -0 "$newpid" 2>/dev/null || fail "port process $newpid outlived the node"
pass "missing program refused; SIGTERM ends the port process"
