"""``simulated``: brain data with a planted answer.

Each signal ROI's voxels are random linear mixtures of one (model, layer)
representation; every repetition adds independent Gaussian noise at the
configured SNR. One ROI without a ``model`` is pure noise. Which layer drives
which ROI, the SNR and the seed are stored in the attributes, so any metric's
answer can be checked against the truth.

With ``time`` (MEG/EEG-like data), responses get a ``time`` dim and each
signal ROI's planted representation rises and falls as a Gaussian in time,
peaking at the ROI's ``peak`` latency (seconds) with its ``width``; the noise
is independent at every time point.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..io import array_checksum, read_activations
from ..stimuli import align_to



GRID_MM = 2.0


def grid_sphere(centre, n: int, spacing: float = GRID_MM) -> np.ndarray:
    """The ``n`` points of the MNI-aligned grid (multiples of ``spacing`` mm)
    nearest to ``centre``: a voxelised sphere, so maps can be written as NIfTI."""
    reach = int(np.ceil((3 * n / (4 * np.pi)) ** (1 / 3))) + 2
    base = np.round(np.asarray(centre) / spacing)
    steps = np.arange(-reach, reach + 1)
    grid = (np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3) + base) * spacing
    dist = np.linalg.norm(grid - centre, axis=1)
    order = np.lexsort((grid[:, 2], grid[:, 1], grid[:, 0], np.round(dist, 9)))
    return grid[order[:n]]


def _centre(i: int, spec: dict) -> np.ndarray:
    if "center" in spec:
        return np.asarray(spec["center"], dtype=float)
    return np.array([-48.0 + 24.0 * i, -40.0 + 10.0 * i, 4.0 * i])


def planted_signal(features: np.ndarray, n_voxels: int, rng: np.random.Generator) -> np.ndarray:
    """Random linear mixture of centred ``features`` (stimulus x unit), scaled so
    the mean voxel variance is 1. Global scaling keeps the stimulus geometry
    (Gram matrix) of the mixture proportional to the layer's."""
    x = features - features.mean(0)
    weights = rng.standard_normal((x.shape[1], n_voxels)) / np.sqrt(x.shape[1])
    signal = x @ weights
    return signal / np.sqrt(signal.var(0).mean())


def load(name: str, spec: dict, stimuli: xr.Dataset, activations: dict | None = None,
         seed: int = 0, **_) -> xr.Dataset:
    """``activations`` maps model name -> activation file of that model on ``stimuli``."""
    activations = activations or {}
    seed = int(spec.get("seed", seed))
    rng = np.random.default_rng(seed)
    # Simulate in sorted-id order, so a stimulus's responses do not depend on the
    # row order of the stimulus table; the result is reordered to the table below.
    given_ids = stimuli["stimulus_id"].values.astype(str)
    ids = np.sort(given_ids)
    n_stim, n_rep = len(ids), int(spec.get("repetitions", 2))
    noise_sd = 1.0 / np.sqrt(float(spec.get("snr", 0.5)))

    layers_by_model = {}
    for model, path in activations.items():
        layers, _ = read_activations(path)
        layers_by_model[model] = {int(da["layer_index"]): align_to(da, ids, what=str(path)) for da in layers}

    planted = {}
    for roi, rspec in spec["rois"].items():
        if "model" in rspec:
            model, layer = rspec["model"], int(rspec["layer"])
            if model not in layers_by_model:
                raise ValueError(f"config key 'datasets.{name}.rois.{roi}.model': no activations of '{model}'")
            if layer not in layers_by_model[model]:
                raise ValueError(f"config key 'datasets.{name}.rois.{roi}.layer': model '{model}' has no "
                                 f"hidden state {layer} (has {sorted(layers_by_model[model])})")
            planted[roi] = {"model": model, "layer_index": layer,
                            "layer": str(layers_by_model[model][layer]["layer"].item())}
        else:
            planted[roi] = None

    times = None
    if "time" in spec:
        tspec = spec["time"]
        times = np.linspace(float(tspec["start"]), float(tspec["stop"]), int(tspec["n"]))
        for roi, rspec in spec["rois"].items():
            if planted[roi] is not None:
                if "peak" not in rspec:
                    raise ValueError(f"config key 'datasets.{name}.rois.{roi}.peak': required with 'time' "
                                     "(the latency in seconds at which the planted signal peaks)")
                planted[roi].update(peak=float(rspec["peak"]), width=float(rspec.get("width", 0.05)))

    blocks, subj, roi_of, xyz = [], [], [], []
    for s in range(int(spec.get("subjects", 3))):
        for i, (roi, rspec) in enumerate(spec["rois"].items()):
            v = int(rspec["voxels"])
            if planted[roi] is None:
                signal = np.zeros((n_stim, v))
            else:
                x = layers_by_model[planted[roi]["model"]][planted[roi]["layer_index"]].values.astype(np.float64)
                signal = planted_signal(x, v, rng)
            if times is None:
                noise = rng.standard_normal((n_stim, v, n_rep)) * noise_sd
                blocks.append(signal[..., None] + noise)
            else:
                profile = np.zeros_like(times) if planted[roi] is None else np.exp(
                    -0.5 * ((times - planted[roi]["peak"]) / planted[roi]["width"]) ** 2)
                noise = rng.standard_normal((n_stim, v, n_rep, len(times))) * noise_sd
                blocks.append(signal[:, :, None, None] * profile + noise)
            subj += [f"sub-{s + 1:02d}"] * v
            roi_of += [roi] * v
            rng.uniform(-1, 1, size=(v, 3))  # kept so the signals and noise of earlier versions are unchanged
            xyz.append(grid_sphere(_centre(i, rspec), v))
    values = np.concatenate(blocks, axis=1)
    xyz = np.concatenate(xyz)
    dims = ("stimulus", "neuroid", "repetition") + (("time",) if times is not None else ())
    brain = xr.Dataset(
        {"responses": (dims, values)},
        coords={
            "stimulus_id": ("stimulus", ids),
            "subject": ("neuroid", np.asarray(subj)),
            "roi": ("neuroid", np.asarray(roi_of)),
            "x": ("neuroid", xyz[:, 0]), "y": ("neuroid", xyz[:, 1]), "z": ("neuroid", xyz[:, 2]),
            "repetition": np.arange(n_rep),
        },
    )
    if times is not None:
        brain = brain.assign_coords(time=("time", times, {"units": "s"}))
    brain = align_to(brain, given_ids, what=f"dataset '{name}'")
    for label in stimuli.attrs.get("condition_columns", "").split(","):
        if label and label in stimuli.coords:
            brain = brain.assign_coords({label: ("stimulus", stimuli[label].values)})
    brain["x"].attrs.update(units="mm", space="MNI152")
    brain["y"].attrs.update(units="mm", space="MNI152")
    brain["z"].attrs.update(units="mm", space="MNI152")
    brain.attrs.update({
        "dataset_kind": "simulated",
        "planted": json.dumps(planted, sort_keys=True),
        "snr": float(spec.get("snr", 0.5)),
        "simulation_seed": seed,
        "coordinate_space": "MNI152",
        "dataset_checksum": array_checksum(values, ids),
    })
    return brain
