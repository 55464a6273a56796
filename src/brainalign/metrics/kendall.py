"""Kendall's tau-a of RDM vectors whose entries are repeated or relabelled, many times over.

A stimulus bootstrap repeats each dissimilarity ``c_i * c_j`` times (the counts of its two
stimuli) and a permutation relabels the entries; both leave the ordering of each RDM
vector fixed. So for one pair of vectors (``a``, ``b``) the order of ``a`` and the ranks of
``b`` are computed once, and every resample or permutation costs one pass over the entries
in the order of ``a`` with a Fenwick tree of weights over the ranks of ``b``:

    S = sum over entries e before f of w_e * w_f * sign(a_f - a_e) * sign(b_f - b_e)

(ties count zero, copies of one entry are tied in both), and tau-a = S / (m (m - 1) / 2)
with m = sum of the weights: the tau-a of the vectors with entry e repeated w_e times,
which is rsatoolbox's tau-a of the resampled RDMs (self-pairs left out). Entries of weight
zero are skipped, so a bootstrap resample costs about 40% of a pass. The loops are compiled
by numba (cached on disk after the first use) and run the resamples on all threads;
this module is imported only where tau-a is computed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy.stats import rankdata


@njit(cache=True, nogil=True)
def block(a_order, a_first, rank, weight, n_ranks, out):  # pragma: no cover - compiled
    """Samples sharing the ranks of b, their weights (entry, sample) side by side: the
    Fenwick tree holds a vector per node, so the loops run over samples in SIMD."""
    n_entries, width = weight.shape
    # integer sums are exact; the tree's entries are at most m = sum of weights (int32)
    tree = np.zeros((n_ranks + 1, width), dtype=np.int32)
    at = np.zeros((n_ranks + 1, width), dtype=np.int32)
    inserted = np.zeros(width, dtype=np.int32)
    total = np.zeros(width, dtype=np.int64)
    below = np.zeros(width, dtype=np.int32)
    i = 0
    while i < n_entries:
        j = i + 1
        while j < n_entries and not a_first[j]:
            j += 1
        for t in range(i, j):
            e = a_order[t]
            r = rank[e]
            below[:] = 0
            q = r - 1
            while q > 0:
                for k in range(width):
                    below[k] += tree[q, k]
                q -= q & -q
            for k in range(width):
                total[k] += np.int64(weight[e, k]) * (2 * below[k] + at[r, k] - inserted[k])
        for t in range(i, j):
            e = a_order[t]
            q = rank[e]
            for k in range(width):
                at[q, k] += weight[e, k]
                inserted[k] += weight[e, k]
            while q <= n_ranks:
                for k in range(width):
                    tree[q, k] += weight[e, k]
                q += q & -q
        i = j
    out[:] = total

@njit(cache=True, nogil=True)
def _unit(a_order, a_first, b_ranks, blocks, n_w, n_ranks, u, out):  # pragma: no cover - compiled
    """One unit of :func:`concordance`'s work into ``out``: in a bootstrap (one b, many weights)
    the SIMD block ``u`` of samples side by side; otherwise sample ``u`` alone."""
    n_b = b_ranks.shape[0]
    n_samples = n_b if n_b > n_w else n_w
    uu = np.int64(u)  # a parfor index may be unsigned: mixing it with ints gives floats
    if n_b == 1 and n_w > 1:
        width = blocks.shape[2]
        lo = uu * width
        part = np.zeros(width)
        block(a_order, a_first, b_ranks[0], blocks[uu], n_ranks, part)
        for k in range(min(width, n_samples - lo)):
            out[lo + k] = part[k]
        return
    kb = uu if n_b > 1 else np.int64(0)
    kw = uu if n_w > 1 else np.int64(0)
    size = np.int64(blocks.shape[2])
    part = np.zeros(1)
    block(a_order, a_first, b_ranks[kb], blocks[kw // size, :, kw % size:kw % size + 1], n_ranks, part)
    out[uu] = part[0]


@njit(cache=True, nogil=True)
def _n_units(b_ranks, blocks, n_w):  # pragma: no cover - compiled
    n_b = b_ranks.shape[0]
    return blocks.shape[0] if n_b == 1 and n_w > 1 else max(n_b, n_w)


@njit(cache=True, parallel=True, nogil=True)
def concordance(a_order, a_first, b_ranks, blocks, n_w, n_ranks):  # pragma: no cover - compiled
    """S of every sample, (K,), the units of work on numba's threads."""
    out = np.zeros(max(b_ranks.shape[0], n_w))
    for u in prange(_n_units(b_ranks, blocks, n_w)):
        _unit(a_order, a_first, b_ranks, blocks, n_w, n_ranks, u, out)
    return out


@njit(cache=True, nogil=True)
def concordance_serial(a_order, a_first, b_ranks, blocks, n_w, n_ranks):  # pragma: no cover - compiled
    """:func:`concordance` on the calling thread alone (for a pool over pairs of vectors)."""
    out = np.zeros(max(b_ranks.shape[0], n_w))
    for u in range(_n_units(b_ranks, blocks, n_w)):
        _unit(a_order, a_first, b_ranks, blocks, n_w, n_ranks, u, out)
    return out


def _use_pinned_threads() -> None:
    """numba's pool follows the thread count a workflow job pins (brainalign.threads); the
    result does not depend on it (each sample is summed by one thread)."""
    from ..threads import pinned_threads

    n = pinned_threads()
    if n:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def order_of(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stable sort order of ``vector`` and, along it, where a new value starts."""
    order = np.argsort(vector, kind="stable")
    values = vector[order]
    first = np.ones(len(vector), dtype=np.bool_)
    first[1:] = values[1:] != values[:-1]
    return order.astype(np.int64), first


def dense_ranks(vector: np.ndarray) -> np.ndarray:
    """1-based dense ranks of ``vector`` (equal values share a rank), as int64."""
    return rankdata(vector, method="dense").astype(np.int64)


class Weights:
    """Entry weights of K samples, (K, P) non-negative integers, laid out once for the compiled
    loops (blocks of ``WIDTH`` samples side by side, int32) with their sums; reuse it for
    every pair of vectors."""

    WIDTH = 16

    def __init__(self, weights: np.ndarray):
        weights = np.atleast_2d(np.asarray(weights))
        if weights.size and (weights.min() < 0 or not np.array_equal(weights, np.round(weights))):
            raise ValueError("tau-a weights must be non-negative integers (entry repeats)")
        k, p = weights.shape
        n_blocks = -(-k // self.WIDTH)
        padded = np.zeros((n_blocks * self.WIDTH, p), dtype=np.int32)
        padded[:k] = weights
        self.blocks = np.ascontiguousarray(padded.reshape(n_blocks, self.WIDTH, p).transpose(0, 2, 1))
        self.n = k
        self.sums = weights.sum(1, dtype=np.float64)


def weighted_tau_a(a: np.ndarray | None, b_ranks: np.ndarray, weights=None,
                   a_sorted: tuple[np.ndarray, np.ndarray] | None = None, serial: bool = False) -> np.ndarray:
    """Kendall's tau-a of vector ``a`` (P,) with ``b`` given by its dense ranks, once per sample.

    ``b_ranks`` is (P,) or (K, P) (one relabelling of ``b`` per sample, for permutations);
    ``weights`` is None (every entry once), a (P,) or (K, P) array of non-negative integers
    (entry repeats, for bootstrap resamples) or a :class:`Weights`. Returns (K,) (K = 1 when
    nothing varies). A sample with fewer than two weighted entries gives NaN. ``a_sorted`` is
    :func:`order_of` of ``a`` when the caller already has it. ``serial`` runs the samples on the
    calling thread (:func:`tau_a_grid` threads over pairs of vectors instead).
    """
    a_order, a_first = a_sorted if a_sorted is not None else order_of(np.asarray(a, dtype=np.float64))
    b_ranks = np.ascontiguousarray(np.atleast_2d(b_ranks), dtype=np.int64)
    if weights is None:
        weights = Weights(np.ones((1, b_ranks.shape[1]), dtype=np.int32))
    elif not isinstance(weights, Weights):
        weights = Weights(weights)
    if not serial:
        _use_pinned_threads()
    s = (concordance_serial if serial else concordance)(a_order, a_first, b_ranks, weights.blocks, weights.n,
                                                        int(b_ranks.max()) if b_ranks.size else 0)
    m = np.broadcast_to(weights.sums, s.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = s / (m * (m - 1) / 2)
    tau[m < 2] = np.nan
    return tau


def tau_a_grid(sorted_a: list, b_ranks: list, weights=None) -> np.ndarray:
    """tau-a of every vector of ``sorted_a`` (:func:`order_of` of each) with every one of
    ``b_ranks`` (each (P,) or (K, P), as :func:`weighted_tau_a`), once per sample: (K, A, B).

    With at least two pairs per thread, the pairs go to a pool of threads
    (:func:`brainalign.metrics.backend.pool_map`), each pair on one thread with its samples in
    turn: a thread that a busy core slows takes fewer pairs, where splitting every pair's
    samples evenly made the other thread wait for it at the end of each pair (1.97x slower
    beside one busy process, 1.42x on the pool; ``benchmarks/contention.py``). The result does
    not depend on the split.
    """
    from .backend import pool_map, pools

    _use_pinned_threads()
    pairs = [(i, j) for i in range(len(sorted_a)) for j in range(len(b_ranks))]
    serial = pools(len(pairs))  # on the pool: each pair's samples on its own thread
    columns = pool_map(lambda ij: weighted_tau_a(None, b_ranks[ij[1]], weights, a_sorted=sorted_a[ij[0]],
                                                 serial=serial), pairs)
    out = np.stack(columns, axis=-1) if columns else np.empty((0, 0))
    return out.reshape(len(out), len(sorted_a), len(b_ranks))
