"""Planted truth on the ``simulated`` kind: every metric finds the layer that generated
each ROI, and the pure-noise ROI stays inside a null bound derived here from shuffled
stimulus labels (slow: reuses the default run's real MiniLM and SmolLM2 activations and
scores them with the default config's metric settings, without resamples)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainalign.jobs.common import brain_blocks
from brainalign.jobs.score import score_file
from brainalign.config import load_config
from brainalign.datasets import write_dataset
from brainalign.io import read_activations, read_netcdf
from brainalign.metrics import cka, encoding, rsa, similarity
from brainalign.stimuli import align_to

pytestmark = pytest.mark.slow

MODELS = ("minilm", "smollm2")
# Procrustes is scored in the default run too but is not expected to recover the planted
# layer: its nuclear norm weighs all voxel dimensions equally, so 300 noisy voxels swamp it.
METRICS = ("rsa", "cka", "encoding", "mutual_knn")
N_PERM = 500
FAMILYWISE_ALPHA = 0.01
# In-memory voxels (no GLM): 3 subjects, 2 repetitions, SNR 0.5 per voxel and repetition.
SIMULATED = {"kind": "simulated", "stimuli": "sentences", "subjects": 3, "repetitions": 2, "snr": 0.5,
             "rois": {"early": {"model": "minilm", "layer": 2, "voxels": 300, "center": [-52, -20, 4]},
                      "middle": {"model": "minilm", "layer": 4, "voxels": 300, "center": [-56, -44, 12]},
                      "late": {"model": "minilm", "layer": 6, "voxels": 300, "center": [-48, 20, 16]},
                      "noise": {"voxels": 300, "center": [8, -80, 4]}}}


@pytest.fixture(scope="module")
def planted_run(default_run, tmp_path_factory):
    """The simulated dataset and its scores, laid out like a workflow's results folder."""
    from conftest import ROOT

    config = load_config(ROOT / "config" / "config.yaml", base_dir=ROOT)
    run = tmp_path_factory.mktemp("planted_run")
    activations = {m: default_run / "results" / "activations" / "sentences" / f"{m}.nc" for m in MODELS}
    (run / "results").mkdir()
    (run / "results" / "activations").symlink_to(default_run / "results" / "activations")
    brain = run / "results" / "brain" / "simulated.nc"
    write_dataset("simulated", SIMULATED, default_run / "results" / "stimuli" / "sentences.nc", brain,
                  seed=config["seed"], activations={"minilm": activations["minilm"]})
    for metric in METRICS:
        # The tests read scores, not p values or intervals (the noise ROI gets its own null below):
        # the default settings without the permutation and bootstrap resamples.
        settings = {key: 0 if key in ("n_permutations", "n_bootstrap") else value
                    for key, value in config["metrics"][metric].items()}
        for m in MODELS:
            score_file(metric, activations[m], brain, run / "results" / "scores" / "simulated" / m / f"{metric}.nc",
                       settings, seed=config["seed"],
                       confidence=config["metrics"]["confidence"], names={"model": m, "dataset": "simulated"})
    return run


def _scores(run, metric):
    return {m: read_netcdf(run / "results" / "scores" / "simulated" / m / f"{metric}.nc") for m in MODELS}


@pytest.fixture(scope="module")
def planted(planted_run):
    brain = read_netcdf(planted_run / "results" / "brain" / "simulated.nc")
    return json.loads(brain.attrs["planted"])


@pytest.fixture(scope="module")
def noise_inputs(planted_run):
    brain = read_netcdf(planted_run / "results" / "brain" / "simulated.nc")
    blocks, subjects, _ = brain_blocks(brain)
    noise = [blocks[s, "noise"] for s in subjects]
    layers = []
    for m in MODELS:
        acts, _ = read_activations(planted_run / "results" / "activations" / "sentences" / f"{m}.nc")
        layers += [align_to(da, brain["stimulus_id"].values).values.astype(np.float64) for da in acts]
    return layers, noise


@pytest.mark.parametrize("metric", METRICS)
def test_best_layer_of_each_signal_roi_is_the_planted_one(planted_run, planted, metric):
    scores = _scores(planted_run, metric)
    for roi, truth in planted.items():
        if truth is None:
            continue
        best = max(((m, int(scores[m]["layer_index"][i]), float(scores[m]["score_mean"].sel(roi=roi)[i]))
                    for m in MODELS for i in range(scores[m].sizes["layer"])), key=lambda t: t[2])
        assert best[:2] == (truth["model"], truth["layer_index"]), (metric, roi, best)
        # every subject agrees on the planted model's best layer
        subject_best = scores[truth["model"]]["score"].sel(roi=roi).argmax("layer").values
        assert np.all(scores[truth["model"]]["layer_index"].values[subject_best] == truth["layer_index"])


def _familywise_bounds(null_max, null_min):
    """Two-sided family-wise bounds over all layers of both models."""
    return np.quantile(null_min, FAMILYWISE_ALPHA / 2), np.quantile(null_max, 1 - FAMILYWISE_ALPHA / 2)


def test_noise_roi_rsa_within_permutation_null(planted_run, noise_inputs):
    layers, noise = noise_inputs
    model_rdms = np.stack([rsa.rdm(x) for x in layers])
    rng = np.random.default_rng(12345)
    n = noise[0].shape[0]
    null_max, null_min = np.empty(N_PERM), np.empty(N_PERM)
    for k in range(N_PERM):
        perm = rng.permutation(n)
        brain_rdms = np.stack([rsa.rdm(y[perm]) for y in noise])
        vals = rsa.compare(model_rdms, brain_rdms, "spearman").mean(1)  # subject mean per layer
        null_max[k], null_min[k] = vals.max(), vals.min()
    low, high = _familywise_bounds(null_max, null_min)
    observed = np.concatenate([s["score_mean"].sel(roi="noise").values for s in _scores(planted_run, "rsa").values()])
    assert low < 0 < high
    assert np.all((observed > low) & (observed < high)), (observed, low, high)


def test_noise_roi_cka_within_permutation_null(planted_run, noise_inputs):
    layers, noise = noise_inputs
    grams = np.stack([cka.centered_gram(x) for x in layers])  # (layer, n, n)
    rng = np.random.default_rng(54321)
    n = noise[0].shape[0]
    null_max, null_min = np.empty(N_PERM), np.empty(N_PERM)
    noise_grams = np.stack([cka.centered_gram(y) for y in noise])
    for k in range(N_PERM):
        p = rng.permutation(n)
        permuted = noise_grams[:, p][:, :, p]
        # the default config's CKA: debiased (the unbiased HSIC estimator is invariant to centring)
        vals = similarity.cka_matrix(grams, permuted, debiased=True).mean(1)  # (layer,): subject mean
        null_max[k], null_min[k] = vals.max(), vals.min()
    low, high = _familywise_bounds(null_max, null_min)
    observed = np.concatenate([s["score_mean"].sel(roi="noise").values for s in _scores(planted_run, "cka").values()])
    # debiased CKA of unrelated data is centred on 0 (biased CKA sat above 0.2 here)
    assert -0.1 < low < 0 < high < 0.1
    assert np.all((observed > low) & (observed < high)), (observed, low, high)


def test_noise_roi_encoding_within_shuffled_null(planted_run, noise_inputs):
    """Held-out r of the noise ROI against a null from refitting on shuffled
    stimulus labels (a subset of layers, as each refit is a full nested CV)."""
    layers, noise = noise_inputs
    settings = {"alphas": [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6], "outer_folds": 5, "inner_folds": 5}
    picks = [0, 3, 6, 7 + 15, 7 + 30]
    rng = np.random.default_rng(777)
    n_null = 8
    null = []
    for _ in range(n_null):
        p = rng.permutation(noise[0].shape[0])
        for li in picks:
            r = [np.median(encoding.cross_validated_r(layers[li], y[p], settings["alphas"], 5, 5, seed=2026)[0])
                 for y in noise]
            null.append(np.mean(r))
    null = np.asarray(null)
    low, high = null.mean() - 5 * null.std(ddof=1), null.mean() + 5 * null.std(ddof=1)
    observed = np.concatenate([s["score_mean"].sel(roi="noise").values
                               for s in _scores(planted_run, "encoding").values()])
    assert np.all((observed > low) & (observed < high)), (observed, low, high, null)
    # the signal ROIs are far outside the same bound
    signal = _scores(planted_run, "encoding")["minilm"]["score_mean"].sel(roi=["early", "middle", "late"])
    assert float(signal.max("layer").min()) > high + 0.2
