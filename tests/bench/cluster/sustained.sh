#!/usr/bin/env bash
# tests/bench/cluster/sustained.sh LABEL MABEAMD [CONNS...]: a fresh 3-node
# cluster of the given mabeamd on loopback (ports 27800+, data under
# MB_SUSTAINED_DIR, default /tmp/mb-sustained), one float variable, PRE
# seconds (default 0) of unrecorded 64-connection writes, then POINTS
# (default 3) points of DUR seconds (default 10) at each connection count
# (default 64 256), writes sent to the leader. One JSON line per point:
# writes/s, the percentiles of wrk_mabeam_pct.lua, the disk's write rate
# (vmstat "bo", mean and highest 1 s sample, KB/s), the bytes each node
# wrote to storage per write (all of it, and RocksDB's flush and compaction
# threads alone: /proc io write_bytes over the point), the three nodes'
# CPU time per write, and the leader's event-log appends during the point
# (mb_event_log_append_seconds: count, total, and how many took longer
# than 2^22 and 2^24 ns, 4.2 and 16.8 ms).
# Extra mabeamd flags: MABEAM_CLUSTER_FLAGS.
# docs/BENCHMARKS.md, suite `cluster`, session 8: with PRE=0 and the flag
# alternated, the io_destroy A/B; with PRE=40, the sustained-load tail.
# Session 9: MB_SUSTAINED_DIR=/dev/shm/... puts the data on tmpfs.
set -euo pipefail
LABEL=${1:?label} BIN=${2:?mabeamd}
shift 2
CONNS=${*:-64 256}
PRE=${PRE:-0} POINTS=${POINTS:-3} DUR=${DUR:-10}
HERE=$(cd "$(dirname "$0")/../../.." && pwd)
D=${MB_SUSTAINED_DIR:-/tmp/mb-sustained}
. "$HERE/tests/bench/cluster/lib.sh"
trap 'cluster_down; rm -rf "$D"' EXIT
fresh_cluster "$D" "${MB_SUSTAINED_PORT:-27800}" "$BIN"
if [ "$PRE" -gt 0 ]; then
    wrk -t2 -c64 -d"${PRE}s" -s "$HERE/tests/bench/cluster/wrk_mabeam.lua" "http://$LA" >/dev/null
fi
# iosnap FILE: bytes the three nodes wrote to storage so far (/proc io
# write_bytes, counted where pages are dirtied or direct I/O submitted):
# "all" per process, "rocksdb" for RocksDB's flush and compaction threads;
# then their CPU ticks (utime+stime).
iosnap() {
    local all=0 rdb=0 ticks=0 p t
    for p in $(cat "$D"/n*.pid); do
        all=$((all + $(awk '/^write_bytes/ {print $2}' "/proc/$p/io")))
        ticks=$((ticks + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
        for t in /proc/"$p"/task/*; do
            case $(cat "$t/comm" 2>/dev/null) in
            rocksdb:*) rdb=$((rdb + $(awk '/^write_bytes/ {print $2}' "$t/io" 2>/dev/null || echo 0))) ;;
            esac
        done
    done
    echo "$all $rdb $ticks" >"$1"
}
for k in $(seq 1 "$POINTS"); do
    for c in $CONNS; do
        curl -fsS "http://$LA/metrics" >"$D/metrics.0"
        iosnap "$D/io.0"
        vmstat 1 "$((DUR + 1))" >"$D/vmstat" &
        vm=$!
        out=$(wrk -t$((c < 2 ? 1 : 2)) -c"$c" -d"${DUR}s" -s "$HERE/tests/bench/cluster/wrk_mabeam_pct.lua" "http://$LA")
        wait "$vm"
        iosnap "$D/io.1"
        curl -fsS "http://$LA/metrics" >"$D/metrics.1"
        python3 - "$LABEL" "$k" "$c" "$D/vmstat" "$D/metrics.0" \
            "$D/metrics.1" "$D/io.0" "$D/io.1" <<PY
import json, os, re, sys
label, k, c, vmf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def appends(f):
    h = {}
    for l in open(f):
        m = re.match(r'mb_event_log_append_seconds_(bucket\{le="([^"]+)"\}|sum|count) (\S+)', l)
        if m:
            h[m.group(2) or m.group(1)] = float(m.group(3))
    return h
a0, a1 = appends(sys.argv[5]), appends(sys.argv[6])
d = dict((k, a1[k] - a0.get(k, 0)) for k in a1)
io = [b - a for a, b in zip(*(map(int, open(f).read().split()) for f in sys.argv[7:9]))]
over = lambda s: d["count"] - max((v for k, v in d.items() if k[0].isdigit() and float(k) <= s), default=0)
t = """$out"""
pct = dict((a, float(b)) for a, b in re.findall(r"(p[\d.]+|max)=([\d.]+)", t.split("PCT", 1)[1]))
bo = [int(l.split()[9]) for l in open(vmf).read().splitlines()[3:] if l.split() and l.split()[0].isdigit()]
wps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
per_write = lambda b: round(b / 3 / max(wps * $DUR, 1))
print(json.dumps({"label": label, "point": k, "connections": c,
                  "writes_per_s": wps,
                  "latency_ms": pct, "disk_write_kb_s_mean": round(sum(bo) / max(len(bo), 1)),
                  "disk_write_kb_s_max": max(bo, default=0),
                  "node_bytes_written_per_write": per_write(io[0]),
                  "node_rocksdb_bg_bytes_per_write": per_write(io[1]),
                  "cpu_us_per_write": round(io[2] * 1e6 / os.sysconf("SC_CLK_TCK") / max(wps * $DUR, 1), 1),
                  "event_log_appends": int(d["count"]), "event_log_append_ms_total": round(d["sum"] * 1e3, 1),
                  "event_log_appends_over_4ms": int(over(0.0042)), "event_log_appends_over_16ms": int(over(0.0168))}))
PY
    done
done
