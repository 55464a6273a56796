"""Model x model comparisons and the resampling of model x brain similarity scores."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from brainalign.jobs.common import brain_blocks
from brainalign.jobs.score import score
from brainalign.datasets import load_dataset
from brainalign.io import ActivationWriter, read_activations, write_netcdf
from brainalign.metrics import similarity, stats
from brainalign.jobs.model_similarity import compare_models, compare_models_file
from brainalign.stimuli import StimulusError, load_stimulus_table

MEASURES = list(similarity.MEASURES)


def _write_model(path, ids, layers):
    widths = [x.shape[1] for x in layers]
    names = [f"block_{i:02d}" for i in range(len(layers))]
    with ActivationWriter(path, ids, names, widths, attrs={"model_name": path.stem}) as w:
        w.write(0, layers)
    return path


@pytest.fixture()
def two_models(tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    ids = [f"s{i:03d}" for i in range(n)]
    base = rng.standard_normal((n, 12))
    a = [base @ rng.standard_normal((12, 20)) + 0.5 * rng.standard_normal((n, 20)) for _ in range(3)]
    b = [base @ rng.standard_normal((12, 30)) + 0.5 * rng.standard_normal((n, 30)) for _ in range(4)]
    return (_write_model(tmp_path / "a.nc", ids, a), _write_model(tmp_path / "b.nc", ids, b), ids, a, b)


def test_compare_models_equals_pairwise_per_measure(two_models):
    path_a, path_b, _, a, b = two_models
    la, _ = read_activations(path_a)
    lb, _ = read_activations(path_b)
    result = compare_models(la, lb, MEASURES, {"k": 5})
    assert result["similarity"].dims == ("measure", "layer_a", "layer_b")
    depth_b = result["depth_b"].values
    for measure in MEASURES:
        expected = similarity.pairwise(measure, [x.astype(np.float32).astype(np.float64) for x in a],
                                       [y.astype(np.float32).astype(np.float64) for y in b], k=5)
        got = result["similarity"].sel(measure=measure).values
        np.testing.assert_allclose(got, expected, atol=1e-6)
        pick = expected.argmax(1) if similarity.HIGHER_IS_BETTER[measure] else expected.argmin(1)
        np.testing.assert_array_equal(result["best_depth_b"].sel(measure=measure).values, depth_b[pick])


def test_model_against_itself_has_unit_diagonal(two_models):
    path_a, *_ = two_models
    la, _ = read_activations(path_a)
    result = compare_models(la, la, ["linear_cka", "rbf_cka", "debiased_cka", "mutual_knn", "angular_procrustes"])
    for measure in ("linear_cka", "rbf_cka", "debiased_cka", "mutual_knn"):
        np.testing.assert_allclose(np.diag(result["similarity"].sel(measure=measure)), 1.0, atol=1e-10)
    np.testing.assert_allclose(np.diag(result["similarity"].sel(measure="angular_procrustes")), 0.0, atol=1e-7)
    np.testing.assert_allclose(result["best_depth_b"].sel(measure="linear_cka"), result["depth_a"])


def test_stimuli_are_aligned_by_id_and_mismatch_is_an_error(tmp_path, two_models):
    path_a, path_b, ids, a, b = two_models
    order = np.random.default_rng(9).permutation(len(ids))
    shuffled = _write_model(tmp_path / "b_shuffled.nc", [ids[i] for i in order], [y[order] for y in b])
    out1, out2 = tmp_path / "ab.nc", tmp_path / "ab_shuffled.nc"
    compare_models_file(path_a, path_b, out1, ["linear_cka", "mutual_knn"], {"k": 5}, names=("a", "b"))
    compare_models_file(path_a, shuffled, out2, ["linear_cka", "mutual_knn"], {"k": 5}, names=("a", "b"))
    r1, r2 = xr.open_dataset(out1, engine="h5netcdf"), xr.open_dataset(out2, engine="h5netcdf")
    np.testing.assert_allclose(r1["similarity"].values, r2["similarity"].values, atol=1e-12)
    assert r1.attrs["model_a"] == "a" and "config_sha256" in r1.attrs

    other = _write_model(tmp_path / "other.nc", [f"x{i:03d}" for i in range(len(ids))], b)
    with pytest.raises(StimulusError, match="other.nc"):
        compare_models_file(path_a, other, tmp_path / "bad.nc", ["linear_cka"], names=("a", "other"))
    assert not (tmp_path / "bad.nc").exists()


@pytest.fixture(scope="module")
def small_brain(tmp_path_factory, stimuli_csv, minilm_activations):
    spec = {"kind": "simulated", "stimuli": "sentences", "subjects": 2, "repetitions": 2, "snr": 0.5,
            "rois": {"sig": {"model": "minilm", "layer": 3, "voxels": 60}, "noise": {"voxels": 60}}}
    brain = load_dataset("small", spec, load_stimulus_table(stimuli_csv), activations={"minilm": minilm_activations},
                         seed=11)
    path = tmp_path_factory.mktemp("brain") / "small.nc"
    write_netcdf(brain, path)
    return path


@pytest.mark.parametrize("metric,settings,measure", [
    ("mutual_knn", {"k": 8}, "mutual_knn"),
    ("cka", {"debiased": False}, "linear_cka"),  # the fast Gram-permutation path
    ("cka", {"debiased": True}, "debiased_cka"),
    ("cka", {"kernel": "rbf", "sigma_factor": 0.8}, "rbf_cka"),
    ("procrustes", {"measure": "angular_procrustes"}, "angular_procrustes"),
])
def test_resampling_reproduces_manual_computation(minilm_activations, small_brain, metric, settings, measure):
    """Scores, permutation p values and subsampling intervals equal a direct computation
    with the same permutations and subsample indices (same seeded generator)."""
    n_perm, n_boot, seed = 6, 5, 4
    result = score(metric, minilm_activations, small_brain,
                   {**settings, "n_permutations": n_perm, "n_bootstrap": n_boot}, seed=seed, confidence=0.9)
    layers, _ = read_activations(minilm_activations)
    brain = xr.open_dataset(small_brain, engine="h5netcdf").load()
    blocks, subjects, rois = brain_blocks(brain)
    xs = [d.values.astype(np.float64) for d in layers]
    options = {k: v for k, v in settings.items() if k in ("k", "sigma_factor")}
    n = xs[0].shape[0]

    def subject_mean(ys_by_pair):
        out = np.empty((len(xs), len(rois)))
        for j, roi in enumerate(rois):
            vals = similarity.pairwise(measure, ys_by_pair[0], [ys_by_pair[1][s, roi] for s in subjects], **options)
            out[:, j] = vals.mean(1)
        return out

    observed = subject_mean((xs, blocks))
    np.testing.assert_allclose(result["score_mean"].values, observed, atol=1e-10)
    rng = np.random.default_rng(seed)
    perms = stats.permutations(n, n_perm, rng)
    boots = stats.subsample_indices(n, n_boot, rng)
    assert all(len(set(b)) == len(b) == n // 2 for b in boots)  # no stimulus twice in a subsample
    null = np.stack([subject_mean((xs, {k: v[p] for k, v in blocks.items()})) for p in perms])
    boot = np.stack([subject_mean(([x[b] for x in xs], {k: v[b] for k, v in blocks.items()})) for b in boots])
    higher = similarity.HIGHER_IS_BETTER[measure]
    expected_p = (1 + ((null >= observed - 1e-12) if higher else (null <= observed + 1e-12)).sum(0)) / (1 + n_perm)
    np.testing.assert_allclose(result["p_value"].values, expected_p)
    # the subsamples' spread around their median, scaled by sqrt(m / (n - m)), laid around the score
    scale = np.sqrt((n // 2) / (n - n // 2))
    deviation = boot - np.median(boot, axis=0)
    np.testing.assert_allclose(result["boot_ci_low"].values, observed + scale * np.percentile(deviation, 5, axis=0),
                               atol=1e-10)
    np.testing.assert_allclose(result["boot_ci_high"].values, observed + scale * np.percentile(deviation, 95, axis=0),
                               atol=1e-10)
    assert np.all(result["boot_ci_low"].values <= observed) and np.all(observed <= result["boot_ci_high"].values)
    np.testing.assert_allclose(result["null_mean"].values, null.mean(0), atol=1e-10)
    np.testing.assert_allclose(result["score_corrected"].values, observed - null.mean(0), atol=1e-10)
    assert int(result.attrs["higher_is_better"]) == int(higher)
    assert int(result.attrs["n_bootstrap"]) == n_boot


def test_p_value_direction():
    observed = np.array([0.5, 0.5])
    null = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    np.testing.assert_allclose(stats.p_from_null(observed, null, True), [1 / 4, 1.0])
    np.testing.assert_allclose(stats.p_from_null(observed, null, False), [1.0, 1 / 4])
    assert np.isnan(stats.p_from_null(observed, null[:0])).all()


def test_dataset_similarity_across_subjects(tmp_path, small_brain):
    """ROI x ROI similarity of a dataset with itself: subjects are never paired with
    themselves, the planted ROI is consistent across subjects and debiased CKA of the
    noise ROI is near zero while biased CKA is not."""
    from brainalign.jobs.dataset_similarity import compare_datasets_file

    out = tmp_path / "same.nc"
    compare_datasets_file(small_brain, small_brain, out, ["linear_cka", "debiased_cka", "rsa"], names=("d", "d"))
    result = xr.open_dataset(out, engine="h5netcdf").load()
    assert result["similarity"].dims == ("measure", "roi_a", "roi_b")
    np.testing.assert_array_equal(result["n_subject_pairs"].values, 2)  # 2 subjects -> 2 ordered pairs
    brain = xr.open_dataset(small_brain, engine="h5netcdf").load()
    blocks, subjects, _ = brain_blocks(brain)
    expected = np.mean([similarity.pairwise("debiased_cka", [blocks[a, "sig"]], [blocks[b, "sig"]])[0, 0]
                        for a in subjects for b in subjects if a != b])
    np.testing.assert_allclose(result["similarity"].sel(measure="debiased_cka", roi_a="sig", roi_b="sig"),
                               expected, atol=1e-12)
    sig = float(result["similarity"].sel(measure="rsa", roi_a="sig", roi_b="sig"))
    noise_debiased = float(result["similarity"].sel(measure="debiased_cka", roi_a="noise", roi_b="noise"))
    noise_biased = float(result["similarity"].sel(measure="linear_cka", roi_a="noise", roi_b="noise"))
    noise_rsa = float(result["similarity"].sel(measure="rsa", roi_a="noise", roi_b="noise"))
    assert sig > 10 * abs(noise_rsa) and sig > 0.2
    assert abs(noise_debiased) < 0.05 < noise_biased

    shuffled = brain.isel(stimulus=np.random.default_rng(1).permutation(brain.sizes["stimulus"]))
    write_netcdf(shuffled, tmp_path / "shuffled.nc")
    compare_datasets_file(small_brain, tmp_path / "shuffled.nc", tmp_path / "cross.nc", ["rsa"], names=("d", "e"))
    cross = xr.open_dataset(tmp_path / "cross.nc", engine="h5netcdf").load()
    # different dataset names: same-subject pairs count, and ids (not rows) are matched
    np.testing.assert_array_equal(cross["n_subject_pairs"].values, 4)
    np.testing.assert_allclose(
        [float(similarity.pairwise("rsa", [blocks[s, "sig"]], [blocks[s, "sig"]])[0, 0]) for s in subjects], 1.0)

    renamed = brain.assign_coords(stimulus_id=("stimulus", [f"z{i}" for i in range(brain.sizes["stimulus"])]))
    write_netcdf(renamed, tmp_path / "renamed.nc")
    with pytest.raises(StimulusError, match="renamed.nc"):
        compare_datasets_file(small_brain, tmp_path / "renamed.nc", tmp_path / "bad.nc", ["rsa"], names=("d", "z"))
    assert not (tmp_path / "bad.nc").exists()
