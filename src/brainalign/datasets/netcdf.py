"""``netcdf``: brain responses stored in the brainalign contract, or a Brain-Score
(brainio) ``NeuroidAssembly`` file (detected by its ``presentation`` dimension and
converted by :func:`brainalign.datasets.brainscore.from_assembly`).

Optional spec keys for assemblies: ``variable`` (the data variable holding the
assembly, when the file has several), ``subject`` (label when the assembly has no
``subject``/``animal`` coordinate) and ``unequal_trials`` (``truncate``, ``average``
or ``error``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..io import read_netcdf
from ..stimuli import StimulusError, align_to, resolve_path
from . import brainscore
from .contract import BrainDataError, check_brain


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, **_) -> xr.Dataset:
    path = resolve_path(spec["path"], base_dir, f"datasets.{name}.path")
    brain = read_netcdf(path)
    if brainscore.is_assembly(brain):
        assembly = brainscore.assembly_variable(brain, spec.get("variable"), what=str(path),
                                                key=f"datasets.{name}.variable")
        brain = brainscore.from_assembly(assembly, stimuli["stimulus_id"].values, what=str(path),
                                         subject=spec.get("subject"),
                                         unequal_trials=spec.get("unequal_trials", "truncate"))
    check_brain(brain, what=str(path))
    if "repetition" not in brain["responses"].dims:
        brain["responses"] = brain["responses"].expand_dims(repetition=1, axis=-1)
    rois = spec.get("rois")
    if rois:
        present = brain["roi"].values.astype(str)
        for roi in rois:
            if not np.any(present == roi):
                raise BrainDataError(f"config key 'datasets.{name}.rois': ROI '{roi}' is empty "
                                     f"(no neuroids in {path}; ROIs there: {sorted(set(present.tolist()))})")
        brain = brain.isel(neuroid=np.flatnonzero(np.isin(present, rois)))
    try:
        brain = align_to(brain, stimuli["stimulus_id"].values, what=str(path))
    except StimulusError as exc:
        raise BrainDataError(str(exc)) from None
    brain.attrs.setdefault("source_file", str(path))
    return brain
