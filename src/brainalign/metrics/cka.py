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
                     rng: np.random.Generator, debiased: bool = False, max_bytes: float = 2.5e8) -> np.ndarray:
    """CKA (linear, RBF or, with ``debiased``, the unbiased estimator) under shuffled stimulus
    labels: (n_permutations, A, B). One permutation (drawn as :func:`stats.permutations` draws
    them) reorders rows and columns of every brain Gram matrix; a block of permutations is one
    gather and one :func:`~brainalign.metrics.similarity.cka_matrix` call against every
    permuted brain Gram at once."""
    perms = stats.permutations(brain_grams.shape[-1], n_permutations, rng)
    n_models, (n_brains, n, _) = model_grams.shape[0], brain_grams.shape
    out = np.zeros((len(perms), n_models, n_brains))
    chunk = max(1, int(max_bytes // (8 * n * n * n_brains)))
    for start in range(0, len(perms), chunk):
        p = perms[start:start + chunk]
        permuted = brain_grams[:, p[:, :, None], p[:, None, :]]  # (B, k, n, n)
        block = similarity.cka_matrix(model_grams, permuted.transpose(1, 0, 2, 3).reshape(-1, n, n),
                                      debiased=debiased)
        out[start:start + len(p)] = block.reshape(n_models, len(p), n_brains).transpose(1, 0, 2)
    return out
