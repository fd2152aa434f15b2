#!/usr/bin/env bash
# Agents from the CLI: spawn echo and counter, send, kill -> the root
# supervisor restarts the counter from its checkpoint (events recorded),
# stop is a normal end, /metrics shows agents, SIGTERM with agents running
# is a clean exit.
. "$(dirname "$0")/lib_agents.sh"

start_node n1
M=("$MABEAM" --addr "$NODE_ADDR")

"${M[@]}" kind list >"$T/kinds.txt" || fail "kind list"
for k in echo counter crasher supervisor pool port; do
    grep -q "^$k " "$T/kinds.txt" || fail "kind $k missing: $(cat "$T/kinds.txt")"
done

echo_id=$("${M[@]}" agent spawn echo --name e1 --caps talk,echo) || fail "spawn echo"
[[ "$echo_id" =~ ^[0-9a-f]{16}$ ]] || fail "spawn printed '$echo_id', not an id"
"${M[@]}" agent send e1 --data hello >/dev/null || fail "send to echo"
wait_until 10 is_eq 1 agent_field e1 'j["usage"]["messages"]' || fail "echo did not handle it"
"${M[@]}" --json agent list --cap talk >"$T/cap.json"
[ "$(jget "$T/cap.json" '[a["id"] for a in j["agents"]]')" = "['$echo_id']" ] ||
    fail "capability filter: $(cat "$T/cap.json")"
pass "echo spawned, messaged, found by capability"

# API messages have a real sender: the node's system/api agent, or a reply
# mailbox when the caller waits (--wait prints the reply).
"${M[@]}" agent send e1 --data ping --wait 5000 >"$T/reply.txt" || fail "send --wait"
grep -q "^reply from $echo_id, tag 0, 4 bytes: ping$" "$T/reply.txt" ||
    fail "echo's reply not printed: $(cat "$T/reply.txt")"
"${M[@]}" --json agent send e1 --data x >"$T/sent.json" || fail "send"
api_id=$(jget "$T/sent.json" 'j["from"]')
[ "$(agent_field "$api_id" 'j["kind"]')" = api_reply ] || fail "sender $api_id is not the api agent"
"${M[@]}" --json agent info api --namespace system >"$T/api.json" || fail "info system/api"
[ "$(jget "$T/api.json" 'j["id"]')" = "$api_id" ] ||
    fail "system/api is not the sender"
pass "API messages come from system/api; --wait prints the reply"

cnt=$("${M[@]}" agent spawn counter --name cnt --config 5) || fail "spawn counter"
for i in 1 2 3; do
    "${M[@]}" agent send cnt --tag 1 >/dev/null || fail "send add"
done
wait_until 10 is_eq 8 ckpt_int64 cnt || fail "counter checkpoint is not 8: $(ckpt_int64 cnt)"
"${M[@]}" agent list --kind counter >"$T/list.txt"
grep -q "cnt" "$T/list.txt" || fail "agent list: $(cat "$T/list.txt")"
pass "counter counted to 8"

"${M[@]}" agent kill cnt >/dev/null || fail "kill"
new_id() { local id; id=$(agent_field cnt 'j["id"]') && [ "$id" != "$cnt" ]; }
wait_until 10 new_id || fail "counter was not restarted by its supervisor"
[ "$(agent_field cnt 'j["restarts"]')" = 1 ] || fail "restarts != 1"
[ "$(agent_field cnt 'j["last_error"]')" = MB_ECRASH ] || fail "last_error"
cnt2=$(agent_field cnt 'j["id"]')
"${M[@]}" agent send cnt --tag 1 >/dev/null || fail "send after restart"
wait_until 10 is_eq 9 ckpt_int64 "$cnt2" ||
    fail "restarted counter did not resume from its checkpoint: $(ckpt_int64 "$cnt2")"
wait_until 10 has_event agent.crashed "$cnt" || fail "no agent.crashed event for $cnt"
wait_until 10 has_event agent.restarted "$cnt2" || fail "no agent.restarted event for $cnt2"
"${M[@]}" events --type agent.crashed >"$T/crashed.txt"
grep -q "$cnt" "$T/crashed.txt" || fail "mabeam events --type agent.crashed: $(cat "$T/crashed.txt")"
pass "kill -> restarted from checkpoint (8 -> 9), events recorded"

"${M[@]}" agent restart cnt >/dev/null || fail "restart in place"
wait_until 10 is_eq 2 agent_field cnt 'j["restarts"]' || fail "in-place restart not counted"
[ "$(agent_field cnt 'j["id"]')" = "$cnt2" ] || fail "in-place restart changed the id"

"${M[@]}" agent stop e1 >/dev/null || fail "stop"
gone() { ! "${M[@]}" agent info "$echo_id" >/dev/null 2>&1; }
wait_until 10 gone || fail "stopped agent still listed"
wait_until 10 has_event agent.stopped "$echo_id" || fail "no agent.stopped event"
jget "$T/ev.json" 'j["events"][0]["payload"]["reason"]' | grep -qx normal || fail "stop not normal"
"${M[@]}" --json events --type agent.restarted >"$T/r.json"
python3 - "$T/r.json" "$echo_id" <<'PY' || fail "a normally stopped agent was restarted"
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(1 if any(e["payload"]["detail"].find("restart") >= 0 and e["subject"] == sys.argv[2] for e in j["events"]) else 0)
PY
expect_exit 1 "${M[@]}" agent info e1
pass "stop is a normal end (no restart)"

curl -fsS "http://$NODE_ADDR/metrics" >"$T/metrics.txt"
grep -Eq '^mb_agents [0-9]' "$T/metrics.txt" || fail "mb_agents gauge missing"
grep -q 'mb_agent_events_total{event="crashed"} [1-9]' "$T/metrics.txt" || fail "crash counter"
grep -q 'mb_agent_events_total{event="restarted"} [1-9]' "$T/metrics.txt" || fail "restart counter"
pass "metrics"

# --wait on an agent that does not reply: exit 1 after the wait.
expect_exit 1 "${M[@]}" agent send cnt --tag 1 --wait 300
grep -q "no reply within the wait" "$T/err.txt" || fail "no-reply wait: $(cat "$T/err.txt")"
pass "send --wait without a reply times out"

"${M[@]}" agent spawn echo --name e2 >/dev/null
stop_node "$NODE_PID"
grep -q "agent runtime started" "$T/n1.log" || fail "no runtime start line"
# A shutdown is not a crash: the root supervisor and the agents stop.
grep -q 'stopped agent=[0-9a-f]* kind=supervisor detail="node shutdown"' "$T/n1.log" ||
    fail "root supervisor not logged as stopped at shutdown"
! grep -q "crashed agent=[0-9a-f]* kind=supervisor" "$T/n1.log" ||
    fail "root supervisor logged as crashed at shutdown"
pass "SIGTERM with agents running: clean exit"
