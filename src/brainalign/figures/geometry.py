"""Geometry per layer: every measure against relative depth, every model on one figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import PALETTE, save

LOG_MEASURES = ("massive_activation",)


def plot_geometry(data: xr.Dataset, paths):
    """One panel per measure: each model's value per layer against relative depth, with its
    subsampling interval as a band (from a collected geometry file)."""
    measures = list(data["measure"].values.astype(str))
    models = list(data["model"].values.astype(str))
    ncols = min(len(measures), 4)
    nrows = int(np.ceil(len(measures) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows + 0.8), squeeze=False)
    for ax, measure in zip(axes.flat, measures):
        for i, model in enumerate(models):
            row = data.sel(model=model, measure=measure)
            depth = data["depth"].sel(model=model).values
            ok = np.isfinite(row["value"].values) & np.isfinite(depth)
            colour = PALETTE[i % len(PALETTE)]
            ax.fill_between(depth[ok], row["ci_low"].values[ok], row["ci_high"].values[ok], color=colour, alpha=0.2,
                            lw=0)
            ax.plot(depth[ok], row["value"].values[ok], color=colour, marker="o", ms=2.5, lw=1.6, label=model)
        if measure in LOG_MEASURES:
            ax.set_yscale("log")
        description = str(data["description"].sel(measure=measure).values)
        ax.set_title(description, fontsize=8, wrap=True)
        ax.set_xlabel("relative depth", fontsize=8)
        ax.set_xlim(-0.03, 1.03)
        ax.grid(alpha=0.2)
    for ax in axes.flat[len(measures):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False, fontsize=8)
    level = f"{float(data.attrs.get('confidence', 0.95)):.0%}"
    fig.suptitle(f"{data.attrs.get('stimuli', '')}: representational geometry per layer "
                 f"({data.attrs.get('n_stimuli', '?')} stimuli; bands: {level} subsampling intervals)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save(fig, paths)
    return fig
