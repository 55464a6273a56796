"""Every model's scores against relative depth, from a model-summary file."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import PALETTE, save


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
