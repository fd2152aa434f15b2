#!/usr/bin/env bash
# Suite `optimise`: MABEAM's optimisers side by side with Optuna 3.1 on the
# same problems, budgets and seeds (see docs/optimisation.md, "Benchmark").
#   quality:  median over 10 seeds of the best value after 100 trials
#             (Branin, Hartmann-6, Rosenbrock-10) and 50 trials (SVC 3-fold
#             CV error on digits); MABEAM's CMA-ES (fixed in advance) against
#             Optuna's best sampler of those run on the problem.
#   overhead: mean time per suggestion of MABEAM's TPE vs Optuna's TPE at
#             100 trials (target ratio <= 0.1).
#   studies:  parallel speed-up of a study on a 2-node cluster and node loss
#             over 20 seeded runs (scripts/bench.d/optimise_cluster.sh).
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
trap 'rm -rf "$raw"' EXIT

if ! $py -c 'import optuna, sklearn' 2>/dev/null; then
    echo "optimise: needs python3-optuna and python3-sklearn (apt-get install -y python3-optuna python3-sklearn)" >&2
    exit 1
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
    for s in tpe tpe-multivariate cmaes; do
        echo "optimise: optuna $p $s" >&2
        $py "$here/optuna_bench.py" "$p" "$s" 100 "$seeds" >>"$raw/optuna.json"
    done
done

if [ "${OPTIM_SKIP_SVC:-0}" != 1 ]; then
    wait "$pid_m"
    wait "$pid_o"
    cat "$raw/svc-mabeam.json" >>"$raw/mabeam.json"
    cat "$raw/svc-optuna.json" >>"$raw/optuna.json"
fi

$py "$here/optimise_summary.py" "$raw/mabeam.json" "$raw/optuna.json"

# Studies on real mabeamd processes (timing-sensitive: after the rest).
if [ "${OPTIM_SKIP_CLUSTER:-0}" != 1 ]; then
    bash "$here/optimise_cluster.sh"
fi
