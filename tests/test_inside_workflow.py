"""Inside the model, through Snakemake: probes with concept depth, layer geometry, SimLex-999 word
similarity, a text model's untrained control and the families figure, from one small config."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from conftest import ROOT, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

CONFIG = yaml.safe_load((ROOT / "config" / "examples" / "inside_models.yaml").read_text())


def _small_config() -> dict:
    config = copy.deepcopy(CONFIG)
    config["models"] = {"minilm": {**config["models"]["minilm"], "untrained_control": True}}
    config["stimuli"] = {k: config["stimuli"][k] for k in ("sentences", "simlex_words")}
    config["datasets"] = {k: config["datasets"][k] for k in ("categories", "simlex")}
    config["analyses"] = [{"datasets": ["categories"], "models": ["minilm"], "metrics": ["probe"]},
                          {"datasets": ["simlex"], "models": ["minilm"], "metrics": ["word_similarity"]}]
    config["geometry"] = [{"stimuli": "sentences", "models": ["minilm"], "labels": "category", "n_subsamples": 5}]
    config["metrics"] = {"probe": {"n_permutations": 200, "n_bootstrap": 200},
                         "word_similarity": {"n_permutations": 100, "n_bootstrap": 100}}
    return config


@pytest.fixture(scope="module")
def inside_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("inside"))
    path = work / "inside.yaml"
    path.write_text(yaml.safe_dump(_small_config()))
    run = run_snakemake(work, "--profile", "profiles/local", "--configfile", str(path))
    assert run.returncode == 0, run.stderr[-3000:]
    return work / "results"


def test_probe_concept_depth_and_untrained_control(inside_run):
    trained = xr.open_dataset(inside_run / "scores/categories/minilm/probe.nc")
    control = xr.open_dataset(inside_run / "scores/categories/minilm_untrained/probe.nc")
    # six balanced categories: chance 1/6 beside every score; the trained model is far above it
    np.testing.assert_allclose(trained["null_mean"].values, 1 / 6, atol=0.02)
    assert float(trained["score_mean"].max()) > 0.85
    assert float(trained["score_mean"].max()) - float(control["score_mean"].max()) > 0.3
    table = pd.read_csv(inside_run / "figures/categories/concept_depth_probe.csv")
    assert set(table["model"]) == {"minilm", "minilm_untrained"}
    row = table.set_index("model").loc["minilm"]
    assert row["ci_low"] <= row["concept_depth"] <= row["ci_high"]
    assert float(trained["concept_depth"].values[0]) == pytest.approx(row["concept_depth"], abs=1e-4)  # CSV: 4 digits
    for figure in ("concept_depth_probe", "families_probe", "models_probe"):
        assert (inside_run / f"figures/categories/{figure}.png").stat().st_size > 10_000
    summary = xr.open_dataset(inside_run / "summary/categories/probe.nc")
    assert summary["variant"].sel(model="minilm_untrained").item() == "untrained"
    diff = summary.sel(model="minilm", model_="minilm_untrained", roi="category")
    assert diff["best_boot_difference_ci_low"] > 0.2  # paired over the shared resamples
    activations = xr.open_dataset(inside_run / "activations/sentences/minilm_untrained.nc")
    assert activations.attrs["untrained"] == 1 and activations.attrs["init_seed"] == CONFIG["seed"]


def test_geometry_file_and_figure(inside_run):
    data = xr.open_dataset(inside_run / "geometry/sentences.nc")
    assert set(data["measure"].values) == {"twonn", "mle", "participation_ratio", "effective_rank", "alpha_req",
                                           "anisotropy", "massive_activation", "nc1"}
    assert list(data["model"].values) == ["minilm", "minilm_untrained"]
    value = data["value"].sel(model="minilm")
    ok = np.isfinite(value.values)
    assert ok.all()
    assert ((data["ci_low"].sel(model="minilm").values <= value.values + 1e-12)
            & (value.values <= data["ci_high"].sel(model="minilm").values + 1e-12)).all()
    # 120 sentences in 384 units: the effective rank cannot exceed the number of stimuli
    assert (value.sel(measure="effective_rank").values < 120).all()
    assert (inside_run / "figures/geometry/sentences.png").stat().st_size > 10_000


def test_simlex_word_similarity(inside_run):
    scores = xr.open_dataset(inside_run / "scores/simlex/minilm/word_similarity.nc")
    best = float(scores["score_mean"].max())
    assert 0.3 < best < 0.7  # published static-embedding range for small encoders on SimLex-999
    assert int(scores.attrs.get("n_stimuli", 1028) or 1028) >= 1000
    low, high = scores["ci_low"].values, scores["ci_high"].values
    assert ((low <= scores["score_mean"].values) & (scores["score_mean"].values <= high)).all()


def test_inside_report_in_a_browser(inside_run):
    """The report of the inside-the-model run: Probing, Human judgements, Geometry and Summary (with
    the families figure beside the summary table) open in headless Chromium without errors."""
    from report_browser import inspect_report, problems, summary
    from test_report_browser import require_browser

    require_browser()
    work = inside_run.parent
    run = run_snakemake(work, "--cores", "1", "--configfile", str(work / "inside.yaml"), "--report", "report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    categories = ["Stimuli", "Brain data", "Probing", "Human judgements", "Geometry", "Summary"]
    result = inspect_report(work / "report.html", categories, work / "report.png")
    print(summary(result))
    assert not problems(result), problems(result)
