#!/usr/bin/env bash
# Partition-tolerance run (Jepsen-style): mabeamd nodes in network namespaces,
# a client workload recording a history, a seeded random nemesis schedule,
# then heal, convergence, and the checkers. Needs root; exits 77 (skip)
# without it. See docs/partition-testing.md.
#
#   scripts/partition.sh [--duration S] [--seed N] [--nodes 3|5] [--out DIR]
#                        [--build DIR] [--clients K] [--min-events N] [--agents A]
#                        [--keep-data]
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
agents=6
min_events=0
keep_data=0
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --min-events) min_events=$2; shift 2 ;;
    --agents) agents=$2; shift 2 ;;
    --keep-data) keep_data=1; shift ;;
    *) echo "usage: $0 [--duration S] [--seed N] [--nodes 3|5] [--out DIR] [--build DIR] [--clients K] [--min-events N] [--agents A] [--keep-data]" >&2; exit 3 ;;
    esac
done
case $nodes in 3 | 5) ;; *) echo "partition.sh: --nodes must be 3 or 5" >&2; exit 3 ;; esac
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt 10 ] || [ "$duration" -gt 3600 ]; then
    echo "partition.sh: --duration must be 10..3600 seconds" >&2
    exit 3
fi
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "partition.sh: --seed must be a number" >&2; exit 3; }
[[ "$min_events" =~ ^[0-9]+$ ]] || { echo "partition.sh: --min-events must be a number" >&2; exit 3; }
[[ "$agents" =~ ^[0-9]+$ ]] && [ "$agents" -le 1000 ] ||
    { echo "partition.sh: --agents must be 0..1000" >&2; exit 3; }
[[ "$clients" =~ ^[0-9]+$ ]] && [ "$clients" -ge 1 ] && [ "$clients" -le 99 ] ||
    { echo "partition.sh: --clients must be 1..99" >&2; exit 3; }
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
drop_data=0
cleanup() {
    [ -n "$workload_pid" ] && kill "$workload_pid" 2>/dev/null && wait "$workload_pid" 2>/dev/null
    mbp_teardown
    # The nodes' data directories (hundreds of MB) are kept only when the
    # run did not pass, or with --keep-data.
    [ "$drop_data" = 1 ] && rm -rf "$out"/data-*
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
    --duration "$duration" --seed "$seed" --agents "$agents" \
    --checkpoints-out "$out/checkpoints.jsonl" 2>"$out/workload.log" &
workload_pid=$!

# Nemesis schedule: a seeded random fault, held 0.5-3 s (long enough for
# elections: election_timeout is 500 ms), then heal and revive everything
# and stay quiet 0.3-1.3 s; repeated until the duration ends and at least
# --min-events faults happened (at most 1.5 x duration, at most 500
# events). The durations come from the same seeded stream as the faults.
RANDOM=$seed
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
events=0
end=$((SECONDS + duration))
hard_end=$((SECONDS + duration + duration / 2)) # --min-events may extend the schedule this far
while { [ $SECONDS -lt $end ] || [ $events -lt "$min_events" ]; } &&
    [ $SECONDS -lt $hard_end ] && [ $events -lt 500 ]; do
    mbp_random_nemesis
    events=$((events + 1))
    sleep_ms $((500 + RANDOM % 2500)) # schedule pacing: the fault lasts this long
    mbp_heal
    mbp_revive_all
    sleep_ms $((300 + RANDOM % 1000)) # schedule pacing: quiet time between faults
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

# Placed agents: each running exactly once, where the table says, after
# the heal; replicated checkpoint versions never going backwards.
agents_rc=-1
ckpt_rc=-1
if [ "$agents" -gt 0 ]; then
    ip netns exec "mbp-$MBP_RUN-c" python3 "$root/tests/partition/workload.py" agents-check \
        --nodes "$node_list" --out "$out/agents-check.json" --duration 60 2>>"$out/workload.log"
    agents_rc=$?
    "$lincheck" checkpoints "$out/checkpoints.jsonl" >"$out/checkpoints-check.json"
    ckpt_rc=$?
fi

"$lincheck" check "$out/history.jsonl" >"$out/lincheck.json"
lin=$?
"$lincheck" lost-writes "$out/history.jsonl" >"$out/lost-writes.json"
lost=$?
"$lincheck" events "${dumps[@]}" >"$out/events-check.json"
ev=$?
# The verdict: one summary of every check; the details stay in their files.
python3 - "$out" "$events" "$min_events" "$converged" "$lin" "$lost" "$ev" \
    "$seed" "$duration" "$nodes" "$agents" "$agents_rc" "$ckpt_rc" <<'PY'
import collections, json, sys
out = sys.argv[1]
(events, min_events, converged, lin, lost, ev, seed, duration, nodes, agents, agents_rc,
 ckpt_rc) = map(int, sys.argv[2:])
def load(name):
    try:
        with open(f"{out}/{name}") as f:
            return json.load(f)
    except Exception as e:
        return {"error": "%s: %s" % (name, e)}
RESULT = {0: "pass", 1: "fail", 2: "undecided"}
def result(rc):
    return RESULT.get(rc, "error")
kinds = collections.Counter()
with open(f"{out}/nemesis.log") as f:
    for line in f:
        parts = line.split()
        if len(parts) >= 2 and parts[1] not in ("setup", "heal", "resume", "start", "schedule-done"):
            kinds[parts[1]] += 1
ops = collections.Counter()
with open(f"{out}/history.jsonl") as f:
    for line in f:
        r = json.loads(line)
        if r.get("op") != "init":
            ops["%s %s" % (r["op"], r["outcome"])] += 1
lc = load("lincheck.json")
checks = {
    "linearizable": {"result": result(lin), "file": "lincheck.json",
                     "variables": {v.get("var"): v.get("linearizable")
                                   for v in lc.get("variables", [])} or lc},
    "no_lost_writes": dict(result=result(lost), file="lost-writes.json", **load("lost-writes.json")),
    "event_logs_agree": dict(result=result(ev), file="events-check.json",
                             **load("events-check.json")),
    "converged_after_heal": {"result": "pass" if converged else "fail"},
    "enough_nemesis_events": {"result": "pass" if events >= min_events else "fail",
                              "events": events, "min": min_events},
}
if agents > 0:
    checks["agents_run_once"] = dict(result=result(agents_rc), file="agents-check.json",
                                     **load("agents-check.json"))
    checks["checkpoint_versions_monotonic"] = dict(result=result(ckpt_rc),
                                                   file="checkpoints-check.json",
                                                   **load("checkpoints-check.json"))
else:
    checks["agents_run_once"] = {"result": "skipped", "reason": "no agents in this run"}
    checks["checkpoint_versions_monotonic"] = {"result": "skipped",
                                               "reason": "no agents in this run"}
results = [c["result"] for c in checks.values()]
if "fail" in results:
    code = 1
elif "undecided" in results or "error" in results:
    code = 2
else:
    code = 0
v = {"verdict": {0: "pass", 1: "fail", 2: "undecided"}[code], "exit": code,
     "seed": seed, "duration_s": duration, "nodes": nodes,
     "nemesis_events": events, "nemesis_by_kind": dict(sorted(kinds.items())),
     "ops": dict(sorted(ops.items())), "checks": checks}
with open(f"{out}/verdict.json", "w") as f:
    json.dump(v, f, indent=1)
    f.write("\n")
print("partition.sh: verdict %s: %d nemesis events %s; %s" % (
    v["verdict"], events, json.dumps(v["nemesis_by_kind"]),
    ", ".join("%s=%s" % (k, c["result"]) for k, c in checks.items())), file=sys.stderr)
sys.exit(code)
PY
verdict=$?
[ "$verdict" = 0 ] && [ "$keep_data" = 0 ] && drop_data=1
echo "partition.sh: details in $out (verdict.json, history.jsonl, nemesis.log, node-*.log)" >&2
exit $verdict
