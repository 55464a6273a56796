"""Dataset kinds. Each kind is one module with a ``load(name, spec, stimuli, **inputs)``
function returning the brain-responses contract (``root`` is the folder of a
simulated dataset's files, written by :mod:`brainalign.simulate`); :mod:`brainalign.datasets.registry` maps a config
``kind`` to it (lazily: a kind's dependencies load only when its data is read).

Brain responses are an ``xarray.Dataset`` with the variable ``responses`` of dims
``(stimulus, neuroid, repetition)`` (+ ``time`` for MEG/EEG), the coordinate
``stimulus_id`` on ``stimulus``, and ``subject``, ``roi``, ``x``, ``y``, ``z``
on ``neuroid``.
"""

from __future__ import annotations

from .contract import check_brain
from .registry import dataset_kind


def load_dataset(name: str, spec: dict, stimuli, **inputs):
    """Build the brain contract for a validated ``datasets.<name>`` config entry."""
    loader = dataset_kind(spec["kind"], key=f"datasets.{name}.kind").load_function()
    brain = loader(name, spec, stimuli, **inputs)
    check_brain(brain, what=f"dataset '{name}'")
    return with_conditions(brain, stimuli)


def with_conditions(brain, stimuli):
    """Copy the stimulus set's condition labels (e.g. ``category``) onto ``brain``'s stimuli."""
    from ..stimuli import align_to

    labels = [c for c in stimuli.attrs.get("condition_columns", "").split(",") if c and c in stimuli.coords]
    missing = [c for c in labels if c not in brain.coords]
    if missing:
        table = align_to(stimuli, brain["stimulus_id"].values, what="stimulus set",
                         subset=bool(brain.attrs.get("n_stimuli_dropped")))
        brain = brain.assign_coords({c: ("stimulus", table[c].values.astype(str)) for c in missing})
    return brain


def write_dataset(name: str, spec: dict, stimuli_path, out_path, *, seed: int = 0, activations=None,
                  base_dir=None, config_section=None, root=None):
    """File-level entry point used by the ``brain`` rule."""
    from ..io import provenance, read_netcdf, write_netcdf

    stimuli = read_netcdf(stimuli_path)
    brain = load_dataset(name, spec, stimuli, activations=dict(activations or {}), seed=seed, base_dir=base_dir,
                         root=root)
    attrs = provenance(config_section if config_section is not None else spec, seed=spec.get("seed", seed),
                       dataset=name, dataset_checksum=brain.attrs.get("dataset_checksum", ""))
    return write_netcdf(brain, out_path, attrs={**attrs, **brain.attrs})


__all__ = ["load_dataset", "check_brain", "write_dataset"]
