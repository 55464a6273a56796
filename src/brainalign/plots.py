"""Figures drawn from score NetCDF files alone (no workflow state needed)."""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from .figures.style import PALETTE, save, styled  # noqa: E402  (one style for every figure)

ALPHA_SIGNIFICANT = 0.05


def _planted_layer(scores: xr.Dataset, roi: str):
    """Hidden-state index planted in ``roi`` for this model, or None."""
    try:
        planted = json.loads(scores.attrs.get("planted") or "{}")
    except json.JSONDecodeError:
        return None
    entry = planted.get(roi)
    if entry and entry.get("model") == scores.attrs.get("model"):
        return int(entry["layer_index"])
    return None


def _metric_label(scores: xr.Dataset) -> str:
    """The y-axis label: the score's long name, else the file's metric label, else the metric."""
    return scores["score"].attrs.get("long_name") or scores.attrs.get("metric_label") \
        or scores.attrs.get("metric", "score")


def _significance(scores: xr.Dataset):
    """(p values, level, legend label): FDR-adjusted p where the file has it, else the raw
    permutation p; the level is the file's ``alpha`` attribute (default 0.05)."""
    alpha = float(scores.attrs.get("alpha", ALPHA_SIGNIFICANT))
    if "p_fdr" in scores:
        return scores["p_fdr"], alpha, f"p_FDR < {alpha:g}"
    return scores["p_value"], alpha, f"p < {alpha:g}"


def _title(scores: xr.Dataset, label: str) -> str:
    return f"{scores.attrs.get('model', '')} on {scores.attrs.get('dataset', '')}: {label}"


def plot_layer_curves(scores: xr.Dataset, paths, title: str | None = None):
    """One panel per ROI: score against layer, subject lines (spread), the
    subject mean with its CI band, the noise-ceiling band where defined, marks
    at layers whose p (FDR-adjusted where the file has ``p_fdr``) is below the
    file's ``alpha``, and the planted layer of simulated data.

    Time-resolved files (a ``time`` dimension) have no single curve per layer:
    they are drawn by :func:`plot_time_curves` instead."""
    if "time" in scores.dims:
        return plot_time_curves(scores, paths, title=title)
    rois = list(scores["roi"].values.astype(str))
    n = len(rois)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    names = [str(v) for v in scores["layer"].values]
    named = not all(v.lstrip("-").isdigit() for v in names) and len(names) <= 16  # e.g. model RDMs
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.4 * ncols, 6.5), (3.6 if named else 2.9) * nrows + 0.6),
                             sharey=True, squeeze=False)
    x = scores["layer_index"].values
    label = _metric_label(scores)
    p_all, alpha, sig_label = _significance(scores)
    for ax, roi in zip(axes.flat, rois):
        s = scores.sel(roi=roi)
        for k, subject in enumerate(s["subject"].values):
            ax.plot(x, s["score"].sel(subject=subject), color="0.6", lw=0.8, alpha=0.8,
                    label="subjects" if k == 0 else None)
        level = f"{float(scores.attrs.get('confidence', 0.95)):.0%}"
        if "boot_ci_low" in s and np.isfinite(s["boot_ci_low"].values).all():
            ax.fill_between(x, s["boot_ci_low"], s["boot_ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                            label=f"{level} bootstrap CI ({scores.attrs.get('bootstrap', 'stimuli')})")
        else:
            ax.fill_between(x, s["ci_low"], s["ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                            label=f"{level} CI (subjects)")
        ax.plot(x, s["score_mean"], color=PALETTE[0], lw=2, marker="o", ms=3, label="subject mean")
        low, high = float(s["ceiling_low"]), float(s["ceiling_high"])
        if np.isfinite(low) and np.isfinite(high):
            ax.axhspan(low, high, color=PALETTE[1], alpha=0.2, lw=0, label="noise ceiling")
        p = p_all.sel(roi=roi).values
        sig = np.isfinite(p) & (p < alpha)
        if sig.any():
            ax.plot(x[sig], np.asarray(s["score_mean"])[sig], ls="none", marker="*", ms=8,
                    color=PALETTE[3], label=sig_label)
        planted = _planted_layer(scores, roi)
        if planted is not None:
            ax.axvline(planted, color=PALETTE[2], ls="--", lw=1.2, label="planted layer")
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(f"ROI: {roi}", fontsize=10)
        if named:
            ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
            ax.set_xlabel("layer")
        else:
            ax.set_xlabel("layer (hidden-state index)")
        ax.grid(alpha=0.2)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(label, fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3 if ncols == 1 else 6),
               frameon=False, fontsize=8)
    fig.suptitle(title or _title(scores, label), fontsize=10 if ncols == 1 else 11, wrap=True)
    fig.tight_layout(rect=(0, 0.16 if ncols == 1 else 0.08, 1, 1))
    save(fig, paths)
    return fig


MEASURE_LABELS = {
    "linear_cka": "linear CKA", "rbf_cka": "RBF CKA", "debiased_cka": "debiased CKA",
    "procrustes": "Procrustes similarity (nuclear norm)", "angular_procrustes": "angular Procrustes distance (rad)",
    "mutual_knn": "mutual k-NN alignment", "rsa": "RSA (Spearman rho)",
}


def plot_model_similarity(sim: xr.Dataset, paths):
    """One heatmap per measure: layers of model A (rows) x layers of model B
    (columns), or ROIs of dataset A x ROIs of dataset B."""
    measures = list(sim["measure"].values.astype(str))
    ncols = min(len(measures), 4)
    nrows = int(np.ceil(len(measures) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.3 * nrows), squeeze=False)
    by_roi = "roi_a" in sim.dims
    if by_roi:
        a, b = sim.attrs.get("dataset_a", "A"), sim.attrs.get("dataset_b", "B")
        xlabel, ylabel, what = f"{b} ROI", f"{a} ROI", "ROI similarity"
    else:
        a, b = sim.attrs.get("model_a", "A"), sim.attrs.get("model_b", "B")
        xlabel, ylabel = f"{b} layer (hidden-state index)", f"{a} layer (hidden-state index)"
        what = "Layer similarity"
    for ax, measure in zip(axes.flat, measures):
        values = sim["similarity"].sel(measure=measure).values
        image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis",
                          extent=(-0.5, values.shape[1] - 0.5, -0.5, values.shape[0] - 0.5))
        ax.set_title(MEASURE_LABELS.get(measure, measure), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if by_roi:
            ax.set_xticks(range(sim.sizes["roi_b"]), sim["roi_b"].values.astype(str), fontsize=7, rotation=45)
            ax.set_yticks(range(sim.sizes["roi_a"]), sim["roi_a"].values.astype(str), fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes.flat[len(measures):]:
        ax.set_visible(False)
    fig.suptitle(f"{what}: {a} x {b}", fontsize=11)
    fig.tight_layout()
    save(fig, paths)
    return fig


def plot_depth_correspondence(sim: xr.Dataset, paths):
    """For each layer of A, the relative depth of the best-matching layer of B."""
    fig, ax = plt.subplots(figsize=(8.0, 4.4))
    depth_a = sim["depth_a"].values
    for k, measure in enumerate(sim["measure"].values.astype(str)):
        # Measures often agree; distinct markers and dashes keep overlapping curves readable.
        ax.plot(depth_a, sim["best_depth_b"].sel(measure=measure), marker="os^vDP*"[k % 7], ms=6 - 0.5 * (k % 4),
                lw=1.5, ls=["-", "--", "-.", ":"][k % 4], color=PALETTE[k % len(PALETTE)], alpha=0.85,
                label=MEASURE_LABELS.get(measure, measure))
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="equal relative depth")
    a, b = sim.attrs.get("model_a", "A"), sim.attrs.get("model_b", "B")
    ax.set_xlabel(f"relative depth of {a} layer (0 = embeddings, 1 = last)")
    ax.set_ylabel(f"relative depth of best-matching {b} layer")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Depth correspondence: {a} -> {b}", fontsize=10)
    ax.grid(alpha=0.2)
    fig.tight_layout(rect=(0, 0, 0.62, 1))
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(0.63, 0.5), frameon=False)
    save(fig, paths)
    return fig


# --------------------------------------------------------------------------- RSA figures
def _layer_depth(scores: xr.Dataset) -> np.ndarray:
    """Relative depth (0..1) of every layer: the ``depth`` coordinate, else evenly spaced."""
    if "depth" in scores.coords:
        return np.asarray(scores["depth"].values, dtype=float)
    n = scores.sizes["layer"]
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(n)


def _depth_colourbar(fig, axes, cmap):
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    return fig.colorbar(mappable, ax=axes, label="relative depth", shrink=0.8)


def _legend_below(fig, axes, skip=()):
    """One figure legend outside the axes (under them), de-duplicated across panels;
    artists labelled with a name in ``skip`` are left out."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and lab not in skip:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False,
                   fontsize=8)


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
    _require(scores, "rdms")
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


def _seed(scores: xr.Dataset) -> int:
    try:
        return int(scores.attrs.get("seed", 0)) % 2**32
    except (TypeError, ValueError):
        return 0


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
    _require(scores, "mds")
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
    embedding = _metric_mds(distances, _seed(scores))
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
    _depth_colourbar(fig, ax, cmap)
    _legend_below(fig, [ax])
    fig.suptitle(title or f"{model} on {scores.attrs.get('dataset', '')}: layer and brain RDMs", fontsize=11)
    save(fig, paths)
    return fig


def _per_time(values, n_time: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.broadcast_to(values, (n_time,)) if values.ndim == 0 else values


def plot_time_curves(scores: xr.Dataset, paths, title: str | None = None):
    """One panel per ROI for time-resolved (MEG/EEG) scores: the subject-mean score of
    every layer over time (coloured by relative depth), the noise-ceiling band where it is
    defined, and a row of marks at times where the best layer's p (FDR-adjusted where
    the file has ``p_fdr``) is below the file's ``alpha``; each mark is coloured by the
    depth of that best layer."""
    _require(scores, "time")
    rois = list(scores["roi"].values.astype(str))
    layers = list(scores["layer"].values.astype(str))
    depth = _layer_depth(scores)
    time_ms = np.asarray(scores["time"].values, dtype=float) * 1000.0
    n_time = time_ms.size
    label = _metric_label(scores)
    p_all, alpha, sig_label = _significance(scores)
    higher = bool(int(scores.attrs.get("higher_is_better", 1)))
    cmap = plt.get_cmap("viridis")
    norm = Normalize(0.0, 1.0)

    mean = scores["score_mean"].transpose("layer", "roi", "time")
    ceiling = {name: scores[name] for name in ("ceiling_low", "ceiling_high") if name in scores}
    shown = [mean.values] + [c.values for c in ceiling.values()]
    finite = np.concatenate([np.ravel(v)[np.isfinite(np.ravel(v))] for v in shown])
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    span = (high - low) or 1.0
    mark_y = low - 0.08 * span

    n = len(rois)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows + 0.7), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, roi in zip(axes.flat, rois):
        curves = mean.sel(roi=roi).values
        for k, layer in enumerate(layers):
            ax.plot(time_ms, curves[k], color=cmap(norm(depth[k])), lw=1.2, label=layer)
        if len(ceiling) == 2:
            c_low = _per_time(ceiling["ceiling_low"].sel(roi=roi).values, n_time)
            c_high = _per_time(ceiling["ceiling_high"].sel(roi=roi).values, n_time)
            ok = np.isfinite(c_low) & np.isfinite(c_high)
            if ok.any():
                ax.fill_between(time_ms, np.where(ok, c_low, np.nan), np.where(ok, c_high, np.nan), where=ok,
                                color=PALETTE[1], alpha=0.25, lw=0, label="noise ceiling")
        defined = np.isfinite(curves).any(axis=0)
        filled = np.where(np.isfinite(curves), curves, -np.inf if higher else np.inf)
        best = filled.argmax(axis=0) if higher else filled.argmin(axis=0)
        p = p_all.sel(roi=roi).transpose("layer", "time").values[best, np.arange(n_time)]
        sig = defined & np.isfinite(p) & (p < alpha)
        if sig.any():
            ax.scatter(time_ms[sig], np.full(sig.sum(), mark_y), c=depth[best[sig]], cmap=cmap, norm=norm,
                       marker="s", s=14, lw=0, label=f"best layer {sig_label} (colour: its depth)")
        if time_ms.min() < 0 < time_ms.max():
            ax.axvline(0, color="0.3", lw=0.6, ls=":")
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(f"ROI: {roi}", fontsize=10)
        ax.set_xlabel("time (ms)")
        ax.grid(alpha=0.2)
    axes.flat[0].set_ylim(low - 0.14 * span, high + 0.06 * span)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(label, fontsize=8)
    _depth_colourbar(fig, list(axes.flat[:n]), cmap)
    _legend_below(fig, axes.flat[:n], skip=set(layers))  # layers: the depth colourbar
    fig.suptitle(title or _title(scores, label), fontsize=11)
    save(fig, paths)
    return fig


def plot_encoding_glass_brain(data: xr.Dataset, paths, threshold: float = 0.1):
    """Best layer per voxel on a glass brain, one row per subject (encoding scores)."""
    from .brainmaps import plot_best_layer_glass_brain

    subjects = list(dict.fromkeys(data["target_subject"].values.astype(str)))
    fig = plt.figure(figsize=(9.0, 3.4 * len(subjects)))
    target_r = data["target_r"].rename(None)
    target_r = target_r.assign_coords(subject=("neuroid", data["target_subject"].values))
    for k, subject in enumerate(subjects):
        ax = fig.add_subplot(len(subjects), 1, k + 1)
        plot_best_layer_glass_brain(
            target_r, subject=subject, axes=ax, threshold=threshold,
            title=f"{data.attrs.get('model', '')} best layer, {subject} (held-out r > {threshold:g})")
    save(fig, paths)
    return fig


def plot_variance_partition(data: xr.Dataset, paths):
    """Per ROI: each band's unique held-out R^2 and the shared part (subject medians as
    bars, subjects as dots)."""
    bands = list(data["band"].values.astype(str))
    rois = list(data["roi"].values.astype(str))
    parts = [(f"unique: {b}", data["roi_unique"].sel(band=b).values) for b in bands]
    parts.append(("shared", data["roi_shared"].values))
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(rois), 3.6))
    width = 0.8 / len(parts)
    colours = PALETTE
    for k, (label, values) in enumerate(parts):  # values: (subject, roi)
        x = np.arange(len(rois)) + (k - (len(parts) - 1) / 2) * width
        ax.bar(x, np.nanmean(values, axis=0), width, label=label, color=colours[k % len(colours)])
        for i in range(values.shape[0]):
            ax.plot(x, values[i], "o", ms=3, color="0.2", zorder=3)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(np.arange(len(rois)), rois)
    ax.set_xlabel("ROI")
    ax.set_ylabel("held-out R² (median over targets)")
    ax.set_title(f"variance partition: {data.attrs.get('name', '')}")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save(fig, paths)
    return fig


# --------------------------------------------------------------------------- dispatch
# figure name -> (variables, dimensions) a file must have for it
def plot_model_depth_curves(summary: xr.Dataset, paths, title: str | None = None):
    """One panel per ROI: every model's subject-mean score against relative depth (0 = input
    side, 1 = output), with its CI band, the noise-ceiling band, and each model's best layer
    marked. An untrained control is drawn dashed in its trained model's colour."""
    rois = list(summary["roi"].values.astype(str))
    models = list(summary["model"].values.astype(str))
    controls = dict(zip(models, summary["control_of"].values.astype(str)))
    trained = [m for m in models if not controls[m]]
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(trained)}
    for m in models:
        colour.setdefault(m, colour.get(controls[m], PALETTE[len(colour) % len(PALETTE)]))
    ncols = min(len(rois), 3)
    nrows = int(np.ceil(len(rois) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(4.2 * ncols, 6.5), 3.4 * nrows + 0.9), sharey=True,
                             squeeze=False)
    label = summary["score_mean"].attrs.get("long_name") or summary.attrs.get("metric", "score")
    level = f"{float(summary.attrs.get('confidence', 0.95)):.0%}"
    for ax, roi in zip(axes.flat, rois):
        s = summary.sel(roi=roi)
        for m in models:
            row = s.sel(model=m)
            ok = np.isfinite(row["score_mean"].values)
            x = row["depth"].values[ok]
            dashed = bool(controls[m])
            ax.fill_between(x, row["ci_low"].values[ok], row["ci_high"].values[ok], color=colour[m],
                            alpha=0.10 if dashed else 0.2, lw=0)
            ax.plot(x, row["score_mean"].values[ok], color=colour[m], lw=1.4 if dashed else 2,
                    ls="--" if dashed else "-", marker="o", ms=2.5, label=m + (" (untrained)" if dashed and
                                                                              "untrained" not in m else ""))
            ax.plot(float(row["best_depth"]), float(row["best_score"]), marker="*", ms=10, color=colour[m],
                    markeredgecolor="k", markeredgewidth=0.5, ls="none")
        low, high = float(s["ceiling_low"]), float(s["ceiling_high"])
        if np.isfinite(low) and np.isfinite(high):
            ax.axhspan(low, high, color="0.5", alpha=0.2, lw=0, label="noise ceiling")
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("relative depth (0 = first captured layer, 1 = last)")
        ax.set_title(f"ROI: {roi}", fontsize=10)
        ax.grid(alpha=0.2)
    for ax in axes.flat[len(rois):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(label, fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], marker="*", ms=10, color="0.4", markeredgecolor="k", ls="none"))
    labels.append("best layer")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), frameon=False, fontsize=8)
    kinds = sorted(set(summary["ci_kind"].values.astype(str)))
    fig.suptitle(title or f"{summary.attrs.get('dataset', '')}: {label} by relative depth "
                          f"(bands: {level} CI, {', '.join(kinds)})", fontsize=10, wrap=True)
    rows_of_legend = int(np.ceil(len(labels) / 3))
    fig.tight_layout(rect=(0, min(0.08 * rows_of_legend, 0.4) / nrows, 1, 1))
    save(fig, paths)
    return fig


FIGURE_NEEDS = {
    "heatmap": (("similarity",), ()),
    "depth": (("similarity", "depth_a", "best_depth_b"), ()),
    "rdms": (("brain_rdm", "best_rdm"), ()),
    "mds": (("rdm_distance", "rdm_label"), ()),
    "time": (("score_mean",), ("time",)),
    "glass_brain": (("target_r", "x", "y", "z"), ()),
    "partition": (("roi_unique", "roi_shared"), ()),
    "models": (("score_mean", "control_of", "best_depth"), ("model", "slot")),
    "table": (("best_score", "best_ci_low", "best_ci_high", "best_layer"), ("model", "roi")),
    "stimuli": (("stimulus_id",), ("stimulus",)),
    "brain_data": (("responses",), ("neuroid",)),
    "surface": (("target_r", "x", "y", "z"), ()),
}
FIGURES = ("auto", *FIGURE_NEEDS)


def _require(data: xr.Dataset, figure: str, source=None):
    """Raise a ValueError naming the first variable or dimension ``figure`` needs that
    ``data`` lacks (and the file, when ``source`` is given)."""
    variables, dims = FIGURE_NEEDS[figure]
    where = f"{source}: " if source else ""
    present = ", ".join(map(str, data.data_vars)) or "none"
    for name in variables:
        if name not in data.variables:
            raise ValueError(f"{where}the {figure!r} figure needs the variable {name!r}, which is missing "
                             f"(variables present: {present})")
    for name in dims:
        if name not in data.dims:
            raise ValueError(f"{where}the {figure!r} figure needs the dimension {name!r}, which is missing "
                             f"(dimensions present: {', '.join(map(str, data.dims))})")


def plot_file(path, out_paths, figure: str = "auto"):
    """Redraw a figure from one NetCDF file and save it to every path in ``out_paths``.

    ``figure``:
      - ``"auto"``: scores files give layer curves, or time curves when they have a
        ``time`` dimension; model- and dataset-similarity files give heatmaps;
      - ``"heatmap"`` / ``"depth"``: similarity heatmaps / depth correspondence
        (model-similarity files);
      - ``"rdms"``: brain RDM next to the best layer's RDM, per ROI (RSA scores);
      - ``"mds"``: second-order MDS of layer and brain RDMs (RSA scores);
      - ``"time"``: score over time per layer (time-resolved scores);
      - ``"glass_brain"``: best layer per voxel on a glass brain (encoding scores);
      - ``"partition"``: unique and shared variance per ROI (banded-encoding files);
      - ``"models"``: every model's curve against relative depth (model-summary files);
      - ``"table"``: best layer per model x ROI with score, CI and ceiling-normalised score
        (model-summary files; a ``.csv`` output path gets the table itself);
      - ``"stimuli"``: category counts and sentence lengths or example images (stimulus files);
      - ``"brain_data"``: reliability and size of each ROI, and where it is (brain-data files);
      - ``"surface"``: encoding maps projected on fsaverage5 (encoding scores of voxel data).

    Raises ValueError naming the file and the missing variable when the file cannot give
    the requested figure. Returns the matplotlib Figure."""
    from .io import read_netcdf

    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; choose one of {', '.join(FIGURES)}")
    data = read_netcdf(path)
    if figure == "auto":
        if "responses" in data:
            figure = "brain_data"
        elif not data.data_vars and "stimulus_id" in data.coords:
            figure = "stimuli"
        elif "similarity" in data:
            figure = "heatmap"
        elif "roi_unique" in data:
            figure = "partition"
        elif "slot" in data.dims:
            figure = "models"
        elif "score" in data:
            figure = "time" if "time" in data.dims else "layers"
        else:
            raise ValueError(f"{path}: not a file brainalign draws (no scores, similarity, summary, stimulus "
                             "or brain-data variables)")
    if figure != "layers":
        _require(data, figure, source=path)
    with styled():
        return _drawer(figure)(data, out_paths)


def _drawer(figure: str):
    """The drawing function of a figure name (imported lazily: nilearn is slow to import)."""
    if figure == "table":
        from .figures.summary_table import plot_summary_table
        return plot_summary_table
    if figure == "stimuli":
        from .figures.stimuli import plot_stimuli
        return plot_stimuli
    if figure == "brain_data":
        from .figures.brain_data import plot_brain_data

        return lambda data, paths: plot_brain_data(data, paths, seed=_seed(data))
    if figure == "surface":
        from .figures.surface import plot_encoding_surface
        return plot_encoding_surface
    return {"layers": plot_layer_curves, "heatmap": plot_model_similarity, "depth": plot_depth_correspondence,
            "rdms": plot_rdm_panels, "mds": plot_rdm_mds, "time": plot_time_curves,
            "glass_brain": plot_encoding_glass_brain, "partition": plot_variance_partition,
            "models": plot_model_depth_curves}[figure]
