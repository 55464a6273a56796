"""``rdm_mat`` / ``rdm_npy``: models given as precomputed RDMs (no activations).

Each RDM of the file (e.g. animacy, monkeyIT, EVA, HMAX in ``92_modelRDMs.mat``)
becomes one "layer" of the model. The file's rows follow the stimulus table's
order. The written NetCDF holds ``rdm(layer, stimulus, stimulus_)`` with
``layer`` (entry name), ``layer_index``, ``depth`` and ``stimulus_id``, and attrs
``content="rdms"``, ``model_name``, ``model_checksum``, ``source_file`` plus
provenance.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..io import provenance, read_netcdf, write_netcdf
from ..rdm_files import RDMFileError, load_spec_rdms, select_entries


def load_model_rdms(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None) -> xr.Dataset:
    """The model-RDM Dataset for the config entry ``models.<name>`` (not written).

    ``layers`` (optional) lists the entry names to keep, in that order.
    """
    key = f"models.{name}"
    rdms = load_spec_rdms(spec, stimuli["stimulus_id"].values, key=key, base_dir=base_dir)
    if spec.get("layers") is not None:
        rdms = select_entries(rdms, spec["layers"], f"{key}.layers")
    layers = rdms["name"].values.astype(str)
    if len(set(layers)) != len(layers):
        raise RDMFileError(f"config key '{key}.path': {rdms.attrs['source_file']} has repeated RDM names "
                           f"{sorted({x for x in layers if (layers == x).sum() > 1})}; they cannot name layers")
    n = len(layers)
    return xr.Dataset(
        {"rdm": (("layer", "stimulus", "stimulus_"), rdms.values)},
        coords={"layer": layers,
                "layer_index": ("layer", np.arange(n, dtype="int64")),
                "depth": ("layer", np.arange(n) / max(n - 1, 1)),
                "stimulus_id": ("stimulus", rdms["stimulus_id"].values)},
        attrs={"content": "rdms", "model_name": name, "model_checksum": rdms.attrs["checksum"],
               "source_file": rdms.attrs["source_file"]})


def write_model_rdms(name: str, spec: dict, stimuli: xr.Dataset, out_path: str | os.PathLike,
                     base_dir=None) -> Path:
    """Write the model RDMs of ``models.<name>`` to ``out_path`` (atomically)."""
    ds = load_model_rdms(name, spec, stimuli, base_dir=base_dir)
    return write_netcdf(ds, out_path, attrs={**provenance(spec, model_checksum=ds.attrs["model_checksum"]),
                                             **ds.attrs})


def read_model_rdms(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by :func:`write_model_rdms`."""
    return read_netcdf(path)
