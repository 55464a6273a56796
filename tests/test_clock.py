"""Features on the scanner's clock, blocked folds, circular shifts and the inter-subject ceiling.

References: nilearn's ``compute_regressor`` (the HRF map), a loop transcription of the Huth lab's
``lanczosinterp2D`` (the Lanczos map), and the distributed word-rate regressors of Brennan et al.
2016 (the timing of the Alice data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brainalign.clock import hrf_matrix, lanczos_matrix, on_volumes, volume_times
from brainalign.metrics import stats
from brainalign.metrics.ceiling import inter_subject_ceiling
from brainalign.metrics.encoding import blocked_splits, delay_features, outer_splits

ALICE = Path(__file__).resolve().parents[2] / "shared" / "data" / "brennan2016_alice"
TEXTGRID = ALICE / "stimuli" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"
needs_alice = pytest.mark.skipif(not ALICE.is_dir(), reason=f"the Alice data is not at {ALICE}")


@pytest.mark.parametrize("hrf_model", ["glover", "spm"])
@pytest.mark.parametrize("tr, n, ref", [(2.0, 120, 0.0), (1.5, 200, 0.5)])
def test_hrf_matrix_equals_nilearn_compute_regressor(hrf_model, tr, n, ref):
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(3)
    frame_times = volume_times(n, tr, discarded=4, slice_time_ref=ref)
    onsets = np.sort(rng.uniform(frame_times[0] - 10, frame_times[-1], 300))
    amplitudes = rng.normal(size=(300, 3))
    ours = hrf_matrix(onsets, frame_times, hrf_model) @ amplitudes
    for k in range(3):
        reference, _ = compute_regressor(np.vstack([onsets, np.zeros(300), amplitudes[:, k]]), hrf_model,
                                         frame_times)
        np.testing.assert_allclose(ours[:, k], reference[:, 0], rtol=0, atol=1e-12)


def _lanczosinterp2d(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    """The Huth lab's interpolation, row by row, as published (a reference, not our code)."""
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    sincmat = np.zeros((len(newtime), len(oldtime)))
    for i in range(len(newtime)):
        t = (newtime[i] - oldtime) * cutoff
        with np.errstate(invalid="ignore", divide="ignore"):
            val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi ** 2 * t ** 2)
        val[t == 0] = 1.0
        val[np.abs(t) > window] = 0.0
        sincmat[i] = val
    return sincmat @ data


def test_lanczos_matrix_equals_lanczosinterp2d():
    rng = np.random.default_rng(4)
    new = volume_times(150, 2.0)
    old = np.sort(rng.uniform(0, 300, 700))
    old[5] = new[10]  # an event exactly on a volume: weight 1
    data = rng.normal(size=(700, 4))
    np.testing.assert_allclose(lanczos_matrix(old, new) @ data, _lanczosinterp2d(data, old, new), atol=1e-12)
    assert lanczos_matrix(old, new)[10, 5] == 1.0


def test_on_volumes_delays_shift_by_whole_volumes():
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(50, 80))
    values = rng.normal(size=(80, 3))
    out = on_volumes(values, matrix, [0, 2])
    np.testing.assert_allclose(out[:, :3], matrix @ values, atol=1e-12)
    np.testing.assert_allclose(out[2:, 3:], (matrix @ values)[:-2], atol=1e-12)
    assert (out[:2, 3:] == 0).all()
    np.testing.assert_allclose(out, delay_features(matrix @ values, [0, 2]), atol=0)


@pytest.mark.parametrize("folds, gap", [(5, 0), (5, 10), (4, 7)])
def test_blocked_folds_keep_the_gap(folds, gap):
    """No test volume is within ``gap`` volumes of a training volume, outer or inner."""
    n = 362
    splits = outer_splits(n, folds, seed=0, cv="blocked", gap=gap)
    assert np.array_equal(np.sort(np.concatenate([test for _, test in splits])), np.arange(n))
    for train, test in splits:
        assert np.all(np.diff(test) == 1)  # contiguous
        distance = np.abs(train[:, None] - test[None, :]).min()
        assert distance > gap
        for inner_train, inner_test in blocked_splits(train, 3, gap):
            times_train, times_test = train[inner_train], train[inner_test]
            assert np.abs(times_train[:, None] - times_test[None, :]).min() > gap
    with pytest.raises(ValueError, match="groups"):
        outer_splits(n, folds, seed=0, cv="blocked", gap=gap, groups=np.zeros(n))


def test_circular_shifts_are_rotations_of_at_least_min_shift():
    shifts = stats.circular_shifts(100, 500, np.random.default_rng(0), min_shift=30)
    offsets = shifts[:, 0]
    assert offsets.min() >= 30 and offsets.max() <= 70
    np.testing.assert_array_equal(shifts, (np.arange(100)[None] + offsets[:, None]) % 100)
    assert len(np.unique(offsets)) == 41  # every allowed offset is drawn
    with pytest.raises(ValueError, match="more than 60 samples"):
        stats.circular_shifts(60, 5, np.random.default_rng(0), min_shift=30)


def test_inter_subject_ceiling_is_leave_one_subject_out():
    rng = np.random.default_rng(6)
    shared = rng.normal(size=(200, 2))
    subjects = np.repeat(["a", "b", "c", "d"], 2)
    rois = np.tile(["x", "y"], 4)
    y = shared[:, [0, 1] * 4] + rng.normal(size=(200, 8))
    ceiling = inter_subject_ceiling(y, subjects, rois)
    for t in range(8):
        others = [k for k in range(8) if rois[k] == rois[t] and subjects[k] != subjects[t]]
        np.testing.assert_allclose(ceiling[t], np.corrcoef(y[:, t], y[:, others].mean(1))[0, 1], atol=1e-12)


def _alice_spec(**extra):
    return {"kind": "timeseries", "stimuli": "alice",
            "timecourses": str(ALICE / "fmri" / "6mm" / "{subject}-timecourses.txt"),
            "exclude_subjects": ["s33"], "columns": ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"],
            "tr": 2.0, "discarded_volumes": 10, **extra}


def _alice_words():
    from brainalign.stimuli import read_stimulus_table

    return read_stimulus_table({"kind": "textgrid", "path": str(TEXTGRID), "tier": "word", "group": "alice"})


@needs_alice
def test_alice_word_rate_matches_the_distributed_regressor():
    """The word rate built from the TextGrid (HRF, discarded volumes accounted for) correlates with
    every participant's sNN-rate.txt at r >= 0.9, and less when shifted by one volume either way."""
    from brainalign.datasets.timeseries import load

    words = _alice_words()
    brain = load("alice", _alice_spec(), words)
    rate = brain["baseline_word_rate"].values
    subjects = np.unique(brain["subject"].values)
    assert len(subjects) == 27 and brain.sizes["stimulus"] == 362
    shifted = {shift: load("alice", _alice_spec(offset=shift * 2.0), words)["baseline_word_rate"].values
               for shift in (-1, 1)}
    for subject in subjects:
        distributed = np.loadtxt(ALICE / "fmri" / f"{subject}-rate.txt")
        r = np.corrcoef(rate, distributed)[0, 1]
        assert r >= 0.9, (subject, r)
        for shift, values in shifted.items():
            assert np.corrcoef(values, distributed)[0, 1] < r - 0.05, (subject, shift)


def test_gain_over_the_baseline_is_tested_across_subjects():
    """delta_p and the interval of the gain equal scipy's one-sample t test across subjects."""
    import xarray as xr
    from scipy import stats as scipy_stats

    from brainalign.jobs.encoding import add_delta_inference

    rng = np.random.default_rng(8)
    delta = rng.normal(0.02, 0.05, size=(3, 12, 2))
    result = xr.Dataset({"score_delta": (("layer", "subject", "roi"), delta)})
    add_delta_inference(result, 0.95)
    for layer in range(3):
        for roi in range(2):
            test = scipy_stats.ttest_1samp(delta[layer, :, roi], 0.0, alternative="greater")
            np.testing.assert_allclose(result["delta_p_t"].values[layer, roi], test.pvalue, rtol=1e-10)
            low, high = scipy_stats.t.interval(
                0.95, 11, loc=delta[layer, :, roi].mean(), scale=scipy_stats.sem(delta[layer, :, roi]))
            np.testing.assert_allclose([result["score_delta_ci_low"].values[layer, roi],
                                        result["score_delta_ci_high"].values[layer, roi]], [low, high], rtol=1e-10)


def test_nifti_runs_go_through_nilearn_maskers(tmp_path):
    """A 4D NIfTI per subject, read by config through a labels atlas (NiftiLabelsMasker) and a mask
    (NiftiMasker): the ROI time courses equal the mean of their voxels, the voxels their own values."""
    import nibabel as nib

    from brainalign.datasets.timeseries import load
    from brainalign.stimuli import read_stimulus_table

    rng = np.random.default_rng(9)
    n, tr = 40, 2.0
    words = tmp_path / "words.tsv"
    onsets = np.arange(2.0, 78.0, 0.8)
    words.write_text("word\tgroup\tposition\tonset\toffset\n" + "".join(
        f"w{i}\tstory\t{i + 1}\t{t:.2f}\t{t + 0.5:.2f}\n" for i, t in enumerate(onsets)))
    stimuli = read_stimulus_table({"kind": "words", "path": str(words), "word_column": "word", "group_column": "group",
                                   "position_column": "position", "onset_column": "onset", "offset_column": "offset"})
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    labels = np.zeros((6, 6, 6), dtype=np.int16)
    labels[:3, :, :] = 1
    labels[3:, :3, :] = 2
    nib.Nifti1Image(labels, affine).to_filename(tmp_path / "atlas.nii.gz")
    nib.Nifti1Image((labels == 2).astype(np.uint8), affine).to_filename(tmp_path / "mask.nii.gz")
    data = {}
    for subject in ("s1", "s2"):
        data[subject] = rng.normal(size=(6, 6, 6, n)).astype(np.float32) + 100
        nib.Nifti1Image(data[subject], affine).to_filename(tmp_path / f"{subject}_bold.nii.gz")
    base = {"kind": "timeseries", "stimuli": "w", "timecourses": str(tmp_path / "{subject}_bold.nii.gz"), "tr": tr,
            "detrend": False, "standardize": False, "baseline": {"word_rate": False}}
    atlas = load("t", {**base, "masker": {"labels_img": str(tmp_path / "atlas.nii.gz"), "labels": ["A", "B"]}}, stimuli)
    for subject in ("s1", "s2"):
        for k, roi in enumerate(["A", "B"]):
            got = atlas["responses"].values[:, (atlas["subject"].values == subject) & (atlas["roi"].values == roi)][:, 0]
            np.testing.assert_allclose(got, data[subject][labels == k + 1].mean(0), rtol=1e-6)
    voxels = load("t", {**base, "masker": {"mask_img": str(tmp_path / "mask.nii.gz"), "roi": "B"}}, stimuli)
    assert voxels.sizes["neuroid"] == 2 * int((labels == 2).sum())
    s1 = voxels["responses"].values[:, voxels["subject"].values == "s1"]
    np.testing.assert_allclose(np.sort(s1[0]), np.sort(data["s1"][labels == 2][:, 0]), rtol=1e-6)


def test_inter_subject_ceiled_scores_divide_by_the_roi_mean_ceiling():
    """With ``ceiling: inter_subject`` each subject's score is divided by the ROI's mean ceiling
    over subjects, never by its own (noisy, possibly near-zero) one; other ceilings keep the
    subject's own."""
    import xarray as xr

    from brainalign.jobs.encoding import encoding_summary

    subjects = np.repeat(["a", "b", "c"], 2)
    rois = np.tile(["x", "y"], 3)
    r = np.array([[0.2, 0.1, 0.3, 0.2, 0.25, 0.15], [0.1, 0.05, 0.2, 0.1, 0.15, 0.1]])
    ceiling = np.array([0.4, 0.3, 0.01, 0.2, 0.5, 0.25])  # subject b's ROI x: near zero
    targets = xr.Dataset({"target_r": (("layer", "neuroid"), r), "target_r2": (("layer", "neuroid"), r ** 2),
                          "target_ceiling_r": (("neuroid",), ceiling)},
                         coords={"target_subject": ("neuroid", subjects), "target_roi": ("neuroid", rois)})
    out, per_subject, _, _ = encoding_summary(targets, {"ceiling": "inter_subject", "roi_summary": "mean"})
    roi_mean = per_subject.mean(axis=0)
    np.testing.assert_allclose(out["score_ceiled"], out["score"] / roi_mean[None, None, :], rtol=1e-12)
    assert np.abs(out["score_ceiled"]).max() < 1.5
    own, _, _, _ = encoding_summary(targets, {"ceiling": "split_half", "roi_summary": "mean"})
    np.testing.assert_allclose(own["score_ceiled"], own["score"] / per_subject[None], rtol=1e-12)
