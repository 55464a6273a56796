"""Probe speed: brainalign's probe metric vs scikit-learn's ``permutation_test_score``.

The task: a layer of ``--units`` units on ``--stimuli`` stimuli with ``--classes`` balanced classes
(a random read-out of the layer plus noise), probed by ``StandardScaler`` + ``RidgeClassifierCV``
(7 alphas, leave-one-out) in 5 stratified folds, with ``--permutations`` label shuffles for the
chance level and p value. Both sides run in this process on the same data, alternating, best of
``--repeats``:

1. ours: :func:`brainalign.jobs.probe.score_probe` on one layer (every shuffle probed in closed form
   from one SVD per fold; the 1,000 bootstrap resamples of the interval and the concept depth
   included);
2. scikit-learn: ``permutation_test_score(make_pipeline(StandardScaler(), RidgeClassifierCV(alphas)),
   X, y, cv=folds, n_permutations=..., scoring="balanced_accuracy", n_jobs=J)``, which refits the
   pipeline for every shuffle and fold, timed at every ``n_jobs`` of ``--jobs`` (default 1 and 2:
   joblib's worker processes against their start-up); the fastest is the reference.

It prints every time, the ratio to scikit-learn's fastest configuration, and checks that the
observed scores are equal.

    python benchmarks/probe.py                          # 120 stimuli, 384 units, 6 classes
    python benchmarks/probe.py --stimuli 1000 --units 576 --permutations 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stimuli", type=int, default=120)
    parser.add_argument("--units", type=int, default=384)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="scikit-learn n_jobs values to time; the fastest is the reference")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of both sides (default 1)")
    args = parser.parse_args(argv)

    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.model_selection import permutation_test_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainalign.jobs.probe import _folds, score_probe
    from brainalign.metrics.probe import DEFAULT_ALPHAS
    from brainalign.threads import pin_threads

    rng = np.random.default_rng(0)
    n, k = args.stimuli, args.classes
    x = rng.standard_normal((n, args.units))
    y = np.repeat(np.arange(k), int(np.ceil(n / k)))[:n]
    x[:, :8] += np.eye(k)[y] @ rng.standard_normal((k, 8))
    ids = np.array([f"s{i}" for i in range(n)])
    layer = [xr.DataArray(x, dims=("stimulus", "unit"), coords={"stimulus_id": ("stimulus", ids),
                                                               "layer": "layer", "layer_index": 0, "depth": 0.0})]
    brain = xr.Dataset({"responses": (("stimulus", "neuroid", "repetition"), y[:, None, None].astype(float))},
                       coords={"stimulus_id": ("stimulus", ids), "subject": ("neuroid", ["labels"]),
                               "roi": ("neuroid", ["c"]), "label_type": ("neuroid", ["categorical"])})
    brain.attrs["classes_c"] = str([str(i) for i in range(k)]).replace("'", '"')
    settings = {"n_permutations": args.permutations, "n_bootstrap": 1000}
    folds = _folds(y.astype(float), True, None, 5, 0, "c")
    estimator = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=DEFAULT_ALPHAS))

    ours, theirs = [], {jobs: [] for jobs in args.jobs}
    pin_threads(args.threads)  # both sides: the probe job runs on 1 thread (metric registry)
    for _ in range(args.repeats):
        t = time.perf_counter()
        result = score_probe(layer, brain, settings, seed=0)
        ours.append(time.perf_counter() - t)
        for jobs in args.jobs:
            t = time.perf_counter()
            score, _, _ = permutation_test_score(estimator, x, y, cv=folds, n_permutations=args.permutations,
                                                 scoring="balanced_accuracy", n_jobs=jobs, random_state=0)
            theirs[jobs].append(time.perf_counter() - t)
    equal = float(result["balanced_accuracy"].values[0, 0]) == score
    fastest = min(theirs, key=lambda jobs: min(theirs[jobs]))
    print(f"{n} stimuli x {args.units} units, {k} classes, 5 folds, {args.permutations} shuffles, best of "
          f"{args.repeats}")
    print(f"  brainalign score_probe        {min(ours):8.2f} s   (balanced accuracy "
          f"{float(result['balanced_accuracy'].values[0, 0]):.4f}, chance {float(result['null_mean'].values[0, 0]):.4f})")
    for jobs, times in theirs.items():
        print(f"  sklearn permutation_test_score {min(times):8.2f} s   (balanced accuracy {score:.4f}, "
              f"n_jobs={jobs}, {args.threads} BLAS thread(s))")
    print(f"  ratio {min(theirs[fastest]) / min(ours):.1f}x against scikit-learn's fastest here (n_jobs={fastest}); "
          f"observed scores equal: {equal}")


if __name__ == "__main__":
    main()
