"""Figures drawn from score NetCDF files alone (no workflow state needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

# Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
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


def plot_layer_curves(scores: xr.Dataset, paths, title: str | None = None):
    """One panel per ROI: score against layer, subject lines (spread), the
    subject mean with its CI band, the noise-ceiling band where defined, marks
    at layers whose permutation p < 0.05, and the planted layer of simulated data."""
    rois = list(scores["roi"].values.astype(str))
    n = len(rois)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), sharey=True, squeeze=False)
    x = scores["layer_index"].values
    label = scores["score"].attrs.get("long_name", scores.attrs.get("metric", "score"))
    for ax, roi in zip(axes.flat, rois):
        s = scores.sel(roi=roi)
        for k, subject in enumerate(s["subject"].values):
            ax.plot(x, s["score"].sel(subject=subject), color="0.6", lw=0.8, alpha=0.8,
                    label="subjects" if k == 0 else None)
        level = f"{float(scores.attrs.get('confidence', 0.95)):.0%}"
        if "boot_ci_low" in s and np.isfinite(s["boot_ci_low"].values).all():
            ax.fill_between(x, s["boot_ci_low"], s["boot_ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                            label=f"{level} bootstrap CI (stimuli)")
        else:
            ax.fill_between(x, s["ci_low"], s["ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                            label=f"{level} CI (subjects)")
        ax.plot(x, s["score_mean"], color=PALETTE[0], lw=2, marker="o", ms=3, label="subject mean")
        low, high = float(s["ceiling_low"]), float(s["ceiling_high"])
        if np.isfinite(low) and np.isfinite(high):
            ax.axhspan(low, high, color=PALETTE[1], alpha=0.2, lw=0, label="noise ceiling")
        p = s["p_value"].values
        sig = np.isfinite(p) & (p < ALPHA_SIGNIFICANT)
        if sig.any():
            ax.plot(x[sig], np.asarray(s["score_mean"])[sig], ls="none", marker="*", ms=8,
                    color=PALETTE[3], label=f"p < {ALPHA_SIGNIFICANT}")
        planted = _planted_layer(scores, roi)
        if planted is not None:
            ax.axvline(planted, color=PALETTE[2], ls="--", lw=1.2, label="planted layer")
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(f"ROI: {roi}", fontsize=10)
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
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False, fontsize=8)
    fig.suptitle(title or f"{scores.attrs.get('model', '')} on {scores.attrs.get('dataset', '')}: {label}",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    _save(fig, paths)
    return fig


MEASURE_LABELS = {
    "linear_cka": "linear CKA", "rbf_cka": "RBF CKA", "debiased_cka": "debiased CKA",
    "procrustes": "Procrustes similarity (nuclear norm)", "angular_procrustes": "angular Procrustes distance (rad)",
    "mutual_knn": "mutual k-NN alignment", "rsa": "RSA (Spearman rho)",
}


def _save(fig, paths):
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    plt.close(fig)


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
    _save(fig, paths)
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
    _save(fig, paths)
    return fig


def plot_file(path, out_paths, figure: str = "auto"):
    """Redraw a figure from one NetCDF file: layer curves for scores files,
    heatmaps (``figure="heatmap"``) or the depth correspondence (``"depth"``)
    for model-similarity files."""
    from .io import read_netcdf

    data = read_netcdf(path)
    if "similarity" in data:
        if figure == "depth" and "layer_a" in data.dims:
            return plot_depth_correspondence(data, out_paths)
        return plot_model_similarity(data, out_paths)
    if "score" in data:
        return plot_layer_curves(data, out_paths)
    raise ValueError(f"{path}: neither a scores file nor a model-similarity file")
