#!/usr/bin/env bash
# scripts/cluster.sh itself: `up` returns once its own nodes form a healthy
# cluster. A second cluster started on the ports of a running one must fail
# at once with its node's log, not be taken for healthy because the first
# cluster answers on those ports; `down` stops only its own nodes.
# Also: the daemon's threads carry their names (mb-worker-N, ...).
. "$(dirname "$0")/../daemon/lib.sh"
SCRIPT=$(cd "$(dirname "$0")/../../.." && pwd)/scripts/cluster.sh
base=$(free_port)
a() { MABEAM_CLUSTER_DIR=$T/a MABEAM_CLUSTER_PORT=$base "$SCRIPT" "$@"; }
b() { MABEAM_CLUSTER_DIR=$T/b MABEAM_CLUSTER_PORT=$base "$SCRIPT" "$@"; }
trap 'a down >/dev/null 2>&1; b down >/dev/null 2>&1; cleanup' EXIT

a up 1 >"$T/a.out" 2>&1 || fail "up 1: $(cat "$T/a.out")"
a status >"$T/a.json" || fail "status"
[ "$(jget "$T/a.json" 'j["leader_id"]')" = 1 ] || fail "status: $(cat "$T/a.json")"
pass "up 1 and status"

# The daemon names its threads (docs/operations.md, Monitoring).
names=$(cat /proc/"$(cat "$T/a/n1.pid")"/task/*/comm)
for want in mb-worker-0 mb-timers mb-port-io mb-index-flush; do
    grep -qx "$want" <<<"$names" || fail "no thread named $want: $(echo $names)"
done
pass "thread names"

start=$(now_ms)
if b up 1 >"$T/b.out" 2>&1; then
    fail "a second cluster on the same ports came 'up': $(cat "$T/b.out")"
fi
grep -q "node 1 exited" "$T/b.out" || fail "up on busy ports: $(cat "$T/b.out")"
grep -q "Address in use" "$T/b.out" || fail "the node's reason is not shown: $(cat "$T/b.out")"
[ $(($(now_ms) - start)) -lt 30000 ] || fail "the failed up took $(($(now_ms) - start)) ms"
pass "up on ports held by another cluster fails at once, with the node's log"

a status >/dev/null || fail "the first cluster is gone"
a down || fail "down"
pid=$(cat "$T/a/n1.pid" 2>/dev/null || true)
[ -z "$pid" ] || fail "pid file left after down"
pass "down"
