#!/usr/bin/python3
"""The SVC objective of the `optimise` benchmark suite: 3-fold
cross-validation error of scikit-learn's SVC (RBF kernel) on the digits
data set. As a program it reads one JSON object per line on stdin
({"C": float, "gamma": float}) and writes the error, one number per line;
optuna_bench.py imports the same Objective class so that both systems
optimise exactly the same function."""
import json
import sys

from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.svm import SVC


class Objective:
    def __init__(self):
        self.x, self.y = load_digits(return_X_y=True)
        self.folds = StratifiedKFold(n_splits=3, shuffle=False)

    def evaluate(self, params):
        model = SVC(C=float(params["C"]), gamma=float(params["gamma"]))
        return 1.0 - cross_val_score(model, self.x, self.y, cv=self.folds).mean()


def main():
    objective = Objective()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        print(repr(objective.evaluate(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
