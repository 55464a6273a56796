"""Config loading and validation.

The JSON schema (``workflow/schemas/config.schema.yaml``) fixes the shape and
fills defaults; :func:`validate_config` then checks what a schema cannot: that
files exist, that model sources resolve and that names refer to each other.
Every error names the config key (``models.minilm.source``) and, where there is
one, the file.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
PACKAGE_PREFIX = "package:"
RDM_KINDS = ("rdm_mat", "rdm_npy")  # models and datasets given as precomputed RDMs
RDM_METRICS = ("rsa",)  # the only metric that works on precomputed RDMs
VISION_KINDS = ("torch_vision", "hf_vision")
UNTRAINED_SUFFIX = "_untrained"


class ConfigError(ValueError):
    """A config entry is wrong. The message starts with the offending key."""


def load_yaml(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping at top level")
    return data


def load_config(path, schema=SCHEMA_PATH, base_dir=None) -> dict:
    """Load, validate and default-fill a config file (relative paths resolve
    against ``base_dir``, by default the current directory, as in Snakemake)."""
    return validate_config(load_yaml(path), schema=schema, base_dir=base_dir)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def check_schema(config: dict, schema=SCHEMA_PATH) -> dict:
    """Validate ``config`` in place against the JSON schema and fill defaults."""
    from jsonschema import Draft202012Validator, validators

    schema = load_yaml(schema) if not isinstance(schema, dict) else schema
    base = Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    validator = validators.extend(base, {"properties": set_defaults})(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        from jsonschema.exceptions import best_match

        err = best_match(errors)
        # "if/then" failures report the inner reason; prefer the deepest error.
        deepest = max(errors, key=lambda e: len(e.absolute_path))
        err = deepest if len(deepest.absolute_path) > len(err.absolute_path) else err
        raise ConfigError(f"config key '{_key(err.absolute_path)}': {err.message}")
    return config


def resolve_source(source: str, base_dir=None) -> tuple[str, bool]:
    """Resolve a model ``source`` to (path or hub id, is_local).

    ``package:NAME[/SUBDIR]`` finds an installed package's folder without importing
    it; an existing path is local; anything else is taken as a hub id.
    """
    if source.startswith(PACKAGE_PREFIX):
        name, _, sub = source[len(PACKAGE_PREFIX):].partition("/")
        spec = importlib.util.find_spec(name) if name else None
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package '{name}' is not installed")
        folder = Path(list(spec.submodule_search_locations)[0]) / sub
        if not folder.exists():
            raise FileNotFoundError(f"{folder} does not exist inside package '{name}'")
        return str(folder), True
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.exists():
        return str(path), True
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source
    if looks_like_path:
        raise FileNotFoundError(f"local path {path} does not exist")
    return source, False


def _check_file(key: str, value: str, base_dir) -> None:
    path = Path(value)
    if not path.is_absolute():
        path = Path(base_dir or ".") / path
    if not path.exists():
        raise ConfigError(f"config key '{key}': file not found: {path}")


def validate_config(config: dict, schema=SCHEMA_PATH, base_dir=None) -> dict:
    """Schema validation plus cross-reference and file checks. Returns ``config``."""
    check_schema(config, schema)
    add_untrained_controls(config)
    stimuli, models, datasets = config["stimuli"], config["models"], config["datasets"]

    for name, entry in stimuli.items():
        _check_file(f"stimuli.{name}.path", entry["path"], base_dir)
        if "images" in entry:
            _check_rdm_file(f"stimuli.{name}.images", entry["images"], base_dir)

    for name, entry in models.items():
        if entry["kind"] in RDM_KINDS:
            _check_rdm_file(f"models.{name}", entry, base_dir)
            continue
        if entry["kind"] == "torch_vision":
            _check_torch_vision(f"models.{name}", entry, base_dir)
            continue
        try:
            where, local = resolve_source(entry["source"], base_dir)
        except FileNotFoundError as exc:
            raise ConfigError(f"config key 'models.{name}.source': {exc}") from None
        if entry["kind"] == "hf_gguf":
            if "gguf_file" not in entry:
                raise ConfigError(f"config key 'models.{name}.gguf_file': required for kind hf_gguf")
            if local and not (Path(where) / entry["gguf_file"]).exists():
                raise ConfigError(f"config key 'models.{name}.gguf_file': file not found: "
                                  f"{Path(where) / entry['gguf_file']}")

    for name, entry in datasets.items():
        if entry["stimuli"] not in stimuli:
            raise ConfigError(f"config key 'datasets.{name}.stimuli': unknown stimulus set "
                              f"'{entry['stimuli']}' (known: {sorted(stimuli)})")
        if entry["kind"] == "netcdf":
            _check_file(f"datasets.{name}.path", entry["path"], base_dir)
        if entry["kind"] in RDM_KINDS:
            _check_rdm_file(f"datasets.{name}", entry, base_dir)
        if entry["kind"] == "simulated":
            for roi, spec in entry["rois"].items():
                if "model" in spec and spec["model"] not in models:
                    raise ConfigError(f"config key 'datasets.{name}.rois.{roi}.model': unknown model "
                                      f"'{spec['model']}' (known: {sorted(models)})")
        for label, spec in entry.get("simulate", {}).get("planted", {}).items():
            if spec["model"] not in models:
                raise ConfigError(f"config key 'datasets.{name}.simulate.planted.{label}.model': unknown model "
                                  f"'{spec['model']}' (known: {sorted(models)})")
        if entry["kind"] == "nifti_events" and "simulate" in entry and ("root" in entry or "runs" in entry):
            raise ConfigError(f"config key 'datasets.{name}.simulate': simulated runs are written to "
                              f"results/simulated/{name}/; drop 'root' and 'runs'")

    for i, comparison in enumerate(config.get("model_comparisons", [])):
        if comparison["stimuli"] not in stimuli:
            raise ConfigError(f"config key 'model_comparisons.{i}.stimuli': unknown stimulus set "
                              f"'{comparison['stimuli']}' (known: {sorted(stimuli)})")
        for item in comparison["models"]:
            if item not in models:
                raise ConfigError(f"config key 'model_comparisons.{i}.models': unknown name '{item}' "
                                  f"(known: {sorted(models)})")
            _check_modality(f"model_comparisons.{i}.models", item, models[item], comparison["stimuli"],
                            stimuli[comparison["stimuli"]])
            if models[item]["kind"] in RDM_KINDS:
                raise ConfigError(f"config key 'model_comparisons.{i}.models': model '{item}' is given as RDMs "
                                  f"(kind {models[item]['kind']}); model comparisons need activations")

    for i, comparison in enumerate(config.get("dataset_comparisons", [])):
        for item in comparison["datasets"]:
            if item not in datasets:
                raise ConfigError(f"config key 'dataset_comparisons.{i}.datasets': unknown name '{item}' "
                                  f"(known: {sorted(datasets)})")

    for i, analysis in enumerate(config["analyses"]):
        for field, known in (("datasets", datasets), ("models", models)):
            for item in analysis[field]:
                if item not in known:
                    raise ConfigError(f"config key 'analyses.{i}.{field}': unknown name '{item}' "
                                      f"(known: {sorted(known)})")
                if known[item]["kind"] in RDM_KINDS:
                    other = [m for m in analysis["metrics"] if m not in RDM_METRICS]
                    if other:
                        raise ConfigError(f"config key 'analyses.{i}.metrics': {field[:-1]} '{item}' is given as "
                                          f"precomputed RDMs (kind {known[item]['kind']}), which only "
                                          f"{list(RDM_METRICS)} can use; remove {other} or split the analysis")
        for dataset in analysis["datasets"]:
            for model in analysis["models"]:
                _check_modality(f"analyses.{i}.models", model, models[model],
                                datasets[dataset]["stimuli"], stimuli[datasets[dataset]["stimuli"]])
        for metric, override in analysis.get("settings", {}).items():
            merged = {**config.get("metrics", {}).get(metric, {}), **override}
            _check_metric_settings(f"analyses.{i}.settings.{metric}", metric, merged, schema)
    _check_settings_conflicts(config)
    _check_banded(config)
    return config


def add_untrained_controls(config: dict) -> dict:
    """Give every vision model with weights its untrained control, in place.

    For ``models.X`` with ``untrained_control: true`` (the default), adds
    ``models.X_untrained``: the same entry with ``untrained: true`` (seeded
    random initialisation) and ``control_of: X``; and every analysis or model
    comparison that lists X also lists X_untrained, right after it. Running it
    twice changes nothing.
    """
    models = config["models"]
    controls = {}
    for name, entry in list(models.items()):
        if entry["kind"] not in VISION_KINDS or entry.get("untrained") or not entry.get("untrained_control", True):
            continue
        control = name + UNTRAINED_SUFFIX
        if control in models and models[control].get("control_of") != name:
            raise ConfigError(f"config key 'models.{control}': this name is reserved for the untrained control "
                              f"of '{name}'; rename the entry or set 'models.{name}.untrained_control: false'")
        models[control] = {**copy.deepcopy(entry), "untrained": True, "untrained_control": False,
                           "control_of": name}
        models[control].pop("weights", None)
        controls[name] = control
    for section in ("analyses", "model_comparisons"):
        for entry in config.get(section, []):
            listed = []
            for model in entry["models"]:
                listed.append(model)
                if model in controls and controls[model] not in entry["models"]:
                    listed.append(controls[model])
            entry["models"] = listed
    return config


def model_modality(entry: dict) -> str | None:
    """The stimulus modality a model takes (None for precomputed RDMs)."""
    if entry["kind"] in RDM_KINDS:
        return None
    return "image" if entry["kind"] in VISION_KINDS else "text"


def _check_modality(key: str, name: str, entry: dict, stimset: str, stimulus_entry: dict) -> None:
    wanted, have = model_modality(entry), stimulus_entry.get("modality", "text")
    if wanted is not None and wanted != have:
        raise ConfigError(f"config key '{key}': model '{name}' ({entry['kind']}) takes {wanted} stimuli, but "
                          f"stimulus set '{stimset}' is {have} (stimuli.{stimset}.modality)")


def split_import_path(path: str) -> tuple[str, str]:
    """``package.module:attr.attr`` (or ``package.module.attr``) -> (module, attribute path)."""
    module, sep, attr = path.partition(":")
    return (module, attr) if sep else tuple(path.rpartition(".")[::2])


def _check_torch_vision(key: str, entry: dict, base_dir) -> None:
    module = split_import_path(entry["architecture"])[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"config key '{key}.architecture': module '{module}' is not installed")
    if entry.get("untrained"):
        return
    weights = entry.get("weights")
    if not weights:
        raise ConfigError(f"config key '{key}.weights': required unless 'untrained: true'")
    if weights.startswith(PACKAGE_PREFIX):
        try:
            resolve_source(weights, base_dir)
        except FileNotFoundError as exc:
            raise ConfigError(f"config key '{key}.weights': {exc}") from None
    elif not entry.get("weights_url"):
        _check_file(f"{key}.weights", weights, base_dir)


def _check_banded(config: dict) -> None:
    names = set()
    for i, entry in enumerate(config.get("banded_encoding", [])):
        key = f"banded_encoding.{i}"
        if entry["name"] in names:
            raise ConfigError(f"config key '{key}.name': '{entry['name']}' is used twice")
        names.add(entry["name"])
        _check_activation_source(f"{key}.dataset", "dataset", entry["dataset"], config["datasets"])
        for band, spec in entry["bands"].items():
            _check_activation_source(f"{key}.bands.{band}.model", "model", spec["model"], config["models"])


def _check_activation_source(key: str, what: str, name: str, known: dict) -> None:
    """A banded-encoding dataset or model must exist and not be precomputed RDMs."""
    if name not in known:
        raise ConfigError(f"config key '{key}': unknown {what} '{name}' (known: {sorted(known)})")
    if is_rdm_kind(known[name]):
        raise ConfigError(f"config key '{key}': '{name}' is given as RDMs; banded encoding needs "
                          + ("responses" if what == "dataset" else "activations"))


def banded_jobs(config: dict) -> list[tuple[str, str]]:
    """(dataset, name) of every banded-encoding entry."""
    return [(e["dataset"], e["name"]) for e in config.get("banded_encoding", [])]


def banded_entry(config: dict, name: str) -> dict:
    return next(e for e in config.get("banded_encoding", []) if e["name"] == name)


def _check_rdm_file(key: str, entry: dict, base_dir) -> None:
    """A data file (RDMs, images) must exist, unless a ``url`` says where to download it."""
    if "url" not in entry:
        _check_file(f"{key}.path", entry["path"], base_dir)


def _check_metric_settings(key: str, metric: str, settings: dict, schema=SCHEMA_PATH) -> None:
    """Validate merged per-analysis settings against ``$defs/metric_<metric>``."""
    from jsonschema import Draft202012Validator

    full = load_yaml(schema) if not isinstance(schema, dict) else schema
    sub = {**full["$defs"][f"metric_{metric}"], "$defs": full["$defs"]}
    errors = sorted(Draft202012Validator(sub).iter_errors(settings), key=lambda e: len(e.absolute_path))
    if errors:
        err = errors[-1]
        where = ".".join([key, *map(str, err.absolute_path)])
        raise ConfigError(f"config key '{where}': {err.message}")


def analysis_settings(config: dict, dataset: str, model: str, metric: str) -> dict:
    """Settings of one (dataset, model, metric) job: ``metrics.<metric>`` with the
    overrides of the first analysis that lists the job."""
    base = dict(config.get("metrics", {}).get(metric, {}))
    for analysis in config["analyses"]:
        if dataset in analysis["datasets"] and model in analysis["models"] and metric in analysis["metrics"]:
            return {**base, **analysis.get("settings", {}).get(metric, {})}
    return base


def _check_settings_conflicts(config: dict) -> None:
    """Two analyses may list the same job only with the same settings (they share one output file)."""
    seen = {}
    for i, analysis in enumerate(config["analyses"]):
        for d in analysis["datasets"]:
            for m in analysis["models"]:
                for metric in analysis["metrics"]:
                    settings = {**config.get("metrics", {}).get(metric, {}),
                                **analysis.get("settings", {}).get(metric, {})}
                    if (d, m, metric) in seen and seen[d, m, metric][1] != settings:
                        raise ConfigError(
                            f"config key 'analyses.{i}.settings': job ({d}, {m}, {metric}) is also in "
                            f"analyses.{seen[d, m, metric][0]} with different settings; they would write the "
                            "same scores file")
                    seen.setdefault((d, m, metric), (i, settings))


# --------------------------------------------------------------------------- job lists
def analysis_jobs(config: dict) -> list[tuple[str, str, str]]:
    """Unique (dataset, model, metric) analysis jobs, in config order."""
    jobs = []
    for analysis in config["analyses"]:
        for d in analysis["datasets"]:
            for m in analysis["models"]:
                for metric in analysis["metrics"]:
                    if (d, m, metric) not in jobs:
                        jobs.append((d, m, metric))
    return jobs


def model_comparison_jobs(config: dict) -> list[tuple[str, str, str]]:
    """Unique (stimulus set, model_a, model_b) comparisons, pairs in config order."""
    jobs = []
    for comparison in config.get("model_comparisons", []):
        for a, b in _pairs(comparison["models"], comparison.get("include_self", True)):
            if (comparison["stimuli"], a, b) not in jobs:
                jobs.append((comparison["stimuli"], a, b))
    return jobs


def comparison_measures(config: dict, stimset: str, a: str, b: str) -> list[str]:
    """Measures asked for a model pair (union over the entries that list both)."""
    measures = []
    for comparison in config.get("model_comparisons", []):
        if comparison["stimuli"] == stimset and a in comparison["models"] and b in comparison["models"]:
            measures += [m for m in comparison["measures"] if m not in measures]
    return measures


def _pairs(names: list[str], include_self: bool) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(names) for b in names[i:] if a != b or include_self]


def dataset_comparison_jobs(config: dict) -> list[tuple[str, str]]:
    """Unique (dataset_a, dataset_b) comparisons, pairs in config order."""
    jobs = []
    for comparison in config.get("dataset_comparisons", []):
        for pair in _pairs(comparison["datasets"], comparison.get("include_self", True)):
            if pair not in jobs:
                jobs.append(pair)
    return jobs


def dataset_comparison_measures(config: dict, a: str, b: str) -> list[str]:
    """Measures asked for a dataset pair (union over the entries that list both)."""
    measures = []
    for comparison in config.get("dataset_comparisons", []):
        if a in comparison["datasets"] and b in comparison["datasets"]:
            measures += [m for m in comparison["measures"] if m not in measures]
    return measures


def model_summary_jobs(config: dict, min_models: int = 2) -> list[tuple[str, str, list[str]]]:
    """(dataset, metric, models) where at least ``min_models`` activation models share a
    dataset and a metric. With two or more, their curves are drawn together against relative
    depth; every group (``min_models=1``) gets a summary table."""
    groups: dict[tuple[str, str], list[str]] = {}
    for dataset, model, metric in analysis_jobs(config):
        if not is_rdm_kind(config["models"][model]):
            groups.setdefault((dataset, metric), []).append(model)
    return [(d, metric, models) for (d, metric), models in groups.items() if len(models) >= min_models]


def planted_models(dataset: dict) -> list[str]:
    """Models whose activations a simulated dataset is generated from: a ``simulated``
    dataset's ROIs, or the ``simulate.planted`` entries of a file-based kind."""
    if dataset["kind"] == "simulated":
        return sorted({spec["model"] for spec in dataset["rois"].values() if "model" in spec})
    return sorted({spec["model"] for spec in dataset.get("simulate", {}).get("planted", {}).values()})


def simulated_files(dataset: dict) -> bool:
    """True when a dataset's files are written by the ``simulate`` rule before it is read."""
    return "simulate" in dataset


def is_rdm_kind(entry: dict) -> bool:
    """True for a model or dataset entry given as precomputed RDMs."""
    return entry["kind"] in RDM_KINDS


def extraction_jobs(config: dict) -> list[tuple[str, str]]:
    """Unique (stimulus set, model) extraction jobs needed by analyses and simulations."""
    jobs = []
    for d, m, _ in analysis_jobs(config):
        dataset = config["datasets"][d]
        for model in [m, *planted_models(dataset)]:
            if (dataset["stimuli"], model) not in jobs:
                jobs.append((dataset["stimuli"], model))
    for pair in dataset_comparison_jobs(config):
        for d in pair:
            dataset = config["datasets"][d]
            for model in planted_models(dataset):
                if (dataset["stimuli"], model) not in jobs:
                    jobs.append((dataset["stimuli"], model))
    for stimset, a, b in model_comparison_jobs(config):
        for model in (a, b):
            if (stimset, model) not in jobs:
                jobs.append((stimset, model))
    return jobs
