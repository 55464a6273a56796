"""Simulated recordings with a planted answer, written as real files (NIfTI runs with
events, MNE epochs) that the dataset adapters then read like any user's data.

The dataset-kind registry (:mod:`brainalign.datasets.registry`, field ``simulator``) names
the writer of a kind's files:
``write(name, spec, stimuli, activations, out_dir, seed) -> list of written paths``, where
``spec`` is the dataset's whole config entry (its ``simulate`` block says what to plant).
"""

from __future__ import annotations

import importlib
from pathlib import Path

def simulate_dataset(name: str, spec: dict, stimuli_path, activations: dict, out_dir, *, seed: int = 0):
    """File-level entry point of the ``simulate`` rule: write ``datasets.<name>``'s files
    into ``out_dir`` from the planted layers in ``activations`` (model -> file)."""
    from ..datasets.registry import dataset_kind
    from ..io import atomic_directory, read_netcdf

    simulator = dataset_kind(spec["kind"]).simulator
    if simulator is None:
        raise ValueError(f"config key 'datasets.{name}.simulate': kind {spec['kind']} cannot be simulated")
    module, func = simulator.split(":")
    writer = getattr(importlib.import_module(module), func)
    with atomic_directory(out_dir) as tmp:  # a rerun never mixes its files with an earlier run's
        written = writer(name, spec, read_netcdf(stimuli_path), dict(activations), tmp,
                         seed=int(spec["simulate"].get("seed", seed)))
    return [Path(out_dir) / Path(p).relative_to(tmp) for p in written]
