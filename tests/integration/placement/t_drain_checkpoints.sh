#!/usr/bin/env bash
# Drain moves every agent of a node elsewhere with its state and answers
# when they all run; the node can then leave. A checkpoint above
# checkpoint_max_bytes is refused with a clear error and the previous one
# stays.
. "$(dirname "$0")/lib.sh"

start_cluster 3
# The periodic checkpoint round runs on every node and is counted.
rounds() {
    curl -fsS -m 3 "http://${HTTP[$1]}/metrics" |
        awk '$1 == "mb_placement_checkpoint_rounds_total" {print $2}'
}
r0=$(rounds 1)
[ -n "$r0" ] || fail "no mb_placement_checkpoint_rounds_total in node 1's metrics"
more_rounds() { [ "$(rounds 1)" -gt "$r0" ]; }
wait_until 15 more_rounds || fail "no periodic checkpoint round in 15 s (still $(rounds 1))"
pass "periodic checkpoint rounds are counted (mb_placement_checkpoint_rounds_total)"
for i in 1 2 3 4; do spawn 1 "d$i" node:2; done
"$MABEAM" --addr "${HTTP[1]}" agent spawn counter --name e1 --placement node:3 >"$T/cli.txt" ||
    fail "CLI spawn: $(cat "$T/cli.txt")"
grep -q "e1 placed on node 3" "$T/cli.txt" || fail "CLI spawn output: $(cat "$T/cli.txt")"
wait_until 20 table 1 'all(x["status"] == "running" for x in a.values()) and len(a) == 5' ||
    fail "agents not running: $(table 1 a)"
"$MABEAM" --addr "${HTTP[2]}" agent list --cluster --node 2 >"$T/list.txt"
[ "$(grep -c ' 2     1  running' "$T/list.txt")" = 4 ] || fail "CLI list: $(cat "$T/list.txt")"
for i in 1 2 3 4; do add "d$i" "$i"; add "d$i" 100; done
# Drain right away: the last ADDs may not be in a periodic checkpoint yet;
# the drain takes a fresh one.
http POST "http://${HTTP[1]}/v1/nodes/2/drain?timeout_ms=20000"
[ "$HTTP_CODE" = 200 ] || fail "drain: $HTTP_CODE $(cat "$T/body")"
[ "$(jget "$T/body" 'j["done"], j["remaining"]')" = "(True, 0)" ] || fail "drain: $(cat "$T/body")"
table 1 'all(x["node"] != 2 and x["status"] == "running" for x in a.values())' ||
    fail "after drain: $(table 1 a)"
for i in 1 2 3 4; do
    [ "$(ckpt_value 1 "d$i")" = $((100 + i)) ] || fail "d$i moved without its state: $(ckpt_value 1 "d$i")"
done
local_is 2 0 || fail "drained node still runs agents"
# Nothing new lands on a draining node.
http POST "http://${HTTP[1]}/v1/agents" '{"kind":"counter","placement":"node:2"}'
expect_error 409 MB_ESTATE
pass "drain moved 4 agents with their state; the draining node takes no new agent"

# CLI drain of node 3 (e1), with progress, then node 3 can leave.
"$MABEAM" --addr "${HTTP[1]}" node drain 3 --timeout-ms 20000 >"$T/drain.txt" ||
    fail "CLI drain: $(cat "$T/drain.txt")"
grep -q "node 3 drained" "$T/drain.txt" || fail "CLI drain output: $(cat "$T/drain.txt")"
table 1 'a["e1"]["node"] == 1 and a["e1"]["status"] == "running"' || fail "e1: $(table 1 'a["e1"]')"
pass "mabeam node drain moves the agents and reports progress"

# Checkpoint limit: the counter's 8-byte checkpoint is above a 4-byte limit.
add e1 5
wait_until 10 ckpt_is 1 e1 5 || fail "e1 checkpoint: $(ckpt_value 1 e1)"
http PUT "http://${HTTP[1]}/v1/config/checkpoint_max_bytes" '{"value":"4"}'
[ "$HTTP_CODE" = 200 ] || fail "config set: $HTTP_CODE $(cat "$T/body")"
add e1 1
wait_until 10 grep -q "checkpoint above checkpoint_max_bytes refused" "$T/n1.log" ||
    fail "no refusal logged"
http GET "http://${HTTP[1]}/v1/events?log=local&type=agent.checkpoint_refused"
grep -q '"bytes":8' "$T/body" || fail "no refusal event: $(cat "$T/body")"
[ "$(ckpt_value 1 e1)" = 5 ] || fail "refused checkpoint replaced the old one"
pass "a checkpoint above checkpoint_max_bytes is refused (log, event) and the old one stays"
