"""Simulated recordings with a planted answer, written as real files (NIfTI runs with
events, MNE epochs) that the dataset adapters then read like any user's data.

:data:`REGISTRY` maps a dataset ``kind`` to the writer of its files:
``write(name, spec, stimuli, activations, out_dir, seed) -> list of written paths``, where
``spec`` is the dataset's whole config entry (its ``simulate`` block says what to plant).
"""

from __future__ import annotations

import importlib

REGISTRY = {
    "nifti_events": "brainalign.simulate.fmri:write",
    "mne_epochs": "brainalign.simulate.meg:write",
}


def simulate_dataset(name: str, spec: dict, stimuli_path, activations: dict, out_dir, *, seed: int = 0):
    """File-level entry point of the ``simulate`` rule: write ``datasets.<name>``'s files
    into ``out_dir`` from the planted layers in ``activations`` (model -> file)."""
    from ..io import read_netcdf

    module, func = REGISTRY[spec["kind"]].split(":")
    writer = getattr(importlib.import_module(module), func)
    return writer(name, spec, read_netcdf(stimuli_path), dict(activations), out_dir,
                  seed=int(spec["simulate"].get("seed", seed)))
