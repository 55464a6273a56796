"""Bad input, tried as a user would: through the README's `brainalign run --configfile X`
(`snakemake --profile profiles/local` after a strict read of the config files) in a checkout whose results are complete. Every case must exit non-zero, print a message that
names the config key or the file (and the line, for YAML), print no traceback, and leave every
earlier output as it was (slow: ~50 Snakemake starts)."""

from __future__ import annotations

import copy
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow

REDUCED = yaml.safe_load((ROOT / "tests" / "configs" / "reduced.yaml").read_text())


def _set(config: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return config


def patched(**changes):
    """A case: the reduced config with dotted keys set (``__`` stands for ``.``)."""
    def make(tmp: Path) -> dict:
        config = copy.deepcopy(REDUCED)
        for key, value in changes.items():
            _set(config, key.replace("__", "."), value(tmp) if callable(value) else value)
        return config
    return make


def raw(text: str):
    """A case: a config file with exactly this text."""
    return lambda tmp: text


def _csv(content: bytes):
    def make(tmp: Path) -> str:
        path = tmp / "stimuli.csv"
        path.write_bytes(content)
        return str(path)
    return make


def _brain_file(mutate):
    """A brain file in the contract for the default sentences, changed by ``mutate``."""
    def make(tmp: Path) -> str:
        ids = [line.split(",")[0] for line in (ROOT / "config/stimuli/sentences.csv").read_text().splitlines()[1:]]
        rng = np.random.default_rng(0)
        n, v = len(ids), 20
        brain = xr.Dataset({"responses": (("stimulus", "neuroid"), rng.standard_normal((n, v)))},
                           coords={"stimulus_id": ("stimulus", np.array(ids)),
                                   "subject": ("neuroid", np.repeat(["s1", "s2"], v // 2)),
                                   "roi": ("neuroid", np.tile(np.repeat(["A", "B"], v // 4), 2))})
        brain = mutate(brain)
        path = tmp / "rec.nc"
        if isinstance(brain, bytes):
            path.write_bytes(brain)
        else:
            brain.to_netcdf(path, engine="h5netcdf")
        return str(path)
    return make


def _constant_roi(brain):
    values = brain["responses"].values.copy()
    values[:, (brain["subject"].values == "s1") & (brain["roi"].values == "B")] = 3.0
    return brain.assign(responses=(("stimulus", "neuroid"), values))


def _duplicate_id(brain):
    ids = brain["stimulus_id"].values.copy()
    ids[5] = ids[4]
    return brain.assign_coords(stimulus_id=("stimulus", ids))


def _nan(brain):
    values = brain["responses"].values.copy()
    values[3, 2] = np.nan
    return brain.assign(responses=(("stimulus", "neuroid"), values))


def with_brain_file(mutate):
    """The reduced config plus a netcdf dataset `rec` (from a file changed by ``mutate``) in an analysis."""
    def make(tmp: Path) -> dict:
        config = copy.deepcopy(REDUCED)
        config["datasets"]["rec"] = {"kind": "netcdf", "stimuli": "sentences", "path": _brain_file(mutate)(tmp)}
        config["analyses"].append({"datasets": ["rec"], "models": ["minilm"], "metrics": ["rsa"]})
        return config
    return make


ALICE = ROOT.parent / "shared" / "data" / "brennan2016_alice"


def with_timeseries(mutate=None, **entry):
    """The reduced config plus Alice (two subjects' files copied into the case's folder, changed by
    ``mutate(folder)``) as a timeseries dataset; ``entry`` overrides the dataset's keys."""
    def make(tmp: Path) -> dict:
        folder = tmp / "alice"
        folder.mkdir()
        for subject in ("s18", "s22"):
            shutil.copy(ALICE / "fmri" / "6mm" / f"{subject}-timecourses.txt", folder)
            for source in (ALICE / "fmri").glob(f"{subject}-rp_*.txt"):
                shutil.copy(source, folder / f"{subject}-motion.txt")
        if mutate:
            mutate(folder)
        config = copy.deepcopy(REDUCED)
        config["stimuli"]["alice"] = {"kind": "textgrid", "tier": "word", "group": "alice",
                                      "path": str(ALICE / "stimuli" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid")}
        config["datasets"]["alice"] = {"kind": "timeseries", "stimuli": "alice", "tr": 2.0, "discarded_volumes": 10,
                                       "timecourses": str(folder / "{subject}-timecourses.txt"),
                                       "columns": ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"],
                                       "confounds": [str(folder / "{subject}-motion.txt")], **entry}
        config["analyses"].append({"datasets": ["alice"], "models": ["minilm"], "metrics": ["encoding"]})
        return config
    return make


def with_labels(edit_rows=None, **entry):
    """The reduced config plus a `labels` dataset on a copy of the default sentences (rows changed by
    ``edit_rows(list of csv lines)``) probed by MiniLM; ``entry`` overrides the dataset's keys."""
    def make(tmp: Path) -> dict:
        lines = (ROOT / "config/stimuli/sentences.csv").read_text().splitlines()
        path = tmp / "labelled.csv"
        path.write_text("\n".join(edit_rows(lines) if edit_rows else lines) + "\n")
        config = copy.deepcopy(REDUCED)
        config["stimuli"]["labelled"] = {"path": str(path), "modality": "text", "content_column": "sentence",
                                         "condition_columns": ["category"]}
        config["datasets"]["lab"] = {"kind": "labels", "stimuli": "labelled", "categorical": ["category"], **entry}
        config["analyses"].append({"datasets": ["lab"], "models": ["minilm"], "metrics": ["probe"]})
        return config
    return make


def _one_category(lines):
    return [lines[0]] + [",".join(line.split(",")[:-1] + ["animals"]) for line in lines[1:]]


def _blank_category(lines):
    return lines[:3] + [",".join(lines[3].split(",")[:-1] + [""])] + lines[4:]


def with_norms(rows: int, **entry):
    """The reduced config plus a responses_table of norms for the first ``rows`` sentences only."""
    def make(tmp: Path) -> dict:
        ids = [line.split(",")[0] for line in (ROOT / "config/stimuli/sentences.csv").read_text().splitlines()[1:]]
        path = tmp / "norms.tsv"
        path.write_text("id\tvalence\n" + "".join(f"{i}\t{k % 7}\n" for k, i in enumerate(ids[:rows])))
        config = copy.deepcopy(REDUCED)
        config["datasets"]["norms"] = {"kind": "responses_table", "stimuli": "sentences", "path": str(path),
                                       "id_column": "id", "targets": ["valence"], **entry}
        config["analyses"].append({"datasets": ["norms"], "models": ["minilm"], "metrics": ["probe"]})
        return config
    return make


def _truncate(name: str, rows: int):
    def mutate(folder: Path) -> None:
        path = folder / name
        path.write_text("\n".join(path.read_text().splitlines()[:rows]) + "\n")
    return mutate


DEFAULT_TEXT = (ROOT / "tests" / "configs" / "reduced.yaml").read_text()
ALPHAS = [float(a) for a in np.logspace(-3, 6, 2000)]

# (case id, config maker, words the message must contain)
CASES = [
    ("yaml_syntax", raw(DEFAULT_TEXT.replace("modality: text", "modality: [text")), ["bad.yaml", "line"]),
    ("yaml_duplicate_seed", raw("seed: 1\n" + DEFAULT_TEXT), ["bad.yaml", "line", "'seed'", "twice"]),
    ("yaml_duplicate_nested", raw(DEFAULT_TEXT.replace("    pooling: mean\n", "    pooling: mean\n    pooling: last\n")),
     ["bad.yaml", "line", "'pooling'", "twice"]),
    ("yaml_tab", raw(DEFAULT_TEXT.replace("  sentences:\n    path", "  sentences:\n\tpath", 1)), ["bad.yaml", "line"]),
    ("yaml_not_mapping", raw("- seed\n- 1\n"), ["bad.yaml", "mapping"]),
    ("yaml_not_utf8", raw(b"seed: 1\n# caf\xe9\n".decode("latin-1")), ["bad.yaml"]),
    ("seed_negative", patched(seed=-1), ["'seed'"]),
    ("seed_too_large", patched(seed=2**64), ["'seed'"]),
    ("seed_string", patched(seed="abc"), ["'seed'"]),
    ("unknown_top_key", patched(sead=1), ["sead"]),
    ("threads_zero", patched(threads=0), ["'threads'"]),
    ("n_permutations_negative", patched(metrics__rsa__n_permutations=-5), ["metrics.rsa.n_permutations"]),
    ("confidence_above_one", patched(metrics__confidence=1.5), ["metrics.confidence"]),
    ("alpha_grid_2000", patched(metrics__encoding__alphas=ALPHAS), ["metrics.encoding.alphas"]),
    ("alpha_negative", patched(metrics__encoding__alphas=[-1.0, 10.0]), ["metrics.encoding.alphas"]),
    ("rsa_comparison_unknown", patched(metrics__rsa__comparison="pearsonx"), ["metrics.rsa.comparison"]),
    ("rsa_transform_thresholds_reversed",
     patched(metrics__rsa__rdm_transform={"kind": "geotopological", "lower": 0.8, "upper": 0.2}),
     ["metrics.rsa.rdm_transform.upper"]),
    ("model_kind_unknown", patched(models__minilm__kind="hf_textx"), ["models.minilm"]),
    ("pooling_unknown", patched(models__minilm__pooling="max"), ["models.minilm.pooling"]),
    ("model_source_missing", patched(models__minilm__source=lambda tmp: str(tmp / "no_model")),
     ["models.minilm.source"]),
    ("model_layers_out_of_range", patched(models__minilm__layers=[0, 99]), ["models.minilm.layers", "99"]),
    ("dataset_stimuli_unknown", patched(datasets__fmri__stimuli="nosuch"), ["datasets.fmri.stimuli", "nosuch"]),
    ("analysis_metric_unknown", patched(analyses__0__metrics=["rsa", "nosuch"]), ["analyses.0.metrics"]),
    ("analysis_model_unknown", patched(analyses__0__models=["nosuch"]), ["analyses.0.models", "nosuch"]),
    ("analysis_dataset_unknown", patched(analyses__0__datasets=["nosuch"]), ["analyses.0.datasets", "nosuch"]),
    ("planted_layer_out_of_range", patched(datasets__fmri__simulate__planted__Auditory__layer=40),
     ["datasets.fmri.simulate.planted.Auditory.layer", "40"]),
    ("planted_model_unknown", patched(datasets__fmri__simulate__planted__Auditory__model="nosuch"),
     ["datasets.fmri.simulate.planted.Auditory.model"]),
    ("planted_roi_not_selected", patched(datasets__fmri__simulate__planted__Reward={"model": "minilm", "layer": 1}),
     ["datasets.fmri.simulate.planted.Reward"]),
    ("roi_not_in_atlas", patched(datasets__fmri__rois__select=["Auditory", "DefaultMode", "Visual", "Nowhere"]),
     ["datasets.fmri.rois.select", "Nowhere"]),
    ("atlas_unknown", patched(datasets__fmri__rois__coords="nosuch_2000"), ["datasets.fmri.rois"]),
    ("mutual_knn_k_above_stimuli", patched(analyses__0__metrics=["rsa", "mutual_knn"], metrics__mutual_knn__k=500),
     ["metrics.mutual_knn.k", "500", "120"]),
    ("outer_folds_above_stimuli", patched(metrics__encoding__outer_folds=200), ["metrics.encoding.outer_folds", "200"]),
    ("inner_folds_above_training", patched(metrics__encoding__inner_folds=110), ["metrics.encoding.inner_folds"]),
    ("similarity_k_above_stimuli", patched(similarity={"k": 500},
                                           model_comparisons__0__measures=["linear_cka", "mutual_knn"]),
     ["similarity.k"]),
    ("banded_layer_out_of_range", patched(banded_encoding__0__bands__late__layer=12),
     ["banded_encoding.0.bands.late.layer"]),
    ("banded_model_unknown", patched(banded_encoding__0__bands__late__model="nosuch"),
     ["banded_encoding.0.bands.late.model"]),
    ("model_comparison_unknown", patched(model_comparisons__0__models=["minilm", "nosuch"]),
     ["model_comparisons.0.models", "nosuch"]),
    ("dataset_comparison_unknown", patched(dataset_comparisons__0__datasets=["fmri", "nosuch"]),
     ["dataset_comparisons.0.datasets", "nosuch"]),
    ("resources_zero_memory", patched(resources={"extract": {"mem_mb": 0}}), ["resources.extract.mem_mb"]),
    ("report_format_unknown", patched(report={"formats": ["bmp"]}), ["report.formats"]),
    ("plugin_missing", patched(plugins=["brainalign_no_such_plugin"]), ["plugins.0"]),
    ("stimuli_file_missing", patched(stimuli__sentences__path=lambda tmp: str(tmp / "none.csv")),
     ["stimuli.sentences.path", "none.csv"]),
    ("stimuli_csv_empty", patched(stimuli__sentences__path=_csv(b"")), ["stimuli.sentences.path", "stimuli.csv", "empty"]),
    ("stimuli_csv_latin1", patched(stimuli__sentences__path=_csv("stimulus_id,sentence,category\ns1,café,a\n"
                                                                  .encode("latin-1"))),
     ["stimuli.sentences.path", "stimuli.csv", "line 2", "UTF-8"]),
    ("stimuli_csv_binary", patched(stimuli__sentences__path=_csv(bytes(range(256)) * 4)),
     ["stimuli.sentences.path", "stimuli.csv", "binary"]),
    ("stimuli_csv_duplicate_id", patched(stimuli__sentences__path=_csv(b"stimulus_id,sentence,category\n"
                                                                       b"s1,a b,x\ns1,c d,y\n")),
     ["stimuli.sentences.path", "stimuli.csv", "s1"]),
    ("stimuli_csv_missing_column", patched(stimuli__sentences__path=_csv(b"stimulus_id,text\ns1,a\n")),
     ["stimuli.sentences.path", "stimuli.csv", "sentence"]),
    ("stimuli_csv_empty_sentence", patched(stimuli__sentences__path=_csv(b"stimulus_id,sentence,category\n"
                                                                         b"s1,,x\ns2,a,y\n")),
     ["stimuli.sentences.path", "stimuli.csv", "s1"]),
    ("brain_file_constant_roi", with_brain_file(_constant_roi), ["datasets.rec.path", "rec.nc", "s1", "B"]),
    ("brain_file_duplicate_id", with_brain_file(_duplicate_id), ["datasets.rec.path", "rec.nc", "more than once"]),
    ("brain_file_nan", with_brain_file(_nan), ["datasets.rec.path", "rec.nc", "NaN"]),
    ("brain_file_not_netcdf", with_brain_file(lambda brain: b"not a netcdf file\n" * 10),
     ["datasets.rec.path", "rec.nc"]),
    ("timeseries_wrong_tr", with_timeseries(tr=1.5), ["datasets.alice", "s18-timecourses.txt", "1.5"]),
    ("timeseries_short_file", with_timeseries(_truncate("s22-timecourses.txt", 300)),
     ["datasets.alice", "s22-timecourses.txt", "300"]),
    ("timeseries_textgrid_tier", lambda tmp: _set(with_timeseries()(tmp), "stimuli.alice.tier", "phones"),
     ["stimuli.alice", "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid", "phones"]),
    ("timeseries_confound_rows", with_timeseries(_truncate("s22-motion.txt", 100)),
     ["datasets.alice.confounds", "s22-motion.txt", "100 rows"]),
    ("timeseries_subject_missing_file", with_timeseries(lambda folder: (folder / "s22-motion.txt").unlink()),
     ["datasets.alice.confounds", "s22", "motion.txt"]),
    ("labels_one_class", with_labels(_one_category), ["datasets.lab.categorical", "'category'", "one class"]),
    ("labels_nan", with_labels(_blank_category), ["datasets.lab.categorical", "'category'", "empty or NaN", "s003"]),
    ("labels_missing_column", with_labels(continuous=["size"]), ["datasets.lab.continuous", "'size'"]),
    ("norms_low_coverage", with_norms(60, min_coverage=0.9),
     ["datasets.norms", "norms.tsv", "60 of the 120", "min_coverage"]),
    ("brain_file_missing", patched(datasets__rec={"kind": "netcdf", "stimuli": "sentences",
                                                  "path": "results/none.nc"}), ["datasets.rec.path", "none.nc"]),
]


def _tree(results: Path) -> dict[str, str]:
    """sha256 of every file under ``results`` (logs excluded: a rerun may write its log)."""
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.rglob("*")) if p.is_file() and "logs" not in p.parts}


@pytest.fixture(scope="module")
def finished(reduced_run, tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the finished reduced run and the checksums of its outputs."""
    workdir = tmp_path_factory.mktemp("bad_inputs") / "checkout"
    shutil.copytree(reduced_run, workdir, symlinks=True)
    return workdir, _tree(workdir / "results")


def test_there_are_enough_cases():
    assert len(CASES) >= 40
    assert len({case for case, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("case, make, words", CASES, ids=[c for c, _, _ in CASES])
def test_bad_input_is_named_before_any_job(finished, tmp_path, case, make, words):
    workdir, before = finished
    config = make(tmp_path)
    path = tmp_path / "bad.yaml"
    if isinstance(config, str):
        path.write_bytes(config.encode("latin-1") if case == "yaml_not_utf8" else config.encode())
    else:
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "brainalign.cli", "run", "--configfile", str(path)], cwd=workdir,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{case}: exit 0\n{output[-3000:]}"
    assert "Traceback" not in output, f"{case}: a traceback\n{output[-3000:]}"
    assert "brainalign: error:" in output, f"{case}: no one-line error\n{output[-3000:]}"
    for word in words:
        assert word in output, f"{case}: the message does not name {word!r}\n{output[-3000:]}"
    assert "Building DAG" not in output and "Execute" not in output, f"{case}: jobs were planned\n{output[-3000:]}"
    assert _tree(workdir / "results") == before, f"{case}: an earlier output was deleted or changed"
