#!/usr/bin/env bash
# The README's main command (issues #5 and #6): installs the build
# dependencies that are missing, builds MABEAM, then in a temporary
# directory starts a 3-node local cluster, spreads counter and voter agents
# over it, opens a proposal and SIGKILLs the node holding the most agents
# while the vote is open. It shows the failure detected, the agents
# re-placed elsewhere (generation 2) with their counter values intact, the
# vote completing, the killed node returning without running any of its old
# copies, then a short Branin study, and ends with a summary of timings and
# checks. Exit status 0 only when every check passed. Leaves nothing
# running (every node is stopped on exit, Ctrl-C included).
#
#   scripts/demo.sh [--no-build] [--quick]
#
# --no-build: use an existing build (MB_DEMO_BUILD, default ./build) and do
# not install or compile anything. --quick: a smaller study (CI).
# MABEAM_DEMO_PORT: first port to try (default 17700; node i uses
# PORT+10*(i-1) .. +2; the next free block is taken when busy).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=1
quick=0
for a in "$@"; do
    case "$a" in
    --no-build) build=0 ;;
    --quick) quick=1 ;;
    -h | --help)
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "demo: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    esac
done

bdir="${MB_DEMO_BUILD:-$root/build}"
if [ "$build" = 1 ]; then
    scripts/install-deps.sh build
    cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$bdir" -j "$(nproc)" --target mabeamd mabeam
fi
export MABEAMD="$bdir/node/mabeamd"
MABEAM_BIN="$bdir/node/cli/mabeam"
for b in "$MABEAMD" "$MABEAM_BIN"; do
    [ -x "$b" ] || {
        echo "demo: $b is missing (build first, or drop --no-build)" >&2
        exit 1
    }
done
for t in curl python3; do
    command -v "$t" >/dev/null || {
        echo "demo: needs $t" >&2
        exit 1
    }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mabeam-demo-XXXXXX")
export MABEAM_CLUSTER_DIR="$work/cluster"
bg_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$bg_pid" ] && kill -0 "$bg_pid" 2>/dev/null; then
        kill "$bg_pid" 2>/dev/null || true
        wait "$bg_pid" 2>/dev/null || true
    fi
    if [ -f "$MABEAM_CLUSTER_DIR/size" ]; then
        "$root/scripts/cluster.sh" down >/dev/null 2>&1 || true
        # Anything cluster.sh did not stop (it waits up to 30 s, then KILLs).
        local f
        for f in "$MABEAM_CLUSTER_DIR"/n*.pid; do
            if [ -f "$f" ]; then kill -KILL "$(cat "$f")" 2>/dev/null || true; fi
        done
        # Sanitizer builds (CI runs this under ASan too): a report from a
        # node, at run time or at its clean exit, fails the demo.
        if grep -l "Sanitizer" "$MABEAM_CLUSTER_DIR"/n*.log >/dev/null 2>&1; then
            echo "demo: a sanitizer reported an error in a node's log:" >&2
            grep -h -A 30 "Sanitizer" "$MABEAM_CLUSTER_DIR"/n*.log | head -n 60 >&2
            [ "$rc" != 0 ] || rc=1
        fi
    fi
    if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ] && [ -d "$MABEAM_CLUSTER_DIR" ]; then
        echo "demo: failed (status $rc); last lines of each node's log:" >&2
        local l
        for l in "$MABEAM_CLUSTER_DIR"/n*.log; do
            [ -f "$l" ] || continue
            echo "--- $l" >&2
            tail -n 15 "$l" >&2
        done
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }
T0=$(now_ms)
elapsed() {
    local d=$(($(now_ms) - T0))
    printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}
secs() { printf '%d.%02d s' $(($1 / 1000)) $(($1 % 1000 / 10)); }
say() { printf '\n\033[1m[%5ss] ==> %s\033[0m\n' "$(elapsed)" "$*"; }
step() { printf '[%5ss]     %s\n' "$(elapsed)" "$*"; }
die() {
    printf '[%5ss] FAILED: %s\n' "$(elapsed)" "$*" >&2
    exit 1
}

# Ports: a block of 3 x 10 free ports from MABEAM_DEMO_PORT (default 17700).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=${MABEAM_DEMO_PORT:-17700}
for _ in $(seq 1 50); do
    busy=0
    for off in 0 1 2 10 11 12 20 21 22; do
        if port_busy $((base + off)); then
            busy=1
            break
        fi
    done
    [ "$busy" = 0 ] && break
    base=$((base + 100))
done
[ "$busy" = 0 ] || die "no free block of ports found from ${MABEAM_DEMO_PORT:-17700}"
[ "$base" = "${MABEAM_DEMO_PORT:-17700}" ] || echo "demo: port ${MABEAM_DEMO_PORT:-17700} is busy; using $base.."
export MABEAM_CLUSTER_PORT=$base
http() { echo "127.0.0.1:$((base + 10 * ($1 - 1)))"; }

# mb NODE ARGS: the mabeam CLI against node NODE, echoed.
mb() {
    local n=$1
    shift
    printf '$ mabeam --addr %s %s\n' "$(http "$n")" "$*"
    "$MABEAM_BIN" --addr "$(http "$n")" "$@"
}
mbq() {
    local n=$1
    shift
    "$MABEAM_BIN" --addr "$(http "$n")" "$@"
}
# py NODE PATH EXPR: GET PATH from NODE, evaluate EXPR over j (the JSON).
py() {
    curl -fsS -m 3 "http://$(http "$1")$2" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
# The cluster agents of studies (kinds optimiser, evaluator) are left out:
# the demo follows the agents it spawned.
a = {x["id"]: x for x in j.get("agents", []) if x.get("kind") not in ("optimiser", "evaluator")} if isinstance(j, dict) else {}
r = eval(sys.argv[1])
if r is False: sys.exit(1)
if r is not True: print(r)' "$3"
}
agents() { py "$1" "/v1/cluster/agents?limit=10000" "$2"; }
# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
ckpt_value() {
    curl -fsS -m 3 "http://$(http "$1")/v1/cluster/agents/$2/checkpoint" 2>/dev/null | python3 -c '
import base64, json, struct, sys
print(struct.unpack("<q", base64.b64decode(json.load(sys.stdin)["data_b64"]))[0])'
}
ckpt_is() { [ "$(ckpt_value "$1" "$2")" = "$3" ]; }
# logline PATTERN [NODE]: the last log line of each node (or of NODE)
# containing PATTERN, as "nI.log: line".
logline() {
    local i
    for i in ${2:-1 2 3}; do
        { grep -F -- "$1" "$MABEAM_CLUSTER_DIR/n$i.log" 2>/dev/null || true; } |
            tail -n 1 | sed "s/^/        n$i.log: /"
    done
}
# log_ms AFTER_MS PATTERN...: the time (ms since the epoch) by which every
# PATTERN has appeared in some node's log at or after AFTER_MS (each
# pattern's first such line; the latest of those), or nothing.
log_ms() {
    python3 - "$MABEAM_CLUSTER_DIR" "$@" <<'PY'
import datetime, glob, sys
d, after, pats = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
first = {}
for f in glob.glob(d + "/n*.log"):
    for line in open(f, errors="replace"):
        for p in pats:
            if p not in line:
                continue
            try:
                t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            except (ValueError, IndexError):
                continue
            ms = int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
            if ms >= after and (p not in first or ms < first[p]):
                first[p] = ms
if len(first) == len(pats):
    print(max(first.values()))
PY
}
local_agents() { # the cluster agents of studies (optimiser, evaluator) left out
    py "$1" "/v1/agents?namespace=cluster&limit=1000" 'sum(1 for x in j["agents"] if x.get("kind") not in ("optimiser", "evaluator"))'
}

FLAGS=""
export MABEAM_CLUSTER_FLAGS="$FLAGS"

# ---------------------------------------------------------------- 1. cluster
say "1. Starting a 3-node cluster on 127.0.0.1 (ports $base..$((base + 22))) in $work"
step "every node runs with the default failure detection: heartbeats every 200ms; a node is"
step "down after 600ms of silence once its connections are gone (failure_timeout), 5s if they stay open"
t=$(now_ms)
"$root/scripts/cluster.sh" up 3 | sed 's/^/        /'
t_up=$(($(now_ms) - t))
leader=$(py 1 /v1/cluster 'j["leader_id"]')
step "3 nodes joined, raft leader is node $leader ($(secs $t_up))"

# ----------------------------------------------------------------- 2. agents
say "2. Spawning 6 counter agents and 6 voter agents, spread by load"
for i in 1 2 3 4 5 6; do
    out=$(mbq 1 agent spawn counter --name "c$i" --placement spread:load) || die "spawn c$i"
    step "$out"
done
# Voters answer after 2.5-3.75 s, so the vote is still open when a node dies.
for i in 1 2 3 4 5 6; do
    cfg="{\"vote\":\"range\",\"min\":0,\"max\":0.5,\"delay_ms\":$((2250 + 250 * i))}"
    out=$(mbq 1 agent spawn voter --name "v$i" --placement spread:load --config "$cfg") ||
        die "spawn v$i"
    step "$out   config $cfg"
done
wait_for 20 agents 1 'len(a) == 12 and all(x["status"] == "running" for x in a.values())' ||
    die "the 12 agents are not all running: $(agents 1 a)"
step "all 12 running"

say "Sending each counter cI the increment 10*I on the node that runs it"
for i in 1 2 3 4 5 6; do
    n=$(agents 1 "a['c$i']['node']")
    b64=$(python3 -c 'import base64,struct,sys; print(base64.b64encode(struct.pack("<q", int(sys.argv[1]))).decode())' $((10 * i)))
    mbq "$n" agent send "c$i" --namespace cluster --tag 1 --b64 "$b64" >/dev/null || die "send to c$i"
    step "c$i (node $n) += $((10 * i))"
done
# The counter checkpoints after every increment; the checkpoint is
# replicated through raft. Wait until every one is in the replicated table.
for i in 1 2 3 4 5 6; do
    wait_for 15 ckpt_is 1 "c$i" $((10 * i)) || die "checkpoint of c$i is $(ckpt_value 1 "c$i"), not $((10 * i))"
done
step "every counter's checkpoint (its value) is replicated: c1..c6 = 10 20 30 40 50 60"
mb 1 agent list --cluster

say "Defining a consensus variable: it changes only when its voters accept a proposal"
mb 1 var define demo_lr float --min 0 --max 1 --value 0.1 --policy consensus

# ------------------------------------------------------- 3. kill during vote
# The victim: the node with the most agents, other than node 1 (the demo
# talks to node 1). Ties: the higher id.
victim=$(agents 1 'max((sum(1 for x in a.values() if x["node"] == n), n) for n in (2, 3))[1]')
moved=$(agents 1 "' '.join(sorted(k for k, x in a.items() if x['node'] == $victim))")

say "3. Proposing demo_lr = 0.3 to the 6 voters (rule unanimous, deadline 40s), in the background"
propose_out="$work/propose.out"
t_open=$(now_ms)
(
    rc=0
    "$MABEAM_BIN" --addr "$(http 1)" propose demo_lr 0.3 --voters v1,v2,v3,v4,v5,v6 \
        --rule unanimous --deadline 40s --id demo-vote --wait || rc=$?
    now_ms >"$work/decided_ms" # when the answer came, for the summary
    exit "$rc"
) >"$propose_out" 2>&1 &
bg_pid=$!
wait_for 10 py 1 /v1/proposals/demo-vote 'j["outcome"] == "open"' || die "the proposal did not open: $(cat "$propose_out")"
step "proposal demo-vote is open; votes so far: $(py 1 /v1/proposals/demo-vote 'j.get("votes", {})')"

open_at_kill=no
py 1 /v1/proposals/demo-vote 'j["outcome"] == "open"' && open_at_kill=yes
say "SIGKILL node $victim (it runs $moved) while the vote is open"
t_kill=$(now_ms)
"$root/scripts/cluster.sh" kill "$victim"
step "node $victim killed (kill -KILL)"
wait_for 20 py 1 /v1/cluster "[x for x in j['nodes'] if x['id'] == $victim][0].get('detector') == 'down'" ||
    die "node 1's failure detector did not report node $victim down"
t_detect=$(($(now_ms) - t_kill))
step "node 1's failure detector reports node $victim down (polled; seen $(secs $t_detect) after the kill)"
wait_for 20 agents 1 "all(x['node'] != $victim and x['status'] == 'running' for x in a.values())" ||
    die "the agents of node $victim are not running elsewhere: $(agents 1 a)"
t_replace=$(($(now_ms) - t_kill))
logline "node is down: moving its agents"
step "every agent of node $victim runs elsewhere (seen $(secs $t_replace) after the kill):"
# For the summary, the same two moments from the nodes' own log lines,
# without the polling delay: the leader's decision to move its agents, and
# the start of the last moved agent on its new node.
pats=()
for name in $moved; do pats+=("detail=$name"); done
if x=$(log_ms "$t_kill" "node is down: moving its agents") && [ -n "$x" ]; then t_detect=$((x - t_kill)); fi
if x=$(log_ms "$t_kill" "${pats[@]}") && [ -n "$x" ]; then t_replace=$((x - t_kill)); fi
for name in $moved; do
    step "  $name -> $(agents 1 "'node %d, generation %d, restarts %d' % (a['$name']['node'], a['$name']['generation'], a['$name']['restarts'])")"
done
state_ok=yes
for name in $moved; do
    agents 1 "a['$name']['generation'] == 2" || {
        state_ok=no
        step "  $name was not moved with generation 2"
    }
done
for i in 1 2 3 4 5 6; do
    v=$(ckpt_value 1 "c$i")
    if [ "$v" != $((10 * i)) ]; then
        state_ok=no
        step "  c$i has $v, expected $((10 * i))"
    fi
done
# A moved counter continues from its state: one more increment on top.
first=""
for name in $moved; do case "$name" in c*) first=${first:-$name} ;; esac; done
if [ -n "$first" ]; then
    n=$(agents 1 "a['$first']['node']")
    mbq "$n" agent send "$first" --namespace cluster --tag 1 >/dev/null || die "send to $first on node $n"
    want=$((10 * ${first#c} + 1))
    if wait_for 10 ckpt_is 1 "$first" "$want"; then
        step "$first on node $n continues from its state: +1 -> $want"
    else
        state_ok=no
        step "$first did not continue from its state: $(ckpt_value 1 "$first")"
    fi
fi
step "counter values after the failover: $(for i in 1 2 3 4 5 6; do printf 'c%d=%s ' "$i" "$(ckpt_value 1 "c$i")"; done)"
step "state preserved: $state_ok"
mb 1 agent list --cluster

say "Waiting for the vote (the moved voters are asked again by their new nodes)"
vote_rc=0
wait "$bg_pid" || vote_rc=$?
bg_pid=""
t_vote=$(($(cat "$work/decided_ms" 2>/dev/null || now_ms) - t_open))
sed 's/^/        /' "$propose_out"
vote_ok=no
if [ "$vote_rc" = 0 ] && grep -q accepted "$propose_out"; then vote_ok=yes; fi
step "decided $(secs $t_vote) after it opened; value now: $(mbq 1 var get demo_lr 2>&1 | head -n 1)"
echo "  who voted (cluster event log, proposal.vote):"
mbq 1 events --log cluster --type proposal.vote --subject demo_lr --limit 20 2>/dev/null |
    python3 -c '
import sys
for line in sys.stdin:
    if "demo-vote" in line: print("        " + line.split("proposal.vote", 1)[1].strip())'

# ------------------------------------------------------------ 4. node back
say "4. Restarting node $victim on its data directory"
t=$(now_ms)
"$root/scripts/cluster.sh" restart "$victim"
wait_for 30 py 1 /v1/cluster "[x for x in j['nodes'] if x['id'] == $victim][0].get('detector') == 'alive' and all(x.get('reachable') for x in j['nodes'])" ||
    die "node $victim did not rejoin"
wait_for 15 agents "$victim" 'len(a) == 12 and all(x["status"] == "running" for x in a.values())' ||
    die "node $victim did not catch up with the agents table"
t_back=$(($(now_ms) - t))
step "node $victim is back and caught up ($(secs $t_back))"
logline "node is back: marking it up"
logline "caught up with the log: reconciling" "$victim"
fenced_ok=yes
stale=$(agents "$victim" "sum(1 for x in a.values() if x['node'] == $victim)")
running=$(local_agents "$victim")
[ "$stale" = 0 ] && [ "$running" = 0 ] || fenced_ok=no
step "agents assigned to node $victim in the replicated table: $stale; cluster agents its runtime runs: $running"
step "its old copies (generation 1) are fenced: the table gave them generation 2 elsewhere, and the state machine refuses their status and checkpoints"
mb 1 events --log cluster --type agent.reassign --limit 12 | cut -c1-160
# What the returning node learned, from its own local event log.
returned=""
wait_for 10 py "$victim" "/v1/events?log=local&type=placement.returned&limit=1" 'len(j["events"]) == 1' &&
    returned=$(py "$victim" "/v1/events?log=local&type=placement.returned&limit=1" \
        '(lambda p: "%d %d %d %d" % (sum(1 for x in p.get("agents", []) if not x.startswith(("evaluator-", "optimiser-"))), p["moved"], p["generation_max"], p["assigned_here"]))(j["events"][-1]["payload"])')
# r_moved: the demo's own agents among them (study evaluators move too).
read -r r_moved r_all r_gen r_here <<<"${returned:-0 0 0 0}"
if [ -n "$returned" ]; then
    step "node $victim back (its event placement.returned): $r_all agents moved away at generation $r_gen while it was down ($r_moved of the demo's, the rest study evaluators), not started (fenced); $r_here assigned to it now"
    logline "returning node: agents moved away" "$victim"
else
    fenced_ok=no
    step "node $victim did not record what it learned on return (event placement.returned)"
fi
[ "$r_moved" = "$(echo $moved | wc -w)" ] || fenced_ok=no

# ----------------------------------------------------------------- 5. study
trials=30
[ "$quick" = 1 ] && trials=16
say "5. A short study: minimise builtin:branin over x0 in [-5,10], x1 in [0,15] ($trials trials, 4 at a time, TPE)"
cat >"$work/study.json" <<EOF
{"id": "demo-branin", "objective": "builtin:branin", "strategy": "tpe", "seed": 7,
 "space": [{"name": "x0", "type": "float", "min": -5, "max": 10},
           {"name": "x1", "type": "float", "min": 0, "max": 15}],
 "budget": {"trials": $trials}, "parallelism": 4}
EOF
t=$(now_ms)
mb 1 study create "$work/study.json"
mbq 1 study watch demo-branin --timeout-ms 60000 2>&1 | tr '\r' '\n' | grep -v '^$' | awk 'NR % 4 == 1 {print "        " $0; last=""; next} {last="        " $0} END {if (last != "") print last}' || true
t_study=$(($(now_ms) - t))
study=$(py 1 /v1/studies/demo-branin '"%s %d %s" % (j["status"], sum(1 for x in j.get("trials", []) if x["status"] == "completed"), j.get("best", {}).get("value"))')
read -r s_status s_done s_best <<<"$study"
step "study $s_status: $s_done trials completed, best value $s_best (the minimum of Branin is 0.398)"
study_ok=no
[ "$s_status" = finished ] && [ "$s_done" = "$trials" ] && study_ok=yes

# --------------------------------------------------------------- 6. summary
total=$(($(now_ms) - T0))
say "6. Summary"
printf '        %-52s %s\n' \
    "cluster of 3 up" "$(secs $t_up)" \
    "node $victim killed -> declared down, leader moves agents" "$(secs $t_detect)" \
    "node $victim killed -> its agents started elsewhere" "$(secs $t_replace)" \
    "proposal opened -> decided (through the failover)" "$(secs $t_vote)" \
    "node $victim restarted -> rejoined and caught up" "$(secs $t_back)" \
    "study of $trials Branin trials" "$(secs $t_study)" \
    "whole demo (after the build)" "$(secs $total)"
echo
printf '        %-52s %s\n' \
    "counter state preserved across the failover" "$state_ok" \
    "vote decided: accepted" "$vote_ok" \
    "returning node runs none of its old copies" "$fenced_ok" \
    "node $victim back: agents it learned moved, not started" "$r_moved (generation $r_gen)" \
    "study finished its budget" "$study_ok"
echo "        (the vote was open when node $victim was killed: $open_at_kill)"
fail=0
for c in "$state_ok" "$vote_ok" "$fenced_ok" "$study_ok"; do [ "$c" = yes ] || fail=1; done
if [ "$fail" != 0 ]; then
    die "a check failed (see above)"
fi
say "Demo done: every check passed. Stopping the cluster (docs/operations.md, docs/proposals.md, docs/studies.md for more)."
