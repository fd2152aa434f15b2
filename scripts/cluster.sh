#!/usr/bin/env bash
# scripts/cluster.sh: run a local MABEAM cluster of N mabeamd on loopback.
#
#   scripts/cluster.sh up N          start nodes 1..N, return once all joined
#                                    and a leader is elected (deadline 60 s)
#   scripts/cluster.sh down          SIGTERM every node, wait for them to exit
#   scripts/cluster.sh kill NODE     SIGKILL node NODE (1..N)
#   scripts/cluster.sh restart NODE  start node NODE again on its data dir
#   scripts/cluster.sh status        GET /v1/cluster from a live node
#
# Environment: MABEAM_CLUSTER_DIR (default ./mabeam-cluster) holds one data
# directory, log and pid file per node; MABEAM_CLUSTER_PORT (default 17700)
# is the first port: node i uses PORT+10*(i-1) (HTTP), +1 (mesh), +2 (raft).
# MABEAMD (default: build/node/mabeamd, else mabeamd on PATH). Extra
# mabeamd flags for every node: MABEAM_CLUSTER_FLAGS. Each node runs
# cores/N agent workers (at least 1) unless those flags or
# MABEAM_AGENT_WORKERS set agent_workers; with N > 1 the idle workers do
# not spin (agent_spin_us=0) unless those flags or MABEAM_AGENT_SPIN_US
# set agent_spin_us.
set -euo pipefail

DIR=${MABEAM_CLUSTER_DIR:-./mabeam-cluster}
BASE=${MABEAM_CLUSTER_PORT:-17700}
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MABEAMD:-}" ]; then
    if [ -x "$HERE/build/node/mabeamd" ]; then MABEAMD=$HERE/build/node/mabeamd; else MABEAMD=mabeamd; fi
fi

die() { echo "cluster.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
http_port() { echo $((BASE + 10 * ($1 - 1))); }
mesh_port() { echo $((BASE + 10 * ($1 - 1) + 1)); }
raft_port() { echo $((BASE + 10 * ($1 - 1) + 2)); }
# running PID: the process exists and has not exited. A node started by an
# earlier `up` is an orphan that PID 1 reaps; until it does, the exited
# process is a zombie (state Z) that `kill -0` still finds, but it has
# already closed its sockets and files. Some inits reap late (this VM's took
# up to 2 s), which `kill` would otherwise add to every failover it times.
# The main thread turns Z before the other threads have exited, though: one
# still in an fsync keeps the files (RocksDB's LOCK) and sockets open, so a
# zombie counts as exited only once it is the last thread of its process.
running() {
    local s
    s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$s" ] || return 1
    [ "${s%% *}" != Z ] && return 0
    [ "$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)" -gt 1 ] 2>/dev/null
}
alive() { [ -f "$DIR/n$1.pid" ] && running "$(cat "$DIR/n$1.pid")"; }

# The nodes of one host share its cores: each node gets its share of agent
# worker threads (at least one) rather than one per core, unless
# MABEAM_CLUSTER_FLAGS or MABEAM_AGENT_WORKERS choose. With one per core,
# N nodes ran N times as many workers as cores; at a change seen by agents
# on every node they all woke together and queued for the cores (the
# cluster suite's watch fan-out, docs/BENCHMARKS.md, session 13).
workers_flag() {
    case " ${MABEAM_CLUSTER_FLAGS:-} " in *agent_workers* | *agent-workers*) return 0 ;; esac
    [ -z "${MABEAM_AGENT_WORKERS:-}" ] || return 0
    local cores n
    cores=$(nproc 2>/dev/null || echo 1)
    n=$(cat "$DIR/size")
    echo "--agent_workers=$((cores / n > 0 ? cores / n : 1))"
}

# Nor do their idle workers spin: a worker that spins after its queue
# empties holds a core that another node's control loop or worker waits
# for (a change seen by agents on every node wakes them all at once).
# Fresh 3-node clusters on 2 cores, 12 alternating pairs: CPU per
# delivery lower in 10, fan-out p99 median 4.00 against 4.52 ms
# (docs/BENCHMARKS.md, session 17).
spin_flag() {
    case " ${MABEAM_CLUSTER_FLAGS:-} " in *agent_spin_us* | *agent-spin-us*) return 0 ;; esac
    [ -z "${MABEAM_AGENT_SPIN_US:-}" ] || return 0
    [ "$(cat "$DIR/size")" -gt 1 ] || return 0
    echo "--agent_spin_us=0"
}

start_one() {
    local i=$1 seeds=""
    [ -f "$DIR/secret" ] || die "no cluster in $DIR (run: up N)"
    if [ "$i" != 1 ] || [ -f "$DIR/n1.joined" ]; then
        local n
        for n in $(seq 1 "$(cat "$DIR/size")"); do
            [ "$n" = "$i" ] && continue
            seeds="${seeds:+$seeds,}127.0.0.1:$(mesh_port "$n")"
        done
    fi
    mkdir -p "$DIR/n$i"
    # Node 1 bootstraps on its first start only; later starts reuse state.
    # shellcheck disable=SC2086
    "$MABEAMD" --node_id="$i" --data_dir="$DIR/n$i" \
        --http_address="127.0.0.1:$(http_port "$i")" \
        --mesh_address="127.0.0.1:$(mesh_port "$i")" \
        --raft_address="127.0.0.1:$(raft_port "$i")" \
        ${seeds:+--seeds="$seeds"} --cluster_secret="$(cat "$DIR/secret")" \
        $(workers_flag) $(spin_flag) ${MABEAM_CLUSTER_FLAGS:-} >>"$DIR/n$i.log" 2>&1 &
    echo $! >"$DIR/n$i.pid"
}

cluster_json() {
    local i
    for i in $(seq 1 "$(cat "$DIR/size")"); do
        alive "$i" || continue
        curl -fsS -m 2 "http://127.0.0.1:$(http_port "$i")/v1/cluster" 2>/dev/null && return 0
    done
    return 1
}

# healthy EXPECTED: EXPECTED nodes in the table, all reachable, one leader.
healthy() {
    local j
    j=$(cluster_json) || return 1
    python3 -c '
import json, sys
j = json.loads(sys.argv[1]); want = int(sys.argv[2])
nodes = [x for x in j["nodes"] if x.get("role") in ("voter", "standby")]
ok = len(nodes) >= want and all(x.get("reachable") for x in nodes) and j["leader_id"] != 0
ok = ok and all(x.get("leader_id") == j["leader_id"] for x in nodes)
sys.exit(0 if ok else 1)' "$j" "$1"
}

# owned I: node I's HTTP port is served by the process this script started
# (not by a leftover of another cluster on the same ports).
owned() {
    local pid
    pid=$(curl -fsS -m 2 "http://127.0.0.1:$(http_port "$1")/v1/status" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null) || return 1
    [ "$pid" = "$(cat "$DIR/n$1.pid" 2>/dev/null)" ]
}

# wait_healthy N [S]: nodes 1..N are running, serve their own ports and form
# a healthy cluster within S seconds (60); a node that exits fails at once.
wait_healthy() {
    local want=$1 deadline=$(($(now_ms) + ${2:-60} * 1000)) i ok
    for (( ; ; )); do
        ok=1
        for i in $(seq 1 "$want"); do
            alive "$i" || die "node $i exited; last lines of $DIR/n$i.log:
$(tail -n 5 "$DIR/n$i.log" 2>/dev/null)"
        done
        if healthy "$want"; then
            for i in $(seq 1 "$want"); do owned "$i" || ok=0; done
            [ "$ok" = 1 ] && return 0
        fi
        [ "$(now_ms)" -lt "$deadline" ] || die "cluster not healthy within ${2:-60} s (logs in $DIR)"
        sleep 0.1
    done
}

cmd=${1:-}
case "$cmd" in
up)
    n=${2:?usage: cluster.sh up N}
    [ "$n" -ge 1 ] || die "N must be >= 1"
    mkdir -p "$DIR"
    for i in $(seq 1 "$n"); do alive "$i" && die "node $i is already running"; done
    echo "$n" >"$DIR/size"
    [ -f "$DIR/secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/secret"
    start_one 1
    wait_healthy 1
    touch "$DIR/n1.joined"
    for i in $(seq 2 "$n"); do start_one "$i"; done
    wait_healthy "$n"
    echo "cluster of $n up; node i serves http://127.0.0.1:\$(($BASE+10*(i-1)))"
    ;;
down)
    [ -f "$DIR/size" ] || exit 0
    pids=()
    for i in $(seq 1 "$(cat "$DIR/size")"); do
        if alive "$i"; then
            pids+=("$(cat "$DIR/n$i.pid")")
            kill -TERM "$(cat "$DIR/n$i.pid")"
        fi
    done
    deadline=$(($(now_ms) + 30000))
    for p in "${pids[@]}"; do
        while running "$p"; do
            [ "$(now_ms)" -lt "$deadline" ] || { kill -KILL "$p" 2>/dev/null || true; }
            sleep 0.05
        done
    done
    rm -f "$DIR"/n*.pid
    ;;
kill)
    i=${2:?usage: cluster.sh kill NODE}
    alive "$i" || die "node $i is not running"
    p=$(cat "$DIR/n$i.pid")
    kill -KILL "$p"
    while running "$p"; do sleep 0.02; done
    rm -f "$DIR/n$i.pid"
    ;;
restart)
    i=${2:?usage: cluster.sh restart NODE}
    alive "$i" && die "node $i is running"
    start_one "$i"
    deadline=$(($(now_ms) + 30000))
    until curl -fsS -m 1 "http://127.0.0.1:$(http_port "$i")/v1/health" >/dev/null 2>&1; do
        alive "$i" || die "node $i exited; last lines of $DIR/n$i.log:
$(tail -n 5 "$DIR/n$i.log" 2>/dev/null)"
        [ "$(now_ms)" -lt "$deadline" ] || die "node $i did not come up"
        sleep 0.05
    done
    ;;
status)
    cluster_json | python3 -m json.tool
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] && exit 2
    die "unknown command '$cmd'"
    ;;
esac
