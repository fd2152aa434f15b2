#!/usr/bin/env bash
# Writes forwarded to a leader that stops answering are retried as soon as a
# new leader is known, also when the new leader is the forwarding node
# itself. Found by the cluster suite's failover figure: a follower elected
# while its own forward sat in the dead leader's socket waited for the
# forward's 2 s attempt timeout before proposing the write itself, so a
# leader kill cost 2 s instead of an election whenever the node the client
# wrote to won it.
#
# The leader is stopped (SIGSTOP) while both followers forward a write to
# it; one of them wins the election (200 ms timeouts) and both writes must
# be answered well before the 2 s a forward attempt waits.
. "$(dirname "$0")/lib.sh"

CLUSTER_FLAGS=(--write_timeout=5s --election_timeout=200ms --log_level=debug)
start_cluster 3
roles_of_3 "${HTTP[1]}"
http POST "http://${HTTP[$L]}/v1/vars" '{"name":"x","type":"int","min":0,"max":100,"value":1}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"
v=$(jget "$T/body" 'j["version"]')
for i in "$F" "$O"; do
    wait_until 20 version_is "${HTTP[$i]}" x "$v" || fail "node $i did not apply the define"
done

# timed_put I VALUE: PUT x=VALUE on node I; writes "code ms" to $T/put.I.
timed_put() {
    local t0 code
    t0=$(now_ms)
    code=$(curl -s -o "$T/putbody.$1" -w '%{http_code}' -m 10 -XPUT "http://${HTTP[$1]}/v1/vars/x" \
        -d "{\"value\":$2,\"request_id\":\"fwd-$1\"}")
    echo "$code $(($(now_ms) - t0))" >"$T/put.$1"
}

kill -STOP "${PID[$L]}"
timed_put "$F" 2 &
pf=$!
timed_put "$O" 3 &
po=$!
wait "$pf" "$po"
kill -CONT "${PID[$L]}"

N=$(leader_of "${HTTP[$F]}")
[ "$N" = "$F" ] || [ "$N" = "$O" ] || fail "new leader is $N, want $F or $O"
for i in "$F" "$O"; do
    read -r code ms <"$T/put.$i"
    echo "write on node $i (new leader $N): $code after $ms ms"
    [ "$code" = 200 ] || fail "write on node $i: $code $(cat "$T/putbody.$i")"
    [ "$ms" -lt 1500 ] ||
        fail "write on node $i took $ms ms: its forward to the stopped leader was not retried at the new leader (node $N)"
done
pass "forwards to a stopped leader retried at the new leader, including the forwarding node itself"

# Each write was applied once: the retries carried the same request ids.
wait_until 30 members_ok "${HTTP[$F]}" 3 || fail "cluster not whole again"
http GET "http://${HTTP[$F]}/v1/vars/x/history?limit=100"
n=$(jget "$T/body" 'sum(1 for e in j["events"] if e["type"] == "var.set")')
[ "$n" = 2 ] || fail "want 2 var.set events, got $n: $(cat "$T/body")"
for i in 1 2 3; do stop_node "${PID[$i]}"; done
pass "each forwarded write applied once; clean stops"
