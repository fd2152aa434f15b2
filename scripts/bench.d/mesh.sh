#!/usr/bin/env bash
# Suite `mesh`: idle coordination traffic per node in a 3-node mesh (default
# heartbeat timings), RPC round-trip latency, failure-detection time of a
# closed node, and agent-message throughput.
# Run through scripts/bench.sh mesh (which builds $MB_BENCH_BUILD).
# MB_MESH_WINDOW_S / MB_MESH_ROUNDS change the idle measurement windows.
set -euo pipefail
bin="${MB_BENCH_BUILD:?run through scripts/bench.sh}/tests/bench/cluster/bench_mesh"
echo "mesh: idle traffic ${MB_MESH_ROUNDS:-5} x ${MB_MESH_WINDOW_S:-10} s, RPC, detection, agent messages" >&2
"$bin" "${MB_MESH_WINDOW_S:-10}" "${MB_MESH_ROUNDS:-5}"
