#!/usr/bin/env bash
# Suite `failover`: kill -9 of a node running 1,000 cluster agents -> all
# of them running on the survivors from their replicated checkpoints, and
# drain of a node with 1,000 agents (tests/bench/failover/failover_bench.py
# on a 3-node cluster from scripts/cluster.sh). Two configurations: the
# defaults (failure_timeout 5 s) and failure_timeout 800 ms (the mesh's own
# default detector timing). JSON lines on stdout, progress on stderr.
# MB_FAILOVER_RUNS (default 5 per configuration), MB_FAILOVER_AGENTS (1000).
set -euo pipefail
B=${MB_BENCH_BUILD:?run through scripts/bench.sh}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/mb-bench-failover-XXXXXX")
export MABEAM_CLUSTER_DIR=$W/mabeam MABEAM_CLUSTER_PORT=${MB_FAILOVER_PORT:-28700}
export MABEAMD=$B/node/mabeamd
trap 'MABEAM_CLUSTER_DIR=$W/mabeam "$HERE/scripts/cluster.sh" down >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

summarise() { # config failure_timeout_ms < runs.jsonl
    python3 -c '
import json, statistics, sys
cfg, ft = sys.argv[1], int(sys.argv[2])
runs = [json.loads(l) for l in sys.stdin if l.strip()]
def emit(metric, key, target):
    vals = [r[key] for r in runs]
    print(json.dumps({"suite": "failover", "metric": metric, "value": statistics.median(vals),
                      "unit": "ms", "config": cfg, "failure_timeout_ms": ft, "runs": vals,
                      **({"target": target} if target else {})}))
emit("kill9_1000_agents_to_all_running_p50", "running_ms", 1000)
emit("kill9_1000_agents_moved_p50", "moved_ms", None)
print(json.dumps({"suite": "failover", "metric": "moved_to_all_running_p50",
                  "value": statistics.median(r["running_ms"] - r["moved_ms"] for r in runs),
                  "unit": "ms", "config": cfg, "failure_timeout_ms": ft}))
emit("drain_1000_agents_p50", "drain_ms", 2000)
print(json.dumps({"suite": "failover", "metric": "sampled_counts_lost", "config": cfg,
                  "value": sum(r["lost"] for r in runs), "unit": "agents", "target": 0}))
' "$1" "$2"
}

echo "failover: default configuration" >&2
MB_FAILOVER_FLAGS="" python3 "$HERE/tests/bench/failover/failover_bench.py" >"$W/default.jsonl"
summarise default 5000 <"$W/default.jsonl"
echo "failover: failure_timeout=800ms" >&2
MB_FAILOVER_FLAGS="--failure_timeout=800ms" python3 "$HERE/tests/bench/failover/failover_bench.py" \
    >"$W/ft800.jsonl"
summarise ft800 800 <"$W/ft800.jsonl"

# --- votes ---
