#!/usr/bin/env bash
# Bad input to the agent API answers clear 4xx JSON errors and the node
# stays healthy; the CLI exits 1 (server said no) or 2 (usage).
. "$(dirname "$0")/lib_agents.sh"

start_node n1
M=("$MABEAM" --addr "$NODE_ADDR")
U="http://$NODE_ADDR"

http POST "$U/v1/agents" '{"kind":"nosuchkind"}'
expect_error 404 MB_ENOTFOUND
http POST "$U/v1/agents" '{"config":"1"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents" '{"kind":"counter","config":"not-a-number"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents" '{"kind":"crasher","config":"fail_init"}'
[ "${HTTP_CODE:0:1}" = 4 ] || fail "init failure: HTTP $HTTP_CODE $(cat "$T/body")"
http POST "$U/v1/agents" '{"kind":"counter","restart":"sometimes"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents" '{"kind":"counter","capabilities":"x"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents" '{"kind":"echo","cmd":["/bin/true"]}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents" '{"kind":"port","cmd":["/nonexistent/prog"]}'
[ "${HTTP_CODE:0:1}" = 4 ] || fail "missing program: HTTP $HTTP_CODE $(cat "$T/body")"
http POST "$U/v1/agents" '{"kind":"port","config":"{}"}'
[ "${HTTP_CODE:0:1}" = 4 ] || fail "port without cmd: HTTP $HTTP_CODE $(cat "$T/body")"
http POST "$U/v1/agents" '{"kind":"echo","name":"dup"}'
[ "$HTTP_CODE" = 201 ] || fail "spawn dup: $HTTP_CODE"
http POST "$U/v1/agents" '{"kind":"echo","name":"dup"}'
expect_error 409 MB_EEXIST
http POST "$U/v1/agents" '{"kind":"echo","supervisor":"dup"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents" '{"kind":"echo","supervisor":"nobody"}'
expect_error 404 MB_ENOAGENT
http POST "$U/v1/agents" '{"kind":"echo","name":"sub","supervisor":"root","namespace":"x"}'
[ "$HTTP_CODE" = 201 ] || fail "spawn in namespace x: $HTTP_CODE $(cat "$T/body")"
http POST "$U/v1/agents" '{"kind":"echo","supervisor":"none","name":"free"}'
[ "$HTTP_CODE" = 201 ] || fail "unsupervised spawn: $HTTP_CODE"
[ "$(jget "$T/body" 'j["parent"]')" = 0000000000000000 ] || fail "unsupervised has a parent"
pass "spawn errors"

http GET "$U/v1/agents/00000000deadbeef"
expect_error 404 MB_ENOAGENT
http POST "$U/v1/agents/nobody/kill"
expect_error 404 MB_ENOAGENT
http POST "$U/v1/agents/dup/messages" '{"data_b64":"!!!"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents/dup/messages" '{"tag":-1}'
expect_error 400 MB_EINVAL
http POST "$U/v1/agents/dup/messages" '{"data":"a","json":{}}'
expect_error 400 MB_EINVAL
id=$(jget <(curl -fsS "$U/v1/agents/dup") 'j["id"]')
"${M[@]}" agent stop dup >/dev/null
gone() { ! "${M[@]}" agent info "$id" >/dev/null 2>&1; }
wait_until 10 gone || fail "dup did not stop"
http POST "$U/v1/agents/$id/messages" '{"data":"late"}'
expect_error 404 MB_ENOAGENT
expect_exit 1 "${M[@]}" agent send "$id" --data late
grep -q "no agent" "$T/err.txt" || fail "send to dead agent: $(cat "$T/err.txt")"
pass "messages to dead or unknown agents"

http GET "$U/v1/agents?status=sleeping"
expect_error 400 MB_EINVAL
http GET "$U/v1/agents?limit=0"
expect_error 400 MB_EINVAL
http POST "$U/v1/kinds" '{"path":"relative.so"}'
expect_error 400 MB_EINVAL
http POST "$U/v1/kinds" '{"path":"/nonexistent/lib.so"}'
expect_error 404 MB_ENOTFOUND
http POST "$U/v1/pools" '{"min":1}'
expect_error 400 MB_EINVAL
http POST "$U/v1/pools" '{"worker_kind":"echo","name":"pl","min":2,"max":3}'
[ "$HTTP_CODE" = 201 ] || fail "pool: $HTTP_CODE $(cat "$T/body")"
pool=$(jget "$T/body" 'j["id"]')
http GET "$U/v1/pools"
[ "$(jget "$T/body" 'j["agents"][0]["name"]')" = pl ] || fail "pool list: $(cat "$T/body")"
workers() {
    curl -fsS "$U/v1/agents?kind=echo" >"$T/w.json" &&
        jget "$T/w.json" "len([a for a in j['agents'] if a['parent'] == '$pool'])"
}
wait_until 10 is_eq 2 workers || fail "pool did not start 2 workers"
pass "list, kinds and pools errors; a pool runs"

expect_exit 2 "${M[@]}" agent
expect_exit 2 "${M[@]}" agent frobnicate
expect_exit 2 "${M[@]}" agent spawn
expect_exit 2 "${M[@]}" agent info
expect_exit 2 "${M[@]}" agent send x --tag nine
expect_exit 2 "${M[@]}" agent spawn echo --bogus
expect_exit 1 "${M[@]}" agent spawn nosuchkind
expect_exit 0 "${M[@]}" agent --help
expect_exit 0 "${M[@]}" kind --help
health_ok "$NODE_ADDR" || fail "node unhealthy after bad input"
stop_node "$NODE_PID"
pass "CLI exit codes; node healthy"
