"""The surprisal job: a model's word surprisal against a per-word measure (reading times),
over the baseline predictors the dataset carries (``baseline_*`` stimulus coordinates).

The scores file has one layer (``surprisal``) and, per subject x ROI (measure): ``score`` = the
current word's surprisal coefficient (measure units per bit) with its bootstrap interval and
circular-shift permutation p value, and ``delta_r2``, ``delta_loglik`` and ``r_raw`` with theirs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..datasets.contract import subject_roi_cells
from ..metrics.surprisal import STATISTICS, fitted_values, surprisal_effect
from .common import scores_dataset


def surprisal_predictors(layer: xr.DataArray, brain: xr.Dataset, spillover: int) -> tuple[np.ndarray, np.ndarray]:
    """The current and previous words' surprisal (columns) in the brain's stimulus order, and the
    reading order (rows sorted by group and position)."""
    order = np.lexsort((brain["position"].values, brain["group"].values.astype(str)))
    groups = brain["group"].values.astype(str)[order]
    current = layer.values[:, 0].astype(np.float64)
    if "imputed" in layer.coords:  # words without a surprisal (no context) leave the regression
        current = np.where(layer["imputed"].values, np.nan, current)
    current = current[order]
    columns = [current]
    for k in range(1, spillover + 1):
        columns.append(pd.Series(current).groupby(groups).shift(k).to_numpy(float))
    return np.stack(columns, axis=1), order


def score_surprisal(layers, brain: xr.Dataset, settings: dict, *, metric: str = "surprisal", rng=None,
                    seed: int = 0, confidence: float = 0.95) -> xr.Dataset:
    name = settings.get("predictor", "surprisal")
    found = [da for da in layers if str(da["layer"].item()) == name]
    if not found:
        raise ValueError(f"metric '{metric}': the activations have no layer '{name}' (set surprisal: true on the "
                         f"model; layers: {[str(da['layer'].item()) for da in layers][-4:]} ...)")
    for coord in ("group", "position"):
        if coord not in brain.coords:
            raise ValueError(f"metric '{metric}': the dataset has no '{coord}' coordinate (a reading_times dataset)")
    baseline_names = [k for k, c in brain.coords.items() if k.startswith("baseline_") and c.dims == ("stimulus",)]
    spillover = int(settings.get("spillover", 0))
    predictors, order = surprisal_predictors(found[0], brain, spillover)
    baseline = np.stack([brain[k].values.astype(np.float64)[order] for k in baseline_names], axis=1) \
        if baseline_names else np.zeros((len(order), 0))
    groups = brain["group"].values.astype(str)[order]
    resp = brain["responses"].mean("repetition") if "repetition" in brain["responses"].dims else brain["responses"]
    y_all = resp.transpose("stimulus", "neuroid").values.astype(np.float64)[order]
    subjects, rois, cells = subject_roi_cells(brain["subject"].values, brain["roi"].values)
    values = {k: np.full((1, len(subjects), len(rois)), np.nan) for k in STATISTICS}
    bounds = {k: (np.full((1, len(rois)), np.nan), np.full((1, len(rois)), np.nan)) for k in STATISTICS}
    p_values = {k: np.full((1, len(rois)), np.nan) for k in STATISTICS}
    null_mean = {k: np.full((1, len(rois)), np.nan) for k in STATISTICS}
    n_words = 0
    fitted = np.full((3, len(order), len(rois)), np.nan)  # observed, baseline, full; in reading order
    for i, j, idx in cells:
        y = y_all[:, idx].mean(1)
        if i == 0:
            fitted[0, :, j] = y
            fitted[1:, :, j] = fitted_values(baseline, predictors, y)
        effect = surprisal_effect(baseline, predictors, y, groups, bootstrap=settings.get("bootstrap", "groups"),
                                  n_bootstrap=int(settings.get("n_bootstrap", 1000)),
                                  n_permutations=int(settings.get("n_permutations", 1000)),
                                  confidence=confidence, seed=seed)
        n_words = int(effect["n_words"]["estimate"])
        for k in STATISTICS:
            values[k][0, i, j] = effect[k]["estimate"]
            if len(subjects) == 1:  # one subject (the mean over readers): the bootstrap gives the interval
                bounds[k][0][0, j], bounds[k][1][0, j] = effect[k]["ci_low"], effect[k]["ci_high"]
                p_values[k][0, j], null_mean[k][0, j] = effect[k]["p_value"], effect[k]["null_mean"]
    result = scores_dataset(values["coefficient"], found, subjects, rois, confidence)
    if len(subjects) == 1:
        result["ci_low"].values[:], result["ci_high"].values[:] = bounds["coefficient"]
        result["ci_low"].attrs["description"] = (f"{confidence:.0%} bootstrap interval over "
                                                 f"{settings.get('bootstrap', 'groups')} (percentile)")
        result["p_value"].values[:] = p_values["coefficient"]
        result["p_value"].attrs["description"] = ("one-sided permutation p: surprisal circularly shifted within "
                                                  "each story")
        result["null_mean"] = (("layer", "roi"), null_mean["coefficient"])
        result["null_mean"].attrs["description"] = "mean coefficient under circular shifts (chance)"
    for k in STATISTICS[1:]:
        result[k] = (("layer", "subject", "roi"), values[k])
        if len(subjects) == 1:
            result[f"{k}_ci_low"] = (("layer", "roi"), bounds[k][0])
            result[f"{k}_ci_high"] = (("layer", "roi"), bounds[k][1])
            result[f"{k}_p_value"] = (("layer", "roi"), p_values[k])
            result[f"{k}_null_mean"] = (("layer", "roi"), null_mean[k])
    unorder = np.argsort(order)  # back to the brain's stimulus order
    fit_coords = {"stimulus_id": ("stimulus", brain["stimulus_id"].values.astype(str)),
                  "group": ("stimulus", brain["group"].values.astype(str))}
    for k, name in enumerate(("observed", "fitted_baseline", "fitted_full")):
        result[name] = xr.DataArray(fitted[k][unorder], dims=("stimulus", "roi"),
                                    coords={**fit_coords, "roi": rois})
    result["fitted_full"].attrs["description"] = ("in-sample OLS prediction of baseline + surprisal (first subject); "
                                                  "the per-story observed vs predicted figure")
    result["score"].attrs["description"] = "surprisal coefficient (measure units per bit) over the baseline"
    result["delta_r2"].attrs["description"] = "R^2 of baseline + surprisal minus R^2 of the baseline"
    result["delta_loglik"].attrs["description"] = "Gaussian log-likelihood gain of adding surprisal (nats)"
    result["r_raw"].attrs["description"] = "Pearson r of the current word's surprisal with the measure"
    result.attrs.update(baseline=",".join(baseline_names), spillover=spillover, n_words=n_words,
                        n_bootstrap=int(settings.get("n_bootstrap", 1000)),
                        n_permutations=int(settings.get("n_permutations", 1000)))
    return result
