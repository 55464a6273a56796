"""Linear CKA shortcuts for the model x brain permutation test.

Thin wrappers over :mod:`brainalign.metrics.similarity` (which holds every CKA
variant): permuting stimulus labels only reorders the rows and columns of a
centred Gram matrix, so the null distribution needs no new Gram matrices.
"""

from __future__ import annotations

import numpy as np

from . import similarity, stats


def centered_gram(x: np.ndarray) -> np.ndarray:
    """Double-centred linear Gram matrices: ``x`` (..., stimulus, unit) -> (..., n, n), float64."""
    return similarity.center_gram(similarity.gram(x)).double().cpu().numpy()


def cka_from_grams(k: np.ndarray, l: np.ndarray) -> np.ndarray:
    """Linear CKA between every Gram in ``k`` (A, n, n) and in ``l`` (B, n, n) -> (A, B)."""
    return similarity.cka_matrix(k, l)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) of one pair:
    ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)."""
    return float(similarity.linear_cka_features(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)))


def permutation_null(model_grams: np.ndarray, brain_grams: np.ndarray, n_permutations: int,
                     rng: np.random.Generator, debiased: bool = False) -> np.ndarray:
    """CKA (linear, RBF or, with ``debiased``, the unbiased estimator) under shuffled stimulus
    labels: (n_permutations, A, B). One permutation (drawn as :func:`stats.permutations` draws
    them) reorders rows and columns of every brain Gram matrix."""
    perms = stats.permutations(brain_grams.shape[-1], n_permutations, rng)
    if not len(perms):
        return np.zeros((0, model_grams.shape[0], brain_grams.shape[0]))
    return np.stack([similarity.cka_matrix(model_grams, brain_grams[:, p][:, :, p], debiased=debiased)
                     for p in perms])
