"""Linear CKA speed: brainalign's feature-space CKA vs a plain matmul and a reference.

Same inputs in the same process, for float32 and float64:

* numpy ``X.T @ Y`` (n x d by n x d), the yardstick: 2 n d^2 FLOPs;
* ``brainalign.metrics.similarity.linear_cka_features`` (what ``pairwise("linear_cka")``
  runs when n > width): three d x n x d products, counted as 3 * 2 n d^2 FLOPs; its
  achieved FLOP rate is reported as a fraction of the matmul's (target >= 0.5). On the
  CPU it runs in numpy, whose BLAS does X'X and Y'Y as syrk (half a matmul each), so
  the fraction can exceed 1; its torch implementation (the GPU path) is timed too;
* the reference: the C++ package ``repsim`` (``repsim.cka(..., "linear", "gretton")``,
  n x n Grams, always float64) if importable, and a straightforward numpy
  implementation of the same feature-space formula.

    python benchmarks/cka.py                    # n=10,000 stimuli, d=4,096 units
    python benchmarks/cka.py --n 2000 --d 512   # quick
    python benchmarks/cka.py --repsim-max-n 10000   # also time repsim at full size (O(n^3): ~30 min)
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best_of

from brainalign.metrics import similarity


def numpy_linear_cka(x, y):
    """The formula written plainly in numpy (feature space)."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="stimuli (rows)")
    parser.add_argument("--d", type=int, default=4_096, help="units (columns) of both representations")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (references: 1 if slow)")
    parser.add_argument("--device", default="cpu", help="device for brainalign (the yardstick matmul is numpy/CPU)")
    parser.add_argument("--no-repsim", action="store_true", help="skip repsim even if it is installed")
    parser.add_argument("--repsim-max-n", type=int, default=4000,
                        help="skip repsim above this n: its n x n Gram products cost O(n^3) "
                             "(about 15 s at n=2000 on 2 cores, so about 30 min at n=10,000)")
    args = parser.parse_args()
    n, d = args.n, args.d

    try:
        import repsim
    except ImportError:
        repsim = None
    skipped = ""
    if repsim is not None and (args.no_repsim or n > args.repsim_max_n):
        skipped = "--no-repsim" if args.no_repsim else f"n={n} > --repsim-max-n {args.repsim_max_n}"
        repsim = None

    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, 64))
    x64 = base @ rng.standard_normal((64, d)) + rng.standard_normal((n, d)) * 4.0
    y64 = base @ rng.standard_normal((64, d)) + rng.standard_normal((n, d)) * 4.0
    path = "feature space" if n > d else "n x n Grams"
    print(f"linear CKA, n={n} stimuli, d={d} units; pairwise('linear_cka') uses {path} here")
    if n <= d:
        print("  (n <= d: linear_cka_features is still what is timed; pairwise would use Grams)")
    flops_mm = 2.0 * n * d * d
    flops_ours = 3 * flops_mm

    repsim_result = None
    if repsim is not None:
        t_rep, v_rep = best_of(lambda: repsim.cka([x64, y64], kernel_type="linear", estimator="gretton")[0, 1], 1)
        repsim_result = (t_rep, float(v_rep))

    header = (f"{'dtype':<8} {'matmul s':>9} {'ours s':>9} {'ours GFLOP/s':>13} {'of matmul':>10} {'torch s':>8} "
              f"{'numpy-formula s':>16} {'speed-up':>9}")
    if repsim_result:
        header += f" {'repsim s':>9} {'speed-up':>9}"
    header += f" {'CKA':>9} {'max |diff|':>11}"
    print(header)
    for dtype in ("float32", "float64"):
        x, y = x64.astype(dtype), y64.astype(dtype)
        t_mm, _ = best_of(lambda: x.T @ y, args.repeats)
        t_ours, ours = best_of(lambda: similarity.linear_cka_features(x, y, dtype=dtype, device=args.device),
                               args.repeats)
        t_torch, _ = best_of(lambda: similarity._features_torch([x], [y], similarity.resolve_dtype(dtype),
                                                               similarity.resolve_device(args.device), n, False),
                             args.repeats)
        t_np, ref_np = best_of(lambda: numpy_linear_cka(x, y), args.repeats)
        fraction = (flops_ours / t_ours) / (flops_mm / t_mm)
        line = (f"{dtype:<8} {t_mm:9.3f} {t_ours:9.3f} {flops_ours / t_ours / 1e9:13.1f} {fraction:10.2f} {t_torch:8.3f} "
                f"{t_np:16.3f} {t_np / t_ours:8.2f}x")
        diff = abs(ours - ref_np)
        if repsim_result:
            line += f" {repsim_result[0]:9.3f} {repsim_result[0] / t_ours:8.1f}x"
            diff = max(diff, abs(ours - repsim_result[1]))
        print(line + f" {ours:9.6f} {diff:11.1e}")
    print("of matmul = brainalign's FLOP rate (counted as 3 x 2nd^2 FLOPs) / numpy X.T @ Y's rate (2nd^2); "
          "target >= 0.5.\n  On the CPU, X'X and Y'Y run as BLAS syrk (half a matmul each), so > 1 is possible.")
    print("torch = the same computation through brainalign's torch implementation (its GPU path) on --device.")
    print("numpy-formula = the same feature-space formula in plain numpy (same dtype).")
    if repsim_result:
        print("repsim = repsim.cka(kernel_type='linear', estimator='gretton'): n x n Grams in C++/Eigen, "
              "float64 whatever the input dtype, timed once.")
    else:
        print(f"repsim not timed ({skipped or 'not installed'}).")
    print("max |diff| = largest difference of brainalign's CKA from the references on the same inputs.")


if __name__ == "__main__":
    main()
