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
from ..metrics import stats
from ..io import is_rdm_file, read_activations, read_netcdf
from ..stimuli import StimulusError, align_to


def load_inputs(activations_path, brain_path):
    """Read activations (or model RDMs) and brain data, aligned on the brain's
    ``stimulus_id`` order (brain data that dropped stimuli it has no data for, attribute
    ``n_stimuli_dropped``, takes the model's values of the others only). Model RDMs come back
    as one (layer, stimulus, stimulus_) DataArray instead of a list of layers."""
    brain = check_brain(read_netcdf(brain_path), what=str(brain_path))
    ids = brain["stimulus_id"].values.astype(str)
    dropped = bool(brain.attrs.get("n_stimuli_dropped"))  # a dataset that covers part of its stimulus set
    try:
        if is_rdm_file(activations_path):
            model = read_netcdf(activations_path)
            rdm = align_to(model["rdm"], ids, what=str(activations_path), subset=dropped)
            position = pd.Index(model["stimulus_id"].values.astype(str)).get_indexer(ids)
            return rdm.isel(stimulus_=position), dict(model.attrs), brain
        layers, model_attrs = read_activations(activations_path)
        layers = [finite_layer(align_to(da, ids, what=str(activations_path), subset=dropped)) for da in layers]
    except StimulusError as exc:
        raise StimulusError(f"{exc} (brain data: {brain_path})") from None
    return layers, model_attrs, brain


def finite_layer(layer: xr.DataArray) -> xr.DataArray:
    """Features with non-finite entries (a first word's surprisal, which has no context) set to
    their column's mean over the other stimuli (a column without any finite value becomes 0), with
    a boolean ``imputed`` coordinate on ``stimulus`` marking the rows that had one."""
    values = layer.values
    bad = ~np.isfinite(values)
    if not bad.any():
        return layer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nan_to_num(np.nanmean(np.where(bad, np.nan, values), axis=0))
    return layer.copy(data=np.where(bad, means[None, :], values)).assign_coords(
        imputed=("stimulus", bad.any(axis=1)))


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


def add_null(result: xr.Dataset, null: np.ndarray, alpha: float, description: str) -> xr.Dataset:
    """``null_mean``, ``null_low`` and ``null_high`` (the ``alpha`` and ``1 - alpha`` quantiles)
    of the permutation distribution of ``score_mean`` (``null``: (permutation, *score_mean dims)),
    and ``score_corrected = score_mean - null_mean``: the chance level every metric shows
    beside its score (biased measures, such as CKA at p >> n, sit well above 0 under the null)."""
    dims = result["score_mean"].dims
    for name, value in stats.null_summary(null, alpha).items():
        result[name] = (dims, value)
    result["score_corrected"] = result["score_mean"] - result["null_mean"]
    what = (f"{null.shape[0]} permutations of stimulus labels ({description})" if null.shape[0]
            else "not computed (n_permutations = 0)")
    result["null_mean"].attrs["description"] = f"mean of the permutation null of score_mean: {what}"
    result["null_low"].attrs["description"] = f"{alpha:g} quantile of the permutation null of score_mean"
    result["null_high"].attrs["description"] = f"{1 - alpha:g} quantile of the permutation null of score_mean"
    result["score_corrected"].attrs["description"] = "chance-corrected score: score_mean - null_mean"
    result.attrs["alpha"] = float(alpha)
    return result


def add_ceiling(result: xr.Dataset, lower: np.ndarray, upper: np.ndarray, confidence: float,
                chance: np.ndarray, description: str) -> xr.Dataset:
    """Noise-ceiling bounds from per-subject values ``lower`` and ``upper`` (subject, roi[, time]):
    ``ceiling_low``/``ceiling_high`` are their subject means, ``ceiling_ci_low``/``ceiling_ci_high``
    the Student-t interval across subjects of the lower bound minus its chance level ``chance``
    (same shape), and ``ceiling_reliable`` is 1 where that interval excludes 0 -- the only cells
    where a score may be divided by the ceiling."""
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    above = lower - np.asarray(chance, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmean(lower, axis=0), np.nanmean(upper, axis=0)
    _, ci_low, ci_high = across_subject_ci(above[None], confidence)
    dims = result["ceiling_low"].dims
    result["ceiling_low"] = (dims, low)
    result["ceiling_high"] = (dims, high)
    return set_ceiling_interval(result, ci_low[0], ci_high[0], description,
                                f"{confidence:.0%} Student-t interval across subjects of the lower bound's terms "
                                "minus their chance level (subject's stimulus labels shuffled)")


def set_ceiling_interval(result: xr.Dataset, ci_low, ci_high, description: str, interval: str) -> xr.Dataset:
    """Store the ceiling's interval and the ``ceiling_reliable`` flag (interval above 0)."""
    dims = result["ceiling_low"].dims
    result["ceiling_ci_low"] = (dims, np.asarray(ci_low, dtype=np.float64))
    result["ceiling_ci_high"] = (dims, np.asarray(ci_high, dtype=np.float64))
    reliable = np.isfinite(result["ceiling_ci_low"].values) & (result["ceiling_ci_low"].values > 0)
    result["ceiling_reliable"] = (dims, reliable.astype(np.int8))
    result["ceiling_low"].attrs["description"] = description
    result["ceiling_ci_low"].attrs["description"] = interval
    result["ceiling_reliable"].attrs["description"] = (
        "1 where the ceiling's interval excludes 0; a ceiling-normalised score is reported only there")
    return result


def add_heldout_best(result: xr.Dataset, confidence: float = 0.95) -> xr.Dataset:
    """Best-layer selection scored on data it was not chosen on, for every metric: leave one
    subject out (:func:`brainalign.metrics.stats.heldout_best`). ``best_heldout`` (roi) is the
    mean over subjects of each subject's score at the layer best on the other subjects, with its
    Student-t interval; ``best_insample`` (roi) the best subject mean, chosen and scored on the
    same data (biased upward); ``best_heldout_subject`` and ``best_heldout_layer`` (subject, roi)
    the per-subject terms, which make the paired test of two models' best layers."""
    score = result["score"]
    if "time" in score.dims:  # a layer x time choice: not defined here
        return result
    higher = bool(int(result.attrs.get("higher_is_better", 1)))
    out = stats.heldout_best(score.transpose("layer", "subject", "roi").values, higher)
    mean, low, high = across_subject_ci(out["heldout"][None], confidence)
    result["best_heldout"] = (("roi",), mean[0])
    result["best_heldout_ci_low"] = (("roi",), low[0])
    result["best_heldout_ci_high"] = (("roi",), high[0])
    result["best_insample"] = (("roi",), out["insample"])
    result["best_heldout_subject"] = (("subject", "roi"), out["heldout"])
    result["best_heldout_layer"] = (("subject", "roi"), out["layer"])
    result["best_heldout"].attrs["description"] = (
        "leave-one-subject-out best layer: each subject's score at the layer with the best mean over the "
        "other subjects, averaged over subjects (NaN with fewer than 2 subjects)")
    result["best_heldout_ci_low"].attrs["description"] = f"{confidence:.0%} Student-t interval of best_heldout"
    result["best_insample"].attrs["description"] = (
        "the best layer's subject mean, chosen and scored on the same data (in-sample, biased upward)")
    result["best_heldout_layer"].attrs["description"] = "layer position chosen on the other subjects (-1: none)"
    return result
