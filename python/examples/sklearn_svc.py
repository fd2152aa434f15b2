#!/usr/bin/env python3
"""A study objective in Python: 3-fold cross-validation error of
scikit-learn's SVC (RBF kernel) on the digits data set, as a function of
C and gamma. Run it from a study (docs/studies.md):

    {"id": "svc", "objective": "python:/path/to/python/examples/sklearn_svc.py",
     "direction": "minimize", "strategy": "tpe",
     "space": [{"name": "C", "type": "float", "min": 1e-2, "max": 1e3, "log_scale": true},
               {"name": "gamma", "type": "float", "min": 1e-5, "max": 1e-1, "log_scale": true}],
     "budget": {"trials": 40}, "parallelism": 4}

Needs Debian's /usr/bin/python3 with python3-sklearn (apt-get install
python3-sklearn); the evaluator runs /usr/bin/python3 unless
MABEAM_PYTHON names another interpreter. Each fold's error is reported as
an intermediate value."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mabeam_agent import objective  # noqa: E402


def svc_error(params, report):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    x, y = load_digits(return_X_y=True)
    errors = []
    for step, (train, test) in enumerate(StratifiedKFold(n_splits=3).split(x, y), start=1):
        model = SVC(C=float(params["C"]), gamma=float(params["gamma"]))
        model.fit(x[train], y[train])
        errors.append(1.0 - model.score(x[test], y[test]))
        report(step, sum(errors) / len(errors))
    return sum(errors) / len(errors)


if __name__ == "__main__":
    sys.exit(objective(svc_error))
