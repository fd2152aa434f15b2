#!/usr/bin/env bash
# tests/bench/cluster/flush_probe.sh MABEAMD: the write phases of
# `scripts/bench.sh cluster` on one fresh 3-node cluster (3 x 10 s at 1
# connection, then 3 x 10 s at 64, each followed by 10 s without load where
# the suite runs etcd), then the RocksDB flushes each node's event log
# started, with their times, so that a round's tail can be matched with the
# background work inside it (docs/BENCHMARKS.md, suite `cluster`, session
# 11). Ports 29800+, data under MB_PROBE_DIR (default /tmp/mb-flush-probe),
# removed at the end unless MB_PROBE_KEEP is set.
set -euo pipefail
BIN=${1:?mabeamd}
HERE=$(cd "$(dirname "$0")/../../.." && pwd)
D=${MB_PROBE_DIR:-/tmp/mb-flush-probe}
. "$HERE/tests/bench/cluster/lib.sh"
cleanup() {
    cluster_down
    [ -n "${MB_PROBE_KEEP:-}" ] || rm -rf "$D"
}
trap cleanup EXIT
fresh_cluster "$D" "${MB_PROBE_PORT:-29800}" "$BIN"
stamp() { date -u +%H:%M:%S.%3N; }
# round C N: 10 s of writes on C connections, then the suite's 10 s pause
# (a load pattern, not a wait for anything).
round() {
    local start end out
    start=$(stamp)
    out=$(wrk -t$(($1 < 2 ? 1 : 2)) -c"$1" -d10s -s "$HERE/tests/bench/cluster/wrk_mabeam_pct.lua" "http://$LA" |
        grep -oE 'p99=[0-9.]+|Requests/sec: *[0-9.]+' | tr -s ' \n' ' ')
    end=$(stamp)
    echo "round c$1 #$2 $start-$end $out"
    sleep 10
}
for r in 1 2 3; do round 1 "$r"; done
for r in 1 2 3; do round 64 "$r"; done
for i in 1 2 3; do
    echo "node $i: RocksDB flushes started (UTC, entries, bytes)"
    grep -h '"event": "flush_started"' "$D/n$i/db/LOG" | python3 -c '
import datetime, json, re, sys
for line in sys.stdin:
    m = re.search(r"EVENT_LOG_v1 (\{.*\})", line)
    if m:
        j = json.loads(m.group(1))
        t = datetime.datetime.utcfromtimestamp(j["time_micros"] / 1e6)
        print("  %s %s %s" % (t.strftime("%H:%M:%S.%f")[:12], j.get("num_entries"), j.get("total_data_size")))
'
done
