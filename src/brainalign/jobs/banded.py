"""One banded-encoding job: several feature spaces (layers of one or more models)
against one dataset, with variance partitioning.

For every subject, the outer folds of :func:`brainalign.metrics.encoding.outer_splits`
hold out stimuli. On each training set every band is standardised (and reduced by
PCA when asked) on the training rows alone, then three kinds of model are fitted
with inner cross-validation: all bands together (banded ridge, a weight per band
on a simplex grid and an alpha per target), and every model that leaves one band
out. Held-out R^2 of these gives each band's unique variance and the shared rest.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from ..datasets.contract import subject_roi_cells
from ..io import provenance, read_activations, read_netcdf, write_netcdf
from ..metrics import banded, encoding, ridge
from ..metrics.backend import one_thread_if_small, resolve_dtype
from ..stimuli import align_to


def _select_layer(layers, layer, where: str):
    for da in layers:
        if str(da["layer"].item()) == str(layer) or (isinstance(layer, int) and int(da["layer_index"]) == layer):
            return da
    names = [str(da["layer"].item()) for da in layers]
    raise ValueError(f"{where}: no layer {layer!r} (layers: {names})")


def _fit_predict(xs_train, y_train, xs_test, alphas, gammas, cv, dtype, device):
    """Held-out predictions of banded ridge (or plain ridge for one band)."""
    if len(xs_train) == 1:
        fit = ridge.ridge_cv(xs_train[0], y_train, alphas, cv, dtype=dtype, device=device)
        return fit.predict(xs_test[0]).cpu().numpy(), fit.alphas, np.ones((1, y_train.shape[1]))
    with one_thread_if_small(len(y_train) * sum(x.shape[1] for x in xs_train), device):
        fit = banded.banded_ridge_cv(xs_train, y_train, alphas, gammas, cv, dtype=dtype, device=device)
        return fit.predict(xs_test).cpu().numpy(), fit.alphas, fit.gammas


def banded_encoding(features: dict, brain: xr.Dataset, settings: dict, n_points: int = 11,
                    seed: int = 0) -> xr.Dataset:
    """Held-out R^2 of the joint and leave-one-band-out models per target, the
    variance partition, chosen band weights, and ROI medians per subject."""
    names = list(features)
    if len(names) < 2:
        raise ValueError("banded encoding needs at least 2 bands")
    resp = brain["responses"]
    if "time" in resp.dims:
        raise ValueError("banded encoding does not take time-resolved data")
    y_all = (resp.mean("repetition") if "repetition" in resp.dims else resp).transpose("stimulus", "neuroid").values
    y_all = y_all.astype(np.float64)
    dtype = resolve_dtype(settings.get("dtype"), default=torch.float32)
    device = settings.get("device", "auto")
    alphas = settings["alphas"]
    gammas = banded.simplex_grid(len(names), n_points)
    subsets = {"joint": names, **{f"without_{b}": [n for n in names if n != b] for b in names}}
    folds = encoding.outer_splits(len(y_all), int(settings.get("outer_folds", 5)), seed)
    subject_of = brain["subject"].values.astype(str)
    r2 = {key: np.full(y_all.shape[1], np.nan) for key in subsets}
    gamma = np.full((len(names), y_all.shape[1]), np.nan)
    for s in tqdm(np.unique(subject_of), desc="banded encoding", unit="subject"):
        cols = np.flatnonzero(subject_of == s)
        y = y_all[:, cols]
        fold_r2 = {key: [] for key in subsets}
        fold_gamma = []
        for train, test in folds:
            pre = {b: encoding.Preprocessor(settings.get("standardize", True), settings.get("pca")).fit(
                features[b][train]) for b in names}
            x_train = {b: pre[b].transform(features[b][train]) for b in names}
            x_test = {b: pre[b].transform(features[b][test]) for b in names}
            cv = encoding.inner_splits(len(train), settings.get("inner_folds", 5), seed)
            for key, bands in subsets.items():
                pred, _, g = _fit_predict([x_train[b] for b in bands], y[train], [x_test[b] for b in bands],
                                          alphas, gammas, cv, dtype, device)
                fold_r2[key].append(encoding.r2_columns(y[test], pred))
                if key == "joint":
                    fold_gamma.append(g)
        for key in subsets:
            r2[key][cols] = np.mean(fold_r2[key], axis=0)
        gamma[:, cols] = np.mean(fold_gamma, axis=0)
    partition = banded.variance_partition(
        {tuple(bands): r2[key] for key, bands in subsets.items()})
    neuroid = {("target_" + k if k in ("subject", "roi") else k): ("neuroid", c.values)
               for k, c in brain.coords.items() if c.dims == ("neuroid",)}
    out = xr.Dataset(
        {"r2_joint": ("neuroid", r2["joint"]),
         "r2_without": (("band", "neuroid"), np.stack([r2[f"without_{b}"] for b in names])),
         "unique": (("band", "neuroid"), np.stack([partition["unique"][b] for b in names])),
         "shared": ("neuroid", partition["shared"]),
         "gamma": (("band", "neuroid"), gamma)},
        coords={"band": names, **neuroid})
    # ROI medians per subject
    subjects, rois, cells = subject_roi_cells(subject_of, brain["roi"].values)
    summary = {k: np.full((len(subjects), len(rois)), np.nan) for k in ("joint", "shared")}
    unique = np.full((len(names), len(subjects), len(rois)), np.nan)
    for i, j, cols in cells:
        summary["joint"][i, j] = np.median(r2["joint"][cols])
        summary["shared"][i, j] = np.median(partition["shared"][cols])
        unique[:, i, j] = np.median(out["unique"].values[:, cols], axis=1)
    out["roi_r2_joint"] = (("subject", "roi"), summary["joint"])
    out["roi_shared"] = (("subject", "roi"), summary["shared"])
    out["roi_unique"] = (("band", "subject", "roi"), unique)
    out = out.assign_coords(subject=subjects, roi=rois)
    out["unique"].attrs["description"] = "R^2(all bands) - R^2(all bands but this one), held out"
    out["shared"].attrs["description"] = "R^2(all bands) - sum of the unique parts"
    out["gamma"].attrs["description"] = "band weights chosen by inner CV (mean over outer folds)"
    out["roi_unique"].attrs["description"] = "median over the ROI's targets of the unique R^2"
    return out


def banded_file(entry: dict, activation_paths: dict, brain_path, out_path, settings: dict, *, seed: int = 0):
    """File-level entry point of the ``banded_encoding`` rule."""
    brain = read_netcdf(brain_path)
    ids = brain["stimulus_id"].values.astype(str)
    dropped = bool(brain.attrs.get("n_stimuli_dropped"))  # a dataset that covers part of its stimulus set
    features = {}
    for band, spec in entry["bands"].items():
        layers, _ = read_activations(activation_paths[spec["model"]])
        da = _select_layer(layers, spec["layer"], f"banded_encoding '{entry['name']}' band '{band}'")
        features[band] = align_to(da, ids, what=str(activation_paths[spec["model"]]), subset=dropped
                                  ).values.astype(np.float64)
    result = banded_encoding(features, brain, settings, int(entry.get("n_points", 11)), seed)
    result.attrs.update(provenance({"banded": entry, "encoding": settings}, seed=seed, name=entry["name"],
                                   dataset=entry["dataset"], bands=json.dumps(entry["bands"], sort_keys=True),
                                   dataset_checksum=brain.attrs.get("dataset_checksum", "")))
    return write_netcdf(result, out_path)
