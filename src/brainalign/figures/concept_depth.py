"""Concept depth: every model's probe curve, normalised, against relative depth, from a model-summary
file of the ``probe`` metric; and the table of concept depths per model and label set."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from .style import PALETTE, save


def concept_depth_table(summary: xr.Dataset) -> pd.DataFrame:
    """One row per model x label set: concept depth with its interval, the layer, the best score and chance."""
    rows = []
    for model in summary["model"].values.astype(str):
        for roi in summary["roi"].values.astype(str):
            s = summary.sel(model=model, roi=roi)
            rows.append({"model": model, "label_set": roi,
                         "concept_depth": float(s["concept_depth"]),
                         "ci_low": float(s["concept_depth_ci_low"]), "ci_high": float(s["concept_depth_ci_high"]),
                         "concept_layer": str(s["concept_layer"].values),
                         "best_layer": str(s["best_layer"].values), "best_score": float(s["best_score"]),
                         "chance": float(s["best_null_mean"]) if "best_null_mean" in s else np.nan})
    return pd.DataFrame(rows)


def normalised_curves(summary: xr.Dataset, baseline: str = "chance") -> xr.DataArray:
    """(model, slot, roi) scores as (score - chance) / (best - chance): 1 at each model's best layer."""
    chance = summary["null_mean"].fillna(0.0) if baseline == "chance" and "null_mean" in summary else 0.0
    gain = summary["score_mean"] - chance
    return gain / gain.max("slot")


def plot_concept_depth(summary: xr.Dataset, paths):
    """One panel per label set: each model's normalised probe curve against relative depth, the
    threshold of the concept depth, and each model's concept depth with its bootstrap interval."""
    rois = list(summary["roi"].values.astype(str))
    models = list(summary["model"].values.astype(str))
    fraction = float(summary.attrs.get("depth_fraction", 0.9))
    baseline = str(summary.attrs.get("depth_baseline", "chance"))
    curves = normalised_curves(summary, baseline)
    ncols = min(len(rois), 3)
    nrows = int(np.ceil(len(rois) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(4.2 * ncols, 6.5), 3.3 * nrows + 0.9), squeeze=False,
                             sharey=True)
    for ax, roi in zip(axes.flat, rois):
        for i, model in enumerate(models):
            colour = PALETTE[i % len(PALETTE)]
            row = curves.sel(model=model, roi=roi)
            depth = summary["depth"].sel(model=model).values
            ok = np.isfinite(row.values) & np.isfinite(depth)
            ax.plot(depth[ok], row.values[ok], color=colour, lw=1.8, marker="o", ms=2.5, label=model)
            s = summary.sel(model=model, roi=roi)
            d, lo, hi = (float(s[k]) for k in ("concept_depth", "concept_depth_ci_low", "concept_depth_ci_high"))
            if np.isfinite(d):
                y = -0.08 - 0.06 * i
                ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]] if np.isfinite(lo) else None, color=colour,
                            marker="v", ms=6, capsize=3, lw=1.2)
        ax.axhline(fraction, color="0.3", lw=0.8, ls=":", label=f"{fraction:.0%} of best")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_xlim(-0.03, 1.03)
        ax.set_title(f"label set: {roi}", fontsize=10)
        ax.set_xlabel("relative depth (0 = first captured layer, 1 = last)")
        ax.grid(alpha=0.2)
    for ax in axes.flat[len(rois):]:
        ax.set_visible(False)
    above = "above chance" if baseline == "chance" else "above zero"
    for ax in axes[:, 0]:
        ax.set_ylabel(f"score {above} / best layer's", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], marker="v", color="0.4", ls="none"))
    labels.append("concept depth (bootstrap interval)")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), frameon=False, fontsize=8)
    fig.suptitle(f"{summary.attrs.get('dataset', '')}: concept depth, the first layer at {fraction:.0%} of the "
                 f"best probe score ({above}; chosen in-sample)", fontsize=10, wrap=True)
    fig.tight_layout(rect=(0, min(0.08 * int(np.ceil(len(labels) / 3)), 0.4) / nrows, 1, 1))
    csv = [p for p in paths if str(p).endswith(".csv")]
    save(fig, [p for p in paths if not str(p).endswith(".csv")])
    for path in csv:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        concept_depth_table(summary).to_csv(path, index=False, float_format="%.4g")
    return fig
