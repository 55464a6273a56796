"""``nifti_events``: BIDS-style 4D NIfTI runs + events.tsv -> single-trial betas per ROI voxel.

Small runs are written in each test (a 12^3 grid at 4 mm, two ROIs as spheres), so the
GLM numbers can be checked against nilearn's own public API and closed-form cases, and
each bad input can be planted on its own."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainalign.datasets import nifti_events, write_dataset
from brainalign.datasets.contract import BrainDataError, check_brain
from brainalign.datasets.nifti_rois import coordinate_atlas, roi_labels, voxel_coordinates
from brainalign.io import write_netcdf

AFFINE = np.array([[4.0, 0, 0, -24], [0, 4.0, 0, -24], [0, 0, 4.0, -24], [0, 0, 0, 1]])
SHAPE = (12, 12, 12)
IDS = [f"s{i:02d}" for i in range(12)]
ROIS = {"spheres": {"a": {"center": [0, 0, 0], "radius": 6}, "b": {"center": [12, 12, 12], "radius": 6}}}
T_R = 2.0


def stimulus_set(ids=IDS) -> xr.Dataset:
    return xr.Dataset(coords={"stimulus_id": ("stimulus", np.asarray(ids))})


def design(events: pd.DataFrame, n_vols: int) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    ev = events.assign(trial_type=events["stimulus_id"])[["onset", "duration", "trial_type"]]
    return make_first_level_design_matrix(np.arange(n_vols) * T_R, ev, hrf_model="glover", drift_model=None)


def write_runs(root, *, n_subjects=1, n_runs=2, noise=0.0, seed=0, betas=None, header_tr=True, sidecar=False,
               ids=IDS):
    """Write runs with known single-trial betas (``betas[subject][run]``: trial x voxel in
    events order, % units on a baseline of 100). Returns {subject: [(events, betas), ...]}."""
    rng = np.random.default_rng(seed)
    n_vols = 6 * len(ids) // 2 + 15
    truth = {}
    for s in range(n_subjects):
        subject = f"sub-{s + 1:02d}"
        func = root / subject / "func"
        func.mkdir(parents=True, exist_ok=True)
        truth[subject] = []
        for r in range(n_runs):
            order = rng.permutation(len(ids))
            events = pd.DataFrame({"onset": 4.0 + 6.0 * np.arange(len(ids)), "duration": 1.0,
                                   "trial_type": "sentence", "stimulus_id": np.asarray(ids)[order]})
            x = design(events, n_vols)[list(events["stimulus_id"])].to_numpy()
            b = rng.standard_normal((len(ids), np.prod(SHAPE))) if betas is None else betas
            data = 100.0 + x @ b + noise * rng.standard_normal((n_vols, np.prod(SHAPE)))
            img = nib.Nifti1Image(data.T.reshape(SHAPE + (n_vols,)).astype(np.float64), AFFINE)
            if header_tr:
                img.header.set_xyzt_units("mm", "sec")
                img.header.set_zooms((4.0, 4.0, 4.0, T_R))
            stem = func / f"{subject}_task-read_run-{r + 1}"
            nib.save(img, f"{stem}_bold.nii.gz")
            events.to_csv(f"{stem}_events.tsv", sep="\t", index=False)
            if sidecar:
                (func / f"{stem.name}_bold.json").write_text(json.dumps({"RepetitionTime": T_R}))
            truth[subject].append((events, b))
    return truth


def spec(root, **extra) -> dict:
    return {"kind": "nifti_events", "stimuli": "s", "root": str(root), "task": "read", "mask": "none",
            "rois": ROIS, **extra}


def roi_mask() -> np.ndarray:
    labels, _ = roi_labels(ROIS, AFFINE, SHAPE, key="rois")
    return labels > 0


# ----------------------------------------------------------------------------- numbers
def test_lsa_recovers_known_betas_exactly(tmp_path):
    """Noise-free runs built from the GLM's own regressors: OLS gives back every trial's beta
    (to float32 precision: nilearn's masker reads the runs as float32)."""
    truth = write_runs(tmp_path, noise=0.0)
    brain = nifti_events.load("d", spec(tmp_path, glm={"noise_model": "ols", "signal_scaling": False}),
                              stimulus_set())
    check_brain(brain)
    assert brain["responses"].dims == ("stimulus", "neuroid", "repetition")
    assert brain.sizes["repetition"] == 2 and list(brain["stimulus_id"].values) == IDS
    mask = roi_mask().ravel()
    for r, (events, b) in enumerate(truth["sub-01"]):
        expected = pd.DataFrame(b[:, mask], index=events["stimulus_id"]).loc[IDS].to_numpy()
        np.testing.assert_allclose(brain["responses"].isel(repetition=r).values, expected, rtol=0, atol=1e-4)


def test_betas_equal_nilearn_contrasts(tmp_path):
    """The one-pass read of all betas equals nilearn's compute_contrast(effect_size), per trial,
    with AR(1) noise modelling and percent-signal scaling (the defaults)."""
    from nilearn.glm.first_level import FirstLevelModel

    write_runs(tmp_path, n_runs=1, noise=1.0)
    run = nifti_events.discover_runs("d", spec(tmp_path), None)[0]
    events = nifti_events.read_events(run, IDS, "stimulus_id", 1e9)
    img = nib.load(run.bold)
    mask = nib.Nifti1Image(roi_mask().astype(np.uint8), AFFINE)
    model = FirstLevelModel(t_r=T_R, mask_img=mask, minimize_memory=True).fit(
        img, events=events[["onset", "duration", "regressor"]].rename(columns={"regressor": "trial_type"}))
    betas = nifti_events.glm_betas(model)
    for trial in events["regressor"]:
        reference = np.asarray(model.compute_contrast(trial, output_type="effect_size").dataobj)[roi_mask()]
        np.testing.assert_allclose(betas.loc[trial].to_numpy(), reference, rtol=1e-10, atol=1e-12)


def test_lss_tracks_the_truth(tmp_path):
    truth = write_runs(tmp_path, n_runs=1, noise=0.05, seed=3)
    lsa = nifti_events.load("d", spec(tmp_path, glm={"signal_scaling": False}), stimulus_set())
    lss = nifti_events.load("d", spec(tmp_path, glm={"method": "lss", "signal_scaling": False}), stimulus_set())
    events, b = truth["sub-01"][0]
    expected = pd.DataFrame(b[:, roi_mask().ravel()], index=events["stimulus_id"]).loc[IDS].to_numpy()
    # measured: r = 0.987 (LSA) and 0.854 (LSS; LSS trades bias for variance, a win only under noise)
    for brain, floor in ((lsa, 0.97), (lss, 0.8)):
        r = np.corrcoef(brain["responses"].isel(repetition=0).values.ravel(), expected.ravel())[0, 1]
        assert r > floor
    assert not np.allclose(lsa["responses"].values, lss["responses"].values)
    assert json.loads(lss.attrs["glm"])["method"] == "lss"


def test_coordinates_rois_and_provenance(tmp_path):
    write_runs(tmp_path, n_subjects=2, n_runs=2, noise=1.0)
    brain = nifti_events.load("d", spec(tmp_path), stimulus_set())
    labels, names = roi_labels(ROIS, AFFINE, SHAPE, key="rois")
    xyz = voxel_coordinates(AFFINE, SHAPE)[labels > 0]
    one = brain.isel(neuroid=brain["subject"].values == "sub-01")
    np.testing.assert_array_equal(np.stack([one[c].values for c in "xyz"], 1), xyz)
    np.testing.assert_array_equal(one["roi"].values, np.asarray(names)[labels[labels > 0] - 1])
    # spheres of radius 6 mm on a 4 mm grid: the centre, 6 faces and 12 edges = 19 voxels
    assert (one["roi"].values == "a").sum() == 19 and (one["roi"].values == "b").sum() == 19
    assert sorted(set(brain["subject"].values)) == ["sub-01", "sub-02"]
    assert brain["x"].attrs["units"] == "mm" and json.loads(brain.attrs["affine"]) == AFFINE.tolist()
    assert brain.attrs["t_r"] == T_R and brain.attrs["n_voxels_dropped_nan"] == 0
    assert brain["responses"].attrs["units"] == "% signal change"


def test_tr_from_sidecar_when_the_header_has_none(tmp_path):
    write_runs(tmp_path, n_runs=1, header_tr=False, sidecar=True)
    assert nifti_events.load("d", spec(tmp_path), stimulus_set()).attrs["t_r"] == T_R


def test_explicit_runs_and_nuisance_events(tmp_path):
    """``runs`` instead of ``root``; events without a stimulus id become nuisance regressors."""
    write_runs(tmp_path, n_runs=1, noise=1.0)
    func = tmp_path / "sub-01" / "func"
    events = pd.read_csv(func / "sub-01_task-read_run-1_events.tsv", sep="\t")
    extra = pd.DataFrame({"onset": [1.0], "duration": [0.5], "trial_type": ["button"], "stimulus_id": ["n/a"]})
    pd.concat([events, extra]).to_csv(func / "custom_events.tsv", sep="\t", index=False)
    entry = {"kind": "nifti_events", "stimuli": "s", "mask": "none", "rois": ROIS, "runs": [
        {"subject": "sub-07", "bold": str(func / "sub-01_task-read_run-1_bold.nii.gz"),
         "events": str(func / "custom_events.tsv")}]}
    brain = nifti_events.load("d", entry, stimulus_set())
    assert set(brain["subject"].values) == {"sub-07"} and brain.sizes["repetition"] == 1


def test_coordinate_atlases_carry_networks():
    seitzman = coordinate_atlas("seitzman_2018")
    assert len(seitzman) == 300 and {"DefaultMode", "Auditory", "Visual"} <= set(seitzman["network"])
    assert set(seitzman["radius"]) <= {4.0, 5.0}
    dosenbach = coordinate_atlas("dosenbach_2010")
    assert len(dosenbach) == 160 and "default" in set(dosenbach["network"])
    power = coordinate_atlas("power_2011")
    assert len(power) == 264 and (power["network"] == "").all()
    from brainalign.datasets.nifti_rois import DEFAULT_RADIUS_MM
    assert (power["radius"] == DEFAULT_RADIUS_MM).all()


def test_network_rois_on_the_mni_grid():
    """Seitzman networks as ROIs on nilearn's 4 mm template: each voxel within a sphere of its
    network, and every sphere centre's voxel labelled with its own network (nearest centre)."""
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=4)
    entry = {"coords": "seitzman_2018", "radius": 8, "select": ["Auditory", "Visual"]}
    labels, names = roi_labels(entry, template.affine, template.shape, key="rois")
    assert names == ["Auditory", "Visual"]
    atlas = coordinate_atlas("seitzman_2018")
    atlas = atlas[atlas["network"].isin(names)]
    xyz = voxel_coordinates(template.affine, template.shape)
    for k, name in enumerate(names):
        centres = atlas.loc[atlas["network"] == name, ["x", "y", "z"]].to_numpy()
        mine = xyz[labels == k + 1]
        nearest = np.min(np.linalg.norm(mine[:, None] - centres[None], axis=2), axis=1)
        assert nearest.max() <= 8 + 1e-6
    with pytest.raises(BrainDataError, match="no network labels"):
        roi_labels({"coords": "power_2011", "group_by": "network"}, template.affine, template.shape, key="rois")


def test_atlas_label_image(tmp_path):
    values = np.zeros(SHAPE, dtype=np.int16)
    values[2:5, 2:5, 2:5] = 3
    values[7:9, 7:9, 7:9] = 9
    nib.save(nib.Nifti1Image(values, AFFINE), tmp_path / "atlas.nii.gz")
    pd.DataFrame({"index": [3, 9], "name": ["V1", "IT"]}).to_csv(tmp_path / "atlas.tsv", sep="\t", index=False)
    entry = {"atlas": {"path": str(tmp_path / "atlas.nii.gz"), "labels": str(tmp_path / "atlas.tsv")},
             "select": ["IT"]}
    labels, names = roi_labels(entry, AFFINE, SHAPE, key="rois")
    assert names == ["IT"] and (labels == 1).sum() == 8 and labels.max() == 1


# ----------------------------------------------------------------------------- bad inputs
def _edit_events(root, run=1, **columns):
    path = root / "sub-01" / "func" / f"sub-01_task-read_run-{run}_events.tsv"
    events = pd.read_csv(path, sep="\t")
    for k, v in columns.items():
        if v is None:
            events = events.drop(columns=k)
        else:
            events[k] = v
    events.to_csv(path, sep="\t", index=False)
    return path


def _bad(tmp_path, entry, match, stimuli=None):
    """The error names the file or key, and write_dataset leaves no output behind."""
    out = tmp_path / "out" / "d.nc"
    with pytest.raises(BrainDataError, match=match):
        write_dataset("d", entry, _stimuli_file(tmp_path, stimuli), out)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file left either


def _stimuli_file(tmp_path, ids=None):
    path = tmp_path / "stimuli.nc"
    write_netcdf(stimulus_set(ids or IDS), path)
    return path


def test_bad_event_stimulus_ids(tmp_path):
    write_runs(tmp_path, n_runs=1)
    path = _edit_events(tmp_path, stimulus_id=["s00"] * 11 + ["zz99"])
    _bad(tmp_path, spec(tmp_path), f"{path}.*not in the stimulus set.*zz99")


def test_bad_events_missing_column(tmp_path):
    write_runs(tmp_path, n_runs=1)
    path = _edit_events(tmp_path, duration=None)
    _bad(tmp_path, spec(tmp_path), f"{path}: missing column.*duration")


def test_bad_events_after_the_run_ends(tmp_path):
    write_runs(tmp_path, n_runs=1)
    path = _edit_events(tmp_path, onset=4.0 + 600.0 * np.arange(12))
    _bad(tmp_path, spec(tmp_path), f"{path}: .* start at or after the end of the run")


def test_bad_tr_missing(tmp_path):
    write_runs(tmp_path, n_runs=1, header_tr=False)
    _bad(tmp_path, spec(tmp_path), "the TR is missing.*datasets.d.t_r")


def test_bad_tr_inconsistent_between_runs(tmp_path):
    write_runs(tmp_path, n_runs=2)
    path = tmp_path / "sub-01" / "func" / "sub-01_task-read_run-2_bold.nii.gz"
    img = nib.load(path)
    img.header.set_zooms((4.0, 4.0, 4.0, 2.5))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header), path)
    _bad(tmp_path, spec(tmp_path), "inconsistent TRs between runs.*run-1_bold.nii.gz: 2 s.*run-2_bold.nii.gz: 2.5 s")


def test_bad_tr_config_disagrees_with_header(tmp_path):
    write_runs(tmp_path, n_runs=1)
    _bad(tmp_path, spec(tmp_path, t_r=1.5), r"config key 'datasets.d.t_r' is 1.5 s but .*run-1_bold.nii.gz says")


def test_bad_affines_differ_between_runs(tmp_path):
    write_runs(tmp_path, n_runs=2)
    path = tmp_path / "sub-01" / "func" / "sub-01_task-read_run-2_bold.nii.gz"
    img = nib.load(path)
    shifted = AFFINE.copy()
    shifted[0, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), shifted, img.header), path)
    _bad(tmp_path, spec(tmp_path), "run-2_bold.nii.gz: its affine or grid differs from .*run-1_bold.nii.gz")


def test_bad_roi_empty_after_masking(tmp_path):
    write_runs(tmp_path, n_runs=1)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[:3] = 1  # x <= -16 mm: both spheres lie outside
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    _bad(tmp_path, spec(tmp_path, mask=str(tmp_path / "mask.nii.gz")),
         r"config key 'datasets.d.rois': ROI\(s\) \['a', 'b'\] are empty after masking")


def test_bad_roi_outside_the_image(tmp_path):
    write_runs(tmp_path, n_runs=1)
    entry = spec(tmp_path, rois={"spheres": {"far": {"center": [80, 80, 80], "radius": 4}}})
    _bad(tmp_path, entry, r"config key 'datasets.d.rois': ROI\(s\) \['far'\] are empty")


def test_bad_not_4d(tmp_path):
    write_runs(tmp_path, n_runs=1)
    path = tmp_path / "sub-01" / "func" / "sub-01_task-read_run-1_bold.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(SHAPE), AFFINE), path)
    _bad(tmp_path, spec(tmp_path), f"{path}: not a 4D image")


def test_bad_no_runs_and_no_events(tmp_path):
    (tmp_path / "empty").mkdir()
    _bad(tmp_path, spec(tmp_path / "empty"), "config key 'datasets.d.root': no runs 'sub-\\*_task-read")
    write_runs(tmp_path / "bids", n_runs=1)
    (tmp_path / "bids" / "sub-01" / "func" / "sub-01_task-read_run-1_events.tsv").unlink()
    _bad(tmp_path, spec(tmp_path / "bids"), "run-1_bold.nii.gz: no events file 'sub-01_task-read_run-1_events.tsv'")


def _corrupt_voxel(root, value):
    """Set one ROI voxel (the centre of sphere 'a') to ``value`` in every volume of run 1."""
    path = root / "sub-01" / "func" / "sub-01_task-read_run-1_bold.nii.gz"
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float64)
    data[6, 6, 6, :] = value
    nib.save(nib.Nifti1Image(data, img.affine, img.header), path)


@pytest.mark.parametrize("value, counter", [(np.nan, "n_voxels_dropped_nan"), (50.0, "n_voxels_dropped_constant")])
def test_bad_voxels_dropped_with_a_count(tmp_path, value, counter):
    write_runs(tmp_path, n_runs=2, noise=1.0)
    _corrupt_voxel(tmp_path, value)
    with pytest.warns(UserWarning, match="sub-01: .* dropped them"):
        brain = nifti_events.load("d", spec(tmp_path), stimulus_set())
    assert brain.attrs[counter] == 1 and brain.sizes["neuroid"] == 37
    assert not ((brain["x"] == 0) & (brain["y"] == 0) & (brain["z"] == 0)).any()
    assert np.isfinite(brain["responses"].values).all()


def test_bad_voxels_refused_when_config_says_so(tmp_path):
    write_runs(tmp_path, n_runs=1, noise=1.0)
    _corrupt_voxel(tmp_path, np.nan)
    _bad(tmp_path, spec(tmp_path, bad_voxels="error"), "1 ROI voxel\\(s\\) with NaN.*'datasets.d.bad_voxels'")


def test_missing_stimuli_in_the_data(tmp_path):
    """The stimulus set names a stimulus no run shows: an error, not a silent gap."""
    write_runs(tmp_path, n_runs=1)
    _bad(tmp_path, spec(tmp_path), "no trials for 1 stimulus id.*extra99", stimuli=IDS + ["extra99"])
