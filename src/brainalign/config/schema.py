"""The config schema (shipped inside the package) and validation against it.

``config.schema.yaml`` beside this module is the one copy; ``workflow/schemas/config.schema.yaml``
is a link to it, where Snakemake users look for a workflow's schema. :func:`load_schema` adds the
metrics that plugins registered (see :mod:`brainalign.metrics.registry`) to the metric enums and
to ``metrics``, so a plugin metric validates like a built-in one.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"


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
        schema["$defs"][f"metric_{name}"] = ref
        schema["properties"]["metrics"]["properties"][name] = {"$ref": f"#/$defs/metric_{name}", "default": {}}
    return schema


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


