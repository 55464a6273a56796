"""Voxel-wise score maps: per-voxel encoding results as NIfTI images and glass-brain figures.

Brain responses carry, along their ``neuroid`` dimension, the coordinates
``subject``, ``roi`` and ``x``, ``y``, ``z`` (millimetres; their ``space`` attribute
names the space, e.g. ``"MNI152"``). This module puts per-neuroid values back on a
voxel grid:

* :func:`voxel_grid` maps mm coordinates to integer voxel indices, either through a
  dataset's own 4x4 affine or, when there is none, through nilearn's bundled MNI152
  template at a resolution inferred from the coordinate spacing;
* :func:`values_to_nifti` builds a float32 3D/4D :class:`nibabel.Nifti1Image`;
* :func:`write_score_maps` writes, per subject, a 4D map of held-out r per layer, the
  best layer per voxel and the best r per voxel (atomically, all or nothing);
* :func:`plot_best_layer_glass_brain` draws the best layer per voxel on a glass brain.

Voxels that were not measured are **NaN** in every image this module writes. 0 would
be ambiguous: r = 0 is a real result and layer_index 0 (the embedding layer) is a real
best layer. Viewers that dislike NaN can use ``np.nan_to_num``; the glass-brain figure
builds its own 0-background image internally (nilearn's projections do not ignore NaN),
so the NaN convention never reaches nilearn's plotting code.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize  # noqa: E402

from brainalign.io import atomic_path  # noqa: E402

__all__ = [
    "VoxelGrid", "infer_resolution", "mni152_grid", "voxel_grid", "values_to_nifti",
    "best_layer", "write_score_maps", "plot_best_layer_glass_brain",
]

#: Coordinates may be this far (in voxels) from a voxel centre and still count as on the grid.
GRID_TOLERANCE = 1e-3
#: Resolution (mm) used when the coordinate spacing cannot be inferred (e.g. a single voxel).
DEFAULT_RESOLUTION = 2
_NIFTI_SUFFIX = ".nii.gz"


class VoxelGrid(NamedTuple):
    """Integer voxel indices ``ijk`` (n, 3) of n coordinates on a grid ``affine`` (4x4) and
    ``shape`` (3,)."""

    ijk: np.ndarray
    affine: np.ndarray
    shape: tuple[int, int, int]


# --------------------------------------------------------------------------- grids
def infer_resolution(x, y, z) -> int:
    """The grid spacing in mm of coordinates: the smallest nonzero difference between unique
    coordinate values along any axis (differences under 0.01 mm count as equal values),
    rounded to whole mm (nilearn's MNI152 templates
    exist at integer resolutions only). Falls back to :data:`DEFAULT_RESOLUTION` when there
    is no nonzero difference (a single voxel, or one per axis value).

    Raises ValueError when the spacing is not (close to) a whole number of mm, e.g.
    continuous coordinates or a 1.5 mm grid: no MNI152 template grid fits those, the
    dataset's own affine is needed.
    """
    diffs = []
    for name, c in zip("xyz", (x, y, z)):
        u = np.unique(np.round(np.asarray(c, dtype=np.float64), 6))
        if not np.all(np.isfinite(u)):
            raise ValueError(f"coordinate {name} has non-finite values; every neuroid needs an x, y, z in mm")
        d = np.diff(u)
        d = d[d > 0.01]  # below that: float noise around one voxel centre, not a spacing
        if d.size:
            diffs.append(d.min())
    if not diffs:
        return DEFAULT_RESOLUTION
    spacing = float(min(diffs))
    res = int(round(spacing))
    if res < 1 or abs(spacing - res) > 0.01:
        raise ValueError(
            f"coordinates are spaced by {spacing:.4g} mm, not a whole number of mm, so they do not lie on "
            "any MNI152 template grid (nilearn has integer resolutions only); pass the dataset's 4x4 voxel-to-mm "
            "affine (affine=...) or snap the coordinates to a voxel grid first")
    return res


@functools.lru_cache(maxsize=8)
def _mni152(resolution: int) -> tuple[tuple[tuple[float, ...], ...], tuple[int, int, int]]:
    from nilearn import datasets

    img = datasets.load_mni152_template(resolution=int(resolution))
    return tuple(map(tuple, np.asarray(img.affine, dtype=np.float64))), tuple(int(s) for s in img.shape[:3])


def mni152_grid(resolution: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(affine, shape) of nilearn's MNI152 template at ``resolution`` mm (bundled, offline)."""
    if int(resolution) != resolution or resolution < 1:
        raise ValueError(f"MNI152 template resolution must be a positive whole number of mm, got {resolution!r}")
    affine, shape = _mni152(int(resolution))
    return np.array(affine), shape


def _as_affine(affine) -> np.ndarray:
    """A 4x4 float affine from an array, a flat sequence of 16 numbers or a JSON string of either
    (NetCDF attributes cannot hold 2D arrays, so adapters may store it flattened or as JSON)."""
    if isinstance(affine, (str, bytes)):
        affine = json.loads(affine)
    a = np.asarray(affine, dtype=np.float64)
    if a.size == 16:
        a = a.reshape(4, 4)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"affine must be a finite 4x4 voxel-to-mm matrix, got shape {np.asarray(affine).shape}")
    if not np.allclose(a[3], [0, 0, 0, 1]):
        raise ValueError(f"affine's last row must be [0, 0, 0, 1], got {a[3].tolist()}")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError("affine is singular: it does not map voxels to a 3D volume")
    return a


def voxel_grid(x, y, z, affine=None, resolution: int | None = None, shape=None) -> VoxelGrid:
    """Integer voxel indices of mm coordinates ``x``, ``y``, ``z`` (each of length n).

    With ``affine`` (4x4 voxel-to-mm, e.g. stored by a NIfTI adapter as a dataset
    attribute; a flat 16-list or a JSON string also work) the indices are
    ``inv(affine) @ [x, y, z, 1]``; the volume's ``shape`` is the given one or, if
    omitted, just large enough to hold every voxel. Without an affine, the grid is
    nilearn's MNI152 template (its affine and shape) at ``resolution`` mm, by default
    inferred from the coordinate spacing (:func:`infer_resolution`).

    Raises ValueError naming the problem if coordinates are not on the grid (more than
    :data:`GRID_TOLERANCE` voxel from a voxel centre) or fall outside the volume.
    Returns a :class:`VoxelGrid` ``(ijk, affine, shape)``.
    """
    if not (np.size(x) == np.size(y) == np.size(z)):
        raise ValueError(f"x, y, z differ in length ({np.size(x)}, {np.size(y)}, {np.size(z)})")
    xyz = np.column_stack([np.asarray(c, dtype=np.float64).ravel() for c in (x, y, z)])
    if not np.all(np.isfinite(xyz)):
        raise ValueError("coordinates contain NaN or inf; every neuroid needs a finite x, y, z in mm")
    if affine is not None:
        aff = _as_affine(affine)
        grid_name = "the given affine's grid"
    else:
        res = infer_resolution(*xyz.T) if resolution is None else resolution
        aff, tshape = mni152_grid(res)
        shape = tshape if shape is None else shape
        grid_name = f"nilearn's MNI152 {int(res)} mm template grid"
    fractional = (np.linalg.inv(aff) @ np.column_stack([xyz, np.ones(len(xyz))]).T).T[:, :3]
    ijk = np.rint(fractional)
    off = np.abs(fractional - ijk).max(axis=1) > GRID_TOLERANCE
    if off.any():
        k = int(np.argmax(off))
        raise ValueError(
            f"{int(off.sum())} of {len(xyz)} coordinates are off {grid_name} (more than {GRID_TOLERANCE:g} voxel "
            f"from a voxel centre), e.g. ({xyz[k, 0]:g}, {xyz[k, 1]:g}, {xyz[k, 2]:g}) mm falls at voxel "
            f"({fractional[k, 0]:.3f}, {fractional[k, 1]:.3f}, {fractional[k, 2]:.3f}); grid: voxel size "
            f"{_fmt(np.linalg.norm(aff[:3, :3], axis=0))} mm, voxel (0, 0, 0) at {_fmt(aff[:3, 3])} mm. "
            "Pass the dataset's own affine "
            "(affine=...) or resolution=..., or snap the coordinates to voxel centres first")
    ijk = ijk.astype(np.int64)
    if shape is None:
        shape = tuple(int(s) for s in (ijk.max(axis=0) + 1)) if len(ijk) else (1, 1, 1)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"shape must have 3 entries, got {shape}")
    outside = np.any((ijk < 0) | (ijk >= np.asarray(shape)), axis=1)
    if outside.any():
        k = int(np.argmax(outside))
        raise ValueError(
            f"{int(outside.sum())} of {len(xyz)} coordinates fall outside the {shape} volume of {grid_name}, "
            f"e.g. ({xyz[k, 0]:g}, {xyz[k, 1]:g}, {xyz[k, 2]:g}) mm at voxel {tuple(int(v) for v in ijk[k])}; "
            "are the coordinates in mm and in the grid's space?")
    return VoxelGrid(ijk, aff, shape)


def _fmt(v) -> str:
    return "(" + ", ".join(f"{float(a):g}" for a in v) + ")"


# --------------------------------------------------------------------------- images
def values_to_nifti(values, x, y, z, affine=None, resolution: int | None = None, shape=None,
                    fill: float = np.nan) -> nib.Nifti1Image:
    """A float32 NIfTI image holding ``values`` at the voxels of coordinates ``x, y, z`` (mm).

    ``values`` is ``(neuroid,)`` for a 3D image or ``(n_volumes, neuroid)`` for a 4D one
    (volume k = row k). The grid is that of :func:`voxel_grid` (the given ``affine``,
    else nilearn's MNI152 template at ``resolution`` mm, inferred when omitted). Voxels
    without a coordinate hold ``fill``: NaN by default, since 0 is a legitimate value
    for r and for a layer index (see the module docstring).

    Two neuroids at the same voxel (e.g. two subjects in a common space) are an error:
    split by subject first (:func:`write_score_maps` does).
    """
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim not in (1, 2):
        raise ValueError(f"values must be (neuroid,) or (n_volumes, neuroid), got shape {vals.shape}")
    n = np.ravel(x).size
    if vals.shape[-1] != n:
        raise ValueError(f"values have {vals.shape[-1]} neuroids along their last axis but there are {n} coordinates")
    grid = voxel_grid(x, y, z, affine=affine, resolution=resolution, shape=shape)
    _check_unique(grid.ijk, x, y, z)
    nvol = 1 if vals.ndim == 1 else vals.shape[0]
    data = np.full((*grid.shape, nvol), fill, dtype=np.float32)
    i, j, k = grid.ijk.T
    data[i, j, k, :] = np.atleast_2d(vals).T.astype(np.float32)
    if vals.ndim == 1:
        data = data[..., 0]
    img = nib.Nifti1Image(data, grid.affine)
    code = "mni" if affine is None else "aligned"
    img.header.set_sform(grid.affine, code=code)
    img.header.set_qform(grid.affine, code=code)
    img.header.set_xyzt_units(xyz="mm")
    img.header.set_data_dtype(np.float32)
    return img


def _check_unique(ijk: np.ndarray, x, y, z) -> None:
    _, first, counts = np.unique(ijk, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = first[counts > 1]
        k = int(dup[0])
        xs, ys, zs = (np.ravel(c) for c in (x, y, z))
        raise ValueError(
            f"{int((counts > 1).sum())} voxels hold more than one neuroid (duplicate coordinates), e.g. "
            f"({xs[k]:g}, {ys[k]:g}, {zs[k]:g}) mm appears {int(counts[counts > 1][0])} times; a NIfTI voxel holds "
            "one value: split the neuroids by subject first (write_score_maps writes one image per subject)")


# --------------------------------------------------------------------------- score maps
def best_layer(target_r: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """(position along ``layer`` of the highest r, that highest r) per neuroid.

    Ties go to the earlier layer (``argmax``); NaN r are ignored; a neuroid whose r is
    NaN in every layer gets position -1 and r NaN."""
    r = target_r.transpose("layer", "neuroid").values.astype(np.float64)
    valid = ~np.all(np.isnan(r), axis=0)
    pos = np.full(r.shape[1], -1, dtype=np.int64)
    best = np.full(r.shape[1], np.nan)
    if valid.any():
        rv = np.where(np.isnan(r[:, valid]), -np.inf, r[:, valid])
        pos[valid] = np.argmax(rv, axis=0)
        best[valid] = rv[pos[valid], np.arange(valid.sum())]
    return pos, best


def _check_target_r(target_r: xr.DataArray) -> None:
    if not isinstance(target_r, xr.DataArray):
        raise TypeError(f"target_r must be an xarray DataArray (layer, neuroid), got {type(target_r).__name__}")
    if set(target_r.dims) != {"layer", "neuroid"}:
        raise ValueError(f"target_r must have exactly the dims (layer, neuroid), got {target_r.dims}")
    missing = [c for c in ("x", "y", "z") if c not in target_r.coords]
    if missing:
        raise ValueError(f"target_r lacks the neuroid coordinate(s) {missing} (mm) needed to place voxels")


def _resolve_affine(target_r: xr.DataArray, affine):
    """The explicit affine, else one stored in ``target_r.attrs['affine']``, else None (MNI152
    template). Without an affine, coordinates whose ``space`` attribute names a non-MNI space
    are refused: the MNI152 grid would silently misplace them."""
    if affine is None:
        affine = target_r.attrs.get("affine")
    if affine is not None:
        return _as_affine(affine)
    for c in ("x", "y", "z"):
        space = str(target_r[c].attrs.get("space", "MNI152"))
        if not space.upper().startswith("MNI"):
            raise ValueError(f"coordinate {c} is in space '{space}', not MNI152, and no affine was given "
                             "(affine=... or target_r.attrs['affine']); the MNI152 template grid does not apply")
    return None


def _subjects(target_r: xr.DataArray) -> list:
    if "subject" not in target_r.coords:
        raise ValueError("target_r lacks the neuroid coordinate 'subject'; maps are written per subject")
    s = target_r["subject"]
    if s.ndim == 0:
        return [s.item()]
    return list(dict.fromkeys(s.values.tolist()))


def _subject_part(target_r: xr.DataArray, subject) -> xr.DataArray:
    s = target_r["subject"]
    if s.ndim == 0:
        return target_r
    return target_r.isel(neuroid=np.flatnonzero(s.values == subject))


def _subject_label(subject) -> str:
    """A BIDS-style label: an existing ``sub-`` prefix is dropped (``"sub-01"`` -> ``"01"``) and
    characters other than letters and digits are removed."""
    label = str(subject)
    label = label[4:] if label.startswith("sub-") else label
    label = re.sub(r"[^A-Za-z0-9]", "", label)
    if not label:
        raise ValueError(f"subject {subject!r} gives an empty file-name label")
    return label


def _layer_table(target_r: xr.DataArray) -> list[dict]:
    rows = []
    for k in range(target_r.sizes["layer"]):
        row = {"volume": k, "layer": str(target_r["layer"].values[k])}
        for c in ("layer_index", "depth"):
            if c in target_r.coords and target_r[c].ndim == 1:
                v = target_r[c].values[k]
                row[c] = v.item() if hasattr(v, "item") else v
        rows.append(row)
    return rows


def _layer_indices(target_r: xr.DataArray) -> np.ndarray:
    if "layer_index" in target_r.coords and target_r["layer_index"].ndim == 1:
        return np.asarray(target_r["layer_index"].values, dtype=np.float64)
    return np.arange(target_r.sizes["layer"], dtype=np.float64)


def _nifti_bytes(img: nib.Nifti1Image) -> bytes:
    # mtime=0: identical inputs give byte-identical files.
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def write_score_maps(target_r: xr.DataArray, out_dir, prefix: str, affine=None,
                     resolution: int | None = None) -> list[Path]:
    """Write per-subject NIfTI maps of voxel-wise held-out r; return the written paths.

    For each subject (in order of first appearance; an existing ``sub-`` prefix of the
    subject label is not repeated), in ``out_dir``:

    * ``{prefix}_sub-{subject}_r.nii.gz`` -- 4D, volume k = layer k of ``target_r``
      (layer order as given), value = r;
    * ``{prefix}_sub-{subject}_bestlayer.nii.gz`` -- 3D, value = ``layer_index`` of the
      layer with the highest r (ties: the earlier layer);
    * ``{prefix}_sub-{subject}_maxr.nii.gz`` -- 3D, value = that highest r;
    * a JSON sidecar beside each image (same name, ``.json``) describing the values and
      mapping volumes / layer_index values to layer names.

    Images are float32, NaN outside the subject's measured voxels. The grid is
    ``affine`` if given, else ``target_r.attrs['affine']``, else nilearn's MNI152
    template (``resolution`` mm, inferred from the spacing when omitted).

    All images are built (and every subject's coordinates validated) before anything is
    written; each file goes to a temporary name in ``out_dir`` and is renamed into
    place only once every file has been written, so an error leaves no output and no
    temporary file behind.
    """
    _check_target_r(target_r)
    target_r = target_r.transpose("layer", "neuroid")
    aff = _resolve_affine(target_r, affine)
    if aff is None and resolution is None:
        # One grid for all subjects: inferred from everyone's coordinates together.
        resolution = infer_resolution(*(target_r[c].values for c in ("x", "y", "z")))
    out_dir = Path(out_dir)
    layers = _layer_table(target_r)
    indices = _layer_indices(target_r)
    metric = target_r.attrs.get("long_name") or target_r.name or "r"
    names = {}
    pending: list[tuple[Path, bytes]] = []
    for subject in _subjects(target_r):
        label = _subject_label(subject)
        if label in names:
            raise ValueError(f"subjects {names[label]!r} and {subject!r} both give the file label 'sub-{label}'")
        names[label] = subject
        part = _subject_part(target_r, subject)
        x, y, z = (part[c].values for c in ("x", "y", "z"))
        pos, best = best_layer(part)
        best_index = np.where(pos >= 0, indices[np.maximum(pos, 0)], np.nan)
        stem = out_dir / f"{prefix}_sub-{label}"
        common = {"subject": str(subject), "metric": str(metric), "unmeasured_voxels": "NaN",
                  "layers": layers, "generated_by": "brainalign.brainmaps.write_score_maps"}
        images = {
            "r": (part.values, {"description": f"{metric} per voxel; volume k = layer k (see 'layers')"}),
            "bestlayer": (best_index, {"description": f"layer_index of the layer with the highest {metric} "
                                                      "(ties: earlier layer)"}),
            "maxr": (best, {"description": f"highest {metric} over layers"}),
        }
        for kind, (vals, meta) in images.items():
            img = values_to_nifti(vals, x, y, z, affine=aff, resolution=resolution)
            img.header["descrip"] = f"brainalign {kind}"[:79].encode()
            path = Path(f"{stem}_{kind}{_NIFTI_SUFFIX}")
            sidecar = json.dumps({**meta, **common}, indent=2, default=str).encode() + b"\n"
            pending += [(path, _nifti_bytes(img)), (path.with_name(path.name[:-len(_NIFTI_SUFFIX)] + ".json"), sidecar)]
    with contextlib.ExitStack() as stack:
        for path, payload in pending:
            tmp = stack.enter_context(atomic_path(path))
            tmp.write_bytes(payload)
    return [path for path, _ in pending]


# --------------------------------------------------------------------------- figures
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

    ``subject`` selects one subject's neuroids; it may be omitted when there is one.
    ``figure`` (a Figure) or ``axes`` (an Axes to draw into) place the plot; otherwise a
    new ``figsize`` figure is made. Works headless (Agg).
    """
    _check_target_r(target_r)
    if value not in ("layer_index", "depth"):
        raise ValueError(f"value must be 'layer_index' or 'depth', got {value!r}")
    target_r = target_r.transpose("layer", "neuroid")
    aff = _resolve_affine(target_r, affine)
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
                          resolution=resolution, fill=0.0)

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


def write_encoding_maps(scores_path, out_dir) -> list[Path]:
    """File-level entry point of the ``encoding_maps`` rule: NIfTI maps of the
    per-voxel held-out r of every layer, per subject, from an encoding scores file."""
    from .io import read_netcdf

    scores = read_netcdf(scores_path)
    if "target_r" not in scores or not {"x", "y", "z"} <= set(scores.coords):
        raise ValueError(f"{scores_path}: needs per-target r with voxel coordinates x, y, z "
                         "(encoding scores of volumetric data)")
    target_r = scores["target_r"].assign_coords(subject=("neuroid", scores["target_subject"].values))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return write_score_maps(target_r, out_dir, str(scores.attrs.get("model") or "encoding"))
