"""The encoding job: cross-validated ridge from each layer to every target (voxel, sensor,
neuron), per-target held-out r, R^2, alphas and noise ceilings, and their ROI summaries."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..datasets.contract import subject_roi_cells
from ..metrics import encoding
from ..metrics.backend import resolve_dtype
from .common import across_subject_ci, layer_coords


def _stimulus_labels(brain: xr.Dataset, settings: dict, key: str):
    """A stimulus coordinate named by ``metrics.encoding.<key>`` (groups, split), or None."""
    name = settings.get(key)
    if not name:
        return None
    if name not in brain.coords or brain[name].dims != ("stimulus",):
        available = sorted(k for k, c in brain.coords.items() if c.dims == ("stimulus",))
        raise ValueError(f"metrics.encoding.{key}: '{name}' is not a stimulus coordinate of the brain data "
                         f"(available: {available})")
    return brain[name].values.astype(str)


def run_encoding(layers, brain: xr.Dataset, settings: dict, seed: int) -> xr.Dataset:
    """Ridge per subject (all its targets at once): per-target held-out r, R^2,
    chosen alphas and noise ceilings, and their per-ROI summaries."""
    import torch

    from ..metrics import ceiling as ceilings

    resp = brain["responses"]
    if "time" in resp.dims:
        raise ValueError("metric 'encoding' does not take time-resolved data yet; select a time window "
                         "or use 'rsa' for MEG/EEG")
    resp = resp.transpose("stimulus", "neuroid", ...)
    reps = resp.transpose("repetition", "stimulus", "neuroid").values if "repetition" in resp.dims else None
    mean = resp.mean("repetition") if "repetition" in resp.dims else resp
    y_all = mean.values.astype(np.float64)
    groups = _stimulus_labels(brain, settings, "groups")
    split = _stimulus_labels(brain, settings, "split")
    method = settings.get("ceiling", "split_half")
    dtype = resolve_dtype(settings.get("dtype"), default=torch.float32)
    subject_of = brain["subject"].values.astype(str)
    n_layers, n_targets = len(layers), y_all.shape[1]
    folds = len(outer_splits_for(len(y_all), settings, seed, groups, split))
    r = np.full((n_layers, n_targets), np.nan)
    r2 = np.full((n_layers, n_targets), np.nan)
    alphas = np.full((n_layers, folds, n_targets), np.nan)
    ceiling_r = np.full(n_targets, np.nan)
    ceiling_r2 = np.full(n_targets, np.nan)
    if reps is not None and reps.shape[0] >= 2 and method != "none":
        nc = ceilings.noise_ceiling(reps.astype(np.float64), method=method, rng=seed)
        ceiling_r, ceiling_r2 = nc["r"], nc["r2"]
    subjects = np.unique(subject_of)
    jobs = [(li, s) for li in range(n_layers) for s in subjects]
    for li, s in tqdm(jobs, desc="encoding", unit="fit"):
        cols = np.flatnonzero(subject_of == s)
        result = encoding.cross_validated_encoding(
            layers[li].values, y_all[:, cols], settings["alphas"],
            outer_folds=int(settings.get("outer_folds", 5)), inner_folds=settings.get("inner_folds", 5),
            seed=seed, groups=groups, split=split, standardize=settings.get("standardize", True),
            pca=settings.get("pca"), delays=settings.get("delays"), dtype=dtype,
            device=settings.get("device", "auto"))
        r[li, cols], r2[li, cols], alphas[li, :, cols] = result.r, result.r2, result.alphas.T
    with np.errstate(invalid="ignore", divide="ignore"):
        ceiled = np.where(ceiling_r > 0, r / ceiling_r, np.nan)
    # subject and roi become target_subject / target_roi: the scores file also has subject and roi dims
    rename = {"subject": "target_subject", "roi": "target_roi"}
    neuroid_coords = {rename.get(name, name): ("neuroid", c.values)
                      for name, c in brain.coords.items() if c.dims == ("neuroid",)}
    out = xr.Dataset(
        {"target_r": (("layer", "neuroid"), r), "target_r2": (("layer", "neuroid"), r2),
         "target_alpha": (("layer", "fold", "neuroid"), alphas),
         "target_ceiling_r": (("neuroid",), ceiling_r), "target_ceiling_r2": (("neuroid",), ceiling_r2),
         "target_r_ceiled": (("layer", "neuroid"), ceiled)},
        coords={**layer_coords(layers), **neuroid_coords})
    for name in ("x", "y", "z"):
        if name in out.coords:
            out[name].attrs.update(brain[name].attrs)
            # the data's voxel grid (volumes.GRID_ATTRS), also from brain files that kept it on the Dataset only
            out[name].attrs.update({k: brain.attrs[k] for k in ("affine", "grid_shape")
                                    if brain.attrs.get(k) is not None and k not in brain[name].attrs})
    out["target_r"].attrs["description"] = "held-out Pearson r per target, each stimulus predicted by the fold that held it out"
    out["target_r2"].attrs["description"] = "held-out R^2 per target (can be negative)"
    out["target_alpha"].attrs["description"] = "ridge penalty chosen by inner cross-validation, per outer fold"
    out["target_ceiling_r"].attrs["description"] = (
        f"noise ceiling on r for the repetition mean ({method})" if np.isfinite(ceiling_r).any()
        else "not computed (needs at least 2 repetitions, or ceiling: none)")
    out["target_r_ceiled"].attrs["description"] = "target_r / target_ceiling_r (NaN where the ceiling is 0)"
    return out


def outer_splits_for(n, settings, seed, groups, split):
    return encoding.outer_splits(n, int(settings.get("outer_folds", 5)), seed, groups=groups, split=split)


def encoding_summary(targets: xr.Dataset, settings: dict):
    """Per (layer, subject, roi) summaries (median or mean over targets) of r, R^2,
    the ceiling and the ceiled score (summary r / summary ceiling, as Brain-Score)."""
    summary = np.nanmedian if settings.get("roi_summary", "median") == "median" else np.nanmean
    subjects, rois, cells = subject_roi_cells(targets["target_subject"].values, targets["target_roi"].values)
    n_layers = targets.sizes["layer"]
    out = {k: np.full((n_layers, len(subjects), len(rois)), np.nan) for k in ("score", "score_r2", "score_ceiled")}
    ceiling = np.full((len(subjects), len(rois)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN ceilings
        for i, j, cols in cells:
            out["score"][:, i, j] = summary(targets["target_r"].values[:, cols], axis=1)
            out["score_r2"][:, i, j] = summary(targets["target_r2"].values[:, cols], axis=1)
            ceiling[i, j] = summary(targets["target_ceiling_r"].values[cols])
            if ceiling[i, j] > 0:
                out["score_ceiled"][:, i, j] = out["score"][:, i, j] / ceiling[i, j]
    return out, ceiling, subjects, rois


def score_encoding(layers, brain, settings, *, metric="encoding", rng=None, seed=0,
                   confidence=0.95) -> xr.Dataset:
    """Encoding scores: ROI summaries per subject with across-subject CIs, plus
    every target's r, R^2, alphas and ceiling (for maps)."""
    targets = run_encoding(layers, brain, settings, seed)
    summaries, ceiling, subjects, rois = encoding_summary(targets, settings)
    mean, low, high = across_subject_ci(summaries["score"], confidence)
    ceiled_mean, ceiled_low, ceiled_high = across_subject_ci(summaries["score_ceiled"], confidence)
    nan = np.full(mean.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        c_low, c_high = np.nanmin(ceiling, axis=0), np.nanmax(ceiling, axis=0)
    grid = ("layer", "roi")
    result = xr.Dataset(
        {"score": (("layer", "subject", "roi"), summaries["score"]),
         "score_r2": (("layer", "subject", "roi"), summaries["score_r2"]),
         "score_ceiled": (("layer", "subject", "roi"), summaries["score_ceiled"]),
         "score_mean": (grid, mean), "ci_low": (grid, low), "ci_high": (grid, high),
         "score_ceiled_mean": (grid, ceiled_mean), "score_ceiled_ci_low": (grid, ceiled_low),
         "score_ceiled_ci_high": (grid, ceiled_high),
         "p_value": (grid, nan), "boot_ci_low": (grid, nan), "boot_ci_high": (grid, nan),
         "ceiling": (("subject", "roi"), ceiling),
         "ceiling_low": (("roi",), c_low), "ceiling_high": (("roi",), c_high)},
        coords={**layer_coords(layers), "subject": subjects, "roi": rois})
    result = xr.merge([result, targets], compat="override", join="exact", combine_attrs="override")
    summary = settings.get("roi_summary", "median")
    result["ci_low"].attrs["description"] = f"{confidence:.0%} Student-t interval across subjects"
    result["score"].attrs["description"] = f"{summary} over the ROI's targets of the held-out Pearson r"
    result["score_ceiled"].attrs["description"] = (
        f"score / ceiling: the ROI's {summary} r over its {summary} noise ceiling on r")
    result["ceiling_low"].attrs["description"] = (
        f"lowest and highest subject's {summary} noise ceiling on r ({settings.get('ceiling', 'split_half')})")
    result["p_value"].attrs["description"] = "not computed for encoding"
    result["boot_ci_low"].attrs["description"] = "not computed for encoding"
    result.attrs.update(n_permutations=0, n_bootstrap=0, higher_is_better=1,
                        ceiling_method=settings.get("ceiling", "split_half"),
                        outer_cv=("fixed split" if settings.get("split") else
                                  f"{settings.get('outer_folds', 5)}-fold" +
                                  (f" grouped by {settings['groups']}" if settings.get("groups") else "")),
                        inner_cv=str(settings.get("inner_folds", 5)))
    return result


