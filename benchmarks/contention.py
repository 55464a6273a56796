"""Robustness to a busy machine: each workload's slowdown when a second CPU-bound process runs.

Cluster nodes are shared, and a laptop runs other things. For each workload this script takes
the best of ``--repeats`` wall times on the idle machine, then starts one CPU-bound process
(a Python busy loop, one core) and takes the best of ``--repeats`` again; the slowdown is the
ratio. The yardstick is himalaya's ``RidgeCV`` on its numpy backend, timed the same way on the
same data: a workload passes when its slowdown is no larger than himalaya's (with 5% slack for
timing noise). Nothing here sets a thread or wait policy: brainalign's own
(:mod:`brainalign.threads`, passive OpenMP waiting, applied when brainalign is imported) is the
one a user's run has.

    python benchmarks/contention.py              # about 3 minutes on 2 cores
    python benchmarks/contention.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings

import brainalign  # noqa: F401  (first: its thread policy, as in a user's run)
import numpy as np
import torch
from sklearn.model_selection import KFold
from timing import best_of

from brainalign.metrics import cka, rsa, similarity
from brainalign.metrics.ridge import ridge_cv

SLACK = 1.05


def workloads(seed: int) -> dict:
    """name -> a function of no arguments, each a few seconds on 2 idle cores."""
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    rng = np.random.default_rng(seed)
    n, p, v = 2000, 512, 6000
    x = rng.standard_normal((n, p)) / np.sqrt(np.arange(1, p + 1))
    y = x @ (rng.standard_normal((p, v)) * 10.0 ** -rng.uniform(0, 3, v)) + rng.standard_normal((n, v))
    grid = np.logspace(-1, 6, 10)
    splits = list(KFold(5).split(x))

    def himalaya_numpy():
        set_backend("numpy", on_error="raise")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return RidgeCV(alphas=grid, cv=splits).fit(x, y).best_alphas_

    wide = rng.standard_normal((5000, 1024))
    others = [wide @ rng.standard_normal((1024, 512)) + rng.standard_normal((5000, 512)) for _ in range(3)]
    stimuli, layers, subjects = 92, 30, 8
    latent = rng.standard_normal((stimuli, 16))
    model_rdms = rsa.rdm(latent @ rng.standard_normal((layers, 16, 64)) + rng.standard_normal((layers, stimuli, 64)))
    brain_rdms = rsa.rdm(latent @ rng.standard_normal((subjects, 16, 100))
                         + 4 * rng.standard_normal((subjects, stimuli, 100)))
    pattern_idx = rng.integers(0, stimuli, size=(1000, stimuli))
    model_grams = cka.centered_gram(latent @ rng.standard_normal((layers, 16, 64)))
    brain_grams = cka.centered_gram(latent @ rng.standard_normal((subjects, 16, 100)))
    return {
        "himalaya RidgeCV, numpy backend (yardstick)": himalaya_numpy,
        "ridge_cv K-fold, float64": lambda: ridge_cv(x, y, grid, cv=splits, dtype=torch.float64, device="cpu"),
        "ridge_cv leave-one-out, float64": lambda: ridge_cv(x, y, grid, cv="loo", dtype=torch.float64, device="cpu"),
        "linear CKA, 5,000 x 1,024 vs 3 x 512": lambda: similarity.pairwise("linear_cka", [wide], others),
        "CKA permutation null, 92 stimuli, 1,000": lambda: cka.permutation_null(
            model_grams, brain_grams, 1000, np.random.default_rng(0)),
        "RSA bootstrap, Spearman, 92 stimuli, 1,000": lambda: rsa.bootstrap_compare(
            model_rdms, brain_rdms, "spearman", pattern_idx),
        "RSA bootstrap, tau-a, 92 stimuli, 1,000": lambda: rsa.bootstrap_compare(
            model_rdms, brain_rdms, "tau-a", pattern_idx),
        "RSA bootstrap, whitened Pearson, 92 stimuli, 1,000": lambda: rsa.bootstrap_compare(
            model_rdms, brain_rdms, "corr_cov", pattern_idx),
    }


class Busy:
    """One CPU-bound process (a Python busy loop) for the duration of the block."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-u", "-c", "print(flush=True)\nwhile True: pass"],
                                        stdout=subprocess.PIPE)
        self.process.stdout.readline()  # its interpreter is up and the loop starts now, not mid-start-up
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')!r} "
          f"(set by brainalign unless the user set it); load before: {os.getloadavg()[0]:.1f}\n")
    jobs = workloads(args.seed)
    for fn in jobs.values():  # warm-up: imports, compilation (numba), thread pools
        fn()
    rows = {}
    for name, fn in jobs.items():
        idle, _ = best_of(fn, args.repeats)
        with Busy():
            busy, _ = best_of(fn, args.repeats)
        rows[name] = (idle, busy, busy / idle)
        print(f"  {name}: idle {idle:.2f} s, busy {busy:.2f} s", flush=True)
    yardstick = rows["himalaya RidgeCV, numpy backend (yardstick)"][2]
    print(f"\n| workload | idle s | one busy process s | slowdown | no worse than himalaya numpy ({yardstick:.2f}x) |")
    print("|---|---:|---:|---:|:---:|")
    for name, (idle, busy, ratio) in rows.items():
        verdict = "-" if "yardstick" in name else ("yes" if ratio <= yardstick * SLACK else "**no**")
        print(f"| {name} | {idle:.2f} | {busy:.2f} | {ratio:.2f}x | {verdict} |")


if __name__ == "__main__":
    main()
