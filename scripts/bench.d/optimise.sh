#!/usr/bin/env bash
# Suite `optimise`: MABEAM's optimisers side by side with Optuna 3.1 on the
# same problems, budgets and seeds (see docs/optimisation.md, "Benchmark").
#   quality:  median over 10 seeds of the best value after 100 trials
#             (Branin, Hartmann-6, Rosenbrock-10) and 50 trials (SVC 3-fold
#             CV error on digits); MABEAM's CMA-ES (fixed in advance) against
#             Optuna's best sampler of those run on the problem.
#   overhead: mean time per suggestion of MABEAM's TPE vs Optuna's TPE at
#             100 trials (target ratio <= 0.1).
#   partition: coordinated search, k optimisers each owning a group of
#             dimensions (mb_optim_part) against one optimiser owning all,
#             same strategy, functions (Hartmann-6, Rosenbrock-10 in 2 and
#             3 groups), budget (100) and seeds.
#   studies:  parallel speed-up of a study on a 2-node cluster and node loss
#             over 20 seeded runs (scripts/bench.d/optimise_cluster.sh).
# Wall time: the node-loss runs (waiting, not computing) start first and
# run beside everything else; SVC (both systems) runs beside the cheap
# problems; Optuna's three samplers of a problem run in parallel processes;
# the timing-sensitive speed-up runs last, alone.
# Needs $MB_BENCH_BUILD (Release, MB_BENCH=ON, built) and /usr/bin/python3
# with python3-optuna and python3-sklearn. Env: OPTIM_SEEDS (10),
# OPTIM_SKIP_SVC=1 to leave out the slow SVC problem, OPTIM_SKIP_CLUSTER=1
# to leave out the cluster part, OPTIM_LOSS_RUNS (20).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MB_BENCH_BUILD:?set MB_BENCH_BUILD to the Release bench build}
bench="$build/tests/bench/optim/bench_optim"
py=/usr/bin/python3
seeds=${OPTIM_SEEDS:-10}
here=scripts/bench.d
raw=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$raw"' EXIT

if ! $py -c 'import optuna, sklearn' 2>/dev/null; then
    echo "optimise: needs python3-optuna and python3-sklearn (apt-get install -y python3-optuna python3-sklearn)" >&2
    exit 1
fi

if [ "${OPTIM_SKIP_CLUSTER:-0}" != 1 ]; then
    echo "optimise: node-loss runs in the background" >&2
    OPTIM_CLUSTER_PARTS=loss bash "$here/optimise_cluster.sh" >"$raw/loss.json" &
    pid_l=$!
fi

svc_space='[{"name":"C","type":"float","low":0.01,"high":1000,"log":true},{"name":"gamma","type":"float","low":1e-6,"high":0.01,"log":true}]'

if [ "${OPTIM_SKIP_SVC:-0}" != 1 ]; then
    # The slow problem first, the two systems in parallel (one objective
    # process each); the cheap problems run meanwhile.
    echo "optimise: svc (50 trials x $seeds seeds, both systems in parallel)" >&2
    "$bench" --external "$py $here/svc_objective.py" --space "$svc_space" --name svc \
        --strategy cmaes --trials 50 --seeds "$seeds" >"$raw/svc-mabeam.json" &
    pid_m=$!
    $py "$here/optuna_bench.py" svc tpe 50 "$seeds" "$here/svc_objective.py" >"$raw/svc-optuna.json" &
    pid_o=$!
fi

for p in branin hartmann6 rosenbrock10; do
    for s in cmaes tpe random sobol portfolio; do
        "$bench" --fn "$p" --strategy "$s" --trials 100 --seeds "$seeds" >>"$raw/mabeam.json"
    done
    "$bench" --fn "$p" --strategy tpe --independent --trials 100 --seeds "$seeds" >>"$raw/mabeam.json"
    echo "optimise: optuna $p (tpe, tpe-multivariate, cmaes in parallel)" >&2
    pids=()
    for s in tpe tpe-multivariate cmaes; do
        $py "$here/optuna_bench.py" "$p" "$s" 100 "$seeds" >"$raw/optuna-$p-$s.json" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    for s in tpe tpe-multivariate cmaes; do cat "$raw/optuna-$p-$s.json" >>"$raw/optuna.json"; done
done

# Partitioned (coordinated) search against one optimiser owning everything.
for p in hartmann6 rosenbrock10; do
    for s in tpe cmaes; do
        for g in 2 3; do
            "$bench" --fn "$p" --strategy "$s" --groups "$g" --trials 100 --seeds "$seeds" >>"$raw/part.json"
        done
    done
done

if [ "${OPTIM_SKIP_SVC:-0}" != 1 ]; then
    wait "$pid_m"
    wait "$pid_o"
    cat "$raw/svc-mabeam.json" >>"$raw/mabeam.json"
    cat "$raw/svc-optuna.json" >>"$raw/optuna.json"
fi

$py "$here/optimise_summary.py" "$raw/mabeam.json" "$raw/optuna.json" "$raw/part.json"

# Studies on real mabeamd processes: the node-loss runs started first; the
# speed-up (timing-sensitive) after everything else.
if [ "${OPTIM_SKIP_CLUSTER:-0}" != 1 ]; then
    wait "$pid_l"
    OPTIM_CLUSTER_PARTS=speedup bash "$here/optimise_cluster.sh"
    cat "$raw/loss.json"
fi
