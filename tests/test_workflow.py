"""The embedded default workflow, end to end, in a temporary checkout (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from brainalign.config import analysis_jobs, banded_jobs, load_config, model_comparison_jobs, model_summary_jobs
from brainalign.io import PROVENANCE_KEYS, read_activations, read_netcdf

from conftest import ROOT, check_golden, run_snakemake

pytestmark = pytest.mark.slow

CONFIG = load_config(ROOT / "config" / "config.yaml", base_dir=ROOT)
JOBS = analysis_jobs(CONFIG)
PAIRS = model_comparison_jobs(CONFIG)


def test_every_target_appears(default_run):
    results = default_run / "results"
    assert (results / "stimuli" / "sentences.nc").stat().st_size > 0
    for dataset in ("fmri", "meg"):
        assert (results / "brain" / f"{dataset}.nc").stat().st_size > 0
    assert len(sorted((results / "simulated" / "fmri").rglob("*_bold.nii.gz"))) == 6  # 3 subjects x 2 runs
    assert len(sorted((results / "simulated" / "meg").glob("sub-*_epo.fif"))) == 3
    for model in CONFIG["models"]:
        assert (results / "activations" / "sentences" / f"{model}.nc").stat().st_size > 0
    for dataset, model, metric in JOBS:
        assert (results / "scores" / dataset / model / f"{metric}.nc").stat().st_size > 0
        for fmt in ("png", "svg"):
            assert (results / "figures" / dataset / model / f"{metric}.{fmt}").stat().st_size > 10_000
    assert len(JOBS) == 12
    assert PAIRS == [("sentences", "minilm", "minilm"), ("sentences", "minilm", "smollm2"),
                     ("sentences", "smollm2", "smollm2"), ("sentences", "minilm", "smollm2_all_tokens")]
    for stimset, a, b in PAIRS:
        assert (results / "model_similarity" / stimset / f"{a}__{b}.nc").stat().st_size > 0
        for kind in ("heatmaps", "depth"):
            for fmt in ("png", "svg"):
                assert (results / "figures" / "model_similarity" / stimset / kind / f"{a}__{b}.{fmt}").stat().st_size > 10_000
    assert (results / "report.html").stat().st_size > 100_000


def test_contracts_of_outputs(default_run):
    results = default_run / "results"
    stimuli = read_netcdf(results / "stimuli" / "sentences.nc")
    assert stimuli.sizes["stimulus"] >= 96
    assert len(set(stimuli["category"].values)) >= 4
    ids = stimuli["stimulus_id"].values

    n_states = {"minilm": 7, "smollm2": 31}  # every hidden state, embeddings included
    for model, n in n_states.items():
        layers, attrs = read_activations(results / "activations" / "sentences" / f"{model}.nc")
        assert len(layers) == n
        assert [int(da["layer_index"]) for da in layers] == list(range(n))
        assert float(layers[0]["depth"]) == 0.0 and float(layers[-1]["depth"]) == 1.0
        assert all(da.dims == ("stimulus", "unit") for da in layers)
        np.testing.assert_array_equal(layers[0]["stimulus_id"].values, ids)
        assert attrs["pooling"] == "mean" and attrs["model_checksum"]

    brain = read_netcdf(results / "brain" / "fmri.nc")
    assert brain["responses"].dims == ("stimulus", "neuroid", "repetition")
    assert set(brain["roi"].values) == {"Auditory", "FrontoParietal", "DefaultMode", "Visual"}
    assert len(set(brain["subject"].values)) == 3 and brain.sizes["repetition"] == 2
    assert brain.attrs["dataset_kind"] == "nifti_events" and brain.attrs["t_r"] == 2.0
    for coord in ("x", "y", "z"):
        assert brain[coord].attrs["units"] == "mm"
        assert np.all(np.mod(brain[coord].values - {"x": -98, "y": -134, "z": -72}[coord], 4) == 0)  # 4 mm MNI grid
    meg = read_netcdf(results / "brain" / "meg.nc")
    assert meg["responses"].dims == ("stimulus", "neuroid", "repetition", "time")
    assert meg.attrs["dataset_kind"] == "mne_epochs" and meg.sizes["repetition"] == 4
    assert len(set(meg["subject"].values)) == 3 and set(meg["roi"].values) == {"mag"}
    np.testing.assert_allclose(np.diff(meg["time"].values), 0.02)  # 100 Hz decimated by 2

    for dataset, model, metric in JOBS:
        scores = read_netcdf(results / "scores" / dataset / model / f"{metric}.nc")
        assert scores["score"].dims == ("layer", "subject", "roi") + (("time",) if dataset == "meg" else ())
        assert scores.sizes["layer"] == n_states[model]
        for var in ("score_mean", "ci_low", "ci_high", "p_value", "ceiling_low", "ceiling_high",
                    "boot_ci_low", "boot_ci_high"):
            assert var in scores
        assert np.all(scores["ci_low"] <= scores["score_mean"])
        assert np.all(scores["score_mean"] <= scores["ci_high"])
        assert scores.attrs["metric"] == metric and scores.attrs["model"] == model
        p = scores["p_value"].values
        assert np.all((p > 0) & (p <= 1))
        # every metric: a chance level beside the score, and intervals that contain their estimate
        for var in ("null_mean", "null_low", "null_high", "score_corrected", "ceiling_reliable"):
            assert var in scores, (metric, var)
        assert np.isfinite(scores["null_mean"].values).all()
        np.testing.assert_allclose(scores["score_corrected"], scores["score_mean"] - scores["null_mean"])
        if "boot_ci_low" in scores and np.isfinite(scores["boot_ci_low"].values).any():
            assert np.all(scores["boot_ci_low"] <= scores["score_mean"] + 1e-12), metric
            assert np.all(scores["score_mean"] <= scores["boot_ci_high"] + 1e-12), metric
        if metric in ("cka", "procrustes", "mutual_knn"):
            n_boot = CONFIG["metrics"][metric]["n_bootstrap"]
            assert int(scores.attrs["n_bootstrap"]) == n_boot > 0
        if dataset == "fmri":
            # the noise ROI's ceiling is not reliably above chance; the planted ROIs' RSA ceilings are
            assert int(scores["ceiling_reliable"].sel(roi="Visual")) == 0, metric
            if metric in ("rsa", "encoding", "cka"):
                assert scores["ceiling_reliable"].sel(roi=["Auditory", "FrontoParietal", "DefaultMode"]).all()
            if metric == "encoding":
                assert scores["score_ceiled"].sel(roi="Visual").isnull().all()


def test_every_netcdf_carries_provenance(default_run):
    files = sorted((default_run / "results").rglob("*.nc"))
    summaries = len(model_summary_jobs(CONFIG))
    assert len(files) == 1 + 2 + len(CONFIG["models"]) + len(JOBS) + len(PAIRS) + 1 + len(banded_jobs(CONFIG)) + summaries
    for path in files:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            missing = [k for k in PROVENANCE_KEYS if k not in ds.attrs]
            assert not missing, f"{path} lacks provenance {missing}"
            assert int(ds.attrs["seed"]) in (CONFIG["seed"], -1)


def test_model_similarity_outputs(default_run):
    base = default_run / "results" / "model_similarity" / "sentences"
    within = read_netcdf(base / "minilm__minilm.nc")
    across = read_netcdf(base / "minilm__smollm2.nc")
    measures = CONFIG["model_comparisons"][0]["measures"]
    assert list(within["measure"].values) == measures
    assert within["similarity"].dims == ("measure", "layer_a", "layer_b")
    assert across.sizes["layer_a"] == 7 and across.sizes["layer_b"] == 31
    # a model against itself: similarity measures peak on the diagonal
    for measure in ("linear_cka", "rbf_cka", "debiased_cka", "procrustes", "mutual_knn", "rsa"):
        diag = np.diag(within["similarity"].sel(measure=measure).values)
        np.testing.assert_allclose(diag, 1.0, atol=1e-8)
    np.testing.assert_allclose(np.diag(within["similarity"].sel(measure="angular_procrustes").values), 0, atol=1e-6)
    np.testing.assert_allclose(within["best_depth_b"].sel(measure="linear_cka"), within["depth_a"])
    # the depth-correspondence curve holds one relative depth of SmolLM2 per MiniLM layer
    best = across["best_depth_b"].sel(measure="linear_cka").values
    assert best.shape == (7,) and np.all((best >= 0) & (best <= 1))
    assert across.attrs["model_a"] == "minilm" and across.attrs["model_b"] == "smollm2"


def test_decoder_pooling_without_the_first_token_matches_the_encoder(default_run):
    """SmolLM2 mean-pooled over every token (first included) against mean-pooled without its first
    token: from the middle layers on, the first token's massive activations dominate the mean, and
    those layers match no MiniLM layer; without it they do (the default, exclude_tokens: auto)."""
    base = default_run / "results" / "model_similarity" / "sentences"
    default = read_netcdf(base / "minilm__smollm2.nc")["similarity"].sel(measure="linear_cka")
    all_tokens = read_netcdf(base / "minilm__smollm2_all_tokens.nc")["similarity"].sel(measure="linear_cka")
    middle = slice(12, 30)  # SmolLM2 hidden states 12 to 29
    best_default = default.isel(layer_b=middle).max("layer_a").values
    best_all = all_tokens.isel(layer_b=middle).max("layer_a").values
    assert np.median(best_default) > np.median(best_all) + 0.2, (np.round(best_default, 2), np.round(best_all, 2))
    _, attrs = read_activations(default_run / "results" / "activations" / "sentences" / "smollm2.nc")
    assert attrs["exclude_tokens"] == "special_and_first" and attrs["causal"] == 1
    _, attrs = read_activations(default_run / "results" / "activations" / "sentences" / "minilm.nc")
    assert attrs["exclude_tokens"] == "none" and attrs["causal"] == 0


def test_dataset_similarity_output(default_run):
    sim = read_netcdf(default_run / "results" / "dataset_similarity" / "fmri__fmri.nc")
    assert sim["similarity"].dims == ("measure", "roi_a", "roi_b")
    np.testing.assert_array_equal(sim["n_subject_pairs"].values, 6)  # 3 subjects, never with themselves
    debiased = sim["similarity"].sel(measure="debiased_cka")
    # Across subjects, an ROI's similarity to another is bounded by both ROIs' reliability (the
    # diagonal): normalised by it, each planted ROI is closest to itself, ROIs planted from distant
    # layers (0 vs 6) are further apart than neighbours (0 vs 3), and the noise ROI matches nothing.
    planted = ["Auditory", "FrontoParietal", "DefaultMode"]
    values = debiased.sel(roi_a=planted, roi_b=planted).values
    normalised = values / np.sqrt(np.outer(np.diag(values), np.diag(values)))
    assert (np.diag(values) > 0.02).all()
    assert (normalised[~np.eye(3, dtype=bool)] < 0.95).all(), normalised
    assert normalised[0, 2] < normalised[0, 1]
    assert float(np.abs(debiased.sel(roi_a="Visual")).max()) < 0.02
    for fmt in ("png", "svg"):
        assert (default_run / "results" / "figures" / "dataset_similarity" / f"fmri__fmri.{fmt}").stat().st_size > 10_000


def test_encoding_maps_match_scores(default_run):
    """The NIfTI r maps hold, at each voxel, that voxel's held-out r of every layer."""
    import nibabel as nib

    results = default_run / "results"
    for model, n_layers in (("minilm", 7), ("smollm2", 31)):
        scores = read_netcdf(results / "scores" / "fmri" / model / "encoding.nc")
        maps = sorted((results / "maps" / "fmri" / model / "encoding").glob("*_r.nii.gz"))
        assert [p.name for p in maps] == [f"{model}_sub-0{i}_r.nii.gz" for i in (1, 2, 3)]
        img = nib.load(maps[0])
        assert img.shape[3] == n_layers
        mine = scores["target_subject"].values == "sub-01"
        xyz = np.stack([scores[c].values[mine] for c in "xyz"] + [np.ones(mine.sum())])
        ijk = np.rint(np.linalg.inv(img.affine) @ xyz)[:3].astype(int)
        np.testing.assert_allclose(img.get_fdata()[ijk[0], ijk[1], ijk[2], :],
                                   scores["target_r"].values[:, mine].T, rtol=0, atol=1e-6)
        assert (results / "figures" / "fmri" / model / "encoding_glass_brain.png").stat().st_size > 10_000
        # per-target alphas come from the grid; ceilings exist where there are repetitions
        assert np.isin(scores["target_alpha"].values, CONFIG["metrics"]["encoding"]["alphas"]).all()
        assert np.isfinite(scores["target_ceiling_r"].values).all()


def test_banded_encoding_partitions_the_planted_layers(default_run):
    """Auditory (planted from layer 0) is explained uniquely by the layer-0 band, DefaultMode
    (layer 6) by the layer-6 band, and the chosen band weights say the same."""
    banded = read_netcdf(default_run / "results" / "banded" / "fmri" / "minilm_early_vs_late.nc")
    unique = banded["roi_unique"]
    for roi, own, other in (("Auditory", "early", "late"), ("DefaultMode", "late", "early")):
        assert (unique.sel(band=own, roi=roi) > unique.sel(band=other, roi=roi)).all()  # every subject
        assert float(unique.sel(band=own, roi=roi).mean()) > 0.002  # measured: 0.0042 (Auditory, layer 0)
        gamma = banded["gamma"].sel(band=own).values[banded["target_roi"].values == roi]
        assert np.median(gamma) > 0.6
    # the partition adds up: joint = unique early + unique late + shared, per target
    np.testing.assert_allclose(banded["r2_joint"], banded["unique"].sum("band") + banded["shared"], atol=1e-12)
    assert (default_run / "results" / "figures" / "banded" / "fmri" / "minilm_early_vs_late.png").exists()


def test_second_run_has_nothing_to_do(default_run):
    proc = run_snakemake(default_run, "--profile", "profiles/local", "-n", check=True)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_rerun_gives_identical_numbers(default_run):
    """Forcing the fMRI simulation (NIfTI files), its GLM and one score job again reproduces
    every number."""
    target = default_run / "results" / "scores" / "fmri" / "minilm" / "rsa.nc"
    before = read_netcdf(target)
    brain_before = read_netcdf(default_run / "results" / "brain" / "fmri.nc")
    try:
        # The target goes first: `--forcerun` takes every following word as a rule or file.
        run_snakemake(default_run, "results/scores/fmri/minilm/rsa.nc", "--cores", "2",
                      "--forcerun", "simulate", "brain", check=True)
        after = read_netcdf(target)
        brain_after = read_netcdf(default_run / "results" / "brain" / "fmri.nc")
        np.testing.assert_array_equal(brain_before["responses"].values, brain_after["responses"].values)
        for var in ("score", "score_mean", "ci_low", "ci_high", "p_value", "ceiling_low", "ceiling_high"):
            np.testing.assert_array_equal(before[var].values, after[var].values)
    finally:
        # The other outputs are unchanged (same numbers): mark them up to date again.
        run_snakemake(default_run, "--cores", "1", "--touch", check=True)


def test_report_has_every_category_and_figure(default_run):
    html = (default_run / "results" / "report.html").read_text(errors="ignore")
    for category in ("Stimuli", "Models", "Brain data", "RSA", "CKA", "Encoding", "Summary"):
        assert f'"{category}"' in html, category
    for word in ("procrustes", "mutual_knn", "minilm", "smollm2", "fmri", "meg", "depth correspondence"):
        assert word in html
    # the MiniLM x SmolLM2 depth-correspondence figure and heatmaps are embedded
    assert "depth/minilm__smollm2.png" in html and "heatmaps/minilm__smollm2.png" in html
    assert "models_rsa.png" in html and "models by relative depth" in html
    for name in ("summary_rsa.png", "summary_encoding.png", "encoding_surface.png", "stimuli/sentences.png",
                 "brain/fmri.png", "brain/meg.png"):
        assert name in html, name
    # captions end with the settings that made the figure (metric, comparator, CV, resamples, seed)
    assert "1000 permutations of stimulus labels" in html and "1000 bootstrap samples over stimuli" in html
    assert "5-fold outer cross-validation over stimuli" in html and "seed 2026" in html


def test_models_compared_on_relative_depth(default_run):
    """Both language models' curves on one axis, from one summary file per dataset x metric."""
    for metric in ("rsa", "cka", "encoding", "procrustes", "mutual_knn"):
        summary = read_netcdf(default_run / "results" / "summary" / "fmri" / f"{metric}.nc")
        assert list(summary["model"].values) == ["minilm", "smollm2"]
        scores = read_netcdf(default_run / "results" / "scores" / "fmri" / "minilm" / f"{metric}.nc")
        np.testing.assert_allclose(summary["score_mean"].sel(model="minilm").values[:scores.sizes["layer"]],
                                   scores["score_mean"].transpose("layer", "roi").values)
        assert (default_run / "results" / "figures" / "fmri" / f"models_{metric}.png").stat().st_size > 10_000
    rsa = read_netcdf(default_run / "results" / "summary" / "fmri" / "rsa.nc")
    # the planted ROIs' best MiniLM layers are the planted ones (0, 3, 6 of 6: depths 0, 1/2, 1)
    np.testing.assert_allclose(rsa["best_depth"].sel(model="minilm", roi=["Auditory", "FrontoParietal",
                                                                           "DefaultMode"]).values,
                               [0.0, 0.5, 1.0], atol=1e-9)


@pytest.mark.parametrize("metric", ["rsa", "encoding", "cka"])
def test_planted_layers_found_through_the_nifti_files(default_run, metric):
    """Planted truth through the real adapters: runs written as NIfTI + events.tsv, read back
    through nilearn's single-trial GLM; each ROI's best MiniLM layer (subject mean) is the planted
    one, and the ROI without signal scores near zero."""
    brain = read_netcdf(default_run / "results" / "brain" / "fmri.nc")
    planted = json.loads(brain.attrs["planted"])
    scores = read_netcdf(default_run / "results" / "scores" / "fmri" / "minilm" / f"{metric}.nc")
    names = dict(zip(scores["layer_index"].values.tolist(), scores["layer"].values.tolist()))
    assert planted == {roi: {"model": "minilm", "layer_index": spec["layer"], "layer": names[spec["layer"]]}
                       for roi, spec in CONFIG["datasets"]["fmri"]["simulate"]["planted"].items()}
    mean = scores["score_mean"]
    for roi, truth in planted.items():
        assert int(mean.sel(roi=roi).argmax("layer")) == truth["layer_index"], (roi, mean.sel(roi=roi).values)
        assert float(scores["p_value"].sel(roi=roi).isel(layer=truth["layer_index"])) < 0.05
    assert float(np.abs(mean.sel(roi="Visual")).max()) < 0.05


def test_meg_latency_order_recovered(default_run):
    """Time-resolved RSA of the simulated MEG epochs (read from -epo.fif with MNE) puts each
    planted layer's peak at its planted latency (to one 20 ms sample), in the planted order."""
    scores = read_netcdf(default_run / "results" / "scores" / "meg" / "minilm" / "rsa.nc")
    mean = scores["score_mean"].sel(roi="mag")
    planted = CONFIG["datasets"]["meg"]["simulate"]["planted"]
    peaks = {}
    for label, spec in planted.items():
        curve = mean.sel(layer=mean["layer_index"] == spec["layer"]).squeeze("layer")
        peaks[label] = float(curve["time"][int(curve.argmax("time"))])
        assert abs(peaks[label] - spec["peak"]) <= 0.02 + 1e-9, (label, peaks)
    assert [peaks[k] for k in sorted(planted, key=lambda k: planted[k]["peak"])] == sorted(peaks.values())
    assert len(set(peaks.values())) == 3


def test_lint_is_clean():
    proc = run_snakemake(ROOT, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_golden_scores(default_run):
    """Best layer, score, interval, chance level, p value, ceiling and held-out best of every
    model x ROI x metric equal tests/golden/default.json at 1e-10."""
    check_golden(default_run / "results", "default")


def test_plan_estimates_within_30_percent_of_measured_peaks(default_run):
    """``brainalign plan``'s estimate of every extraction job (on CPU) against the peak resident
    memory the job logged."""
    from test_job_memory import check_estimates

    check_estimates(default_run, load_config(default_run / "config" / "config.yaml", base_dir=default_run))
