"""Representational similarity analysis, vectorised over layers and subjects.

RDMs and comparisons follow rsatoolbox's definitions exactly (the tests check
agreement with ``rsatoolbox.rdm.calc_rdm`` and ``rsatoolbox.rdm.compare``); the
code here batches them so all layers x subjects x permutations run as array
operations instead of Python loops.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from .stats import permutations

COMPARISONS = ("spearman", "tau-a")


def correlation_rdm(patterns: np.ndarray) -> np.ndarray:
    """Correlation-distance RDMs as upper-triangle vectors.

    ``patterns`` is ``(..., stimulus, unit)``; returns ``(..., n_pairs)`` in
    rsatoolbox's order (row-major upper triangle, diagonal excluded).
    """
    x = np.asarray(patterns, dtype=np.float64)
    x = x - x.mean(-1, keepdims=True)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    rdm = 1.0 - x @ np.swapaxes(x, -1, -2)
    iu = np.triu_indices(x.shape[-2], k=1)
    return rdm[..., iu[0], iu[1]]


def _pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation between every row of ``a`` (A, P) and of ``b`` (B, P)."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


def rank_vectors(vectors: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    return rankdata(vectors, axis=-1)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho between RDM vectors: ``a`` (A, P), ``b`` (B, P) -> (A, B)."""
    return _pearson_matrix(rank_vectors(np.atleast_2d(a)), rank_vectors(np.atleast_2d(b)))


def _tied_pairs(vector: np.ndarray) -> int:
    """Number of pairs of equal values in ``vector``."""
    _, counts = np.unique(vector, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def tau_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-a between RDM vectors: ``a`` (A, P), ``b`` (B, P) -> (A, B).

    Concordant minus discordant pairs over all P(P-1)/2 pairs (ties count zero),
    with the untied denominator. Each pair of vectors costs O(P log P): scipy's
    tau-b, rescaled by its tie-corrected denominator, is exactly tau-a.
    """
    from scipy.stats import kendalltau

    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    n0 = a.shape[-1] * (a.shape[-1] - 1) / 2
    untied_a = [n0 - _tied_pairs(x) for x in a]
    untied_b = [n0 - _tied_pairs(y) for y in b]
    out = np.zeros((a.shape[0], b.shape[0]))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            scale = np.sqrt(untied_a[i] * untied_b[j])
            if scale > 0:
                out[i, j] = kendalltau(x, y, variant="b").statistic * scale / n0
    return out


def compare(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Compare RDM vectors ``a`` (A, P) with ``b`` (B, P); returns (A, B)."""
    if method == "spearman":
        return spearman(a, b)
    if method == "tau-a":
        return tau_a(a, b)
    raise ValueError(f"unknown RDM comparison '{method}' (known: {COMPARISONS})")


def pair_index(n: int) -> np.ndarray:
    """(n, n) matrix mapping stimulus pairs (i, j) to their upper-triangle position."""
    idx = np.full((n, n), -1, dtype=np.int64)
    iu = np.triu_indices(n, k=1)
    idx[iu] = np.arange(len(iu[0]))
    idx[iu[1], iu[0]] = idx[iu]
    return idx


def permuted_pairs(n: int, perms: np.ndarray) -> np.ndarray:
    """Positions that reorder an RDM vector under stimulus permutations.

    ``perms`` is (n_perm, n); returns (n_perm, n_pairs) such that
    ``vector[..., out[k]]`` is the RDM with stimulus labels permuted by ``perms[k]``.
    """
    idx = pair_index(n)
    iu = np.triu_indices(n, k=1)
    return idx[perms[:, iu[0]], perms[:, iu[1]]]


def permutation_null(model_rdms: np.ndarray, brain_rdms: np.ndarray, n_stimuli: int, method: str,
                     n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Null distribution of the comparison under shuffled stimulus labels.

    ``model_rdms`` (L, P), ``brain_rdms`` (B, P). The same permutation is applied
    to every brain RDM. Returns (n_permutations, L, B).
    """
    perms = permutations(n_stimuli, n_permutations, rng)
    positions = permuted_pairs(n_stimuli, perms)
    null = np.empty((n_permutations, model_rdms.shape[0], brain_rdms.shape[0]))
    if method == "spearman":
        # Ranks commute with reordering, so rank once and permute the ranks.
        ma = rank_vectors(model_rdms)
        ma = ma - ma.mean(-1, keepdims=True)
        ma /= np.linalg.norm(ma, axis=-1, keepdims=True)
        rb = rank_vectors(brain_rdms)
        rb = rb - rb.mean(-1, keepdims=True)
        rb /= np.linalg.norm(rb, axis=-1, keepdims=True)
        for k in range(n_permutations):
            null[k] = ma @ rb[:, positions[k]].T
    else:
        for k in range(n_permutations):
            null[k] = compare(model_rdms, brain_rdms[:, positions[k]], method)
    return null


def noise_ceiling(brain_rdms: np.ndarray, method: str = "spearman") -> tuple[float, float]:
    """Lower and upper noise-ceiling bounds across subjects, as rsatoolbox's
    ``boot_noise_ceiling`` defines them (leave-one-subject-out mean RDM for the
    lower bound, the all-subject mean for the upper). ``brain_rdms`` (S, P)."""
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    if brain_rdms.shape[0] < 2:
        return np.nan, np.nan
    rdms = RDMs(brain_rdms, dissimilarity_measure="correlation")
    low, high = boot_noise_ceiling(rdms, method=method, rdm_descriptor="index")
    return float(low), float(high)
