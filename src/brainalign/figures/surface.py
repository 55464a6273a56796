"""Encoding maps on the fsaverage5 cortical surface.

An encoding scores file (``target_r``: held-out Pearson r per layer per voxel, with the
voxels' MNI coordinates ``x, y, z`` along ``neuroid``) is put back on a voxel grid with
:mod:`brainalign.volumes` and projected onto nilearn's bundled fsaverage5 meshes
(offline) with :func:`nilearn.surface.vol_to_surf`, sampling along each vertex's line
from the pial to the white-matter surface (nilearn's ``kind="depth"``).

Two maps, both averaged over subjects per voxel (subjects share the MNI grid, so a voxel
is the set of neuroids with the same coordinates):

* ``best_r``: each subject's best held-out r over layers, averaged over subjects. Voxels
  that were not measured are **not** treated as r = 0: the volume is projected twice, once
  with the values (0 outside the measured voxels) and once with the measured-voxel
  indicator, and the ratio is the interpolation-weighted mean of the *measured* voxels
  only. A vertex is drawn where at least :data:`MIN_COVERAGE` of its interpolation weight
  falls on measured voxels, else it is NaN (the sulcal background shows). (Plain linear
  projection of a NaN-filled volume would also avoid the 0s, but any sample touching an
  unmeasured voxel becomes NaN, which blanks most of a thin, sparsely sampled ribbon.)
* ``depth``: the relative depth (0..1; the layer coordinate ``depth``, else evenly spaced)
  of the layer with the highest subject-mean r, only where that highest subject-mean r
  exceeds ``threshold`` (NaN elsewhere). Layers are categories, so the volume of layer
  positions is projected with nilearn's ``"nearest_most_frequent"`` interpolation (each
  vertex takes the most frequent voxel value among its samples, NaN when unshown voxels
  are the most frequent) and never blended; faces are coloured with the median of their
  three vertices for the same reason.

:func:`surface_maps` returns those vertex values (testable), :func:`volume_maps` the
NIfTI volumes they come from, and :func:`plot_encoding_surface` draws the 2 x 4 figure
(left lateral, left medial, right lateral, right medial) on the inflated mesh over sulcal
depth.
"""

from __future__ import annotations

import functools
import warnings

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize  # noqa: E402

from ..volumes import (
    _check_target_r,
    _resolve_grid,
    _with_dataset_grid,
    best_layer,
    infer_resolution,
    values_to_nifti,
    voxel_grid,
)

from .style import DIVERGING, SEQUENTIAL, save, styled  # noqa: E402

__all__ = ["MESH", "HEMIS", "VIEWS", "MIN_COVERAGE", "DEPTH_INTERPOLATION", "fsaverage5", "volume_maps",
           "surface_maps", "plot_encoding_surface"]

MESH = "fsaverage5"
HEMIS = ("left", "right")
VIEWS = ("lateral", "medial")
#: A vertex's best r is shown when at least this share of its interpolation weight lies on measured voxels.
MIN_COVERAGE = 0.5
#: nilearn's categorical volume-to-surface interpolation (nilearn >= 0.12).
DEPTH_INTERPOLATION = "nearest_most_frequent"
R_LABEL = "held-out r (best layer)"
DEPTH_LABEL = "relative depth of best layer"


# --------------------------------------------------------------------------- meshes
@functools.lru_cache(maxsize=1)
def _fsaverage5() -> dict:
    from nilearn import datasets, surface

    files = datasets.fetch_surf_fsaverage(MESH)  # shipped with nilearn: no download
    out = {}
    for hemi in HEMIS:
        for name, key in (("pial", "pial"), ("white", "white"), ("inflated", "infl")):
            mesh = surface.load_surf_mesh(files[f"{key}_{hemi}"])
            coords = np.array(mesh.coordinates, dtype=np.float64)
            faces = np.array(mesh.faces, dtype=np.int64)
            coords.setflags(write=False)
            faces.setflags(write=False)
            out[name, hemi] = (coords, faces)
        sulc = np.array(surface.load_surf_data(files[f"sulc_{hemi}"]), dtype=np.float64)
        sulc.setflags(write=False)
        out["sulc", hemi] = sulc
    return out


def fsaverage5() -> dict:
    """nilearn's bundled fsaverage5: ``(name, hemi) -> (coordinates, faces)`` for name in
    ``pial``, ``white``, ``inflated`` and ``("sulc", hemi) -> sulcal depth`` per vertex
    (10242 vertices per hemisphere). Arrays are read-only and shared between calls."""
    return dict(_fsaverage5())


def _check_nilearn() -> None:
    import nilearn

    major, minor = (int(p) for p in nilearn.__version__.split(".")[:2])
    if (major, minor) < (0, 12):
        raise RuntimeError(f"surface maps need nilearn >= 0.12 (interpolation='{DEPTH_INTERPOLATION}', which "
                           f"keeps layers categorical); nilearn {nilearn.__version__} is installed")


# --------------------------------------------------------------------------- volumes
def _target_r(data: xr.Dataset) -> xr.DataArray:
    if not isinstance(data, xr.Dataset):
        raise TypeError(f"data must be an xarray Dataset (an encoding scores file), got {type(data).__name__}")
    if "target_r" not in data.data_vars:
        raise ValueError("data lacks the variable 'target_r' (held-out r per layer per target); surface maps "
                         "need encoding scores of volumetric data")
    target_r = data["target_r"]
    missing = [c for c in ("x", "y", "z") if c not in target_r.coords]
    if missing:
        raise ValueError(f"data lacks the neuroid coordinate(s) {', '.join(repr(c) for c in missing)} "
                         "(MNI mm) needed to place voxels on the surface")
    _check_target_r(target_r)
    target_r = _with_dataset_grid(target_r, data)  # a grid on x, y, z comes first, then the file's
    return target_r.transpose("layer", "neuroid")


def _check_mni(target_r: xr.DataArray, data: xr.Dataset) -> None:
    """fsaverage lives in MNI space: refuse coordinates declared to be in another space."""
    spaces = {c: str(target_r[c].attrs.get("space", "MNI152")) for c in ("x", "y", "z")}
    spaces["coordinate_space"] = str(data.attrs.get("coordinate_space", "MNI152"))
    bad = {k: v for k, v in spaces.items() if not v.upper().startswith("MNI")}
    if bad:
        raise ValueError(f"coordinates are not in MNI space ({bad}); fsaverage5 surfaces need MNI coordinates")


def _covering_grid(affine: np.ndarray, shape, points: np.ndarray):
    """(affine, shape) of the grid extended by whole voxels so that every point (mm) lies
    inside with a 2-voxel margin; the same grid when it already does."""
    inv = np.linalg.inv(affine)
    ijk = points @ inv[:3, :3].T + inv[:3, 3]
    lo = np.minimum(np.floor(ijk.min(axis=0)) - 2, 0).astype(int)
    hi = np.maximum(np.ceil(ijk.max(axis=0)) + 3, shape).astype(int)
    if not lo.any() and np.array_equal(hi, shape):
        return affine, tuple(int(s) for s in shape)
    new = np.array(affine, dtype=np.float64)
    new[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    return new, tuple(int(s) for s in hi - lo)


def _layer_depths(target_r: xr.DataArray) -> np.ndarray:
    n = target_r.sizes["layer"]
    if "depth" in target_r.coords and target_r["depth"].dims == ("layer",):
        return np.asarray(target_r["depth"].values, dtype=np.float64)
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)


def _group_mean(values: np.ndarray, inverse: np.ndarray, n_groups: int) -> np.ndarray:
    """NaN-ignoring mean of ``values`` (..., neuroid) over neuroids of the same group."""
    values = np.atleast_2d(values)
    finite = np.isfinite(values)
    out = np.empty((values.shape[0], n_groups))
    for k, (v, f) in enumerate(zip(values, finite)):
        total = np.bincount(inverse, weights=np.where(f, v, 0.0), minlength=n_groups)
        count = np.bincount(inverse, weights=f.astype(np.float64), minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def volume_maps(data: xr.Dataset, threshold: float = 0.1) -> dict:
    """The volumes :func:`surface_maps` projects, on one grid (the data's own grid if the
    file carries it: ``affine`` and ``grid_shape`` on ``x``, ``y``, ``z`` or on the file;
    else nilearn's MNI152 template at the coordinates' resolution; extended if needed to
    hold fsaverage5):

    * ``"best_r"``: float32 image, per voxel the subject-mean of each subject's highest r
      over layers; 0 outside the measured voxels (see ``"measured"``);
    * ``"measured"``: float32 image, 1 at measured voxels (a finite ``best_r``), else 0;
    * ``"best_layer"``: float32 image, position along ``layer`` of the highest subject-mean
      r where that r exceeds ``threshold``, NaN elsewhere;
    * ``"depths"``: relative depth per layer position; ``"layers"``: layer names;
    * ``"n_voxels"``, ``"n_shown"``: numbers of measured voxels and of voxels above threshold.

    Raises ValueError naming what is missing when ``target_r`` or ``x``/``y``/``z`` are absent.
    """
    target_r = _target_r(data)
    _check_mni(target_r, data)
    aff, shape = _resolve_grid(target_r)  # the data's own grid if stored, else MNI152 (aff None)
    x, y, z = (np.asarray(target_r[c].values, dtype=np.float64) for c in ("x", "y", "z"))
    resolution = infer_resolution(x, y, z) if aff is None else None
    grid = voxel_grid(x, y, z, affine=aff, resolution=resolution, shape=shape)
    _, first, inverse = np.unique(grid.ijk, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    n_vox = len(first)

    _, subject_best = best_layer(target_r)  # per neuroid = per subject and voxel
    best_r = _group_mean(subject_best, inverse, n_vox)[0]
    mean_r = _group_mean(target_r.values.astype(np.float64), inverse, n_vox)  # (layer, voxel)
    pos, mean_best = best_layer(xr.DataArray(mean_r, dims=("layer", "neuroid")))
    shown = (pos >= 0) & (mean_best > threshold)

    meshes = _fsaverage5()
    points = np.concatenate([meshes[name, hemi][0] for name in ("pial", "white") for hemi in HEMIS])
    cover_aff, cover_shape = _covering_grid(grid.affine, grid.shape, points)
    if aff is None and np.array_equal(cover_aff, grid.affine):
        kwargs = {"affine": None, "resolution": resolution}  # the template grid itself
    else:
        kwargs = {"affine": cover_aff, "shape": cover_shape}
    measured = np.isfinite(best_r)
    vx, vy, vz = x[first], y[first], z[first]
    return {
        "best_r": values_to_nifti(np.where(measured, best_r, 0.0), vx, vy, vz, fill=0.0, **kwargs),
        "measured": values_to_nifti(measured.astype(np.float64), vx, vy, vz, fill=0.0, **kwargs),
        "best_layer": values_to_nifti(np.where(shown, pos, np.nan), vx, vy, vz, fill=np.nan, **kwargs),
        "depths": _layer_depths(target_r),
        "layers": [str(v) for v in target_r["layer"].values],
        "n_voxels": int(measured.sum()),
        "n_shown": int(shown.sum()),
    }


# --------------------------------------------------------------------------- surfaces
def surface_maps(data: xr.Dataset, threshold: float = 0.1) -> dict:
    """Vertex values of the encoding maps on fsaverage5, per hemisphere.

    Returns a dict with, for hemi in ``("left", "right")``:

    * ``("best_r", hemi)``: (10242,) float array, subject-mean best held-out r, NaN where
      less than :data:`MIN_COVERAGE` of the vertex's interpolation weight is on measured voxels;
    * ``("depth", hemi)``: (10242,) float array, relative depth of the best layer (exactly
      one of the layer depths), NaN where no voxel above ``threshold`` dominates the samples;
    * ``("coverage", hemi)``: share of the vertex's interpolation weight on measured voxels;
    * ``("pial", hemi)``, ``("white", hemi)``: the (coordinates, faces) meshes sampled
      between; ``("inflated", hemi)`` the display mesh; ``("sulc", hemi)`` sulcal depth;

    and ``"depths"`` (relative depth per layer), ``"layers"``, ``"n_voxels"``, ``"n_shown"``.
    """
    _check_nilearn()
    from nilearn import surface
    from threadpoolctl import threadpool_limits

    vols = volume_maps(data, threshold)
    meshes = _fsaverage5()
    depths = vols["depths"]
    out = {k: vols[k] for k in ("depths", "layers", "n_voxels", "n_shown")}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean over all-NaN samples (vertex off the image)
        for hemi in HEMIS:
            pial, white = meshes["pial", hemi], meshes["white", hemi]
            value = surface.vol_to_surf(vols["best_r"], pial, inner_mesh=white)
            weight = surface.vol_to_surf(vols["measured"], pial, inner_mesh=white)
            covered = np.isfinite(weight) & (weight >= MIN_COVERAGE)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["best_r", hemi] = np.where(covered, value / np.where(covered, weight, 1.0), np.nan)
            out["coverage", hemi] = np.nan_to_num(weight, nan=0.0)
            index = surface.vol_to_surf(vols["best_layer"], pial, inner_mesh=white,
                                        interpolation=DEPTH_INTERPOLATION)
            ok = np.isfinite(index)
            depth = np.full(index.shape, np.nan)
            depth[ok] = depths[np.rint(index[ok]).astype(np.int64)]
            out["depth", hemi] = depth
            for name in ("pial", "white", "inflated", "sulc"):
                out[name, hemi] = meshes[name, hemi]
    return out


# --------------------------------------------------------------------------- figure
def _r_limit(maps: dict) -> float:
    vals = np.concatenate([maps["best_r", h] for h in HEMIS])
    vals = vals[np.isfinite(vals)]
    top = float(np.max(np.abs(vals))) if vals.size else 0.0
    return max(0.05, float(np.ceil(top / 0.05) * 0.05))


def plot_encoding_surface(data: xr.Dataset, paths, threshold: float = 0.1):
    """Encoding maps on the inflated fsaverage5 surface over sulcal depth; returns the Figure.

    Two rows x four columns (left lateral, left medial, right lateral, right medial): row 1
    the subject-mean best held-out r per voxel (diverging colours, symmetric around 0),
    row 2 the relative depth of the best layer of the subject-mean r where that r exceeds
    ``threshold`` (viridis, 0..1). Unmeasured or unshown vertices are transparent over the
    sulcal background. Saved to ``paths`` (one path or several) with the project style.
    """
    from nilearn import plotting

    maps = surface_maps(data, threshold)
    model, dataset = data.attrs.get("model", "model"), data.attrs.get("dataset", "dataset")
    rlim = _r_limit(maps)
    rows = [
        ("best_r", DIVERGING, -rlim, rlim, "mean", R_LABEL,
         f"best held-out r\n(subject mean;\n{maps['n_voxels']} voxels)"),
        ("depth", SEQUENTIAL, 0.0, 1.0, "median", DEPTH_LABEL,
         f"depth of best layer\n(best r > {threshold:g};\n{maps['n_shown']} voxels)"),
    ]
    with styled(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN hemispheres: nanmin/nanmax inside nilearn
        fig = plt.figure(figsize=(12.0, 5.6))
        for r, (key, cmap, vmin, vmax, avg, label, row_label) in enumerate(rows):
            for c, (hemi, view) in enumerate((h, v) for h in HEMIS for v in VIEWS):
                ax = fig.add_axes((0.115 + 0.19 * c, 0.47 - 0.45 * r, 0.19, 0.42), projection="3d")
                coords, faces = maps["inflated", hemi]
                plotting.plot_surf_stat_map(
                    (coords.copy(), faces.copy()), maps[key, hemi], bg_map=maps["sulc", hemi].copy(), hemi=hemi,
                    view=view, engine="matplotlib", cmap=cmap, colorbar=False, avg_method=avg, threshold=None,
                    vmin=vmin, vmax=vmax, symmetric_cbar=False, axes=ax, figure=fig)
                for artist in ax.collections:  # 20k faces per panel: raster inside SVG/PDF, text stays vector
                    artist.set_rasterized(True)
                if r == 0:
                    ax.set_title(f"{hemi} {view}", fontsize=9, y=0.95)
            cax = fig.add_axes((0.89, 0.53 - 0.45 * r, 0.012, 0.3))
            cbar = fig.colorbar(ScalarMappable(norm=Normalize(vmin=vmin, vmax=vmax), cmap=cmap), cax=cax)
            cbar.set_label(label)
            fig.text(0.005, 0.68 - 0.45 * r, row_label, ha="left", va="center", fontsize=9)
        fig.suptitle(f"{model} on {dataset}: encoding maps on {MESH} (held-out r > {threshold:g})", y=0.98)
        save(fig, paths)
    return fig
