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

def outer_splits(n: int, folds: int, seed: int, groups=None, split=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out folds of stimuli.

    ``split`` (labels ``train``/``test`` per stimulus) gives one fixed split;
    ``groups`` (a label per stimulus) keeps each group in one fold
    (``GroupKFold``; ``folds`` >= number of groups is leave-one-group-out);
    otherwise shuffled ``KFold`` seeded by ``seed``.
    """
    index = np.arange(n)
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


def inner_splits(n: int, folds: int | str, seed: int, groups=None):
    """Inner CV on a training set: ``"loo"`` or (train, validation) pairs."""
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
                     dtype=torch.float64, device="auto"):
    """Ridge with each target's alpha chosen by inner CV on the training rows
    (``inner_folds`` folds, or ``"loo"``); returns (test predictions, alphas)."""
    cv = inner_splits(len(x_train), inner_folds, seed, groups)
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


def cross_validated_encoding(features, targets, alphas, *, outer_folds: int = 5, inner_folds=5, seed: int = 0,
                             groups=None, split=None, standardize: bool = True, pca: int | None = None,
                             delays=None, runs=None, dtype=torch.float64, device="auto",
                             preprocessor_factory=None) -> EncodingResult:
    """Outer CV over stimuli, nested alpha choice, scores on held-out stimuli.

    ``groups`` groups both the outer and the inner folds. ``delays`` adds FIR
    copies of the features within ``runs`` (default: ``groups``) before the split.
    With a fixed ``split`` only the test stimuli are scored.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if delays is not None and list(delays) != [0]:
        x = delay_features(x, delays, groups if runs is None else runs)
    folds = outer_splits(len(x), outer_folds, seed, groups=groups, split=split)
    make = preprocessor_factory or (lambda: Preprocessor(standardize=standardize, pca=pca))
    predictions = np.full_like(y, np.nan)
    chosen = []
    for train, test in folds:
        pre = make().fit(x[train])
        inner_groups = None if groups is None else np.asarray(groups)[train]
        predictions[test], best = ridge_cv_predict(pre.transform(x[train]), y[train], pre.transform(x[test]),
                                                   alphas, inner_folds, seed, inner_groups, dtype, device)
        chosen.append(best)
    # Scores per held-out fold, then averaged (as Brain-Score). Correlating the pooled
    # predictions instead is biased below 0 for noise: each fold's training mean is
    # anti-correlated with its held-out mean.
    r = np.mean([pearson_columns(predictions[test], y[test]) for _, test in folds], axis=0)
    r2 = np.mean([r2_columns(y[test], predictions[test]) for _, test in folds], axis=0)
    return EncodingResult(r, r2, np.stack(chosen), predictions, folds)


def permutation_r(predictions: np.ndarray, targets: np.ndarray, folds, perms: np.ndarray,
                  chunk: int = 64) -> np.ndarray:
    """Held-out r of fixed predictions with the responses' stimulus labels shuffled within each
    test fold: (permutation, target), the fold-averaged r of :func:`cross_validated_encoding`.

    No refit: each outer fold's predictions come from a model that never saw that fold, so
    under the null (responses independent of the features) the fold's responses are
    exchangeable against its predictions, and shuffling them within the fold is an exact
    test of "held-out predictions track the responses". It does not test the alpha choice or
    the training itself. ``perms`` (P, n) are permutations of all stimuli (as
    :func:`brainalign.metrics.stats.permutations` draws them); fold ``f`` uses the order of
    ``perms[:, test_f]``, a uniform permutation of its rows.
    """
    y = np.asarray(targets, dtype=np.float64)
    out = np.zeros((len(perms), y.shape[1]))
    for _, test in folds:
        pred = predictions[test] - predictions[test].mean(0)
        resp = y[test] - y[test].mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where((denom := np.linalg.norm(pred, axis=0) * np.linalg.norm(resp, axis=0)) > 0,
                             1.0 / denom, 0.0)
        order = np.argsort(perms[:, test], axis=1)  # (P, n_test): row t of the fold gets response order[t]
        n_test = len(test)
        if n_test <= 64:
            # sum_t resp[order[t]] pred[t] = <one-hot(order), pred[t] resp[s]'> : one BLAS product
            onehot = np.zeros((len(perms), n_test * n_test))
            onehot[np.arange(len(perms))[:, None], np.arange(n_test) * n_test + order] = 1.0
            step = max(1, 2 ** 24 // (n_test * n_test))
            for start in range(0, y.shape[1], step):
                cols = slice(start, start + step)
                outer = (pred[:, None, cols] * resp[None, :, cols]).reshape(n_test * n_test, -1)
                out[:, cols] += (onehot @ outer) * scale[cols]
        else:
            for start in range(0, len(perms), chunk):
                shuffled = resp[order[start:start + chunk]]  # (c, n_test, target)
                out[start:start + chunk] += np.einsum("ctv,tv->cv", shuffled, pred) * scale
    return out / len(folds)


def cross_validated_r(features, targets, alphas, outer_folds: int = 5, inner_folds: int = 5,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Held-out Pearson r per target and the chosen alphas (fold, target)."""
    result = cross_validated_encoding(features, targets, alphas, outer_folds=outer_folds,
                                      inner_folds=inner_folds, seed=seed)
    return result.r, result.alphas
