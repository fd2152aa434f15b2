#!/usr/bin/env bash
# Cluster agents spread over 3 nodes; kill -9 of a node moves its agents to
# the survivors with a new generation and their state from the last
# replicated checkpoint; the node returns and runs no stale copy. Then a
# SIGSTOP'd node is declared down, its agents move, and after SIGCONT it
# stops its own (stale) copies: fencing.
. "$(dirname "$0")/lib.sh"

start_cluster 3
for i in 1 2 3 4 5 6; do spawn $((1 + i % 3)) "c$i" spread:load; done
wait_until 20 table 1 'all(x["status"] == "running" for x in a.values()) and len(a) == 6' ||
    fail "6 agents not running: $(table 1 a)"
table 1 'sorted(x["node"] for x in a.values()) == [1, 1, 2, 2, 3, 3]' ||
    fail "spread:load did not spread: $(table 1 '[(k, x["node"]) for k, x in a.items()]')"
pass "spread:load places 2 agents on each of 3 nodes; all report running"

# State: every counter gets its number; wait until it is replicated.
for i in 1 2 3 4 5 6; do add "c$i" $((10 * i)); done
for i in 1 2 3 4 5 6; do
    wait_until 10 ckpt_is 1 "c$i" $((10 * i)) || fail "checkpoint of c$i: $(ckpt_value 1 "c$i")"
done
pass "checkpoints replicated through raft"

on3=$(table 1 '" ".join(sorted(k for k, x in a.items() if x["node"] == 3))')
kill_node 3
t0=$(now_ms)
wait_until 20 table 1 'all(x["node"] != 3 and x["status"] == "running" for x in a.values())' ||
    fail "agents of node 3 not running elsewhere: $(table 1 a)"
echo "agents of the killed node running elsewhere $(($(now_ms) - t0)) ms after kill -9"
for name in $on3; do
    table 1 "a['$name']['generation'] == 2 and a['$name']['restarts'] == 1" ||
        fail "$name not moved with a new generation: $(table 1 "a['$name']")"
    i=${name#c}
    [ "$(ckpt_value 1 "$name")" = $((10 * i)) ] || fail "$name lost its state"
done
# The moved counters run from their checkpoint: one more ADD lands on top.
first=${on3%% *}
add "$first" 1
wait_until 10 ckpt_is 1 "$first" $((10 * ${first#c} + 1)) ||
    fail "$first did not continue from its state: $(ckpt_value 1 "$first")"
pass "kill -9: agents moved to survivors (generation 2) and kept their counts"

launch 3
wait_until 30 members_ok "${HTTP[1]}" 3 || fail "node 3 did not rejoin"
wait_until 10 table 3 'len(a) == 6' || fail "node 3 did not catch up"
sleep 0.5 # give a wrong restart the chance to show
local_is 3 0 || fail "returning node 3 runs $(local_cluster_agents 3) cluster agents"
pass "the returning node runs no stale copies"

# Pause: node 2 is SIGSTOP'd until declared down and its agents moved.
on2=$(table 1 '" ".join(sorted(k for k, x in a.items() if x["node"] == 2))')
[ -n "$on2" ] || fail "no agent on node 2"
local_is 2 "$(echo "$on2" | wc -w)" || fail "node 2 does not run its agents"
kill -STOP "${PID[2]}"
wait_until 20 table 1 'all(x["node"] != 2 and x["status"] == "running" for x in a.values())' ||
    { kill -CONT "${PID[2]}"; fail "agents of the paused node not moved: $(table 1 a)"; }
kill -CONT "${PID[2]}"
wait_until 10 local_is 2 0 || fail "node 2 still runs $(local_cluster_agents 2) stale copies"
grep -q "fencing" "$T/n2.log" || fail "node 2 did not log its fencing"
wait_until 20 table 1 'all(x["status"] == "running" for x in a.values())' || fail "not all running"
table 1 'sum(1 for x in a.values() if x["node"] == 2) == 0' || fail "agents went back to 2"
pass "paused node declared down; after SIGCONT it stopped its stale copies (fencing)"
