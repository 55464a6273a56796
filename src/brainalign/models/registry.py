"""The model-kind registry: each config ``kind`` and the facts the rest of the code needs about it.

An entry names the adapter class by import path (imported only when a model is loaded, so
validating a config imports no torch), the stimulus modality it takes, whether it gets an
untrained control, whether it is given as precomputed RDMs, and an optional extra validation
``check(key, entry, base_dir, resolved)`` that raises :class:`brainalign.config.ConfigError`
naming the key (``resolved`` is ``(path or hub id, is_local)`` of the entry's ``source``), and
``n_states(entry, resolved)``: the number of layer indices, read from local files, so that a
layer named in config is checked before any job runs. Adding a model kind is one module plus one
:func:`register_model_kind` call.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

from ..registry import Registry


@dataclass(frozen=True)
class ModelKind:
    name: str
    adapter: str                  # "package.module:Class"; the class takes (name, spec, base_dir=, seed=)
    modality: str | None          # "text", "image", or None (precomputed RDMs)
    untrained_control: bool = False
    rdms: bool = False
    hub_source: bool = True       # the entry has a ``source`` (hub id, local path or package:)
    check: Callable | None = None  # extra validation: check(key, entry, base_dir, (where, is_local) or None)
    takes_seed: bool = False
    untrained_default: bool = True  # entries get their untrained control unless ``untrained_control: false``
    # n_states(entry, (where, is_local)) -> the number of layer indices (hidden states) the model
    # has, read from its local files without loading weights; None when that needs the model
    n_states: Callable | None = None
    # memory(entry, where, stimuli) -> brainalign.models.memory.ModelMemory, as "module:function"
    # (imported only by the planner): what an extraction job holds, for ``brainalign plan``
    memory: str | None = None

    def adapter_class(self):
        module, _, attr = self.adapter.partition(":")
        return getattr(importlib.import_module(module), attr)


_KINDS: Registry[ModelKind] = Registry("model kind")


def register_model_kind(kind: ModelKind) -> ModelKind:
    return _KINDS.register(kind, replace=True)


def model_kind(name: str, key: str | None = None) -> ModelKind:
    return _KINDS.get(name, key)


def model_kinds() -> tuple[str, ...]:
    return _KINDS.names()


def _check_text_model(key: str, entry: dict, base_dir, resolved) -> None:
    """Context and surprisal settings that the model's own config can rule out before any job:
    surprisal without context, surprisal of a masked (bidirectional) model, windows longer than
    the model's positions (from a local config.json)."""
    import json
    from pathlib import Path

    from ..config.schema import ConfigError

    context = entry.get("context") or {}
    policy = context.get("policy", "none")
    if entry.get("surprisal") and policy == "none":
        raise ConfigError(f"config key '{key}.surprisal': needs context policy 'group' or 'window' "
                          f"({key}.context.policy); a word alone has nothing to be predicted from")
    where, local = resolved or (None, False)
    path = Path(where) / "config.json" if local else None
    if path is None or not path.is_file():
        return
    config = json.loads(path.read_text())
    architectures = config.get("architectures") or []
    if entry.get("surprisal") and architectures:  # no transformers import at validation
        model_type = config.get("model_type", "")
        if not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
            raise ConfigError(f"config key '{key}.surprisal': {entry['source']} ({model_type}) is not a causal "
                              "language model (no next-token distribution)")
    positions = config.get("max_position_embeddings")
    if policy == "window" and isinstance(positions, int):
        tokens = int(context.get("tokens", 256))
        longest = tokens + int(context.get("stride", tokens)) + 2  # + the tokenizer's special tokens
        if longest > positions:
            raise ConfigError(f"config key '{key}.context': a window pass holds up to {longest} tokens (tokens + "
                              f"stride + special tokens), more than the model's {positions} positions")


def _check_gguf(key: str, entry: dict, base_dir, resolved) -> None:
    from pathlib import Path

    from ..config.schema import ConfigError

    _check_text_model(key, entry, base_dir, resolved)

    where, local = resolved
    if "gguf_file" not in entry:
        raise ConfigError(f"config key '{key}.gguf_file': required for kind hf_gguf")
    if local and not (Path(where) / entry["gguf_file"]).exists():
        raise ConfigError(f"config key '{key}.gguf_file': file not found: {Path(where) / entry['gguf_file']}")


def _hf_config_states(entry: dict, resolved) -> int | None:
    """Hidden states of a local transformers model (embeddings + one per block), from config.json."""
    import json
    from pathlib import Path

    where, local = resolved
    path = Path(where) / "config.json"
    if not local or not path.is_file():
        return None
    config = json.loads(path.read_text())
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(config.get(key), int):
            return config[key] + 1
    return None


def _gguf_states(entry: dict, resolved) -> int | None:
    """Hidden states of a local GGUF model (embeddings + one per block), from the key-value
    header only (gguf's reader also maps every tensor: seconds, where this takes milliseconds)."""
    from pathlib import Path

    from .memory import gguf_header

    where, local = resolved
    path = Path(where) / entry.get("gguf_file", "")
    if not local or not path.is_file():
        return None
    header = gguf_header(path)
    found = header[0] if header else {}
    arch = found.get("general.architecture")
    return int(found[f"{arch}.block_count"]) + 1 if arch and f"{arch}.block_count" in found else None


def _check_torch_vision(key: str, entry: dict, base_dir, resolved) -> None:
    """The architecture's module is installed, and the weights exist (or have a URL)."""
    from ..config.schema import ConfigError
    from ..config.validate import check_file
    from ..sources import PACKAGE_PREFIX, resolve_source, split_import_path

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
        check_file(f"{key}.weights", weights, base_dir)


register_model_kind(ModelKind("hf_text", "brainalign.models.text:HFTextModel", "text", check=_check_text_model,
                              n_states=_hf_config_states, untrained_control=True, untrained_default=False,
                              takes_seed=True, memory="brainalign.models.memory:hf_text_memory"))
register_model_kind(ModelKind("hf_gguf", "brainalign.models.text:GGUFTextModel", "text", check=_check_gguf,
                              n_states=_gguf_states, untrained_control=True, untrained_default=False,
                              takes_seed=True, memory="brainalign.models.memory:hf_text_memory"))
register_model_kind(ModelKind("torch_vision", "brainalign.models.vision:TorchVisionModel", "image",
                              untrained_control=True, hub_source=False, takes_seed=True,
                              check=_check_torch_vision, memory="brainalign.models.memory:torch_vision_memory"))
register_model_kind(ModelKind("hf_vision", "brainalign.models.vision:HFVisionModel", "image",
                              untrained_control=True, takes_seed=True,
                              memory="brainalign.models.memory:hf_vision_memory"))
register_model_kind(ModelKind("rdm_mat", "brainalign.models.rdms:read_model_rdms", None, rdms=True,
                              hub_source=False))
register_model_kind(ModelKind("rdm_npy", "brainalign.models.rdms:read_model_rdms", None, rdms=True,
                              hub_source=False))
