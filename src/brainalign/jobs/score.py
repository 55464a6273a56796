"""The score job: one model x dataset x metric, vectorised over layers, subjects and ROIs.

The metric comes from :mod:`brainalign.metrics.registry`; its scorer returns the scores
contract (``score(layer, subject, roi)`` plus the across-subject mean with its confidence
interval, a permutation p value and noise-ceiling bounds where the metric defines them).
This module adds what every metric's file carries: the label, the settings and provenance.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..datasets.contract import is_rdm_data
from ..io import provenance, write_netcdf
from ..metrics.registry import get_metric, load_plugins, metric_names
from .common import add_heldout_best, load_inputs


def score(metric: str, activations_path, brain_path, settings: dict, *, seed: int = 0,
          confidence: float = 0.95, names: dict | None = None) -> xr.Dataset:
    """Score every layer of one model against every subject and ROI of one dataset."""
    entry = get_metric(metric)
    layers, model_attrs, brain = load_inputs(activations_path, brain_path)
    if not entry.accepts_rdms and (isinstance(layers, xr.DataArray) or is_rdm_data(brain)):
        raise ValueError(f"metric '{metric}' needs activations and brain responses; precomputed RDMs "
                         f"support only {[m for m in metric_names() if get_metric(m).accepts_rdms]}")
    rng = np.random.default_rng(seed)
    result = entry.score_function()(layers, brain, settings, metric=metric, rng=rng, seed=seed,
                                    confidence=confidence)
    add_heldout_best(result, confidence)
    label = entry.label(settings)
    result["score"].attrs["long_name"] = label
    names = names or {}
    result.attrs.update(provenance(
        {"metric": metric, **settings}, seed=seed,
        metric=metric, metric_label=label, metric_settings=json.dumps(settings, sort_keys=True),
        confidence=confidence, **result.attrs,
        model=names.get("model", model_attrs.get("model_name", "")),
        dataset=names.get("dataset", ""),
        model_checksum=model_attrs.get("model_checksum", ""),
        model_revision=model_attrs.get("model_revision", ""),
        pooling=model_attrs.get("pooling", ""),
        dataset_checksum=brain.attrs.get("dataset_checksum", ""),
        planted=brain.attrs.get("planted", ""),
    ))
    return result


def score_file(metric: str, activations_path, brain_path, out_path, settings: dict, *, seed: int = 0,
               confidence: float = 0.95, names: dict | None = None, plugins=()):
    """File-level entry point of the ``score`` rule (``plugins``: the config's modules that
    register metrics of their own)."""
    load_plugins(plugins)
    result = score(metric, activations_path, brain_path, settings, seed=seed, confidence=confidence, names=names)
    return write_netcdf(result, out_path)
