#!/bin/bash
# tests/bench/cluster/idle_ab.sh MABEAMD_A MABEAMD_B [ROUNDS]: idle cost of
# two mabeamd builds measured side by side (docs/BENCHMARKS.md, suite
# `cluster`, session 5): each round starts an idle 3-node cluster of each
# build at the same time (ports 29700+ and 29800+, data under /tmp), waits
# until every node is quiet (under 3 % CPU for two 1 s windows), then
# samples for 30 s each node's CPU (utime+stime of all threads, /proc) and
# its loop thread's wake-ups (voluntary context switches of the main
# thread). One JSON line per node and round on stdout. Both clusters see
# the same machine load, so compare within a round. Run from anywhere.
set -u
A=${1:?mabeamd A} B=${2:?mabeamd B} ROUNDS=${3:-3}
HERE=$(cd "$(dirname "$0")/../../.." && pwd)
down() { for v in a b; do MABEAM_CLUSTER_DIR=/tmp/mb-idle-$v "$HERE/scripts/cluster.sh" down >/dev/null 2>&1; done; }
trap 'down; rm -rf /tmp/mb-idle-a /tmp/mb-idle-b' EXIT
for round in $(seq 1 "$ROUNDS"); do
    down
    rm -rf /tmp/mb-idle-a /tmp/mb-idle-b
    MABEAM_CLUSTER_DIR=/tmp/mb-idle-a MABEAM_CLUSTER_PORT=29700 MABEAMD=$A "$HERE/scripts/cluster.sh" up 3 >&2 || exit 1
    MABEAM_CLUSTER_DIR=/tmp/mb-idle-b MABEAM_CLUSTER_PORT=29800 MABEAMD=$B "$HERE/scripts/cluster.sh" up 3 >&2 || exit 1
    python3 - "$HERE/scripts/bench.d" "$round" $(cat /tmp/mb-idle-a/n?.pid) $(cat /tmp/mb-idle-b/n?.pid) <<'PY'
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from cluster_agents import cpu_ticks, ctx_switches, wait_quiet
rnd, pids = int(sys.argv[2]), [int(x) for x in sys.argv[3:]]
if not wait_quiet(pids):  # start-up work (joins, placement) settled
    sys.exit("idle_ab: the nodes never went quiet in 60 s")
hz = os.sysconf("SC_CLK_TCK")
sample = lambda pid: (cpu_ticks(pid), ctx_switches(pid, main_only=True))
a = {p: sample(p) for p in pids}; t0 = time.time(); time.sleep(30); dt = time.time() - t0
b = {p: sample(p) for p in pids}
for i, p in enumerate(pids):
    print(json.dumps({"round": rnd, "build": "A" if i < 3 else "B", "node": i % 3 + 1,
                      "cpu_pct": round(100.0 * (b[p][0] - a[p][0]) / hz / dt, 3),
                      "loop_wakeups_per_s": round((b[p][1] - a[p][1]) / dt, 1)}))
PY
done
