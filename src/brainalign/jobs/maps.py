"""The encoding-maps job: NIfTI maps of every layer's per-voxel held-out r, per subject."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_directory, read_netcdf
from ..volumes import _with_dataset_grid, write_score_maps


def write_encoding_maps(scores_path, out_dir) -> list[Path]:
    """File-level entry point of the ``encoding_maps`` rule: NIfTI maps of the
    per-voxel held-out r of every layer, per subject, from an encoding scores file.

    The maps are on the data's own voxel grid when the file carries it (attributes
    ``affine`` and ``grid_shape`` on ``x``, ``y``, ``z``, or on the file), else on
    nilearn's MNI152 template grid at the coordinates' resolution."""
    scores = read_netcdf(scores_path)
    if "target_r" not in scores or not {"x", "y", "z"} <= set(scores.coords):
        raise ValueError(f"{scores_path}: needs per-target r with voxel coordinates x, y, z "
                         "(encoding scores of volumetric data)")
    target_r = scores["target_r"].assign_coords(subject=("neuroid", scores["target_subject"].values))
    target_r = _with_dataset_grid(target_r, scores)
    with atomic_directory(out_dir) as tmp:
        written = write_score_maps(target_r, tmp, str(scores.attrs.get("model") or "encoding"))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
