"""Geo-topological transforms of RDMs: topological RSA (tRSA).

Lin, B. & Kriegeskorte, N. (2024). The topology and geometry of neural representations. PNAS
(arXiv:2309.11028). Their geo-topological transform GT_{l,u} keeps an RDM's geometry
between two thresholds and collapses it outside them: dissimilarities up to the lower threshold
become 0 (the stimuli count as "the same place"), those from the upper one on become 1 ("far apart,
however far"), and those in between are scaled linearly. ``lower = upper`` would give the binary
adjacency matrix of a neighbourhood graph (topology only); ``(0, 1)`` keeps the full geometry.

Definitions (one RDM vector ``d``, the upper triangle; ``lower`` and ``upper`` are quantiles in
[0, 1] of that RDM's own dissimilarities, numpy's linear interpolation, as in rsatoolbox's
``geotopological_transform`` and the authors' code; there is no absolute-value form, because
neither the paper nor rsatoolbox has one and quantiles are what make the transform comparable
across RDMs of different scale)::

    l = quantile(d, lower),  u = quantile(d, upper)
    geotopological:  GT(d) = 0 if d <= l;  1 if d >= u;  (d - l) / (u - l) in between
                     (a step, 0 if d <= l else 1, when ties make l == u)
    geodesic:        G = shortest-path lengths on the graph with an edge i--j of length GT(d_ij)
                     for every pair with GT(d_ij) < 1 (pairs at or beyond u are cut; pairs at 0
                     stay joined at length 0), then G / max finite G, with pairs left in
                     different components set to 1 (the authors' code replaces their infinite
                     distances by the largest finite one). This is the paper's representational
                     geo-topological *geodesic* matrix (RGDM): distances measured along the
                     neighbourhood graph instead of straight through representational space.

At thresholds ``(0, 1)`` the geo-topological transform is ``(d - min) / (max - min)``: a positive
affine map, so Spearman, Kendall's tau-a, Pearson and whitened Pearson comparisons give exactly the
plain-RSA numbers (cosine and whitened cosine, which are not shift-invariant, do not). The geodesic
variant is not monotone in ``d`` (a path can be shorter than the direct edge), so it changes RSA
even at ``(0, 1)``.

Missing entries (NaN; rsatoolbox puts them where a bootstrap-resampled stimulus meets its own copy)
are left out of the quantiles and of the graph, and stay NaN.

rsatoolbox 0.3's ``geotopological_transform`` gives the same numbers for one RDM whose upper
threshold value is at least 1; it takes one pair of quantiles over all the RDMs it is given, and
its in-place assignment maps middle values a second time when the upper threshold value is below 1.
Its ``geodesic_transform`` builds the graph with networkx, which drops zero-length edges (pairs at
or below the lower threshold), and leaves disconnected pairs infinite; here those pairs keep their
zero-length edge and the result is rescaled as above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "geotopological", "geodesic")
#: RDM comparisons that a positive affine map of both RDMs leaves unchanged (see the module doc).
AFFINE_INVARIANT = ("spearman", "tau-a", "corr", "corr_cov")


def _n_stimuli(n_pairs: int) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not the length of an RDM upper triangle")
    return n


def check_thresholds(lower, upper, key: str = "rdm_transform") -> tuple[float, float]:
    """``(lower, upper)`` as floats, or ``ValueError`` naming ``key.lower`` / ``key.upper``."""
    for name, value in (("lower", lower), ("upper", upper)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"config key '{key}.{name}': {value!r} is not a quantile in [0, 1]")
    if float(lower) >= float(upper):
        raise ValueError(f"config key '{key}.upper': upper ({upper}) must be above lower ({lower}); both are "
                         "quantiles of each RDM's dissimilarities")
    return float(lower), float(upper)


# ------------------------------------------------------------------------- the transforms

def geotopological(vectors: np.ndarray, lower: float = 0.0, upper: float = 1.0) -> np.ndarray:
    """GT_{l,u} of RDM vectors (..., P), thresholds the ``lower`` / ``upper`` quantiles of each RDM."""
    v = np.asarray(vectors, dtype=np.float64)
    flat = v.reshape(-1, v.shape[-1])
    missing = np.isnan(flat)
    quantile = np.nanquantile if missing.any() else np.quantile
    lo, hi = quantile(flat, [lower, upper], axis=-1)  # (R,) each
    return _gt(flat, lo[:, None], hi[:, None]).reshape(v.shape)


def _gt(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """GT with given threshold values (broadcast against ``v``); NaN stays NaN."""
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), np.where(v > lo, 1.0, 0.0))
    return np.where(np.isnan(v), np.nan, np.clip(scaled, 0.0, 1.0))


def geodesic(vectors: np.ndarray, lower: float = 0.0, upper: float = 1.0) -> np.ndarray:
    """RGDM of RDM vectors (..., P): shortest paths on the graph of the GT_{l,u} RDM, rescaled to [0, 1]."""
    v = np.asarray(vectors, dtype=np.float64)
    flat = v.reshape(-1, v.shape[-1])
    return geodesic_of_gt(geotopological(flat, lower, upper)).reshape(v.shape)


def geodesic_of_gt(t: np.ndarray, max_bytes: float = 2e8) -> np.ndarray:
    """Shortest paths (R, P) on the graphs of GT-transformed RDM vectors ``t`` (R, P), rescaled.

    Edges are the pairs with ``t < 1`` (NaN pairs are not edges); Floyd-Warshall, batched over the
    R RDMs; each RDM is then divided by its largest finite path length (and rounded to 1e-12),
    and pairs without a path get 1. NaN pairs stay NaN. RDMs run in chunks of about ``max_bytes`` of working memory.
    """
    t = np.atleast_2d(np.asarray(t, dtype=np.float64))
    n = _n_stimuli(t.shape[-1])
    chunk = max(1, int(max_bytes // (16 * n * n)))
    if t.shape[0] > chunk:
        return np.concatenate([geodesic_of_gt(t[i:i + chunk], max_bytes) for i in range(0, t.shape[0], chunk)])
    iu = np.triu_indices(n, k=1)
    graph = np.full((t.shape[0], n, n), np.inf)
    edges = np.where(t < 1.0, t, np.inf)  # NaN < 1 is False: no edge
    graph[:, iu[0], iu[1]] = edges
    graph[:, iu[1], iu[0]] = edges
    graph[:, np.arange(n), np.arange(n)] = 0.0
    through = np.empty_like(graph)
    for k in range(n):
        np.add(graph[:, :, k, None], graph[:, None, k, :], out=through)
        np.minimum(graph, through, out=graph)
    g = graph[:, iu[0], iu[1]]
    missing = np.isnan(t)
    finite = np.isfinite(g) & ~missing
    top = np.where(finite, g, -np.inf).max(-1, keepdims=True)
    scale = np.where(top > 0, top, 1.0)
    # Rounded to 1e-12, so that path lengths equal but for the order of their floating-point sums tie
    # (Spearman and tau-a would otherwise rank them apart, differently on a resample's duplicates).
    out = np.round(np.where(finite, g / scale, 1.0), 12)
    out[missing] = np.nan
    return out


# ------------------------------------------------------------------ stimulus resamples

def _weighted_order_statistics(sorted_values: np.ndarray, cum_weights: np.ndarray, positions: np.ndarray):
    """Element ``positions`` (N, K), 0-based, of each row's multiset (values repeated by weight)."""
    idx = np.stack([(cum_weights <= positions[:, [k]]).sum(-1) for k in range(positions.shape[1])], -1)
    return np.take_along_axis(sorted_values, np.minimum(idx, sorted_values.shape[-1] - 1), -1)


def weighted_quantiles(vectors: np.ndarray, weights: np.ndarray, qs, order: np.ndarray | None = None):
    """numpy's linear quantiles ``qs`` of each row of ``vectors`` (N, P) repeated ``weights`` (N, P) times.

    Equal to ``np.quantile`` of the expanded vector (what rsatoolbox's resampled RDM holds: each
    pair of distinct drawn stimuli as often as the product of their counts). Returns (len(qs), N).
    """
    v, w = np.asarray(vectors, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    order = np.argsort(v, axis=-1, kind="stable") if order is None else order
    sv = np.take_along_axis(v, order, -1)
    cw = np.cumsum(np.take_along_axis(w, order, -1), -1)
    h = np.asarray(qs, dtype=np.float64)[None, :] * (cw[:, -1:] - 1)  # (N, K) virtual positions
    below = np.floor(h)
    a = _weighted_order_statistics(sv, cw, below)
    b = _weighted_order_statistics(sv, cw, np.minimum(below + 1, cw[:, -1:] - 1))
    frac = h - below
    out = np.where(frac >= 0.5, b - (b - a) * (1 - frac), a + (b - a) * frac)  # numpy's _lerp
    return out.T


@dataclass(frozen=True)
class RDMTransform:
    """``kind`` (none, geotopological, geodesic) with ``lower`` / ``upper`` quantile thresholds."""

    kind: str = "none"
    lower: float = 0.0
    upper: float = 1.0

    @classmethod
    def from_settings(cls, spec, key: str = "rdm_transform") -> "RDMTransform":
        """From a settings value: None, a kind name, a mapping ``{kind, lower, upper}`` or an RDMTransform."""
        if isinstance(spec, RDMTransform):
            return spec
        if spec is None:
            return cls()
        if isinstance(spec, str):
            spec = {"kind": spec}
        if not isinstance(spec, dict):
            raise ValueError(f"config key '{key}': expected a mapping {{kind, lower, upper}}, got {spec!r}")
        unknown = sorted(set(spec) - {"kind", "lower", "upper"})
        if unknown:
            raise ValueError(f"config key '{key}': unknown setting(s) {unknown} (known: kind, lower, upper)")
        kind = spec.get("kind", "none")
        if kind not in KINDS:
            raise ValueError(f"config key '{key}.kind': unknown RDM transform {kind!r} (known: {KINDS})")
        lower, upper = check_thresholds(spec.get("lower", 0.0), spec.get("upper", 1.0), key)
        return cls(kind, lower, upper)

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def is_affine(self) -> bool:
        """True when the transform is a positive affine map of every RDM (geotopological at (0, 1))."""
        return self.kind == "geotopological" and self.lower == 0.0 and self.upper == 1.0

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """The transformed RDM vectors (..., P); ``none`` returns the input as float64."""
        if self.kind == "geotopological":
            return geotopological(vectors, self.lower, self.upper)
        if self.kind == "geodesic":
            return geodesic(vectors, self.lower, self.upper)
        return np.asarray(vectors, dtype=np.float64)

    def resampled(self, vectors: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Transforms of RDM vectors (R, P) on stimulus resamples given as ``counts`` (B, n).

        Each resample's RDM (pairs of distinct drawn stimuli, each as often as the product of
        the two counts; rsatoolbox's ``subsample_pattern``) is transformed with its own quantiles,
        as a recomputed RDM would be. Returns (B, R, P) on the original pair positions. Pairs with
        a stimulus not drawn have weight 0 in the resample; they hold the geo-topological value of
        their dissimilarity under the resample's thresholds (so the geo-topological rows keep the
        order of the untransformed ones), and nothing that weights pairs by their counts uses them.
        """
        v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        counts = np.atleast_2d(counts)
        n = _n_stimuli(v.shape[-1])
        iu = np.triu_indices(n, k=1)
        w = (counts[:, iu[0]] * counts[:, iu[1]]).astype(np.float64)  # (B, P)
        n_boot, n_rdm, n_pairs = counts.shape[0], v.shape[0], v.shape[1]
        out = np.zeros((n_boot, n_rdm, n_pairs))
        if not self.active:
            out[:] = v[None]
            return out
        for r in range(n_rdm):
            order = np.broadcast_to(np.argsort(v[r], kind="stable"), (n_boot, n_pairs))
            rows = np.broadcast_to(v[r], (n_boot, n_pairs))
            lo, hi = weighted_quantiles(rows, w, [self.lower, self.upper], order=order)
            out[:, r] = _gt(rows, lo[:, None], hi[:, None])
        if self.kind == "geodesic":
            for b in range(n_boot):  # the graph of the distinct drawn stimuli (copies add no paths)
                sub = _sub_pairs(n, np.flatnonzero(counts[b] > 0))
                block = out[b]
                block[:, sub] = geodesic_of_gt(block[:, sub])
        return out

    def describe(self) -> str:
        """Words for labels and captions ('' for none)."""
        if self.kind == "geotopological":
            return f"geo-topological transform (thresholds at the {self.lower:g} and {self.upper:g} quantiles)"
        if self.kind == "geodesic":
            return (f"geodesic geo-topological transform (graph of the GT RDM with thresholds at the {self.lower:g} "
                    f"and {self.upper:g} quantiles)")
        return ""

    def short(self) -> str:
        """A few words for axis labels ('' for none)."""
        if not self.active:
            return ""
        name = "geo-topological" if self.kind == "geotopological" else "geodesic GT"
        return f"{name} {self.lower:g}-{self.upper:g}"


def _sub_pairs(n: int, drawn: np.ndarray) -> np.ndarray:
    """Positions, in the n-stimulus upper triangle, of the pairs among ``drawn`` (sorted) stimuli."""
    iu = np.triu_indices(len(drawn), k=1)
    a, b = drawn[iu[0]], drawn[iu[1]]
    return a * n - a * (a + 1) // 2 + (b - a - 1)


def from_settings(spec, key: str = "rdm_transform") -> RDMTransform:
    """:meth:`RDMTransform.from_settings`."""
    return RDMTransform.from_settings(spec, key)
