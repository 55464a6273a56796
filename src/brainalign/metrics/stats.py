"""Resampling statistics shared by every metric: permutations, bootstrap, p values, CIs."""

from __future__ import annotations

import warnings

import numpy as np


def permutations(n: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """(n_permutations, n) independent permutations of stimulus labels."""
    if n_permutations <= 0:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack([rng.permutation(n) for _ in range(n_permutations)])


def circular_shifts(n: int, n_permutations: int, rng: np.random.Generator, min_shift: int = 1) -> np.ndarray:
    """(n_permutations, n) circular shifts of a time series' samples, each by a random offset of at
    least ``min_shift`` samples either way: row ``i`` maps sample ``t`` to ``t + shift_i`` (mod n). A
    shift keeps the series' autocorrelation, which i.i.d. permutations destroy (and so give p values
    that are too small for time series)."""
    if n_permutations <= 0:
        return np.zeros((0, n), dtype=np.int64)
    if n - 2 * min_shift < 1:
        raise ValueError(f"circular shifts of at least {min_shift} samples either way need more than "
                         f"{2 * min_shift} samples, got {n}")
    shifts = rng.integers(min_shift, n - min_shift + 1, size=n_permutations)
    return (np.arange(n)[None, :] + shifts[:, None]) % n


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


def centred_percentile_ci(estimate: np.ndarray, samples: np.ndarray, confidence: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap distribution's percentile interval moved so that its median sits on ``estimate``
    (``estimate`` + the ``samples``' (B, ...) quantiles minus their median): it always contains the
    estimate. NaN without samples."""
    if samples.shape[0] == 0:
        nan = np.full(np.shape(estimate), np.nan)
        return nan, nan.copy()
    tail = (1 - confidence) / 2 * 100
    low, mid, high = np.nanpercentile(samples, [tail, 50, 100 - tail], axis=0)
    return estimate + (low - mid), estimate + (high - mid)


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


def subsample_indices(n: int, n_samples: int, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """(n_samples, m) draws of ``m`` distinct stimuli out of ``n`` (without replacement;
    ``m = n // 2`` by default): no resample holds a stimulus twice, so no measure sees a
    stimulus paired with its own copy."""
    m = n // 2 if size is None else int(size)
    if n_samples <= 0:
        return np.zeros((0, m), dtype=np.int64)
    if not 2 <= m < n:
        raise ValueError(f"a subsample needs 2 <= size < n stimuli, got size {m} of n = {n}")
    return np.sort(np.argsort(rng.random((n_samples, n)), axis=1)[:, :m], axis=1)


def subsample_ci(estimate: np.ndarray, samples: np.ndarray, confidence: float, m: int, n: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Interval from a subsampling (delete-d jackknife) distribution.

    ``samples`` (B, ...) are the statistic on subsamples of ``m`` of ``n`` stimuli drawn
    without replacement. Their spread around their own median, scaled by ``sqrt(m / (n - m))``
    (the delete-d jackknife's variance factor, Shao & Wu 1989, Ann Stat 17:1176; the
    subsampling interval of Politis & Romano 1994, Ann Stat 22:2031), is laid around the full
    sample's ``estimate``. Centring on the subsamples' median (not the estimate) removes the
    shift that a measure's small-sample bias gives subsamples of m < n stimuli, so the interval
    always contains the estimate. NaN without samples.
    """
    if samples.shape[0] == 0:
        nan = np.full(np.shape(estimate), np.nan)
        return nan, nan.copy()
    tail = (1 - confidence) / 2 * 100
    deviation = samples - np.nanmedian(samples, axis=0)
    scale = np.sqrt(m / (n - m))
    low, high = np.nanpercentile(deviation, [tail, 100 - tail], axis=0)
    return estimate + scale * low, estimate + scale * high


def expanded_percentile_ci(samples: np.ndarray, confidence: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of a bootstrap over ``n`` units (subjects), expanded for small ``n``.

    The plain percentile interval of a mean is too narrow by about ``sqrt((n - 1) / n)`` and
    uses normal instead of t quantiles; the expanded percentile interval (Hesterberg 2015,
    Am Stat 69:371) takes the percentiles at ``Phi(+-sqrt(n / (n - 1)) t_{n-1, 1 - a/2})``
    instead. NaN without samples or with fewer than 2 units.
    """
    from scipy.stats import norm, t

    if samples.shape[0] == 0 or n < 2:
        nan = np.full(samples.shape[1:], np.nan)
        return nan, nan.copy()
    quantile = np.sqrt(n / (n - 1)) * t.ppf(0.5 + confidence / 2, n - 1)
    tail = 100 * norm.cdf(-quantile)
    return np.nanpercentile(samples, tail, axis=0), np.nanpercentile(samples, 100 - tail, axis=0)


def null_summary(null: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """The permutation distribution's mean and its ``alpha`` and ``1 - alpha`` quantiles
    (over the first axis); NaN without a null. A score outside [null_low, null_high] on the
    side of better scores is significant at ``alpha`` (one-sided, uncorrected)."""
    if null.shape[0] == 0:
        nan = np.full(null.shape[1:], np.nan)
        return {"null_mean": nan, "null_low": nan.copy(), "null_high": nan.copy()}
    low, high = np.nanquantile(null, [alpha, 1 - alpha], axis=0)
    return {"null_mean": np.nanmean(null, axis=0), "null_low": low, "null_high": high}


def heldout_best(per_subject: np.ndarray, higher_is_better: bool = True) -> dict[str, np.ndarray]:
    """Best-layer selection scored on data it was not chosen on (leave one subject out).

    ``per_subject`` (layer, subject, ...). For each subject, the best layer is the one with
    the best mean over the other subjects, and the held-out score is that subject's score at
    it; ``heldout`` (subject, ...) holds those scores and ``layer`` (subject, ...) the chosen
    layer indices. ``insample`` (...) is the best subject mean over layers, chosen and scored
    on the same data (biased upward when layers are alike). NaN with fewer than 2 subjects.
    """
    values = np.asarray(per_subject, dtype=np.float64)
    n_layers, n_subjects = values.shape[:2]
    sign = 1.0 if higher_is_better else -1.0
    heldout = np.full(values.shape[1:], np.nan)
    layer = np.full(values.shape[1:], -1, dtype=np.int64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=1)
        insample = sign * np.nanmax(np.where(np.isfinite(mean), sign * mean, -np.inf), axis=0)
        insample = np.where(np.isfinite(insample), insample, np.nan)
        if n_subjects >= 2:
            for s in range(n_subjects):
                others = np.nanmean(np.delete(values, s, axis=1), axis=1)  # (layer, ...)
                ok = np.isfinite(others).any(0) & np.isfinite(values[:, s]).any(0)
                choice = np.nanargmax(np.where(np.isfinite(others), sign * others, -np.inf), axis=0)
                got = np.take_along_axis(values[:, s], choice[None], 0)[0]
                heldout[s] = np.where(ok, got, np.nan)
                layer[s] = np.where(ok, choice, -1)
    return {"heldout": heldout, "layer": layer, "insample": insample}
