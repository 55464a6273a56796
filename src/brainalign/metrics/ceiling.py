"""Noise ceilings from repeated measurements: arrays in, arrays out.

Every function takes ``reps`` of shape (repetition, stimulus, target): ``k`` repeated
measurements of the response of each target (voxel, electrode, neuron, ...) to each stimulus.
The model behind all estimates is ``reps[j, i] = s[i] + e[j, i]`` with signal variance
``var_s`` across stimuli and independent noise of variance ``var_n`` per repetition. The
mean over ``n`` repetitions then has the explainable fraction of variance

    R2_ceiling(n) = var_s / (var_s + var_n / n),

and a perfect model (one predicting ``s``) reaches Pearson r = sqrt(R2_ceiling(n)) with it,
which is the ceiling on r (Schoppe et al. 2016, Front Comput Neurosci 10:10, "CC_max").

Two estimators of R2_ceiling:

* ``"split_half"``: the Spearman-Brown corrected split-half reliability
  (Spearman 1910, Brown 1910, Br J Psychol 3).
* ``"ncsnr"``: the noise-ceiling signal-to-noise ratio of the Natural Scenes Dataset,
  R2_ceiling = ncsnr^2 / (ncsnr^2 + 1/n) (Allen et al. 2022, Nat Neurosci 25:116-126).

Targets whose responses do not vary (constant targets) get NaN, never an exception.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["spearman_brown", "split_half_reliability", "ncsnr", "noise_ceiling"]


def _check(reps: np.ndarray) -> np.ndarray:
    reps = np.asarray(reps, dtype=np.float64)
    if reps.ndim != 3:
        raise ValueError(f"reps must have shape (repetition, stimulus, target), got shape {reps.shape}")
    if reps.shape[0] < 2:
        raise ValueError(f"noise ceiling needs at least 2 repetitions per stimulus, got {reps.shape[0]}")
    if reps.shape[1] < 2:
        raise ValueError(f"noise ceiling needs at least 2 stimuli, got {reps.shape[1]}")
    return reps


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column of two (stimulus, target) arrays; NaN for zero-variance columns."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _splits(k: int, n_splits: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of disjoint repetition index sets, both of size k // 2.

    If the number of distinct unordered splits is at most ``n_splits`` all of them are
    used (deterministic; e.g. the single split for k=2, 3 for k=4, 15 for k=5); otherwise
    ``n_splits`` random ones. For odd k one repetition is left out of each split.
    """
    h = k // 2
    n_distinct = math.comb(k, h) * math.comb(k - h, h) // 2
    if n_distinct <= n_splits:
        out, seen = [], set()
        for first in itertools.combinations(range(k), h):
            for second in itertools.combinations(sorted(set(range(k)) - set(first)), h):
                key = min((first, second), (second, first))
                if key not in seen:
                    seen.add(key)
                    out.append((np.array(first), np.array(second)))
        return out
    out = []
    for _ in range(n_splits):
        perm = rng.permutation(k)
        out.append((perm[:h], perm[h:2 * h]))
    return out


def spearman_brown(r, factor):
    """Spearman-Brown prophecy: reliability after lengthening a test ``factor``-fold.

    ``factor * r / (1 + (factor - 1) * r)`` (Spearman 1910; Brown 1910). Exact under the
    signal-plus-independent-noise model for any real ``factor > 0``: if ``r`` is the
    reliability of a mean over m repetitions, the result is that of a mean over
    ``factor * m`` repetitions.
    """
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def split_half_reliability(reps, n_splits: int = 100, rng=None) -> np.ndarray:
    """Split-half reliability per target: (target,).

    The repetitions are split into two disjoint halves of ``h = k // 2`` repetitions each,
    each half is averaged, and the Pearson r across stimuli between the two half means is
    computed per target; the r values (not Fisher z) are averaged over splits. With k = 2
    this is the plain correlation between the two repetitions. For odd k one repetition
    is left out of each split (a different one across splits), so both halves have exactly
    h repetitions and the result is the reliability of a mean over h repetitions; correct
    it with ``spearman_brown(r, n / h)`` for a mean over n repetitions (exact for any
    n, unlike unequal halves of size h and h + 1).

    ``n_splits`` bounds the number of splits: all distinct splits are used when there are
    at most that many, otherwise ``n_splits`` random ones drawn with
    ``np.random.default_rng(rng)`` (``rng``: a Generator, a seed, or None for seed 0).
    """
    reps = _check(reps)
    rng = np.random.default_rng(0 if rng is None else rng)
    splits = _splits(reps.shape[0], n_splits, rng)
    return np.mean([_pearson(reps[a].mean(0), reps[b].mean(0)) for a, b in splits], axis=0)


def _signal_noise_var(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signal variance, noise variance) per target, as in Allen et al. 2022 without z-scoring."""
    noise_var = reps.var(axis=0, ddof=1).mean(axis=0)
    total_var = reps.reshape(-1, reps.shape[2]).var(axis=0, ddof=1)
    return np.maximum(0.0, total_var - noise_var), noise_var


def ncsnr(reps) -> np.ndarray:
    """Noise-ceiling signal-to-noise ratio per target: (target,) (Allen et al. 2022).

    ``sigma_noise = sqrt(mean over stimuli of the across-repetition variance, ddof=1)``;
    ``sigma_signal = sqrt(max(0, total variance - sigma_noise^2))`` with the total variance
    of all single trials pooled over repetitions and stimuli (ddof=1); ``ncsnr =
    sigma_signal / sigma_noise``. NSD z-scores each session first, so its total variance is
    1 and ``sigma_signal = sqrt(max(0, 1 - sigma_noise^2))``; that normalisation (and any
    session offset removal) is the caller's job. The pooled total variance slightly
    under-weights the signal, by ``k (n_stim - 1) / (k n_stim - 1)`` in expectation.
    Constant targets give NaN; noiseless targets with signal give inf.
    """
    signal_var, noise_var = _signal_noise_var(_check(reps))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(signal_var) / np.sqrt(noise_var)


def noise_ceiling(reps, method: str = "split_half", n_repetitions_averaged: float | None = None,
                  rng=None, n_splits: int = 100) -> dict[str, np.ndarray]:
    """Noise ceiling for predicting the mean over ``n`` repetitions, per target.

    Returns ``{"r2": ..., "r": ...}``, each (target,): ``r2`` is the explainable fraction
    of variance ``var_s / (var_s + var_n / n)`` and ``r = sqrt(r2)`` the ceiling on Pearson
    r (Schoppe et al. 2016). ``n`` defaults to k, the number of repetitions in ``reps``.

    * ``method="split_half"``: ``r2 = spearman_brown(clip(r_half, 0, 1), n / (k // 2))``
      with ``r_half = split_half_reliability(reps, n_splits, rng)``.
    * ``method="ncsnr"``: ``r2 = ncsnr^2 / (ncsnr^2 + 1 / n)`` (Allen et al. 2022), computed
      as ``var_s / (var_s + var_n / n)`` so noiseless targets give 1.

    Constant targets give NaN. Fewer than 2 repetitions raises ValueError.
    """
    reps = _check(reps)
    k = reps.shape[0]
    n = k if n_repetitions_averaged is None else float(n_repetitions_averaged)
    if not n > 0:
        raise ValueError(f"n_repetitions_averaged must be positive, got {n_repetitions_averaged}")
    if method == "split_half":
        r_half = split_half_reliability(reps, n_splits=n_splits, rng=rng)
        r2 = spearman_brown(np.clip(r_half, 0.0, 1.0), n / (k // 2))
    elif method == "ncsnr":
        signal_var, noise_var = _signal_noise_var(reps)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = signal_var / (signal_var + noise_var / n)
    else:
        raise ValueError(f"unknown noise-ceiling method {method!r}; use 'split_half' or 'ncsnr'")
    r2 = np.clip(r2, 0.0, 1.0)
    return {"r2": r2, "r": np.sqrt(r2)}


def inter_subject_ceiling(y: np.ndarray, subject_of, roi_of) -> np.ndarray:
    """Leave-one-subject-out ceiling of data without repetitions but with subjects who saw the same
    stimuli (a story heard by everyone): per target (column of ``y``, (stimulus, target)), the
    Pearson r between it and the mean, over the other subjects, of their mean time course in the same
    ROI. NaN where no other subject has the ROI."""
    from .encoding import pearson_columns

    y = np.asarray(y, dtype=np.float64)
    subject_of, roi_of = np.asarray(subject_of).astype(str), np.asarray(roi_of).astype(str)
    out = np.full(y.shape[1], np.nan)
    for roi in np.unique(roi_of):
        in_roi = roi_of == roi
        subjects = np.unique(subject_of[in_roi])
        means = np.stack([y[:, in_roi & (subject_of == s)].mean(1) for s in subjects], axis=1)
        for k, s in enumerate(subjects):
            if len(subjects) < 2:
                continue
            others = np.delete(means, k, axis=1).mean(1)
            cols = np.flatnonzero(in_roi & (subject_of == s))
            out[cols] = pearson_columns(y[:, cols], np.repeat(others[:, None], len(cols), axis=1))
    return out
