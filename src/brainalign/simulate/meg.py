"""Simulated MEG epochs with planted layers, written as MNE ``*_epo.fif`` files.

102 magnetometers named and placed like the Neuromag Vectorview array (from
MNE's built-in ``Vectorview-mag`` layout, projected onto a helmet-sized
sphere). Each planted (model, layer) representation is mixed into the sensors at
random (:func:`~brainalign.datasets.simulated.planted_signal`) and rises and
falls as a Gaussian in time around its ``peak`` latency; the planted layers add
up. Noise is independent across trials and time points but correlated across
sensors: neighbouring sensors share a smooth field, and a few random noise
sources reach all of them. One epoch per trial, trials in a random order per
subject; the event code of a stimulus is its position (from 1) among the
sorted stimulus ids, and ``event_id`` maps the stimulus id to that code.
Simulation happens in sorted-id order, so the files do not depend on the row
order of the stimulus table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from ..datasets.simulated import planted_signal
from ..io import atomic_path, read_activations
from ..stimuli import align_to

# snr: signal variance / noise variance of one sensor on one trial at a planted peak. The
# spatially correlated noise costs RDMs more than white noise of the same variance, and
# 0.03 s wide peaks keep neighbouring planted layers (0.1 s apart) from blending; see
# tests/test_mne_epochs.py for the recovered latencies.
DEFAULTS = {"subjects": 3, "repetitions": 4, "sfreq": 100.0, "tmin": -0.1, "tmax": 0.6, "snr": 4.0}
DEFAULT_WIDTH = 0.03
FIELD_T = 2e-13  # tesla per unit of simulated signal: evoked fields of a few hundred fT
HELMET_RADIUS = 0.12  # m
SPATIAL_SCALE = 0.04  # m, spatial length scale of the smooth part of the sensor noise
NOISE_SOURCES = 10
SOA = 1.0  # s between epoch onsets in the event array


def sensor_positions() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, positions (m) and outward normals of the 102 Vectorview magnetometers.

    The 2-D layout is unfolded onto a sphere of :data:`HELMET_RADIUS` (an
    azimuthal equidistant projection reaching 100 degrees from the vertex).
    """
    import mne

    layout = mne.channels.read_layout("Vectorview-mag")
    centre = layout.pos[:, :2] + layout.pos[:, 2:4] / 2
    xy = centre - centre.mean(0)
    radius = np.linalg.norm(xy, axis=1)
    theta = radius / radius.max() * np.deg2rad(100)
    phi = np.arctan2(xy[:, 1], xy[:, 0])
    normal = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    return list(layout.names), HELMET_RADIUS * normal, normal


def measurement_info(sfreq: float):
    """``mne.Info`` of the magnetometers, with positions and coil orientations."""
    import mne

    names, pos, normal = sensor_positions()
    info = mne.create_info(names, sfreq, ch_types="mag")
    for ch, p, ez in zip(info["chs"], pos, normal):
        ex = np.cross([0.0, 0.0, 1.0], ez)
        ex = ex / np.linalg.norm(ex) if np.linalg.norm(ex) > 1e-9 else np.array([1.0, 0.0, 0.0])
        ch["loc"][:12] = np.concatenate([p, ex, np.cross(ez, ex), ez])
    return info


def noise_cholesky(pos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cholesky factor of a unit-diagonal sensor covariance: half a smooth field
    (Gaussian kernel of sensor distance), a third from :data:`NOISE_SOURCES` random
    sources, the rest independent sensor noise."""
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    smooth = np.exp(-0.5 * (dist / SPATIAL_SCALE) ** 2)
    mixing = rng.standard_normal((len(pos), NOISE_SOURCES))
    sources = mixing @ mixing.T / NOISE_SOURCES
    cov = 0.5 * smooth + 0.3 * sources + 0.2 * np.eye(len(pos))
    scale = 1.0 / np.sqrt(np.diag(cov))
    return np.linalg.cholesky(cov * scale[:, None] * scale[None, :])


def planted_layers(name: str, planted: dict, activations: dict, ids) -> dict[str, dict]:
    """Check ``planted`` against the activation files; label -> spec with the layer's values."""
    key = f"config key 'datasets.{name}.simulate.planted"
    cache, out = {}, {}
    for label, p in planted.items():
        model, layer = p["model"], int(p["layer"])
        if model not in activations:
            raise ValueError(f"{key}.{label}.model': no activations of '{model}' (have {sorted(activations)})")
        if model not in cache:
            layers, _ = read_activations(activations[model])
            cache[model] = {int(da["layer_index"]): da for da in layers}
        if layer not in cache[model]:
            raise ValueError(f"{key}.{label}.layer': model '{model}' has no hidden state {layer} "
                             f"(has {sorted(cache[model])})")
        da = align_to(cache[model][layer], ids, what=str(activations[model]))
        out[label] = {"model": model, "layer_index": layer, "layer": str(da["layer"].item()),
                      "peak": float(p["peak"]), "width": float(p.get("width", DEFAULT_WIDTH)),
                      "features": da.values.astype(np.float64)}
    return out


def simulate_subject(planted: dict, times: np.ndarray, n_rep: int, snr: float, pos: np.ndarray,
                     rng: np.random.Generator) -> tuple[xr.DataArray, np.ndarray]:
    """One subject's trials in presentation order.

    Returns
    -------
    trials : xarray.DataArray
        (trial, sensor, time) in tesla.
    stimulus_index : numpy.ndarray
        The stimulus (index into the sorted ids) shown on each trial.
    """
    n_sensors = len(pos)
    signal = 0.0
    for p in planted.values():
        mixed = xr.DataArray(planted_signal(p["features"], n_sensors, rng), dims=("stimulus", "sensor"))
        profile = xr.DataArray(np.exp(-0.5 * ((times - p["peak"]) / p["width"]) ** 2), dims="time")
        signal = signal + mixed * profile
    n_stim = signal.sizes["stimulus"]
    chol = noise_cholesky(pos, rng)
    stimulus_index = rng.permutation(np.repeat(np.arange(n_stim), n_rep))
    white = rng.standard_normal((len(stimulus_index), len(times), n_sensors))
    noise = xr.DataArray(np.einsum("nts,cs->nct", white, chol), dims=("trial", "sensor", "time"))
    trials = signal.isel(stimulus=xr.DataArray(stimulus_index, dims="trial")) + noise / np.sqrt(snr)
    return (trials * FIELD_T).transpose("trial", "sensor", "time"), stimulus_index


def write(name: str, spec: dict, stimuli: xr.Dataset, activations: dict, out_dir, seed: int = 0) -> list[Path]:
    """Write ``out_dir/sub-XX_task-<name>_epo.fif`` per subject and ``out_dir/planted.json``.

    Parameters
    ----------
    name : str
        The dataset's name (the BIDS ``task`` label of the files).
    spec : dict
        The dataset's config entry; its ``simulate`` block holds ``subjects``, ``repetitions``, ``sfreq``,
        ``tmin``, ``tmax``, ``snr`` and ``planted`` (label -> ``model``, ``layer``,
        ``peak``, ``width``). Missing keys take :data:`DEFAULTS`.
    stimuli : xarray.Dataset
        The stimulus set.
    activations : dict
        Model name -> activation file of that model on ``stimuli``.
    out_dir : path-like
        Folder for the files.
    seed : int
        Subject ``s`` (from 0) draws from ``numpy.random.default_rng([seed, s])``;
        the same seed gives the same data.

    Returns
    -------
    list of pathlib.Path
        The epochs files, then ``planted.json``.
    """
    import mne

    sim = spec["simulate"]
    opts = {**DEFAULTS, **{k: v for k, v in sim.items() if k in DEFAULTS}}
    if not sim.get("planted"):
        raise ValueError(f"config key 'datasets.{name}.simulate.planted': at least one planted layer is required")
    ids = np.sort(stimuli["stimulus_id"].values.astype(str))
    planted = planted_layers(name, sim["planted"], activations, ids)
    sfreq, snr = float(opts["sfreq"]), float(opts["snr"])
    n_times = int(round((float(opts["tmax"]) - float(opts["tmin"])) * sfreq)) + 1
    if n_times < 2:
        raise ValueError(f"config key 'datasets.{name}.simulate.tmax': must exceed tmin by at least one sample "
                         f"(tmin={opts['tmin']}, tmax={opts['tmax']}, sfreq={sfreq})")
    times = float(opts["tmin"]) + np.arange(n_times) / sfreq
    info = measurement_info(sfreq)
    _, pos, _ = sensor_positions()
    event_id = {sid: code for code, sid in enumerate(ids, start=1)}
    soa = max(int(round(SOA * sfreq)), n_times + 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for s in range(int(opts["subjects"])):
        rng = np.random.default_rng([int(seed), s])
        trials, stimulus_index = simulate_subject(planted, times, int(opts["repetitions"]), snr, pos, rng)
        onsets = soa * (np.arange(len(stimulus_index)) + 1)
        events = np.stack([onsets, np.zeros_like(onsets), stimulus_index + 1], axis=1).astype(int)
        epochs = mne.EpochsArray(trials.values, info, events=events, tmin=times[0], event_id=event_id,
                                 baseline=None, verbose="error")
        path = out_dir / f"sub-{s + 1:02d}_task-{name}_epo.fif"
        with atomic_path(path) as tmp:
            epochs.save(tmp, overwrite=True, verbose="error")
        written.append(path)
    record = {"dataset": name, "seed": int(seed), "snr": snr,
              **{k: opts[k] for k in ("subjects", "repetitions", "sfreq", "tmin", "tmax")},
              "field_tesla_per_unit": FIELD_T, "sensors": "102 Vectorview magnetometers",
              "noise": "independent across trials and time; sensor covariance 0.5 smooth field + "
                       f"0.3 from {NOISE_SOURCES} random sources + 0.2 independent",
              "planted": {label: {k: v for k, v in p.items() if k != "features"} for label, p in planted.items()}}
    with atomic_path(out_dir / "planted.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return written + [out_dir / "planted.json"]
