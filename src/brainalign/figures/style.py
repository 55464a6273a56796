"""The one figure style of brainalign: a colour-blind-safe palette, readable type, and saving.

* :data:`PALETTE`: Okabe & Ito (2008), safe for the common colour-vision deficiencies;
  categorical series (models, ROIs, categories) take colours from it in order.
* :data:`SEQUENTIAL`: ``viridis`` (perceptually uniform, colour-blind safe) for ordered
  values such as relative depth or RDM percentiles; :data:`DIVERGING` for signed maps.
* :data:`RC`: matplotlib settings applied to every figure through :func:`styled`.
* :func:`save`: writes a figure to every requested path (PNG at 150 dpi, SVG/PDF as vectors)
  and closes it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
DPI = 150
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "image.cmap": SEQUENTIAL,
    "svg.fonttype": "none",  # text stays text in SVG (editable in Illustrator/Inkscape)
    "pdf.fonttype": 42,  # TrueType in PDF, as journals ask
    "savefig.bbox": "tight",
}


def colour(k: int) -> str:
    """The k-th categorical colour (the palette repeats after eight)."""
    return PALETTE[k % len(PALETTE)]


@contextlib.contextmanager
def styled():
    """Draw inside this context to get brainalign's style (restored afterwards)."""
    with matplotlib.rc_context(RC):
        yield


def save(fig, paths) -> None:
    """Write ``fig`` to every path in ``paths`` (one path or several; the suffix picks the
    format), creating parent folders, then close it."""
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    plt.close(fig)


# --------------------------------------------------------------------------- shared by several figures
def layer_depth(scores: xr.Dataset) -> np.ndarray:
    """Relative depth (0..1) of every layer: the ``depth`` coordinate, else evenly spaced."""
    if "depth" in scores.coords:
        return np.asarray(scores["depth"].values, dtype=float)
    n = scores.sizes["layer"]
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(n)


def depth_colourbar(fig, axes, cmap):
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    return fig.colorbar(mappable, ax=axes, label="relative depth", shrink=0.8)


def legend_below(fig, axes, skip=()):
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


def figure_seed(scores: xr.Dataset) -> int:
    try:
        return int(scores.attrs.get("seed", 0)) % 2**32
    except (TypeError, ValueError):
        return 0
