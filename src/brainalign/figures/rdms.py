"""RSA figures: the brain RDM next to the best layer's RDM per ROI, and a metric MDS of all RDMs."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import PALETTE, depth_colourbar, figure_seed, legend_below, save
from .needs import require


def _category_order(scores: xr.Dataset):
    """Stimulus order that groups stimuli by their ``category`` coordinate (a stable sort:
    categories in order of first appearance, stimuli in file order within a category), and
    the ``(category, start, stop)`` blocks of that order. Without categories: file order, no blocks."""
    n = scores.sizes["stimulus"]
    if "category" not in scores.coords:
        return np.arange(n), []
    categories = scores["category"].values.astype(str)
    _, first = np.unique(categories, return_index=True)
    names = categories[np.sort(first)]
    rank = {name: k for k, name in enumerate(names)}
    order = np.argsort([rank[c] for c in categories], kind="stable")
    blocks, start = [], 0
    for name in names:
        stop = start + int((categories == name).sum())
        blocks.append((str(name), start, stop))
        start = stop
    return order, blocks


def _rank_percentiles(rdm) -> np.ndarray:
    """Rank-transform an RDM's off-diagonal dissimilarities (ties share their average rank,
    as rsatoolbox's ``rank_transform``) and scale the ranks to percentiles 0..100 (smallest
    dissimilarity 0, largest 100). The diagonal and missing entries are NaN (not drawn)."""
    from scipy.stats import rankdata

    rdm = np.asarray(rdm, dtype=float)
    n = rdm.shape[0]
    upper = np.triu_indices(n, 1)
    vector = rdm[upper]
    ok = np.isfinite(vector)
    percent = np.full(vector.shape, np.nan)
    if ok.any():
        ranks = rankdata(vector[ok])
        span = ranks.max() - ranks.min()
        percent[ok] = 100.0 * (ranks - ranks.min()) / span if span > 0 else 50.0
    out = np.full((n, n), np.nan)
    out[upper] = percent
    out[upper[::-1]] = percent
    return out


def _stimulus_axes(ax, blocks, ids):
    """Category names as tick labels at block centres, with separators at block boundaries;
    without categories, stimulus ids when there are few stimuli."""
    if blocks:
        centres = [(start + stop - 1) / 2 for _, start, stop in blocks]
        names = [name for name, _, _ in blocks]
        ax.set_xticks(centres, names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(centres, names, fontsize=7)
        for _, start, _ in blocks[1:]:
            ax.axhline(start - 0.5, color="white", lw=1.0)
            ax.axvline(start - 0.5, color="white", lw=1.0)
        ax.set_xlabel("stimulus (grouped by category)", fontsize=8)
        ax.set_ylabel("stimulus (grouped by category)", fontsize=8)
    else:
        if len(ids) <= 24:
            ax.set_xticks(range(len(ids)), ids, rotation=90, fontsize=6)
            ax.set_yticks(range(len(ids)), ids, fontsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_xlabel("stimulus", fontsize=8)
        ax.set_ylabel("stimulus", fontsize=8)


def plot_rdm_panels(scores: xr.Dataset, paths, title: str | None = None):
    """One row per ROI: the subject-mean brain RDM next to the RDM of the layer that
    matches that ROI best. Stimuli are grouped by category where the file has one; each
    RDM is shown rank-transformed to percentiles (0..100) on one shared colour scale."""
    require(scores, "rdms")
    rois = list(scores["roi"].values.astype(str))
    order, blocks = _category_order(scores)
    ids = (scores["stimulus_id"].values.astype(str) if "stimulus_id" in scores.coords
           else np.arange(scores.sizes["stimulus"]).astype(str))[order]
    model = scores.attrs.get("model", "model")
    fig, axes = plt.subplots(len(rois), 2, figsize=(7.6, 3.5 * len(rois) + 0.6), squeeze=False,
                             layout="constrained")
    image = None
    for row, roi in enumerate(rois):
        best = (str(scores["best_layer"].sel(roi=roi).item()) if "best_layer" in scores.coords
                else "best layer")
        for ax, name, panel_title in ((axes[row, 0], "brain_rdm", f"brain: {roi}"),
                                      (axes[row, 1], "best_rdm", f"{model} {best}")):
            rdm = scores[name].sel(roi=roi).transpose("stimulus", "stimulus_").values
            image = ax.imshow(_rank_percentiles(rdm[np.ix_(order, order)]), cmap="viridis", vmin=0, vmax=100,
                              interpolation="nearest")
            _stimulus_axes(ax, blocks, ids)
            ax.set_title(panel_title, fontsize=10)
    fig.colorbar(image, ax=axes, label="dissimilarity (percentile)", shrink=0.8)
    fig.suptitle(title or f"{model} on {scores.attrs.get('dataset', '')}: brain RDM vs best layer RDM",
                 fontsize=11)
    save(fig, paths)
    return fig


def _metric_mds(distances: np.ndarray, seed: int) -> np.ndarray:
    """2-D metric MDS of a precomputed distance matrix (scikit-learn, any version >= 1.3)."""
    import inspect

    from sklearn.manifold import MDS

    params = inspect.signature(MDS).parameters
    kwargs = {"n_components": 2, "random_state": seed}
    if "metric_mds" in params:  # scikit-learn >= 1.8
        kwargs.update(metric_mds=True, metric="precomputed")
    else:
        kwargs.update(metric=True, dissimilarity="precomputed")
    if "normalized_stress" in params:
        kwargs["normalized_stress"] = "auto"
    if "init" in params:  # scikit-learn >= 1.8: start from classical MDS (deterministic)
        kwargs.update(init="classical_mds", n_init=1)
    else:
        kwargs["n_init"] = 4
    return MDS(**kwargs).fit_transform(distances)


def stress_1(distances: np.ndarray, embedding: np.ndarray) -> float:
    """Kruskal's stress-1 of an embedding: sqrt(sum (d_ij - delta_ij)^2 / sum d_ij^2)
    over pairs i < j (d: embedded distances, delta: the given dissimilarities)."""
    from scipy.spatial.distance import pdist, squareform

    embedded = pdist(embedding)
    given = squareform(np.asarray(distances, dtype=float), checks=False)
    return float(np.sqrt(((embedded - given) ** 2).sum() / (embedded ** 2).sum()))


def plot_rdm_mds(scores: xr.Dataset, paths, title: str | None = None):
    """Second-order MDS: every layer RDM and every brain RDM placed in 2-D so that their
    distances approximate ``rdm_distance`` (1 - RDM comparison). Layers are coloured by
    relative depth and joined in layer order; brain RDMs are black squares."""
    require(scores, "mds")
    dist = scores["rdm_distance"]
    distances = np.asarray(dist.transpose("rdm", "rdm_").values, dtype=float)
    labels = scores["rdm_label"].values.astype(str)
    kinds = (scores["rdm_kind"].values.astype(str) if "rdm_kind" in scores.coords
             else np.where(np.char.startswith(labels, "brain"), "brain", "layer"))
    distances = (distances + distances.T) / 2
    np.fill_diagonal(distances, 0.0)
    keep = np.isfinite(distances).all(axis=1)
    if keep.sum() < 3:
        raise ValueError("rdm_distance has fewer than 3 RDMs with finite distances to all others: "
                         "nothing to embed")
    if not keep.all():
        warnings.warn(f"MDS leaves out RDMs with missing distances: {', '.join(labels[~keep])}", stacklevel=2)
    distances = np.clip(distances[np.ix_(keep, keep)], 0.0, None)
    labels, kinds = labels[keep], kinds[keep]
    embedding = _metric_mds(distances, figure_seed(scores))
    stress = stress_1(distances, embedding)

    is_layer = kinds == "layer"
    layer_names = labels[is_layer]
    if "depth" in scores.coords and set(layer_names) <= set(scores["layer"].values.astype(str)):
        depth = np.asarray(scores["depth"].sel(layer=list(layer_names)).values, dtype=float)
    else:
        depth = np.linspace(0.0, 1.0, is_layer.sum()) if is_layer.sum() > 1 else np.zeros(is_layer.sum())
    model = scores.attrs.get("model", "model")
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    layers, brains = embedding[is_layer], embedding[~is_layer]
    ax.plot(layers[:, 0], layers[:, 1], color="0.6", lw=1.0, zorder=1)
    ax.scatter(layers[:, 0], layers[:, 1], c=depth, cmap=cmap, vmin=0, vmax=1, s=45, edgecolors="0.2",
               linewidths=0.5, zorder=2, label=f"{model} layer RDMs")
    named = not all(str(v).lstrip("-").isdigit() for v in layer_names) and len(layer_names) <= 16
    for k in (range(len(layers)) if named else {0, len(layers) - 1} if len(layers) else ()):
        ax.annotate(layer_names[k], layers[k], xytext=(4, -10), textcoords="offset points", fontsize=7,
                    color="0.25")
    ax.scatter(brains[:, 0], brains[:, 1], color=PALETTE[7], marker="s", s=55, zorder=3, label="brain RDMs")
    for point, label in zip(brains, labels[~is_layer]):
        ax.annotate(label, point, xytext=(5, 4), textcoords="offset points", fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.15)
    ax.set_xlabel("MDS 1 (arbitrary units)")
    ax.set_ylabel("MDS 2 (arbitrary units)")
    ax.set_title(f"metric MDS of RDM distances (Kruskal stress-1 = {stress:.3f})", fontsize=9)
    ax.grid(alpha=0.2)
    depth_colourbar(fig, ax, cmap)
    legend_below(fig, [ax])
    fig.suptitle(title or f"{model} on {scores.attrs.get('dataset', '')}: layer and brain RDMs", fontsize=11)
    save(fig, paths)
    return fig
