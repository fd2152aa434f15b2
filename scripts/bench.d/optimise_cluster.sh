#!/usr/bin/env bash
# Suite `optimise`, cluster part (piece "studies"; docs/studies.md):
#   speedup:   wall time of a 200-trial study whose objective sleeps 50 ms
#              without CPU (builtin sleep:50) on a 2-node cluster, with
#              8 evaluators (4 per node, parallelism 8) against 1
#              (parallelism 1); target ratio >= 6.
#   node loss: OPTIM_LOSS_RUNS (20) seeded runs of a 3-node cluster where a
#              node running evaluators is killed mid-study: in even runs the
#              node running the study's optimiser agent, in odd runs a
#              follower; every trial of the budget must be suggested and
#              complete exactly once (lost = 0, twice = 0).
# Real mabeamd processes on 127.0.0.1 from $MB_BENCH_BUILD (Release).
# JSON lines on stdout, progress on stderr.
# OPTIM_CLUSTER_PARTS: "speedup loss" (default) or one of them. The
# node-loss runs wait on sleeping objectives and failure detectors, not on
# the CPU: OPTIM_LOSS_WORKERS (2) clusters run side by side, each its share
# of the seeded runs (run r has seed r whoever runs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MB_BENCH_BUILD:?set MB_BENCH_BUILD to the Release bench build}
export MABEAMD="$build/node/mabeamd" MABEAM="$build/node/cli/mabeam"
runs=${OPTIM_LOSS_RUNS:-20}
# Trials of 1 s per node-loss study (6 at a time): long enough for the
# kill to find the victim mid-study on a loaded machine.
loss_trials=${OPTIM_LOSS_TRIALS:-60}
parts=${OPTIM_CLUSTER_PARTS:-speedup loss}
workers=${OPTIM_LOSS_WORKERS:-2}
first=${OPTIM_LOSS_FIRST:-1}
here=$(cd "$(dirname "$0")" && pwd)

# The loss part with several workers: each is this script on a share of
# the runs (OPTIM_CLUSTER_PARTS=loss-worker prints one line per run), the
# totals summed here.
if [[ " $parts " == *" loss "* ]] && [ "$workers" -gt 1 ]; then
    if [[ " $parts " == *" speedup "* ]]; then # timing-sensitive: alone, first
        OPTIM_CLUSTER_PARTS=speedup bash "$here/optimise_cluster.sh"
    fi
    raw=$(mktemp -d)
    pids=()
    trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$raw"; exit 143' TERM INT
    per=$(((runs + workers - 1) / workers))
    for w in $(seq 0 $((workers - 1))); do
        f=$((1 + w * per))
        n=$((runs - w * per < per ? runs - w * per : per))
        [ "$n" -gt 0 ] || continue
        OPTIM_CLUSTER_PARTS=loss-worker OPTIM_LOSS_FIRST=$f OPTIM_LOSS_RUNS=$n \
            bash "$here/optimise_cluster.sh" >"$raw/w$w" &
        pids+=($!)
    done
    failed=0
    for p in "${pids[@]}"; do wait "$p" || failed=1; done # every worker ends
    [ "$failed" = 0 ] || exit 1
    cat "$raw"/w* | python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin if l.strip()]
runs, lost = len(r), sum(x["lost"] for x in r)
twice, req = sum(x["twice"] for x in r), sum(x["requeued"] for x in r)
sugg, okill = sum(x["sugg_twice"] for x in r), sum(x["opt_kill"] for x in r)
s = "optimise"
print(json.dumps({"suite": s, "metric": "node_loss_runs", "value": runs, "unit": "runs"}))
print(json.dumps({"suite": s, "metric": "node_loss_runs_killing_the_optimiser_agents_node", "value": okill, "unit": "runs"}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_suggested_twice", "value": sugg, "unit": "trials", "target": 0, "met": sugg == 0}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_lost", "value": lost, "unit": "trials", "target": 0, "met": lost == 0}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_counted_twice", "value": twice, "unit": "trials", "target": 0, "met": twice == 0}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_requeued", "value": req, "unit": "trials"}))'
    rm -rf "$raw"
    exit 0
fi
. tests/integration/cluster/lib.sh >/dev/null
trap 'exit 143' TERM INT # so that lib.sh's EXIT cleanup stops the nodes
exec 3>&1 1>&2 # lib helpers print to stdout: keep stdout for the results

# run_study ADDR ID JSON: create the study, wait until it ends, print its
# duration in ms: from its study.create to its study.finish event, both
# stamped by the node at ADDR when it applied them (the HTTP polling of
# this script is not in the figure).
run_study() {
    local addr=$1 id=$2 body=$3
    http POST "http://$addr/v1/studies" "$body"
    [ "$HTTP_CODE" = 201 ] || fail "create $id: $HTTP_CODE $(cat "$T/body")"
    ended() { [ "$(curl -fsS -m 5 "http://$addr/v1/studies/$id?trials=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" != running ]; }
    wait_until 300 ended || fail "study $id did not end"
    curl -fsS -m 10 "http://$addr/v1/events?log=cluster&subject=$id&limit=10000" | python3 -c '
import json, sys
ev = json.load(sys.stdin)["events"]
t = {e["type"]: e["time_ms"] for e in ev if e["subject"] == sys.argv[1]}
print(t["study.finish"] - t["study.create"])' "$id"
}

sleep_study() { # ID PARALLELISM TRIALS
    echo "{\"id\":\"$1\",\"objective\":\"builtin:sleep:50\",\"strategy\":\"random\",\"seed\":1,
      \"space\":[{\"name\":\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],
      \"budget\":{\"trials\":$3},\"parallelism\":$2}"
}

if [[ " $parts " == *" speedup "* ]]; then
echo "optimise: speed-up, 2 nodes x 4 evaluators, 200 trials of sleep:50" >&2
CLUSTER_FLAGS=(--write_timeout=5s --log_level=warn --study_evaluators=4 ${OPTIM_CLUSTER_FLAGS:-})
start_cluster 2
ones=() eights=()
for rep in 1 2 3; do # medians of 3 (the machine is shared)
    ones+=("$(run_study "${HTTP[1]}" "serial$rep" "$(sleep_study "serial$rep" 1 200)")")
    eights+=("$(run_study "${HTTP[1]}" "parallel$rep" "$(sleep_study "parallel$rep" 8 200)")")
done
for i in 1 2; do kill_node "$i"; done
python3 - "${ones[*]}" "${eights[*]}" >&3 <<'PY'
import json, statistics, sys
one = statistics.median(int(x) for x in sys.argv[1].split())
eight = statistics.median(int(x) for x in sys.argv[2].split())
s = "optimise"
print(json.dumps({"suite": s, "metric": "study_200x50ms_1_evaluator_s", "value": one / 1000, "unit": "s"}))
print(json.dumps({"suite": s, "metric": "study_200x50ms_8_evaluators_2_nodes_s", "value": eight / 1000, "unit": "s"}))
print(json.dumps({"suite": s, "metric": "study_parallel_speedup", "value": round(one / eight, 2),
                  "unit": "x", "target": 6, "baseline": "1 evaluator", "met": one / eight >= 6}))
PY
fi
[[ " $parts " == *" loss"* ]] || exit 0

# Node loss: fresh 3-node cluster per run; the seed picks the victim among
# the followers running trials and the number of trials done before the kill.
lost_total=0
twice_total=0
sugg_twice_total=0
requeued_total=0
opt_kills=0
for run in $(seq "$first" $((first + runs - 1))); do
    echo "optimise: node loss run $run (of $first..$((first + runs - 1)))" >&2
    HTTP=() MESH=() RAFT=() PID=()
    rm -rf "$T"/n*
    CLUSTER_FLAGS=(--write_timeout=5s --log_level=warn --study_evaluators=2 --failure_timeout=1s)
    start_cluster 3
    A=${HTTP[1]}
    victim=$((2 + run % 2))
    after=$((1 + (run * 7) % 8))
    # Every node's evaluator agents placed and running first (they are
    # placed cluster agents: on a loaded machine the victim's may lag, and
    # the study would end before a trial ran there).
    evaluators_up() {
        curl -fsS -m 5 "http://$A/v1/cluster/agents?kind=evaluator&limit=1000" | python3 -c '
import json, sys
sys.exit(0 if sum(a["status"] == "running" for a in json.load(sys.stdin)["agents"]) >= 6 else 1)'
    }
    wait_until 60 evaluators_up || fail "run $run: evaluator agents not running"
    http POST "http://$A/v1/studies" "{\"id\":\"loss\",\"objective\":\"builtin:sleep:1000\",
      \"strategy\":\"tpe\",\"seed\":$run,\"space\":[{\"name\":\"x\",\"type\":\"float\",\"min\":0,\"max\":1}],
      \"budget\":{\"trials\":$loss_trials},\"parallelism\":6}"
    [ "$HTTP_CODE" = 201 ] || fail "create loss: $HTTP_CODE"
    opt_kill=0
    if [ $((run % 2)) = 0 ]; then # the node running the optimiser agent
        opt_node() {
            curl -fsS -m 5 "http://$A/v1/cluster/agents?kind=optimiser" | python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin)["agents"] if x["id"] == "optimiser-loss" and x["status"] == "running"]
sys.exit(1) if not a else print(a[0]["node"])'
        }
        wait_until 30 opt_node >/dev/null || fail "run $run: no optimiser agent"
        victim=$(opt_node)
        opt_kill=1
    fi
    for i in 1 2 3; do [ "$i" = "$victim" ] || Q=${HTTP[$i]}; done
    ready() {
        curl -fsS -m 5 "http://$A/v1/studies/loss" | python3 -c '
import json, sys
j = json.load(sys.stdin); v = int(sys.argv[1]); after = int(sys.argv[2])
done = j["trials_by_status"]["completed"]
if j["status"] != "running":
    sys.exit(0)  # too late: reported below
sys.exit(0 if done >= after and any(t["status"] == "running" and t["node"] == v for t in j["trials"]) else 1)' "$victim" "$after"
    }
    wait_until 60 ready || fail "run $run: no trial running on node $victim"
    [ "$(curl -fsS -m 5 "http://$A/v1/studies/loss?trials=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = running ] ||
        fail "run $run: the study ended before node $victim could be killed"
    kill_node "$victim"
    finished() { [ "$(curl -fsS -m 5 "http://$Q/v1/studies/loss?trials=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = finished ]; }
    wait_until 120 finished || fail "run $run: study did not finish"
    curl -fsS "http://$Q/v1/studies/loss" >"$T/loss.json"
    cluster_log "$Q" >"$T/events.txt"
    read -r lost twice sugg_twice requeued < <(python3 - "$T/loss.json" "$T/events.txt" "$loss_trials" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
completes, suggests = {}, {}
for line in open(sys.argv[2]):
    seq, typ, subj, payload = line.split(" ", 3)
    if typ in ("trial.complete", "trial.suggest") and subj == "loss":
        n = json.loads(payload)["number"]
        d = completes if typ == "trial.complete" else suggests
        d[n] = d.get(n, 0) + 1
lost = sum(1 for n in range(1, int(sys.argv[3]) + 1) if n not in completes) + sum(
    1 for t in j["trials"] if t["status"] != "completed")
twice = sum(v - 1 for v in completes.values())
sugg_twice = sum(v - 1 for v in suggests.values())
print(lost, twice, sugg_twice, sum(t["requeues"] for t in j["trials"]))
PY
)
    if [ "$parts" = loss-worker ]; then
        echo "{\"run\":$run,\"lost\":$lost,\"twice\":$twice,\"sugg_twice\":$sugg_twice,\"opt_kill\":$opt_kill,\"requeued\":$requeued}" >&3
    fi
    lost_total=$((lost_total + lost))
    twice_total=$((twice_total + twice))
    sugg_twice_total=$((sugg_twice_total + sugg_twice))
    opt_kills=$((opt_kills + opt_kill))
    requeued_total=$((requeued_total + requeued))
    for i in 1 2 3; do [ "$i" = "$victim" ] || kill_node "$i"; done
done
[ "$parts" != loss-worker ] || exit 0
python3 - "$runs" "$lost_total" "$twice_total" "$requeued_total" "$sugg_twice_total" "$opt_kills" >&3 <<'PY'
import json, sys
runs, lost, twice, req, sugg, okill = map(int, sys.argv[1:])
s = "optimise"
print(json.dumps({"suite": s, "metric": "node_loss_runs", "value": runs, "unit": "runs"}))
print(json.dumps({"suite": s, "metric": "node_loss_runs_killing_the_optimiser_agents_node", "value": okill, "unit": "runs"}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_suggested_twice", "value": sugg, "unit": "trials", "target": 0, "met": sugg == 0}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_lost", "value": lost, "unit": "trials", "target": 0, "met": lost == 0}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_counted_twice", "value": twice, "unit": "trials", "target": 0, "met": twice == 0}))
print(json.dumps({"suite": s, "metric": "node_loss_trials_requeued", "value": req, "unit": "trials"}))
PY
