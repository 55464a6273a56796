"""Brain-Score (brainio) ``NeuroidAssembly`` <-> the brain contract.

A brainio neural assembly is a DataArray with dims ``presentation x neuroid``
(optionally ``x time_bin``). In memory each dim carries a pandas MultiIndex; on
disk brainio resets the indexes, so the levels are plain coordinates:

- ``presentation``: ``stimulus_id`` (older assemblies: ``image_id``),
  ``repetition``, and stimulus metadata (``object_name``, ...);
- ``neuroid``: ``neuroid_id``, ``region``, ``animal`` or ``subject``, ...;
- ``time_bin``: ``time_bin_start`` and ``time_bin_end`` in ms.

:func:`from_assembly` turns one into ``responses(stimulus, neuroid, repetition[, time])``;
:func:`to_assembly` goes back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..io import PROVENANCE_KEYS, array_checksum, clean_attrs
from .contract import BrainDataError
from .trials import stack_repetitions

ASSEMBLY_DIMS = ("presentation", "neuroid", "time_bin")
ID_LEVELS = ("stimulus_id", "image_id")
RESERVED_ATTRS = {"dataset_kind", "source_format", "dataset_checksum", "n_trials_dropped", "source_file",
                  "dataset", "created", "config_section", *PROVENANCE_KEYS}


def is_assembly(obj) -> bool:
    """True for an xarray Dataset or DataArray with a ``presentation`` dimension."""
    return isinstance(obj, (xr.Dataset, xr.DataArray)) and "presentation" in obj.dims


def assembly_variable(ds: xr.Dataset, variable: str | None = None, *, what: str,
                      key: str = "variable") -> xr.DataArray:
    """The data variable of ``ds`` that holds the assembly, with the file's attrs merged in.

    A file written from an unnamed DataArray holds ``__xarray_dataarray_variable__``;
    brainio names it ``data``. With several candidates, ``variable`` must choose.
    """
    if isinstance(ds, xr.DataArray):
        return ds
    candidates = [v for v in ds.data_vars if "presentation" in ds[v].dims]
    if variable is not None:
        if variable not in ds.data_vars:
            raise BrainDataError(f"config key '{key}': {what} has no variable '{variable}' "
                                 f"(variables: {list(ds.data_vars)})")
        name = variable
    elif len(candidates) == 1:
        name = candidates[0]
    else:
        raise BrainDataError(f"{what}: {len(candidates)} variables with a 'presentation' dimension "
                             f"({candidates}); set '{key}' to choose one")
    da = ds[name]
    return da.assign_attrs({**ds.attrs, **da.attrs})


def _flat(da: xr.DataArray) -> xr.DataArray:
    """Reset MultiIndexes so that every level is a plain coordinate (brainio's on-disk form)."""
    multi = [d for d in da.dims if isinstance(da.indexes.get(d), pd.MultiIndex)]
    return da.reset_index(multi) if multi else da


def _plain(values) -> np.ndarray:
    """Object arrays (strings as read by h5netcdf) become fixed-width str arrays."""
    values = np.asarray(values)
    return values.astype(str) if values.dtype.kind == "O" else values


def _coords_on(da: xr.DataArray, dim: str) -> dict[str, np.ndarray]:
    return {str(n): _plain(c.values) for n, c in da.coords.items() if c.dims == (dim,)}


def _netcdf_attrs(attrs: dict) -> dict:
    """Drop pandas/xarray objects (e.g. brainio's ``stimulus_set``), stringify the rest as needed,
    and rename keys that brainalign sets itself to ``assembly_<key>``."""
    kept = {k: v for k, v in attrs.items() if not isinstance(v, (pd.DataFrame, pd.Series, xr.DataArray,
                                                                  xr.Dataset))}
    return {(f"assembly_{k}" if k in RESERVED_ATTRS else k): v for k, v in clean_attrs(kept).items()}


def from_assembly(assembly, stimulus_ids, *, what: str, subject: str | None = None,
                  unequal_trials: str = "truncate") -> xr.Dataset:
    """Convert a brainio neural assembly to the brain contract.

    Parameters
    ----------
    assembly : xr.DataArray or xr.Dataset
        ``presentation x neuroid [x time_bin]``, MultiIndexed or in brainio's
        reset-index form; a Dataset must hold one variable with a ``presentation`` dim.
    stimulus_ids : array-like of str
        The stimulus set; the result's stimuli come in this order.
    what : str
        Names the source (the file) in error messages.
    subject : str, optional
        Subject label when the assembly has neither ``subject`` nor ``animal``
        (default ``"sub-01"``).
    unequal_trials : {"truncate", "average", "error"}
        What to do when stimuli have different numbers of presentations
        (see :func:`~brainalign.datasets.trials.stack_repetitions`).

    Returns
    -------
    xr.Dataset
        ``responses(stimulus, neuroid, repetition[, time])`` with ``stimulus_id``,
        per-stimulus presentation metadata, and ``subject``, ``roi``, ``neuroid_id``
        plus the assembly's other neuroid coordinates; ``time`` holds the bin
        midpoints in s, with ``time_bin_start``/``time_bin_end`` (ms) beside it.

    Raises
    ------
    BrainDataError
        No ``stimulus_id``/``image_id`` level, unexpected dims, NaN values, or
        stimulus ids that do not match the stimulus set.
    """
    da = _flat(assembly_variable(assembly, what=what))
    extra = [d for d in da.dims if d not in ASSEMBLY_DIMS]
    if extra or "neuroid" not in da.dims:
        raise BrainDataError(f"{what}: a Brain-Score assembly must have dims presentation x neuroid "
                             f"[x time_bin]; found {tuple(da.dims)} (unexpected: {extra})")
    pres = _coords_on(da, "presentation")
    id_level = next((c for c in ID_LEVELS if c in pres), None)
    if id_level is None:
        raise BrainDataError(f"{what}: the assembly has no 'stimulus_id' (or 'image_id') coordinate on "
                             f"'presentation' (coordinates there: {sorted(pres)})")
    has_time = "time_bin" in da.dims
    da = da.transpose("presentation", "neuroid", *(("time_bin",) if has_time else ()))
    values = da.values
    n_nan = int(np.isnan(values).sum()) if values.dtype.kind in "fc" else 0
    if n_nan:
        raise BrainDataError(f"{what}: the assembly holds {n_nan} NaN value(s) out of {values.size}; "
                             "remove or impute them before loading")

    # trials -> repetitions: order each stimulus's trials by 'repetition' (else presentation order)
    trial_ids = pres[id_level].astype(str)
    order = np.argsort(pres["repetition"], kind="stable") if "repetition" in pres else np.arange(len(trial_ids))
    stacked, info = stack_repetitions(values[order], trial_ids[order], stimulus_ids, what, unequal=unequal_trials)
    stimulus_ids = np.asarray(stimulus_ids, dtype=str)

    neu = _coords_on(da, "neuroid")
    n = da.sizes["neuroid"]
    coords = {
        "stimulus_id": ("stimulus", stimulus_ids),
        "neuroid_id": ("neuroid", neu.pop("neuroid_id", neu.pop("neuroid", np.arange(n).astype(str)))),
        "subject": ("neuroid", neu.pop("subject", neu.get("animal", np.full(n, subject or "sub-01"))).astype(str)),
        "roi": ("neuroid", neu.pop("region", np.full(n, "all")).astype(str)),
    }
    reserved = {"stimulus", "neuroid", "repetition", "time", "responses", *coords}
    coords.update({c: ("neuroid", v) for c, v in neu.items() if c not in reserved})
    # presentation metadata that is constant within each stimulus moves onto 'stimulus'
    skip = reserved | set(coords) | {"presentation", id_level}
    table = pd.DataFrame({c: v for c, v in pres.items() if c not in skip}, index=trial_ids)
    if len(table.columns):
        grouped = table.groupby(level=0, sort=False)
        constant = [c for c in table.columns if (grouped[c].nunique(dropna=False) == 1).all()]
        firsts = grouped[constant].first().reindex(stimulus_ids)
        coords.update({c: ("stimulus", _plain(firsts[c].to_numpy())) for c in constant})
    if "repetition" in pres and unequal_trials != "average":
        labels = _repetition_labels(pres["repetition"][order], trial_ids[order], info["repetitions"])
        if labels is not None:
            coords["repetition"] = ("repetition", labels)

    dims = ("stimulus", "neuroid") + (("time",) if has_time else ()) + ("repetition",)
    responses = xr.DataArray(stacked, dims=dims).transpose("stimulus", "neuroid", "repetition", ...)
    brain = xr.Dataset({"responses": responses}, coords=coords)
    if has_time:
        brain = brain.assign_coords(_time_coords(_coords_on(da, "time_bin"), what))
    brain.attrs.update(_netcdf_attrs(dict(da.attrs)))
    brain.attrs.update(dataset_kind="netcdf", source_format="brainscore_assembly",
                       dataset_checksum=array_checksum(brain["responses"].values, stimulus_ids),
                       n_trials_dropped=int(info["n_trials_dropped"]))
    return brain


def _repetition_labels(reps, trial_ids, n_rep: int):
    """The assembly's repetition labels, if the k-th kept trial has the same label for every stimulus."""
    k = pd.Series(trial_ids).groupby(trial_ids, sort=False).cumcount().to_numpy()
    kept = pd.DataFrame({"k": k, "rep": reps})[k < n_rep].groupby("k")["rep"]
    return kept.first().to_numpy() if (kept.nunique() == 1).all() else None


def _time_coords(bins: dict, what: str) -> dict:
    if not {"time_bin_start", "time_bin_end"} <= set(bins):
        raise BrainDataError(f"{what}: 'time_bin' needs 'time_bin_start' and 'time_bin_end' coordinates "
                             f"(has {sorted(bins)})")
    start, end = (np.asarray(bins[c], dtype=float) for c in ("time_bin_start", "time_bin_end"))
    return {"time": ("time", (start + end) / 2000.0, {"units": "s"}),
            "time_bin_start": ("time", bins["time_bin_start"], {"units": "ms"}),
            "time_bin_end": ("time", bins["time_bin_end"], {"units": "ms"})}


def to_assembly(brain: xr.Dataset) -> xr.DataArray:
    """Convert the brain contract to a brainio-style ``NeuroidAssembly`` DataArray.

    Parameters
    ----------
    brain : xr.Dataset
        ``responses(stimulus, neuroid[, repetition][, time])`` with ``stimulus_id``,
        ``subject`` and ``roi``.

    Returns
    -------
    xr.DataArray
        ``presentation x neuroid [x time_bin]``, MultiIndexed: presentation levels
        ``stimulus_id``, ``repetition`` and the stimulus coordinates; neuroid levels
        ``neuroid_id``, ``region`` (from ``roi``), ``subject`` and the other neuroid
        coordinates; time_bin levels ``time_bin_start``, ``time_bin_end`` (ms).
    """
    resp = brain["responses"]
    if "repetition" not in resp.dims:
        resp = resp.expand_dims(repetition=1, axis=-1)
    has_time = "time" in resp.dims
    values = resp.transpose("stimulus", "repetition", "neuroid", *(("time",) if has_time else ())).values
    n_stim, n_rep = values.shape[:2]
    values = values.reshape(n_stim * n_rep, *values.shape[2:])
    reps = brain["repetition"].values if "repetition" in brain.coords else np.arange(n_rep)

    pres = {"stimulus_id": np.repeat(_plain(brain["stimulus_id"].values), n_rep), "repetition": np.tile(reps, n_stim)}
    pres.update({c: np.repeat(v, n_rep) for c, v in _coords_on(brain, "stimulus").items() if c not in pres})
    neu = _coords_on(brain, "neuroid")
    neuroid = {"neuroid_id": neu.pop("neuroid_id", np.arange(resp.sizes["neuroid"]).astype(str)),
               "region": neu.pop("roi"), "subject": neu.pop("subject"), **neu}
    coords = {**{c: ("presentation", v) for c, v in pres.items()},
              **{c: ("neuroid", v) for c, v in neuroid.items()}}
    index = {"presentation": list(pres), "neuroid": list(neuroid)}
    dims = ("presentation", "neuroid")
    if has_time:
        dims += ("time_bin",)
        start, end = _bin_edges(brain)
        coords.update(time_bin_start=("time_bin", start), time_bin_end=("time_bin", end))
        index["time_bin"] = ["time_bin_start", "time_bin_end"]
    da = xr.DataArray(values, dims=dims, coords=coords, attrs=dict(brain.attrs))
    return da.set_index(index)


def _bin_edges(brain: xr.Dataset):
    """Time-bin edges in ms: stored ones, else midpoints +- half the bin spacing."""
    if "time_bin_start" in brain.coords and "time_bin_end" in brain.coords:
        return brain["time_bin_start"].values, brain["time_bin_end"].values
    t = np.asarray(brain["time"].values, dtype=float) * 1000.0
    half = np.diff(t).min() / 2 if len(t) > 1 else 0.0
    return t - half, t + half
