"""The embedded default workflow, end to end, in a temporary checkout (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from brainalign.config import analysis_jobs, load_config
from brainalign.io import PROVENANCE_KEYS, read_activations, read_netcdf

from conftest import ROOT, run_snakemake

pytestmark = pytest.mark.slow

CONFIG = load_config(ROOT / "config" / "config.yaml", base_dir=ROOT)
JOBS = analysis_jobs(CONFIG)


def test_every_target_appears(default_run):
    results = default_run / "results"
    assert (results / "stimuli" / "sentences.nc").stat().st_size > 0
    assert (results / "brain" / "simulated.nc").stat().st_size > 0
    for model in CONFIG["models"]:
        assert (results / "activations" / "sentences" / f"{model}.nc").stat().st_size > 0
    for dataset, model, metric in JOBS:
        assert (results / "scores" / dataset / model / f"{metric}.nc").stat().st_size > 0
        for fmt in ("png", "svg"):
            assert (results / "figures" / dataset / model / f"{metric}.{fmt}").stat().st_size > 10_000
    assert len(JOBS) == 6
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

    brain = read_netcdf(results / "brain" / "simulated.nc")
    assert brain["responses"].dims == ("stimulus", "neuroid", "repetition")
    assert set(brain["roi"].values) == {"early", "middle", "late", "noise"}
    assert len(set(brain["subject"].values)) == 3 and brain.sizes["repetition"] == 2
    for coord in ("x", "y", "z"):
        assert brain[coord].attrs["units"] == "mm"

    for dataset, model, metric in JOBS:
        scores = read_netcdf(results / "scores" / dataset / model / f"{metric}.nc")
        assert scores["score"].dims == ("layer", "subject", "roi")
        assert scores.sizes["layer"] == n_states[model]
        for var in ("score_mean", "ci_low", "ci_high", "p_value", "ceiling_low", "ceiling_high"):
            assert var in scores
        assert np.all(scores["ci_low"] <= scores["score_mean"])
        assert np.all(scores["score_mean"] <= scores["ci_high"])
        assert scores.attrs["metric"] == metric and scores.attrs["model"] == model
        if metric in ("rsa", "cka"):
            p = scores["p_value"].values
            assert np.all((p > 0) & (p <= 1))


def test_every_netcdf_carries_provenance(default_run):
    files = sorted((default_run / "results").rglob("*.nc"))
    assert len(files) == 1 + 2 + 1 + 6
    for path in files:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            missing = [k for k in PROVENANCE_KEYS if k not in ds.attrs]
            assert not missing, f"{path} lacks provenance {missing}"
            assert int(ds.attrs["seed"]) in (CONFIG["seed"], -1)


def test_second_run_has_nothing_to_do(default_run):
    proc = run_snakemake(default_run, "--profile", "profiles/local", "-n", check=True)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_rerun_gives_identical_numbers(default_run):
    """Forcing the brain simulation and one score job again reproduces every number."""
    target = default_run / "results" / "scores" / "simulated" / "minilm" / "rsa.nc"
    before = read_netcdf(target)
    brain_before = read_netcdf(default_run / "results" / "brain" / "simulated.nc")
    try:
        run_snakemake(default_run, "--cores", "2", "--forcerun", "brain",
                      "results/scores/simulated/minilm/rsa.nc", check=True)
        after = read_netcdf(target)
        brain_after = read_netcdf(default_run / "results" / "brain" / "simulated.nc")
        np.testing.assert_array_equal(brain_before["responses"].values, brain_after["responses"].values)
        for var in ("score", "score_mean", "ci_low", "ci_high", "p_value", "ceiling_low", "ceiling_high"):
            np.testing.assert_array_equal(before[var].values, after[var].values)
    finally:
        # The other outputs are unchanged (same numbers): mark them up to date again.
        run_snakemake(default_run, "--cores", "1", "--touch", check=True)


def test_report_has_every_metric(default_run):
    html = (default_run / "results" / "report.html").read_text(errors="ignore")
    for word in ("rsa", "cka", "encoding", "minilm", "smollm2", "simulated"):
        assert word in html


def test_lint_is_clean():
    proc = run_snakemake(ROOT, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr
