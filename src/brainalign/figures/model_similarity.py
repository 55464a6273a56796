"""Model x model (and dataset x dataset) similarity: one heatmap per measure, and the
depth correspondence of layers."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ..metrics.similarity import MEASURE_LABELS
from .style import PALETTE, save


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
