#!/usr/bin/python3
"""Optuna side of the `optimise` benchmark suite.

Runs Optuna samplers on the same problems, budgets and seeds as
tests/bench/optim/bench_optim.c and prints one JSON line per
(problem, sampler): median over seeds of the best value, and the time
Optuna spends choosing a point (ask + suggest calls) per trial.

usage: optuna_bench.py PROBLEM SAMPLER TRIALS SEEDS [SVC_SCRIPT]
  PROBLEM: branin | hartmann6 | rosenbrock10 | svc
  SAMPLER: tpe | tpe-multivariate | cmaes | random | qmc
"""
import json
import math
import statistics
import sys
import time
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

H6_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H6_P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
H6_ALPHA = [1.0, 1.2, 3.0, 3.2]


def branin(x):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


def hartmann6(x):
    return -sum(H6_ALPHA[i] * math.exp(-sum(H6_A[i][j] * (x[j] - H6_P[i][j]) ** 2
                                            for j in range(6))) for i in range(4))


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


PROBLEMS = {
    "branin": ([(-5, 10), (0, 15)], branin),
    "hartmann6": ([(0, 1)] * 6, hartmann6),
    "rosenbrock10": ([(-5, 10)] * 10, rosenbrock),
}


def make_sampler(name, seed):
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-multivariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    raise SystemExit("unknown sampler " + name)


def main():
    problem, sampler, trials, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    svc = None
    if problem == "svc":
        sys.path.insert(0, sys.argv[5].rsplit("/", 1)[0])
        import svc_objective
        svc = svc_objective.Objective()
    bests, choose = [], []
    t_start = time.perf_counter()
    for seed in range(seeds):
        study = optuna.create_study(sampler=make_sampler(sampler, seed))
        for _ in range(trials):
            t0 = time.perf_counter()
            trial = study.ask()
            if svc is not None:
                params = {"C": trial.suggest_float("C", 1e-2, 1e3, log=True),
                          "gamma": trial.suggest_float("gamma", 1e-6, 1e-2, log=True)}
                choose.append(time.perf_counter() - t0)
                value = svc.evaluate(params)
            else:
                bounds, fn = PROBLEMS[problem]
                x = [trial.suggest_float("x%d" % i, lo, hi) for i, (lo, hi) in enumerate(bounds)]
                choose.append(time.perf_counter() - t0)
                value = fn(x)
            study.tell(trial, value)
        bests.append(study.best_value)
    bests.sort()
    print(json.dumps({
        "suite": "optimise", "system": "optuna-" + optuna.__version__, "problem": problem,
        "sampler": sampler, "trials": trials, "seeds": seeds,
        "best_median": statistics.median(bests), "best_min": bests[0], "best_max": bests[-1],
        "suggest_ms_mean": 1e3 * statistics.mean(choose),
        "suggest_ms_median": 1e3 * statistics.median(choose),
        "wall_s": round(time.perf_counter() - t_start, 3)}))


if __name__ == "__main__":
    main()
