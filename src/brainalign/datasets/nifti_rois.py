"""Regions of interest on a NIfTI grid, from config.

A dataset's ``rois`` entry takes one of three forms; each becomes an integer label
volume on the data's voxel grid (0 = outside every ROI) plus the ROI names:

``coords``
    Coordinate spheres bundled with nilearn: ``power_2011``, ``dosenbach_2010`` or
    ``seitzman_2018``. ``group_by: network`` (default where the atlas has network
    labels) makes one ROI per network, the union of its spheres; ``group_by: roi``
    makes one ROI per sphere. ``select`` keeps some networks (or sphere labels);
    ``radius`` (mm) overrides the atlas's own radii (Seitzman's 4-5 mm; 5 mm for the
    others). A voxel inside several spheres belongs to the nearest centre.
``spheres``
    Your own spheres: ``{name: {center: [x, y, z], radius: mm}}``.
``atlas``
    A label image (``path``) with its ``labels`` (a dict value -> name, or a TSV
    with columns ``index`` and ``name``), resampled to the data grid with
    nearest-neighbour interpolation; ``select`` keeps some labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .contract import BrainDataError

COORDINATE_ATLASES = ("power_2011", "dosenbach_2010", "seitzman_2018")
DEFAULT_RADIUS_MM = 5.0


def coordinate_atlas(name: str) -> pd.DataFrame:
    """nilearn's bundled coordinate ROIs as a table: ``x, y, z`` (MNI mm), ``label``,
    ``network`` (empty for Power 2011, which nilearn ships without networks) and ``radius``."""
    from nilearn import datasets

    if name == "power_2011":
        rois = datasets.fetch_coords_power_2011().rois
        return pd.DataFrame({"x": rois["x"].to_numpy(float), "y": rois["y"].to_numpy(float),
                             "z": rois["z"].to_numpy(float), "label": [f"power_{int(r):03d}" for r in rois["roi"]],
                             "network": "", "radius": DEFAULT_RADIUS_MM})
    if name == "dosenbach_2010":
        fetched = datasets.fetch_coords_dosenbach_2010()
        rois = fetched.rois
        return pd.DataFrame({"x": rois["x"].to_numpy(float), "y": rois["y"].to_numpy(float),
                             "z": rois["z"].to_numpy(float), "label": np.asarray(fetched.labels, dtype=str),
                             "network": np.asarray(fetched.networks, dtype=str), "radius": DEFAULT_RADIUS_MM})
    if name == "seitzman_2018":
        fetched = datasets.fetch_coords_seitzman_2018()
        rois = fetched.rois
        n = len(rois)
        return pd.DataFrame({"x": rois["x"].to_numpy(float), "y": rois["y"].to_numpy(float),
                             "z": rois["z"].to_numpy(float), "label": [f"seitzman_{i + 1:03d}" for i in range(n)],
                             "network": np.asarray(fetched.networks, dtype=str),
                             "radius": np.asarray(fetched.radius, dtype=float)})
    raise BrainDataError(f"unknown coordinate atlas '{name}' (known: {list(COORDINATE_ATLASES)})")


def voxel_coordinates(affine: np.ndarray, shape) -> np.ndarray:
    """MNI (or scanner) mm coordinates of every voxel centre, shape ``shape + (3,)``."""
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape[:3]], indexing="ij"), -1)
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def _sphere_labels(centres: np.ndarray, radii: np.ndarray, groups: np.ndarray, affine, shape):
    """Label volume: each voxel within some sphere gets its nearest centre's group (1-based)."""
    from scipy.spatial import cKDTree

    names = list(dict.fromkeys(groups.tolist()))
    group_index = np.array([names.index(g) + 1 for g in groups])
    xyz = voxel_coordinates(affine, shape).reshape(-1, 3)
    labels = np.zeros(len(xyz), dtype=np.int32)
    near = cKDTree(xyz).query_ball_point(centres, r=radii + 1e-6)
    best = np.full(len(xyz), np.inf)
    for c, voxels in enumerate(near):
        voxels = np.asarray(voxels, dtype=int)
        if not len(voxels):
            continue
        d = np.linalg.norm(xyz[voxels] - centres[c], axis=1)
        closer = d < best[voxels]
        labels[voxels[closer]] = group_index[c]
        best[voxels[closer]] = d[closer]
    return labels.reshape(shape[:3]), names


def _atlas_labels(spec: dict, affine, shape, key: str, base_dir):
    import nibabel as nib
    from nilearn.image import resample_img

    path = Path(spec["path"])
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.exists():
        raise BrainDataError(f"config key '{key}.path': label image not found: {path}")
    img = nib.load(path)
    if not np.allclose(img.affine, affine) or img.shape[:3] != tuple(shape[:3]):
        img = resample_img(img, target_affine=affine, target_shape=shape[:3], interpolation="nearest",
                           force_resample=True, copy_header=True)
    values = np.rint(np.asarray(img.dataobj)).astype(np.int64)
    table = spec.get("labels")
    if isinstance(table, (str, Path)):
        tpath = Path(table) if Path(table).is_absolute() or base_dir is None else Path(base_dir) / table
        if not tpath.exists():
            raise BrainDataError(f"config key '{key}.labels': label table not found: {tpath}")
        frame = pd.read_csv(tpath, sep="\t")
        if not {"index", "name"} <= set(frame.columns):
            raise BrainDataError(f"{tpath}: a label table needs the columns 'index' and 'name' "
                                 f"(has {list(frame.columns)})")
        table = dict(zip(frame["index"].astype(int), frame["name"].astype(str)))
    elif table is None:
        table = {int(v): f"label_{int(v)}" for v in np.unique(values) if v != 0}
    else:
        table = {int(k): str(v) for k, v in table.items()}
    names, labels = [], np.zeros(values.shape, dtype=np.int32)
    for value, name in table.items():
        if name not in names:
            names.append(name)
        labels[values == value] = names.index(name) + 1
    return labels, names


def _coordinate_groups(spec: dict, key: str):
    """A ``coords`` entry's atlas table, each sphere's group (network or label) and the spheres kept."""
    atlas = coordinate_atlas(spec["coords"])
    group_by = spec.get("group_by", "roi" if spec["coords"] == "power_2011" else "network")
    if group_by == "network" and not atlas["network"].astype(bool).any():
        raise BrainDataError(f"config key '{key}.group_by': nilearn's {spec['coords']} coordinates carry no "
                             "network labels; use 'group_by: roi' or another atlas")
    groups = atlas["network" if group_by == "network" else "label"].to_numpy(str)
    keep = np.ones(len(atlas), dtype=bool)
    if spec.get("select"):
        unknown = sorted(set(spec["select"]) - set(groups))
        if unknown:
            raise BrainDataError(f"config key '{key}.select': {unknown} not in {spec['coords']} "
                                 f"(has {sorted(set(groups))[:20]})")
        keep = np.isin(groups, spec["select"])
    return atlas, groups, keep


def roi_names(spec: dict, *, key: str, base_dir=None) -> list[str] | None:
    """The ROI names a ``rois`` entry gives, without a voxel grid (None for a label image, whose
    names may come from its values): what validation checks ROI names against."""
    if "coords" in spec:
        _, groups, keep = _coordinate_groups(spec, key)
        return list(dict.fromkeys(groups[keep]))
    if "spheres" in spec:
        return list(spec["spheres"])
    return None


def roi_labels(spec: dict, affine, shape, *, key: str, base_dir=None) -> tuple[np.ndarray, list[str]]:
    """Integer label volume on the grid (``affine``, ``shape``) and the ROI names (label k
    is ``names[k - 1]``), from a dataset's ``rois`` entry; ``key`` names it in errors."""
    if "coords" in spec:
        atlas, groups, keep = _coordinate_groups(spec, key)
        radii = np.full(len(atlas), float(spec["radius"])) if spec.get("radius") else atlas["radius"].to_numpy(float)
        labels, names = _sphere_labels(atlas[["x", "y", "z"]].to_numpy(float)[keep], radii[keep], groups[keep],
                                       affine, shape)
    elif "spheres" in spec:
        items = list(spec["spheres"].items())
        labels, names = _sphere_labels(np.array([s["center"] for _, s in items], dtype=float),
                                       np.array([float(s.get("radius", DEFAULT_RADIUS_MM)) for _, s in items]),
                                       np.array([n for n, _ in items]), affine, shape)
    elif "atlas" in spec:
        labels, names = _atlas_labels(spec["atlas"], affine, shape, f"{key}.atlas", base_dir)
        if spec.get("select"):
            unknown = sorted(set(spec["select"]) - set(names))
            if unknown:
                raise BrainDataError(f"config key '{key}.select': {unknown} not among the atlas labels {names[:20]}")
            selected = np.zeros_like(labels)
            for k, n in enumerate(spec["select"]):
                selected[labels == names.index(n) + 1] = k + 1
            labels, names = selected, list(spec["select"])
    else:
        raise BrainDataError(f"config key '{key}': give one of 'coords', 'spheres' or 'atlas'")
    return labels, names
