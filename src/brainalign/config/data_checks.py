"""Validation that reads the files a config names: every check that can be made before the DAG
runs, so that a bad file or a setting that cannot fit the data stops the run before any job
starts (and before Snakemake deletes a job's previous output to rerun it).

- stimulus tables load (not empty, UTF-8 text, not binary, unique ids), which gives each
  stimulus set's size;
- settings fit that size: mutual k-NN's ``k`` and the encoding folds;
- every layer index a config names (``layers``, planted layers, banded bands) exists in the
  model, read from its local files (model registry ``n_states``);
- ROI names (planted ROIs, ``select``) exist in the coordinate atlas;
- brain files (``netcdf`` kind) meet the brain-data contract, duplicated stimulus ids and
  constant ROIs included.

Each error is a :class:`ConfigError` naming the key and the file.
"""

from __future__ import annotations

from ..datasets.contract import BrainDataError
from ..errors import UserInputError
from ..models.registry import model_kind
from ..sources import resolve_source
from ..stimuli import resolve_path
from .plan import analysis_settings, is_rdm_kind
from .schema import ConfigError


def stimulus_counts(config: dict, base_dir=None, groups: dict | None = None) -> dict[str, int]:
    """The number of stimuli of each stimulus set (its table is read and checked); ``groups``,
    when given, receives the number of groups (stories, passages) of each set in context."""
    from ..stimuli import read_stimulus_table

    counts = {}
    for name, entry in config["stimuli"].items():
        try:
            table = read_stimulus_table(entry, base_dir)
        except UserInputError as exc:
            raise ConfigError(f"config key 'stimuli.{name}.path': {exc}") from None
        counts[name] = table.sizes["stimulus"]
        if groups is not None and "group" in table.coords:
            groups[name] = len(set(table["group"].values.tolist()))
    return counts


def model_layers(config: dict, base_dir=None) -> dict[str, list[int] | None]:
    """The layer indices each model's activations will have (None where only loading it tells)."""
    layers = {}
    for name, entry in config["models"].items():
        kind = model_kind(entry["kind"])
        if kind.n_states is None or kind.rdms:
            layers[name] = None
            continue
        try:
            resolved = resolve_source(entry["source"], base_dir)
        except FileNotFoundError:
            layers[name] = None
            continue
        n = kind.n_states(entry, resolved)
        if n is None:
            layers[name] = None
            continue
        wanted = entry.get("layers", "all")
        if wanted != "all":
            bad = [i for i in wanted if i >= n]
            if bad:
                raise ConfigError(f"config key 'models.{name}.layers': {bad} out of range; {name} has hidden "
                                  f"states 0..{n - 1}")
        layers[name] = list(range(n)) if wanted == "all" else list(wanted)
    return layers


def _check_layer(key: str, model: str, layer: int, layers: dict) -> None:
    have = layers.get(model)
    if have is not None and layer not in have:
        raise ConfigError(f"config key '{key}': model '{model}' has no layer index {layer} (its activations "
                          f"hold layers {have[0]}..{have[-1]}" + ("" if len(have) == have[-1] + 1 else
                                                                   f", those in models.{model}.layers") + ")")


def check_layers(config: dict, layers: dict) -> None:
    for name, entry in config["datasets"].items():
        planted = entry.get("simulate", {}).get("planted", {})
        if entry["kind"] == "simulated":
            planted = {roi: spec for roi, spec in entry.get("rois", {}).items() if "model" in spec}
            where = f"datasets.{name}.rois"
        else:
            where = f"datasets.{name}.simulate.planted"
        for label, spec in planted.items():
            _check_layer(f"{where}.{label}.layer", spec["model"], spec["layer"], layers)
    for i, entry in enumerate(config.get("banded_encoding", [])):
        for band, spec in entry["bands"].items():
            if "layer" in spec:
                _check_layer(f"banded_encoding.{i}.bands.{band}.layer", spec["model"], spec["layer"], layers)


def check_sample_sizes(config: dict, counts: dict, groups: dict | None = None) -> None:
    """Settings that a stimulus set's size bounds: mutual k-NN's k, the encoding folds (and, with
    ``groups: group`` on stimuli in context, the number of stories every training set needs)."""
    datasets = config["datasets"]
    for i, analysis in enumerate(config["analyses"]):
        for dataset in analysis["datasets"]:
            n = counts[datasets[dataset]["stimuli"]]
            for metric in analysis["metrics"]:
                settings = analysis_settings(config, dataset, analysis["models"][0], metric)
                key = (f"analyses.{i}.settings.{metric}" if metric in analysis.get("settings", {})
                       else f"metrics.{metric}")
                _check_settings_fit(key, metric, settings, n, f"dataset '{dataset}'")
                n_groups = (groups or {}).get(datasets[dataset]["stimuli"])
                if metric == "encoding" and settings.get("groups") == "group" and n_groups is not None:
                    outer = min(int(settings.get("outer_folds", 5)), n_groups)
                    train = n_groups - -(-n_groups // outer)  # groups in the smallest training set
                    if train < 2:
                        raise ConfigError(
                            f"config key '{key}.groups': dataset '{dataset}' has {n_groups} groups (stories); "
                            f"with {outer} outer folds a training set holds {train}, and the inner folds "
                            "need at least 2 (use 3 or more stories, or more outer folds)")
    for i, comparison in enumerate(config.get("model_comparisons", [])):
        if "mutual_knn" in comparison.get("measures", []):
            n = counts[comparison["stimuli"]]
            if config["similarity"]["k"] >= n:
                raise ConfigError(f"config key 'similarity.k': {config['similarity']['k']} neighbours, but "
                                  f"model_comparisons.{i} has {n} stimuli (stimulus set "
                                  f"'{comparison['stimuli']}'); k must be below the number of stimuli")


def _check_settings_fit(key: str, metric: str, settings: dict, n: int, what: str) -> None:
    if metric == "mutual_knn" and settings.get("k", 0) >= n:
        raise ConfigError(f"config key '{key}.k': {settings['k']} neighbours, but {what} has {n} stimuli; "
                          "k must be below the number of stimuli")
    if metric == "encoding" and not settings.get("split"):
        outer = settings.get("outer_folds", 5)
        if outer > n:
            raise ConfigError(f"config key '{key}.outer_folds': {outer} folds, but {what} has {n} stimuli; "
                              f"at most {n} (leave-one-out)")
        inner = settings.get("inner_folds", 5)
        n_train = n - -(-n // outer)  # the smallest training set of the outer folds
        if isinstance(inner, int) and inner > n_train:
            raise ConfigError(f"config key '{key}.inner_folds': {inner} folds, but the outer training sets hold "
                              f"{n_train} stimuli ({what}: {n} stimuli, {outer} outer folds)")


def check_rois(config: dict, base_dir=None) -> None:
    """ROI names a dataset asks for (``rois.select``, planted ROIs) exist in its ROI definition."""
    from ..datasets.nifti_rois import roi_names

    for name, entry in config["datasets"].items():
        if "rois" not in entry or entry["kind"] == "simulated":
            continue
        key = f"datasets.{name}.rois"
        try:
            names = roi_names(entry["rois"], key=key, base_dir=base_dir)
        except BrainDataError as exc:
            raise ConfigError(str(exc) if str(exc).startswith("config key") else f"config key '{key}': {exc}") from None
        if names is None:
            continue
        for label in entry.get("simulate", {}).get("planted", {}):
            if label not in names:
                raise ConfigError(f"config key 'datasets.{name}.simulate.planted.{label}': no ROI '{label}' in "
                                  f"{key} (its ROIs: {names})")


def check_brain_files(config: dict, base_dir=None) -> None:
    """Brain files in the ``netcdf`` kind meet the brain-data contract."""
    from ..datasets.brainscore import is_assembly
    from ..datasets.contract import check_brain
    from ..io import read_netcdf

    for name, entry in config["datasets"].items():
        if entry["kind"] != "netcdf" or is_rdm_kind(entry):
            continue
        path = resolve_path(entry["path"], base_dir, f"datasets.{name}.path")
        if not path.is_file():
            continue  # check_data_file has named it, or it is downloaded from `url`
        try:
            brain = read_netcdf(path)
            if not is_assembly(brain):  # an assembly is checked after its conversion, in the job
                check_brain(brain, what=str(path))
        except BrainDataError as exc:
            raise ConfigError(f"config key 'datasets.{name}.path': {exc}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"config key 'datasets.{name}.path': {path}: not a readable NetCDF file "
                              f"({type(exc).__name__}: {exc})") from None


def check_data(config: dict, base_dir=None) -> None:
    """Every check of this module, in order (cheap ones first)."""
    groups: dict = {}
    counts = stimulus_counts(config, base_dir, groups)
    check_layers(config, model_layers(config, base_dir))
    check_sample_sizes(config, counts, groups)
    check_rois(config, base_dir)
    check_brain_files(config, base_dir)
