"""Config validation beyond the schema: that files exist, model sources resolve, names refer to
each other, and every metric's merged settings are valid. Every error names the config key
(``models.minilm.source``) and, where there is one, the file."""

from __future__ import annotations

from pathlib import Path

from ..datasets.registry import dataset_kind
from ..metrics.registry import get_metric, load_plugins, metric_names
from ..models.registry import model_kind
from ..sources import resolve_source
from .expand import add_untrained_controls
from .plan import is_rdm_kind
from .schema import SCHEMA_PATH, ConfigError, check_metric_settings, check_schema, load_yaml


def load_config(path, schema=SCHEMA_PATH, base_dir=None) -> dict:
    """Load, validate and default-fill a config file (relative paths resolve
    against ``base_dir``, by default the current directory, as in Snakemake)."""
    return validate_config(load_yaml(path), schema=schema, base_dir=base_dir)


def check_file(key: str, value: str, base_dir) -> None:
    """The file a config key names exists (a ``package:NAME/SUB`` value: inside an installed package)."""
    from ..errors import UserInputError
    from ..stimuli import resolve_path

    try:
        path = resolve_path(value, base_dir or ".", key)
    except UserInputError as exc:
        raise ConfigError(str(exc)) from None
    if not path.exists():
        raise ConfigError(f"config key '{key}': file not found: {path}")


def validate_config(config: dict, schema=SCHEMA_PATH, base_dir=None, cache_dir=None, data=True) -> dict:
    """Schema validation plus cross-reference and file checks, then the checks that read the
    files the config names (:mod:`.data_checks`; ``data=False`` skips them). Returns ``config``.

    ``cache_dir`` (the workflow passes ``.snakemake/brainalign``) remembers a config whose data
    checks passed, keyed by the config and the size and time of every file it names, so that
    the jobs (each of which parses the Snakefile on a cluster) do not repeat them."""
    plugins = config.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError("config key 'plugins': expected a list of module names or .py paths")
    for i, plugin in enumerate(plugins):
        try:
            load_plugins([plugin])
        except Exception as exc:  # a plugin's own error (ImportError, SyntaxError, ...) names the entry
            raise ConfigError(f"config key 'plugins.{i}': cannot import '{plugin}': "
                              f"{type(exc).__name__}: {exc}") from None
    check_schema(config, schema)
    _check_rdm_transforms(config)
    add_untrained_controls(config)
    stimuli, models, datasets = config["stimuli"], config["models"], config["datasets"]

    for name, entry in stimuli.items():
        check_file(f"stimuli.{name}.path", entry["path"], base_dir)
        if "images" in entry:
            check_data_file(f"stimuli.{name}.images", entry["images"], base_dir)

    for name, entry in models.items():
        kind = _kind(model_kind, f"models.{name}.kind", entry)
        if kind.rdms:
            check_data_file(f"models.{name}", entry, base_dir)
            continue
        resolved = None
        if kind.hub_source:
            try:
                resolved = resolve_source(entry["source"], base_dir)
            except FileNotFoundError as exc:
                raise ConfigError(f"config key 'models.{name}.source': {exc}") from None
        if kind.check is not None:
            kind.check(f"models.{name}", entry, base_dir, resolved)

    for name, entry in datasets.items():
        if entry["stimuli"] not in stimuli:
            raise ConfigError(f"config key 'datasets.{name}.stimuli': unknown stimulus set "
                              f"'{entry['stimuli']}' (known: {sorted(stimuli)})")
        kind = _kind(dataset_kind, f"datasets.{name}.kind", entry)
        if kind.source_key:
            check_data_file(f"datasets.{name}", entry, base_dir)
        if kind.check is not None:
            kind.check(f"datasets.{name}", entry, base_dir, config)
        for label, spec in entry.get("simulate", {}).get("planted", {}).items():
            if spec["model"] not in models:
                raise ConfigError(f"config key 'datasets.{name}.simulate.planted.{label}.model': unknown model "
                                  f"'{spec['model']}' (known: {sorted(models)})")
        if "simulate" in entry and dataset_kind(entry["kind"]).simulator is None:
            raise ConfigError(f"config key 'datasets.{name}.simulate': kind {entry['kind']} cannot be simulated")

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
            if is_rdm_kind(models[item]):
                raise ConfigError(f"config key 'model_comparisons.{i}.models': model '{item}' is given as RDMs "
                                  f"(kind {models[item]['kind']}); model comparisons need activations")

    seen = set()
    for i, entry in enumerate(config.get("geometry", [])):
        key = f"geometry.{i}"
        if entry["stimuli"] not in stimuli:
            raise ConfigError(f"config key '{key}.stimuli': unknown stimulus set '{entry['stimuli']}' "
                              f"(known: {sorted(stimuli)})")
        if entry["stimuli"] in seen:
            raise ConfigError(f"config key '{key}.stimuli': stimulus set '{entry['stimuli']}' has a geometry "
                              "entry already; list every model in one entry")
        seen.add(entry["stimuli"])
        for item in entry["models"]:
            if item not in models:
                raise ConfigError(f"config key '{key}.models': unknown name '{item}' (known: {sorted(models)})")
            _check_modality(f"{key}.models", item, models[item], entry["stimuli"], stimuli[entry["stimuli"]])
            if is_rdm_kind(models[item]):
                raise ConfigError(f"config key '{key}.models': model '{item}' is given as RDMs; geometry needs "
                                  "activations")
        labels = entry.get("labels")
        listed = stimuli[entry["stimuli"]].get("condition_columns", [])
        if labels and labels not in listed:
            raise ConfigError(f"config key '{key}.labels': '{labels}' is not a condition column of stimulus set "
                              f"'{entry['stimuli']}' (condition_columns: {listed})")

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
                if is_rdm_kind(known[item]):
                    other = [m for m in analysis["metrics"] if not get_metric(m).accepts_rdms]
                    if other:
                        rdm_metrics = [m for m in metric_names() if get_metric(m).accepts_rdms]
                        raise ConfigError(f"config key 'analyses.{i}.metrics': {field[:-1]} '{item}' is given as "
                                          f"precomputed RDMs (kind {known[item]['kind']}), which only "
                                          f"{rdm_metrics} can use; remove {other} or split the analysis")
        for dataset in analysis["datasets"]:
            for model in analysis["models"]:
                _check_modality(f"analyses.{i}.models", model, models[model],
                                datasets[dataset]["stimuli"], stimuli[datasets[dataset]["stimuli"]])
        for metric, override in analysis.get("settings", {}).items():
            merged = {**config.get("metrics", {}).get(metric, {}), **override}
            check_metric_settings(f"analyses.{i}.settings.{metric}", metric, merged, schema)
    _check_settings_conflicts(config)
    _check_banded(config)
    if data:
        _check_data_cached(config, base_dir, cache_dir)
    return config


def _check_data_cached(config: dict, base_dir, cache_dir) -> None:
    from .data_checks import check_data

    if cache_dir is None:
        check_data(config, base_dir)
        return
    marker = Path(cache_dir) / f"validated-{_data_key(config, base_dir)}"
    if marker.exists():
        return
    check_data(config, base_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _data_key(config: dict, base_dir) -> str:
    """sha256 of the config, brainalign's version and the size and mtime of every file it names."""
    import json
    from importlib import metadata

    from ..io import config_hash
    from ..stimuli import resolve_path

    files = {}

    def visit(value):
        if isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)
        elif isinstance(value, str) and len(value) < 4096:
            try:
                path = resolve_path(value, base_dir or ".")
                stat = path.stat()
            except (OSError, ValueError):
                return
            files[value] = [stat.st_size, stat.st_mtime_ns]

    visit(config)
    try:
        version = metadata.version("brainalign")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return config_hash({"config": json.loads(json.dumps(config, default=str)), "files": files, "version": version,
                        "code": _code_stamp()})


def _code_stamp() -> list:
    """The validation code's own files (an editable install changes without a new version)."""
    here = Path(__file__).resolve().parent
    return sorted([p.name, p.stat().st_mtime_ns] for p in [*here.glob("*.py"), *here.glob("*.yaml")])


def model_modality(entry: dict) -> str | None:
    """The stimulus modality a model takes (None for precomputed RDMs)."""
    return model_kind(entry["kind"]).modality


def _kind(lookup, key: str, entry: dict):
    try:
        return lookup(entry["kind"], key=key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_modality(key: str, name: str, entry: dict, stimset: str, stimulus_entry: dict) -> None:
    wanted, have = model_modality(entry), stimulus_entry.get("modality", "text")
    if wanted is not None and wanted != have:
        raise ConfigError(f"config key '{key}': model '{name}' ({entry['kind']}) takes {wanted} stimuli, but "
                          f"stimulus set '{stimset}' is {have} (stimuli.{stimset}.modality)")


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


def check_data_file(key: str, entry: dict, base_dir) -> None:
    """A data file (RDMs, images, responses) must exist, unless a ``url`` says where to download it."""
    if "url" not in entry:
        check_file(f"{key}.path", entry["path"], base_dir)


def _check_rdm_transforms(config: dict) -> None:
    """``rdm_transform`` thresholds (rsa metric, per-analysis overrides, similarity): the schema
    keeps each in [0, 1]; ``lower`` must also be below ``upper``."""
    from ..metrics.rdm_transforms import from_settings

    places = [(f"metrics.{name}", settings) for name, settings in (config.get("metrics") or {}).items()]
    places += [(f"analyses.{i}.settings.{name}", settings) for i, analysis in enumerate(config.get("analyses") or [])
               for name, settings in (analysis.get("settings") or {}).items()]
    places.append(("similarity", config.get("similarity") or {}))
    for key, settings in places:
        if isinstance(settings, dict) and settings.get("rdm_transform") is not None:
            try:
                from_settings(settings["rdm_transform"], f"{key}.rdm_transform")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None


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


