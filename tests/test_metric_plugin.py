"""A new metric enters through one registry entry and nothing else: a plugin module with one
``register_metric`` call, named in the config's ``plugins``, runs through ``snakemake`` (its own
score job, layer-curve figure, summary table and report entry) on a reduced config."""

from __future__ import annotations

import csv
import textwrap

import numpy as np
import pytest
import yaml

from brainalign.io import read_activations, read_netcdf
from brainalign.jobs.common import brain_blocks
from brainalign.stimuli import align_to

from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

PLUGIN = textwrap.dedent('''
    """Toy metric: Pearson r between a layer's mean activation and a block's mean response, per stimulus."""
    import numpy as np

    from brainalign.jobs.common import brain_blocks, scores_dataset
    from brainalign.metrics.registry import Metric, register_metric


    def score_mean_r(layers, brain, settings, *, metric, rng, seed=0, confidence=0.95):
        blocks, subjects, rois = brain_blocks(brain)
        out = np.full((len(layers), len(subjects), len(rois)), np.nan)
        for (s, r), y in blocks.items():
            i, j = list(subjects).index(s), list(rois).index(r)
            for k, layer in enumerate(layers):
                out[k, i, j] = np.corrcoef(layer.values.mean(1), y.mean(1))[0, 1]
        return scores_dataset(out, layers, subjects, rois, confidence)


    register_metric(Metric(
        name="mean_r", category="CKA", scorer=__name__ + ":score_mean_r",
        label=lambda settings: "toy mean-activation r",
        caption=lambda settings: ["metric toy mean-activation Pearson r", "no cross-validation (all stimuli)"],
        schema={"type": "object", "additionalProperties": False,
                "properties": {"n_permutations": {"type": "integer", "minimum": 0, "default": 0}}}))
''')


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("plugin_run"))
    (workdir / "toy_metric.py").write_text(PLUGIN)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config.update(
        plugins=["toy_metric.py"],
        models={"minilm": config["models"]["minilm"]},
        datasets={"toy": {"kind": "simulated", "stimuli": "sentences", "subjects": 2, "repetitions": 2, "snr": 1.0,
                          "rois": {"planted": {"model": "minilm", "layer": 3, "voxels": 40, "center": [-52, -20, 4]},
                                   "noise": {"voxels": 40, "center": [8, -80, 4]}}}},
        analyses=[{"datasets": ["toy"], "models": ["minilm"], "metrics": ["mean_r"]}],
        banded_encoding=[], model_comparisons=[], dataset_comparisons=[])
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(workdir, "--profile", "profiles/local", check=True)
    run_snakemake(workdir, "--report", "results/report.html", check=True)
    return workdir


def test_plugin_metric_scores_equal_the_closed_form(plugin_run):
    scores = read_netcdf(plugin_run / "results" / "scores" / "toy" / "minilm" / "mean_r.nc")
    assert scores.attrs["metric"] == "mean_r" and scores.attrs["metric_label"] == "toy mean-activation r"
    layers, _ = read_activations(plugin_run / "results" / "activations" / "sentences" / "minilm.nc")
    brain = read_netcdf(plugin_run / "results" / "brain" / "toy.nc")
    layers = [align_to(da, brain["stimulus_id"].values, what="activations") for da in layers]
    blocks, subjects, rois = brain_blocks(brain)
    assert list(scores["roi"].values) == ["noise", "planted"] and len(subjects) == 2
    for (s, r), y in blocks.items():
        for k, layer in enumerate(layers):
            expected = np.corrcoef(layer.values.mean(1), y.mean(1))[0, 1]
            assert scores["score"].sel(subject=s, roi=r).values[k] == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(scores["score_mean"].values, np.nanmean(scores["score"].values, axis=1), atol=1e-15)


def test_plugin_metric_appears_in_the_summary_table_and_the_report(plugin_run):
    figures = plugin_run / "results" / "figures" / "toy"
    assert (figures / "minilm" / "mean_r.png").stat().st_size > 10_000
    with open(figures / "summary_mean_r.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["roi"] for row in rows} == {"planted", "noise"} and {row["model"] for row in rows} == {"minilm"}
    summary = read_netcdf(plugin_run / "results" / "summary" / "toy" / "mean_r.nc")
    best = summary["best_score"].sel(model="minilm")
    for row in rows:
        assert float(row["score"]) == pytest.approx(float(best.sel(roi=row["roi"])), abs=5e-4)
    html = (plugin_run / "results" / "report.html").read_text(errors="ignore")
    assert "mean_r" in html and "toy mean-activation Pearson r" in html and "summary_mean_r.png" in html
