"""Representational geometry of every layer of one model on one stimulus set (no brain data).

:func:`geometry` computes the measures of :mod:`brainalign.metrics.layer_geometry` per layer
(intrinsic dimension, participation ratio, effective rank, spectral decay, anisotropy, massive
activations, and with a label column neural collapse NC1), each with a subsampling interval: the
measure on ``n_subsamples`` halves of the stimuli drawn without replacement (no stimulus twice,
which would put zero distances into the nearest-neighbour estimators), their spread about their
median scaled by the delete-d jackknife factor and laid around the full-sample value
(:func:`brainalign.metrics.stats.subsample_ci`). :func:`collect_geometry` gathers the files of
several models on one relative-depth axis for the figure.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..metrics import layer_geometry as lg
from ..metrics import stats
from .common import finite_layer, layer_coords

DEFAULTS = {"n_subsamples": 20, "k": 20, "discard_fraction": 0.1}


def _labels(stimuli: xr.Dataset | None, column: str | None, ids: np.ndarray):
    if not column:
        return None
    if stimuli is None or column not in stimuli.coords:
        raise ValueError(f"geometry labels: the stimulus set has no column '{column}'")
    order = {s: i for i, s in enumerate(stimuli["stimulus_id"].values.astype(str))}
    values = stimuli[column].values.astype(str)[[order[s] for s in ids]]
    if len(np.unique(values)) < 2:
        raise ValueError(f"geometry labels: column '{column}' has one class; NC1 needs at least two")
    return np.unique(values, return_inverse=True)[1]


def geometry(layers, settings: dict, *, stimuli: xr.Dataset | None = None, seed: int = 0,
             confidence: float = 0.95) -> xr.Dataset:
    """``value(layer, measure)`` with ``ci_low``/``ci_high`` for one model's layers."""
    settings = {**DEFAULTS, **(settings or {})}
    labels = _labels(stimuli, settings.get("labels"), layers[0]["stimulus_id"].values.astype(str))
    names = settings.get("measures") or [n for n, m in lg.MEASURES.items() if labels is not None or not m.needs_labels]
    kwargs = {k: settings[k] for k in ("k", "discard_fraction") if k in settings}
    n = layers[0].sizes["stimulus"]
    draws = stats.subsample_indices(n, int(settings["n_subsamples"]), np.random.default_rng(seed))
    value = np.full((len(layers), len(names)), np.nan)
    samples = np.full((draws.shape[0], len(layers), len(names)), np.nan)
    for li, layer in enumerate(tqdm(layers, desc="geometry", unit="layer", leave=False)):
        x = finite_layer(layer).transpose("stimulus", ...).values.astype(np.float64)
        value[li] = _measures(x, labels, names, kwargs)
        for b, rows in enumerate(draws):
            samples[b, li] = _measures(x[rows], None if labels is None else labels[rows], names, kwargs)
    low, high = stats.subsample_ci(value, samples, confidence, draws.shape[1], n)
    out = xr.Dataset({"value": (("layer", "measure"), value), "ci_low": (("layer", "measure"), low),
                      "ci_high": (("layer", "measure"), high)},
                     coords={**layer_coords(layers), "measure": names,
                             "description": ("measure", [lg.MEASURES[m].description for m in names])})
    out["ci_low"].attrs["description"] = (
        f"{confidence:.0%} subsampling interval: {draws.shape[0]} halves of the stimuli without replacement, their "
        "spread about their median scaled by sqrt(m / (n - m)) around the full-sample value")
    out.attrs.update(settings=json.dumps(settings, sort_keys=True), labels=settings.get("labels") or "",
                     n_stimuli=n, n_subsamples=int(draws.shape[0]), confidence=confidence)
    return out


def _measures(x: np.ndarray, labels, names, kwargs) -> list[float]:
    out = []
    for name in names:
        try:
            value = lg.layer_geometry(x, labels if lg.MEASURES[name].needs_labels else None, measures=[name],
                                      **{k: v for k, v in kwargs.items() if k in lg.MEASURES[name].settings})
            out.append(float(value[name]))
        except ValueError:  # a degenerate layer (constant rows, one class in a subsample): no value
            out.append(np.nan)
    return out


def geometry_file(activations_path, out_path, settings: dict, *, stimuli_path=None, seed: int = 0,
                  confidence: float = 0.95, names: dict | None = None):
    """File-level entry point of the ``geometry`` rule."""
    from ..io import provenance, read_activations, read_netcdf, write_netcdf

    layers, model_attrs = read_activations(activations_path)
    stimuli = read_netcdf(stimuli_path) if stimuli_path else None
    out = geometry(layers, settings, stimuli=stimuli, seed=seed, confidence=confidence)
    names = names or {}
    out.attrs.update(provenance({"geometry": settings}, seed=seed, **out.attrs,
                                model=names.get("model", model_attrs.get("model_name", "")),
                                stimuli=names.get("stimuli", ""),
                                model_checksum=model_attrs.get("model_checksum", ""),
                                model_revision=model_attrs.get("model_revision", ""),
                                pooling=model_attrs.get("pooling", "")))
    return write_netcdf(out, out_path)


def collect_geometry(paths: dict) -> xr.Dataset:
    """``{model: geometry file}`` on one axis: ``value(model, slot, measure)`` with ``depth`` and
    ``layer`` as (model, slot) coordinates (models differ in depth; shorter ones are NaN-padded)."""
    from ..io import read_netcdf

    files = {m: read_netcdf(p) for m, p in paths.items()}
    models = list(files)
    measures = files[models[0]]["measure"].values.astype(str).tolist()
    slots = max(f.sizes["layer"] for f in files.values())
    shape = (len(models), slots, len(measures))
    grids = {v: np.full(shape, np.nan) for v in ("value", "ci_low", "ci_high")}
    depth, names = np.full(shape[:2], np.nan), np.full(shape[:2], "", dtype=object)
    for i, m in enumerate(models):
        f = files[m].sel(measure=measures)
        k = f.sizes["layer"]
        for v in grids:
            grids[v][i, :k] = f[v].transpose("layer", "measure").values
        depth[i, :k] = f["depth"].values
        names[i, :k] = f["layer"].values.astype(str)
    first = files[models[0]]
    return xr.Dataset({v: (("model", "slot", "measure"), g) for v, g in grids.items()},
                      coords={"model": models, "measure": measures, "depth": (("model", "slot"), depth),
                              "layer": (("model", "slot"), names.astype(str)),
                              "description": ("measure", first["description"].values.astype(str))},
                      attrs={k: first.attrs[k] for k in ("stimuli", "labels", "n_stimuli", "n_subsamples",
                                                         "confidence") if k in first.attrs})


def collect_geometry_file(paths: dict, out_path):
    from ..io import provenance, write_netcdf

    data = collect_geometry(paths)
    return write_netcdf(data, out_path, attrs={**data.attrs, **provenance({"geometry": {m: str(p) for m, p in
                                                                                      paths.items()}})})
