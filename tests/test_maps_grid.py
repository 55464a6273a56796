"""Score maps on the data's own voxel grid (not an MNI152 template grid).

The grid here is 3 mm, rotated and offset by non-multiples of the voxel size, so no MNI152
template grid fits it: every voxel must come back at its own world coordinates, read with
nibabel and the written image's affine, independently of brainalign.volumes. Affines are
rounded to float32 first, as every affine read from a NIfTI header is (the written image's
header stores it as float32 again, so the comparison to 1e-6 mm is meaningful).
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from brainalign.datasets import nifti_events  # noqa: E402
from brainalign.io import ActivationWriter, read_netcdf, write_netcdf  # noqa: E402
from brainalign.jobs.maps import write_encoding_maps  # noqa: E402
from brainalign.volumes import grid_attrs, mni152_grid, write_score_maps  # noqa: E402


def _rotation(ax: float, az: float) -> np.ndarray:
    cx, sx, cz, sz = np.cos(ax), np.sin(ax), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ rx


AFFINE = np.eye(4)
AFFINE[:3, :3] = _rotation(np.deg2rad(5.0), np.deg2rad(10.0)) * 3.0
AFFINE[:3, 3] = (-71.5, -103.2, -40.7)
AFFINE = AFFINE.astype(np.float32).astype(np.float64)  # as read from any NIfTI header
SHAPE = (9, 8, 7)
TOL_MM = 1e-6


def _world(affine, ijk) -> np.ndarray:
    ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
    return (affine @ np.column_stack([ijk, np.ones(len(ijk))]).T).T[:, :3]


def _check_placement(path, xyz, values, shape=SHAPE):
    """Every planted value sits at its own world coordinates in the image at ``path``, and every
    measured voxel of the image is one of the planted ones (the rest is NaN)."""
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    if data.ndim == 3:
        data = data[..., None]
    values = np.atleast_2d(values)
    assert data.shape[:3] == tuple(shape)
    np.testing.assert_allclose(img.affine, AFFINE, rtol=0, atol=TOL_MM)
    # planted -> image: the voxel at inv(affine) @ xyz is a voxel centre at exactly xyz
    ijk = np.rint((np.linalg.inv(img.affine) @ np.column_stack([xyz, np.ones(len(xyz))]).T).T[:, :3]).astype(int)
    np.testing.assert_allclose(_world(img.affine, ijk), xyz, rtol=0, atol=TOL_MM)
    for vol in range(data.shape[3]):
        got = data[ijk[:, 0], ijk[:, 1], ijk[:, 2], vol]
        np.testing.assert_array_equal(got, values[vol].astype(np.float32))
    # image -> planted: each non-NaN voxel maps back (through the image's affine) to a planted point
    for vol in range(data.shape[3]):
        found = np.argwhere(np.isfinite(data[..., vol]))
        assert len(found) == np.isfinite(values[vol]).sum()
        at = _world(img.affine, found)
        for point, index in zip(at, found):
            d = np.linalg.norm(xyz - point, axis=1)
            k = int(np.argmin(d))
            assert d[k] < TOL_MM
            assert data[(*index, vol)] == np.float32(values[vol, k])


# ----------------------------------------------------------------------------- synthetic scores
IJK = np.array([[0, 0, 0], [8, 7, 6], [4, 3, 2], [1, 6, 5], [7, 1, 3], [2, 2, 2]])
LAYER_INDEX = [0, 3, 7]


def _scores(with_grid: bool = True) -> xr.Dataset:
    """A scores-like Dataset as the encoding job writes it: target_r (layer, neuroid) with
    target_subject and x, y, z along neuroid, the grid on x, y, z's attributes."""
    xyz = _world(AFFINE, IJK)
    n = len(IJK)
    # distinct values exactly representable in float32; layer 1 best at neuroids 0-2, layer 2 at 3-5
    r = np.array([np.arange(n) * 0.0625 - 0.25, np.r_[0.5, 0.625, 0.75, -0.5, -0.375, -0.25], np.zeros(n)])
    r[2, 3:] = [0.875, 0.9375, 0.8125]
    ds = xr.Dataset(
        {"target_r": (("layer", "neuroid"), r)},
        coords={"layer": ["emb", "mid", "top"], "layer_index": ("layer", LAYER_INDEX),
                "depth": ("layer", [0.0, 0.5, 1.0]),
                "target_subject": ("neuroid", np.array(["sub-01"] * n)),
                "target_roi": ("neuroid", np.array(["a", "a", "a", "b", "b", "b"])),
                "x": ("neuroid", xyz[:, 0]), "y": ("neuroid", xyz[:, 1]), "z": ("neuroid", xyz[:, 2])},
        attrs={"model": "tiny", "dataset": "native"})
    for c in "xyz":
        ds[c].attrs.update(units="mm", space="MNI152", **(grid_attrs(AFFINE, SHAPE) if with_grid else {}))
    return ds


def test_grid_attrs_are_json_and_survive_netcdf(tmp_path):
    attrs = grid_attrs(AFFINE, SHAPE)
    assert json.loads(attrs["affine"]) == AFFINE.tolist() and json.loads(attrs["grid_shape"]) == list(SHAPE)
    write_netcdf(_scores(), tmp_path / "scores.nc")
    back = read_netcdf(tmp_path / "scores.nc")
    for c in "xyz":
        assert back[c].attrs["affine"] == attrs["affine"] and back[c].attrs["grid_shape"] == attrs["grid_shape"]


def test_maps_writer_uses_the_data_grid(tmp_path):
    """Through the maps job (NetCDF round trip): r (4D), best layer and max r per voxel at
    the voxels' own world coordinates, on the data's own grid shape."""
    ds = _scores()
    write_netcdf(ds, tmp_path / "scores.nc")
    paths = write_encoding_maps(tmp_path / "scores.nc", tmp_path / "maps")
    xyz = np.column_stack([ds[c].values for c in "xyz"])
    r = ds["target_r"].values
    by_kind = {p.name.split("_")[-1].split(".")[0]: p for p in paths if p.name.endswith(".nii.gz")}
    assert set(by_kind) == {"r", "bestlayer", "maxr"}
    _check_placement(by_kind["r"], xyz, r)
    best = np.argmax(r, axis=0)
    _check_placement(by_kind["bestlayer"], xyz, np.asarray(LAYER_INDEX, dtype=float)[best])
    _check_placement(by_kind["maxr"], xyz, r.max(axis=0))


def test_dataset_level_affine_is_a_fallback(tmp_path):
    """A scores file with the grid only in its root attributes (older brain files) still maps
    onto that grid."""
    ds = _scores(with_grid=False)
    ds.attrs.update(grid_attrs(AFFINE, SHAPE))
    write_netcdf(ds, tmp_path / "scores.nc")
    paths = write_encoding_maps(tmp_path / "scores.nc", tmp_path / "maps")
    r_map = next(p for p in paths if p.name.endswith("_r.nii.gz"))
    _check_placement(r_map, np.column_stack([ds[c].values for c in "xyz"]), ds["target_r"].values)


def test_without_a_grid_the_mni_fallback_is_unchanged(tmp_path):
    """No affine: these coordinates are off every MNI152 grid and are refused as before; MNI-aligned
    coordinates go on nilearn's template grid (affine and shape) at the inferred resolution."""
    ds = _scores(with_grid=False)
    target_r = ds["target_r"].assign_coords(subject=("neuroid", ds["target_subject"].values))
    with pytest.raises(ValueError, match="MNI152|whole number of mm"):
        write_score_maps(target_r, tmp_path / "none", "m")
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())

    mni_affine, mni_shape = mni152_grid(4)
    xyz = _world(mni_affine, IJK + 10)
    mni = target_r.assign_coords(x=("neuroid", xyz[:, 0]), y=("neuroid", xyz[:, 1]), z=("neuroid", xyz[:, 2]))
    paths = write_score_maps(mni, tmp_path / "mni", "m")
    img = nib.load(next(p for p in paths if p.name.endswith("_r.nii.gz")))
    assert img.shape == (*mni_shape, 3)
    np.testing.assert_allclose(img.affine, mni_affine, atol=1e-6)
    ijk = (IJK + 10).T
    np.testing.assert_array_equal(np.asarray(img.dataobj)[ijk[0], ijk[1], ijk[2], :].T,
                                  ds["target_r"].values.astype(np.float32))


def test_surface_volumes_use_the_data_grid():
    """The fsaverage projection's volumes sit on the data's grid (extended by whole voxels to hold
    the meshes): the same voxels at the same world coordinates."""
    pytest.importorskip("nilearn")
    from brainalign.figures.surface import volume_maps

    ds = _scores()
    vols = volume_maps(ds, threshold=0.1)
    img = vols["best_r"]
    aff = np.asarray(img.affine)
    np.testing.assert_allclose(aff[:3, :3], AFFINE[:3, :3], atol=1e-6)  # same axes and voxel size
    shift = np.linalg.inv(AFFINE) @ aff[:, 3]
    np.testing.assert_allclose(shift[:3], np.rint(shift[:3]), atol=1e-6)  # origin moved by whole voxels
    xyz = np.column_stack([ds[c].values for c in "xyz"])
    ijk = np.rint((np.linalg.inv(aff) @ np.column_stack([xyz, np.ones(len(xyz))]).T).T[:, :3]).astype(int)
    np.testing.assert_allclose(_world(aff, ijk), xyz, atol=TOL_MM)
    data = np.asarray(img.dataobj)
    np.testing.assert_array_equal(data[tuple(ijk.T)], ds["target_r"].values.max(axis=0).astype(np.float32))
    assert int((data != 0).sum()) == len(IJK)


def test_glass_brain_takes_the_data_grid(tmp_path, monkeypatch):
    """Both glass-brain entry points build their image on the data's grid (no MNI152 inference,
    which would refuse these coordinates)."""
    import brainalign.figures.glass_brain as glass

    seen = []
    original = glass.values_to_nifti

    def spy(*args, **kwargs):
        img = original(*args, **kwargs)
        seen.append(img)
        return img

    monkeypatch.setattr(glass, "values_to_nifti", spy)
    ds = _scores()
    fig = glass.plot_encoding_glass_brain(ds, [tmp_path / "glass.png"], threshold=0.0)
    assert (tmp_path / "glass.png").exists()
    import matplotlib.pyplot as plt

    plt.close(fig)
    (img,) = seen
    assert img.shape == SHAPE
    np.testing.assert_allclose(img.affine, AFFINE, atol=TOL_MM)


# ----------------------------------------------------------------------------- through nifti_events
IDS = [f"s{i:02d}" for i in range(12)]
T_R = 2.0


def _write_native_runs(root, n_runs=2, seed=0):
    """One subject's 4D runs on the rotated, offset 3 mm grid, with events.tsv."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    rng = np.random.default_rng(seed)
    n_vols = 6 * len(IDS) // 2 + 15
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    b = rng.standard_normal((len(IDS), int(np.prod(SHAPE))))
    for r in range(n_runs):
        order = rng.permutation(len(IDS))
        events = pd.DataFrame({"onset": 4.0 + 6.0 * np.arange(len(IDS)), "duration": 1.0,
                               "trial_type": "sentence", "stimulus_id": np.asarray(IDS)[order]})
        ev = events.assign(trial_type=events["stimulus_id"])[["onset", "duration", "trial_type"]]
        x = make_first_level_design_matrix(np.arange(n_vols) * T_R, ev, hrf_model="glover",
                                           drift_model=None)[list(events["stimulus_id"])].to_numpy()
        data = 100.0 + x @ b + 0.5 * rng.standard_normal((n_vols, int(np.prod(SHAPE))))
        img = nib.Nifti1Image(data.T.reshape(SHAPE + (n_vols,)).astype(np.float32), AFFINE)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((3.0, 3.0, 3.0, T_R))
        stem = func / f"sub-01_task-read_run-{r + 1}"
        nib.save(img, f"{stem}_bold.nii.gz")
        events.to_csv(f"{stem}_events.tsv", sep="\t", index=False)


def test_nifti_events_to_maps_on_the_native_grid(tmp_path):
    """nifti_events -> brain file -> encoding scores file -> maps: the grid travels with x, y, z
    and every voxel's held-out r lands at its own world coordinates."""
    from brainalign.jobs.score import score_file

    _write_native_runs(tmp_path / "bids")
    stored = nib.load(tmp_path / "bids" / "sub-01" / "func" / "sub-01_task-read_run-1_bold.nii.gz").affine
    np.testing.assert_array_equal(stored, AFFINE)
    centres = _world(AFFINE, [[3, 3, 3], [6, 4, 4]])
    spec = {"kind": "nifti_events", "stimuli": "s", "root": str(tmp_path / "bids"), "task": "read", "mask": "none",
            "rois": {"spheres": {"a": {"center": centres[0].tolist(), "radius": 3.5},
                                 "b": {"center": centres[1].tolist(), "radius": 3.5}}}}
    stimuli = xr.Dataset(coords={"stimulus_id": ("stimulus", np.asarray(IDS))})
    brain = nifti_events.load("d", spec, stimuli)
    for c in "xyz":
        np.testing.assert_allclose(json.loads(brain[c].attrs["affine"]), AFFINE, rtol=0, atol=0)
        assert json.loads(brain[c].attrs["grid_shape"]) == list(SHAPE)
    assert brain.attrs["affine"] == brain["x"].attrs["affine"]
    assert brain.attrs["grid_shape"] == brain["x"].attrs["grid_shape"]
    assert brain.sizes["neuroid"] == 14  # two spheres of a centre and its 6 face neighbours
    write_netcdf(brain, tmp_path / "brain.nc", attrs=brain.attrs)

    rng = np.random.default_rng(1)
    with ActivationWriter(tmp_path / "acts.nc", IDS, ["emb", "top"], [6, 6]) as writer:
        writer.write(0, [rng.standard_normal((len(IDS), 6)) for _ in range(2)])
    settings = {"alphas": [0.1, 10.0], "outer_folds": 3, "inner_folds": 3, "device": "cpu"}
    score_file("encoding", tmp_path / "acts.nc", tmp_path / "brain.nc", tmp_path / "scores.nc", settings,
               names={"model": "tiny", "dataset": "d"})
    scores = read_netcdf(tmp_path / "scores.nc")
    for c in "xyz":
        assert scores[c].attrs["affine"] == brain[c].attrs["affine"]
        assert scores[c].attrs["grid_shape"] == brain[c].attrs["grid_shape"]

    paths = write_encoding_maps(tmp_path / "scores.nc", tmp_path / "maps")
    r_map = next(p for p in paths if p.name.endswith("_r.nii.gz"))
    xyz = np.column_stack([scores[c].values for c in "xyz"])
    r = scores["target_r"].transpose("layer", "neuroid").values
    assert np.isfinite(r).all()
    _check_placement(r_map, xyz, r)
    # the voxel coordinates are those of the planted grid voxels
    ijk = np.rint((np.linalg.inv(AFFINE) @ np.column_stack([xyz, np.ones(len(xyz))]).T).T[:, :3])
    np.testing.assert_allclose(_world(AFFINE, ijk), xyz, rtol=0, atol=TOL_MM)
