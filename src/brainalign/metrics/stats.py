"""Resampling statistics shared by every metric: permutations, bootstrap, p values, CIs."""

from __future__ import annotations

import numpy as np


def permutations(n: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """(n_permutations, n) independent permutations of stimulus labels."""
    if n_permutations <= 0:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack([rng.permutation(n) for _ in range(n_permutations)])


def bootstrap_indices(n: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """(n_bootstrap, n) resamples of stimuli with replacement."""
    if n_bootstrap <= 0:
        return np.zeros((0, n), dtype=np.int64)
    return rng.integers(0, n, size=(n_bootstrap, n))


def resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample: (B, n) from indices (B, k)."""
    indices = np.atleast_2d(indices)
    offsets = n * np.arange(len(indices))[:, None]
    return np.bincount((indices + offsets).ravel(), minlength=len(indices) * n).reshape(len(indices), n
                                                                                       ).astype(np.float64)


def p_from_null(observed: np.ndarray, null: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """One-sided permutation p value (1 + #{null at least as extreme}) / (1 + n); NaN without a null."""
    if null.shape[0] == 0:
        return np.full(np.shape(observed), np.nan)
    tol = 1e-12
    if higher_is_better:
        hits = (null >= observed[None] - tol).sum(0)
    else:
        hits = (null <= observed[None] + tol).sum(0)
    return (1.0 + hits) / (1.0 + null.shape[0])


def percentile_ci(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis of ``samples``; NaN without samples."""
    if samples.shape[0] == 0:
        nan = np.full(samples.shape[1:], np.nan)
        return nan, nan.copy()
    tail = (1 - confidence) / 2 * 100
    return np.nanpercentile(samples, tail, axis=0), np.nanpercentile(samples, 100 - tail, axis=0)


def fdr(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values over every finite entry (any shape); NaN stays NaN."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = false_discovery_control(p[finite], method="bh")
    return out


def best_vs_others_p(observed: np.ndarray, boot: np.ndarray, per_subject: np.ndarray | None = None,
                     higher_is_better: bool = True) -> np.ndarray:
    """One-sided paired test that the best entry of ``observed`` (L,) beats each other entry.

    With bootstrap samples ``boot`` (B, L) (the same resamples for every entry,
    so the comparison is paired) the p value is (1 + #{best - other <= 0}) / (1 + B).
    Without samples it is a paired t-test across subjects on ``per_subject``
    (L, S). NaN at the best entry itself.
    """
    from scipy.stats import ttest_rel

    sign = 1.0 if higher_is_better else -1.0
    best = int(np.nanargmax(sign * observed))
    out = np.full(observed.shape, np.nan)
    boot = boot[np.isfinite(boot).all(1)] if boot.shape[0] else boot
    for other in range(len(observed)):
        if other == best:
            continue
        if boot.shape[0]:
            diff = sign * (boot[:, best] - boot[:, other])
            out[other] = (1.0 + np.sum(diff <= 0)) / (1.0 + len(diff))
        elif per_subject is not None and np.sum(np.isfinite(per_subject[best])) > 1:
            ok = np.isfinite(per_subject[best]) & np.isfinite(per_subject[other])
            out[other] = ttest_rel(sign * per_subject[best][ok], sign * per_subject[other][ok],
                                   alternative="greater").pvalue
    return out
