#!/usr/bin/env bash
# Agents meet the cluster (node_cluster_ops): an agent on one follower sets
# a variable, an agent on the other follower watches it and sees every
# version once, in order, also while the leader is killed in the middle of
# the writes (each write applied exactly once: same idempotency id on
# retry); mb_var_get reads the local copy; agent messages cross nodes in
# order, before and after the leader kill.
. "$(dirname "$0")/lib.sh"
: "${KIND_WATCH:?KIND_WATCH must point at the itwatch kind library}"

# Long enough that an agent's write outlives the election after the kill.
CLUSTER_FLAGS=(--write_timeout=10s --log_level=debug)
start_cluster 3
http POST "http://${HTTP[1]}/v1/vars" '{"name":"step","type":"int","min":0,"max":1000000,"value":0}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"
v0=$(jget "$T/body" 'j["version"]')
for i in 1 2 3; do
    http POST "http://${HTTP[$i]}/v1/kinds" "{\"path\":\"$KIND_WATCH\"}"
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 201 ] || fail "kind load on $i: $HTTP_CODE $(cat "$T/body")"
done

L=$(leader_of "${HTTP[1]}")
FOL=()
for i in 1 2 3; do [ "$i" != "$L" ] && FOL+=("$i"); done
A=${FOL[0]} B=${FOL[1]}

# spawn NODE NAME: an itwatch agent watching "step"; prints its id.
spawn() {
    http POST "http://${HTTP[$1]}/v1/agents" "{\"kind\":\"itwatch\",\"config\":\"step\",\"name\":\"$2\"}"
    [ "$HTTP_CODE" = 201 ] || [ "$HTTP_CODE" = 200 ] || fail "spawn $2 on $1: $HTTP_CODE $(cat "$T/body")"
    jget "$T/body" 'j["id"]'
}
# tell NODE AGENT TAG TEXT
tell() {
    http POST "http://${HTTP[$1]}/v1/agents/$2/messages" "{\"tag\":$3,\"data\":\"$4\"}"
    [ "$HTTP_CODE" = 200 ] || [ "$HTTP_CODE" = 202 ] || fail "message to $2: $HTTP_CODE $(cat "$T/body")"
}
# log_of NODE AGENT: the agent's text log (its checkpoint).
log_of() {
    curl -fsS -m 3 "http://${HTTP[$1]}/v1/agents/$2/checkpoint" 2>/dev/null |
        python3 -c 'import base64,json,sys; sys.stdout.write(base64.b64decode(json.load(sys.stdin)["data_b64"]).decode())'
}
# count_lines NODE AGENT PREFIX N: the log has N lines starting with PREFIX.
count_lines() {
    [ "$(log_of "$1" "$2" | grep -c "^$3 ")" = "$4" ]
}
# last_value NODE AGENT V: the last change seen carries value V.
last_value() {
    [ "$(log_of "$1" "$2" | grep '^c ' | tail -n 1 | cut -d' ' -f3)" = "$3" ]
}

SET=$(spawn "$A" setter)
WAT=$(spawn "$B" watcher)
# A watch registered at version 0 first gets the current value.
wait_until 10 last_value "$B" "$WAT" 0 || fail "watcher did not get the current value: $(log_of "$B" "$WAT")"
tell "$A" "$SET" 103 ""
wait_until 10 count_lines "$A" "$SET" g 1 || fail "no var_get: $(log_of "$A" "$SET")"
[ "$(log_of "$A" "$SET" | grep '^g ')" = "g 0 $v0 0" ] || fail "var_get: $(log_of "$A" "$SET")"
pass "an agent reads the local copy of a variable with its version"

for k in 1 2 3 4 5; do tell "$A" "$SET" 101 "$WAT hello$k"; done
wait_until 10 count_lines "$B" "$WAT" m 5 || fail "remote messages: $(log_of "$B" "$WAT")"
[ "$(log_of "$B" "$WAT" | grep '^m ' | tr '\n' ' ')" = \
  "m $SET hello1 m $SET hello2 m $SET hello3 m $SET hello4 m $SET hello5 " ] ||
    fail "remote messages out of order or wrong sender: $(log_of "$B" "$WAT")"
# The receiver answers through the sender's id (a remote id both ways).
tell "$B" "$WAT" 101 "$SET back"
wait_until 10 count_lines "$A" "$SET" m 1 || fail "reply: $(log_of "$A" "$SET")"
pass "agent messages cross nodes in order and can be answered"

for k in $(seq 1 10); do tell "$A" "$SET" 100 "$k"; done
wait_until 20 last_value "$B" "$WAT" 10 || fail "watcher: $(log_of "$B" "$WAT")"
for k in $(seq 11 30); do tell "$A" "$SET" 100 "$k"; done
kill_node "$L"
wait_until 40 last_value "$B" "$WAT" 30 || fail "watcher after the leader kill: $(log_of "$B" "$WAT")"
log_of "$B" "$WAT" >"$T/watcher.log"
log_of "$A" "$SET" >"$T/setter.log"
python3 - "$T/watcher.log" "$T/setter.log" "$v0" <<'PY' || fail "watch or set log wrong: $(cat "$T/watcher.log" "$T/setter.log")"
import sys
c = [l.split() for l in open(sys.argv[1]) if l.startswith("c ")]
vers = [int(x[1]) for x in c]
vals = [int(x[2]) for x in c]
assert vals == list(range(0, 31)), vals
assert vers[0] == int(sys.argv[3]) and vers == sorted(set(vers)), vers
s = [l.strip() for l in open(sys.argv[2]) if l.startswith("s ")]
assert s == ["s 0"] * 30, s
PY
# Applied once: the replicated history holds each value exactly once.
http GET "http://${HTTP[$B]}/v1/vars/step/history?limit=1000"
[ "$HTTP_CODE" = 200 ] || fail "history: $HTTP_CODE"
python3 - "$T/body" <<'PY' || fail "history: $(cat "$T/body")"
import json, sys
ev = [e for e in json.load(open(sys.argv[1]))["events"] if e["type"] == "var.set"]
assert [e["value"] for e in ev] == list(range(1, 31)), [e["value"] for e in ev]
PY
pass "every agent write applied once, in order, and watched through a leader kill"

tell "$A" "$SET" 101 "$WAT after"
wait_until 10 count_lines "$B" "$WAT" m 6 || fail "remote message after the kill: $(log_of "$B" "$WAT")"
pass "agent messages still cross after the leader kill"

# mb_var_set checks the value against the definition before accepting it.
tell "$A" "$SET" 100 2000000
wait_until 10 count_lines "$A" "$SET" s 31 || fail "set above max: $(log_of "$A" "$SET")"
[ "$(log_of "$A" "$SET" | grep '^s ' | tail -n 1)" = "s 21" ] ||
    fail "set above max not refused with MB_ECONSTRAINT: $(log_of "$A" "$SET")"
pass "an invalid agent write is refused at once (MB_ECONSTRAINT)"

# A clean stop with agents, watches and remote channels in place (under
# ASan a leak fails the exit status).
stop_node "${PID[$B]}" 30
pass "a node with a watching agent stops cleanly"

# Alone (1 of 3 voters), an accepted write cannot commit: after
# write_timeout it is reported as a node-local event with MB_ENOQUORUM.
tell "$A" "$SET" 100 77
wait_until 10 count_lines "$A" "$SET" s 32 || fail "set without quorum: $(log_of "$A" "$SET")"
[ "$(log_of "$A" "$SET" | grep '^s ' | tail -n 1)" = "s 0" ] || fail "not accepted"
failed_event() {
    curl -fsS -m 3 "http://${HTTP[$A]}/v1/events?type=agent.var_set_failed&subject=$SET" |
        python3 -c 'import json,sys; e=json.load(sys.stdin)["events"]; sys.exit(0 if e and e[-1]["payload"]["code"]=="MB_ENOQUORUM" and e[-1]["payload"]["var"]=="step" else 1)'
}
wait_until 30 failed_event || fail "no agent.var_set_failed MB_ENOQUORUM event: $(curl -s "http://${HTTP[$A]}/v1/events?type=agent.var_set_failed")"
pass "an agent write without quorum fails after write_timeout, reported as an event"
stop_node "${PID[$A]}" 30
pass "the node without quorum stops cleanly"
