"""``nifti_events``: 4D NIfTI runs with BIDS ``events.tsv`` -> single-trial betas per ROI voxel.

For every subject, each run is fitted with nilearn's ``FirstLevelModel`` (Glover
HRF, cosine drift, AR(1) noise, percent-signal scaling by default):

- ``lsa`` (default): one regressor per trial, all in one model;
- ``lss``: one model per trial, with that trial against all other trials of the
  run (Mumford et al. 2012); slower, steadier when trials are close in time.

Rows of ``events.tsv`` whose stimulus id is empty (``n/a``) are modelled as
nuisance events, one regressor per ``trial_type``. The GLM sees only the voxels
of the brain mask (nilearn's MNI152 grey-matter mask by default) that lie in an
ROI (:mod:`.nifti_rois`). The k-th trial of a stimulus, in run order, is
repetition k. Voxels with NaN or constant signal in any run are dropped with a
warning (counted in attrs) or refused, as ``bad_voxels`` says.

Runs are found under ``root`` (``sub-*/[ses-*/]func/*_task-<task>_*bold.nii[.gz]``;
events beside each run with the same entities up to ``run``, confounds as
fMRIPrep's ``*_desc-confounds_timeseries.tsv``), or listed explicitly in ``runs``.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io import array_checksum
from .contract import BrainDataError
from .nifti_rois import roi_labels, voxel_coordinates
from .trials import check_known_stimuli, stack_repetitions

GLM_DEFAULTS = {"method": "lsa", "hrf_model": "glover", "drift_model": "cosine", "high_pass": 0.01,
                "noise_model": "ar1", "signal_scaling": 0, "smoothing_fwhm": None, "output": "effect_size"}
DERIVED_ENTITIES = ("space", "res", "den", "desc")


@dataclass
class Run:
    subject: str
    bold: Path
    events: Path
    confounds: Path | None = None
    sidecar: Path | None = None
    label: str = ""
    trials: pd.DataFrame = field(default=None, repr=False)


def _resolve(path, base: Path | None) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _entities_stem(bold: Path) -> str:
    """``sub-01_task-x_run-1`` from ``sub-01_task-x_run-1_space-MNI_desc-preproc_bold.nii.gz``."""
    name = re.sub(r"_bold\.nii(\.gz)?$", "", bold.name)
    return "_".join(p for p in name.split("_") if p.split("-")[0] not in DERIVED_ENTITIES)


def discover_runs(name: str, spec: dict, base: Path | None) -> list[Run]:
    """The runs of ``datasets.<name>``: from ``runs`` if listed, else from the ``root`` folder."""
    key = f"datasets.{name}"
    if spec.get("runs"):
        runs = []
        for i, r in enumerate(spec["runs"]):
            run = Run(subject=str(r["subject"]), bold=_resolve(r["bold"], base), events=_resolve(r["events"], base),
                      confounds=_resolve(r["confounds"], base) if r.get("confounds") else None,
                      label=f"{key}.runs.{i}")
            for attr in ("bold", "events", "confounds"):
                path = getattr(run, attr)
                if path is not None and not path.exists():
                    raise BrainDataError(f"config key '{key}.runs.{i}.{attr}': file not found: {path}")
            runs.append(run)
        return runs
    root = _resolve(spec["root"], base)
    if not root.is_dir():
        raise BrainDataError(f"config key '{key}.root': folder not found: {root}")
    task = spec.get("task", name)
    bolds = sorted(p for p in root.rglob(f"sub-*_task-{task}_*bold.nii*") if re.search(r"_bold\.nii(\.gz)?$", p.name))
    if spec.get("space"):
        bolds = [b for b in bolds if f"_space-{spec['space']}_" in b.name]
    if not bolds:
        raise BrainDataError(f"config key '{key}.root': no runs 'sub-*_task-{task}_*bold.nii[.gz]' under {root}")
    runs = []
    for bold in bolds:
        stem = _entities_stem(bold)
        subject = re.match(r"sub-([^_]+)", stem).group(0)
        events = bold.parent / f"{stem}_events.tsv"
        if not events.exists():
            found = sorted(root.rglob(f"{stem}_events.tsv"))
            if not found:
                raise BrainDataError(f"{bold}: no events file '{stem}_events.tsv' beside it or under {root}")
            events = found[0]
        confounds = None
        if spec.get("confounds"):
            candidates = [bold.parent / f"{stem}_desc-confounds_{kind}.tsv" for kind in ("timeseries", "regressors")]
            confounds = next((c for c in candidates if c.exists()), None)
            if confounds is None:
                raise BrainDataError(f"config key '{key}.confounds': no confounds file for {bold} "
                                     f"(looked for {candidates[0].name})")
        sidecar = bold.parent / re.sub(r"\.nii(\.gz)?$", ".json", bold.name)
        runs.append(Run(subject=subject, bold=bold, events=events, confounds=confounds,
                        sidecar=sidecar if sidecar.exists() else None, label=str(bold)))
    return runs


def repetition_time(run: Run, img, configured: float | None, key: str) -> float:
    """The TR of one run: the header's (or the BIDS sidecar's), checked against config."""
    found = None
    if run.sidecar is not None:
        found = json.loads(run.sidecar.read_text()).get("RepetitionTime")
    if found is None:
        _, time_unit = img.header.get_xyzt_units()
        zoom = float(img.header.get_zooms()[3]) if len(img.header.get_zooms()) > 3 else 0.0
        if time_unit in ("sec", "msec", "usec") and zoom > 0:
            found = zoom * {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}[time_unit]
    if configured is not None:
        if found is not None and not np.isclose(found, configured, rtol=1e-3):
            raise BrainDataError(f"config key '{key}.t_r' is {configured} s but {run.bold} says the TR is "
                                 f"{found:g} s")
        return float(configured)
    if found is None:
        raise BrainDataError(f"{run.bold}: the TR is missing (no RepetitionTime in a sidecar, no time unit and "
                             f"pixdim[4] in the header); set 'config key {key}.t_r'")
    return float(found)


def read_events(run: Run, stimulus_ids, stimulus_column: str, n_seconds: float) -> pd.DataFrame:
    """Events of one run with a ``trial`` name per stimulus event (nuisance rows separate)."""
    events = pd.read_csv(run.events, sep="\t", na_values=["n/a", ""], keep_default_na=True)
    required = ["onset", "duration", stimulus_column]
    missing = [c for c in required if c not in events.columns]
    if missing:
        raise BrainDataError(f"{run.events}: missing column(s) {missing} (columns: {list(events.columns)})")
    if events[["onset", "duration"]].isna().any().any():
        raise BrainDataError(f"{run.events}: empty onset or duration in row(s) "
                             f"{(np.flatnonzero(events[['onset', 'duration']].isna().any(axis=1)) + 2).tolist()}")
    late = events["onset"] >= n_seconds
    if late.any():
        raise BrainDataError(f"{run.events}: {int(late.sum())} event(s) start at or after the end of the run "
                             f"({n_seconds:g} s of data in {run.bold.name})")
    is_trial = events[stimulus_column].notna()
    events["stimulus_id"] = events[stimulus_column].where(is_trial).astype(object)
    check_known_stimuli(events.loc[is_trial, "stimulus_id"].astype(str), stimulus_ids, str(run.events))
    nuisance = events.get("trial_type", pd.Series("other", index=events.index)).fillna("other").astype(str)
    events["regressor"] = np.where(is_trial, [f"trial_{i:04d}" for i in range(len(events))],
                                   "nuisance_" + nuisance.str.replace(r"\W", "_", regex=True))
    return events.sort_values("onset", kind="stable").reset_index(drop=True)


def _confounds(run: Run, columns, n_vols: int) -> pd.DataFrame | None:
    if run.confounds is None:
        return None
    table = pd.read_csv(run.confounds, sep="\t", na_values=["n/a"])
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BrainDataError(f"{run.confounds}: missing confound column(s) {missing}")
    if len(table) != n_vols:
        raise BrainDataError(f"{run.confounds}: {len(table)} rows, but {run.bold.name} has {n_vols} volumes")
    return table[list(columns)].fillna(0.0)  # fMRIPrep's derivatives start with n/a


def _mask(spec_mask, affine, shape, key: str, base: Path | None) -> np.ndarray:
    import nibabel as nib
    from nilearn import datasets
    from nilearn.image import resample_img

    if spec_mask in (None, "mni152_gm"):
        img = datasets.load_mni152_gm_mask(resolution=max(1, int(round(abs(affine[0, 0])))))
    elif spec_mask == "mni152_brain":
        img = datasets.load_mni152_brain_mask(resolution=max(1, int(round(abs(affine[0, 0])))))
    elif spec_mask == "none":
        return np.ones(shape[:3], dtype=bool)
    else:
        path = _resolve(spec_mask, base)
        if not path.exists():
            raise BrainDataError(f"config key '{key}.mask': mask image not found: {path}")
        img = nib.load(path)
    if not np.allclose(img.affine, affine) or img.shape[:3] != tuple(shape[:3]):
        img = resample_img(img, target_affine=affine, target_shape=shape[:3], interpolation="nearest",
                           force_resample=True, copy_header=True)
    return np.asarray(img.dataobj) > 0


def _check_grid(runs: list[Run], imgs) -> None:
    first = runs[0]
    for run, img in zip(runs, imgs):
        if img.ndim != 4:
            raise BrainDataError(f"{run.bold}: not a 4D image (shape {img.shape})")
        if img.shape[:3] != imgs[0].shape[:3] or not np.allclose(img.affine, imgs[0].affine, atol=1e-3):
            raise BrainDataError(f"{run.bold}: its affine or grid differs from {first.bold} (runs of "
                                 f"{run.subject} must share one voxel grid; resample them first)\n"
                                 f"{np.round(img.affine, 3).tolist()} vs {np.round(imgs[0].affine, 3).tolist()}")


def _good_voxels(series: list[np.ndarray], runs: list[Run], policy: str, key: str) -> tuple[np.ndarray, dict]:
    """Voxels finite and non-constant in every run; drop (warn) or raise."""
    nan = np.zeros(series[0].shape[1], dtype=bool)
    constant = np.zeros_like(nan)
    for s in series:
        bad = ~np.isfinite(s).all(0)
        nan |= bad
        constant |= ~bad & (np.nanstd(np.where(np.isfinite(s), s, np.nan), axis=0) == 0)
    constant &= ~nan
    counts = {"n_voxels_dropped_nan": int(nan.sum()), "n_voxels_dropped_constant": int(constant.sum())}
    if nan.any() or constant.any():
        what = (f"{runs[0].subject}: {int(nan.sum())} ROI voxel(s) with NaN and {int(constant.sum())} with "
                f"constant signal in {', '.join(r.bold.name for r in runs)}")
        if policy == "error":
            raise BrainDataError(f"{what} (config key '{key}.bad_voxels' is 'error'; 'drop' drops them)")
        warnings.warn(f"{what}; dropped them", stacklevel=3)
    return ~(nan | constant), counts


def glm_betas(model) -> pd.DataFrame:
    """Every regressor's estimate (regressor x voxel) of a fitted single-run
    ``FirstLevelModel``, read from its per-AR-bin results (``labels_``, ``results_``) in
    one pass; equal to ``compute_contrast(column, output_type="effect_size")`` per column."""
    labels, results = model.labels_[0], model.results_[0]
    columns = model.design_matrices_[0].columns
    theta = np.empty((len(columns), len(labels)))
    for label, result in results.items():
        theta[:, labels == label] = result.theta
    return pd.DataFrame(theta, index=columns)


def _fit_run(img, events: pd.DataFrame, confounds, mask_img, t_r: float, glm: dict, masker) -> np.ndarray:
    """Trial estimates (trial x voxel, in ``events``' trial order) of one run."""
    from nilearn.glm.first_level import FirstLevelModel
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # many small SVDs: several BLAS threads spin and run 50x slower
        return _fit_glm(FirstLevelModel, img, events, confounds, mask_img, t_r, glm, masker)


def _fit_glm(FirstLevelModel, img, events, confounds, mask_img, t_r, glm, masker):
    params = dict(t_r=t_r, hrf_model=glm["hrf_model"], drift_model=glm["drift_model"],
                  high_pass=glm["high_pass"], noise_model=glm["noise_model"], signal_scaling=glm["signal_scaling"],
                  smoothing_fwhm=glm["smoothing_fwhm"], mask_img=mask_img, minimize_memory=True)
    trials = events.loc[events["stimulus_id"].notna(), "regressor"].tolist()
    design_events = events[["onset", "duration", "regressor"]].rename(columns={"regressor": "trial_type"})

    def estimate(model, names):
        if glm["output"] == "effect_size":  # voxels in the masker's order (C order of the mask)
            return glm_betas(model).loc[names].to_numpy()
        return np.stack([masker(model.compute_contrast(n, output_type=glm["output"])) for n in names])

    if glm["method"] == "lsa":
        return estimate(FirstLevelModel(**params).fit(img, events=design_events, confounds=confounds), trials)
    is_trial = design_events["trial_type"].str.startswith("trial_")
    out = []
    for trial in trials:  # LSS: this trial against all other trials of the run
        lss = design_events.assign(trial_type=np.where(design_events["trial_type"] == trial, trial,
                                                       np.where(is_trial, "other_trials", design_events["trial_type"])))
        out.append(estimate(FirstLevelModel(**params).fit(img, events=lss, confounds=confounds), [trial])[0])
    return np.stack(out)


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, root=None, **_) -> xr.Dataset:
    import nibabel as nib
    from tqdm.auto import tqdm

    key = f"datasets.{name}"
    base = Path(base_dir) if base_dir is not None else None
    if root is not None:
        spec = {**spec, "root": str(root)}
    glm = {**GLM_DEFAULTS, **spec.get("glm", {})}
    stimulus_ids = stimuli["stimulus_id"].values.astype(str)
    runs = discover_runs(name, spec, base)
    subjects = list(dict.fromkeys(r.subject for r in runs))
    blocks, subj, roi_of, xyz, dropped, files = [], [], [], [], {}, []
    affines, shapes, reps = [], [], []
    progress = tqdm(total=len(runs), desc=f"GLM {name}", unit="run")
    for subject in subjects:
        sruns = [r for r in runs if r.subject == subject]
        imgs = [nib.load(r.bold) for r in sruns]
        _check_grid(sruns, imgs)
        affine, shape = imgs[0].affine, imgs[0].shape[:3]
        t_rs = [repetition_time(r, img, spec.get("t_r"), key) for r, img in zip(sruns, imgs)]
        if not np.allclose(t_rs, t_rs[0], rtol=1e-3):
            raise BrainDataError(f"{subject}: inconsistent TRs between runs: " + ", ".join(
                f"{r.bold.name}: {t:g} s" for r, t in zip(sruns, t_rs)))
        labels, names = roi_labels(spec["rois"], affine, shape, key=f"{key}.rois", base_dir=base)
        brain_mask = _mask(spec.get("mask"), affine, shape, key, base)
        labels = np.where(brain_mask, labels, 0)
        empty = [n for k, n in enumerate(names) if not (labels == k + 1).any()]
        if empty:
            raise BrainDataError(f"config key '{key}.rois': ROI(s) {empty} are empty after masking with "
                                 f"'{spec.get('mask', 'mni152_gm')}' on the grid of {sruns[0].bold}")
        in_roi = labels > 0
        series = [np.asarray(img.dataobj, dtype=np.float32)[in_roi].T for img in imgs]  # time x voxel
        keep, counts = _good_voxels(series, sruns, spec.get("bad_voxels", "drop"), key)
        for k, v in counts.items():
            dropped[k] = dropped.get(k, 0) + v
        voxel_mask = np.zeros(shape, dtype=bool)
        voxel_mask[tuple(np.argwhere(in_roi)[keep].T)] = True
        kept_labels = labels[voxel_mask]
        empty = [n for k, n in enumerate(names) if not (kept_labels == k + 1).any()]
        if empty:
            raise BrainDataError(f"config key '{key}.rois': ROI(s) {empty} are empty after dropping NaN and "
                                 f"constant voxels of {subject}")
        mask_img = nib.Nifti1Image(voxel_mask.astype(np.uint8), affine)

        def masker(img, _m=voxel_mask):
            return np.asarray(img.dataobj, dtype=np.float64)[_m]

        trial_values, trial_ids = [], []
        for run, img, t_r in zip(sruns, imgs, t_rs):
            n_vols = img.shape[3]
            events = read_events(run, stimulus_ids, spec.get("stimulus_column", "stimulus_id"), n_vols * t_r)
            confounds = _confounds(run, spec.get("confounds") or [], n_vols)
            clean = nib.Nifti1Image(np.nan_to_num(np.asarray(img.dataobj, dtype=np.float32)), affine, img.header)
            trial_values.append(_fit_run(clean, events, confounds, mask_img, t_r, glm, masker))
            trial_ids += events.loc[events["stimulus_id"].notna(), "stimulus_id"].astype(str).tolist()
            files.append(str(run.bold))
            progress.update()
        values, info = stack_repetitions(np.concatenate(trial_values), trial_ids, stimulus_ids,
                                         what=f"dataset '{name}', {subject}",
                                         unequal=spec.get("unequal_trials", "truncate"))
        dropped["n_trials_dropped"] = dropped.get("n_trials_dropped", 0) + info["n_trials_dropped"]
        blocks.append(values)
        reps.append(values.shape[-1])
        subj += [subject] * values.shape[1]
        roi_of += [names[k - 1] for k in kept_labels]
        xyz.append(voxel_coordinates(affine, shape)[voxel_mask])
        affines.append(affine)
        shapes.append(tuple(int(n) for n in shape))
    progress.close()
    n_rep = min(reps)
    if len(set(reps)) > 1:
        warnings.warn(f"dataset '{name}': subjects have {sorted(set(reps))} repetitions; kept the first {n_rep}",
                      stacklevel=2)
    values = np.concatenate([b[..., :n_rep] for b in blocks], axis=1)
    xyz = np.concatenate(xyz)
    brain = xr.Dataset(
        {"responses": (("stimulus", "neuroid", "repetition"), values)},
        coords={"stimulus_id": ("stimulus", stimulus_ids), "subject": ("neuroid", np.asarray(subj)),
                "roi": ("neuroid", np.asarray(roi_of)), "x": ("neuroid", xyz[:, 0]), "y": ("neuroid", xyz[:, 1]),
                "z": ("neuroid", xyz[:, 2]), "repetition": np.arange(n_rep)},
    )
    space = spec.get("space", "MNI152")
    # The data's own voxel grid (JSON 'affine' 4x4 and 'grid_shape', see volumes.GRID_ATTRS), when all
    # subjects share it: on x, y, z (the encoding job carries their attrs to the scores file, so maps
    # are written on this grid, not on an MNI152 template grid) and on the Dataset.
    grid = {}
    if all(np.allclose(a, affines[0]) for a in affines):
        from ..volumes import grid_attrs

        grid = grid_attrs(affines[0], shapes[0] if len(set(shapes)) == 1 else None)
    for c in "xyz":
        brain[c].attrs.update(units="mm", space=space, **grid)
    brain["responses"].attrs.update(units="% signal change" if glm["signal_scaling"] == 0 and
                                    glm["output"] == "effect_size" else glm["output"],
                                    description=f"single-trial {glm['output']} ({glm['method'].upper()})")
    attrs = {"dataset_kind": "nifti_events", "coordinate_space": space, "t_r": float(t_rs[0]),
             "glm": json.dumps(glm, sort_keys=True), "source_files": ",".join(files),
             "dataset_checksum": array_checksum(values, stimulus_ids), **dropped}
    truth = Path(spec["root"]) / "planted.json" if spec.get("root") else None
    if truth is not None and truth.exists():  # a simulation's planted answer, keyed by ROI
        attrs["planted"] = json.dumps(json.loads(truth.read_text())["planted"], sort_keys=True)
    brain.attrs.update(attrs, **grid)
    return brain
