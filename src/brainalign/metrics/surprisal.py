"""Surprisal against a per-word measure (reading times): nested ordinary least squares.

The measure is regressed on the baseline predictors (an intercept, word length, log frequency,
position, their spillover) with and without the surprisal predictors (the current word's
surprisal and, with spillover, the previous words'). Reported: the current word's surprisal
coefficient (measure units per bit), Delta R^2 and Delta log-likelihood (Gaussian, maximum
likelihood variance) of the full over the baseline model, and the Pearson r of raw surprisal
with the measure. Intervals resample stories (clusters) or words with replacement; p values
come from circular shifts of the surprisal predictors within each story (which keeps their
autocorrelation and breaks only their alignment with the measure).
"""

from __future__ import annotations

import numpy as np


def ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients of ``y`` on ``X`` (its own intercept column) and the RSS."""
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    return beta, float(resid @ resid)


def gaussian_loglik(rss: float, n: int) -> float:
    """Maximised Gaussian log-likelihood of a linear model with residual sum of squares ``rss``."""
    return -0.5 * n * (np.log(2 * np.pi * rss / n) + 1.0)


def nested_effect(baseline: np.ndarray, surprisal: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Full (baseline + surprisal) vs baseline OLS; ``surprisal`` (n, k), column 0 the current word."""
    n = len(y)
    ones = np.ones((n, 1))
    base = np.hstack([ones, baseline])
    full = np.hstack([base, surprisal])
    _, rss0 = ols(base, y)
    beta, rss1 = ols(full, y)
    tss = float(((y - y.mean()) ** 2).sum())
    return {"coefficient": float(beta[base.shape[1]]), "delta_r2": (rss0 - rss1) / tss,
            "delta_loglik": gaussian_loglik(rss1, n) - gaussian_loglik(rss0, n),
            "r_raw": float(np.corrcoef(surprisal[:, 0], y)[0, 1])}


STATISTICS = ("coefficient", "delta_r2", "delta_loglik", "r_raw")


def fitted_values(baseline: np.ndarray, surprisal: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-sample predictions of the baseline and the full model (NaN where a row has a non-finite
    value); what the per-story observed-vs-predicted figure draws."""
    surprisal = surprisal.reshape(len(y), -1)
    keep = np.isfinite(baseline).all(1) & np.isfinite(surprisal).all(1) & np.isfinite(y)
    base = np.hstack([np.ones((keep.sum(), 1)), baseline[keep]])
    full = np.hstack([base, surprisal[keep]])
    out_base, out_full = np.full(len(y), np.nan), np.full(len(y), np.nan)
    out_base[keep] = base @ ols(base, y[keep])[0]
    out_full[keep] = full @ ols(full, y[keep])[0]
    return out_base, out_full


def circular_shift(values: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` rotated by a random offset within each group (rows of a group in order)."""
    out = values.copy()
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        out[rows] = np.roll(values[rows], rng.integers(1, max(len(rows), 2)), axis=0)
    return out


def surprisal_effect(baseline: np.ndarray, surprisal: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
                     bootstrap: str = "groups", n_bootstrap: int = 1000, n_permutations: int = 1000,
                     confidence: float = 0.95, seed: int = 0) -> dict[str, dict[str, float]]:
    """Each statistic of :func:`nested_effect` with a bootstrap interval (``bootstrap``: ``groups``
    resamples whole stories, ``words`` single words) and a one-sided permutation p value
    (circular shifts within groups; for the coefficient and r, p of a positive effect).
    Rows with a non-finite value anywhere are dropped first."""
    surprisal = surprisal.reshape(len(y), -1)
    keep = np.isfinite(baseline).all(1) & np.isfinite(surprisal).all(1) & np.isfinite(y)
    baseline, surprisal, y, groups = baseline[keep], surprisal[keep], y[keep], np.asarray(groups)[keep]
    # standardised baseline columns: a well-conditioned design (the coefficients of interest are unchanged)
    scale = baseline.std(0)
    baseline = (baseline - baseline.mean(0)) / np.where(scale > 0, scale, 1)
    observed = nested_effect(baseline, surprisal, y)
    rng = np.random.default_rng(seed)
    labels = np.unique(groups)
    boot = np.full((n_bootstrap, len(STATISTICS)), np.nan)
    for b in range(n_bootstrap):
        if bootstrap == "groups":
            rows = np.concatenate([np.flatnonzero(groups == g) for g in rng.choice(labels, len(labels))])
        else:
            rows = rng.integers(0, len(y), len(y))
        effect = nested_effect(baseline[rows], surprisal[rows], y[rows])
        boot[b] = [effect[k] for k in STATISTICS]
    null = np.full((n_permutations, len(STATISTICS)), np.nan)
    for b in range(n_permutations):
        effect = nested_effect(baseline, circular_shift(surprisal, groups, rng), y)
        null[b] = [effect[k] for k in STATISTICS]
    tail = (1 - confidence) / 2
    out = {}
    for j, key in enumerate(STATISTICS):
        low, high = (np.nanquantile(boot[:, j], [tail, 1 - tail]) if n_bootstrap else (np.nan, np.nan))
        p = ((null[:, j] >= observed[key]).sum() + 1) / (n_permutations + 1) if n_permutations else np.nan
        out[key] = {"estimate": observed[key], "ci_low": float(min(low, observed[key])),
                    "ci_high": float(max(high, observed[key])), "p_value": float(p),
                    "null_mean": float(np.nanmean(null[:, j])) if n_permutations else np.nan}
    out["n_words"] = {"estimate": float(len(y))}
    return out
