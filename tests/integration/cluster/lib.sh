# Helpers for the cluster integration tests: N real mabeamd on 127.0.0.1
# with free ports, joined into one cluster; every wait has a deadline.
# Builds on ../daemon/lib.sh (temporary directory, cleanup, http, jget).
. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"

SECRET=0123456789abcdef0123456789abcdef
# Timeouts for the tests: short write timeout keeps no-quorum tests quick.
CLUSTER_FLAGS=(--write_timeout=3s --log_level=debug)
declare -A HTTP MESH RAFT PID UP

# pick_ports I: choose free HTTP, mesh and raft ports for node I.
pick_ports() {
    HTTP[$1]="127.0.0.1:$(free_port)"
    MESH[$1]="127.0.0.1:$(free_port)"
    RAFT[$1]="127.0.0.1:$(free_port)"
}

# launch I [flags...]: start node I (its ports are chosen once and kept).
launch() {
    local i=$1 try
    shift
    [ -n "${HTTP[$i]:-}" ] || pick_ports "$i"
    # Ports no node has started on yet (chosen here or by start_cluster)
    # can be taken by a test running beside this one between free_port and
    # the bind: then the node exits at once, and a new set of ports is
    # tried (at most 3 times). A node that once answered keeps its ports.
    for try in 1 2 3; do
        launch_once "$i" "$@"
        wait_until 30 health_or_dead "$i" || fail "node $i did not answer /v1/health"
        if health_ok "${HTTP[$i]}"; then
            UP[$i]=1
            return 0
        fi
        [ -z "${UP[$i]:-}" ] || break
        echo "node $i exited at start (try $try); choosing new ports" >&2
        rm -rf "${T:?}/n$i" # only what the failed start wrote
        pick_ports "$i"
    done
    fail "node $i did not answer /v1/health"
}

# health_or_dead I: node I answers /v1/health, or its process has ended.
health_or_dead() {
    health_ok "${HTTP[$1]}" || ! kill -0 "${PID[$1]}" 2>/dev/null
}

# launch_once I [flags...]: start node I on its current ports (no wait).
launch_once() {
    local i=$1
    shift
    local seeds=()
    if [ "$i" != 1 ]; then
        local s="" k
        for k in "${!MESH[@]}"; do
            [ "$k" = "$i" ] && continue
            s="${s:+$s,}${MESH[$k]}"
        done
        [ -n "$s" ] && seeds=(--seeds="$s")
    fi
    "$MABEAMD" --node_id="$i" --data_dir="$T/n$i" --http_address="${HTTP[$i]}" \
        --mesh_address="${MESH[$i]}" --raft_address="${RAFT[$i]}" \
        --cluster_secret="$SECRET" "${seeds[@]}" "${CLUSTER_FLAGS[@]}" "$@" \
        >>"$T/n$i.log" 2>&1 &
    PID[$i]=$!
    PIDS+=("$!")
}

# members_ok ADDR N: the node at ADDR sees N members, all reachable, and
# every member agrees on one leader.
members_ok() {
    curl -fsS -m 3 "http://$1/v1/cluster" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin); want = int(sys.argv[1])
m = [x for x in j["nodes"] if x.get("role") in ("voter", "standby")]
ok = len(m) == want and j["leader_id"] != 0 and all(x.get("reachable") for x in m)
ok = ok and all(x.get("leader_id") == j["leader_id"] for x in m)
sys.exit(0 if ok else 1)' "$2"
}

# start_cluster N [flags...]: node 1 bootstraps, nodes 2..N join.
start_cluster() {
    local n=$1 i
    shift
    launch 1 "$@"
    wait_until 30 members_ok "${HTTP[1]}" 1 || fail "node 1 did not become leader"
    for i in $(seq 2 "$n"); do pick_ports "$i"; done
    for i in $(seq 2 "$n"); do launch "$i" "$@"; done
    wait_until 60 members_ok "${HTTP[1]}" "$n" || fail "cluster of $n did not form"
}

# leader_of ADDR: print the leader id as the node at ADDR sees it.
leader_of() {
    curl -fsS -m 3 "http://$1/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])'
}

# roles_of_3 ADDR: in a 3-node cluster, set L to the leader's node number
# (as ADDR sees it) and F, O to the two followers, lower number first.
roles_of_3() {
    local i
    L=$(leader_of "$1")
    F=""
    O=""
    for i in 1 2 3; do
        [ "$i" = "$L" ] && continue
        if [ -z "$F" ]; then F=$i; else O=$i; fi
    done
}

# kill_node I: SIGKILL and reap.
kill_node() {
    kill -KILL "${PID[$1]}"
    wait "${PID[$1]}" 2>/dev/null || true
}

# var_version ADDR NAME: the stale local version of NAME (or 0).
var_version() {
    curl -fsS -m 3 "http://$1/v1/vars/$2?consistency=stale" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null || echo 0
}

version_is() { [ "$(var_version "$1" "$2")" = "$3" ]; }

# cluster_log ADDR: the replicated event log as "seq type subject payload"
# lines (time is node-local and left out).
cluster_log() {
    curl -fsS -m 5 "http://$1/v1/events?log=cluster&limit=10000" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["events"]:
    print(e["seq"], e["type"], e["subject"], json.dumps(e.get("payload"), sort_keys=True))'
}
