"""Arrays in, arrays out for the ``word_similarity`` metric: a model's cosine similarities of word
pairs against human ratings, by Spearman's rho over the rated pairs, with its permutation null and
a bootstrap of words, every function vectorised over resamples.

Ranks are mid-ranks (ties share their mean rank), as :func:`scipy.stats.spearmanr`. A bootstrap
resample is given by a weight per pair (how many copies of it the resample holds); its Spearman
rho is that of the expanded sample, computed from weighted mid-ranks (:func:`weighted_spearman`)
without expanding anything.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

#: The largest (resample x pair) block ranked at once.
BLOCK = 1 << 22


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    """(n, n) cosine similarities of the rows of ``x``; a row of zeros has similarity 0 with every row."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    unit = x / np.where(norms > 0, norms, 1.0)[:, None]
    return unit @ unit.T


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of every row of ``a`` (..., P) with the vector ``b`` (P,); NaN for a constant row."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a @ b) / np.sqrt((a * a).sum(-1) * (b @ b))


def spearman_rows(values: np.ndarray, rating_ranks: np.ndarray) -> np.ndarray:
    """Spearman rho of every row of ``values`` (..., P) with ratings whose mid-ranks are ``rating_ranks``."""
    return pearson_rows(rankdata(values, axis=-1), rating_ranks)


def permutation_null(similarity: np.ndarray, i: np.ndarray, j: np.ndarray, rating_ranks: np.ndarray,
                     perms: np.ndarray) -> np.ndarray:
    """(B,) Spearman rho with the model's word labels permuted: pair (i, j) takes the similarity of
    words (perm[i], perm[j]) from ``similarity`` (n, n), the ratings stay."""
    out = np.empty(len(perms))
    step = max(1, BLOCK // max(1, len(i)))
    for start in range(0, len(perms), step):
        block = perms[start:start + step]
        out[start:start + len(block)] = spearman_rows(similarity[block[:, i], block[:, j]], rating_ranks)
    return out


def weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mid-ranks of ``values`` (P,) in each resample that holds ``weights[b, k]`` copies of value k:
    (B, P). A value's rank is the number of copies below it plus (its tie group's copies + 1) / 2."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    totals = np.add.reduceat(weights[:, order], starts, axis=1)  # (B, groups)
    mid = np.cumsum(totals, axis=1) - totals + (totals + 1) / 2
    ranks = np.empty(weights.shape)
    ranks[:, order] = mid[:, group]
    return ranks


def weighted_pearson(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson r of rows of ``a`` and ``b`` (B, P) weighted by ``weights`` (B, P); NaN where fewer than
    3 copies or no variance."""
    total = weights.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = a - (weights * a).sum(1, keepdims=True) / total[:, None]
        db = b - (weights * b).sum(1, keepdims=True) / total[:, None]
        r = (weights * da * db).sum(1) / np.sqrt((weights * da * da).sum(1) * (weights * db * db).sum(1))
    return np.where(total >= 3, r, np.nan)


def weighted_spearman(values: np.ndarray, ratings: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) Spearman rho of ``values`` and ``ratings`` (P,) in resamples holding ``weights`` (B, P)
    copies of each pair: that of the expanded samples (duplicated pairs tie with each other)."""
    out = np.empty(len(weights))
    step = max(1, BLOCK // max(1, len(values)))
    for start in range(0, len(weights), step):
        w = weights[start:start + step]
        out[start:start + len(w)] = weighted_pearson(weighted_ranks(values, w), weighted_ranks(ratings, w), w)
    return out


def word_weights(counts: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Pair weights of a bootstrap of words: a resample drawing word i ``counts[b, i]`` times holds
    every rated pair of drawn words ``counts[b, i] * counts[b, j]`` times (a word paired with its own
    copy is no rated pair)."""
    return counts[:, i] * counts[:, j]


