"""Model kinds. Each kind is one module; :data:`REGISTRY` maps a config ``kind`` to it.

A model adapter exposes ``layer_names``, ``layer_indices``, ``depths``, ``widths``,
``attrs`` (model id, revision or weight checksum, pooling, device, dtype) and
``modality`` (text or image) and
``encode(contents) -> list[np.ndarray]`` returning one ``(batch, width)`` array
per layer.
"""

from __future__ import annotations

from .text import GGUFTextModel, HFTextModel
from .vision import HFVisionModel, TorchVisionModel

REGISTRY = {
    "hf_text": HFTextModel,
    "hf_gguf": GGUFTextModel,
    "torch_vision": TorchVisionModel,
    "hf_vision": HFVisionModel,
}


def load_model(name: str, spec: dict, base_dir=None, seed: int = 0):
    """Instantiate the adapter for a validated ``models.<name>`` config entry
    (``seed`` initialises untrained controls unless the entry gives ``init_seed``)."""
    try:
        cls = REGISTRY[spec["kind"]]
    except KeyError:
        raise ValueError(f"config key 'models.{name}.kind': unknown model kind '{spec['kind']}' "
                         f"(known: {sorted(REGISTRY)})") from None
    if getattr(cls, "modality", "text") == "image":
        return cls(name, spec, base_dir=base_dir, seed=seed)
    return cls(name, spec, base_dir=base_dir)
