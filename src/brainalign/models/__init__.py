"""Model kinds. Each kind is one module; :mod:`brainalign.models.registry` maps a config ``kind`` to it
(and to its modality, untrained-control support and extra validation), lazily.

A model adapter exposes ``layer_names``, ``layer_indices``, ``depths``, ``widths``,
``attrs`` (model id, revision or weight checksum, pooling, device, dtype) and
``modality`` (text or image) and
``encode(contents) -> list[np.ndarray]`` returning one ``(batch, width)`` array
per layer.
"""

from __future__ import annotations

from .registry import model_kind


def load_model(name: str, spec: dict, base_dir=None, seed: int = 0):
    """Instantiate the adapter for a validated ``models.<name>`` config entry
    (``seed`` initialises untrained controls unless the entry gives ``init_seed``)."""
    kind = model_kind(spec["kind"], key=f"models.{name}.kind")
    if kind.rdms:
        raise ValueError(f"config key 'models.{name}.kind': {kind.name} models are precomputed RDMs, not adapters")
    cls = kind.adapter_class()
    if kind.takes_seed:
        return cls(name, spec, base_dir=base_dir, seed=seed)
    return cls(name, spec, base_dir=base_dir)
