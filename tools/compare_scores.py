"""Compare every data variable of every result file of two runs.

    python tools/compare_scores.py BEFORE/results AFTER/results [--atol 1e-12]

Walks ``scores/``, ``summary/``, ``model_similarity/``, ``dataset_similarity/`` and ``banded/``
under both folders, and checks that each file exists in both, with the same data variables,
dimensions and coordinates, and values equal within ``--atol`` (NaN equals NaN; strings exactly).
Prints one line per file and the largest difference; exits 1 on any mismatch. Attributes
(provenance: git commit, timestamps) are not compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

FOLDERS = ("scores", "summary", "model_similarity", "dataset_similarity", "banded")


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return np.inf
    if a.dtype.kind in "OUSb" or b.dtype.kind in "OUSb":
        return 0.0 if np.array_equal(a.astype(str), b.astype(str)) else np.inf
    a, b = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return np.inf
    return float(np.max(np.abs(a[~nan_a] - b[~nan_b]), initial=0.0))


def compare_file(path_a: Path, path_b: Path) -> tuple[float, list[str]]:
    problems, worst = [], 0.0
    with xr.open_dataset(path_a, engine="h5netcdf") as a, xr.open_dataset(path_b, engine="h5netcdf") as b:
        if set(a.data_vars) != set(b.data_vars):
            problems.append(f"variables differ: {sorted(set(a.data_vars) ^ set(b.data_vars))}")
        for name in sorted(set(a.variables) & set(b.variables)):
            if a[name].dims != b[name].dims:
                problems.append(f"{name}: dims {a[name].dims} vs {b[name].dims}")
                continue
            diff = _max_diff(a[name].values, b[name].values)
            worst = max(worst, diff)
            if not np.isfinite(diff):
                problems.append(f"{name}: values differ (shape, NaN pattern or strings)")
    return worst, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--atol", type=float, default=1e-12)
    args = parser.parse_args(argv)
    failed, n = 0, 0
    for folder in FOLDERS:
        files_a = sorted((args.before / folder).rglob("*.nc"))
        files_b = {p.relative_to(args.after) for p in (args.after / folder).rglob("*.nc")}
        for path_a in files_a:
            rel = path_a.relative_to(args.before)
            n += 1
            if rel not in files_b:
                print(f"MISSING  {rel}")
                failed += 1
                continue
            files_b.discard(rel)
            worst, problems = compare_file(path_a, args.after / rel)
            ok = not problems and worst <= args.atol
            failed += not ok
            print(f"{'ok' if ok else 'DIFFERS':8s} {rel}  max |diff| = {worst:.3g}" + "".join(f"\n    {p}" for p in problems))
        for rel in sorted(files_b):
            print(f"EXTRA    {rel}")
    print(f"{n} files compared, {failed} differ (atol {args.atol:g})")
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
