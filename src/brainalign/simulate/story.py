"""A simulated story-listening fMRI experiment with a planted answer, written as the text time
courses a ``timeseries`` dataset reads (one ``{subject}-timecourses.txt`` per subject, rows =
volumes, columns = ROIs).

Each planted ROI follows one layer of one model: the layer's word vectors (read in context, one per
word of the transcript) projected on a random unit direction per subject, placed at the words'
onsets (plus ``delay`` s), convolved with nilearn's HRF (``hrf_model``) and sampled at every
volume (:func:`brainalign.clock.hrf_matrix`), scaled to variance ``snr`` and added to unit-variance
AR(1) noise (``ar1``). Other ROIs named in ``null_rois`` are noise only. ``planted.json`` records
the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from .fmri import _ar1, _layer_features, _write_text

DEFAULTS = {"subjects": 6, "snr": 1.0, "ar1": 0.5, "hrf_model": "glover", "delay": 0.0, "null_rois": [],
            "end_padding": 16.0}


def n_volumes(spec: dict, stimuli: xr.Dataset) -> int:
    """Kept volumes that cover the transcript and ``end_padding`` s after its last word."""
    sim = {**DEFAULTS, **spec.get("simulate", {})}
    last = float(np.nanmax(stimuli["offset"].values.astype(float)))
    tr, discarded = float(spec["tr"]), int(spec.get("discarded_volumes", 0))
    return int(np.ceil((last + float(sim["end_padding"]) - float(spec.get("offset", 0.0))) / tr)) - discarded


def write(name: str, spec: dict, stimuli: xr.Dataset, activations: dict, out_dir, seed: int = 0) -> list[Path]:
    from ..clock import hrf_matrix, volume_times
    from ..datasets.timeseries import feature_settings, word_times

    sim = {**DEFAULTS, **spec.get("simulate", {})}
    key = f"datasets.{name}.simulate"
    out_dir = Path(out_dir)
    ids = stimuli["stimulus_id"].values.astype(str)
    onsets = word_times(stimuli, feature_settings(spec)["event_time"], name) + float(sim["delay"])
    n = n_volumes(spec, stimuli)
    times = volume_times(n, float(spec["tr"]), int(spec.get("discarded_volumes", 0)),
                         float(spec.get("slice_time_ref", 0.0)), float(spec.get("offset", 0.0)))
    matrix = hrf_matrix(onsets, times, sim["hrf_model"])
    planted = {}
    for roi, p in sim.get("planted", {}).items():
        features, layer_name = _layer_features(activations, p["model"], p["layer"], ids, f"{key}.planted.{roi}")
        features = np.where(np.isfinite(features), features, np.nanmean(features, axis=0))
        planted[roi] = {"model": p["model"], "layer_index": int(p["layer"]), "layer": layer_name,
                        "features": features}
    rois = list(planted) + [str(r) for r in sim["null_rois"]]
    written = []
    for s in range(int(sim["subjects"])):
        subject = f"sub-{s + 1:02d}"
        rng = np.random.default_rng([int(seed), s])
        columns = []
        for roi in rois:
            noise = _ar1((n,), float(sim["ar1"]), rng)
            if roi in planted:
                x = planted[roi]["features"]
                direction = rng.standard_normal(x.shape[1])
                signal = matrix @ ((x - x.mean(0)) @ (direction / np.linalg.norm(direction)))
                signal = (signal - signal.mean()) / signal.std() * np.sqrt(float(sim["snr"]))
                noise = noise + signal
            columns.append(noise)
        path = out_dir / f"{subject}-timecourses.txt"
        _write_text("\n".join(" ".join(f"{v:.8g}" for v in row) for row in np.stack(columns, axis=1)) + "\n", path)
        written.append(path)
    truth = {"planted": {roi: {k: p[k] for k in ("model", "layer_index", "layer")} for roi, p in planted.items()},
             "rois": rois, "n_volumes": n, "seed": int(seed), **{k: v for k, v in sim.items() if k != "planted"}}
    _write_text(json.dumps(truth, indent=2, sort_keys=True), out_dir / "planted.json")
    return written + [out_dir / "planted.json"]
