"""Encoding maps on fsaverage5 (brainalign.figures.surface), on a synthetic scores file.

The expected volumes are built here with numpy + nibabel on nilearn's 4 mm MNI152 grid,
independently of brainalign.brainmaps, and projected with nilearn's own vol_to_surf.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

pytest.importorskip("nilearn")
from nilearn import datasets, surface  # noqa: E402

from brainalign.figures.surface import (  # noqa: E402
    DEPTH_INTERPOLATION,
    MIN_COVERAGE,
    plot_encoding_surface,
    surface_maps,
)

LAYERS = ["embeddings", "block_01", "block_02"]
DEPTHS = np.array([0.0, 0.5, 1.0])
SUBJECTS = ["sub-01", "sub-02"]
THRESHOLD = 0.1
N_VERTICES = 10242


@pytest.fixture(scope="module")
def template():
    img = datasets.load_mni152_template(resolution=4)
    return np.asarray(img.affine, dtype=np.float64), tuple(img.shape[:3])


def _blob(affine, centre_mm, half=2):
    """mm coordinates of the (2*half+1)^3 grid voxels around the voxel nearest centre_mm."""
    c = np.rint(np.linalg.inv(affine) @ np.r_[centre_mm, 1.0])[:3].astype(int)
    off = np.arange(-half, half + 1)
    ijk = np.stack(np.meshgrid(off, off, off, indexing="ij"), -1).reshape(-1, 3) + c
    return (affine @ np.column_stack([ijk, np.ones(len(ijk))]).T).T[:, :3]


@pytest.fixture(scope="module")
def synthetic(template):
    """Two subjects sharing a 4 mm grid: a left superior-temporal blob with r well above
    threshold (best layer 0 on its medial half (x > -56), 2 on its lateral half), a right one with r below
    threshold everywhere; sub-02 lacks 10 voxels of the left blob. Also returns the expected
    per-voxel maps computed here with plain numpy."""
    affine, _ = template
    rng = np.random.default_rng(0)
    left = _blob(affine, (-54.0, -22.0, 8.0))
    right = _blob(affine, (54.0, -22.0, 8.0))
    voxels = np.concatenate([left, right])
    is_left = np.r_[np.ones(len(left), bool), np.zeros(len(right), bool)]
    rows, r_cols, subj = [], [], []
    for s, subject in enumerate(SUBJECTS):
        keep = np.ones(len(voxels), bool)
        if s == 1:
            keep[:10] = False  # sub-02 was not measured at 10 left voxels
        for v in np.flatnonzero(keep):
            if is_left[v]:
                best = 0 if voxels[v, 0] > -56 else 2
                r = rng.uniform(0.0, 0.2, size=3)
                r[best] = rng.uniform(0.35, 0.6)
            else:
                r = rng.uniform(-0.05, 0.08, size=3)
            rows.append(voxels[v])
            r_cols.append(r)
            subj.append(subject)
    xyz = np.array(rows)
    target_r = np.array(r_cols).T  # (layer, neuroid)
    n = xyz.shape[0]
    ds = xr.Dataset(
        {"target_r": (("layer", "neuroid"), target_r,
                      {"description": "held-out Pearson r per target"}),
         "target_r2": (("layer", "neuroid"), target_r ** 2),
         "score": (("layer", "subject"), rng.uniform(size=(3, len(SUBJECTS))))},
        coords={"layer": LAYERS, "layer_index": ("layer", np.arange(3)), "depth": ("layer", DEPTHS),
                "subject": SUBJECTS, "target_subject": ("neuroid", np.array(subj)),
                "target_roi": ("neuroid", np.array(["Auditory"] * n)),
                "x": ("neuroid", xyz[:, 0]), "y": ("neuroid", xyz[:, 1]), "z": ("neuroid", xyz[:, 2])},
        attrs={"model": "tinymodel", "dataset": "toyfmri", "metric": "encoding"},
    )
    for c in "xyz":
        ds[c].attrs.update(units="mm", space="MNI152")

    # expected per voxel, by plain grouping on coordinates
    keys = [tuple(v) for v in np.round(xyz, 3)]
    expected = {}
    for key in dict.fromkeys(keys):
        cols = [k for k, kk in enumerate(keys) if kk == key]
        per_subject_best = target_r[:, cols].max(axis=0)
        mean_per_layer = target_r[:, cols].mean(axis=1)
        expected[key] = (per_subject_best.mean(), int(np.argmax(mean_per_layer)), mean_per_layer.max(), len(cols))
    return ds, expected


def _image(template, expected, value, fill):
    affine, shape = template
    data = np.full(shape, fill, dtype=np.float32)
    inv = np.linalg.inv(affine)
    for key, vals in expected.items():
        v = value(vals)
        if v is None:
            continue
        i, j, k = np.rint(inv @ np.r_[key, 1.0])[:3].astype(int)
        data[i, j, k] = v
    return nib.Nifti1Image(data, affine)


@pytest.fixture(scope="module")
def fsav():
    return datasets.fetch_surf_fsaverage("fsaverage5")


@pytest.fixture(scope="module")
def maps(synthetic):
    return surface_maps(synthetic[0], threshold=THRESHOLD)


def _project(img, fsav, hemi, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return surface.vol_to_surf(img, fsav[f"pial_{hemi}"], inner_mesh=fsav[f"white_{hemi}"], **kw)


def test_expected_grouping_is_what_the_fixture_claims(synthetic):
    _, expected = synthetic
    counts = np.array([e[3] for e in expected.values()])
    assert len(expected) == 250 and (counts == 1).sum() == 10 and (counts == 2).sum() == 240


@pytest.mark.parametrize("hemi", ["left", "right"])
def test_best_r_equals_nilearn_projection(maps, synthetic, template, fsav, hemi):
    _, expected = synthetic
    values = _image(template, expected, lambda e: e[0], 0.0)
    measured = _image(template, expected, lambda e: 1.0, 0.0)
    num = _project(values, fsav, hemi)
    den = _project(measured, fsav, hemi)
    covered = np.isfinite(den) & (den >= MIN_COVERAGE)
    want = np.full(N_VERTICES, np.nan)
    want[covered] = num[covered] / den[covered]
    got = maps["best_r", hemi]
    assert got.shape == (N_VERTICES,)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert covered.sum() > 20  # the blob really reaches the cortex of this hemisphere
    np.testing.assert_allclose(got[covered], want[covered], atol=1e-6, rtol=0)
    # a weighted mean of measured voxels only: never outside their range (no 0s blended in)
    lo = min(e[0] for e in expected.values())
    hi = max(e[0] for e in expected.values())
    assert np.nanmin(got) >= lo - 1e-6 and np.nanmax(got) <= hi + 1e-6


@pytest.mark.parametrize("hemi", ["left", "right"])
def test_depth_equals_nilearn_nearest_projection(maps, synthetic, template, fsav, hemi):
    _, expected = synthetic
    img = _image(template, expected, lambda e: DEPTHS[e[1]] if e[2] > THRESHOLD else None, np.nan)
    want = _project(img, fsav, hemi, interpolation=DEPTH_INTERPOLATION)
    got = maps["depth", hemi]
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], atol=1e-6, rtol=0)


def test_unmeasured_vertices_are_nan_not_zero(maps, synthetic, fsav):
    ds, _ = synthetic
    xyz = np.column_stack([ds[c].values for c in "xyz"])
    for hemi in ("left", "right"):
        pial = surface.load_surf_mesh(fsav[f"pial_{hemi}"]).coordinates
        dist = np.min(np.linalg.norm(pial[:, None, :] - xyz[None, ::7, :], axis=2), axis=1)
        far = dist > 25.0  # mm from every measured voxel (sampled every 7th; blob spacing 4 mm)
        assert far.sum() > 8000
        assert np.all(np.isnan(maps["best_r", hemi][far]))
        assert np.all(np.isnan(maps["depth", hemi][far]))
        assert np.all(maps["coverage", hemi][far] == 0)
        assert not np.any(maps["best_r", hemi] == 0)


def test_depth_only_above_threshold_and_never_blended(maps):
    # right blob: measured (best r shown) but every r < threshold -> no depth at all
    assert np.isfinite(maps["best_r", "right"]).sum() > 20
    assert np.all(np.isnan(maps["depth", "right"]))
    # left blob: both halves' best layers appear, and nothing in between (nearest, not blended)
    left = maps["depth", "left"]
    vals = np.unique(left[np.isfinite(left)])
    assert set(vals.tolist()) == {0.0, 1.0}
    assert maps["n_shown"] == 125 and maps["n_voxels"] == 250
    assert maps["depths"].tolist() == DEPTHS.tolist()


def test_higher_threshold_hides_depth_only(synthetic, maps):
    strict = surface_maps(synthetic[0], threshold=0.99)
    for hemi in ("left", "right"):
        assert np.all(np.isnan(strict["depth", hemi]))
        np.testing.assert_array_equal(strict["best_r", hemi], maps["best_r", hemi])


def test_constant_r_projects_to_that_constant(synthetic):
    ds = synthetic[0].copy()
    ds["target_r"] = xr.full_like(ds["target_r"], 0.3)
    m = surface_maps(ds)
    got = np.concatenate([m["best_r", h] for h in ("left", "right")])
    assert np.isfinite(got).sum() > 40
    np.testing.assert_allclose(got[np.isfinite(got)], 0.3, atol=1e-6)
    depth = np.concatenate([m["depth", h] for h in ("left", "right")])
    assert set(np.unique(depth[np.isfinite(depth)]).tolist()) == {0.0}  # ties: the earlier layer


def test_meshes_are_returned(maps, fsav):
    for hemi in ("left", "right"):
        coords, faces = maps["pial", hemi]
        ref = surface.load_surf_mesh(fsav[f"pial_{hemi}"])
        np.testing.assert_allclose(coords, ref.coordinates)
        assert coords.shape == (N_VERTICES, 3) and faces.shape == (20480, 3)
        assert maps["inflated", hemi][0].shape == (N_VERTICES, 3)
        assert maps["sulc", hemi].shape == (N_VERTICES,)


def test_figure(synthetic, tmp_path):
    png, svg = tmp_path / "surf.png", tmp_path / "surf.svg"
    fig = plot_encoding_surface(synthetic[0], [png, svg], threshold=THRESHOLD)
    panels = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(panels) == 8
    assert all(len(ax.collections) >= 1 for ax in panels)
    titles = [ax.get_title() for ax in panels[:4]]
    assert titles == ["left lateral", "left medial", "right lateral", "right medial"]
    labels = [ax.get_ylabel() for ax in fig.axes if ax.name != "3d"]
    assert labels == ["held-out r (best layer)", "relative depth of best layer"]
    depth_cbar = [ax for ax in fig.axes if ax.get_ylabel() == "relative depth of best layer"][0]
    assert depth_cbar.get_ylim() == pytest.approx((0.0, 1.0))
    assert fig._suptitle.get_text() == "tinymodel on toyfmri: encoding maps on fsaverage5 (held-out r > 0.1)"
    assert png.stat().st_size > 10_000 and svg.stat().st_size > 10_000
    pixels = mpimg.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert pixels[..., :3].std() > 0.05
    assert b"relative depth of best layer" in svg.read_bytes()


def test_missing_coordinate_is_named(synthetic):
    with pytest.raises(ValueError, match="'x'"):
        surface_maps(synthetic[0].drop_vars("x"))


def test_missing_target_r_is_named(synthetic):
    with pytest.raises(ValueError, match="target_r"):
        surface_maps(synthetic[0].drop_vars("target_r"))
