"""Encoding maps on a glass brain: the best layer per voxel, one row per subject."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

from ..volumes import (_check_target_r, _layer_indices, _resolve_grid, _subject_part, _subjects, _with_dataset_grid,
                       best_layer, values_to_nifti)
from .style import save


def plot_best_layer_glass_brain(target_r: xr.DataArray, subject=None, *, value: str = "layer_index",
                                threshold: float = 0.0, affine=None, resolution: int | None = None,
                                figure=None, axes=None, figsize: Sequence[float] = (9.0, 3.4),
                                display_mode: str = "ortho", cmap: str = "viridis", title: str | None = None,
                                max_labels: int = 12):
    """Glass-brain figure of the best layer per voxel; returns the matplotlib Figure.

    ``value`` is ``"layer_index"`` (one discrete colour per layer, in layer order) or
    ``"depth"`` (the layers' relative depth on a continuous scale); the colour bar is
    labelled with the layers' indices and names. Only voxels whose highest r (over
    layers) exceeds ``threshold`` are drawn. nilearn's glass brain is a maximum-intensity
    projection, so where several shown voxels lie on one line of sight the deepest of
    their best layers is the one seen.

    The voxel grid is ``affine`` if given, else the data's own grid stored with ``target_r``
    (attributes ``affine`` and ``grid_shape`` of ``target_r`` or of its ``x``, ``y``, ``z``),
    else nilearn's MNI152 template at ``resolution`` mm (inferred when omitted).

    ``subject`` selects one subject's neuroids; it may be omitted when there is one.
    ``figure`` (a Figure) or ``axes`` (an Axes to draw into) place the plot; otherwise a
    new ``figsize`` figure is made. Works headless (Agg).
    """
    _check_target_r(target_r)
    if value not in ("layer_index", "depth"):
        raise ValueError(f"value must be 'layer_index' or 'depth', got {value!r}")
    target_r = target_r.transpose("layer", "neuroid")
    aff, shape = _resolve_grid(target_r, affine)  # the data's own grid if stored, else MNI152 (aff None)
    if "subject" in target_r.coords:
        subjects = _subjects(target_r)
        if subject is None:
            if len(subjects) != 1:
                raise ValueError(f"target_r holds {len(subjects)} subjects {subjects}; choose one with subject=...")
            subject = subjects[0]
        elif subject not in subjects:
            raise ValueError(f"subject {subject!r} not in target_r (has {subjects})")
        part = _subject_part(target_r, subject)
    else:
        part = target_r
    n_layers = part.sizes["layer"]
    names = [str(v) for v in part["layer"].values]
    indices = _layer_indices(part)
    pos, best = best_layer(part)
    shown = (pos >= 0) & (best > threshold)

    # Plotted values are >= 1 where shown and the image is 0 elsewhere, so nilearn's threshold
    # (0.5) hides exactly the unshown voxels, whatever the layer values are.
    base_cmap = plt.get_cmap(cmap)
    if value == "layer_index":
        plotted = pos + 1.0
        colours = base_cmap(np.linspace(0.0, 1.0, n_layers)) if n_layers > 1 else base_cmap([0.5])
        cmap_obj = ListedColormap(colours, name=f"{cmap}_layers")
        vmin, vmax = 0.5, n_layers + 0.5
        norm = BoundaryNorm(np.arange(n_layers + 1) + 0.5, n_layers)
        tick_values = np.arange(1, n_layers + 1, dtype=float)
        cbar_label = "best layer (layer_index: name)"
    else:
        if "depth" not in part.coords or part["depth"].ndim != 1:
            raise ValueError("value='depth' needs a 'depth' coordinate along 'layer'")
        depth = np.asarray(part["depth"].values, dtype=np.float64)
        lo, hi = float(np.nanmin(depth)), float(np.nanmax(depth))
        plotted = depth[np.maximum(pos, 0)] - lo + 1.0
        cmap_obj = base_cmap
        vmin, vmax = 1.0, 1.0 + max(hi - lo, 1e-9)
        norm = Normalize(vmin=lo, vmax=lo + (vmax - vmin))
        tick_values = depth
        cbar_label = "depth of best layer (layer_index: name)"
    plotted = np.where(shown, plotted, 0.0)

    img = values_to_nifti(plotted, part["x"].values, part["y"].values, part["z"].values, affine=aff,
                          resolution=resolution, shape=shape, fill=0.0)

    if axes is not None:
        fig = axes.figure
        main_ax = axes
        bbox = axes.get_position()
        cax = fig.add_axes([bbox.x1 - 0.015 * bbox.width, bbox.y0 + 0.12 * bbox.height,
                            0.015 * bbox.width, 0.7 * bbox.height])
        main_ax.set_position([bbox.x0, bbox.y0, bbox.width * 0.9, bbox.height * 0.88])
    else:
        fig = figure if figure is not None else plt.figure(figsize=tuple(figsize))
        main_ax = fig.add_axes([0.0, 0.0, 0.86, 0.86])
        cax = fig.add_axes([0.89, 0.1, 0.018, 0.68])

    from nilearn import plotting

    with warnings.catch_warnings():
        if not shown.any():  # an empty glass brain is a legitimate result, not a problem
            warnings.filterwarnings("ignore", message="empty mask", category=UserWarning)
        plotting.plot_glass_brain(
            img, display_mode=display_mode, colorbar=False, figure=fig, axes=main_ax, threshold=0.5,
            cmap=cmap_obj, vmin=vmin, vmax=vmax, plot_abs=False, symmetric_cbar=False,
            resampling_interpolation="nearest", alpha=0.7, annotate=True)

    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap_obj), cax=cax)
    step = max(1, math.ceil(n_layers / max_labels))
    keep = list(range(0, n_layers, step))
    if keep[-1] != n_layers - 1:
        keep.append(n_layers - 1)
    cbar.set_ticks([tick_values[k] for k in keep])
    cbar.set_ticklabels([f"{indices[k]:g}: {names[k]}" if names[k] != f"{indices[k]:g}" else names[k]
                         for k in keep])
    cbar.ax.tick_params(labelsize=7)
    cbar.set_label(cbar_label, fontsize=8)

    if title is None:
        metric = part.attrs.get("long_name") or part.name or "held-out r"
        model = part.attrs.get("model")
        who = f"{subject}" if subject is not None else ""
        head = ", ".join(v for v in (str(model) if model else "", who) if v)
        what = "best layer" if value == "layer_index" else "depth of best layer"
        title = (f"{head + ': ' if head else ''}{what} per voxel (argmax of {metric}); "
                 f"{int(shown.sum())}/{len(shown)} voxels with max {metric} > {threshold:g}")
    if axes is not None:
        main_ax.set_title(title, fontsize=9)
        main_ax.title.set_visible(True)
    else:
        fig.suptitle(title, fontsize=10, y=0.97)
    return fig


def plot_encoding_glass_brain(data: xr.Dataset, paths, threshold: float = 0.1):
    """Best layer per voxel on a glass brain, one row per subject (encoding scores)."""
    subjects = list(dict.fromkeys(data["target_subject"].values.astype(str)))
    fig = plt.figure(figsize=(9.0, 3.4 * len(subjects)))
    target_r = data["target_r"].rename(None)
    target_r = target_r.assign_coords(subject=("neuroid", data["target_subject"].values))
    target_r = _with_dataset_grid(target_r, data)
    for k, subject in enumerate(subjects):
        ax = fig.add_subplot(len(subjects), 1, k + 1)
        plot_best_layer_glass_brain(
            target_r, subject=subject, axes=ax, threshold=threshold,
            title=f"{data.attrs.get('model', '')} best layer, {subject} (held-out r > {threshold:g})")
    save(fig, paths)
    return fig
