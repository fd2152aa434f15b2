# Network-namespace harness of the partition suite: a sourced bash library.
# It builds, for one run, N node namespaces mbp-<run>-<i>, a client namespace
# mbp-<run>-c and a bridge namespace mbp-<run>-br, each joined to a bridge by a
# veth pair created directly inside the namespaces (the host's own interfaces
# and routes are never touched). Addresses are link-local 169.254.<run>.x/24
# and exist only inside those namespaces. Nemeses cut traffic with blackhole
# routes inside the node namespaces and act on the mabeamd processes
# (kill -9, SIGSTOP/SIGCONT, restart). Every nemesis event is appended to
# $MBP_NEMESIS_LOG as "<unix ns> <event> <args>". Needs root and iproute2.
#
# Use:  source tests/partition/netns.sh
#       mbp_require_root || exit 77
#       mbp_setup RUN N; trap mbp_teardown EXIT; ...

MBP_RUN=""
MBP_N=0
MBP_DIR=""
MBP_NEMESIS_LOG=/dev/null
MBP_MABEAMD=""
MBP_SECRET="partition-suite-secret"  # mabeamd wants >= 16 characters
MBP_HTTP_PORT=8080
MBP_MESH_PORT=9100
MBP_RAFT_PORT=9200
# Bound of a write or linearizable read in mabeamd (503 after it); the
# workload's client timeout is longer, so most faults end in an answer.
MBP_WRITE_TIMEOUT=2s
# A node is declared down (its agents move) after 1.5 s without heartbeats,
# so faults of 0.5-3 s exercise failover and fencing.
MBP_NODE_FLAGS=(--heartbeat_interval=100ms --failure_timeout=1500ms)

# Return 0 when namespaces can be made here, else print why and return 77.
mbp_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: the partition suite needs root (network namespaces)" >&2
        return 77
    fi
    if ! command -v ip >/dev/null 2>&1; then
        echo "SKIP: the partition suite needs iproute2 (ip)" >&2
        return 77
    fi
    if ! ip netns add "mbp-probe-$$" 2>/dev/null; then
        echo "SKIP: cannot create network namespaces here (container without CAP_SYS_ADMIN?)" >&2
        return 77
    fi
    ip netns del "mbp-probe-$$"
    return 0
}

mbp_ns() { echo "mbp-$MBP_RUN-$1"; }           # node i's namespace
mbp_addr() { echo "169.254.$MBP_RUN.$((10 + $1))"; } # node i's address
mbp_client_addr() { echo "169.254.$MBP_RUN.2"; }
mbp_now_ns() { date +%s%N; }

mbp_log() {
    echo "$(mbp_now_ns) $*" >>"$MBP_NEMESIS_LOG"
    echo "nemesis: $*" >&2
}

# Run a command inside node i's namespace.
mbp_exec() {
    local i=$1
    shift
    ip netns exec "$(mbp_ns "$i")" "$@"
}

# Run a command inside the client namespace.
mbp_client_exec() { ip netns exec "mbp-$MBP_RUN-c" "$@"; }

# Join namespace $1 to the bridge as port $2 with address $3.
mbp_attach_() {
    local ns=$1 port=$2 addr=$3 br="mbp-$MBP_RUN-br"
    ip -n "$ns" link add eth0 type veth peer name "$port" netns "$br" || return 1
    ip -n "$br" link set "$port" master mbpbr up || return 1
    ip -n "$ns" addr add "$addr/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up || return 1
    ip -n "$ns" link set lo up || return 1
}

# mbp_setup RUN N DIR: create the namespaces and bridge for run RUN
# (1..250) with N nodes; DIR receives pids, logs and data directories.
# Creating the bridge namespace claims a run number: when RUN's is taken
# (another run, or one killed before its teardown), the next free number is
# used instead, so leftovers never block a run. MBP_RUN holds the number.
mbp_setup() {
    local want=$1 k
    MBP_N=$2
    MBP_DIR=$3
    if [ "$want" -lt 1 ] || [ "$want" -gt 250 ]; then
        echo "mbp_setup: run number must be 1..250" >&2
        return 1
    fi
    mkdir -p "$MBP_DIR" || return 1
    MBP_NEMESIS_LOG="$MBP_DIR/nemesis.log"
    : >"$MBP_NEMESIS_LOG"
    MBP_RUN=""
    for k in $(seq 0 249); do
        local r=$(((want - 1 + k) % 250 + 1))
        if ip netns add "mbp-$r-br" 2>/dev/null; then
            MBP_RUN=$r
            break
        fi
    done
    if [ -z "$MBP_RUN" ]; then
        echo "mbp_setup: no free run number (ip netns list: leftovers of killed runs?)" >&2
        return 1
    fi
    [ "$MBP_RUN" = "$want" ] || echo "mbp_setup: run $want is taken, using $MBP_RUN" >&2
    local br="mbp-$MBP_RUN-br"
    ip -n "$br" link add mbpbr type bridge || return 1
    ip -n "$br" link set mbpbr up || return 1
    ip netns add "mbp-$MBP_RUN-c" || return 1
    mbp_attach_ "mbp-$MBP_RUN-c" pc "$(mbp_client_addr)" || return 1
    local i
    for i in $(seq 1 "$MBP_N"); do
        ip netns add "$(mbp_ns "$i")" || return 1
        mbp_attach_ "$(mbp_ns "$i")" "p$i" "$(mbp_addr "$i")" || return 1
    done
    mbp_log setup "run=$MBP_RUN nodes=$MBP_N"
}

# Stop every node this run started, then delete the run's namespaces (their
# veth devices go with them). Safe to call twice.
mbp_teardown() {
    [ -n "$MBP_RUN" ] || return 0
    local i pid
    for i in $(seq 1 "$MBP_N"); do
        pid=$(mbp_pid_ "$i")
        if [ -n "$pid" ]; then
            kill -CONT "$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    for i in $(seq 1 "$MBP_N") c br; do
        ip netns del "mbp-$MBP_RUN-$i" 2>/dev/null
    done
    MBP_RUN=""
}

# ---- network nemeses ----

# Drop all traffic between node a and node b (both directions).
mbp_cut_() {
    mbp_exec "$1" ip route replace blackhole "$(mbp_addr "$2")/32"
    mbp_exec "$2" ip route replace blackhole "$(mbp_addr "$1")/32"
}

# Remove every blackhole route: full connectivity again.
mbp_heal() {
    local i j
    for i in $(seq 1 "$MBP_N"); do
        for j in $(seq 1 "$MBP_N"); do
            [ "$i" = "$j" ] && continue
            mbp_exec "$i" ip route del blackhole "$(mbp_addr "$j")/32" 2>/dev/null
        done
    done
    mbp_log heal
}

# mbp_partition "1 2" "3 4 5": cut every link between the two groups.
mbp_partition() {
    local a b
    for a in $1; do
        for b in $2; do
            mbp_cut_ "$a" "$b"
        done
    done
    mbp_log partition "[$1] [$2]"
}

# Split into halves: the first floor(N/2) nodes against the rest.
mbp_partition_halves() {
    local h=$((MBP_N / 2)) left="" right="" i
    for i in $(seq 1 "$MBP_N"); do
        if [ "$i" -le "$h" ]; then left="$left $i"; else right="$right $i"; fi
    done
    mbp_partition "${left# }" "${right# }"
}

# Cut node i off from every other node.
mbp_isolate() {
    local i=$1 rest="" j
    for j in $(seq 1 "$MBP_N"); do [ "$j" != "$i" ] && rest="$rest $j"; done
    mbp_partition "$i" "${rest# }"
}

# Bridge: two minorities that cannot see each other, and one middle node
# that sees both (Jepsen's "bridge").
mbp_bridge() {
    local h=$((MBP_N / 2)) left="" right="" i
    for i in $(seq 1 "$h"); do left="$left $i"; done
    for i in $(seq $((MBP_N - h + 1)) "$MBP_N"); do right="$right $i"; done
    mbp_partition "${left# }" "${right# }"
}

# Majority ring: each node keeps links only to the nodes within ring
# distance floor(N/2) (so each sees a majority, but no two see the same).
# With fewer than 5 nodes no such ring exists: then one random link is cut
# (a bridge through a random middle node).
mbp_majority_ring() {
    local i j d k=$((MBP_N / 2)) cut=""
    if [ "$MBP_N" -lt 5 ]; then
        i=$((RANDOM % MBP_N + 1))
        j=$((i % MBP_N + 1))
        mbp_cut_ "$i" "$j"
        mbp_log ring "cut: $i-$j"
        return
    fi
    for i in $(seq 1 "$MBP_N"); do
        for j in $(seq $((i + 1)) "$MBP_N"); do
            d=$((j - i))
            [ $((MBP_N - d)) -lt "$d" ] && d=$((MBP_N - d))
            if [ "$d" -ge "$k" ] && [ "$MBP_N" -ge 5 ]; then
                mbp_cut_ "$i" "$j"
                cut="$cut $i-$j"
            fi
        done
    done
    mbp_log ring "cut:${cut:- none}"
}

# ---- process nemeses ----

mbp_pid_() { [ -f "$MBP_DIR/node-$1.pid" ] && cat "$MBP_DIR/node-$1.pid"; }

# Start mabeamd for node i inside its namespace ($MBP_MABEAMD = binary).
# Node 1 starts the cluster (no seeds); the others join through the mesh
# addresses of all other nodes (docs/node-services.md: seeds).
mbp_start_node() {
    local i=$1 seeds="" j
    if [ "$i" != 1 ]; then
        for j in $(seq 1 "$MBP_N"); do
            [ "$j" = "$i" ] && continue
            seeds="$seeds${seeds:+,}$(mbp_addr "$j"):$MBP_MESH_PORT"
        done
    fi
    mkdir -p "$MBP_DIR/data-$i"
    ip netns exec "$(mbp_ns "$i")" "$MBP_MABEAMD" --node_id="$i" --data_dir="$MBP_DIR/data-$i" \
        --http_address="$(mbp_addr "$i"):$MBP_HTTP_PORT" \
        --mesh_address="$(mbp_addr "$i"):$MBP_MESH_PORT" \
        --raft_address="$(mbp_addr "$i"):$MBP_RAFT_PORT" \
        ${seeds:+--seeds="$seeds"} --cluster_secret="$MBP_SECRET" \
        --write_timeout="$MBP_WRITE_TIMEOUT" "${MBP_NODE_FLAGS[@]}" \
        >>"$MBP_DIR/node-$i.log" 2>&1 &
    echo $! >"$MBP_DIR/node-$i.pid"
    mbp_log start "$i pid=$!"
}

mbp_kill() {
    local pid
    pid=$(mbp_pid_ "$1")
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$MBP_DIR/node-$1.pid"
    mbp_log kill "$1 pid=$pid"
}

mbp_pause() {
    local pid
    pid=$(mbp_pid_ "$1")
    [ -n "$pid" ] && kill -STOP "$pid" 2>/dev/null
    mbp_log pause "$1"
}

mbp_resume() {
    local pid
    pid=$(mbp_pid_ "$1")
    [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
    mbp_log resume "$1"
}

mbp_restart() {
    local pid
    pid=$(mbp_pid_ "$1")
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        rm -f "$MBP_DIR/node-$1.pid"
    fi
    mbp_log restart "$1 pid=${pid:-none}"
    mbp_start_node "$1"
}

# Resume every paused node and start every killed one.
mbp_revive_all() {
    local i
    for i in $(seq 1 "$MBP_N"); do
        if [ -n "$(mbp_pid_ "$i")" ]; then
            mbp_resume "$i"
        else
            mbp_start_node "$i"
        fi
    done
}

# HTTP GET on node i from the client namespace; prints the body.
mbp_http_get() {
    mbp_client_exec curl -s --max-time "${3:-2}" "http://$(mbp_addr "$1"):$MBP_HTTP_PORT$2"
}

# Print the id of the node that reports itself leader (raft_state "leader"
# in its own entry of GET /v1/cluster), the highest term winning when two
# claim it (an old leader cut off may not have noticed yet); nothing and
# status 1 when no node claims it.
mbp_leader() {
    local i body best="" best_term=-1 line id term
    for i in $(seq 1 "$MBP_N"); do
        body=$(mbp_http_get "$i" /v1/cluster 1) || continue
        line=$(printf '%s' "$body" | python3 -c \
            'import json,sys
try:
    d=json.load(sys.stdin); me=d.get("node_id")
    for e in d.get("nodes", []):
        if e.get("id")==me and e.get("raft_state")=="leader":
            print(me, e.get("term", 0))
except Exception: pass' 2>/dev/null)
        [ -n "$line" ] || continue
        read -r id term <<<"$line"
        if [ "$term" -gt "$best_term" ]; then
            best=$id
            best_term=$term
        fi
    done
    [ -n "$best" ] || return 1
    echo "$best"
}

# A random network fault from the bash RANDOM stream.
mbp_random_network_fault_() {
    local i=$((RANDOM % MBP_N + 1)) leader
    case $((RANDOM % 5)) in
    0) mbp_partition_halves ;;
    1)
        leader=$(mbp_leader) || leader=$i
        mbp_isolate "$leader"
        ;;
    2) mbp_isolate "$i" ;;
    3) mbp_bridge ;;
    4) mbp_majority_ring ;;
    esac
}

# A random process fault from the bash RANDOM stream.
mbp_random_process_fault_() {
    local i=$((RANDOM % MBP_N + 1))
    case $((RANDOM % 3)) in
    0) mbp_kill "$i" ;;
    1) mbp_pause "$i" ;;
    2) mbp_restart "$i" ;;
    esac
}

# One random nemesis event from the bash RANDOM stream (seed it first): a
# network fault, a process fault, or (one time in four) both together.
# Faults are healed/revived by the caller between events.
mbp_random_nemesis() {
    case $((RANDOM % 4)) in
    0 | 1) mbp_random_network_fault_ ;;
    2) mbp_random_process_fault_ ;;
    3)
        mbp_random_network_fault_
        mbp_random_process_fault_
        ;;
    esac
}
