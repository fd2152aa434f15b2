#!/usr/bin/env bash
# Self-test of the netns harness (tests/partition/netns.sh): builds a 5-node
# run, checks that nodes reach each other over TCP, that each network nemesis
# cuts exactly the links it should, that heal restores them, and that
# teardown leaves no namespace behind. Uses small TCP listeners, not mabeamd.
# Exit 77 (CTest skip) without root or network namespaces.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
source "$here/netns.sh"
mbp_require_root || exit 77

want=$((200 + $$ % 50))
# A leftover of a run killed before its teardown holds the wanted number
# (made here on purpose): setup must claim another one.
stale=""
if ip netns add "mbp-$want-br" 2>/dev/null; then stale="mbp-$want-br"; fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/mbp-selftest-XXXXXX")
listeners=()
failures=0

cleanup() {
    local p
    for p in "${listeners[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    mbp_teardown
    [ -z "$stale" ] || ip netns del "$stale" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# Can node a open a TCP connection to node b's listener (port 7000)?
can_connect() {
    mbp_exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(0.3)
try:
    s.connect((sys.argv[1], 7000)); sys.exit(0)
except OSError:
    sys.exit(1)' "$(mbp_addr "$2")"
}

# Print the nodes whose listener node a reaches (all probes in parallel).
reachable_from() {
    local targets="" b
    for b in $(seq 1 "$MBP_N"); do targets="$targets $b=$(mbp_addr "$b")"; done
    mbp_exec "$1" python3 -c '
import socket, sys, threading
res = {}
def probe(node, addr):
    s = socket.socket(); s.settimeout(0.5)
    try:
        s.connect((addr, 7000)); res[node] = True
    except OSError:
        res[node] = False
    finally:
        s.close()
ts = [threading.Thread(target=probe, args=t.split("=")) for t in sys.argv[1:]]
[t.start() for t in ts]; [t.join() for t in ts]
print(" ".join(sorted(n for n, ok in res.items() if ok)))' $targets
}

# expect_links "1-2 1-3 ..." : exactly these unordered pairs are connected.
expect_links() {
    local want=" $1 " a b pair got
    for a in $(seq 1 "$MBP_N"); do
        got=" $(reachable_from "$a") "
        # A loaded machine may miss a 0.5 s connect: re-probe once before
        # calling an expected link down.
        for b in $(seq 1 "$MBP_N"); do
            [ "$a" = "$b" ] && continue
            if [ "$a" -lt "$b" ]; then pair="$a-$b"; else pair="$b-$a"; fi
            if [[ "$want" == *" $pair "* && "$got" != *" $b "* ]]; then
                got=" $(reachable_from "$a") "
                break
            fi
        done
        for b in $(seq 1 "$MBP_N"); do
            [ "$a" = "$b" ] && continue
            if [ "$a" -lt "$b" ]; then pair="$a-$b"; else pair="$b-$a"; fi
            if [[ "$want" == *" $pair "* ]]; then
                [[ "$got" == *" $b "* ]] || fail "$2: $a cannot reach $b"
            else
                [[ "$got" == *" $b "* ]] && fail "$2: $a still reaches $b"
            fi
        done
    done
}

all_links() {
    local a b out=""
    for a in $(seq 1 "$MBP_N"); do
        for b in $(seq $((a + 1)) "$MBP_N"); do out="$out $a-$b"; done
    done
    echo "$out"
}

mbp_setup "$want" 5 "$dir" || { fail "setup"; exit 1; }
run=$MBP_RUN
[ "$run" != "$want" ] || fail "setup used run $want, held by a leftover namespace"
for i in 1 2 3 4 5; do
    # ip netns exec execs python3 itself, so $! is the listener's own pid.
    ip netns exec "$(mbp_ns "$i")" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()' "$(mbp_addr "$i")" &
    listeners+=($!)
done
# Wait (bounded) until every listener accepts.
for i in 1 2 3 4 5; do
    ok=0
    for _ in $(seq 1 100); do
        if can_connect 1 "$i" || [ "$i" = 1 ]; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || fail "listener $i never came up"
done

expect_links "$(all_links)" "initial"
mbp_partition_halves
expect_links "1-2 3-4 3-5 4-5" "halves"
mbp_heal
expect_links "$(all_links)" "heal after halves"
mbp_isolate 3
expect_links "1-2 1-4 1-5 2-4 2-5 4-5" "isolate 3"
mbp_heal
mbp_bridge
expect_links "1-2 1-3 2-3 3-4 3-5 4-5" "bridge"
mbp_heal
mbp_majority_ring
expect_links "1-2 2-3 3-4 4-5 1-5" "majority ring"
mbp_heal
expect_links "$(all_links)" "final heal"

# Process nemeses on real mabeamd processes (first argument: the binary).
# Answers come from the client namespace, as the workload's do.
health() { mbp_http_get "$1" /v1/health 1 >/dev/null; }
wait_health() {
    local _
    for _ in $(seq 1 100); do health "$1" && return 0; sleep 0.1; done # poll pacing
    return 1
}
if [ -n "${1:-}" ] && [ -x "$1" ]; then
    MBP_MABEAMD=$1
    mbp_start_node 1
    wait_health 1 || fail "mabeamd 1 never answered"
    mbp_pause 1
    health 1 && fail "paused node still answers"
    mbp_resume 1
    wait_health 1 || fail "resumed node does not answer"
    mbp_kill 1
    health 1 && fail "killed node still answers"
    [ -f "$dir/node-1.pid" ] && fail "pid file left after kill"
    mbp_restart 1
    wait_health 1 || fail "restarted node does not answer"
    mbp_isolate 1
    health 1 || fail "isolating a node must not cut it off from the clients"
    mbp_heal
else
    echo "test_netns: no mabeamd given, process nemeses not exercised" >&2
fi

[ "$(grep -c . "$MBP_NEMESIS_LOG")" -ge 9 ] || fail "nemesis log too short"
awk '$1 !~ /^[0-9]+$/ { exit 1 }' "$MBP_NEMESIS_LOG" || fail "nemesis log lines need a timestamp"

for p in "${listeners[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
listeners=()
mbp_teardown
if ip netns list | grep -q "^mbp-$run-"; then fail "namespaces left after teardown"; fi

if [ "$failures" -gt 0 ]; then
    echo "test_netns: $failures failure(s)" >&2
    exit 1
fi
echo "test_netns: ok"
