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
        ax.fill_between(x, s["ci_low"], s["ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                        label=f"{float(scores.attrs.get('confidence', 0.95)):.0%} CI")
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
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return fig


def plot_file(scores_path, out_paths):
    """File-level entry point used by the report rules and ``brainalign plot``."""
    from .io import read_netcdf

    return plot_layer_curves(read_netcdf(scores_path), out_paths)
