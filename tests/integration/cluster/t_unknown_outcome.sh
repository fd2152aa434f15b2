#!/usr/bin/env bash
# A write that times out while it may still be applied must say so. Found by
# the partition suite: a follower forwarded a write to the leader, the
# forward was still pending when write_timeout passed, the client got
# "503 no quorum" with no hint, and the leader applied the write later.
# Here the leader and the other follower are stopped (SIGSTOP) while a
# write is sent to the remaining follower: the forward sits in the leader's
# socket. The 503 must say "outcome unknown"; after SIGCONT the write may
# indeed be applied, and a retry with the same request_id never applies it
# twice.
. "$(dirname "$0")/lib.sh"

CLUSTER_FLAGS=(--write_timeout=1s --log_level=debug)
start_cluster 3
roles_of_3 "${HTTP[1]}"
http POST "http://${HTTP[$F]}/v1/vars" '{"name":"x","type":"int","min":0,"max":100,"value":1}'
[ "$HTTP_CODE" = 201 ] || fail "define: $HTTP_CODE $(cat "$T/body")"

kill -STOP "${PID[$L]}" "${PID[$O]}"
http PUT "http://${HTTP[$F]}/v1/vars/x" '{"value":2,"request_id":"maybe"}'
kill -CONT "${PID[$L]}" "${PID[$O]}"
[ "$HTTP_CODE" = 503 ] || fail "write with leader stopped: $HTTP_CODE $(cat "$T/body")"
[ "$(jget "$T/body" 'j["error"]["code"]')" = MB_ENOQUORUM ] || fail "code: $(cat "$T/body")"
grep -q "outcome unknown" "$T/body" ||
    fail "a write still pending at the leader was answered as if not applied: $(cat "$T/body")"
pass "503 for a write still pending at the leader says the outcome is unknown"

# The cluster recovers; the retry with the same id gives one apply at most.
wait_until 30 members_ok "${HTTP[$F]}" 3 || fail "cluster did not recover"
retry_ok() {
    http PUT "http://${HTTP[$F]}/v1/vars/x" '{"value":2,"request_id":"maybe"}'
    [ "$HTTP_CODE" = 200 ]
}
wait_until 30 retry_ok || fail "retry: $HTTP_CODE $(cat "$T/body")"
http GET "http://${HTTP[$F]}/v1/vars/x/history?limit=100"
n=$(jget "$T/body" 'sum(1 for e in j["events"] if e["type"] == "var.set")')
[ "$n" = 1 ] || fail "the write was applied $n times: $(cat "$T/body")"
pass "retry with the same request_id: applied exactly once"
