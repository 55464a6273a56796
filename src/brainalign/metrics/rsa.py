"""Representational similarity analysis, vectorised over layers, subjects and resamples.

RDMs and comparisons follow rsatoolbox's definitions exactly; the tests check
agreement with ``rsatoolbox.rdm.calc_rdm``, ``rsatoolbox.rdm.compare``,
``rsatoolbox.inference.boot_noise_ceiling`` and rsatoolbox's bootstrap
evaluations. The code here batches them so all layers x subjects x
permutations x bootstrap samples run as array operations instead of loops.

RDMs are upper-triangle vectors (row-major, diagonal excluded), the order of
``scipy.spatial.distance.squareform`` and of rsatoolbox.

Geo-topological transforms of RDMs (topological RSA) live in
:mod:`brainalign.metrics.rdm_transforms`; :func:`bootstrap_compare` applies one to every
resampled RDM when given ``transform``.

Every comparison except Kendall's tau-a is a cosine between *embeddings* of
the RDM vectors (ranks for Spearman, centred values for Pearson, the
double-centred second-moment matrix for the whitened comparisons). Permuting
stimulus labels permutes the embedding's entries, and resampling stimuli with
replacement weights them, which is what makes the batching exact.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.stats import rankdata

from .rdm_transforms import AFFINE_INVARIANT, RDMTransform
from .stats import permutations, resample_counts

RDM_METHODS = ("correlation", "euclidean", "cosine")
CV_RDM_METHODS = ("euclidean_cv", "crossnobis")
COMPARISONS = ("spearman", "tau-a", "corr", "cosine", "corr_cov", "cosine_cov")
ALIASES = {"pearson": "corr", "kendall_tau_a": "tau-a", "whitened_corr": "corr_cov",
           "whitened_cosine": "cosine_cov"}
WEIGHTED = ("spearman", "corr", "cosine")  # comparisons with an exact weighted bootstrap
WHITENED = ("corr_cov", "cosine_cov")


def comparison_name(method: str) -> str:
    """rsatoolbox's name for a comparison (accepting the aliases in :data:`ALIASES`)."""
    method = ALIASES.get(method, method)
    if method not in COMPARISONS:
        raise ValueError(f"unknown RDM comparison '{method}' (known: {COMPARISONS + tuple(ALIASES)})")
    return method


def n_stimuli_of(n_pairs: int) -> int:
    """Number of stimuli N with N(N-1)/2 == ``n_pairs``."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not the length of an RDM upper triangle")
    return n


# ----------------------------------------------------------------------------- RDMs

def rdm(patterns: np.ndarray, method: str = "correlation") -> np.ndarray:
    """RDMs of ``patterns`` (..., stimulus, unit) as upper-triangle vectors (..., n_pairs).

    ``correlation`` is 1 - Pearson r between patterns; ``euclidean`` is the squared
    Euclidean distance divided by the number of units (rsatoolbox's definition);
    ``cosine`` is 1 - cosine similarity (scipy's).
    """
    x = np.asarray(patterns, dtype=np.float64)
    if method == "correlation":
        x = x - x.mean(-1, keepdims=True)
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        full = 1.0 - x @ np.swapaxes(x, -1, -2)
    elif method == "cosine":
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        full = 1.0 - x @ np.swapaxes(x, -1, -2)
    elif method == "euclidean":
        sq = np.einsum("...ij,...ij->...i", x, x)
        full = (sq[..., :, None] + sq[..., None, :] - 2 * x @ np.swapaxes(x, -1, -2)) / x.shape[-1]
    else:
        raise ValueError(f"unknown RDM method '{method}' (known: {RDM_METHODS})")
    iu = np.triu_indices(x.shape[-2], k=1)
    return full[..., iu[0], iu[1]]




def cv_rdm(responses: np.ndarray, method: str = "euclidean_cv") -> np.ndarray:
    """Cross-validated RDM of ``responses`` (stimulus, unit, repetition), through
    rsatoolbox's ``calc_rdm`` with the repetitions as cross-validation folds.

    ``euclidean_cv`` is the cross-validated squared Euclidean distance;
    ``crossnobis`` whitens it with the noise precision estimated from the
    residuals around each stimulus mean (shrinkage to the diagonal).
    """
    from rsatoolbox.data import Dataset
    from rsatoolbox.data.noise import prec_from_measurements
    from rsatoolbox.rdm import calc_rdm

    if method not in CV_RDM_METHODS:
        raise ValueError(f"unknown cross-validated RDM method '{method}' (known: {CV_RDM_METHODS})")
    x = np.asarray(responses, dtype=np.float64)
    n_stim, n_unit, n_rep = x.shape
    if n_rep < 2:
        raise ValueError(f"the '{method}' RDM needs at least 2 repetitions per stimulus (got {n_rep})")
    measurements = x.transpose(2, 0, 1).reshape(n_rep * n_stim, n_unit)
    ds = Dataset(measurements, obs_descriptors={"stimulus": np.tile(np.arange(n_stim), n_rep),
                                                "run": np.repeat(np.arange(n_rep), n_stim)})
    noise = None
    if method == "crossnobis":
        noise = prec_from_measurements(ds, obs_desc="stimulus", method="shrinkage_diag")
    result = calc_rdm(ds, method="crossnobis", descriptor="stimulus", noise=noise, cv_descriptor="run")
    return result.get_vectors()[0]


# ------------------------------------------------------------------ embeddings

def _pair_indicator(n: int) -> sparse.csr_matrix:
    """(n_pairs, n) sparse matrix with ones at both stimuli of each pair."""
    iu = np.triu_indices(n, k=1)
    rows = np.repeat(np.arange(len(iu[0])), 2)
    cols = np.stack(iu, 1).ravel()
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(iu[0]), n))


def whiten(vectors: np.ndarray, n: int | None = None) -> np.ndarray:
    """rsatoolbox's whitening of RDM vectors for i.i.d. pattern noise.

    The RDM becomes the double-centred second-moment matrix ``-H D H / 2``: its
    off-diagonal entries (times sqrt 2, since each appears twice) followed by
    its diagonal. Returns (R, n_pairs + n). The cosine of two such vectors is
    rsatoolbox's ``cosine_cov`` (``corr_cov`` after centring the RDM vectors).
    """
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n = n or n_stimuli_of(v.shape[-1])
    indicator = _pair_indicator(n)
    g = -0.5 * v
    row_mean = (indicator.T @ g.T).T / n  # (R, n): mean of each row of the full matrix
    grand = 2 * g.sum(-1, keepdims=True) / n ** 2
    iu = np.triu_indices(n, k=1)
    off = (g - row_mean[:, iu[0]] - row_mean[:, iu[1]] + grand) * np.sqrt(2)
    diag = -2 * row_mean + grand
    return np.concatenate([off, diag], axis=1)


def rank_vectors(vectors: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    return rankdata(vectors, axis=-1)


def embed(vectors: np.ndarray, method: str) -> np.ndarray:
    """Embedding whose cosine is the comparison ``method`` (not tau-a): (R, Q)."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    method = comparison_name(method)
    if method == "spearman":
        e = rank_vectors(v)
        return e - e.mean(-1, keepdims=True)
    if method == "corr":
        return v - v.mean(-1, keepdims=True)
    if method == "cosine":
        return v
    if method == "corr_cov":
        return whiten(v - v.mean(-1, keepdims=True))
    if method == "cosine_cov":
        return whiten(v)
    raise ValueError(f"comparison '{method}' has no embedding")


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.linalg.norm(e, axis=-1, keepdims=True)


# ----------------------------------------------------------------- comparisons

def _dense_ranks(vector: np.ndarray) -> tuple[np.ndarray, int]:
    """1-based dense ranks (intp) of ``vector`` and its number of tied pairs."""
    ranks = rankdata(vector, method="dense").astype(np.intp)
    counts = np.bincount(ranks)
    return ranks, int((counts * (counts - 1) // 2).sum())


def tau_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-a between RDM vectors: ``a`` (A, P), ``b`` (B, P) -> (A, B).

    Concordant minus discordant pairs over all P(P-1)/2 pairs (ties count zero).
    Each pair of vectors costs one O(P log P) sort and scipy's merge-sort count
    of discordant pairs (the kernel of ``scipy.stats.kendalltau``, private in
    scipy); the dense ranks of every vector are computed once. Without that
    kernel, scipy's public tau-b rescaled by its tie-corrected denominator is
    the same number.
    """
    try:
        from scipy.stats._stats import _kendall_dis
    except ImportError:
        _kendall_dis = None
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    n_pairs = a.shape[-1]
    total = n_pairs * (n_pairs - 1) // 2
    ranks_a = [_dense_ranks(x) for x in a]
    ranks_b = [_dense_ranks(y) for y in b]
    out = np.zeros((a.shape[0], b.shape[0]))
    for i, (ra, ties_a) in enumerate(ranks_a):
        for j, (rb, ties_b) in enumerate(ranks_b):
            if _kendall_dis is None:
                from scipy.stats import kendalltau

                scale = np.sqrt((total - ties_a) * (total - ties_b))
                out[i, j] = kendalltau(ra, rb, variant="b").statistic * scale / total if scale else 0.0
                continue
            key = ra.astype(np.int64) * (n_pairs + 1) + rb
            order = np.argsort(key, kind="stable")
            key = key[order]
            dis = int(_kendall_dis(ra[order], rb[order]))
            runs = np.diff(np.flatnonzero(np.r_[True, key[1:] != key[:-1], True]))
            joint = int((runs * (runs - 1) // 2).sum())
            out[i, j] = (total - ties_a - ties_b + joint - 2 * dis) / total
    return out


def compare(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Compare RDM vectors ``a`` (A, P) with ``b`` (B, P); returns (A, B).

    ``method`` is one of rsatoolbox's names: spearman, tau-a, corr (Pearson),
    cosine, corr_cov and cosine_cov (whitened Pearson and cosine).
    """
    method = comparison_name(method)
    if method == "tau-a":
        return tau_a(a, b)
    return _unit(embed(a, method)) @ _unit(embed(b, method)).T


# ----------------------------------------------------------------- permutations

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
                     n_permutations: int, rng: np.random.Generator, perms: np.ndarray | None = None,
                     reduce=None, progress=None) -> np.ndarray:
    """Null distribution of the comparison under shuffled stimulus labels.

    ``model_rdms`` (L, P), ``brain_rdms`` (B, P). The same permutation is applied
    to every brain RDM. Returns (n_permutations, L, B), or (n_permutations, ...)
    of ``reduce((L, B) array)`` when given (for example a subject mean), which
    keeps memory bounded. ``perms`` overrides the permutations drawn from ``rng``.
    """
    reduce = reduce or (lambda x: x)
    method = comparison_name(method)
    if perms is None:
        perms = permutations(n_stimuli, n_permutations, rng)
    positions = permuted_pairs(n_stimuli, perms)
    if len(perms) == 0:
        return np.zeros((0,) + np.shape(reduce(np.zeros((model_rdms.shape[0], brain_rdms.shape[0])))))
    if method == "tau-a":
        blocks = _tau_a_permutation_blocks(model_rdms, brain_rdms, positions)
    else:
        blocks = _permutation_blocks(model_rdms, brain_rdms, method, positions, perms)
    null = None
    for part, block in blocks:  # (k, L, S) per block of permutations
        values = [reduce(v) for v in block]
        if null is None:
            null = np.empty((len(perms),) + np.shape(values[0]))
        null[part] = values
        if progress is not None:
            progress.update(part.stop - part.start)
    return null


def _permutation_blocks(model_rdms, brain_rdms, method, positions, perms, max_bytes: float = 3e8):
    """Blocks of the null for comparisons with an embedding: it commutes with relabelling, so
    embed once and permute the entries; a block is one gather and one batched product."""
    em = _unit(embed(model_rdms, method))
    eb = _unit(embed(brain_rdms, method))
    if eb.shape[1] > positions.shape[1]:  # whitened embeddings carry the diagonal too
        positions = np.concatenate([positions, positions.shape[1] + perms], axis=1)
    for part in _chunks(len(perms), max(1, int(max_bytes // (8 * positions.shape[1] * eb.shape[0])))):
        permuted = eb[:, positions[part]].transpose(1, 2, 0)  # (k, P, S)
        yield part, np.matmul(em, permuted)                   # (k, L, S)


# --------------------------------------------------------------------- bootstrap

def stimulus_counts(pattern_idx: np.ndarray, n: int) -> np.ndarray:
    """How often each stimulus is drawn in each resample: (n, B)."""
    return resample_counts(pattern_idx, n).T


def pair_weights(pattern_idx: np.ndarray, n: int) -> np.ndarray:
    """How often each stimulus pair appears in resampled RDMs: (n_pairs, B).

    A stimulus drawn ``c_i`` times and one drawn ``c_j`` times give ``c_i * c_j``
    copies of their dissimilarity; pairs of a stimulus with itself are dropped,
    as rsatoolbox's ``subsample_pattern`` does.
    """
    counts = stimulus_counts(pattern_idx, n)
    iu = np.triu_indices(n, k=1)
    return counts[iu[0]] * counts[iu[1]]


class _WeightedRanks:
    """Average ranks of one RDM vector resampled with integer pair weights, O(P) per resample.

    An entry standing for ``w`` copies, after ``before`` smaller copies, holds
    ranks ``before + 1 .. before + w``: their mean is ``before + (w + 1) / 2``.
    Tied entries share the mean rank of their whole group.
    """

    def __init__(self, vector: np.ndarray, n: int):
        self.order = np.argsort(vector, kind="stable")
        iu = np.triu_indices(n, k=1)
        small = np.int16 if n < 2 ** 15 else np.int32
        self.first, self.second = iu[0][self.order].astype(small), iu[1][self.order].astype(small)
        sorted_values = vector[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
        self.sizes = np.diff(np.r_[self.starts, len(vector)])
        self.tied = len(self.starts) < len(vector)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Centred ranks (B, P) in the vector's own order, from stimulus ``counts`` (B, n)."""
        ws = counts[:, self.first] * counts[:, self.second]
        ranked = np.cumsum(ws, axis=1)
        ranked -= ws
        if self.tied:
            group = ranked[:, self.starts] + (np.add.reduceat(ws, self.starts, axis=1) + 1) / 2
            ranked = np.repeat(group, self.sizes, axis=1)
        else:
            ws += 1
            ws /= 2
            ranked += ws
        ranked -= (counts.sum(1, keepdims=True) ** 2 - (counts ** 2).sum(1, keepdims=True)) / 4 + 0.5
        out = np.empty_like(ranked)
        out[:, self.order] = ranked
        return out


def _chunks(n_total: int, size: int):
    for start in range(0, n_total, size):
        yield slice(start, min(start + size, n_total))


def bootstrap_compare(model_rdms: np.ndarray, brain_rdms: np.ndarray, method: str,
                      pattern_idx: np.ndarray, *, max_bytes: float = 3e8, progress=None,
                      reduce=None, transform=None) -> np.ndarray:
    """Comparisons of every model RDM with every brain RDM on stimulus resamples.

    ``model_rdms`` (L, P), ``brain_rdms`` (S, P), ``pattern_idx`` (B, N) stimulus
    indices drawn with replacement. Each resample gives what rsatoolbox's
    ``subsample_pattern`` followed by ``compare`` gives: RDMs over the drawn
    stimuli, self-pairs excluded. Returns (B, L, S); NaN for resamples with fewer
    than 3 distinct stimuli (rsatoolbox's rule). With ``reduce(block, rows)`` (a
    function of a (b, L, S) block and the indices of its b resamples, for example
    a subject mean), returns the reduced blocks stacked over resamples instead,
    which keeps memory bounded.

    Spearman, Pearson and cosine run as weighted sums over the original pairs,
    batched over resamples; tau-a as a weighted count of concordant pairs, compiled and
    threaded over resamples (:mod:`brainalign.metrics.kendall`); the whitened comparisons as
    count-weighted sums over stimuli and pairs with one small solve per resample
    (:func:`_bootstrap_whitened`). Only tau-a after an RDM transform loops over resamples, with
    the resampled RDMs built as rsatoolbox builds them.

    ``transform`` (an :class:`~brainalign.metrics.rdm_transforms.RDMTransform` or its
    settings) is applied to every resampled RDM, model and brain alike, with that RDM's own
    quantile thresholds, as if the RDM had been recomputed from the resampled stimuli; the
    RDM vectors given here are then the untransformed ones. A geo-topological transform at
    thresholds (0, 1) is a positive affine map of each resampled RDM, which leaves the
    affine-invariant comparisons (Spearman, tau-a, Pearson, whitened Pearson) unchanged, so
    it is skipped for them.
    """
    method = comparison_name(method)
    transform = RDMTransform.from_settings(transform)
    if not transform.active or (transform.is_affine() and method in AFFINE_INVARIANT):
        transform = None
    model_rdms = np.atleast_2d(np.asarray(model_rdms, dtype=np.float64))
    brain_rdms = np.atleast_2d(np.asarray(brain_rdms, dtype=np.float64))
    pattern_idx = np.atleast_2d(pattern_idx)
    n_boot, n_pairs = pattern_idx.shape[0], model_rdms.shape[1]
    n = n_stimuli_of(n_pairs)
    n_models, n_brains = model_rdms.shape[0], brain_rdms.shape[0]
    reduce = reduce or (lambda block, rows: block)
    out = np.full((n_boot,) + np.shape(reduce(np.zeros((1, n_models, n_brains)), np.zeros(1, int)))[1:], np.nan)
    index = np.flatnonzero((resample_counts(pattern_idx, n) > 0).sum(1) >= 3)
    if method == "tau-a" and transform is None:
        return _bootstrap_tau_a(model_rdms, brain_rdms, pattern_idx, index, out, max_bytes, progress, reduce)
    if method in WHITENED:
        return _bootstrap_whitened(model_rdms, brain_rdms, method, pattern_idx, index, out, transform,
                                   max_bytes, progress, reduce)
    if method not in WEIGHTED:
        for k in index:
            out[k] = reduce(_resampled_compare(model_rdms, brain_rdms, pattern_idx[k], n, method, transform)[None],
                            np.array([k]))[0]
            if progress is not None:
                progress.update(1)
        return out
    if transform is not None:
        return _bootstrap_transformed(model_rdms, brain_rdms, method, pattern_idx, index, out, transform,
                                      max_bytes, progress, reduce)
    iu = np.triu_indices(n, k=1)
    if method == "spearman":
        model_ranks = [_WeightedRanks(v, n) for v in model_rdms]
        brain_ranks = [_WeightedRanks(v, n) for v in brain_rdms]
    per_sample = 8 * n_pairs * (3 * (n_models + n_brains) if method == "spearman" else n_brains + 4)
    chunk = max(1, int(max_bytes // per_sample))
    for part in _chunks(len(index), chunk):
        rows = index[part]
        counts = stimulus_counts(pattern_idx[rows], n)
        w = counts[iu[0]] * counts[iu[1]]  # (P, b)
        if method == "spearman":
            counts_t, w_t = np.ascontiguousarray(counts.T), np.ascontiguousarray(w.T)
            m = np.stack([r(counts_t) for r in model_ranks], axis=1)  # (b, L, P) centred ranks
            b = np.stack([r(counts_t) for r in brain_ranks], axis=1)  # (b, S, P)
            nb = np.matmul(b * b, w_t[:, :, None])[..., 0]
            b *= w_t[:, None, :]
            num = np.matmul(m, b.transpose(0, 2, 1))
            m *= m
            na = np.matmul(m, w_t[:, :, None])[..., 0]
            out[rows] = reduce(num / np.sqrt(na[:, :, None] * nb[:, None, :]), rows)
        else:
            a, b = model_rdms, brain_rdms
            cross = np.stack([a @ (w * bs[:, None]) for bs in b], axis=-1).transpose(1, 0, 2)  # (b, L, S)
            sa, sb = (a @ w).T, (b @ w).T  # weighted sums (b, L), (b, S)
            qa, qb = ((a * a) @ w).T, ((b * b) @ w).T
            if method == "corr":  # centre on each resample's weighted mean
                total = w.sum(0)[:, None]
                cross = cross - sa[:, :, None] * sb[:, None, :] / total[:, :, None]
                qa, qb = qa - sa ** 2 / total, qb - sb ** 2 / total
            out[rows] = reduce(cross / np.sqrt(qa[:, :, None] * qb[:, None, :]), rows)
        if progress is not None:
            progress.update(len(rows))
    return out


def _bootstrap_tau_a(model_rdms, brain_rdms, pattern_idx, index, out, max_bytes, progress, reduce):
    """:func:`bootstrap_compare` for tau-a: every resample's pair weights through the compiled
    weighted tau-a (:mod:`brainalign.metrics.kendall`), each vector sorted and ranked once."""
    from .kendall import Weights, dense_ranks, order_of, tau_a_grid

    n_pairs = model_rdms.shape[1]
    n = n_stimuli_of(n_pairs)
    sorted_models = [order_of(v) for v in model_rdms]
    brain_ranks = [dense_ranks(v) for v in brain_rdms]
    for part in _chunks(len(index), max(1, int(max_bytes // (16 * n_pairs)))):
        rows = index[part]
        w = Weights(pair_weights(pattern_idx[rows], n).T)  # (b, P), laid out once for every pair
        out[rows] = reduce(tau_a_grid(sorted_models, brain_ranks, w), rows)
        if progress is not None:
            progress.update(len(rows))
    return out


def _tau_a_permutation_blocks(model_rdms, brain_rdms, positions, max_bytes: float = 3e8):
    """Blocks of the tau-a null: the brain vectors' ranks relabelled by each permutation,
    through the compiled tau-a; each model vector is sorted once."""
    from .kendall import Weights, dense_ranks, order_of, tau_a_grid

    sorted_models = [order_of(v) for v in model_rdms]
    brain_ranks = [dense_ranks(v) for v in brain_rdms]
    once = Weights(np.ones((1, positions.shape[1]), dtype=np.int32))
    for part in _chunks(len(positions), max(1, int(max_bytes // (8 * positions.shape[1] * len(brain_ranks))))):
        permuted = [ranks[positions[part]] for ranks in brain_ranks]  # (k, P) each
        yield part, tau_a_grid(sorted_models, permuted, once)


def weighted_centred_ranks(values: np.ndarray, weights: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Average ranks of each row of ``values`` (N, P) with its entries repeated ``weights`` (N, P)
    times (ties share the mean rank of their whole group), centred on the weighted mean rank.

    ``order`` (N, P) is an argsort of each row when the caller has one; any order that sorts the
    row will do. For weight-0 entries the result is meaningless (they drop out of weighted sums).
    """
    order = np.argsort(values, axis=-1, kind="stable") if order is None else order
    sv = np.take_along_axis(values, order, -1)
    incl = np.cumsum(np.take_along_axis(weights, order, -1), -1)
    excl = incl - np.take_along_axis(weights, order, -1)
    positions = np.arange(sv.shape[-1])
    new = np.ones(sv.shape, dtype=bool)
    new[:, 1:] = sv[:, 1:] != sv[:, :-1]
    last = np.ones(sv.shape, dtype=bool)
    last[:, :-1] = new[:, 1:]
    start = np.maximum.accumulate(np.where(new, positions, 0), axis=-1)
    end = np.minimum.accumulate(np.where(last, positions, positions[-1])[:, ::-1], axis=-1)[:, ::-1]
    ranks = (np.take_along_axis(excl, start, -1) + 1 + np.take_along_axis(incl, end, -1)) / 2
    ranks -= (incl[:, -1:] + 1) / 2
    out = np.empty_like(ranks)
    np.put_along_axis(out, order, ranks, -1)
    return out


def _bootstrap_transformed(model_rdms, brain_rdms, method, pattern_idx, index, out, transform, max_bytes,
                           progress, reduce):
    """:func:`bootstrap_compare` for Spearman, Pearson and cosine with an RDM transform: each
    resample's RDMs are transformed with their own thresholds, then compared as weighted sums."""
    n_models, n_brains, n_pairs = model_rdms.shape[0], brain_rdms.shape[0], model_rdms.shape[1]
    n = n_stimuli_of(n_pairs)
    iu = np.triu_indices(n, k=1)
    # The geo-topological transform keeps each RDM's order, so the raw order sorts it; geodesic does not.
    raw_order = None if transform.kind == "geodesic" else np.argsort(
        np.concatenate([model_rdms, brain_rdms]), axis=-1, kind="stable")
    chunk = max(1, int(max_bytes // (8 * n_pairs * 10 * (n_models + n_brains))))
    for part in _chunks(len(index), chunk):
        rows = index[part]
        counts = np.ascontiguousarray(stimulus_counts(pattern_idx[rows], n).T)  # (b, n)
        w = (counts[:, iu[0]] * counts[:, iu[1]]).astype(np.float64)  # (b, P)
        both = np.concatenate([transform.resampled(model_rdms, counts), transform.resampled(brain_rdms, counts)],
                              axis=1)  # (b, L + S, P)
        b_count, n_rdm = both.shape[:2]
        if method == "spearman":
            order = None if raw_order is None else np.broadcast_to(raw_order, both.shape).reshape(-1, n_pairs)
            weights = np.broadcast_to(w[:, None, :], both.shape).reshape(-1, n_pairs)
            both = weighted_centred_ranks(both.reshape(-1, n_pairs), weights, order).reshape(b_count, n_rdm, n_pairs)
        elif method == "corr":  # centre on each resample's weighted mean
            both -= (both * w[:, None, :]).sum(-1, keepdims=True) / w.sum(-1)[:, None, None]
        a, b = both[:, :n_models], both[:, n_models:]
        num = np.matmul(a * w[:, None, :], b.transpose(0, 2, 1))
        na = ((a * a) * w[:, None, :]).sum(-1)
        nb = ((b * b) * w[:, None, :]).sum(-1)
        out[rows] = reduce(num / np.sqrt(na[:, :, None] * nb[:, None, :]), rows)
        if progress is not None:
            progress.update(len(rows))
    return out


def _bootstrap_whitened(model_rdms, brain_rdms, method, pattern_idx, index, out, transform, max_bytes,
                        progress, reduce):
    """:func:`bootstrap_compare` for the whitened comparisons, batched over resamples.

    rsatoolbox whitens a resampled RDM over its n drawn positions: with the self-pairs of
    repeated stimuli missing, the RDM's second-moment vector is projected off the span of
    the position indicators (the double centring with missing values), with normal matrix
    ``M = I + B'B / 2`` for B the pair-position incidence of the kept pairs. Copies of one
    stimulus are exchangeable, so the projection is constant over them and everything
    reduces to the n original stimuli weighted by their counts c: ``M = diag(1 + (n - 2c)/2)
    + 1 c'/2`` (one small solve per resample), and the inner product of two whitened
    vectors is a sum of count-weighted terms over stimuli and pairs. Equal to rsatoolbox's
    ``cosine_cov`` / ``corr_cov`` of each resampled RDM (the tests check it to 1e-10).
    """
    n_models, n_pairs = model_rdms.shape
    n = n_stimuli_of(n_pairs)
    iu = np.triu_indices(n, k=1)
    raw = np.concatenate([model_rdms, brain_rdms])  # (R, P)
    n_rdm = raw.shape[0]
    per_sample = 8 * (n_rdm * (4 * n + (n_pairs + n * n if transform is not None else 0)) + 3 * n * n + n_pairs)
    for part in _chunks(len(index), max(1, int(max_bytes // per_sample))):
        rows = index[part]
        c = resample_counts(pattern_idx[rows], n).astype(np.float64)  # (b, n)
        w = c[:, iu[0]] * c[:, iu[1]]  # (b, P): position pairs of distinct stimuli
        total = w.sum(-1)  # (b,)
        if transform is None:
            square = np.zeros((n_rdm, n, n))
            square[:, iu[0], iu[1]] = square[:, iu[1], iu[0]] = raw
            g = (square.reshape(-1, n) @ c.T).reshape(n_rdm, n, -1).transpose(2, 0, 1)  # (b, R, n)
            sums = w @ raw.T  # (b, R)
            squares = w @ (raw * raw).T
            cross = np.stack([(raw[:n_models] * raw[n_models + s]) @ w.T for s in range(len(brain_rdms))],
                             axis=-1).transpose(1, 0, 2)  # (b, L, S)
        else:
            v = np.concatenate([transform.resampled(model_rdms, c), transform.resampled(brain_rdms, c)], axis=1)
            square = np.zeros(v.shape[:2] + (n, n))
            square[..., iu[0], iu[1]] = square[..., iu[1], iu[0]] = v
            g = np.matmul(square, c[:, None, :, None])[..., 0]
            weighted = v * w[:, None, :]
            sums = weighted.sum(-1)
            squares = (weighted * v).sum(-1)
            cross = np.matmul(weighted[:, :n_models], v[:, n_models:].transpose(0, 2, 1))
        if method == "corr_cov":  # centre each RDM on its mean over the resample's pairs
            mean = sums / total[:, None]
            g -= mean[:, :, None] * (n - c)[:, None, :]
            cross -= total[:, None, None] * mean[:, :n_models, None] * mean[:, None, n_models:]
            squares -= total[:, None] * mean * mean
        normal = 0.5 * np.broadcast_to(c[:, None, :], (len(rows), n, n)).copy()
        normal[:, np.arange(n), np.arange(n)] += 1 + (n - 2 * c) / 2
        u = np.linalg.solve(normal, -0.5 * g.transpose(0, 2, 1)).transpose(0, 2, 1)  # (b, R, n)

        def inner(g_a, u_a, g_b, u_b, cross_ab, pairs):
            """Inner products of whitened vectors: pairs of (R_a, R_b) or elementwise."""
            dot = (lambda x, y: np.matmul(x, y.transpose(0, 2, 1))) if pairs else (lambda x, y: (x * y).sum(-1))
            cu_a, cu_b = (c[:, None, :] * u_a), (c[:, None, :] * u_b)
            sum_a, sum_b = cu_a.sum(-1), cu_b.sum(-1)
            outer = sum_a[:, :, None] * sum_b[:, None, :] if pairs else sum_a * sum_b
            pair_part = (cross_ab + dot(c[:, None, :] * g_a, u_b) + dot(cu_a, g_b)
                         + dot(cu_a * (n - 2 * c)[:, None, :], u_b) + outer) / 4
            return 2 * pair_part + dot(cu_a, u_b)

        g_m, g_b, u_m, u_b = g[:, :n_models], g[:, n_models:], u[:, :n_models], u[:, n_models:]
        num = inner(g_m, u_m, g_b, u_b, cross, True)
        norm_m = inner(g_m, u_m, g_m, u_m, squares[:, :n_models], False)
        norm_b = inner(g_b, u_b, g_b, u_b, squares[:, n_models:], False)
        out[rows] = reduce(num / np.sqrt(norm_m[:, :, None] * norm_b[:, None, :]), rows)
        if progress is not None:
            progress.update(len(rows))
    return out


def resample_rdms(vectors: np.ndarray, pattern_idx: np.ndarray, n: int) -> np.ndarray:
    """RDM vectors over the resampled stimuli, as rsatoolbox builds them: stimuli in
    sorted order, NaN where a stimulus meets a copy of itself. (R, n'(n'-1)/2)."""
    sel = np.sort(pattern_idx)
    idx = pair_index(n)[sel][:, sel]
    iu = np.triu_indices(len(sel), k=1)
    pos = idx[iu]
    v = np.atleast_2d(vectors)[:, np.maximum(pos, 0)]
    v[:, pos < 0] = np.nan
    return v


def _resampled_compare(model_rdms, brain_rdms, pattern_idx, n, method, transform=None):
    """One resample, for comparisons without a weighted form (tau-a, whitened); ``transform``
    (an RDMTransform) is applied to the resampled RDMs, their self-pairs left out."""
    a = resample_rdms(model_rdms, pattern_idx, n)
    b = resample_rdms(brain_rdms, pattern_idx, n)
    if transform is not None:
        a, b = transform(a), transform(b)
    if method == "tau-a":
        keep = np.isfinite(a[0])
        return tau_a(a[:, keep], b[:, keep])
    from rsatoolbox.rdm import compare as rsa_compare

    return rsa_compare(a, b, method=method)


def subject_resample_mean(per_subject: np.ndarray, rdm_idx: np.ndarray | None) -> np.ndarray:
    """Mean over subjects of ``per_subject``, with the subjects of each resample
    drawn by ``rdm_idx`` (B, S) and repeats counted.

    ``per_subject`` is (L, S) (the same scores in every resample) or (B, L, S)
    (one set per resample). Without ``rdm_idx`` it is the plain mean over S.
    """
    if rdm_idx is None:
        return per_subject.mean(-1)
    rdm_idx = np.atleast_2d(rdm_idx)
    counts = resample_counts(rdm_idx, per_subject.shape[-1])
    weights = counts / counts.sum(1, keepdims=True)
    if per_subject.ndim == 3:
        return np.einsum("bls,bs->bl", per_subject, weights)
    return np.einsum("ls,bs->bl", per_subject, weights)


def bootstrap_evaluations(model_rdms: np.ndarray, brain_rdms: np.ndarray, method: str, *,
                          pattern_idx: np.ndarray | None = None, rdm_idx: np.ndarray | None = None,
                          progress=None) -> np.ndarray:
    """Subject-mean comparison of each model RDM on bootstrap resamples: (B, L).

    With ``pattern_idx`` only, it equals rsatoolbox's ``eval_bootstrap_pattern``;
    with ``rdm_idx`` only, ``eval_bootstrap_rdm``; with both, ``eval_bootstrap``
    (given the same indices).
    """
    if pattern_idx is None and rdm_idx is None:
        raise ValueError("bootstrap_evaluations needs pattern_idx, rdm_idx or both")
    if pattern_idx is None:
        return subject_resample_mean(compare(model_rdms, brain_rdms, method), rdm_idx)
    per_subject = bootstrap_compare(model_rdms, brain_rdms, method, pattern_idx, progress=progress)
    return subject_resample_mean(per_subject, rdm_idx)


# ----------------------------------------------------------------- noise ceiling

def noise_ceiling(brain_rdms: np.ndarray, method: str = "spearman") -> tuple[float, float]:
    """Lower and upper noise-ceiling bounds across subjects, as rsatoolbox's
    ``boot_noise_ceiling`` defines them (leave-one-subject-out pooled RDM for the
    lower bound, the all-subject pooled RDM for the upper). ``brain_rdms`` (S, P)."""
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    if brain_rdms.shape[0] < 2:
        return np.nan, np.nan
    rdms = RDMs(np.asarray(brain_rdms, dtype=np.float64), dissimilarity_measure="brain")
    low, high = boot_noise_ceiling(rdms, method=comparison_name(method), rdm_descriptor="index")
    return float(low), float(high)


def subject_ceilings(brain_rdms: np.ndarray, method: str = "spearman") -> tuple[np.ndarray, np.ndarray]:
    """Per-subject terms of the noise ceiling across subjects: each subject's RDM compared with
    the mean of the other subjects' RDMs (lower) and of all subjects' (upper), after the
    comparison's own transform (ranks for Spearman, centring for Pearson), as rsatoolbox pools
    RDMs. ``brain_rdms`` (S, P) -> two (S,) arrays; NaN with fewer than 2 subjects. Their means
    are the leave-one-subject-out bounds; their spread gives the ceiling an interval."""
    method = comparison_name(method)
    vectors = np.asarray(brain_rdms, dtype=np.float64)
    n = vectors.shape[0]
    if n < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    embedded = embed(vectors, "spearman" if method == "tau-a" else method)
    total = embedded.sum(0)
    lower = np.array([compare(vectors[s][None], ((total - embedded[s]) / (n - 1))[None], method)[0, 0]
                      for s in range(n)])
    upper = compare(vectors, (total / n)[None], method)[:, 0]
    return lower, upper
