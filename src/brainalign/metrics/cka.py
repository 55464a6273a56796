"""Centred kernel alignment (linear), vectorised over layers and subjects."""

from __future__ import annotations

import numpy as np
import torch


def centered_gram(x: np.ndarray) -> np.ndarray:
    """Double-centred linear Gram matrices: ``x`` (..., stimulus, unit) -> (..., n, n).

    Computed in float64 with torch (on the GPU when there is one).
    """
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if torch.cuda.is_available():
        t = t.cuda()
    t = t - t.mean(-2, keepdim=True)
    gram = t @ t.transpose(-1, -2)
    return gram.cpu().numpy()


def cka_from_grams(k: np.ndarray, l: np.ndarray) -> np.ndarray:
    """CKA between every centred Gram in ``k`` (A, n, n) and in ``l`` (B, n, n) -> (A, B)."""
    k = k.reshape(k.shape[0], -1)
    l = l.reshape(l.shape[0], -1)
    num = k @ l.T
    return num / np.outer(np.linalg.norm(k, axis=1), np.linalg.norm(l, axis=1))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) in feature space, for one pair:
    ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x, 0)
    y = np.asarray(y, dtype=np.float64) - np.mean(y, 0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def permutation_null(model_grams: np.ndarray, brain_grams: np.ndarray, n_permutations: int,
                     rng: np.random.Generator) -> np.ndarray:
    """CKA under shuffled stimulus labels: (n_permutations, A, B). One permutation
    reorders rows and columns of every brain Gram matrix."""
    n = brain_grams.shape[-1]
    null = np.empty((n_permutations, model_grams.shape[0], brain_grams.shape[0]))
    for k in range(n_permutations):
        p = rng.permutation(n)
        null[k] = cka_from_grams(model_grams, brain_grams[:, p][:, :, p])
    return null
