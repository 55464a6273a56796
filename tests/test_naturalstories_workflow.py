"""config/examples/naturalstories.yaml through Snakemake, cut to three stories, SmolLM2 at five layers
and a short window: words in context, surprisal, reading times, both analyses, figures, report."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from brainalign.io import read_activations, read_netcdf

from conftest import ROOT, SHARED_DATA, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow
NS = SHARED_DATA / "naturalstories"
N_WORDS = 3103  # stories 1 to 3 of all_stories.tok


@pytest.fixture(scope="module")
def ns_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("naturalstories"))
    lines = (NS / "all_stories.tok").read_text().splitlines()
    keep = [lines[0]] + [line for line in lines[1:] if line.split("\t")[2] in ("1", "2", "3")]
    (work / "three_stories.tok").write_text("\n".join(keep) + "\n")
    config = yaml.safe_load((ROOT / "config" / "examples" / "naturalstories.yaml").read_text())
    config["stimuli"]["naturalstories"]["path"] = "three_stories.tok"
    for key in ("path",):
        config["datasets"]["reading_times"][key] = str(NS / "processed_wordinfo.tsv")
    config["datasets"]["reading_times"]["baseline"]["frequency"]["path"] = str(NS / "freqs-1.tsv")
    smollm2 = copy.deepcopy(config["models"]["smollm2"])
    smollm2.update(layers=[0, 6, 12, 18, 30], context={"policy": "window", "tokens": 64, "stride": 64})
    config["models"] = {"smollm2": smollm2}
    config["analyses"] = [{"datasets": ["reading_times"], "models": ["smollm2"], "metrics": ["surprisal", "encoding"]}]
    config["metrics"]["surprisal"].update(bootstrap="words", n_bootstrap=200, n_permutations=99)
    config["metrics"]["encoding"].update(outer_folds=3, inner_folds=2)  # stories: 3 outer, 2 inner groups
    (work / "ns.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(work, "--profile", "profiles/local", "--configfile", "ns.yaml", check=True)
    run_snakemake(work, "--configfile", "ns.yaml", "--report", "results/report.html", check=True)
    return work / "results"


def test_words_in_context_with_surprisal_are_extracted(ns_run):
    layers, attrs = read_activations(ns_run / "activations" / "naturalstories" / "smollm2.nc")
    assert [str(da["layer"].item()) for da in layers] == ["embeddings", "block_06", "block_12", "block_18",
                                                           "block_30", "surprisal", "entropy"]
    assert layers[0].sizes["stimulus"] == N_WORDS  # stories 1 to 3
    assert (attrs["context_policy"], attrs["context_tokens"], attrs["context_stride"]) == ("window", 64, 64)
    assert len(attrs["tokenizer_checksum"]) == 64 and attrs["word_pooling"] == "last"


def test_surprisal_slows_reading_on_real_data(ns_run):
    scores = read_netcdf(ns_run / "scores" / "reading_times" / "smollm2" / "surprisal.nc")
    coefficient = float(scores["score"].item())
    assert 0 < float(scores["ci_low"].item()) <= coefficient <= float(scores["ci_high"].item())
    assert float(scores["p_value"].item()) <= 0.05
    assert float(scores["delta_r2"].item()) > 0 and float(scores["delta_loglik"].item()) > 0
    assert abs(float(scores["null_mean"].item())) < coefficient


def test_layerwise_encoding_over_the_baseline(ns_run):
    scores = read_netcdf(ns_run / "scores" / "reading_times" / "smollm2" / "encoding.nc")
    assert "score_delta" in scores and "baseline_score" in scores
    assert scores.attrs["outer_cv"] == "3-fold grouped by group"
    assert float(scores["baseline_score"].item()) > 0.2  # length, frequency and position predict reading times
    for fmt in ("png", "svg"):
        assert (ns_run / "figures" / "reading_times" / "smollm2" / f"surprisal.{fmt}").stat().st_size > 10_000
    html = (ns_run / "report.html").read_text(errors="replace")
    assert "Reading" in html
