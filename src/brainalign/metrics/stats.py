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
