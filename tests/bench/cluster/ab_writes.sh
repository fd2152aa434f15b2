#!/usr/bin/env bash
# tests/bench/cluster/ab_writes.sh LABEL MABEAMD [CONNS...]: one sitting of
# the write A/B comparisons in docs/BENCHMARKS.md (suite `cluster`, session
# 4): a fresh 3-node cluster of the given mabeamd on loopback (ports 27700+,
# data under /tmp/mb-ab), one float variable, then wrk (the suite's
# wrk_mabeam.lua, writes sent to the leader) for DUR seconds (default 6) at
# each connection count (default 64 256). One JSON line per count on
# stdout: writes/s, p50/p99 ms and the servers' CPU per write (user+system
# of the 3 processes from /proc). Extra mabeamd flags: MABEAM_CLUSTER_FLAGS.
# Alternate two binaries in one sitting and compare within it.
set -euo pipefail
LABEL=${1:?label} BIN=${2:?mabeamd}
shift 2
CONNS=${*:-64 256}
DUR=${DUR:-6}
HERE=$(cd "$(dirname "$0")/../../.." && pwd)
. "$HERE/tests/bench/cluster/lib.sh"
trap 'cluster_down; rm -rf /tmp/mb-ab' EXIT
fresh_cluster /tmp/mb-ab "${MB_AB_PORT:-27700}" "$BIN"
ticks() { local t=0 p; for p in $(cat /tmp/mb-ab/n?.pid); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
for c in $CONNS; do
    t0=$(ticks)
    out=$(wrk -t$((c < 2 ? 1 : 2)) -c"$c" -d"${DUR}s" --latency -s "$HERE/tests/bench/cluster/wrk_mabeam.lua" "http://$LA")
    t1=$(ticks)
    python3 - "$LABEL" "$c" "$DUR" "$((t1 - t0))" "$(getconf CLK_TCK)" <<PY
import json, re, sys
label, c, dur, ticks, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t = """$out"""
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)$", s).groups()
    return round(float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u], 3)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
print(json.dumps({"label": label, "connections": c, "writes_per_s": rps,
                  "p50_ms": ms(re.search(r"^\s*50%\s+(\S+)", t, re.M).group(1)),
                  "p99_ms": ms(re.search(r"^\s*99%\s+(\S+)", t, re.M).group(1)),
                  "cpu_us_per_write": round(ticks / hz * 1e6 / max(rps * dur, 1), 1)}))
PY
done
