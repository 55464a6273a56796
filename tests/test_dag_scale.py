"""The DAG of a large study plans fast, at the granularity of DESIGN.md: one extraction job per
model x stimulus set and one analysis job per model x dataset x metric, never one per layer."""

from __future__ import annotations

import copy
import re
import time

import pytest
import yaml

from conftest import ROOT, copy_workflow, run_snakemake

N_MODELS, N_DATASETS, METRICS = 20, 5, ["rsa", "cka", "encoding"]


def big_config() -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    minilm = config["models"]["minilm"]
    config["models"] = {f"model{i:02d}": copy.deepcopy(minilm) for i in range(N_MODELS)}
    config["datasets"] = {
        f"dataset{d}": {"kind": "simulated", "stimuli": "sentences", "seed": d,
                        "rois": {"a": {"model": "model00", "layer": 2, "voxels": 50}, "b": {"voxels": 50}}}
        for d in range(N_DATASETS)}
    config["analyses"] = [{"datasets": list(config["datasets"]), "models": list(config["models"]),
                           "metrics": METRICS}]
    for key in ("banded_encoding", "model_comparisons", "dataset_comparisons"):
        config.pop(key, None)
    return config


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_dry_run_of_20_models_5_datasets_3_metrics(tmp_path, profile):
    copy_workflow(tmp_path)
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(big_config(), sort_keys=False))
    start = time.perf_counter()
    proc = run_snakemake(tmp_path, "--profile", f"profiles/{profile}", "--configfile", "big.yaml", "-n",
                         "--quiet", "rules", timeout=300)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M)}
    print(f"dry run ({profile} profile): {seconds:.1f} s, {counts.get('total')} jobs: {counts}")
    assert seconds < 10  # the 20 x 5 x 3 study plans in under 10 s (measured 3 to 5 s here)
    assert counts["extract"] == N_MODELS
    assert counts["brain"] == N_DATASETS
    # one score job per model x dataset x metric (one `score` rule on the {metric} wildcard)
    assert counts["score"] == N_MODELS * N_DATASETS * len(METRICS)
    # one figure job per scores file (layer curves and the metric's other figures together)
    figure_jobs = sum(counts.get(f"plot_{m}", 0) + counts.get(f"plot_{m}_maps", 0) for m in METRICS)
    assert figure_jobs == N_MODELS * N_DATASETS * len(METRICS)
