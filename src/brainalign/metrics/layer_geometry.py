"""Representational geometry of one layer: intrinsic dimension, spectrum and shape measures.

Arrays in, numbers out: every measure takes ``X`` of shape ``(n_stimuli, n_units)`` (converted
to float64, never standardised) and, for NC1, one label per stimulus, and returns a float.
:func:`layer_geometry` computes several at once, using the table :data:`MEASURES`.

Measures:

``twonn``               TwoNN intrinsic dimension (Facco et al. 2017), as ``skdim.id.TwoNN()``.
``mle``                 Levina & Bickel (2005) maximum-likelihood intrinsic dimension with
                        MacKay & Ghahramani's averaging of inverses, as ``skdim.id.MLE()``.
``participation_ratio`` (sum lambda)^2 / sum lambda^2 of the covariance eigenvalues.
``effective_rank``      RankMe (Garrido et al. 2023): exp entropy of the normalised singular
                        values of the *uncentred* X.
``alpha_req``           alpha-ReQ (Agrawal et al. 2022): power-law decay exponent of the
                        covariance eigenspectrum.
``anisotropy``          mean cosine similarity between distinct stimuli (Ethayarajh 2019).
``massive_activation``  largest |activation| over the median |activation| (Sun et al. 2024).
``nc1``                 within-class variability collapse tr(Sigma_W Sigma_B^+)/C (Papyan
                        et al. 2020); needs labels.

The intrinsic-dimension estimators use Euclidean nearest neighbours. Duplicate stimuli (identical
rows) give zero distances, for which neither estimator is defined: by default the copies are
dropped (one of each kept) with a warning; ``duplicates="raise"`` raises ValueError instead.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import scipy.linalg


# --------------------------------------------------------------------------- helpers

def _as_matrix(X) -> np.ndarray:
    """``X`` as a finite 2-D float64 array with at least two rows."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (stimulus x unit), got shape {X.shape}")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"X needs at least 2 stimuli and 1 unit, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    return X


def _unique_rows(X: np.ndarray, duplicates: str) -> np.ndarray:
    """``X`` without repeated rows (first copy kept, order preserved), or ValueError."""
    if duplicates not in ("drop", "raise"):
        raise ValueError(f"duplicates must be 'drop' or 'raise', got {duplicates!r}")
    _, first = np.unique(X, axis=0, return_index=True)
    n_dup = len(X) - len(first)
    if not n_dup:
        return X
    message = (f"{n_dup} of {len(X)} stimuli duplicate another stimulus (identical rows, zero "
               "nearest-neighbour distance)")
    if duplicates == "raise":
        raise ValueError(message)
    warnings.warn(message + "; dropping the copies before estimating the intrinsic dimension",
                  stacklevel=3)
    return X[np.sort(first)]


def _knn_distances(X: np.ndarray, k: int) -> np.ndarray:
    """Euclidean distances from each row to its ``k`` nearest other rows, ascending: (n, k).

    Candidates come from the BLAS expansion ||a||^2 - 2a.b + ||b||^2 on the column-centred data
    (distances are translation-invariant; centring keeps the rounding small), with a margin of
    extra candidates; the candidates' distances are then recomputed exactly as ||a - b|| so that
    no estimator sees the expansion's cancellation error. A point is excluded by index, not by
    distance, so a duplicate shows as an exact 0.
    """
    n = len(X)
    if not 1 <= k < n:
        raise ValueError(f"need 1 <= k < n_stimuli, got k={k} with {n} stimuli")
    Xc = _centred(X)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    m = min(k + 5, n - 1)
    chunk = max(1, min(n, 2 ** 22 // max(n, m * X.shape[1])))
    out = np.empty((n, k))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = Xc[start:stop]
        d2 = sq[start:stop, None] - 2.0 * (block @ Xc.T) + sq[None, :]
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
        cand = np.argpartition(d2, m - 1, axis=1)[:, :m]
        exact = np.sqrt(((block[:, None, :] - Xc[cand]) ** 2).sum(axis=2))
        out[start:stop] = np.sort(exact, axis=1)[:, :k]
    return out


def _centred(X: np.ndarray) -> np.ndarray:
    """Column-centred ``X``. Shifted by its first row first, so that a constant column (or an X
    whose rows are all equal) centres to exact zeros instead of the mean's rounding residue."""
    Xs = X - X[0]
    return Xs - Xs.mean(axis=0)


def _singular_values(X: np.ndarray) -> np.ndarray:
    """Singular values of ``X``, descending (LAPACK gesdd, gesvd if that fails to converge;
    scipy's, which on wide matrices is many times faster here than numpy's)."""
    try:
        return scipy.linalg.svd(X, compute_uv=False, check_finite=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:
        return scipy.linalg.svd(X, compute_uv=False, check_finite=False, lapack_driver="gesvd")


def _covariance_eigenvalues(X: np.ndarray) -> np.ndarray:
    """Eigenvalues of the sample covariance of the column-centred ``X``, descending:
    sigma_k(Xc)^2 / (n - 1), from the SVD (min(n, p) values; the rank is at most min(n - 1, p))."""
    return _singular_values(_centred(X)) ** 2 / (len(X) - 1)


# --------------------------------------------------------------------------- intrinsic dimension

def twonn(X, discard_fraction: float = 0.1, duplicates: str = "drop") -> float:
    """TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez & Laio 2017, Sci. Rep. 7:12140).

    For each of the N points, mu_i = r2_i / r1_i (second over first nearest-neighbour distance)
    follows a Pareto law P(mu) = d mu^-(d+1), so -log(1 - F(mu)) = d log mu. With the ratios
    sorted, the ``n_keep = int(N (1 - discard_fraction))`` smallest are kept, F_emp(mu_(i)) = i / N
    (i = 1..n_keep, still over the full N), and d is the least-squares slope through the origin
    of y_i = -log(1 - i/N) on x_i = log mu_(i): d = sum x y / sum x^2.

    This is exactly ``skdim.id.TwoNN()`` (scikit-dimension 0.5; ``method='linear'``,
    ``discard_fraction=0.1``) on data without duplicates. Duplicated rows: see the module doc
    (skdim drops only the duplicated points themselves; here one copy of each is kept).
    """
    X = _unique_rows(_as_matrix(X), duplicates)
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    r = _knn_distances(X, 2)
    mu = np.sort(r[:, 1] / r[:, 0])
    N = len(mu)
    n_keep = int(N * (1 - discard_fraction))
    if n_keep >= N:
        raise ValueError("discard_fraction must leave out at least the largest ratio "
                         "(F_emp = 1 there and -log(1 - F_emp) is infinite)")
    if n_keep < 2:
        raise ValueError(f"fewer than 2 ratios left after discarding (N={N})")
    x = np.log(mu[:n_keep])
    y = -np.log(1.0 - np.arange(1, n_keep + 1) / N)
    return float(x @ y / (x @ x))


def mle(X, k: int = 20, duplicates: str = "drop") -> float:
    """Maximum-likelihood intrinsic dimension (Levina & Bickel 2005, NIPS 17) averaged as
    MacKay & Ghahramani (2005) propose.

    With T_1(x) <= ... <= T_k(x) the distances from x to its k nearest neighbours, the local
    estimate is m_k(x) = (k - 1) / sum_{j=1}^{k} log(T_k(x) / T_j(x)) (the j = k term is 0), and
    the global one the inverse of the mean inverse: m = 1 / mean_x(1 / m_k(x)).

    This is exactly ``skdim.id.MLE().fit(X, n_neighbors=k)`` (scikit-dimension 0.5 defaults: no
    noise model, ``unbiased=False``, ``comb='mle'``) on data without duplicates.
    """
    X = _unique_rows(_as_matrix(X), duplicates)
    k = int(k)
    if not 2 <= k < len(X):
        raise ValueError(f"need 2 <= k < n_stimuli, got k={k} with {len(X)} distinct stimuli")
    T = _knn_distances(X, k)
    local = (k - 1) / np.log(T[:, -1:] / T).sum(axis=1)
    return float(1.0 / np.mean(1.0 / local))


# --------------------------------------------------------------------------- spectrum

def participation_ratio(X) -> float:
    """Participation ratio (Gao et al. 2017; Recanatesi et al. 2019):
    PR = (sum_k lambda_k)^2 / sum_k lambda_k^2 over the eigenvalues lambda_k of the covariance of
    the column-centred X. Between 1 and rank(Xc); k equal eigenvalues give PR = k.

    Computed without an eigendecomposition: with G the smaller of Xc Xc' and Xc' Xc (same
    non-zero eigenvalues, up to the common factor n - 1), sum lambda = tr G and
    sum lambda^2 = ||G||_F^2."""
    Xc = _centred(_as_matrix(X))
    G = Xc @ Xc.T if Xc.shape[0] <= Xc.shape[1] else Xc.T @ Xc
    total = np.trace(G)
    if total == 0:
        raise ValueError("X has zero variance: the participation ratio is undefined")
    return float(total ** 2 / np.sum(G * G))


def effective_rank(X, eps: float = 1e-7) -> float:
    """RankMe (Garrido, Balestriero, Najman & LeCun 2023, ICML): exp(-sum_k p_k log p_k) with
    p_k = sigma_k / sum_j sigma_j + eps over the min(n, p) singular values sigma_k of X.

    As in RankMe, X is *not* centred (pass ``X - X.mean(0)`` for the centred version). ``eps`` is
    RankMe's 1e-7; with ``eps=0`` (0 log 0 = 0), k equal non-zero singular values give exactly k.
    """
    s = _singular_values(_as_matrix(X))
    total = s.sum()
    if total == 0:
        raise ValueError("X is all zeros: the effective rank is undefined")
    p = s / total + eps
    p = p[p > 0]
    return float(np.exp(-(p @ np.log(p))))


def alpha_req(X, k_min: int = 1, k_max: int | None = None, rtol: float = 1e-12) -> float:
    """alpha-ReQ (Agrawal, Mondal, Ghosh & Richards 2022, NeurIPS): the decay exponent alpha of
    the covariance eigenspectrum lambda_k ~ k^-alpha.

    lambda_k are the eigenvalues of the covariance of the column-centred X (descending). alpha is
    minus the ordinary least-squares slope (with intercept) of log lambda_k on log k over the ranks
    ``k_min <= k <= k_max`` (1-based, inclusive; default k_max = min(n - 1, p), the largest
    possible rank), keeping only eigenvalues above ``rtol * lambda_1`` (rounding noise in the
    null space is about (1e-16)^2 lambda_1). Returned positive for a decaying spectrum.
    """
    X = _as_matrix(X)
    lam = _covariance_eigenvalues(X)
    top = min(len(X) - 1, X.shape[1]) if k_max is None else int(k_max)
    k_min = int(k_min)
    if k_min < 1 or top < k_min:
        raise ValueError(f"need 1 <= k_min <= k_max, got k_min={k_min}, k_max={top}")
    ks = np.arange(k_min, min(top, len(lam)) + 1)
    ks = ks[lam[ks - 1] > rtol * lam[0]]
    if len(ks) < 2:
        raise ValueError(f"fewer than 2 eigenvalues above rtol * lambda_1 in ranks {k_min}..{top}")
    x, y = np.log(ks), np.log(lam[ks - 1])
    x = x - x.mean()
    return float(-(x @ (y - y.mean())) / (x @ x))


# --------------------------------------------------------------------------- shape

def anisotropy(X) -> float:
    """Anisotropy (Ethayarajh 2019, EMNLP): mean cosine similarity cos(x_i, x_j) over the
    n(n-1)/2 distinct pairs i < j of the *uncentred* stimulus vectors. With u_i = x_i/||x_i||,
    it equals (||sum_i u_i||^2 - n) / (n(n-1)). A zero row has no direction: ValueError."""
    X = _as_matrix(X)
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{int(np.sum(norms == 0))} stimuli have an all-zero representation "
                         "(cosine similarity undefined)")
    s = (X / norms[:, None]).sum(axis=0)
    n = len(X)
    return float((s @ s - n) / (n * (n - 1)))


def massive_activation(X) -> float:
    """Massive-activation ratio (after Sun, Chen, Kolter & Liu 2024, "Massive activations in
    large language models"): max_ij |X_ij| / median_ij |X_ij| over *all* stimulus x unit entries.

    Sun et al. call an activation massive when it is about 1000 times the median magnitude of the
    hidden states; this is that ratio for the largest one. When at least half the entries are 0
    the median is 0 and the ratio is inf (nan if X is all zeros)."""
    a = np.abs(_as_matrix(X))
    top, med = a.max(), np.median(a)
    if med == 0:
        return float("nan") if top == 0 else float("inf")
    return float(top / med)


def nc1(X, labels) -> float:
    """Neural-collapse NC1 (Papyan, Han & Donoho 2020, PNAS): tr(Sigma_W Sigma_B^+) / C.

    With classes c = 1..C, class means mu_c, the global mean mu_G over all N stimuli,
    Sigma_W = (1/N) sum_i (x_i - mu_{c(i)})(x_i - mu_{c(i)})' and
    Sigma_B = (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)'. Sigma_B^+ is the Moore-Penrose inverse,
    computed from the thin SVD M = U S V' of the C x p matrix of rows mu_c - mu_G (Sigma_B =
    V S^2 V' / C, so Sigma_B^+ = C V S^-2 V'), keeping singular values above
    max(C, p) * eps * max(s_max, ||class means||_F) (numpy's matrix_rank tolerance, scaled so
    that class means equal up to rounding count as equal). 0 when every stimulus equals its
    class mean. Fewer than 2 classes, or coinciding class means: ValueError.
    """
    X = _as_matrix(X)
    labels = np.asarray(labels)
    if labels.shape != (len(X),):
        raise ValueError(f"need one label per stimulus: labels shape {labels.shape}, X shape {X.shape}")
    classes, y = np.unique(labels, return_inverse=True)
    C = len(classes)
    if C < 2:
        raise ValueError(f"NC1 needs at least 2 classes, got {C}")
    X = X - X[0]                                     # translation-invariant; exact for equal rows
    onehot = np.zeros((len(X), C))
    onehot[np.arange(len(X)), y] = 1.0
    means = (onehot.T @ X) / onehot.sum(axis=0)[:, None]
    within = X - means[y]
    M = means - X.mean(axis=0)
    _, s, Vt = np.linalg.svd(M, full_matrices=False)
    keep = s > max(M.shape) * np.finfo(np.float64).eps * max(s[0], np.linalg.norm(means))
    if not keep.any():
        raise ValueError("all class means coincide (Sigma_B = 0): NC1 is undefined")
    proj = within @ Vt[keep].T                       # (N, r): within-class deviations along V
    # tr(Sigma_W Sigma_B^+) / C = sum_k (v_k' Sigma_W v_k) / s_k^2, with v_k' Sigma_W v_k = ||W v_k||^2 / N
    return float(np.sum((proj ** 2).sum(axis=0) / len(X) / s[keep] ** 2))


# --------------------------------------------------------------------------- table

@dataclass(frozen=True)
class GeometryMeasure:
    """One per-layer geometry measure: its function, a one-line description, and whether it
    needs stimulus labels."""

    name: str
    function: Callable[..., float]
    description: str
    needs_labels: bool = False

    @property
    def settings(self) -> frozenset:
        """The keyword settings the function takes besides X (and labels)."""
        params = list(inspect.signature(self.function).parameters)
        return frozenset(params[2 if self.needs_labels else 1:])


#: Every measure :func:`layer_geometry` knows, in display order.
MEASURES = {m.name: m for m in (
    GeometryMeasure("twonn", twonn, "TwoNN intrinsic dimension (Facco et al. 2017)"),
    GeometryMeasure("mle", mle, "MLE intrinsic dimension, k neighbours (Levina & Bickel 2005)"),
    GeometryMeasure("participation_ratio", participation_ratio,
                    "participation ratio of the covariance eigenvalues"),
    GeometryMeasure("effective_rank", effective_rank, "RankMe effective rank (Garrido et al. 2023)"),
    GeometryMeasure("alpha_req", alpha_req, "eigenspectrum decay exponent (Agrawal et al. 2022)"),
    GeometryMeasure("anisotropy", anisotropy, "mean pairwise cosine similarity (Ethayarajh 2019)"),
    GeometryMeasure("massive_activation", massive_activation,
                    "max |activation| / median |activation| (Sun et al. 2024)"),
    GeometryMeasure("nc1", nc1, "neural collapse NC1, tr(Sw Sb^+)/C (Papyan et al. 2020)",
                    needs_labels=True),
)}


def layer_geometry(X, labels=None, *, measures: Iterable[str] | None = None, **kwargs) -> dict[str, float]:
    """Several geometry measures of one layer's ``X`` (n_stimuli, n_units): ``{name: value}``.

    ``measures`` defaults to every measure in :data:`MEASURES`, minus those that need labels when
    ``labels`` is None; asking for a label measure by name without labels is a ValueError.
    ``kwargs`` are the measures' settings (e.g. ``k=10``, ``discard_fraction=0.2``, ``eps=0``):
    each measure gets the ones it takes; a key no measure takes is a TypeError.
    """
    X = _as_matrix(X)
    if measures is None:
        names = [n for n, m in MEASURES.items() if labels is not None or not m.needs_labels]
    else:
        names = list(measures)
        unknown = [n for n in names if n not in MEASURES]
        if unknown:
            raise ValueError(f"unknown geometry measure(s) {unknown}; known: {list(MEASURES)}")
        missing = [n for n in names if MEASURES[n].needs_labels and labels is None]
        if missing:
            raise ValueError(f"measure(s) {missing} need labels")
    known = frozenset().union(*(m.settings for m in MEASURES.values()))
    extra = set(kwargs) - known
    if extra:
        raise TypeError(f"unknown setting(s) {sorted(extra)}; settings: {sorted(known)}")
    out = {}
    for name in names:
        m = MEASURES[name]
        settings = {key: v for key, v in kwargs.items() if key in m.settings}
        args = (X, labels) if m.needs_labels else (X,)
        out[name] = m.function(*args, **settings)
    return out
