"""The features job: a model's word features brought to a time series' volumes.

Reads the activations (one vector per word, per layer) and the dataset's brain file (its volume
times, word ids and word times, and ``features`` settings), and writes the same layers with one
row per volume (the brain file's ``stimulus_id``s) and ``delays`` x the units: an activations file
like any other, so every metric reads it unchanged. A word's non-finite value (the first word's
surprisal) is its layer's mean over the other words before the map (:func:`common.finite_layer`).
"""

from __future__ import annotations

import json

import numpy as np
from tqdm.auto import tqdm

from ..clock import clock_matrix, on_volumes, volume_times
from ..io import ActivationWriter, read_activations, read_netcdf
from ..stimuli import align_to
from .common import finite_layer


def volume_features(layers, brain):
    """(per-layer (volume, delay x unit) arrays, feature settings) of word-level ``layers``."""
    attrs = brain.attrs
    settings = json.loads(attrs["features"])
    times = volume_times(int(attrs["n_volumes"]), float(attrs["tr"]), int(attrs["discarded_volumes"]),
                         float(attrs["slice_time_ref"]), float(attrs["offset"]))
    matrix = clock_matrix(brain["word_time"].values.astype(float), times, settings["method"],
                          window=int(settings["window"]), cutoff_mult=float(settings["cutoff_mult"]),
                          hrf_model=settings["hrf_model"], oversampling=int(settings["oversampling"]))
    rows = brain["volume"].values.astype(int)
    word_ids = brain["word_id"].values.astype(str)
    out = []
    for layer in tqdm(layers, desc="features on volumes", unit="layer"):
        words = finite_layer(align_to(layer, word_ids, what="activations (words of the transcript)"))
        out.append(on_volumes(words.values, matrix, settings["delays"])[rows])
    return out, settings


def features_file(activations_path, brain_path, out_path):
    layers, model_attrs = read_activations(activations_path)
    brain = read_netcdf(brain_path)
    values, settings = volume_features(layers, brain)
    delays = [int(d) for d in settings["delays"]]
    attrs = {**model_attrs, "features_method": settings["method"], "features_settings": json.dumps(settings, sort_keys=True),
             "features_delays": ",".join(map(str, delays)), "features_tr": float(brain.attrs["tr"]),
             "features_dataset_checksum": brain.attrs.get("dataset_checksum", ""),
             "features_unit_order": "delay-major: unit u of delay k is column k * n_units + u"}
    with ActivationWriter(out_path, brain["stimulus_id"].values.astype(str),
                          [str(layer["layer"].item()) for layer in layers], [v.shape[1] for v in values],
                          layer_indices=[int(layer["layer_index"].item()) for layer in layers],
                          depths=[float(layer["depth"].item()) for layer in layers], attrs=attrs,
                          dtype="float32") as writer:
        writer.write(0, [np.asarray(v, dtype=np.float32) for v in values])
    return out_path
