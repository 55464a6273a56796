"""Linear probes per layer: cross-validated ridge read-outs of labels, batched over permutations.

A categorical label is probed by scikit-learn's ``RidgeClassifierCV`` and a continuous one by
``RidgeCV``, each behind a ``StandardScaler`` fitted on the training rows (the pipeline
``make_pipeline(StandardScaler(), RidgeClassifierCV(alphas))``), the alpha chosen per training set
by efficient leave-one-out over ``alphas``. :func:`probe_fold` computes exactly what that pipeline
predicts on a test fold, in closed form from one thin SVD of the standardised training rows, for many
label columns at once: the observed labels and every permutation share the SVD, so a permutation null
of 1,000 label shuffles costs a few matrix products (what scikit-learn would refit 1,000 times).

The hat matrix of ridge with an unpenalised intercept on centred rows ``Xc = U S V'`` is
``H = 11'/n + U diag(S^2 / (S^2 + alpha)) U'``; the leave-one-out residual of row i is
``(y_i - (Hy)_i) / (1 - H_ii)``, and the alpha of a label set is the one with the smallest sum of
squared leave-one-out residuals over its columns (``RidgeClassifierCV`` codes classes as +-1 columns;
``RidgeCV`` has one column). Test rows are predicted as ``mean(y) + Xte_c V diag(S / (S^2 + alpha)) U' y_c``.

Scores follow ``cross_val_score``: one number per fold (accuracy and balanced accuracy for classes;
R^2 and Pearson r for continuous labels), averaged over folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORICAL_SCORES = ("accuracy", "balanced_accuracy")
CONTINUOUS_SCORES = ("r2", "r")
DEFAULT_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``StandardScaler`` fitted on ``train`` (population SD; constant columns left unscaled)."""
    mean = train.mean(0)
    scale = train.std(0)
    scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
    return (train - mean) / scale, (test - mean) / scale


def class_columns(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Class codes (..., n) as +-1 indicator columns (..., n, class), as ``RidgeClassifierCV`` codes them."""
    return np.where(codes[..., None] == np.arange(n_classes), 1.0, -1.0)


@dataclass
class FoldFit:
    """One training set's thin SVD ``U S V'`` (from the smaller of its Gram and covariance matrices)
    and the test rows in the same standardised space (times V)."""

    u: np.ndarray       # (n_train, rank)
    s: np.ndarray       # (rank,)
    test_v: np.ndarray  # (n_test, rank): standardised test rows times V

    @classmethod
    def of(cls, x_train: np.ndarray, x_test: np.ndarray) -> "FoldFit":
        train, test = standardise(x_train, x_test)
        mean = train.mean(0)
        train, test = train - mean, test - mean
        if train.shape[0] <= train.shape[1]:  # the n x n Gram matrix: U and S^2 from its eigenvectors
            s2, u = np.linalg.eigh(train @ train.T)
            keep = s2 > s2.max() * max(train.shape) * np.finfo(np.float64).eps
            s, u = np.sqrt(s2[keep]), u[:, keep]
            return cls(u, s, (test @ train.T) @ u / s)
        s2, v = np.linalg.eigh(train.T @ train)  # the p x p covariance: V and S^2
        keep = s2 > s2.max() * max(train.shape) * np.finfo(np.float64).eps
        s, v = np.sqrt(s2[keep]), v[:, keep]
        return cls(train @ v / s, s, test @ v)


def probe_fold(fit: FoldFit, y_train: np.ndarray, alphas) -> tuple[np.ndarray, np.ndarray]:
    """Test-row predictions and chosen alpha for label sets ``y_train`` (set, n_train, column): each set
    (one label shuffle) gets the alpha with the smallest leave-one-out squared error over its columns.
    Returns predictions (set, n_test, column) and alphas (set,)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    n_sets, n, n_cols = y_train.shape
    mean = y_train.mean(1, keepdims=True)                      # (set, 1, column)
    centred = np.ascontiguousarray((y_train - mean).transpose(1, 0, 2).reshape(n, -1))  # (n, set*column)
    proj = fit.u.T @ centred                                   # U'y_c: (rank, set*column), one GEMM
    s2 = fit.s ** 2
    best_err = np.full(n_sets, np.inf)
    best = np.zeros(n_sets, dtype=int)
    for a, alpha in enumerate(alphas):
        shrink = s2 / (s2 + alpha)
        residual = centred - fit.u @ (proj * shrink[:, None])  # y - Hy (the intercept is the mean)
        leverage = 1.0 / n + (fit.u ** 2) @ shrink
        err = ((residual / (1.0 - leverage)[:, None]) ** 2).reshape(n, n_sets, n_cols).sum((0, 2))
        better = err < best_err
        best_err[better], best[better] = err[better], a
    gain = fit.s[:, None] / (s2[:, None] + alphas[best][None, :])   # (rank, set)
    weighted = proj * np.repeat(gain, n_cols, axis=1)
    predictions = (fit.test_v @ weighted).reshape(-1, n_sets, n_cols).transpose(1, 0, 2) + mean
    return predictions, alphas[best]


def fold_scores(predictions: np.ndarray, truth: np.ndarray, kind: str, n_classes: int = 0,
                counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One fold's scores for every label set and resample.

    ``predictions`` (set, n_test, column), ``truth`` (set, n_test) class codes or values; ``counts``
    (resample, n_test) bootstrap weights of the test rows (None: each row once). Returns each score
    as (set,) without counts, (resample, set) with them."""
    w = np.ones((1, truth.shape[1])) if counts is None else np.asarray(counts, dtype=np.float64)
    squeeze = counts is None
    if kind == "categorical":
        predicted = predictions.argmax(-1)
        correct = (predicted == truth).astype(np.float64)      # (set, n_test)
        accuracy = (w @ correct.T) / w.sum(1, keepdims=True)    # (resample, set)
        recalls = []
        for c in range(n_classes):
            member = (truth == c).astype(np.float64)           # (set, n_test)
            total = w @ member.T
            with np.errstate(invalid="ignore", divide="ignore"):
                recalls.append(np.where(total > 0, (w @ (member * correct).T) / total, np.nan))
        with np.errstate(invalid="ignore"):
            present = np.isfinite(np.stack(recalls))
            balanced = np.where(present, np.stack(recalls), 0.0).sum(0) / present.sum(0)
        out = {"accuracy": accuracy, "balanced_accuracy": balanced}
    else:
        pred = predictions[..., 0]
        total = w.sum(1, keepdims=True)
        mean_t = (w @ truth.T) / total
        mean_p = (w @ pred.T) / total
        sse = (w @ ((truth - pred) ** 2).T)
        stt = (w @ (truth ** 2).T) - total * mean_t ** 2
        spp = (w @ (pred ** 2).T) - total * mean_p ** 2
        stp = (w @ (truth * pred).T) - total * mean_t * mean_p
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = 1.0 - sse / stt
            r = stp / np.sqrt(np.maximum(stt, 0) * np.maximum(spp, 0))
        out = {"r2": r2, "r": r}
    return {k: v[0] if squeeze else v for k, v in out.items()}


def concept_depth(curves: np.ndarray, depths: np.ndarray, fraction: float,
                  chance: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The first layer whose score reaches ``fraction`` of the best one, above ``chance``.

    ``curves`` (..., layer) scores in layer order, ``depths`` (layer,) relative depths, ``chance``
    broadcastable to ``curves``. The curve is normalised as (score - chance) / max(score - chance); the
    concept depth is the relative depth of the first layer at or above ``fraction``. Returns the depths
    and layer positions (-1 and NaN where no layer is above chance)."""
    gain = np.asarray(curves, dtype=np.float64) - chance
    best = np.nanmax(gain, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = gain / best
    reached = (normalised >= fraction - 1e-12) & (best > 0)
    first = np.where(reached.any(-1), reached.argmax(-1), -1)
    depth = np.where(first >= 0, np.asarray(depths, dtype=np.float64)[np.maximum(first, 0)], np.nan)
    return depth, first
