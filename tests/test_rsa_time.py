"""Time-resolved RSA: simulated MEG-like data whose planted layers peak at known latencies."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.jobs.score import score
from brainalign.datasets import load_dataset
from brainalign.io import write_netcdf
from brainalign.figures import plot_file
from brainalign.stimuli import load_stimulus_table

PLANTED = {"early": (1, 0.10), "middle": (3, 0.22), "late": (6, 0.34)}  # roi: (MiniLM hidden state, latency s)


@pytest.fixture(scope="module")
def meg_scores(tmp_path_factory, minilm_activations, stimuli_csv):
    spec = {
        "kind": "simulated", "stimuli": "sentences", "subjects": 3, "repetitions": 2, "snr": 0.5,
        "time": {"start": -0.1, "stop": 0.5, "n": 31},
        "rois": {roi: {"voxels": 40, "model": "minilm", "layer": layer, "peak": peak, "width": 0.04}
                 for roi, (layer, peak) in PLANTED.items()},
    }
    brain = load_dataset("meg", spec, load_stimulus_table(stimuli_csv),
                         activations={"minilm": minilm_activations}, seed=7)
    folder = tmp_path_factory.mktemp("meg")
    write_netcdf(brain, folder / "meg.nc")
    settings = {"comparison": "spearman", "n_permutations": 100, "n_bootstrap": 50, "bootstrap": "stimuli"}
    result = score("rsa", minilm_activations, folder / "meg.nc", settings, seed=3,
                   names={"model": "minilm", "dataset": "meg"})
    write_netcdf(result, folder / "rsa.nc")
    return result, folder


def test_planted_latencies_are_recovered(meg_scores):
    scores, _ = meg_scores
    assert scores["score"].dims == ("layer", "subject", "roi", "time")
    times = scores["time"].values
    step = times[1] - times[0]
    peaks = {}
    for roi, (layer, latency) in PLANTED.items():
        curve = scores["score_mean"].sel(roi=roi).isel(layer=layer).values
        peaks[roi] = times[int(np.argmax(curve))]
        assert abs(peaks[roi] - latency) <= step + 1e-9, (roi, peaks[roi], latency)
        at_peak = scores["score_mean"].sel(roi=roi).sel(time=peaks[roi]).values
        assert int(np.argmax(at_peak)) == layer  # the planted layer wins at its latency
        assert float(scores["p_fdr"].sel(roi=roi).isel(layer=layer).sel(time=peaks[roi])) < 0.05
        # Before stimulus onset there is no signal: no layer is significant.
        assert np.all(scores["p_fdr"].sel(roi=roi).sel(time=slice(None, -0.02)).values > 0.05)
    assert peaks["early"] < peaks["middle"] < peaks["late"]


def test_time_resolved_inference_shapes(meg_scores):
    scores, _ = meg_scores
    for name in ("score_mean", "p_value", "p_fdr", "boot_ci_low", "boot_ci_high"):
        assert scores[name].dims == ("layer", "roi", "time")
    assert scores["ceiling_low"].dims == ("roi", "time")
    ok = np.isfinite(scores["boot_ci_low"].values)
    assert ok.all()
    assert np.all(scores["boot_ci_low"].values <= scores["score_mean"].values + 1e-12)
    # The brain RDM shown in the figures is taken at each ROI's peak time.
    for roi, (_, latency) in PLANTED.items():
        assert abs(float(scores["rdm_time"].sel(roi=roi)) - latency) <= 0.021


def test_time_curves_figure(meg_scores):
    _, folder = meg_scores
    out = [folder / "time.png", folder / "time.svg"]
    plot_file(folder / "rsa.nc", out)
    assert all(p.stat().st_size > 5000 for p in out)
