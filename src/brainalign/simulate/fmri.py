"""Simulated fMRI runs: 4D NIfTI in MNI space with BIDS events, and a planted answer.

For every subject and run, each stimulus is shown once (in a seeded random order,
with jittered gaps). A voxel's response to a stimulus is a random linear mixture
of one model layer's features (:func:`~brainalign.datasets.simulated.planted_signal`)
for voxels in a planted ROI, and zero elsewhere. The BOLD series is

    baseline x (1 + amplitude% x [X @ responses] + drift) + AR(1) noise,

with ``X`` the design of nilearn's Glover HRF (``make_first_level_design_matrix``),
slow drift from low-frequency cosines and a linear trend, and Gaussian AR(1)
noise. Each trial's response also varies around the stimulus's (``trial_sd``).
The ROIs are the dataset's own ``rois`` entry, drawn on nilearn's MNI152 template
grid, so the adapter reads back exactly the voxels that carry the signal.

Files (BIDS layout): ``sub-XX/func/sub-XX_task-<task>_run-N_bold.nii.gz`` (int16
with scaling, like scanner data), its ``_bold.json`` sidecar (RepetitionTime) and
``_events.tsv`` (onset, duration, trial_type, stimulus_id), plus
``dataset_description.json`` and ``planted.json``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..datasets.nifti_rois import roi_labels
from ..datasets.simulated import planted_signal
from ..io import atomic_path, read_activations
from ..stimuli import align_to

DEFAULTS = {
    "subjects": 3,
    "runs": 2,
    "t_r": 2.0,
    "resolution": 4,
    "stimulus_duration": 2.0,
    "iti": [1.0, 3.0],
    "amplitude": 1.0,      # % signal change of a planted voxel's response (sd over stimuli)
    "snr": 4.0,            # response variance / noise variance per volume
    "trial_sd": 0.3,       # trial-to-trial variability, in units of the response sd
    "ar1": 0.3,
    "drift": 1.0,          # % signal change of the slow drift (sd)
}


def _layer_features(activations: dict, model: str, layer: int, ids, key: str) -> tuple[np.ndarray, str]:
    """The (stimulus x unit) features of one layer, in ``ids`` order, and the layer's name."""
    if model not in activations:
        raise ValueError(f"config key '{key}.model': no activations of '{model}'")
    layers, _ = read_activations(activations[model])
    for da in layers:
        if int(da["layer_index"]) == int(layer):
            return align_to(da, ids, what=str(activations[model])).values.astype(np.float64), str(da["layer"].item())
    raise ValueError(f"config key '{key}.layer': model '{model}' has no layer index {layer}")


def _schedule(ids: np.ndarray, sim: dict, rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    """One run's events (every stimulus once) and its number of volumes."""
    order = rng.permutation(len(ids))
    lo, hi = sim["iti"]
    gaps = rng.uniform(lo, hi, len(ids))
    duration = float(sim["stimulus_duration"])
    onsets = 6.0 + np.concatenate([[0.0], np.cumsum(duration + gaps[:-1])])
    n_vols = int(np.ceil((onsets[-1] + duration + 20.0) / sim["t_r"]))
    events = pd.DataFrame({"onset": np.round(onsets, 3), "duration": duration, "trial_type": "sentence",
                           "stimulus_id": ids[order]})
    return events, n_vols


def _design(events: pd.DataFrame, n_vols: int, t_r: float) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(n_vols) * t_r
    trial_events = events.assign(trial_type=events["stimulus_id"])[["onset", "duration", "trial_type"]]
    return make_first_level_design_matrix(frame_times, trial_events, hrf_model="glover", drift_model=None)


def _ar1(shape, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary unit-variance AR(1) noise along the first axis (time)."""
    from scipy.signal import lfilter

    white = rng.standard_normal(shape)
    white[0] /= np.sqrt(1 - rho ** 2)  # start from the stationary distribution
    return lfilter([np.sqrt(1 - rho ** 2)], [1.0, -rho], white, axis=0)


def _drift(n_vols: int, t_r: float, n_vox: int, rng: np.random.Generator) -> np.ndarray:
    """Slow drift (time x voxel), unit sd: a linear trend and cosines with periods > 200 s."""
    t = np.arange(n_vols) * t_r
    duration = n_vols * t_r
    basis = [np.linspace(-1, 1, n_vols)]
    basis += [np.cos(np.pi * k * (t + t_r / 2) / duration) for k in range(1, int(duration / 200) + 1)]
    basis = np.stack(basis, 1)
    drift = basis @ rng.standard_normal((basis.shape[1], n_vox))
    return drift / drift.std(0, keepdims=True).clip(1e-12)


def _write_nifti(values: np.ndarray, affine: np.ndarray, t_r: float, path: Path) -> None:
    """int16 NIfTI with scale factors (like scanner output), gzipped, written atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(values.astype(np.float32), affine)
    img.header.set_data_dtype(np.int16)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms(img.header.get_zooms()[:3] + (float(t_r),))
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(img.to_bytes(), compresslevel=6, mtime=0))


def _write_text(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write(name: str, spec: dict, stimuli: xr.Dataset, activations: dict, out_dir, seed: int = 0) -> list[Path]:
    """Write the simulated runs of ``datasets.<name>`` (its ``simulate`` and ``rois`` entries)
    into ``out_dir``; returns the written paths."""
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_gm_mask, load_mni152_template
    from tqdm.auto import tqdm

    sim = {**DEFAULTS, **spec.get("simulate", {})}
    key = f"datasets.{name}.simulate"
    out_dir = Path(out_dir)
    task = spec.get("task", name)
    t_r = float(sim["t_r"])
    ids = np.sort(stimuli["stimulus_id"].values.astype(str))

    template = load_mni152_template(resolution=int(sim["resolution"]))
    affine, shape = template.affine, template.shape[:3]
    resolution = int(sim["resolution"])
    brain = ((np.asarray(load_mni152_brain_mask(resolution=resolution).dataobj) > 0)
             | (np.asarray(load_mni152_gm_mask(resolution=resolution).dataobj) > 0))
    t1 = np.asarray(template.dataobj, dtype=np.float64)
    baseline = 400.0 + 600.0 * t1[brain] / t1[brain].max()  # grey/white/CSF contrast, roughly
    labels, names = roi_labels(spec["rois"], affine, shape, key=f"datasets.{name}.rois", base_dir=None)
    in_brain_labels = labels[brain]

    planted = {}
    for roi, p in sim.get("planted", {}).items():
        if roi not in names:
            raise ValueError(f"config key '{key}.planted.{roi}': no such ROI in datasets.{name}.rois "
                             f"(ROIs: {names})")
        features, layer_name = _layer_features(activations, p["model"], p["layer"], ids, f"{key}.planted.{roi}")
        planted[roi] = {"model": p["model"], "layer_index": int(p["layer"]), "layer": layer_name,
                        "features": features}

    written = []
    n_subjects, n_runs = int(sim["subjects"]), int(sim["runs"])
    noise_sd = float(sim["amplitude"]) / np.sqrt(float(sim["snr"]))
    progress = tqdm(total=n_subjects * n_runs, desc=f"simulate {name}", unit="run")
    for s in range(n_subjects):
        subject = f"sub-{s + 1:02d}"
        rng = np.random.default_rng([int(seed), s])
        responses = np.zeros((len(ids), int(brain.sum())))  # stimulus x in-brain voxel, unit sd
        for roi, p in planted.items():
            cols = np.flatnonzero(in_brain_labels == names.index(roi) + 1)
            responses[:, cols] = planted_signal(p["features"], len(cols), rng)
        signal_cols = np.flatnonzero(np.abs(responses).sum(0) > 0)
        for r in range(n_runs):
            events, n_vols = _schedule(ids, sim, rng)
            design = _design(events, n_vols, t_r)[list(ids)].to_numpy()
            trial = responses[:, signal_cols]
            trial = trial + float(sim["trial_sd"]) * rng.standard_normal(trial.shape)
            percent = float(sim["drift"]) * _drift(n_vols, t_r, brain.sum(), rng)
            percent += noise_sd * _ar1((n_vols, int(brain.sum())), float(sim["ar1"]), rng)
            percent[:, signal_cols] += float(sim["amplitude"]) * design @ trial
            series = np.zeros(shape + (n_vols,), dtype=np.float32)
            series[brain] = (baseline * (1 + percent / 100.0)).T
            stem = out_dir / subject / "func" / f"{subject}_task-{task}_run-{r + 1}"
            _write_nifti(series, affine, t_r, Path(f"{stem}_bold.nii.gz"))
            _write_text(json.dumps({"RepetitionTime": t_r, "TaskName": task}, indent=2),
                        Path(f"{stem}_bold.json"))
            _write_text(events.to_csv(sep="\t", index=False, lineterminator="\n"), Path(f"{stem}_events.tsv"))
            written += [Path(f"{stem}_bold.nii.gz"), Path(f"{stem}_bold.json"), Path(f"{stem}_events.tsv")]
            progress.update()
    progress.close()
    description = {"Name": f"brainalign simulation '{name}'", "BIDSVersion": "1.9.0", "DatasetType": "raw",
                   "GeneratedBy": [{"Name": "brainalign.simulate.fmri"}]}
    _write_text(json.dumps(description, indent=2), out_dir / "dataset_description.json")
    truth = {"planted": {roi: {k: p[k] for k in ("model", "layer_index", "layer")} for roi, p in planted.items()},
             "seed": int(seed), **{k: v for k, v in sim.items() if k != "planted"}}
    _write_text(json.dumps(truth, indent=2, sort_keys=True), out_dir / "planted.json")
    return written + [out_dir / "dataset_description.json", out_dir / "planted.json"]
