#!/usr/bin/env bash
# Partition-tolerance run (Jepsen-style): mabeamd nodes in network namespaces,
# a client workload recording a history, a seeded random nemesis schedule,
# then heal, convergence, and the checkers. Needs root; exits 77 (skip)
# without it. See docs/partition-testing.md.
#
#   scripts/partition.sh [--duration S] [--seed N] [--nodes 3|5] [--out DIR]
#                        [--build DIR] [--clients K]
# Writes DIR/history.jsonl, DIR/nemesis.log, DIR/verdict.json (and node
# logs, event dumps). Exit 0 all checks pass, 1 a violation, 2 undecided
# (checker budget exhausted), 3 the run itself failed (cluster never ready).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
duration=120
seed=1
nodes=3
out=""
build="$root/build"
clients=6
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--seed N] [--nodes 3|5] [--out DIR] [--build DIR]" >&2; exit 3 ;;
    esac
done
case $nodes in 3 | 5) ;; *) echo "partition.sh: --nodes must be 3 or 5" >&2; exit 3 ;; esac
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt 10 ] || [ "$duration" -gt 3600 ]; then
    echo "partition.sh: --duration must be 10..3600 seconds" >&2
    exit 3
fi
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "partition.sh: --seed must be a number" >&2; exit 3; }
out=${out:-$root/partition-out/seed-$seed}

# shellcheck source=../tests/partition/netns.sh
source "$root/tests/partition/netns.sh"
mbp_require_root || exit 77
MBP_MABEAMD="$build/node/mabeamd"
lincheck="$build/tests/partition/lincheck/mb-lincheck"
for b in "$MBP_MABEAMD" "$lincheck"; do
    [ -x "$b" ] || { echo "partition.sh: $b not built (cmake --build $build)" >&2; exit 3; }
done
command -v curl >/dev/null || { echo "partition.sh: needs curl" >&2; exit 3; }

rm -rf "$out"
mkdir -p "$out" || exit 3
out=$(cd "$out" && pwd)
workload_pid=""
cleanup() {
    [ -n "$workload_pid" ] && kill "$workload_pid" 2>/dev/null && wait "$workload_pid" 2>/dev/null
    mbp_teardown
}
trap cleanup EXIT
trap 'exit 3' INT TERM

mbp_setup $((1 + (seed + $$) % 199)) "$nodes" "$out" || exit 3
for i in $(seq 1 "$nodes"); do mbp_start_node "$i"; done

# Wait (bounded) for a leader.
wait_leader() {
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        mbp_leader >/dev/null && return 0
        sleep 0.5 # poll pacing
    done
    return 1
}
if ! wait_leader 60; then
    echo "partition.sh: no leader within 60 s (does this mabeamd serve /v1/cluster?)" >&2
    exit 3
fi

node_list=""
for i in $(seq 1 "$nodes"); do node_list="$node_list${node_list:+,}$(mbp_addr "$i"):$MBP_HTTP_PORT"; done
ip netns exec "mbp-$MBP_RUN-c" python3 "$root/tests/partition/workload.py" run \
    --nodes "$node_list" --out "$out/history.jsonl" --clients "$clients" \
    --duration "$duration" --seed "$seed" 2>"$out/workload.log" &
workload_pid=$!

# Nemesis schedule: at least 20 events in the run, each followed by a heal
# and revival; bounded by the duration and by a maximum event count.
RANDOM=$seed
interval_ms=$((duration * 1000 / 50))
[ $interval_ms -lt 300 ] && interval_ms=300
pace="$((interval_ms / 1000)).$(printf '%03d' $((interval_ms % 1000)))"
events=0
end=$((SECONDS + duration))
while [ $SECONDS -lt $end ] && [ $events -lt 500 ]; do
    mbp_random_nemesis
    events=$((events + 1))
    sleep "$pace" # schedule pacing: the fault lasts this long
    mbp_heal
    mbp_revive_all
    sleep "$pace"
done
mbp_heal
mbp_revive_all
mbp_log schedule-done "events=$events"

wait "$workload_pid"
workload_pid=""
converged=0
if ip netns exec "mbp-$MBP_RUN-c" python3 "$root/tests/partition/workload.py" wait-converged \
    --nodes "$node_list" --duration 60 2>>"$out/workload.log"; then
    converged=1
else
    echo "partition.sh: cluster did not converge within 60 s of healing" >&2
fi
ip netns exec "mbp-$MBP_RUN-c" python3 "$root/tests/partition/workload.py" final-reads \
    --nodes "$node_list" --out "$out/history.jsonl" 2>>"$out/workload.log"

dumps=()
for i in $(seq 1 "$nodes"); do
    ip netns exec "mbp-$MBP_RUN-c" python3 "$root/tests/partition/workload.py" dump-events \
        --nodes "$(mbp_addr "$i"):$MBP_HTTP_PORT" --out "$out/events-$i.json" 2>>"$out/workload.log"
    dumps+=("$out/events-$i.json")
done

"$lincheck" check "$out/history.jsonl" >"$out/lincheck.json"
lin=$?
"$lincheck" lost-writes "$out/history.jsonl" >"$out/lost-writes.json"
lost=$?
"$lincheck" events "${dumps[@]}" >"$out/events-check.json"
ev=$?
python3 - "$out" "$events" "$lin" "$lost" "$ev" <<'PY'
import json, sys
out, events, lin, lost, ev = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
def load(name):
    try:
        return json.load(open(f"{out}/{name}"))
    except Exception as e:
        return {"error": str(e)}
v = {"nemesis_events": events,
     "linearizability": load("lincheck.json"), "lost_writes": load("lost-writes.json"),
     "event_logs": load("events-check.json"),
     "exit_codes": {"check": lin, "lost_writes": lost, "events": ev}}
json.dump(v, open(f"{out}/verdict.json", "w"), indent=1)
PY
echo "partition.sh: $events nemesis events; check=$lin lost-writes=$lost events=$ev; see $out/verdict.json" >&2
for rc in $lin $lost $ev; do [ "$rc" = 1 ] && exit 1; done
for rc in $lin $lost $ev; do [ "$rc" != 0 ] && exit 2; done
exit 0
