"""The config schema (shipped inside the package) and validation against it.

``config.schema.yaml`` beside this module is the one copy; ``workflow/schemas/config.schema.yaml``
is a link to it, where Snakemake users look for a workflow's schema. :func:`load_schema` adds the
metrics that plugins registered (see :mod:`brainalign.metrics.registry`) to the metric enums and
to ``metrics``, so a plugin metric validates like a built-in one.
"""

from __future__ import annotations

from ..errors import UserInputError
import copy
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"


class ConfigError(UserInputError):
    """A config entry is wrong. The message starts with the offending key."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the
    last one silently, so a config with two ``seed:`` lines would run with the one not meant)."""


def _mapping_without_duplicates(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"{loader.name}, line {key_node.start_mark.line + 1}: key '{key}' is given twice "
                              f"in one mapping (first on line {seen[key] + 1}); YAML keeps only the last, so "
                              "delete the one you do not mean")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_yaml(text: str, name: str = "<config>"):
    """Parse YAML strictly: a syntax error or a duplicated key raises :class:`ConfigError`
    naming ``name`` (the file) and the line."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{name}{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: YAML error: {exc}") from None
    finally:
        loader.dispose()


def load_yaml(path) -> dict:
    """Read a config file strictly (:func:`parse_yaml`); it must hold a mapping."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): is it a config file?") from None
    data = parse_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping at top level")
    return data


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def load_schema(schema=SCHEMA_PATH) -> dict:
    """The JSON schema as a dict, with every registered metric in its metric enums."""
    from ..metrics.registry import get_metric, metric_names

    schema = copy.deepcopy(schema) if isinstance(schema, dict) else load_yaml(schema)
    analyses = schema["properties"]["analyses"]["items"]["properties"]
    enum = analyses["metrics"]["items"]["enum"]
    for name in metric_names():
        if name in enum:
            continue
        enum.append(name)
        analyses["settings"]["propertyNames"]["enum"].append(name)
        fragment = get_metric(name).schema
        ref = fragment if isinstance(fragment, dict) else {"$ref": f"#/$defs/{fragment}"}
        if fragment != f"metric_{name}":  # a shipped $defs entry of that name is the schema itself
            schema["$defs"][f"metric_{name}"] = ref
        schema["properties"]["metrics"]["properties"][name] = {"$ref": f"#/$defs/metric_{name}", "default": {}}
    _add_dataset_kinds(schema)
    return schema


def _add_dataset_kinds(schema: dict) -> None:
    """Registered dataset kinds that carry their own schema join the ``datasets`` kind enum."""
    from ..datasets.registry import dataset_kind, dataset_kinds

    entry = schema["properties"]["datasets"]["additionalProperties"]
    enum = entry["properties"]["kind"]["enum"]
    for name in dataset_kinds():
        fragment = dataset_kind(name).schema
        if name in enum or fragment is None:
            continue
        enum.append(name)
        ref = fragment if isinstance(fragment, dict) else {"$ref": f"#/$defs/{fragment}"}
        entry["allOf"].append({"if": {"properties": {"kind": {"const": name}}}, "then": ref})


def check_schema(config: dict, schema=SCHEMA_PATH) -> dict:
    """Validate ``config`` in place against the JSON schema and fill defaults."""
    from jsonschema import Draft202012Validator, validators

    schema = load_schema(schema)
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


def check_metric_settings(key: str, metric: str, settings: dict, schema=SCHEMA_PATH) -> None:
    """Validate merged per-analysis settings against ``$defs/metric_<metric>``."""
    from jsonschema import Draft202012Validator

    full = load_schema(schema)
    sub = {**full["$defs"][f"metric_{metric}"], "$defs": full["$defs"]}
    errors = sorted(Draft202012Validator(sub).iter_errors(settings), key=lambda e: len(e.absolute_path))
    if errors:
        err = errors[-1]
        where = ".".join([key, *map(str, err.absolute_path)])
        raise ConfigError(f"config key '{where}': {err.message}")


