"""Config expansion: entries the user did not write but asked for (untrained controls)."""

from __future__ import annotations

import copy

from ..models.registry import model_kind
from .schema import ConfigError

UNTRAINED_SUFFIX = "_untrained"


def add_untrained_controls(config: dict) -> dict:
    """Give every model with weights its untrained control, in place.

    For ``models.X`` with ``untrained_control: true`` (the default for vision models; language
    models ask for it), adds
    ``models.X_untrained``: the same entry with ``untrained: true`` (seeded
    random initialisation) and ``control_of: X``; and every analysis or model
    comparison that lists X also lists X_untrained, right after it. Running it
    twice changes nothing.
    """
    models = config["models"]
    controls = {}
    for name, entry in list(models.items()):
        kind = model_kind(entry["kind"])
        if not kind.untrained_control or entry.get("untrained") or not entry.get("untrained_control",
                                                                                 kind.untrained_default):
            continue
        control = name + UNTRAINED_SUFFIX
        if control in models and models[control].get("control_of") != name:
            raise ConfigError(f"config key 'models.{control}': this name is reserved for the untrained control "
                              f"of '{name}'; rename the entry or set 'models.{name}.untrained_control: false'")
        models[control] = {**copy.deepcopy(entry), "untrained": True, "untrained_control": False,
                           "control_of": name}
        models[control].pop("weights", None)
        if entry.get("family"):  # the pair is paired in the families figure by variant
            models[name].setdefault("variant", "trained")
            models[control]["variant"] = "untrained"
        controls[name] = control
    for section in ("analyses", "model_comparisons", "geometry"):
        for entry in config.get(section, []):
            listed = []
            for model in entry["models"]:
                listed.append(model)
                if model in controls and controls[model] not in entry["models"]:
                    listed.append(controls[model])
            entry["models"] = listed
    return config


