#!/usr/bin/env bash
# Suite `failover`: kill -9 of a node running 1,000 cluster agents -> all
# of them running on the survivors from their replicated checkpoints, and
# drain of a node with 1,000 agents (tests/bench/failover/failover_bench.py
# on a 3-node cluster from scripts/cluster.sh), with the default
# configuration (heartbeat_interval 200 ms, failure_timeout 600 ms), plus
# idle CPU and traffic per node with the 2,000 agents (first run).
# JSON lines on stdout, progress on stderr. MB_FAILOVER_RUNS (default 5),
# MB_FAILOVER_AGENTS (1000 per node), MB_FAILOVER_IDLE_S (10; 0 = skip).
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
for r in runs[:1]:
    if "idle0_cpu_pct" in r:
        print(json.dumps({"suite": "failover", "metric": "idle_cpu_pct_per_node_max_no_agents",
                          "value": max(r["idle0_cpu_pct"]), "unit": "%",
                          "nodes": r["idle0_cpu_pct"], "config": cfg, "target": 1}))
        print(json.dumps({"suite": "failover", "metric": "idle_bytes_sent_per_node_max_no_agents",
                          "value": max(r["idle0_bytes_sent_per_s"]), "unit": "B/s",
                          "nodes": r["idle0_bytes_sent_per_s"], "config": cfg, "target": 10240}))
    if "idle_cpu_pct" in r:
        print(json.dumps({"suite": "failover", "metric": "idle_cpu_pct_per_node_max_with_agents",
                          "value": max(r["idle_cpu_pct"]), "unit": "%", "nodes": r["idle_cpu_pct"],
                          "agents": 2000, "config": cfg, "target": 1}))
        print(json.dumps({"suite": "failover", "metric": "idle_bytes_sent_per_node_max_with_agents",
                          "value": max(r["idle_bytes_sent_per_s"]), "unit": "B/s",
                          "nodes": r["idle_bytes_sent_per_s"], "agents": 2000, "config": cfg,
                          "target": 10240}))
' "$1" "$2"
}

echo "failover: default configuration" >&2
MB_FAILOVER_FLAGS="" python3 "$HERE/tests/bench/failover/failover_bench.py" >"$W/default.jsonl"
summarise default 600 <"$W/default.jsonl"

# --- votes ---
echo "failover: votes (1,000 voting agents over 3 nodes)" >&2
bash "$HERE/tests/bench/proposals/votes.sh"
