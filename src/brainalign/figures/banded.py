"""Variance partition of a banded encoding: unique and shared held-out R^2 per ROI."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import PALETTE, save


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
