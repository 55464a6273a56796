"""What every score job shares: reading a model and a dataset aligned on ``stimulus_id``,
the (subject, ROI) blocks of brain responses, the across-subject interval, and the
``layer`` coordinates of the scores contract."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats as scipy_stats

from ..datasets.contract import check_brain, subject_roi_cells
from ..io import is_rdm_file, read_activations, read_netcdf
from ..stimuli import StimulusError, align_to


def load_inputs(activations_path, brain_path):
    """Read activations (or model RDMs) and brain data, aligned on the brain's
    ``stimulus_id`` order. Model RDMs come back as one (layer, stimulus, stimulus_)
    DataArray instead of a list of layers."""
    brain = check_brain(read_netcdf(brain_path), what=str(brain_path))
    ids = brain["stimulus_id"].values.astype(str)
    try:
        if is_rdm_file(activations_path):
            model = read_netcdf(activations_path)
            rdm = align_to(model["rdm"], ids, what=str(activations_path))
            position = pd.Index(model["stimulus_id"].values.astype(str)).get_indexer(ids)
            return rdm.isel(stimulus_=position), dict(model.attrs), brain
        layers, model_attrs = read_activations(activations_path)
        layers = [align_to(da, ids, what=str(activations_path)) for da in layers]
    except StimulusError as exc:
        raise StimulusError(f"{exc} (brain data: {brain_path})") from None
    return layers, model_attrs, brain


def brain_blocks(brain: xr.Dataset):
    """Repetition-averaged responses per (subject, roi): dict and sorted labels."""
    resp = brain["responses"]
    if "repetition" in resp.dims:
        resp = resp.mean("repetition")
    resp = resp.transpose("stimulus", "neuroid", ...)
    subjects, rois, cells = subject_roi_cells(brain["subject"].values, brain["roi"].values)
    blocks = {(subjects[i], rois[j]): resp.values[:, idx].astype(np.float64) for i, j, idx in cells}
    return blocks, subjects, rois


def across_subject_ci(score: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over subjects and its Student-t confidence interval, per (layer, roi)."""
    n = np.sum(np.isfinite(score), axis=1)
    with warnings.catch_warnings():  # all-NaN or single-subject cells give NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(score, axis=1)
        sd = np.nanstd(score, axis=1, ddof=1) if score.shape[1] > 1 else np.full(mean.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = scipy_stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n > 1, half, np.nan)
    return mean, mean - half, mean + half


def layer_coords(layers) -> dict:
    """``layer``, ``layer_index`` and ``depth`` coordinates of activations or model RDMs."""
    if isinstance(layers, xr.DataArray):
        return {"layer": ("layer", layers["layer"].values.astype(str)),
                "layer_index": ("layer", layers["layer_index"].values.astype(int)),
                "depth": ("layer", layers["depth"].values.astype(float))}
    return {"layer": ("layer", [str(da["layer"].item()) for da in layers]),
            "layer_index": ("layer", [int(da["layer_index"]) for da in layers]),
            "depth": ("layer", [float(da["depth"]) for da in layers])}




def scores_dataset(per_subject: np.ndarray, layers, subjects, rois, confidence: float = 0.95, *,
                   higher_is_better: bool = True) -> xr.Dataset:
    """The scores contract from one ``(layer, subject, roi)`` array: the per-subject scores, the
    subject mean with its Student-t interval, and NaN where a metric gives no permutation p value,
    bootstrap interval or noise ceiling (a scorer fills those it has). What a new metric's scorer
    returns when all it computes is a score per layer x subject x ROI."""
    mean, low, high = across_subject_ci(per_subject, confidence)
    grid = ("layer", "roi")
    def nan():  # one array per variable: a scorer fills them in place
        return np.full(mean.shape, np.nan)

    result = xr.Dataset(
        {"score": (("layer", "subject", "roi"), per_subject), "score_mean": (grid, mean),
         "ci_low": (grid, low), "ci_high": (grid, high), "p_value": (grid, nan()),
         "boot_ci_low": (grid, nan()), "boot_ci_high": (grid, nan()),
         "ceiling_low": (("roi",), np.full(len(rois), np.nan)), "ceiling_high": (("roi",), np.full(len(rois), np.nan))},
        coords={**layer_coords(layers), "subject": list(subjects), "roi": list(rois)})
    result["ci_low"].attrs["description"] = f"{confidence:.0%} Student-t interval across subjects"
    result["p_value"].attrs["description"] = "not computed for this metric"
    result["boot_ci_low"].attrs["description"] = "not computed for this metric"
    result.attrs.update(n_permutations=0, n_bootstrap=0, higher_is_better=int(higher_is_better))
    return result
