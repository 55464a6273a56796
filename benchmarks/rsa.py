"""RSA speed: brainalign's vectorised comparisons and stimulus bootstrap vs rsatoolbox.

Section 1 (at the smallest stimulus count only): one comparison of L layer RDMs
with S subject RDMs, ``brainalign.metrics.rsa.compare`` vs ``rsatoolbox.rdm.compare``
(Spearman and tau-a), as before.

Section 2: the stimulus bootstrap of every layer against the subjects' mean,
``rsa.bootstrap_evaluations(model, brain, method, pattern_idx=idx)`` over B
resamples vs ``rsatoolbox.inference.eval_bootstrap_pattern(..., N=K,
boot_noise_ceil=False)``. rsatoolbox draws its indices from numpy's global RNG
(one ``np.random.randint(0, N, size=N)`` per sample); the script seeds it, replays
those draws for our indices and runs rsatoolbox after re-seeding, so the first K
resamples are identical in both and their evaluations are compared (max |diff|,
asserted < 1e-8). rsatoolbox costs about 34 s per resample at 1,000 stimuli and
30 layers, so it runs only K resamples there (``--reference-bootstrap``) and its
time for all B is extrapolated linearly (marked "extrapolated" in the output): the
one-off cost after its loop (a noise ceiling on the full data, timed separately)
plus the per-resample cost times B.

    python benchmarks/rsa.py                          # 92 and 1,000 stimuli, B = 1,000
    python benchmarks/rsa.py --quick                  # smoke run (seconds to a minute)
    python benchmarks/rsa.py --stimuli 92 --method corr --reference-bootstrap 100
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import sys
import time
import warnings

import numpy as np
from rsatoolbox.inference import boot_noise_ceiling, eval_bootstrap_pattern
from rsatoolbox.model import ModelFixed
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsatoolbox_compare
from timing import best_of
from tqdm import tqdm

from brainalign.metrics import rsa

LAYER_UNITS, SUBJECT_VOXELS, LATENT = 64, 100, 16


def simulate(n_stimuli: int, n_layers: int, n_subjects: int, seed: int):
    """Layer and subject RDMs (correlation distance) sharing a latent stimulus structure.

    Every layer and subject reads the same ``LATENT``-dimensional stimulus features
    through its own random projection, plus noise whose level grows with depth
    (layers) or is fixed (subjects), so the RDMs correlate at varied levels.
    """
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_stimuli, LATENT))
    noise = np.linspace(0.5, 3.0, n_layers)[:, None, None]
    layers = (latent @ rng.standard_normal((n_layers, LATENT, LAYER_UNITS))
              + noise * rng.standard_normal((n_layers, n_stimuli, LAYER_UNITS)))
    subjects = (latent @ rng.standard_normal((n_subjects, LATENT, SUBJECT_VOXELS))
                + 4.0 * rng.standard_normal((n_subjects, n_stimuli, SUBJECT_VOXELS)))
    return rsa.rdm(layers), rsa.rdm(subjects)


def replayed_indices(n_stimuli: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """The stimulus indices eval_bootstrap_pattern draws after ``np.random.seed(seed)``
    (one ``randint(0, N, size=N)`` per sample, nothing else in its loop), continued
    for samples beyond the ones rsatoolbox runs."""
    np.random.seed(seed)
    return np.stack([np.random.randint(0, n_stimuli, size=n_stimuli) for _ in range(n_bootstrap)])


def rsatoolbox_bootstrap(model, brain, method, n_samples, seed):
    """eval_bootstrap_pattern on the same RDMs; returns (evaluations (K, L), seconds)."""
    models = [ModelFixed(f"layer{i}", RDMs(v[None])) for i, v in enumerate(model)]
    data = RDMs(brain)
    np.random.seed(seed)
    t = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # its own tqdm bar
        warnings.simplefilter("ignore")
        result = eval_bootstrap_pattern(models, data, method=method, N=n_samples, boot_noise_ceil=False)
    seconds = time.perf_counter() - t
    evaluations = np.asarray(result.evaluations)
    return evaluations.reshape(n_samples, len(model)), seconds


def compare_section(model, brain):
    print(f"## rsa.compare vs rsatoolbox.rdm.compare: {model.shape[0]} layers x {brain.shape[0]} subjects, "
          f"{rsa.n_stimuli_of(model.shape[1])} stimuli ({model.shape[1]} pairs)\n")
    print("| comparison | brainalign s | rsatoolbox s | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for method in ("spearman", "tau-a"):
        ours_t, ours = best_of(lambda: rsa.compare(model, brain, method))
        ref_t, ref = best_of(lambda: rsatoolbox_compare(RDMs(model), RDMs(brain), method=method),
                             repeats=1 if method == "tau-a" else 3)
        print(f"| {method} | {ours_t:.4f} | {ref_t:.4f} | {ref_t / ours_t:.1f}x | {np.abs(ours - ref).max():.1e} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stimuli", type=int, nargs="+", default=None,
                        help="stimulus counts, one table row each (default 92 1000; --quick: 92 200)")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--bootstrap", type=int, default=None,
                        help="bootstrap resamples B for brainalign (default 1000; --quick: 20)")
    parser.add_argument("--method", default="spearman", choices=rsa.COMPARISONS)
    parser.add_argument("--reference-bootstrap", type=int, nargs="+", default=None,
                        help="resamples rsatoolbox actually runs, one value or one per --stimuli entry "
                             "(at least 2; default: B up to 200 stimuli, else 5; --quick: B up to 200 stimuli, else 2); "
                             "its time for B resamples is extrapolated linearly when this is < B")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: B = 20, stimuli 92 and 200")
    parser.add_argument("--no-compare", action="store_true", help="skip the rsa.compare section")
    args = parser.parse_args()

    stimuli = args.stimuli or ([92, 200] if args.quick else [92, 1000])
    n_boot = args.bootstrap or (20 if args.quick else 1000)
    if args.reference_bootstrap is None:
        reference = [n_boot if n <= 200 else (2 if args.quick else 5) for n in stimuli]
    elif len(args.reference_bootstrap) == 1:
        reference = args.reference_bootstrap * len(stimuli)
    elif len(args.reference_bootstrap) == len(stimuli):
        reference = args.reference_bootstrap
    else:
        parser.error("--reference-bootstrap takes one value or one per --stimuli entry")
    # rsatoolbox's eval_bootstrap_pattern fails for N=1 (its evaluations array is then 1-D)
    reference = [max(2, min(k, n_boot)) for k in reference]
    if n_boot < 2:
        parser.error("--bootstrap must be at least 2")

    print(f"numpy {np.__version__}, python {sys.version.split()[0]}; seed {args.seed}\n")
    if not args.no_compare:
        compare_section(*simulate(min(stimuli), args.layers, args.subjects, args.seed))

    rows, notes = [], []
    for n, k in zip(stimuli, reference):
        model, brain = simulate(n, args.layers, args.subjects, args.seed)
        n_pairs = model.shape[1]
        idx = replayed_indices(n, n_boot, args.seed)
        print(f"{n} stimuli ({n_pairs} pairs), {args.layers} layers x {args.subjects} subjects, "
              f"{args.method}, B = {n_boot}", flush=True)
        t = time.perf_counter()
        rsa.bootstrap_evaluations(model[:1], brain[:1], args.method, pattern_idx=idx[:2])
        print(f"  brainalign warm-up (imports, compiled kernels loaded from numba's cache): "
              f"{time.perf_counter() - t:.2f} s, once per process, not in the time below", flush=True)
        with tqdm(total=n_boot, desc=f"brainalign {n} stimuli", file=sys.stdout, mininterval=2) as bar:
            t = time.perf_counter()
            ours = rsa.bootstrap_evaluations(model, brain, args.method, pattern_idx=idx, progress=bar)
            ours_s = time.perf_counter() - t
        print(f"  brainalign: {ours_s:.2f} s for {n_boot} resamples", flush=True)

        ref, ref_s = rsatoolbox_bootstrap(model, brain, args.method, k, args.seed)
        if not np.array_equal(np.isnan(ref), np.isnan(ours[:k])):
            raise AssertionError("NaN resamples differ between brainalign and rsatoolbox")
        diff = float(np.nanmax(np.abs(ours[:k] - ref))) if np.isfinite(ref).any() else 0.0
        assert diff < 1e-8, f"brainalign and rsatoolbox disagree on the same resamples: {diff:.2e}"
        if k < n_boot:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                boot_noise_ceiling(RDMs(brain), method=args.method, rdm_descriptor="index")
            once = time.perf_counter() - t
            per_sample = max(ref_s - once, 0.0) / k
            full = once + per_sample * n_boot
            ref_text = f"{full:.1f} (extrapolated from {k})"
            notes.append(f"{n} stimuli: rsatoolbox ran {k} of {n_boot} resamples in {ref_s:.1f} s "
                         f"({per_sample:.2f} s per resample + {once:.2f} s one-off noise ceiling); "
                         f"its time for {n_boot} is EXTRAPOLATED linearly: {once:.2f} + {n_boot} x {per_sample:.2f} s")
        else:
            full = ref_s
            ref_text = f"{full:.1f} (measured)"
        print(f"  rsatoolbox: {ref_s:.2f} s for {k} resamples; max |diff| over them {diff:.1e}", flush=True)
        rows.append(f"| {n} | {n_pairs} | {n_boot} | {ours_s:.2f} | {ref_text} | {full / ours_s:.0f}x | "
                    f"{diff:.1e} (over {k}) |")

    print(f"\n## Stimulus bootstrap, {args.layers} layers x {args.subjects} subjects, {args.method}: "
          f"rsa.bootstrap_evaluations vs rsatoolbox eval_bootstrap_pattern (boot_noise_ceil=False)\n")
    print("| stimuli | pairs | B | brainalign s | rsatoolbox s | speed-up | max abs diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    for note in notes:
        print(f"\nNote: {note}.")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\nPeak RSS (whole process, both libraries): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
