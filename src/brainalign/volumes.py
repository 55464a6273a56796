"""Voxel-wise score maps: per-voxel encoding results on their voxel grid, as NIfTI images.

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
* :func:`brainalign.figures.glass_brain.plot_best_layer_glass_brain` draws the best layer
  per voxel on a glass brain (plotting lives in :mod:`brainalign.figures`).

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
import re
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
import xarray as xr

from .io import atomic_path

__all__ = [
    "VoxelGrid", "GRID_ATTRS", "grid_attrs", "infer_resolution", "mni152_grid", "voxel_grid", "values_to_nifti",
    "best_layer", "write_score_maps",
]

#: Coordinates may be this far (in voxels) from a voxel centre and still count as on the grid.
GRID_TOLERANCE = 1e-3
#: Resolution (mm) used when the coordinate spacing cannot be inferred (e.g. a single voxel).
DEFAULT_RESOLUTION = 2
#: Attributes naming a dataset's own voxel grid (set by the ``nifti_events`` kind on the
#: ``x``, ``y``, ``z`` coordinates and on the brain Dataset, carried to encoding scores on
#: ``x``, ``y``, ``z``): ``affine`` is a JSON 4x4 nested list (voxel index -> mm) and
#: ``grid_shape`` a JSON list of the 3 grid dimensions. JSON strings because NetCDF
#: attributes cannot hold 2D arrays.
GRID_ATTRS = ("affine", "grid_shape")
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


def _as_shape(shape) -> tuple[int, int, int]:
    """A 3D grid shape from a sequence of 3 positive whole numbers or a JSON string of one."""
    if isinstance(shape, (str, bytes)):
        shape = json.loads(shape)
    s = np.asarray(shape).ravel()
    if s.size != 3 or not np.all(np.isfinite(s.astype(np.float64))) or np.any(s != np.rint(s)) or np.any(s < 1):
        raise ValueError(f"grid_shape must be 3 positive whole numbers, got {shape!r}")
    return tuple(int(v) for v in s)


def grid_attrs(affine, shape=None) -> dict:
    """NetCDF-safe attributes (:data:`GRID_ATTRS`) describing a voxel grid: ``affine`` as a JSON
    4x4 nested list and, when ``shape`` is given, ``grid_shape`` as a JSON list of 3 ints.
    :func:`write_score_maps` and the figures read them back from ``x``, ``y``, ``z``."""
    out = {"affine": json.dumps(_as_affine(affine).tolist())}
    if shape is not None:
        out["grid_shape"] = json.dumps(list(_as_shape(tuple(shape)[:3])))
    return out


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


def _stored_grid(target_r: xr.DataArray):
    """(affine, grid_shape) attributes stored with ``target_r``, each None when absent: those of
    ``target_r.attrs`` if it has an ``affine``, else those shared by its ``x``, ``y``, ``z``
    coordinates (ValueError if the coordinates disagree)."""
    if target_r.attrs.get("affine") is not None:
        return target_r.attrs["affine"], target_r.attrs.get("grid_shape")
    found = []
    for key, parse in (("affine", _as_affine), ("grid_shape", _as_shape)):
        values = {c: target_r[c].attrs[key] for c in ("x", "y", "z")
                  if c in target_r.coords and target_r[c].attrs.get(key) is not None}
        parsed = {c: np.asarray(parse(v), dtype=np.float64) for c, v in values.items()}
        first = next(iter(parsed.values()), None)
        if any(not np.allclose(p, first, rtol=0, atol=1e-9) for p in parsed.values()):
            raise ValueError(f"coordinates x, y, z carry different '{key}' attributes: "
                             + "; ".join(f"{c}: {p.tolist()}" for c, p in parsed.items()))
        found.append(next(iter(values.values()), None))
    return tuple(found)


def _resolve_grid(target_r: xr.DataArray, affine=None, shape=None):
    """(affine, shape) of the grid to write ``target_r`` on: the explicit ``affine`` (with the
    explicit ``shape``, or None), else the data's own grid stored with ``target_r``
    (:func:`_stored_grid`; its ``grid_shape`` unless ``shape`` is given), else
    ``(None, shape)``: nilearn's MNI152 template (:func:`_resolve_affine` explains the
    space check)."""
    if affine is not None:
        return _as_affine(affine), None if shape is None else _as_shape(shape)
    stored, stored_shape = _stored_grid(target_r)
    if stored is None:
        return _resolve_affine(target_r, None), None if shape is None else _as_shape(shape)
    shape = stored_shape if shape is None else shape
    return _as_affine(stored), None if shape is None else _as_shape(shape)


def _with_dataset_grid(target_r: xr.DataArray, data: xr.Dataset) -> xr.DataArray:
    """``target_r`` with ``data.attrs``' grid (``affine``, ``grid_shape``) as its attributes when
    neither it nor its coordinates carry an affine of their own."""
    if data.attrs.get("affine") is None or _stored_grid(target_r)[0] is not None:
        return target_r
    return target_r.assign_attrs({k: data.attrs[k] for k in GRID_ATTRS if data.attrs.get(k) is not None})


def _resolve_affine(target_r: xr.DataArray, affine):
    """The explicit affine, else one stored in ``target_r.attrs['affine']`` or on its ``x``, ``y``,
    ``z`` coordinates (:func:`_stored_grid`), else None (MNI152 template). Without an affine,
    coordinates whose ``space`` attribute names a non-MNI space are refused: the MNI152 grid
    would silently misplace them."""
    if affine is None:
        affine = _stored_grid(target_r)[0]
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
                     resolution: int | None = None, shape=None) -> list[Path]:
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
    ``affine`` (and ``shape``) if given, else the data's own grid stored with ``target_r``
    (``target_r.attrs`` or the ``x``, ``y``, ``z`` attributes ``affine`` and ``grid_shape``,
    see :data:`GRID_ATTRS`), else nilearn's MNI152 template (``resolution`` mm, inferred
    from the spacing when omitted). Without a ``shape`` the volume is just large enough to
    hold every voxel of the given affine's grid.

    All images are built (and every subject's coordinates validated) before anything is
    written; each file goes to a temporary name in ``out_dir`` and is renamed into
    place only once every file has been written, so an error leaves no output and no
    temporary file behind.
    """
    _check_target_r(target_r)
    target_r = target_r.transpose("layer", "neuroid")
    aff, shape = _resolve_grid(target_r, affine, shape)
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
            img = values_to_nifti(vals, x, y, z, affine=aff, resolution=resolution, shape=shape)
            img.header["descrip"] = f"brainalign {kind}"[:79].encode()
            path = Path(f"{stem}_{kind}{_NIFTI_SUFFIX}")
            sidecar = json.dumps({**meta, **common}, indent=2, default=str).encode() + b"\n"
            pending += [(path, _nifti_bytes(img)), (path.with_name(path.name[:-len(_NIFTI_SUFFIX)] + ".json"), sidecar)]
    with contextlib.ExitStack() as stack:
        for path, payload in pending:
            tmp = stack.enter_context(atomic_path(path))
            tmp.write_bytes(payload)
    return [path for path, _ in pending]


