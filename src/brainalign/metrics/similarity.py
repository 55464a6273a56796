"""Representational-similarity measures between sets of representations.

Arrays in, arrays out: every ``xs``/``ys`` is a sequence of ``(n_stimulus, n_unit)``
arrays that share their stimuli (rows) but may differ in width, and every
``pairwise``-style function returns an ``(A, B)`` matrix comparing each ``x`` with
each ``y``. The heavy linear algebra runs in torch, in float64 unless told
otherwise, on the GPU when ``device="auto"`` and one is available.

Measures (``pairwise(measure, xs, ys, **settings)``):

``linear_cka``          Kornblith et al. 2019, linear kernel. Computed in feature space
                        (``X'Y``) when there are more stimuli than units, else from Grams.
``rbf_cka``             Kornblith et al. 2019, Gaussian kernel with
                        ``sigma = sigma_factor * median pairwise distance`` (pairs i<j).
``debiased_cka``        linear CKA from Song et al.'s (2012) unbiased HSIC estimator in
                        numerator and denominator (Nguyen et al. 2021; Kornblith et al.
                        2019, appendix).
``procrustes``          orthogonal-Procrustes *similarity*: the nuclear norm ``||X'Y||_*``
                        of centred, unit-Frobenius-norm X and Y, in [0, 1].
``angular_procrustes``  Williams et al. 2021 angular shape metric ``arccos ||X'Y||_*``,
                        a *distance* in [0, pi/2].
``mutual_knn``          Huh et al. 2024 mutual k-nearest-neighbour alignment.
``rsa``                 rank correlation of correlation-distance RDMs
                        (:mod:`brainalign.metrics.rsa`), optionally after a geo-topological
                        ``rdm_transform`` (:mod:`brainalign.metrics.rdm_transforms`).

All are "higher = more similar" except ``angular_procrustes``; see
:data:`HIGHER_IS_BETTER`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from brainalign.metrics import rsa as _rsa
from brainalign.metrics.rdm_transforms import RDMTransform
from brainalign.metrics.backend import (as_tensor, numpy_dtype, one_thread_if_small, resolve_device,
                                       resolve_dtype)

@dataclass(frozen=True)
class Measure:
    """One model x model (or dataset x dataset) similarity measure: its axis label, its
    direction, and the settings it uses (besides ``dtype`` and ``device``)."""

    name: str
    label: str
    higher_is_better: bool = True
    settings: frozenset = frozenset()


_COMMON_SETTINGS = frozenset({"dtype", "device"})

#: The measures :func:`pairwise` knows, in display order. Everything is a similarity except
#: ``angular_procrustes``, the Williams et al. angular *distance* (0 = identical up to rotation,
#: translation and scale). ``pairwise("procrustes", ...)`` returns the nuclear-norm similarity;
#: :func:`procrustes_distance` gives the distance.
MEASURE_TABLE = {m.name: m for m in (
    Measure("linear_cka", "linear CKA"),
    Measure("rbf_cka", "RBF CKA", settings=frozenset({"sigma_factor"})),
    Measure("debiased_cka", "debiased CKA"),
    Measure("procrustes", "Procrustes similarity (nuclear norm)"),
    Measure("angular_procrustes", "angular Procrustes distance (rad)", higher_is_better=False),
    Measure("mutual_knn", "mutual k-NN alignment", settings=frozenset({"k"})),
    Measure("rsa", "RSA (Spearman rho)", settings=frozenset({"comparison", "rdm_transform"})),
)}
MEASURES = tuple(MEASURE_TABLE)
HIGHER_IS_BETTER = {name: m.higher_is_better for name, m in MEASURE_TABLE.items()}
#: The settings each measure uses. :func:`pairwise` accepts the union for every measure
#: (one shared settings dict can serve all measures) and ignores the ones a measure
#: does not use; any other key is an error.
SETTINGS = {name: set(_COMMON_SETTINGS | m.settings) for name, m in MEASURE_TABLE.items()}
MEASURE_LABELS = {name: m.label for name, m in MEASURE_TABLE.items()}


# --------------------------------------------------------------------------- helpers

def _like(x, ref: torch.Tensor) -> torch.Tensor:
    """``x`` (array or tensor) as a tensor with ``ref``'s dtype and device."""
    if isinstance(x, torch.Tensor):
        return x.to(device=ref.device, dtype=ref.dtype)
    return torch.as_tensor(np.asarray(x), dtype=ref.dtype, device=ref.device)


def _float_tensor(x) -> torch.Tensor:
    """Tensors pass through; anything else becomes a float64 CPU tensor."""
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.double()
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _as_list(xs) -> list:
    """A sequence of 2-D arrays; a single 2-D array or tensor counts as a list of one,
    a 3-D one as a stack."""
    if isinstance(xs, (np.ndarray, torch.Tensor)):
        if xs.ndim == 2:
            return [xs]
        if xs.ndim == 3:
            return list(xs)
        raise ValueError(f"expected a 2-D array, a 3-D stack or a list of 2-D arrays, got shape {tuple(xs.shape)}")
    out = list(xs)
    for i, x in enumerate(out):
        if np.ndim(x) != 2:
            raise ValueError(f"representation {i} must be 2-D (stimulus x unit), got shape {np.shape(x)}")
    if not out:
        raise ValueError("empty list of representations")
    return out


def _sample_batch(xs) -> tuple:
    """(S,) when ``xs`` is a list of (S, n, d) samples of rows (:func:`subsample_pairwise`),
    else ()."""
    return tuple(np.shape(xs[0])[:-2]) if isinstance(xs, list) and np.ndim(xs[0]) == 3 else ()


def _n_stimuli(xs: Sequence, ys: Sequence) -> int:
    ns = {np.shape(x)[0] for x in xs} | {np.shape(y)[0] for y in ys}
    if len(ns) != 1:
        raise ValueError(f"all representations must have the same stimuli (rows); got row counts {sorted(ns)}")
    return ns.pop()


def _centred(x, dtype, device) -> torch.Tensor:
    """Column-centred copy of a 2-D ``x`` (the mean as a BLAS mat-vec: torch's column
    reduction is several times slower on CPU)."""
    t = as_tensor(x, dtype, device)
    if t.ndim != 2:
        return t - t.mean(-2, keepdim=True)
    return t - (t.new_ones(t.shape[0]) @ t).div_(t.shape[0])


# --------------------------------------------------------------------------- kernels and HSIC

def _median_pairwise_distance(d2: torch.Tensor) -> torch.Tensor:
    """Median over pairs i<j of sqrt(d2[..., i, j]) for symmetric squared-distance
    matrices with an exactly zero diagonal, without materialising the pair list.

    The flattened n x n matrix holds the n diagonal zeros (the smallest entries)
    and every pair twice, so the pair median -- the mean of pair ranks m/2 and
    m/2 + 1 for even m = n(n-1)/2, rank (m+1)/2 for odd m -- is the mean of the
    flattened order statistics n + m and n + m + 1 (1-based).
    """
    n = d2.shape[-1]
    m = n * (n - 1) // 2
    flat = d2.flatten(-2)
    lo = torch.kthvalue(flat, n + m, dim=-1).values
    hi = torch.kthvalue(flat, n + m + 1, dim=-1).values
    return 0.5 * (lo.sqrt() + hi.sqrt())


def gram(x, kernel="linear", sigma_factor=1.0, dtype=torch.float64, device="auto") -> torch.Tensor:
    """Uncentred Gram matrices: ``x`` (..., n, d) -> (..., n, n).

    ``kernel="linear"``: ``x x'``. ``kernel="rbf"``: ``exp(-||xi - xj||^2 / (2 sigma^2))``
    with ``sigma = sigma_factor * median_{i<j} ||xi - xj||`` computed separately for
    each matrix in the batch (the median heuristic of Kornblith et al. 2019; note that
    their reference code takes the median of *squared* distances over all n^2 entries,
    diagonal included, which gives a slightly different bandwidth).
    """
    t = as_tensor(x, dtype, device)
    if t.ndim < 2:
        raise ValueError(f"x must be (..., n, d), got shape {tuple(t.shape)}")
    if kernel == "linear":
        return t @ t.mT
    if kernel != "rbf":
        raise ValueError(f"unknown kernel '{kernel}' (known: linear, rbf)")
    if t.shape[-2] < 2:
        raise ValueError("the rbf kernel needs at least 2 stimuli")
    t = t - t.mean(-2, keepdim=True)  # distances are translation-invariant; this keeps them accurate
    g = t @ t.mT
    sq = torch.diagonal(g, dim1=-2, dim2=-1).clone()
    d2 = g.mul_(-2.0).add_(sq[..., :, None]).add_(sq[..., None, :]).clamp_min_(0.0)
    torch.diagonal(d2, dim1=-2, dim2=-1).zero_()
    sigma = sigma_factor * _median_pairwise_distance(d2)
    if not bool(torch.all(sigma > 0)):
        raise ValueError("rbf bandwidth is zero: the median pairwise distance is 0 "
                         "(more than half of the stimulus pairs have identical patterns) or sigma_factor <= 0")
    return d2.div_((-2.0 * sigma**2)[..., None, None]).exp_()


def center_gram(k) -> torch.Tensor:
    """Double-centred Gram ``H K H`` with ``H = I - 11'/n``; ``k`` (..., n, n), symmetric."""
    k = _float_tensor(k)
    return k - k.mean(-1, keepdim=True) - k.mean(-2, keepdim=True) + k.mean((-2, -1), keepdim=True)


def _batched(k: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if k.ndim == 2:
        return k[None], True
    if k.ndim != 3 or k.shape[-1] != k.shape[-2]:
        raise ValueError(f"expected Gram matrices (A, n, n) or (n, n), got shape {tuple(k.shape)}")
    return k, False


def _unbiased_parts(k: torch.Tensor):
    """Sufficient statistics of Song's estimator for Gram matrices ``k`` (A, n, n):
    flattened Grams, diagonals, row sums and grand sums of K with its diagonal zeroed."""
    diag = torch.diagonal(k, dim1=-2, dim2=-1)
    rows = k.sum(-1) - diag
    return k.reshape(*k.shape[:-2], -1), diag, rows, rows.sum(-1)


def _unbiased_combine(pk, pl, n: int, cross: bool) -> torch.Tensor:
    """Song et al. 2012, eq. 5 (K~, L~: diagonals zeroed):
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)).
    ``cross``: all (A, B) pairs (within each batch of leading dims); else elementwise (A == B)."""
    kf, kd, ks, kt = pk
    lf, ld, ls, lt = pl
    if cross:
        tr = kf @ lf.mT - kd @ ld.mT
        sums = kt[..., :, None] * lt[..., None, :]
        mixed = ks @ ls.mT
    else:
        tr = torch.einsum("...i,...i->...", kf, lf) - torch.einsum("...i,...i->...", kd, ld)
        sums = kt * lt
        mixed = torch.einsum("...i,...i->...", ks, ls)
    return (tr + sums / ((n - 1) * (n - 2)) - 2.0 * mixed / (n - 2)) / (n * (n - 3))


def hsic_unbiased(k, l) -> torch.Tensor:
    """Unbiased HSIC (Song et al. 2012) between every Gram in ``k`` (A, n, n) and every
    Gram in ``l`` (B, n, n) -> (A, B). Grams are uncentred (the estimator is invariant
    to centring; they are centred internally for accuracy). Needs n >= 4. Single
    (n, n) Grams are accepted and their axis dropped from the result."""
    k, sk = _batched(_float_tensor(k))
    l, sl = _batched(_like(l, k))
    n = k.shape[-1]
    if l.shape[-1] != n:
        raise ValueError(f"Gram sizes differ: {n} vs {l.shape[-1]}")
    if n < 4:
        raise ValueError(f"the unbiased HSIC estimator needs n >= 4 stimuli, got {n}")
    out = _unbiased_combine(_unbiased_parts(center_gram(k)), _unbiased_parts(center_gram(l)), n, cross=True)
    if sk:
        out = out[0]
    if sl:
        out = out[..., 0]
    return out


def cka_matrix(k, l, debiased=False) -> np.ndarray:
    """CKA between every uncentred Gram in ``k`` (A, n, n) and in ``l`` (B, n, n) -> (A, B);
    with leading batch dims, ``k`` (..., A, n, n) and ``l`` (..., B, n, n) -> (..., A, B), the
    pairs taken within each batch (for example one subsample of stimuli per batch).

    ``debiased=False``: <HKH, HLH>_F / (||HKH||_F ||HLH||_F) (Kornblith et al. 2019).
    ``debiased=True``: HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L)) with Song's unbiased
    estimator (Nguyen et al. 2021; Kornblith et al. 2019, appendix); can be slightly
    negative, and is NaN if a self-HSIC estimate is not positive.
    """
    k = _float_tensor(k)
    k = k[None] if k.ndim == 2 else k
    l = _like(l, k)
    l = l[None] if l.ndim == 2 else l
    if k.shape[-1] != k.shape[-2] or l.shape[-1] != l.shape[-2] or k.ndim != l.ndim:
        raise ValueError(f"expected Gram matrices (..., A, n, n) and (..., B, n, n), got shapes "
                         f"{tuple(k.shape)} and {tuple(l.shape)}")
    if k.shape[-1] != l.shape[-1]:
        raise ValueError(f"Gram sizes differ: {k.shape[-1]} vs {l.shape[-1]}")
    kc, lc = center_gram(k), center_gram(l)
    n = k.shape[-1]
    if debiased:
        if n < 4:
            raise ValueError(f"debiased CKA needs n >= 4 stimuli, got {n}")
        pk, pl = _unbiased_parts(kc), _unbiased_parts(lc)
        num = _unbiased_combine(pk, pl, n, cross=True)
        kk = _unbiased_combine(pk, pk, n, cross=False)
        ll = _unbiased_combine(pl, pl, n, cross=False)
    else:
        kf, lf = kc.reshape(*kc.shape[:-2], -1), lc.reshape(*lc.shape[:-2], -1)
        num = kf @ lf.mT
        kk = torch.linalg.vector_norm(kf, dim=-1) ** 2
        ll = torch.linalg.vector_norm(lf, dim=-1) ** 2
    return (num / torch.sqrt(kk[..., :, None] * ll[..., None, :])).double().cpu().numpy()


def _cka_from_feature_stats(xty_sq, x_stats, y_stats, n: int, debiased: bool):
    """Feature-space linear CKA of centred X, Y from ||X'Y||_F^2 (A, B) and per-matrix
    statistics (||X'X||_F^2, squared row norms, ||X||_F^2), for numpy or torch. For
    K = XX' with centred X, Song's estimator reduces to [||X'Y||^2 - n/(n-2) <kd, ld>
    + ||X||^2 ||Y||^2 / ((n-1)(n-2))] / (n(n-3)), kd the squared row norms
    (Kornblith et al. 2019)."""
    xx, xd, xn = x_stats
    yy, yd, yn = y_stats
    if not debiased:
        return xty_sq / (xx[:, None] * yy[None, :]) ** 0.5

    def unbiased(cross_sq, dot_d, norm_prod):
        return (cross_sq - n / (n - 2) * dot_d + norm_prod / ((n - 1) * (n - 2))) / (n * (n - 3))

    num = unbiased(xty_sq, xd @ yd.T, xn[:, None] * yn[None, :])
    kk = unbiased(xx, (xd * xd).sum(-1), xn * xn)
    ll = unbiased(yy, (yd * yd).sum(-1), yn * yn)
    return num / (kk[:, None] * ll[None, :]) ** 0.5


def _features_torch(xs, ys, dtype, device, n, debiased) -> np.ndarray:
    def stats(t):
        rows = torch.einsum("ij,ij->i", t, t)
        return torch.linalg.matrix_norm(t.mT @ t)[None] ** 2, rows[None], rows.sum()[None]

    yts = [_centred(v, dtype, device) for v in ys]
    ystats = [stats(t) for t in yts]
    y_stats = tuple(torch.cat([s[i] for s in ystats]) for i in range(3))
    ycat = torch.cat(yts, dim=1) if len(yts) > 1 else yts[0]
    bounds = np.cumsum([0] + [t.shape[1] for t in yts])
    out = np.empty((len(xs), len(ys)))
    for a, v in enumerate(xs):
        t = _centred(v, dtype, device)
        cross = t.mT @ ycat
        sq = torch.stack([torch.linalg.matrix_norm(cross[:, bounds[b]:bounds[b + 1]]) ** 2
                          for b in range(len(ys))])[None]
        out[a] = _cka_from_feature_stats(sq, stats(t), y_stats, n, debiased)[0].double().cpu().numpy()
        del t, cross
    return out


def _features_numpy(xs, ys, dtype, n, debiased) -> np.ndarray:
    np_dtype = numpy_dtype(dtype)

    def centred(v):
        v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        v = v.astype(np_dtype, copy=False)
        return v - v.mean(0)

    def stats(m):  # numpy runs m.T @ m as BLAS syrk: half the FLOPs of a general product
        rows = np.einsum("ij,ij->i", m, m)
        return np.linalg.norm(m.T @ m)[None] ** 2, rows[None], rows.sum()[None]

    yms = [centred(v) for v in ys]
    ystats = [stats(m) for m in yms]
    y_stats = tuple(np.concatenate([s[i] for s in ystats]) for i in range(3))
    ycat = np.concatenate(yms, axis=1) if len(yms) > 1 else yms[0]
    bounds = np.cumsum([0] + [m.shape[1] for m in yms])
    out = np.empty((len(xs), len(ys)))
    for a, v in enumerate(xs):
        m = centred(v)
        cross = m.T @ ycat
        sq = np.array([np.linalg.norm(cross[:, bounds[b]:bounds[b + 1]]) ** 2 for b in range(len(ys))])[None]
        out[a] = _cka_from_feature_stats(sq, stats(m), y_stats, n, debiased)[0]
        del m, cross
    return out


def linear_cka_features(x, y, dtype=torch.float64, device="auto", debiased=False):
    """Linear CKA in feature space: ``||X'Y||_F^2 / (||X'X||_F ||Y'Y||_F)`` of column-centred
    X, Y (three d x n x d products; never forms the n x n Grams), or Song's unbiased
    version with ``debiased=True``. The cheap path when n exceeds the widths.

    On a GPU this runs in torch. On the CPU it runs in numpy, whose BLAS computes the
    self products X'X and Y'Y with syrk (one triangle, half the work), which torch
    cannot; that makes it about 1.5x faster than the same three products in torch.

    ``x``, ``y``: single (n, d) arrays -> float; sequences of (n, d_a) / (n, d_b)
    arrays -> (A, B) ndarray.
    """
    single = all(isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 2 for v in (x, y))
    xs, ys = _as_list(x), _as_list(y)
    n = _n_stimuli(xs, ys)
    if debiased and n < 4:
        raise ValueError(f"debiased CKA needs n >= 4 stimuli, got {n}")
    dtype, device = resolve_dtype(dtype), resolve_device(device)
    if device.type == "cpu":
        out = _features_numpy(xs, ys, dtype, n, debiased)
    else:
        out = _features_torch(xs, ys, dtype, device, n, debiased)
    return float(out[0, 0]) if single else out


def minibatch_cka(x, y, batch_size, kernel="linear", sigma_factor=1.0, seed=0) -> float:
    """Minibatch CKA (Nguyen et al. 2021) for one pair of representations.

    Stimuli are shuffled with ``np.random.default_rng(seed).permutation(n)`` and split
    into consecutive batches of ``batch_size`` (a last batch smaller than 4 is dropped);
    CKA = mean_b HSIC_u(K_b, L_b) / sqrt(mean_b HSIC_u(K_b, K_b) mean_b HSIC_u(L_b, L_b)).
    Only one batch's Grams exist at a time. With ``kernel="rbf"`` the bandwidth is the
    median heuristic within each batch. float64, on the default device.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (n, d) arrays with the same n, got {x.shape} and {y.shape}")
    if batch_size < 4:
        raise ValueError(f"batch_size must be >= 4 for the unbiased HSIC estimator, got {batch_size}")
    n = x.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    batches = [perm[s:s + batch_size] for s in range(0, n, batch_size)]
    batches = [b for b in batches if len(b) >= 4]
    if not batches:
        raise ValueError(f"no batch of at least 4 stimuli (n={n})")
    xy = xx = yy = 0.0
    for idx in batches:
        xb, yb = x[idx], y[idx]
        if kernel == "linear":  # centring is free for CKA and keeps the Gram accurate
            xb, yb = xb - xb.mean(0), yb - yb.mean(0)
        kb = center_gram(gram(xb, kernel, sigma_factor))[None]
        lb = center_gram(gram(yb, kernel, sigma_factor))[None]
        m = len(idx)
        pk, pl = _unbiased_parts(kb), _unbiased_parts(lb)
        xy += float(_unbiased_combine(pk, pl, m, cross=False)[0])
        xx += float(_unbiased_combine(pk, pk, m, cross=False)[0])
        yy += float(_unbiased_combine(pl, pl, m, cross=False)[0])
        del kb, lb, pk, pl
    nb = len(batches)
    return float((xy / nb) / np.sqrt((xx / nb) * (yy / nb)))


# --------------------------------------------------------------------------- Procrustes

def _procrustes_factors(xs: Sequence, dtype, device) -> list[torch.Tensor]:
    """For each X (centred, unit Frobenius norm) a factor P with X'Y and P_x'P_y sharing
    singular values: X itself when d <= n, else R' from the QR decomposition X' = QR
    (n x n; X = R'Q' with orthonormal Q). QRs of same-shape arrays run batched."""
    out: list = [None] * len(xs)
    groups: dict = {}
    for i, x in enumerate(xs):
        groups.setdefault(tuple(np.shape(x)), []).append(i)
    for shape, idx in groups.items():
        n, d = shape[-2:]  # leading dims: samples of rows (:func:`subsample_pairwise`)
        t = torch.stack([as_tensor(xs[i], dtype, device) for i in idx])
        t = t - t.mean(-2, keepdim=True)
        t = t / torch.linalg.matrix_norm(t)[..., None, None]
        if d > n:
            t = torch.linalg.qr(t.mT, mode="r").R.mT
        for j, i in enumerate(idx):
            out[i] = t[j]
    return out


def _procrustes(xs, ys, dtype, device, distance: bool) -> np.ndarray:
    """Nuclear norms ``||X'Y||_*`` (``distance=False``) or Procrustes distances (A, B); with
    (S, n, d) samples of rows as ``xs`` and ``ys`` (:func:`subsample_pairwise`), (A, B, S)."""
    batch = _sample_batch(xs)
    if not batch:
        xs, ys = _as_list(xs), _as_list(ys)
        _n_stimuli(xs, ys)
    dtype = resolve_dtype(dtype)
    px = _procrustes_factors(xs, dtype, device)
    py = _procrustes_factors(ys, dtype, device)
    ygroups: dict = {}
    for b, p in enumerate(py):
        ygroups.setdefault(tuple(p.shape), []).append(b)
    ystacks = [(idx, torch.stack([py[b] for b in idx])) for idx in ygroups.values()]
    out = np.empty((len(xs), len(ys)) + batch)
    for a, p in enumerate(px):
        for idx, stack in ystacks:
            cross = p.mT @ stack  # (G, [S,] r_x, r_y)
            if not distance:
                val = torch.linalg.svdvals(cross).sum(-1)
            else:
                # ||X R - Y||_F at the optimal rotation R = U V' (the narrower side padded with
                # zero columns), computed as a residual: sqrt(2 - 2||X'Y||_*) loses half the
                # digits near 0 (a 1e-16 error in the norm becomes 1e-8 in the distance).
                u, _, vh = torch.linalg.svd(cross, full_matrices=False)
                rot = u @ vh
                if p.shape[-1] <= stack.shape[-1]:
                    resid = p @ rot - stack
                else:
                    resid = p - stack @ rot.mT
                val = torch.linalg.matrix_norm(resid)
            out[a, idx] = val.double().cpu().numpy()
    return out


def procrustes_similarity(xs, ys, *, dtype=None, device="auto") -> np.ndarray:
    """Nuclear norm ``||X'Y||_*`` (sum of singular values) of every centred,
    unit-Frobenius-norm X in ``xs`` and Y in ``ys`` -> (A, B) in [0, 1]; 1 iff Y is a
    rotated, scaled and translated copy of X. Widths may differ.

    Equal to ``trace sqrt(Kx^{1/2} Ky Kx^{1/2})`` with Kx = XX', but computed as the
    singular values of ``Px'Py`` where a wide X (d > n) is first reduced to its n x n
    triangular factor (X = R'Q', Q orthonormal): the work per pair is at most n x n,
    QRs of same-shape arrays are batched, and unlike square roots of eigenvalues of
    ``Kx^{1/2} Ky Kx^{1/2}`` (errors ~sqrt(eps) per null eigenvalue) it stays accurate
    for rank-deficient X.
    """
    return _procrustes(xs, ys, dtype, device, distance=False)


def procrustes_distance(xs, ys, *, dtype=None, device="auto") -> np.ndarray:
    """Orthogonal Procrustes distance ``sqrt(max(2 - 2 ||X'Y||_*, 0))`` (A, B): the
    smallest Frobenius distance between a rotation of X and Y (both centred and
    scaled to unit norm; the narrower one padded with zero columns). Computed as the
    norm of the residual at the optimal rotation, so it is accurate to ~1e-15 near 0."""
    return _procrustes(xs, ys, dtype, device, distance=True)


def angular_procrustes(xs, ys, *, dtype=None, device="auto") -> np.ndarray:
    """Angular shape distance ``arccos(||X'Y||_*)`` (Williams et al. 2021), a metric, (A, B)
    in [0, pi/2]. Evaluated as ``2 arcsin(d / 2)`` from the Procrustes distance d, which
    is the same angle without arccos's loss of precision near 0."""
    d = procrustes_distance(xs, ys, dtype=dtype, device=device)
    return 2.0 * np.arcsin(np.clip(d / 2.0, 0.0, 1.0))


# --------------------------------------------------------------------------- mutual k-NN

def _knn_indices(x, k: int, dtype, device, max_block: int = 2**24) -> torch.Tensor:
    """Indices (n, k) of each row's k nearest neighbours by cosine similarity
    (L2-normalised rows, inner product), itself excluded; rows in blocks so that at
    most ``max_block`` similarities exist at a time. ``x`` (S, n, d), samples of rows,
    gives (S, n, k)."""
    t = torch.nn.functional.normalize(as_tensor(x, dtype, device), dim=-1)
    if t.ndim == 3:  # samples of rows: one batched product per block of samples
        step = max(1, max_block // (t.shape[1] ** 2))
        return torch.cat([_knn_within(t[s:s + step], k) for s in range(0, len(t), step)])
    n = t.shape[0]
    step = max(1, max_block // n)
    out = torch.empty((n, k), dtype=torch.long, device=t.device)
    for s in range(0, n, step):
        e = min(n, s + step)
        sim = t[s:e] @ t.T
        rows = torch.arange(e - s, device=t.device)
        sim[rows, rows + s] = -torch.inf
        out[s:e] = torch.topk(sim, k, dim=-1).indices
    return out


def _knn_within(t: torch.Tensor, k: int) -> torch.Tensor:
    """k nearest neighbours (S, n, k) within each sample of normalised rows ``t`` (S, n, d)."""
    sim = t @ t.mT
    sim.diagonal(dim1=-2, dim2=-1).fill_(-torch.inf)
    return torch.topk(sim, k, dim=-1).indices


def mutual_knn(xs, ys, k=10, *, dtype=None, device="auto") -> np.ndarray:
    """Mutual k-nearest-neighbour alignment (Huh et al. 2024): rows L2-normalised,
    neighbours by inner product excluding self; score = mean_i |N_X(i) & N_Y(i)| / k,
    (A, B) in [0, 1]. Independent representations score about k / (n - 1).
    Ties are broken by ``torch.topk``."""
    batch = _sample_batch(xs)
    if not batch:  # else (S, n, d) samples of rows (:func:`subsample_pairwise`): (A, B, S)
        xs, ys = _as_list(xs), _as_list(ys)
        _n_stimuli(xs, ys)
    n = np.shape(xs[0])[-2]
    k = int(k)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    dtype = resolve_dtype(dtype)
    ny = torch.stack([_knn_indices(y, k, dtype, device) for y in ys])  # (B, [S,] n, k)
    out = np.empty((len(xs), len(ys)) + batch)
    for a, x in enumerate(xs):
        nx = _knn_indices(x, k, dtype, device).sort(-1).values.expand(ny.shape).contiguous()
        pos = torch.searchsorted(nx, ny).clamp_max_(k - 1)
        hits = (nx.gather(-1, pos) == ny).sum((-2, -1))
        out[a] = hits.double().cpu().numpy() / (n * k)
    return out


# --------------------------------------------------------------------------- RSA

def rsa_similarity(xs, ys, comparison="spearman", rdm_transform=None) -> np.ndarray:
    """RSA: correlation-distance RDMs of each representation compared with
    :func:`brainalign.metrics.rsa.compare` ("spearman" or "tau-a") -> (A, B).

    ``rdm_transform`` (``{kind, lower, upper}``, see :mod:`brainalign.metrics.rdm_transforms`)
    transforms every RDM first (topological RSA)."""
    transform = RDMTransform.from_settings(rdm_transform, "similarity.rdm_transform")
    xs, ys = _as_list(xs), _as_list(ys)
    _n_stimuli(xs, ys)
    rx = transform(np.stack([_rsa.rdm(np.asarray(x)) for x in xs]))
    ry = transform(np.stack([_rsa.rdm(np.asarray(y)) for y in ys]))
    return _rsa.compare(rx, ry, comparison)


# --------------------------------------------------------------------------- dispatcher

def _grams(xs: Iterable, kernel: str, sigma_factor: float, dtype, device) -> torch.Tensor:
    out = []
    for x in xs:
        if kernel == "linear":
            out.append(gram(_centred(x, dtype, device), "linear"))
        else:
            out.append(gram(x, kernel, sigma_factor, dtype, device))
    return torch.stack(out)


def pairwise(measure, xs, ys, **settings) -> np.ndarray:
    """``measure`` (one of :data:`MEASURES`) between every representation in ``xs`` and
    every one in ``ys`` -> (A, B) float64.

    ``xs``/``ys``: a list of (n, d) arrays (widths may differ), a single (n, d) array or
    an (A, n, d) stack. Settings: ``dtype`` ("float64" default, or "float32") and
    ``device`` ("auto") for every measure; ``sigma_factor`` (rbf_cka, default 1.0);
    ``k`` (mutual_knn, default 10); ``comparison`` (rsa, "spearman" default or "tau-a");
    ``rdm_transform`` (rsa, ``{kind, lower, upper}``, default none).
    Settings a measure does not use are ignored, so one dict can serve every measure;
    an unknown key raises ``TypeError``.

    Direction: see :data:`HIGHER_IS_BETTER` -- "procrustes" is the nuclear-norm
    similarity, "angular_procrustes" the angular distance (lower = more similar).
    """
    _check_settings(measure, settings)
    xs, ys = _as_list(xs), _as_list(ys)
    # not resolved here: each measure resolves it (raising if CUDA is asked for and absent);
    # rsa, which runs in numpy, ignores it
    device = settings.get("device", "auto")
    with one_thread_if_small(max(int(np.prod(np.shape(v))) for v in [*xs, *ys]), device):
        return _pairwise(measure, xs, ys, device, settings)


def _check_settings(measure, settings: dict) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown similarity measure '{measure}' (known: {', '.join(MEASURES)})")
    known = set().union(*SETTINGS.values())
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"unknown similarity setting(s) {unknown} (known: {sorted(known)}; "
                        f"'{measure}' uses {sorted(SETTINGS[measure])})")


#: measures whose :func:`subsample_pairwise` runs every sample in one batched call
SAMPLE_BATCHED = ("procrustes", "angular_procrustes", "mutual_knn")


def subsample_pairwise(measure, xs, ys, indices, **settings) -> np.ndarray:
    """:func:`pairwise` on samples of rows: ``out[s, a, b]`` = measure(xs[a][indices[s]],
    ys[b][indices[s]]), (S, A, B), for ``indices`` (S, m). Procrustes and mutual k-NN
    (:data:`SAMPLE_BATCHED`) compute all samples at once (batched QRs, SVDs, products and
    top-k; S x m x the widths in memory, so callers pass blocks of samples); the other
    measures one sample at a time."""
    _check_settings(measure, settings)
    xs, ys = _as_list(xs), _as_list(ys)
    indices = np.asarray(indices)
    if not len(indices):
        return np.zeros((0, len(xs), len(ys)))
    if measure not in SAMPLE_BATCHED:
        return np.stack([pairwise(measure, [x[b] for x in xs], [y[b] for y in ys], **settings) for b in indices])
    _n_stimuli(xs, ys)
    dtype, device = resolve_dtype(settings.get("dtype")), resolve_device(settings.get("device", "auto"))
    rows = torch.as_tensor(indices, device=device)
    xb = [as_tensor(x, dtype, device)[rows] for x in xs]  # (S, m, d) each
    yb = [as_tensor(y, dtype, device)[rows] for y in ys]
    with one_thread_if_small(max(v.numel() for v in [*xb, *yb]), device):
        if measure == "mutual_knn":
            out = mutual_knn(xb, yb, k=settings.get("k", 10), dtype=dtype, device=device)
        elif measure == "procrustes":
            out = procrustes_similarity(xb, yb, dtype=dtype, device=device)
        else:
            out = angular_procrustes(xb, yb, dtype=dtype, device=device)
    return np.moveaxis(out, -1, 0)


def _pairwise(measure, xs, ys, device, settings) -> np.ndarray:
    dtype = resolve_dtype(settings.get("dtype"))
    n = _n_stimuli(xs, ys)

    if measure in ("linear_cka", "debiased_cka"):
        debiased = measure == "debiased_cka"
        width = max(np.shape(v)[1] for v in [*xs, *ys])
        if n > width:
            return linear_cka_features(xs, ys, dtype, device, debiased=debiased)
        return cka_matrix(_grams(xs, "linear", 1.0, dtype, device), _grams(ys, "linear", 1.0, dtype, device),
                          debiased=debiased)
    if measure == "rbf_cka":
        sf = float(settings.get("sigma_factor", 1.0))
        return cka_matrix(_grams(xs, "rbf", sf, dtype, device), _grams(ys, "rbf", sf, dtype, device))
    if measure == "procrustes":
        return procrustes_similarity(xs, ys, dtype=dtype, device=device)
    if measure == "angular_procrustes":
        return angular_procrustes(xs, ys, dtype=dtype, device=device)
    if measure == "mutual_knn":
        return mutual_knn(xs, ys, k=settings.get("k", 10), dtype=dtype, device=device)
    return rsa_similarity(xs, ys, comparison=settings.get("comparison", "spearman"),
                          rdm_transform=settings.get("rdm_transform"))
