"""The encoding job: cross-validated ridge from each layer to every target (voxel, sensor,
neuron), per-target held-out r, R^2, alphas and noise ceilings, and their ROI summaries."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..datasets.contract import subject_roi_cells
from ..metrics import encoding, stats
from ..metrics.backend import resolve_dtype
from .common import across_subject_ci, add_null, layer_coords, set_ceiling_interval


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


def run_encoding(layers, brain: xr.Dataset, settings: dict, seed: int, rng=None):
    """Ridge per subject (all its targets at once): per-target held-out r, R^2, chosen alphas,
    noise ceilings and permutation p values (:func:`encoding.permuted_fold_r`, the same
    permutations for every layer, subject and target). Returns the per-target Dataset and the
    null of r, (permutation, layer, neuroid)."""
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
    if method == "inter_subject":
        ceiling_r = ceilings.inter_subject_ceiling(y_all, subject_of, brain["roi"].values)
        ceiling_r2 = np.clip(ceiling_r, 0, None) ** 2
    elif reps is not None and reps.shape[0] >= 2 and method != "none":
        nc = ceilings.noise_ceiling(reps.astype(np.float64), method=method, rng=seed)
        ceiling_r, ceiling_r2 = nc["r"], nc["r2"]
    # every subject's targets in one fit when asked (the features are the same for all of them)
    subjects = np.array(["(all)"]) if settings.get("stack_subjects") else np.unique(subject_of)
    n_perm = int(settings.get("n_permutations", 0))
    rng = np.random.default_rng(seed) if rng is None else rng
    if settings.get("permutation", "shuffle") == "circular":
        perms = stats.circular_shifts(len(y_all), n_perm, rng, int(settings.get("min_shift", 30)))
    else:
        perms = stats.permutations(len(y_all), n_perm, rng)
    null = np.zeros((n_perm, n_layers, n_targets))
    boot = {} if stimulus_bootstrap_applies(brain, settings) else None  # layer -> (resample, roi)
    base = baseline_features(brain) if settings.get("baseline") else None
    baseline_r = np.full(n_targets, np.nan)
    baseline_null = np.zeros((n_perm, n_targets))  # the baseline's r under the same permutations
    jobs = [(li, s) for li in range(n_layers) for s in subjects]
    if base is not None:
        jobs = [(-1, s) for s in subjects] + jobs
    courses = bool(brain.attrs.get("timeseries"))  # keep held-out predictions for the time-course figure
    predictions = np.zeros((n_layers, *y_all.shape), dtype=np.float32) if courses else None
    for li, s in tqdm(jobs, desc="encoding", unit="fit"):
        cols = np.arange(n_targets) if s == "(all)" else np.flatnonzero(subject_of == s)
        features = base if li < 0 else layers[li].values if base is None else np.hstack([layers[li].values, base])
        result = encoding.cross_validated_encoding(
            features, y_all[:, cols], settings["alphas"],
            outer_folds=int(settings.get("outer_folds", 5)), inner_folds=settings.get("inner_folds", 5),
            seed=seed, groups=groups, split=split, standardize=settings.get("standardize", True),
            pca=settings.get("pca"), delays=settings.get("delays"), dtype=dtype,
            device=settings.get("device", "auto"), permutations=perms if n_perm else None,
            cv=settings.get("cv", "kfold"), gap=int(settings.get("gap", 0)))
        if li < 0:
            baseline_r[cols] = result.r
            if n_perm:
                baseline_null[:, cols] = result.null_r
            continue
        r[li, cols], r2[li, cols], alphas[li, :, cols] = result.r, result.r2, result.alphas.T
        if courses:
            predictions[li][:, cols] = result.predictions
        if boot is not None:
            boot[li] = stimulus_bootstrap(result, y_all[:, cols], brain, settings, seed)
        if n_perm:
            null[:, li, cols] = result.null_r
    p_target = stats.p_from_null(r, null)
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
         "target_r_ceiled": (("layer", "neuroid"), ceiled),
         "target_p": (("layer", "neuroid"), p_target),
         "target_p_fdr": (("layer", "neuroid"), np.stack([stats.fdr(row) for row in p_target]))},
        coords={**layer_coords(layers), **neuroid_coords})
    for name in ("x", "y", "z"):
        if name in out.coords:
            out[name].attrs.update(brain[name].attrs)
            # the data's voxel grid (volumes.GRID_ATTRS), also from brain files that kept it on the Dataset only
            out[name].attrs.update({k: brain.attrs[k] for k in ("affine", "grid_shape")
                                    if brain.attrs.get(k) is not None and k not in brain[name].attrs})
    if courses:
        add_predictions(out, predictions, y_all, brain)
    if base is not None:
        out["target_baseline_r"] = (("neuroid",), baseline_r)
        out["target_delta_r"] = (("layer", "neuroid"), r - baseline_r[None])
        out["target_baseline_r"].attrs["description"] = (
            f"held-out r of the baseline predictors alone ({base.shape[1]} stimulus coordinates baseline_*)")
        out["target_delta_r"].attrs["description"] = "target_r (layer + baseline) minus target_baseline_r"
        if n_perm:
            out["target_baseline_null_r"] = (("permutation", "neuroid"), baseline_null)
    out["target_r"].attrs["description"] = "held-out Pearson r per target, each stimulus predicted by the fold that held it out"
    out["target_r2"].attrs["description"] = "held-out R^2 per target (can be negative)"
    out["target_alpha"].attrs["description"] = "ridge penalty chosen by inner cross-validation, per outer fold"
    out["target_ceiling_r"].attrs["description"] = (
        "leave-one-subject-out ceiling: r with the mean of the other subjects' time course in the same ROI"
        if method == "inter_subject" else
        f"noise ceiling on r for the repetition mean ({method})" if np.isfinite(ceiling_r).any()
        else "not computed (needs at least 2 repetitions, or ceiling: none)")
    out["target_r_ceiled"].attrs["description"] = "target_r / target_ceiling_r (NaN where the ceiling is 0)"
    out["target_p"].attrs["description"] = (
        f"one-sided permutation p of target_r: {n_perm} {_null_kind(settings)}, each "
        "refit at the chosen alphas" if n_perm else "not computed (n_permutations = 0)")
    out["target_p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted target_p across the targets of each layer"
    return out, null, boot


def add_predictions(out: xr.Dataset, predictions: np.ndarray, measured: np.ndarray, brain: xr.Dataset) -> None:
    """Per ROI, the held-out predictions (stimulus = volume, neuroid) of the layer with the best mean
    r over the ROI's targets (chosen on the same data: in-sample), and the measured time courses."""
    rois = brain["roi"].values.astype(str)
    names = out["layer"].values.astype(str)
    chosen = np.zeros(measured.shape, dtype=np.float32)
    layer_of = {}
    for roi in np.unique(rois):
        cols = rois == roi
        best = int(np.nanargmax(np.nanmean(out["target_r"].values[:, cols], axis=1)))
        chosen[:, cols] = predictions[best][:, cols]
        layer_of[roi] = names[best]
    out["prediction"] = (("stimulus", "neuroid"), chosen)
    out["measured"] = (("stimulus", "neuroid"), measured.astype(np.float32))
    out.coords["volume_time"] = ("stimulus", brain["time"].values.astype(float))
    out["prediction_layer"] = (("roi",), np.array([layer_of[r] for r in sorted(layer_of)]))
    out.coords["roi"] = ("roi", np.array(sorted(layer_of)))
    out["prediction"].attrs["description"] = ("held-out prediction of each time course at its ROI's best layer (best "
                                              "mean r over the ROI's targets, chosen on the same data: in-sample)")


def add_delta_inference(result: xr.Dataset, confidence: float, delta_null=None, settings=None) -> None:
    """The gain over the baseline: ``score_delta_mean`` (the subject mean) with its Student-t
    interval across subjects and two one-sided p values, per (layer, roi):

    - ``delta_p_t``: a one-sample t test across subjects that the gain is above 0 (the
      random-effects question, with the stimulus fixed; NaN with one subject);
    - ``delta_p``: the permutation p of the gain against its null, ``delta_null`` (permutation,
      layer, subject, roi): the layer + baseline and the baseline alone refit on the same permuted
      (for a time series: circularly shifted) responses. It treats the story's timing as the random
      part, so it is the stricter test for one story heard by every subject.
    """
    from scipy import stats as scipy_stats

    delta = result["score_delta"].transpose("layer", "subject", "roi").values
    mean, low, high = across_subject_ci(delta, confidence)
    n = np.sum(np.isfinite(delta), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = mean / (np.nanstd(delta, axis=1, ddof=1) / np.sqrt(n))
        p = np.where(n > 1, scipy_stats.t.sf(t, np.maximum(n - 1, 1)), np.nan)
    grid = ("layer", "roi")
    result["score_delta_mean"] = (grid, mean)
    result["score_delta_ci_low"] = (grid, low)
    result["score_delta_ci_high"] = (grid, high)
    result["delta_p_t"] = (grid, p)
    result["delta_p"] = (grid, np.full(mean.shape, np.nan))
    if delta_null is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result["delta_p"].values[:] = stats.p_from_null(mean, np.nanmean(delta_null, axis=2))
        result["delta_p"].attrs["description"] = (
            f"one-sided p of score_delta_mean against {delta_null.shape[0]} {_null_kind(settings or {})}, the layer + "
            "baseline and the baseline alone each refit at their chosen alphas")
    else:
        result["delta_p"].attrs["description"] = "not computed (n_permutations = 0)"
    result["score_delta_mean"].attrs["description"] = "mean over subjects of score_delta (the gain in r over the baseline)"
    result["score_delta_ci_low"].attrs["description"] = f"{confidence:.0%} Student-t interval across subjects of score_delta"
    result["delta_p_t"].attrs["description"] = ("one-sided one-sample t test across subjects that score_delta is above 0 "
                                                "(the layer adds to the baseline)")


def _null_kind(settings: dict) -> str:
    if settings.get("permutation", "shuffle") == "circular":
        return (f"circular shifts (by at least {int(settings.get('min_shift', 30))} samples) of the responses "
                "in stimulus order")
    return "permutations of the responses across stimuli"


def baseline_features(brain: xr.Dataset) -> np.ndarray:
    """The dataset's baseline predictors (stimulus coordinates ``baseline_*``) as (stimulus, predictor)."""
    names = [k for k, c in brain.coords.items() if k.startswith("baseline_") and c.dims == ("stimulus",)]
    if not names:
        raise ValueError("metrics.encoding.baseline: the dataset has no baseline predictors (stimulus coordinates "
                         "baseline_*, as a reading_times dataset writes)")
    return np.stack([brain[k].values.astype(np.float64) for k in names], axis=1)


def outer_splits_for(n, settings, seed, groups, split):
    return encoding.outer_splits(n, int(settings.get("outer_folds", 5)), seed, groups=groups, split=split,
                                 cv=settings.get("cv", "kfold"), gap=int(settings.get("gap", 0)))


def encoding_summary(targets: xr.Dataset, settings: dict, null: np.ndarray | None = None):
    """Per (layer, subject, roi) summaries (median or mean over targets) of r, R^2,
    the ceiling and the ceiled score (summary r / summary ceiling, as Brain-Score), and
    the same summary of the permutation null of r: (permutation, layer, subject, roi)."""
    summary = np.nanmedian if settings.get("roi_summary", "median") == "median" else np.nanmean
    subjects, rois, cells = subject_roi_cells(targets["target_subject"].values, targets["target_roi"].values)
    n_layers = targets.sizes["layer"]
    out = {k: np.full((n_layers, len(subjects), len(rois)), np.nan) for k in ("score", "score_r2", "score_ceiled")}
    ceiling = np.full((len(subjects), len(rois)), np.nan)
    n_perm = 0 if null is None else null.shape[0]
    null_summary = np.full((n_perm, n_layers, len(subjects), len(rois)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN ceilings
        for i, j, cols in cells:
            out["score"][:, i, j] = summary(targets["target_r"].values[:, cols], axis=1)
            out["score_r2"][:, i, j] = summary(targets["target_r2"].values[:, cols], axis=1)
            ceiling[i, j] = summary(targets["target_ceiling_r"].values[cols])
            if n_perm:
                null_summary[:, :, i, j] = summary(null[:, :, cols], axis=2)
            if ceiling[i, j] > 0:
                out["score_ceiled"][:, i, j] = out["score"][:, i, j] / ceiling[i, j]
        if settings.get("ceiling") == "inter_subject":
            # one subject's correlation with the others is a noisy estimate of the ROI's shared signal
            # (here from -0.12 to 0.58): dividing by it sends a subject's ratio to +-40 where it is near
            # 0. Every subject is divided by the ROI's mean over subjects instead (Brain-Score's manner).
            roi_ceiling = np.nanmean(ceiling, axis=0)
            out["score_ceiled"] = np.where(roi_ceiling > 0, out["score"] / roi_ceiling, np.nan)
    if "target_delta_r" in targets:
        out["score_delta"] = np.full((n_layers, len(subjects), len(rois)), np.nan)
        out["baseline_score"] = np.full((len(subjects), len(rois)), np.nan)
        for i, j, cols in cells:
            out["score_delta"][:, i, j] = summary(targets["target_delta_r"].values[:, cols], axis=1)
            out["baseline_score"][i, j] = summary(targets["target_baseline_r"].values[cols])
        if n_perm and "target_baseline_null_r" in targets:
            base_null = targets["target_baseline_null_r"].values
            out["delta_null"] = np.full((n_perm, n_layers, len(subjects), len(rois)), np.nan)
            for i, j, cols in cells:
                out["delta_null"][:, :, i, j] = summary(null[:, :, cols] - base_null[:, None, cols], axis=2)
    out["null"] = null_summary
    return out, ceiling, subjects, rois


def ceiling_interval(targets: xr.Dataset, ceiling: np.ndarray, settings: dict, confidence: float, seed: int,
                     n_bootstrap: int = 1000):
    """The interval of each ROI's ceiling, which decides whether a score may be divided by it:
    the Student-t interval across subjects of their ROI ceilings (``ceiling`` (subject, roi)), or
    with a single subject a percentile bootstrap over the ROI's targets of their summary ceiling.
    Returns (low, high) per ROI and a description."""
    summary = np.nanmedian if settings.get("roi_summary", "median") == "median" else np.nanmean
    if ceiling.shape[0] >= 2:
        _, low, high = across_subject_ci(ceiling[None], confidence)
        return low[0], high[0], f"{confidence:.0%} Student-t interval across subjects of the ROI's ceiling"
    rng = np.random.default_rng(seed)
    low, high = np.full(ceiling.shape[1], np.nan), np.full(ceiling.shape[1], np.nan)
    _, rois, cells = subject_roi_cells(targets["target_subject"].values, targets["target_roi"].values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _, j, cols in cells:
            values = targets["target_ceiling_r"].values[cols]
            values = values[np.isfinite(values)]
            if len(values) >= 2:
                draws = summary(values[rng.integers(0, len(values), (n_bootstrap, len(values)))], axis=1)
                low[j], high[j] = np.percentile(draws, [50 * (1 - confidence), 50 * (1 + confidence)])
    return low, high, (f"{confidence:.0%} percentile interval over {n_bootstrap} bootstrap resamples of the ROI's "
                       "targets (one subject)")


N_BOOTSTRAP = 1000  # resamples of the single-subject stimulus bootstrap


def stimulus_bootstrap_applies(brain: xr.Dataset, settings: dict) -> bool:
    """Whether the scores' interval is the bootstrap over held-out stimuli: data of one subject
    (the across-subject interval needs two), with folds of independent stimuli (not grouped by a
    label, not blocks of a time series, whose samples resampling one by one would treat as
    independent)."""
    return (len(np.unique(brain["subject"].values.astype(str))) == 1 and not settings.get("groups")
            and settings.get("cv", "kfold") == "kfold")


def stimulus_bootstrap(result, y: np.ndarray, brain: xr.Dataset, settings: dict, seed: int,
                       n_bootstrap: int = N_BOOTSTRAP) -> np.ndarray:
    """ROI summaries (resample, roi) of one fit's fold-averaged held-out r on bootstrap resamples of
    the stimuli within each outer fold's held-out set (:func:`encoding.bootstrap_fold_r`, from the
    fit's predictions ``result``; ``y`` (stimulus, target) the responses it predicted). The
    resamples are drawn from ``seed``, fold after fold, so every layer gets the same ones."""
    rng = np.random.default_rng(seed)
    counts = [stats.resample_counts(stats.bootstrap_indices(len(test), n_bootstrap, rng), len(test))
              for _, test in result.folds]
    draws = encoding.bootstrap_fold_r(result.predictions, y, result.folds, counts)
    summary = np.nanmedian if settings.get("roi_summary", "median") == "median" else np.nanmean
    _, rois, cells = subject_roi_cells(brain["subject"].values, brain["roi"].values)
    out = np.full((n_bootstrap, len(rois)), np.nan)
    for _, j, cols in cells:
        out[:, j] = summary(draws[:, cols], axis=1)
    return out


def score_encoding(layers, brain, settings, *, metric="encoding", rng=None, seed=0,
                   confidence=0.95) -> xr.Dataset:
    """Encoding scores: ROI summaries per subject with across-subject CIs, plus
    every target's r, R^2, alphas and ceiling (for maps)."""
    targets, null, boot = run_encoding(layers, brain, settings, seed, rng)
    summaries, ceiling, subjects, rois = encoding_summary(targets, settings, null)
    ceiling_ci_low, ceiling_ci_high, interval = ceiling_interval(targets, ceiling, settings, confidence, seed)
    reliable = np.isfinite(ceiling_ci_low) & (ceiling_ci_low > 0)  # (roi,)
    summaries["score_ceiled"][:, :, ~reliable] = np.nan
    mean, low, high = across_subject_ci(summaries["score"], confidence)
    if boot is not None:  # one subject: the interval is a bootstrap over the held-out stimuli
        low, high = stats.percentile_ci(np.stack([boot[i] for i in range(len(layers))], axis=1), confidence)
    ceiled_mean, ceiled_low, ceiled_high = across_subject_ci(summaries["score_ceiled"], confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        null_mean = np.nanmean(summaries["null"], axis=2)  # (perm, layer, roi): the subject mean, like the score
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
         "p_value": (grid, nan.copy()), "boot_ci_low": (grid, nan.copy()), "boot_ci_high": (grid, nan.copy()),
         "ceiling": (("subject", "roi"), ceiling),
         "ceiling_low": (("roi",), c_low), "ceiling_high": (("roi",), c_high)},
        coords={**layer_coords(layers), "subject": subjects, "roi": rois})
    if "score_delta" in summaries:
        result["score_delta"] = (("layer", "subject", "roi"), summaries["score_delta"])
        result["baseline_score"] = (("subject", "roi"), summaries["baseline_score"])
        result["score_delta"].attrs["description"] = "ROI summary of r (layer + baseline) minus r (baseline alone)"
        result["baseline_score"].attrs["description"] = "ROI summary of the held-out r of the baseline alone"
        add_delta_inference(result, confidence, summaries.get("delta_null"), settings)
    result = xr.merge([result, targets.drop_vars("target_baseline_null_r", errors="ignore")], compat="override",
                      join="exact", combine_attrs="override")
    summary = settings.get("roi_summary", "median")
    n_perm = null.shape[0]
    result["p_value"].values[:] = stats.p_from_null(mean, null_mean)
    result["p_fdr"] = (grid, stats.fdr(result["p_value"].values))
    add_null(result, null_mean, float(settings.get("alpha", 0.05)),
             f"responses permuted and refit at the chosen alphas, the {summary} over targets then the subject mean")
    set_ceiling_interval(result, ceiling_ci_low, ceiling_ci_high,
                         f"lowest and highest subject's {summary} noise ceiling on r "
                         f"({settings.get('ceiling', 'split_half')})", interval)
    result["ci_low"].attrs["description"] = result["ci_high"].attrs["description"] = (
        f"{confidence:.0%} Student-t interval across subjects" if boot is None else
        f"{confidence:.0%} percentile interval over {N_BOOTSTRAP} bootstrap resamples of the stimuli within each "
        "outer fold's held-out set (one subject; the fold-averaged r recomputed from the held-out "
        "predictions, the fits not repeated)")
    result["score"].attrs["description"] = f"{summary} over the ROI's targets of the held-out Pearson r"
    result["score_ceiled"].attrs["description"] = (
        f"score / ceiling: the ROI's {summary} r over its {summary} noise ceiling on r"
        + (" (inter_subject: over the ROI's mean ceiling across subjects)"
           if settings.get("ceiling") == "inter_subject" else "")
        + "; NaN where the ceiling's interval across subjects includes 0 (ceiling_reliable = 0)")
    result["p_value"].attrs["description"] = (
        f"one-sided permutation p of score_mean: {n_perm} {_null_kind(settings)}, each "
        f"refit at the chosen alphas and summarised like the score ({summary} over targets, mean over "
        "subjects)" if n_perm else "not computed (n_permutations = 0)")
    result["p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted p_value across layers x ROIs"
    result["boot_ci_low"].attrs["description"] = "not computed for encoding (refits per resample)"
    if boot is not None:  # the same stimulus bootstrap, where the figures and the summary look for one
        result["boot_ci_low"].values[:], result["boot_ci_high"].values[:] = low, high
        result["boot_ci_low"].attrs["description"] = result["ci_low"].attrs["description"]
    result.attrs.update(n_permutations=int(n_perm), n_bootstrap=0 if boot is None else N_BOOTSTRAP,
                        higher_is_better=1,
                        ceiling_method=settings.get("ceiling", "split_half"),
                        outer_cv=("fixed split" if settings.get("split") else
                                  f"{settings.get('outer_folds', 5)}-fold" +
                                  (f" grouped by {settings['groups']}" if settings.get("groups") else "") +
                                  (f" blocked, gap {int(settings.get('gap', 0))}" if settings.get("cv") == "blocked"
                                   else "")),
                        inner_cv=str(settings.get("inner_folds", 5)))
    return result


