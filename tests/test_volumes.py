"""Voxel-wise score maps: NIfTI round trips on the MNI152 and explicit grids, best-layer
maps, error messages, atomic writes and the glass-brain figure."""

from __future__ import annotations

import io
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from nilearn import datasets  # noqa: E402

from brainalign import volumes as brainmaps  # noqa: E402
from brainalign.figures.glass_brain import plot_best_layer_glass_brain  # noqa: E402

N_VOXELS = 300
LAYER_INDEX = np.array([0, 2, 4, 6, 8])  # not 0..L-1, so positions and layer_index differ


@pytest.fixture(scope="module")
def mni4():
    """(template affine, template shape, ijk of N in-mask voxels, their mm coordinates)."""
    template = datasets.load_mni152_template(resolution=4)
    mask = datasets.load_mni152_gm_mask(resolution=4)
    assert np.allclose(mask.affine, template.affine)
    inside = np.argwhere(mask.get_fdata() > 0)
    rng = np.random.default_rng(7)
    ijk = inside[rng.choice(len(inside), N_VOXELS, replace=False)]
    xyz = (template.affine @ np.column_stack([ijk, np.ones(len(ijk))]).T).T[:, :3]
    return np.asarray(template.affine), template.shape, ijk, xyz


def _read(path):
    img = nib.load(str(path))
    return img, np.asarray(img.dataobj)


def _ijk_of(affine, xyz):
    """Voxel indices via the inverse affine, computed here independently of brainmaps."""
    f = (np.linalg.inv(affine) @ np.column_stack([xyz, np.ones(len(xyz))]).T).T[:, :3]
    assert np.allclose(f, np.rint(f), atol=1e-6)
    return np.rint(f).astype(int)


def _target_r(xyz, r, subjects, space="MNI152", attrs=None):
    n_layers = r.shape[0]
    da = xr.DataArray(
        r, dims=("layer", "neuroid"),
        coords={
            "layer": [f"blocks.{k}" for k in LAYER_INDEX[:n_layers]],
            "layer_index": ("layer", LAYER_INDEX[:n_layers]),
            "depth": ("layer", LAYER_INDEX[:n_layers] / LAYER_INDEX[n_layers - 1]),
            "subject": ("neuroid", np.asarray(subjects)),
            "roi": ("neuroid", np.asarray(["lang"] * len(subjects))),
            "x": ("neuroid", xyz[:, 0]), "y": ("neuroid", xyz[:, 1]), "z": ("neuroid", xyz[:, 2]),
        },
        name="r", attrs={"long_name": "held-out Pearson r", "model": "toy", **(attrs or {})})
    for c in "xyz":
        da[c].attrs.update(units="mm", space=space)
    return da


# --------------------------------------------------------------------------- round trips
def test_round_trip_on_mni_4mm_grid(mni4, tmp_path):
    affine, shape, ijk, xyz = mni4
    rng = np.random.default_rng(1)
    values = rng.standard_normal((3, N_VOXELS))

    assert brainmaps.infer_resolution(*xyz.T) == 4
    img = brainmaps.values_to_nifti(values, *xyz.T)
    path = tmp_path / "vals.nii.gz"
    nib.save(img, str(path))
    back, data = _read(path)

    assert back.shape == (*shape, 3)
    assert data.dtype == np.float32
    assert np.array_equal(back.affine, affine)
    i, j, k = _ijk_of(back.affine, xyz).T
    assert np.array_equal(i, ijk[:, 0]) and np.array_equal(k, ijk[:, 2])
    assert np.array_equal(data[i, j, k, :], values.T.astype(np.float32))
    measured = np.zeros(shape, bool)
    measured[i, j, k] = True
    assert np.isnan(data[~measured]).all()  # documented fill: NaN outside the measured voxels
    assert not np.isnan(data[measured]).any()

    img3 = brainmaps.values_to_nifti(values[1], *xyz.T)
    assert img3.shape == shape
    assert np.array_equal(np.asarray(img3.dataobj)[i, j, k], values[1].astype(np.float32))


def test_round_trip_with_explicit_affine(tmp_path):
    # 3 mm isotropic, x flipped (radiological storage), origin not on any MNI grid.
    affine = np.array([[-3.0, 0, 0, 88.5], [0, 3.0, 0, -101.25], [0, 0, 3.0, -40.75], [0, 0, 0, 1]])
    shape = (30, 36, 28)
    rng = np.random.default_rng(2)
    flat = rng.choice(np.prod(shape), 200, replace=False)
    ijk = np.column_stack(np.unravel_index(flat, shape))
    xyz = (affine @ np.column_stack([ijk, np.ones(len(ijk))]).T).T[:, :3]
    values = rng.uniform(-1, 1, 200)

    grid = brainmaps.voxel_grid(*xyz.T, affine=affine, shape=shape)
    assert np.array_equal(grid.ijk, ijk)
    # A NIfTI adapter may store the affine flattened or as JSON (NetCDF attributes are 1D).
    for stored in (affine, affine.ravel().tolist(), json.dumps(affine.tolist())):
        img = brainmaps.values_to_nifti(values, *xyz.T, affine=stored, shape=shape)
        path = tmp_path / "explicit.nii.gz"
        nib.save(img, str(path))
        back, data = _read(path)
        assert np.array_equal(back.affine, affine)
        assert back.shape == shape
        i, j, k = _ijk_of(back.affine, xyz).T
        assert np.array_equal(data[i, j, k], values.astype(np.float32))
        assert np.isnan(data).sum() == np.prod(shape) - 200

    # Without a shape the volume is just large enough.
    img = brainmaps.values_to_nifti(values, *xyz.T, affine=affine)
    assert img.shape == tuple(ijk.max(axis=0) + 1)


# --------------------------------------------------------------------------- score maps
def test_write_score_maps_values_per_subject(mni4, tmp_path):
    affine, shape, ijk, xyz = mni4
    rng = np.random.default_rng(3)
    n_layers = len(LAYER_INDEX)
    # Two subjects at the very same voxels: only correct per-subject splitting can work.
    r = rng.uniform(-0.3, 0.8, (n_layers, 2 * N_VOXELS))
    r[:, 5] = np.nan                      # unmeasured in every layer -> NaN best layer
    r[3, 6] = np.nan                      # NaN in one layer is ignored
    da = _target_r(np.vstack([xyz, xyz]), r, ["sub-01"] * N_VOXELS + ["02"] * N_VOXELS)

    paths = brainmaps.write_score_maps(da, tmp_path / "maps", "toy_enc")
    names = sorted(p.name for p in paths)
    expected = sorted(f"toy_enc_sub-{s}_{kind}{ext}" for s in ("01", "02")
                      for kind in ("r", "bestlayer", "maxr") for ext in (".nii.gz", ".json"))
    assert names == expected
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == expected  # nothing else, no temp files

    for s, label in ((0, "01"), (1, "02")):
        rs = r[:, s * N_VOXELS:(s + 1) * N_VOXELS]
        i, j, k = _ijk_of(affine, xyz).T

        img, data = _read(tmp_path / "maps" / f"toy_enc_sub-{label}_r.nii.gz")
        assert img.shape == (*shape, n_layers)
        assert np.array_equal(img.affine, affine)
        for v in range(n_layers):  # volume order = layer order
            np.testing.assert_array_equal(data[i, j, k, v], rs[v].astype(np.float32))

        with np.errstate(invalid="ignore"):
            filled = np.where(np.isnan(rs), -np.inf, rs)
        want_pos = np.argmax(filled, axis=0)
        want_index = LAYER_INDEX[want_pos].astype(np.float32)
        want_max = filled.max(axis=0).astype(np.float32)
        if s == 0:
            want_index[5] = np.nan
            want_max[5] = np.nan

        _, best = _read(tmp_path / "maps" / f"toy_enc_sub-{label}_bestlayer.nii.gz")
        _, maxr = _read(tmp_path / "maps" / f"toy_enc_sub-{label}_maxr.nii.gz")
        assert best.shape == shape and maxr.shape == shape
        np.testing.assert_array_equal(best[i, j, k], want_index)
        np.testing.assert_array_equal(maxr[i, j, k], want_max)
        assert np.nanmax(best) <= LAYER_INDEX.max() and set(np.unique(best[i, j, k][~np.isnan(best[i, j, k])])) \
            <= set(LAYER_INDEX.astype(np.float32))
        outside = np.ones(shape, bool)
        outside[i, j, k] = False
        assert np.isnan(best[outside]).all() and np.isnan(maxr[outside]).all()

    side = json.loads((tmp_path / "maps" / "toy_enc_sub-02_r.json").read_text())
    assert [row["layer"] for row in side["layers"]] == [f"blocks.{k}" for k in LAYER_INDEX]
    assert [row["layer_index"] for row in side["layers"]] == LAYER_INDEX.tolist()
    assert side["subject"] == "02" and side["unmeasured_voxels"] == "NaN"


def test_best_layer_matches_argmax():
    rng = np.random.default_rng(4)
    r = rng.standard_normal((7, 50))
    r[2, :10] = r[4, :10] = 5.0  # ties go to the earlier layer, like argmax
    da = xr.DataArray(r, dims=("layer", "neuroid"))
    pos, best = brainmaps.best_layer(da)
    assert np.array_equal(pos, np.argmax(r, axis=0))
    assert np.array_equal(best, r.max(axis=0))
    assert (pos[:10] == 2).all()
    # Layer order is taken from the DataArray, not the axis order of the values.
    pos_t, _ = brainmaps.best_layer(da.transpose("neuroid", "layer"))
    assert np.array_equal(pos_t, pos)


# --------------------------------------------------------------------------- errors
def test_off_grid_coordinates_raise(mni4):
    _, _, _, xyz = mni4
    bad = xyz.copy()
    bad[10, 1] += 0.5  # half a mm = 1/8 voxel off the 4 mm grid
    with pytest.raises(ValueError, match=r"1 of 300 coordinates are off nilearn's MNI152 4 mm template grid") as e:
        brainmaps.values_to_nifti(np.zeros(N_VOXELS), *bad.T, resolution=4)
    assert "affine" in str(e.value)  # says how to fix it
    y_vox = (bad[10, 1] + 134.0) / 4.0  # the fractional voxel index the message reports
    assert f"{bad[10, 1]:g}" in str(e.value) and f"{y_vox:.3f}" in str(e.value)
    # Inferring the resolution already notices the 0.5 mm spacing.
    with pytest.raises(ValueError, match="spaced by 0.5 mm, not a whole number of mm"):
        brainmaps.values_to_nifti(np.zeros(N_VOXELS), *bad.T)
    # Well inside the tolerance: still on the grid.
    ok = xyz.copy()
    ok[10, 1] += 1e-4
    brainmaps.values_to_nifti(np.zeros(N_VOXELS), *ok.T)
    # Aligned 4 mm spacing but shifted origin: off nilearn's grid.
    with pytest.raises(ValueError, match="off nilearn's MNI152 4 mm"):
        brainmaps.voxel_grid(xyz[:, 0] + 2.0, xyz[:, 1], xyz[:, 2])
    # Continuous coordinates (e.g. jittered simulated voxels) are no grid at all.
    jitter = xyz + np.random.default_rng(5).uniform(-1, 1, xyz.shape)
    with pytest.raises(ValueError, match="not a whole number of mm"):
        brainmaps.voxel_grid(*jitter.T)
    # Off an explicit affine's grid.
    with pytest.raises(ValueError, match="off the given affine's grid"):
        brainmaps.voxel_grid([1.0], [0.0], [0.0], affine=np.diag([3.0, 3.0, 3.0, 1.0]))


def test_outside_volume_raises(mni4):
    _, _, _, xyz = mni4
    far = xyz.copy()
    far[0] = [-98.0 - 400.0, -134.0, -72.0]  # on the 4 mm lattice, 100 voxels outside
    with pytest.raises(ValueError, match=r"1 of 300 coordinates fall outside the \(50, 59, 48\) volume"):
        brainmaps.values_to_nifti(np.zeros(N_VOXELS), *far.T)
    with pytest.raises(ValueError, match="outside"):
        brainmaps.voxel_grid([-3.0], [0.0], [0.0], affine=np.diag([3.0, 3.0, 3.0, 1.0]))


def test_duplicate_coordinates_raise(mni4, tmp_path):
    _, _, _, xyz = mni4
    dup = np.vstack([xyz, xyz[:3]])
    with pytest.raises(ValueError, match=r"3 voxels hold more than one neuroid \(duplicate coordinates\)") as e:
        brainmaps.values_to_nifti(np.zeros(len(dup)), *dup.T)
    assert "split the neuroids by subject" in str(e.value)
    # Within one subject, write_score_maps refuses too, and writes nothing.
    da = _target_r(dup, np.zeros((2, len(dup))), ["01"] * len(dup))
    with pytest.raises(ValueError, match="duplicate coordinates"):
        brainmaps.write_score_maps(da, tmp_path, "dup")
    assert list(tmp_path.iterdir()) == []


def test_non_mni_space_without_affine_raises(mni4, tmp_path):
    _, _, _, xyz = mni4
    da = _target_r(xyz, np.zeros((2, N_VOXELS)), ["01"] * N_VOXELS, space="T1w")
    with pytest.raises(ValueError, match="space 'T1w', not MNI152, and no affine"):
        brainmaps.write_score_maps(da, tmp_path, "native")
    # With the affine stored as an attribute, the native grid is used.
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-98, -134, -72]
    da.attrs["affine"] = affine.ravel().tolist()
    paths = brainmaps.write_score_maps(da, tmp_path, "native")
    img = nib.load(str(paths[0]))
    assert np.array_equal(img.affine, affine)


# --------------------------------------------------------------------------- atomic writes
def test_write_is_all_or_nothing(mni4, tmp_path, monkeypatch):
    _, _, _, xyz = mni4
    rng = np.random.default_rng(6)
    da = _target_r(np.vstack([xyz, xyz]), rng.uniform(size=(3, 2 * N_VOXELS)),
                   ["01"] * N_VOXELS + ["02"] * N_VOXELS)
    out = tmp_path / "out"

    # A failure while writing (here the 4th file) leaves neither outputs nor temporary files.
    real = pathlib.Path.write_bytes
    calls = {"n": 0}

    def failing(self, data):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full (forced)")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", failing)
    with pytest.raises(OSError, match="forced"):
        brainmaps.write_score_maps(da, out, "toy")
    assert calls["n"] == 4
    assert list(out.iterdir()) == []
    monkeypatch.undo()

    # A bad second subject is caught before the first subject's files are written.
    bad = da.copy()
    x = bad["x"].values.copy()
    x[-1] += 0.3
    bad = bad.assign_coords(x=("neuroid", x))
    with pytest.raises(ValueError, match="not a whole number of mm"):
        brainmaps.write_score_maps(bad, out, "toy")
    assert list(out.iterdir()) == []

    # Success: exactly the returned files, no temporaries; a failed rewrite keeps the old files.
    paths = brainmaps.write_score_maps(da, out, "toy")
    assert sorted(out.iterdir()) == sorted(paths) and len(paths) == 12
    before = {p.name: p.read_bytes() for p in paths}
    with pytest.raises(ValueError):
        brainmaps.write_score_maps(bad, out, "toy")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Same inputs, byte-identical files (gzip without a timestamp).
    brainmaps.write_score_maps(da, out, "toy")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --------------------------------------------------------------------------- figures
def _png(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    buf.seek(0)
    return plt.imread(buf)


def _coloured_pixels(rgba: np.ndarray) -> int:
    rgb = rgba[..., :3]
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2).sum())


def test_glass_brain_figure(mni4):
    _, _, _, xyz = mni4
    rng = np.random.default_rng(8)
    r = rng.uniform(-0.2, 0.6, (len(LAYER_INDEX), 2 * N_VOXELS))
    da = _target_r(np.vstack([xyz, xyz]), r, ["01"] * N_VOXELS + ["02"] * N_VOXELS)
    assert matplotlib.get_backend().lower() == "agg"

    with pytest.raises(ValueError, match="choose one with subject="):
        plot_best_layer_glass_brain(da)

    fig = plot_best_layer_glass_brain(da, subject="01", threshold=0.1)
    assert isinstance(fig, Figure)
    shown = _png(fig)
    assert shown.std() > 0.05
    title = fig._suptitle.get_text()
    assert "held-out Pearson r" in title and "01" in title and "> 0.1" in title
    n_shown = int((r[:, :N_VOXELS].max(axis=0) > 0.1).sum())
    assert f"{n_shown}/{N_VOXELS} voxels" in title
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert {f"{k}: blocks.{k}" for k in LAYER_INDEX} <= set(labels)
    plt.close(fig)

    # Nothing above threshold: the brain is drawn without coloured voxels (only the colour bar).
    fig = plot_best_layer_glass_brain(da, subject="01", threshold=0.99)
    hidden = _png(fig)
    plt.close(fig)
    assert _coloured_pixels(shown) > _coloured_pixels(hidden) + 500

    # Depth colouring, drawn into given axes.
    fig, ax = plt.subplots(figsize=(8, 3))
    out = plot_best_layer_glass_brain(da, subject="02", value="depth", axes=ax)
    assert out is fig
    assert _png(fig).std() > 0.05
    plt.close(fig)
