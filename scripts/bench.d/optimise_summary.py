#!/usr/bin/python3
"""Turn the raw records of the `optimise` suite into its JSON result lines:
one line per (system, problem, sampler), then the comparisons: MABEAM's
CMA-ES against Optuna's best sampler per problem, the TPE overhead, and
(with a third file) partitioned search (k optimisers, one per group of
dimensions) against one optimiser owning every dimension."""
import json
import sys

MABEAM_CHOICE = "cmaes"  # fixed before the comparison, see docs/optimisation.md


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    mabeam, optuna = load(sys.argv[1]), load(sys.argv[2])
    for r in mabeam + optuna:
        print(json.dumps({
            "suite": "optimise", "metric": "%s_best_median" % r["problem"],
            "value": r["best_median"], "unit": "objective", "system": r["system"],
            "sampler": r["sampler"], "trials": r["trials"], "seeds": r["seeds"],
            "best_min": r["best_min"], "best_max": r["best_max"],
            "suggest_ms_mean": r["suggest_ms_mean"]}))
    wins = 0
    problems = [p for p in ("branin", "hartmann6", "rosenbrock10", "svc")
                if any(r["problem"] == p for r in optuna)]
    for p in problems:
        mine = [r for r in mabeam if r["problem"] == p and r["sampler"] == MABEAM_CHOICE][0]
        best = min((r for r in optuna if r["problem"] == p), key=lambda r: r["best_median"])
        ok = mine["best_median"] <= best["best_median"]
        wins += ok
        print(json.dumps({
            "suite": "optimise", "metric": "%s_best_median" % p, "value": mine["best_median"],
            "unit": "objective", "mabeam_sampler": MABEAM_CHOICE, "optuna": best["best_median"],
            "optuna_sampler": best["sampler"], "target": best["best_median"],
            "trials": mine["trials"], "seeds": mine["seeds"], "pass": ok}))
    print(json.dumps({"suite": "optimise", "metric": "quality_wins", "value": wins,
                      "unit": "problems", "of": len(problems), "target": 3}))
    pairs = (("tpe", "tpe-multivariate"), ("tpe-independent", "tpe"))
    for p in ("branin", "hartmann6", "rosenbrock10"):
        for mine_name, theirs_name in pairs:
            m = [r for r in mabeam if r["problem"] == p and r["sampler"] == mine_name]
            o = [r for r in optuna if r["problem"] == p and r["sampler"] == theirs_name]
            if not (m and o):
                continue
            ratio = m[0]["suggest_ms_mean"] / o[0]["suggest_ms_mean"]
            print(json.dumps({
                "suite": "optimise", "metric": "%s_%s_suggest_ms" % (p, mine_name),
                "value": m[0]["suggest_ms_mean"], "unit": "ms", "optuna_sampler": theirs_name,
                "optuna": o[0]["suggest_ms_mean"], "ratio": ratio, "target": 0.1,
                "pass": ratio <= 0.1}))

    if len(sys.argv) > 3:
        partition(mabeam, load(sys.argv[3]))


def partition(mabeam, part):
    """Each partitioned run against the same strategy owning everything
    (same problem, budget, seeds); lower is better on every problem."""
    for r in part:
        base = r["sampler"].rsplit("-part", 1)[0]
        one = [m for m in mabeam if m["problem"] == r["problem"] and m["sampler"] == base
               and m["trials"] == r["trials"] and m["seeds"] == r["seeds"]]
        if not one:
            continue
        one = one[0]
        print(json.dumps({
            "suite": "optimise", "metric": "%s_partitioned_best_median" % r["problem"],
            "value": r["best_median"], "unit": "objective", "sampler": base,
            "groups": r["groups"], "baseline": one["best_median"],
            "baseline_sampler": base + " (one optimiser)",
            "difference": r["best_median"] - one["best_median"],
            "partitioned_wins": r["best_median"] < one["best_median"],
            "trials": r["trials"], "seeds": r["seeds"], "best_min": r["best_min"],
            "best_max": r["best_max"], "suggest_ms_mean": r["suggest_ms_mean"],
            "baseline_suggest_ms_mean": one["suggest_ms_mean"]}))


if __name__ == "__main__":
    main()
