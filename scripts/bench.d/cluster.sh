#!/usr/bin/env bash
# Suite `cluster`: a 3-node MABEAM cluster and a 3-member etcd (Debian
# etcd-server 3.4) on loopback, driven through their HTTP/JSON APIs by the
# same load generator (wrk + Lua: tests/bench/cluster/wrk_*.lua) at 1, 64
# and 256 connections; plus leader kill -> writes accepted again, and idle
# coordination traffic per MABEAM node. JSON lines on stdout. Each write
# line also gives the server CPU per write (user+system of the 3 processes,
# from /proc) for both systems: robust to the shared machine's load.
# etcd runs for the write rounds only; the later phases measure MABEAM alone.
# Run through scripts/bench.sh cluster ($MB_BENCH_BUILD = Release build).
# MB_CLUSTER_DURATION (s per wrk run, default 10), MB_CLUSTER_ROUNDS (wrk
# runs per system and connection count, alternating MABEAM and etcd;
# medians reported, default 3), MB_CLUSTER_WARMUP (s of unrecorded load on
# each system before the first round, default 3), MB_CLUSTER_KILLS (3).
set -euo pipefail
B=${MB_BENCH_BUILD:?run through scripts/bench.sh}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
DUR=${MB_CLUSTER_DURATION:-10}
KILLS=${MB_CLUSTER_KILLS:-3}
ROUNDS=${MB_CLUSTER_ROUNDS:-3}
WARMUP=${MB_CLUSTER_WARMUP:-3}
case "$ROUNDS:$WARMUP" in
*[!0-9:]* | 0:* | :*) echo "cluster: MB_CLUSTER_ROUNDS must be a whole number >= 1 and MB_CLUSTER_WARMUP >= 0 (got '$ROUNDS', '$WARMUP')" >&2; exit 2 ;;
esac
W=$(mktemp -d "${TMPDIR:-/tmp}/mb-bench-cluster-XXXXXX")
export MABEAM_CLUSTER_DIR=$W/mabeam MABEAM_CLUSTER_PORT=${MB_CLUSTER_PORT:-27700}
export MABEAMD=$B/node/mabeamd
ETCD_PIDS=()
stop_etcd() {
    for p in "${ETCD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${ETCD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ETCD_PIDS=()
}
cleanup() {
    "$HERE/scripts/cluster.sh" down >/dev/null 2>&1 || true
    stop_etcd
    # MB_CLUSTER_KEEP_LOGS=DIR: the nodes' logs and wrk's output outlive
    # the run there, to explain an outlier afterwards.
    if [ -n "${MB_CLUSTER_KEEP_LOGS:-}" ] && mkdir -p "$MB_CLUSTER_KEEP_LOGS"; then
        cp "$MABEAM_CLUSTER_DIR"/*.log "$W/wrk.log" "$MB_CLUSTER_KEEP_LOGS/" 2>/dev/null || true
        echo "cluster: logs kept in $MB_CLUSTER_KEEP_LOGS" >&2
    fi
    rm -rf "$W"
}
trap cleanup EXIT
# wrk's raw output is kept in $W/wrk.log while the suite runs.
now_ms() { date +%s%3N; }
emit() { # metric value unit [extra json]
    echo "{\"suite\":\"cluster\",\"metric\":\"$1\",\"value\":$2,\"unit\":\"$3\"${4:+,$4}}"
}
# wrk_run URL SCRIPT CONNS [SECONDS] -> "rps p50_ms p99_ms non2xx"
wrk_run() {
    local t=$(($3 < 2 ? 1 : 2))
    wrk -t"$t" -c"$3" -d"${4:-$DUR}s" --latency -s "$2" "$1" 2>&1 | tee -a "$W/wrk.log" | python3 -c '
import re, sys
t = sys.stdin.read()
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if m is None:
        sys.stderr.write("cannot parse wrk latency %r\n" % s)
        return -1
    v, u = m.groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", t, re.M).group(1))
p99 = ms(re.search(r"^\s*99%\s+(\S+)", t, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(rps, p50, p99, non2xx.group(1) if non2xx else 0)'
}

# cpu_ticks PID...: user+system clock ticks used so far by these processes
# (a load-independent cost figure on a shared machine).
cpu_ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

if command -v etcd >/dev/null && command -v wrk >/dev/null; then
    echo "cluster: starting a 3-member etcd" >&2
    cl=""
    for i in 1 2 3; do cl="${cl:+$cl,}e$i=http://127.0.0.1:$((23800 + i))"; done
    for i in 1 2 3; do
        etcd --name "e$i" --data-dir "$W/etcd$i" \
            --listen-client-urls "http://127.0.0.1:$((23790 + i))" \
            --advertise-client-urls "http://127.0.0.1:$((23790 + i))" \
            --listen-peer-urls "http://127.0.0.1:$((23800 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((23800 + i))" \
            --initial-cluster "$cl" --initial-cluster-state new >"$W/etcd$i.log" 2>&1 &
        ETCD_PIDS+=("$!")
    done
    deadline=$(($(now_ms) + 30000))
    until curl -fsS -m 1 -XPOST http://127.0.0.1:23791/v3/kv/put -d '{"key":"YQ==","value":"YQ=="}' >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "etcd did not start" >&2; exit 1; }
        sleep 0.2
    done
    HAVE_ETCD=1
else
    echo "cluster: etcd or wrk missing; MABEAM figures only" >&2
    HAVE_ETCD=0
fi

echo "cluster: starting 3 mabeamd" >&2
"$HERE/scripts/cluster.sh" up 3 >&2
A=127.0.0.1:$((MABEAM_CLUSTER_PORT))
curl -fsS -XPOST "http://$A/v1/vars" -d '{"name":"bench","type":"float","min":0,"max":1,"value":0}' >/dev/null

MB_PIDS=$(cat "$MABEAM_CLUSTER_DIR"/n[123].pid)
# CPU per write: user+system time of the 3 server processes over the run
# divided by the writes done (DUR * rate), in microseconds.
us_per_write() { # ticks rps
    python3 -c "import sys; t,r,d,hz=map(float,sys.argv[1:]); print(round(t/hz*1e6/max(r*d,1),1))" "$1" "$2" "$DUR" "$HZ"
}
# median V...: the middle value (mean of the two middle ones for an even
# count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# Warm-up, not recorded: both systems have just started (segment files
# being preallocated, caches cold), which showed as a doubled 1-connection
# p50 in whichever run came first.
if [ "$WARMUP" -gt 0 ]; then
    echo "cluster: ${WARMUP} s warm-up on each system" >&2
    wrk_run "http://$A" "$HERE/tests/bench/cluster/wrk_mabeam.lua" 4 "$WARMUP" >/dev/null
    [ "$HAVE_ETCD" = 0 ] ||
        wrk_run "http://127.0.0.1:23791" "$HERE/tests/bench/cluster/wrk_etcd.lua" 4 "$WARMUP" >/dev/null
fi
# Each connection count runs ROUNDS times, MABEAM and etcd alternating, so
# that both meet the same moments of the shared machine's load; the figures
# are the medians over rounds, each round's are kept in "rounds".
for c in 1 64 256; do
    mr=() m50=() m99=() er=() e50=() e99=() rounds=()
    m_ticks=0 e_ticks=0 m_bad=0 e_bad=0
    for r in $(seq 1 "$ROUNDS"); do
        echo "cluster: $c connection(s), round $r of $ROUNDS" >&2
        t0=$(cpu_ticks $MB_PIDS)
        read -r a b d bad < <(wrk_run "http://$A" "$HERE/tests/bench/cluster/wrk_mabeam.lua" "$c")
        m_ticks=$((m_ticks + $(cpu_ticks $MB_PIDS) - t0))
        mr+=("$a") m50+=("$b") m99+=("$d")
        m_bad=$((m_bad + bad))
        round="\"writes_per_s\":$a,\"p50_ms\":$b,\"p99_ms\":$d"
        if [ "$HAVE_ETCD" = 1 ]; then
            t0=$(cpu_ticks "${ETCD_PIDS[@]}")
            read -r a b d bad < <(wrk_run "http://127.0.0.1:23791" "$HERE/tests/bench/cluster/wrk_etcd.lua" "$c")
            e_ticks=$((e_ticks + $(cpu_ticks "${ETCD_PIDS[@]}") - t0))
            er+=("$a") e50+=("$b") e99+=("$d")
            e_bad=$((e_bad + bad))
            round="$round,\"etcd_writes_per_s\":$a,\"etcd_p50_ms\":$b,\"etcd_p99_ms\":$d"
        fi
        rounds+=("{$round}")
    done
    m_rps=$(median "${mr[@]}")
    # CPU per write over all rounds: ticks / (DUR * the sum of the rates).
    m_cpu=$(us_per_write "$m_ticks" "$(python3 -c "import sys; print(sum(map(float, sys.argv[1:])))" "${mr[@]}")")
    extra="\"connections\":$c,\"p50_ms\":$(median "${m50[@]}"),\"p99_ms\":$(median "${m99[@]}"),\"errors\":$m_bad,\"cpu_us_per_write\":$m_cpu"
    if [ "$HAVE_ETCD" = 1 ]; then
        e_rps=$(median "${er[@]}")
        e_cpu=$(us_per_write "$e_ticks" "$(python3 -c "import sys; print(sum(map(float, sys.argv[1:])))" "${er[@]}")")
        extra="$extra,\"etcd_writes_per_s\":$e_rps,\"etcd_p50_ms\":$(median "${e50[@]}"),\"etcd_p99_ms\":$(median "${e99[@]}"),\"etcd_errors\":$e_bad,\"etcd_cpu_us_per_write\":$e_cpu,\"ratio\":$(python3 -c "print(round($m_rps/$e_rps,3))")"
    fi
    extra="$extra,\"rounds\":[$(IFS=,; echo "${rounds[*]}")]"
    emit "writes_per_s_c$c" "$m_rps" "writes/s" "$extra"
done
# etcd's figures are all taken. The phases below measure MABEAM alone:
# left running, the idle etcd cluster still used about 4 % of a core
# during a fan-out phase, beside the nodes on the same two cores.
[ "$HAVE_ETCD" = 0 ] || echo "cluster: stopping etcd (its write rounds are done)" >&2
stop_etcd

# Idle coordination traffic: TCP payload bytes sent by each mabeamd (sum of
# bytes_sent of its established sockets, from `ss -ti`: raft + mesh) over 10 s.
sent_bytes() {
    ss -tinpH state established 2>/dev/null | python3 -c '
import re, sys
pid = sys.argv[1]; tot = 0; mine = False
for line in sys.stdin:
    if not line.startswith(("\t", " ")):
        mine = ("pid=%s," % pid) in line
    elif mine:
        m = re.search(r"bytes_sent:(\d+)", line)
        tot += int(m.group(1)) if m else 0
print(tot)' "$1"
}
sleep 1
declare -A S0
for i in 1 2 3; do S0[$i]=$(sent_bytes "$(cat "$MABEAM_CLUSTER_DIR/n$i.pid")"); done
sleep 10
vals=()
for i in 1 2 3; do
    s1=$(sent_bytes "$(cat "$MABEAM_CLUSTER_DIR/n$i.pid")")
    vals+=($(((s1 - S0[$i]) / 10)))
done
max=$(printf '%s\n' "${vals[@]}" | sort -n | tail -1)
emit idle_bytes_sent_per_node_max "$max" "B/s" "\"nodes\":[$(IFS=,; echo "${vals[*]}")],\"target\":10240"

# Leader kill -> a write (on another node) accepted again.
times=()
for k in $(seq 1 "$KILLS"); do
    L=$(curl -fsS "http://$A/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
    O=$((L % 3 + 1))
    OA=127.0.0.1:$((MABEAM_CLUSTER_PORT + 10 * (O - 1)))
    t0=$(now_ms)
    "$HERE/scripts/cluster.sh" kill "$L"
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -m 10 -XPUT "http://$OA/v1/vars/bench" -d "{\"value\":0.5,\"request_id\":\"kill$k\"}")" = 200 ]; do
        [ $(($(now_ms) - t0)) -lt 30000 ] || break
    done
    times+=($(($(now_ms) - t0)))
    "$HERE/scripts/cluster.sh" restart "$L" >&2
    A=$OA
    deadline=$(($(now_ms) + 30000))
    until [ "$(curl -fsS "http://$A/v1/cluster" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(sum(1 for n in j["nodes"] if n.get("reachable") and n.get("leader_id")==j["leader_id"]))')" = 3 ]; do
        [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.2
    done
done
med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((${#times[@]} + 1) / 2))p")
emit failover_ms "$med" "ms" "\"runs\":[$(IFS=,; echo "${times[*]}")],\"target\":2000"

# Agents and watches: watch fan-out to 1,000 agents over the 3 nodes, then
# the idle cluster with those agents (CPU and traffic per node).
KIND_FANOUT=$B/tests/bench/cluster/libbench_kind_fanout.so
if [ -f "$KIND_FANOUT" ]; then
    hs="" ps=""
    for i in 1 2 3; do
        hs="${hs:+$hs,}127.0.0.1:$((MABEAM_CLUSTER_PORT + 10 * (i - 1)))"
        ps="${ps:+$ps,}$(cat "$MABEAM_CLUSTER_DIR/n$i.pid")"
    done
    python3 "$HERE/scripts/bench.d/cluster_agents.py" --http "$hs" --pids "$ps" \
        --kind "$(cd "$(dirname "$KIND_FANOUT")" && pwd)/$(basename "$KIND_FANOUT")" \
        --agents "${MB_CLUSTER_AGENTS:-1000}" --changes "${MB_CLUSTER_CHANGES:-300}" \
        --idle "${MB_CLUSTER_IDLE_S:-30}"
else
    echo "cluster: $KIND_FANOUT not built; agents part skipped" >&2
fi
