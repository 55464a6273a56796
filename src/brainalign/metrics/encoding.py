"""Voxel-wise ridge encoding models with a per-target penalty.

The solver is himalaya's: ``RidgeCV`` in feature space when there are more
stimuli than features, ``KernelRidgeCV`` with a linear kernel (the same model,
solved through the n x n kernel's eigendecomposition) otherwise. Either one
chooses one alpha per target by inner cross-validation, all targets at once.
Standardisation is fitted on the training fold only.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score columns with the training fold's mean and SD (constant columns -> 0)."""
    mean = train.mean(0)
    sd = train.std(0)
    sd[sd == 0] = 1.0
    return (train - mean) / sd, (test - mean) / sd


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def ridge_predict(x_train, y_train, x_test, alpha: float) -> np.ndarray:
    """Ridge at a fixed ``alpha`` with an intercept (himalaya, float64)."""
    from himalaya.kernel_ridge import KernelRidge
    from himalaya.ridge import Ridge

    x_train = _f64(x_train)
    if x_train.shape[0] < x_train.shape[1]:
        model = KernelRidge(alpha=alpha, kernel="linear", fit_intercept=True)
    else:
        model = Ridge(alpha=alpha, fit_intercept=True)
    model.fit(x_train, _f64(y_train))
    return np.asarray(model.predict(_f64(x_test)))


def ridge_cv_predict(x_train, y_train, x_test, alphas, inner_folds: int, seed: int):
    """Fit ridge with one alpha per target chosen by inner K-fold CV on the
    training data; return (test predictions, chosen alphas)."""
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV

    x_train = _f64(x_train)
    inner = KFold(n_splits=inner_folds, shuffle=True, random_state=seed)
    alphas = _f64(alphas)
    if x_train.shape[0] < x_train.shape[1]:
        model = KernelRidgeCV(alphas=alphas, kernel="linear", fit_intercept=True, cv=inner)
    else:
        model = RidgeCV(alphas=alphas, fit_intercept=True, cv=inner)
    model.fit(x_train, _f64(y_train))
    return np.asarray(model.predict(_f64(x_test))), np.asarray(model.best_alphas_)


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of ``a`` and ``b`` (n, targets)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denom = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(0) / denom, 0.0)


def cross_validated_r(features: np.ndarray, targets: np.ndarray, alphas, outer_folds: int = 5,
                      inner_folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Outer K-fold over stimuli; returns Pearson r per target between held-out
    predictions (each stimulus predicted once, by the fold that held it out) and
    data, and the chosen alphas (fold, target)."""
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    predictions = np.empty_like(targets)
    chosen = []
    outer = KFold(n_splits=outer_folds, shuffle=True, random_state=seed)
    for train, test in outer.split(features):
        x_train, x_test = standardize(features[train], features[test])
        predictions[test], best = ridge_cv_predict(x_train, targets[train], x_test, alphas, inner_folds, seed)
        chosen.append(best)
    return pearson_columns(predictions, targets), np.stack(chosen)
