"""Voxel-wise encoding models: cross-validated ridge with a penalty per target.

The outer loop holds out stimuli (K-fold, folds grouped by a label such as run or
story, or a fixed train/test split). Inside each outer training set, the
preprocessing (z-scoring, optional PCA) is fitted on the training rows only and
applied to the held-out rows, and :func:`brainalign.metrics.ridge.ridge_cv`
chooses each target's alpha by inner cross-validation (K-fold, grouped K-fold,
or efficient leave-one-out). Every stimulus is predicted once, by the fold that
held it out; scores are Pearson r and R^2 between those predictions and the data
within each held-out fold, averaged over folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import GroupKFold, KFold

from . import ridge as ridge_solver


# ---------------------------------------------------------------- preprocessing

@dataclass
class Preprocessor:
    """z-scoring and optional PCA, fitted on training rows only.

    ``fit`` sees the rows it is given and nothing else; ``transform`` applies the
    stored statistics. Constant columns become 0.
    """

    standardize: bool = True
    pca: int | None = None
    mean_: np.ndarray | None = field(default=None, repr=False)
    scale_: np.ndarray | None = field(default=None, repr=False)
    components_: np.ndarray | None = field(default=None, repr=False)
    n_fit_rows_: int = 0

    def fit(self, x: np.ndarray) -> "Preprocessor":
        x = np.asarray(x, dtype=np.float64)
        self.n_fit_rows_ = x.shape[0]
        self.mean_ = x.mean(0)
        scale = x.std(0) if self.standardize else np.ones(x.shape[1])
        scale[scale == 0] = 1.0
        self.scale_ = scale
        if self.pca:
            z = (x - self.mean_) / self.scale_
            _, _, vh = np.linalg.svd(z, full_matrices=False)
            # sign convention: largest-magnitude loading positive, so results are deterministic
            signs = np.sign(vh[np.arange(len(vh)), np.abs(vh).argmax(1)])
            self.components_ = (vh * signs[:, None])[: int(self.pca)].T
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
        return z @ self.components_ if self.components_ is not None else z


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score columns with the training rows' mean and SD (constant columns -> 0)."""
    pre = Preprocessor().fit(train)
    return pre.transform(train), pre.transform(test)


# ---------------------------------------------------------------- splits

def blocked_splits(index, folds: int, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds of contiguous blocks for a time series: ``index`` (sample numbers in time order) cut
    into ``folds`` consecutive blocks, each held out once; its training set is every other sample
    more than ``gap`` samples (by sample number) away from the block, so the samples that the HRF
    smears into the test block (and back) train nothing. Returns positions into ``index``."""
    index = np.asarray(index)
    if folds > len(index):
        raise ValueError(f"{folds} blocked folds need at least {folds} samples, got {len(index)}")
    out = []
    for block in np.array_split(np.arange(len(index)), folds):
        low, high = index[block[0]], index[block[-1]]
        train = np.flatnonzero((index < low - gap) | (index > high + gap))
        if not len(train):
            raise ValueError(f"blocked folds: a gap of {gap} samples leaves no training samples for a block")
        out.append((train, block))
    return out


def outer_splits(n: int, folds: int, seed: int, groups=None, split=None, cv: str = "kfold",
                 gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out folds of stimuli.

    ``cv="blocked"`` gives contiguous blocks in stimulus order with ``gap`` samples dropped from
    training on each side of every test block (:func:`blocked_splits`: time series);
    ``split`` (labels ``train``/``test`` per stimulus) gives one fixed split;
    ``groups`` (a label per stimulus) keeps each group in one fold
    (``GroupKFold``; ``folds`` >= number of groups is leave-one-group-out);
    otherwise shuffled ``KFold`` seeded by ``seed``.
    """
    index = np.arange(n)
    if cv == "blocked":
        if groups is not None or split is not None:
            raise ValueError("blocked folds take neither groups nor a fixed split (use groups for leave-one-run-out)")
        return blocked_splits(index, folds, gap)
    if split is not None:
        split = np.asarray(split).astype(str)
        unknown = sorted(set(split) - {"train", "test"})
        if unknown:
            raise ValueError(f"split labels must be 'train' or 'test', got {unknown}")
        train, test = index[split == "train"], index[split == "test"]
        if not len(train) or not len(test):
            raise ValueError("the fixed split needs at least one 'train' and one 'test' stimulus")
        return [(train, test)]
    if groups is not None:
        groups = np.asarray(groups)
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError(f"grouped folds need at least 2 groups, got {n_groups}")
        return list(GroupKFold(n_splits=min(folds, n_groups)).split(index, groups=groups))
    if folds > n:
        raise ValueError(f"{folds} folds need at least {folds} stimuli, got {n}")
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(index))


def inner_splits(n: int, folds: int | str, seed: int, groups=None, index=None, gap: int | None = None):
    """Inner CV on a training set: ``"loo"`` or (train, validation) pairs; blocked folds with
    ``gap`` over the training samples' numbers ``index`` when ``gap`` is given."""
    if gap is not None:
        if folds == "loo":
            raise ValueError("blocked folds need K-fold inner CV (inner_folds: K), not leave-one-out")
        return blocked_splits(np.arange(n) if index is None else index, int(folds), gap)
    if folds == "loo":
        if groups is not None:
            raise ValueError("inner leave-one-out ignores groups; use K-fold inner CV with grouped data")
        return "loo"
    return outer_splits(n, int(folds), seed, groups=groups)


# ---------------------------------------------------------------- features

def delay_features(x: np.ndarray, delays, runs=None) -> np.ndarray:
    """Finite-impulse-response features: ``x`` shifted by each delay (samples),
    concatenated along features. Shifts never cross a run boundary; samples
    before a run's start are 0. Rows must be in time order within each run."""
    x = np.asarray(x)
    delays = [int(d) for d in delays]
    runs = np.zeros(len(x)) if runs is None else np.asarray(runs)
    out = np.zeros((x.shape[0], x.shape[1] * len(delays)), dtype=x.dtype)
    for run in np.unique(runs):
        rows = np.flatnonzero(runs == run)
        block = x[rows]
        for k, d in enumerate(delays):
            cols = slice(k * x.shape[1], (k + 1) * x.shape[1])
            if d >= 0:
                out[rows[d:], cols] = block[: len(rows) - d] if d < len(rows) else block[:0]
            else:
                out[rows[: len(rows) + d], cols] = block[-d:]
    return out


# ---------------------------------------------------------------- scores

def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of ``a`` and ``b`` (n, targets); 0 where one is constant."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denom = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(0) / denom, 0.0)


def r2_columns(data: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column, as ``sklearn.metrics.r2_score``
    with ``multioutput='raw_values'`` (constant data columns -> 0)."""
    resid = ((data - prediction) ** 2).sum(0)
    total = ((data - data.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - resid / total, 0.0)


# ---------------------------------------------------------------- ridge wrappers

def ridge_predict(x_train, y_train, x_test, alpha: float, dtype=torch.float64, device="auto") -> np.ndarray:
    """Ridge at a fixed ``alpha`` with an intercept."""
    fit = ridge_solver.ridge(x_train, y_train, alpha, dtype=dtype, device=device)
    return fit.predict(x_test).cpu().numpy()


def ridge_cv_predict(x_train, y_train, x_test, alphas, inner_folds, seed: int = 0, groups=None,
                     dtype=torch.float64, device="auto", index=None, gap: int | None = None):
    """Ridge with each target's alpha chosen by inner CV on the training rows
    (``inner_folds`` folds, or ``"loo"``; blocked with ``gap`` over sample numbers ``index`` when
    ``gap`` is given); returns (test predictions, alphas)."""
    cv = inner_splits(len(x_train), inner_folds, seed, groups, index=index, gap=gap)
    fit = ridge_solver.ridge_cv(x_train, y_train, alphas, cv, dtype=dtype, device=device)
    return fit.predict(x_test).cpu().numpy(), fit.alphas


@dataclass
class EncodingResult:
    """Held-out scores per target, and what made them."""

    r: np.ndarray            # (target,) Pearson r per held-out fold, averaged over folds
    r2: np.ndarray           # (target,) R^2 per held-out fold, averaged over folds
    alphas: np.ndarray       # (fold, target)
    predictions: np.ndarray  # (stimulus, target), each from the fold that held it out
    folds: list              # the outer (train, test) splits
    null_r: np.ndarray | None = None  # (permutation, target): r with the responses permuted, if asked


def cross_validated_encoding(features, targets, alphas, *, outer_folds: int = 5, inner_folds=5, seed: int = 0,
                             groups=None, split=None, standardize: bool = True, pca: int | None = None,
                             delays=None, runs=None, dtype=torch.float64, device="auto",
                             preprocessor_factory=None, permutations=None, cv: str = "kfold",
                             gap: int = 0) -> EncodingResult:
    """Outer CV over stimuli, nested alpha choice, scores on held-out stimuli.

    ``groups`` groups both the outer and the inner folds; ``cv="blocked"`` makes both contiguous
    blocks in stimulus (time) order with ``gap`` samples left out around every held-out block
    (:func:`blocked_splits`). ``delays`` adds FIR
    copies of the features within ``runs`` (default: ``groups``) before the split.
    With a fixed ``split`` only the test stimuli are scored. ``permutations`` (P, n), e.g.
    from :func:`brainalign.metrics.stats.permutations`, also gives the fold-averaged r of
    every target with the responses permuted across all stimuli before the fits
    (:func:`permuted_fold_r`: the same folds, preprocessing and chosen alphas), the null of a
    permutation test that keeps the dependence between folds that share training stimuli.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if delays is not None and list(delays) != [0]:
        x = delay_features(x, delays, groups if runs is None else runs)
    folds = outer_splits(len(x), outer_folds, seed, groups=groups, split=split, cv=cv, gap=gap)
    make = preprocessor_factory or (lambda: Preprocessor(standardize=standardize, pca=pca))
    predictions = np.full_like(y, np.nan)
    chosen = []
    null = None if permutations is None else np.zeros((len(permutations), y.shape[1]))
    for train, test in folds:
        pre = make().fit(x[train])
        inner_groups = None if groups is None else np.asarray(groups)[train]
        x_train, x_test = pre.transform(x[train]), pre.transform(x[test])
        predictions[test], best = ridge_cv_predict(x_train, y[train], x_test, alphas, inner_folds, seed,
                                                   inner_groups, dtype, device, index=train,
                                                   gap=gap if cv == "blocked" else None)
        chosen.append(best)
        if null is not None:
            null += permuted_fold_r(x_train, x_test, y, train, test, np.asarray(best), permutations)
    # Scores per held-out fold, then averaged (as Brain-Score). Correlating the pooled
    # predictions instead is biased below 0 for noise: each fold's training mean is
    # anti-correlated with its held-out mean.
    r = np.mean([pearson_columns(predictions[test], y[test]) for _, test in folds], axis=0)
    r2 = np.mean([r2_columns(y[test], predictions[test]) for _, test in folds], axis=0)
    return EncodingResult(r, r2, np.stack(chosen), predictions, folds,
                          None if null is None else null / len(folds))


def permuted_fold_r(x_train, x_test, y, train, test, alphas, perms, chunk: int = 64) -> np.ndarray:
    """Held-out r of one outer fold with the responses' stimulus labels permuted *before* the
    fit: (permutation, target). For each target the ridge is refit on the permuted training
    responses at that target's chosen ``alphas`` (target,), through the fold's hat matrix
    ``H = X_test (X'X + a I)^-1 X'`` (centred, preprocessed features), so a permutation costs one
    product and no solve. The alpha search itself is not repeated."""
    mean = x_train.mean(0)
    u, s, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    keep = s > s.max() * 1e-12 if s.size else s > 0
    u, s, vt = u[:, keep], s[keep], vt[keep]
    a = (x_test - mean) @ vt.T  # (n_test, r)
    out = np.zeros((len(perms), y.shape[1]))
    n, n_test = y.shape[0], len(test)
    for alpha in np.unique(alphas):
        cols = np.flatnonzero(alphas == alpha)
        hat = ((a * (s / (s * s + alpha))) @ u.T).astype(np.float32)  # (n_test, n_train)
        y_group = np.ascontiguousarray(y[:, cols], dtype=np.float32)
        for start in range(0, len(perms), chunk):
            rows = perms[start:start + chunk]
            c = len(rows)
            # the hat matrix of each permutation, its columns moved to the permuted training stimuli:
            # then one product with the responses gives every permutation's predictions
            scattered = np.zeros((c, n_test, n), dtype=np.float32)
            scattered[np.arange(c)[:, None, None], np.arange(n_test)[None, :, None], rows[:, None, train]] = hat[None]
            pred = (scattered.reshape(c * n_test, n) @ y_group).reshape(c, n_test, len(cols))
            y_test = y_group[rows[:, test]]  # (c, n_test, targets)
            # Pearson r from sums (float64 accumulators): sum(py) - n p_mean y_mean over sqrt of the variances
            p_sum, y_sum = pred.sum(1, dtype=np.float64), y_test.sum(1, dtype=np.float64)
            cross = np.einsum("ctv,ctv->cv", pred, y_test, dtype=np.float64) - p_sum * y_sum / n_test
            p_var = np.einsum("ctv,ctv->cv", pred, pred, dtype=np.float64) - p_sum ** 2 / n_test
            y_var = np.einsum("ctv,ctv->cv", y_test, y_test, dtype=np.float64) - y_sum ** 2 / n_test
            with np.errstate(invalid="ignore", divide="ignore"):
                denom = np.sqrt(np.clip(p_var, 0, None) * np.clip(y_var, 0, None))
                out[start:start + c, cols] = np.where(denom > 1e-12 * np.abs(y_var).max(initial=1.0),
                                                      cross / denom, 0.0)
    return out


def cross_validated_r(features, targets, alphas, outer_folds: int = 5, inner_folds: int = 5,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Held-out Pearson r per target and the chosen alphas (fold, target)."""
    result = cross_validated_encoding(features, targets, alphas, outer_folds=outer_folds,
                                      inner_folds=inner_folds, seed=seed)
    return result.r, result.alphas


def bootstrap_fold_r(predictions, targets, folds, counts) -> np.ndarray:
    """Fold-averaged held-out Pearson r of every target on bootstrap resamples of each outer fold's
    held-out stimuli: (resample, target). ``counts`` holds, for each fold of ``folds``, how often each
    of its held-out stimuli is drawn in each resample, (resample, n_test) (e.g. from
    :func:`brainalign.metrics.stats.resample_counts`). A resample's r is Pearson's r of the held-out
    predictions and responses with every stimulus repeated as often as it is drawn, computed as
    weighted sums; the fits are not repeated (the interval is the held-out stimuli's sampling
    variability, not the fit's). 0 where a resample's predictions or responses do not vary, as
    :func:`pearson_columns`."""
    predictions, targets = np.asarray(predictions, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    total = 0.0
    for (_, test), w in zip(folds, counts):
        p = predictions[test] - predictions[test].mean(0)  # centred: the sums below lose no precision
        y = targets[test] - targets[test].mean(0)
        w = np.asarray(w, dtype=np.float64)
        n = w.sum(1, keepdims=True)
        p_sum, y_sum = w @ p, w @ y
        cross = w @ (p * y) - p_sum * y_sum / n
        p_var = np.clip(w @ (p * p) - p_sum ** 2 / n, 0, None)
        y_var = np.clip(w @ (y * y) - y_sum ** 2 / n, 0, None)
        scale = (p * p).sum(0) * (y * y).sum(0)  # a variance this far below the fold's is rounding
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total + np.where(p_var * y_var > 1e-24 * scale, cross / np.sqrt(p_var * y_var), 0.0)
    return total / len(folds)
