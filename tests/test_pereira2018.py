"""Pereira et al. 2018 (sentence responses of the language network) through the ``responses_table``
dataset kind: the real CSV read through config, its bad inputs named at validation (key and file),
the single-subject bootstrap interval of encoding against an independent computation, and one
layer's cross-validated r on the real data against scikit-learn."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from conftest import ROOT, SHARED_DATA

CSV = SHARED_DATA / "pereira2018" / "pereira_averaged.csv"
EXAMPLE = ROOT / "config" / "examples" / "pereira2018.yaml"


@pytest.fixture(scope="module")
def example() -> dict:
    """The shipped example config, validated (defaults filled) as the workflow does, from the repo root."""
    from brainalign.config import load_yaml, validate_config

    return validate_config(load_yaml(EXAMPLE), base_dir=ROOT)


@pytest.fixture(scope="module")
def stimuli(example):
    from brainalign.stimuli import read_stimulus_table

    return read_stimulus_table(example["stimuli"]["pereira2018"], ROOT)


# ---------------------------------------------------------------- the real CSV through the kind

def test_real_csv_read_through_the_kind_equals_the_file(example, stimuli):
    from brainalign.datasets import load_dataset

    brain = load_dataset("pereira2018", example["datasets"]["pereira2018"], stimuli, base_dir=ROOT)
    assert brain.sizes == {"stimulus": 627, "neuroid": 1, "repetition": 1}
    assert brain["subject"].values.tolist() == ["average"] and brain["roi"].values.tolist() == ["language"]
    assert brain["column"].values.tolist() == ["EffectSize"]
    # an independent read: every sentence's value, matched by its (stripped) text
    table = pd.read_csv(CSV)
    expected = dict(zip(table["Sentence"].str.strip(), table["EffectSize"].astype(float)))
    texts = np.char.strip(stimuli["content"].values.astype(str))
    assert len(set(texts)) == 627
    np.testing.assert_array_equal(brain["responses"].values[:, 0, 0], [expected[t] for t in texts])
    # the stimulus ids are the file's index column, in its order
    np.testing.assert_array_equal(brain["stimulus_id"].values, table.iloc[:, 0].astype(str).values)
    assert brain.attrs["dataset_checksum"].endswith(
        "263cc58ffae256aad8c04f82307865775116497d57b1c5812e02b2ebf0624496")


def test_id_join_and_roi_per_target(tmp_path, stimuli):
    from brainalign.datasets import load_dataset

    table = pd.read_csv(CSV).rename(columns={"Unnamed: 0": "stimulus_id"})
    table["Doubled"] = 2 * table["EffectSize"]
    path = tmp_path / "responses.tsv"
    table.iloc[::-1].to_csv(path, sep="\t", index=False)  # rows in another order: joined by id
    spec = {"kind": "responses_table", "stimuli": "p", "path": str(path), "id_column": "stimulus_id",
            "targets": ["EffectSize", "Doubled"], "roi": ["lang", "twice"], "subject": "group"}
    brain = load_dataset("p", spec, stimuli)
    np.testing.assert_array_equal(brain["responses"].values[:, 1, 0], 2 * brain["responses"].values[:, 0, 0])
    np.testing.assert_array_equal(brain["responses"].values[:, 0, 0], pd.read_csv(CSV)["EffectSize"].values)
    assert brain["roi"].values.tolist() == ["lang", "twice"]


# ---------------------------------------------------------------- bad inputs, at validation

def _bad_config(tmp_path: Path, edit_lines=None, **dataset) -> dict:
    """The example config with the dataset's table (optionally edited) in tmp_path and keys overridden."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["stimuli"]["pereira2018"]["path"] = str(CSV)
    config["models"] = {"minilm": config["models"]["minilm"]}
    config["analyses"][0]["models"] = ["minilm"]
    lines = CSV.read_text().splitlines()
    table = tmp_path / "pereira.csv"
    table.write_text("\n".join(edit_lines(lines) if edit_lines else lines) + "\n")
    entry = config["datasets"]["pereira2018"]
    entry["path"] = str(table)
    for key, value in dataset.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return config


def _set_value(k: int, value: str):
    """Line ``k + 1`` of the file (``lines[k]``) with its last field, the EffectSize, set to ``value``."""
    def edit(lines):
        return [*lines[:k], re.sub(r",[^,]+$", f",{value}", lines[k]), *lines[k + 1:]]
    return edit


BAD = {
    "missing_target_column": (None, {"targets": ["Effect"]},
                              r"config key 'datasets\.pereira2018\.targets': \S+pereira\.csv has no column 'Effect'"),
    "missing_join_column": (None, {"text_column": "sentence"},
                            r"config key 'datasets\.pereira2018\.text_column': \S+pereira\.csv has no column "
                            r"'sentence'"),
    "non_numeric_target": (_set_value(12, "n/a"), {},
                           r"config key 'datasets\.pereira2018\.targets': \S+pereira\.csv, line 13: 'EffectSize' "
                           r"is not a number \('n/a'\)"),
    "stimulus_without_row": (lambda lines: [*lines[:40], *lines[41:]], {},
                             r"config key 'datasets\.pereira2018\.text_column': \S+pereira\.csv has no row for 1 of "
                             r"the 627 stimuli of stimulus set 'pereira2018' \(column 'Sentence'; e\.g\. '39'"),
    "duplicated_row": (lambda lines: [*lines, lines[5]], {},
                       r"config key 'datasets\.pereira2018\.text_column': \S+pereira\.csv, lines \[6, 629\]: "
                       r"'Sentence' value '.+' appears more than once"),
    "both_join_keys": (None, {"id_column": "Unnamed: 0"},
                       r"config key 'datasets\.pereira2018': give either id_column .* or text_column .*, not both"),
    "no_join_key": (None, {"text_column": None},
                    r"config key 'datasets\.pereira2018': give either id_column .* or text_column \(.*\)$"),
    "roi_count": (None, {"roi": ["a", "b"]},
                  r"config key 'datasets\.pereira2018\.roi': 2 names for 1 targets"),
    "constant_target": (lambda lines: [lines[0], *(_set_value(0, "0.5")([line])[0] for line in lines[1:])], {},
                        r"config key 'datasets\.pereira2018': \S+pereira\.csv: the responses of subject "
                        r"average ROI language are the same for every stimulus"),
    "missing_file": (None, {"path": "no/such/table.csv"},
                     r"config key 'datasets\.pereira2018(\.path)?': file not found: \S*no/such/table\.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_pereira_inputs_are_named_at_validation(case, tmp_path):
    from brainalign.config import validate_config
    from brainalign.config.schema import ConfigError

    edit, override, pattern = BAD[case]
    config = _bad_config(tmp_path, edit, **override)
    with pytest.raises(ConfigError) as info:
        validate_config(config, base_dir=tmp_path)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_bad_pereira_table_stops_snakemake_before_any_job(tmp_path):
    """The same validation through `snakemake -n` in a user's checkout: one line naming the key and the
    file and its line, exit 1, no traceback, nothing written."""
    from conftest import copy_workflow

    work = copy_workflow(tmp_path / "work")
    config = _bad_config(tmp_path, *BAD["non_numeric_target"][:1])
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", "bad.yaml"],
                          cwd=work, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert re.search(BAD["non_numeric_target"][2], out), out[-3000:]
    assert "Traceback" not in out
    assert not (work / "results").exists()


# ---------------------------------------------------------------- the single-subject bootstrap interval

def _synthetic(n=150, seed=0, subjects=("a",) * 5):
    rng = np.random.default_rng(seed)
    layers = []
    for k in range(2):
        x = rng.standard_normal((n, 12))
        layers.append(xr.DataArray(x, dims=("stimulus", "unit"),
                                   coords={"layer": f"l{k}", "layer_index": k, "depth": k / 1.0}))
    y = layers[0].values @ rng.standard_normal((12, 5)) * 0.25 + rng.standard_normal((n, 5))
    brain = xr.Dataset({"responses": (("stimulus", "neuroid"), y)},
                       coords={"stimulus_id": ("stimulus", [f"s{i}" for i in range(n)]),
                               "subject": ("neuroid", list(subjects)),
                               "roi": ("neuroid", ["early", "early", "early", "late", "late"])})
    return layers, brain


SETTINGS = {"alphas": [0.1, 10.0, 1000.0], "outer_folds": 5, "inner_folds": 4, "dtype": "float64",
            "n_permutations": 0, "ceiling": "none", "device": "cpu"}


def test_single_subject_interval_equals_an_independent_bootstrap():
    """The interval replayed by hand: the same draws (per fold, in fold order, from the config seed),
    each resample gathered explicitly (copies, no weights), Pearson r per fold, the fold mean, the ROI
    median, numpy's percentiles."""
    from brainalign.jobs.encoding import N_BOOTSTRAP, score_encoding
    from brainalign.metrics.encoding import cross_validated_encoding

    layers, brain = _synthetic()
    seed, confidence = 11, 0.9
    result = score_encoding(layers, brain, SETTINGS, seed=seed, confidence=confidence)
    y = brain["responses"].values
    rois = result["roi"].values.tolist()
    assert rois == ["early", "late"] and result.attrs["n_bootstrap"] == N_BOOTSTRAP
    for li, layer in enumerate(layers):
        fit = cross_validated_encoding(layer.values, y, SETTINGS["alphas"], outer_folds=5, inner_folds=4,
                                       seed=seed)
        np.testing.assert_allclose(result["target_r"].values[li], fit.r, rtol=1e-9)
        rng = np.random.default_rng(seed)
        fold_r = []
        for _, test in fit.folds:
            draws = rng.integers(0, len(test), size=(N_BOOTSTRAP, len(test)))
            p, t = fit.predictions[test][draws], y[test][draws]  # (resample, n_test, target)
            p, t = p - p.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
            fold_r.append((p * t).sum(1) / np.sqrt((p * p).sum(1) * (t * t).sum(1)))
        per_target = np.mean(fold_r, axis=0)  # (resample, target)
        for j, cols in ((0, [0, 1, 2]), (1, [3, 4])):
            boot = np.median(per_target[:, cols], axis=1)
            low, high = np.percentile(boot, [5, 95])
            np.testing.assert_allclose(result["ci_low"].values[li, j], low, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(result["ci_high"].values[li, j], high, rtol=1e-10, atol=1e-12)
            estimate = result["score_mean"].values[li, j]
            np.testing.assert_allclose(estimate, np.median(fit.r[cols]), rtol=1e-9)
            assert low <= estimate <= high
    assert "percentile interval over 1000 bootstrap resamples" in result["ci_low"].attrs["description"]
    assert result["ci_high"].attrs["description"] == result["ci_low"].attrs["description"]
    # the same interval where the figures and the summary table look for a bootstrap
    np.testing.assert_array_equal(result["boot_ci_low"].values, result["ci_low"].values)
    np.testing.assert_array_equal(result["boot_ci_high"].values, result["ci_high"].values)


def test_interval_stays_across_subjects_with_several_subjects_and_nan_with_grouped_folds():
    from brainalign.jobs.common import across_subject_ci
    from brainalign.jobs.encoding import score_encoding

    layers, brain = _synthetic(subjects=("a", "b", "a", "b", "c"))
    result = score_encoding(layers, brain, SETTINGS, seed=3)
    _, low, high = across_subject_ci(result["score"].values, 0.95)
    np.testing.assert_array_equal(result["ci_low"].values, low)
    np.testing.assert_array_equal(result["ci_high"].values, high)
    assert result["ci_low"].attrs["description"] == "95% Student-t interval across subjects"
    assert result.attrs["n_bootstrap"] == 0 and np.isnan(result["boot_ci_low"].values).all()
    # one subject, folds grouped by a label: resampling single stimuli would ignore the groups
    layers, brain = _synthetic()
    brain = brain.assign_coords(block=("stimulus", np.repeat(np.arange(10), 15).astype(str)))
    result = score_encoding(layers, brain, {**SETTINGS, "groups": "block"}, seed=3)
    assert np.isnan(result["ci_low"].values).all() and result.attrs["n_bootstrap"] == 0


# ---------------------------------------------------------------- the real data against scikit-learn

@pytest.mark.slow
def test_real_layer_cross_validated_r_equals_scikit_learn(example, stimuli, tmp_path):
    """MiniLM on the 627 sentences, one middle layer, the example's encoding settings: the held-out r
    (per fold, averaged) equals scikit-learn's Ridge with the alpha chosen by GridSearchCV (fold-mean
    MSE) on the same outer and inner folds, within 1e-6; the bootstrap interval contains it."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.preprocessing import StandardScaler

    from brainalign.datasets import load_dataset
    from brainalign.io import read_activations
    from brainalign.jobs.encoding import score_encoding
    from brainalign.jobs.extract import extract_activations

    out = tmp_path / "minilm.nc"
    spec = {**example["models"]["minilm"], "device": "cpu"}
    extract_activations(stimuli, "minilm", spec, out, seed=example["seed"], progress=False)
    layers, _ = read_activations(out)
    layer = layers[3]
    brain = load_dataset("pereira2018", example["datasets"]["pereira2018"], stimuli, base_dir=ROOT)
    settings = {**example["metrics"]["encoding"], "n_permutations": 0, "device": "cpu"}
    seed = example["seed"]
    result = score_encoding([layer], brain, settings, seed=seed)
    r = float(result["score_mean"].item())

    x, y = layer.values.astype(np.float64), brain["responses"].values[:, 0, 0]
    alphas = settings["alphas"]
    fold_r, chosen = [], []
    for train, test in KFold(settings["outer_folds"], shuffle=True, random_state=seed).split(x):
        scaler = StandardScaler().fit(x[train])
        search = GridSearchCV(Ridge(), {"alpha": alphas}, scoring="neg_mean_squared_error",
                              cv=KFold(settings["inner_folds"], shuffle=True, random_state=seed))
        search.fit(scaler.transform(x[train]), y[train])
        chosen.append(search.best_params_["alpha"])
        fold_r.append(np.corrcoef(search.predict(scaler.transform(x[test])), y[test])[0, 1])
    np.testing.assert_array_equal(result["target_alpha"].values[0, :, 0], chosen)
    np.testing.assert_allclose(r, np.mean(fold_r), atol=1e-6)
    assert 0.1 < r < 0.6
    assert float(result["ci_low"].item()) <= r <= float(result["ci_high"].item())
