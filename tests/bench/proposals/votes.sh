#!/usr/bin/env bash
# Suite `failover`, block "votes" (proposals piece), run by
# scripts/bench.d/failover.sh after its "# --- votes ---" marker: a
# consensus decision among 1,000 voting agents over 3 nodes, open ->
# decision committed, median of MB_VOTES_RUNS (default 30) runs after 3
# warm-up runs. Starts its own 3-node cluster (scripts/cluster.sh) on free
# ports, runs tests/bench/proposals/bench_proposals, prints its JSON lines
# (suite "failover"). $MB_BENCH_BUILD = the Release build with MB_BENCH=ON.
set -euo pipefail
B=${MB_BENCH_BUILD:?run through scripts/bench.sh}
HERE=$(cd "$(dirname "$0")/../../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/mb-bench-votes-XXXXXX")
# A base port whose 3x3 ports are all free (other clusters may run here).
free_base() {
    python3 -c '
import random, socket
for _ in range(200):
    b = random.randrange(30000, 60000, 10)
    try:
        socks = []
        for i in range(3):
            for k in range(3):
                s = socket.socket(); s.bind(("127.0.0.1", b + 10 * i + k)); socks.append(s)
        print(b); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()'
}
export MABEAM_CLUSTER_DIR=$W/mabeam MABEAM_CLUSTER_PORT=${MB_VOTES_PORT:-$(free_base)}
export MABEAMD=$B/node/mabeamd
cleanup() {
    "$HERE/scripts/cluster.sh" down >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

# --- votes ---
echo "failover/votes: starting 3 mabeamd" >&2
"$HERE/scripts/cluster.sh" up 3 >&2
P=$MABEAM_CLUSTER_PORT
"$B/tests/bench/proposals/bench_proposals" \
    --nodes "127.0.0.1:$P,127.0.0.1:$((P + 10)),127.0.0.1:$((P + 20))" \
    --voters "${MB_VOTES_VOTERS:-1000}" --runs "${MB_VOTES_RUNS:-30}" --warmup 3
