"""One model x dataset x metric job, vectorised over layers, subjects and ROIs.

The result follows the scores contract: ``score(layer, subject, roi)`` plus the
across-subject mean with its confidence interval, a permutation p value and
noise-ceiling bounds where the metric defines them. Attributes carry the
metric, its settings, the planted truth of simulated data and provenance.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats as scipy_stats
from tqdm.auto import tqdm

from .datasets.contract import check_brain, is_rdm_data
from .io import is_rdm_file, provenance, read_activations, read_netcdf
from . import rsa_scores
from .metrics import cka, encoding, similarity, stats
from .stimuli import StimulusError, align_to

METRICS = ("rsa", "cka", "encoding", "procrustes", "mutual_knn")


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
    subjects = np.unique(brain["subject"].values.astype(str))
    rois = np.unique(brain["roi"].values.astype(str))
    blocks = {}
    sub_of, roi_of = brain["subject"].values.astype(str), brain["roi"].values.astype(str)
    for s in subjects:
        for r in rois:
            idx = np.flatnonzero((sub_of == s) & (roi_of == r))
            if len(idx):
                blocks[s, r] = resp.values[:, idx].astype(np.float64)
    return blocks, subjects, rois


def _pairs(blocks, subjects, rois):
    return [(s, r) for s in subjects for r in rois if (s, r) in blocks]


def _fill(values: np.ndarray, pairs, subjects, rois, n_layers: int) -> np.ndarray:
    """Scatter (layer, pair) values into a (layer, subject, roi) array with NaN gaps."""
    out = np.full((n_layers, len(subjects), len(rois)), np.nan)
    s_index = {s: i for i, s in enumerate(subjects)}
    r_index = {r: i for i, r in enumerate(rois)}
    for k, (s, r) in enumerate(pairs):
        out[:, s_index[s], r_index[r]] = values[:, k]
    return out


def _subject_mean_null(null: np.ndarray, pairs, subjects, rois) -> np.ndarray:
    """(perm, layer, pair) -> (perm, layer, roi), averaging subjects like the score."""
    out = np.full(null.shape[:2] + (len(rois),), np.nan)
    for j, r in enumerate(rois):
        cols = [k for k, (_, rr) in enumerate(pairs) if rr == r]
        out[:, :, j] = null[:, :, cols].mean(-1)
    return out


def similarity_measure(metric: str, settings: dict) -> str:
    """The :mod:`brainalign.metrics.similarity` measure a model x brain metric uses."""
    if metric == "cka":
        if settings.get("debiased", False):
            return "debiased_cka"
        return "rbf_cka" if settings.get("kernel", "linear") == "rbf" else "linear_cka"
    if metric == "procrustes":
        return settings.get("measure", "procrustes")
    return metric


def run_similarity(metric, layers, blocks, subjects, rois, settings, rng):
    """CKA variants, Procrustes and mutual k-NN against every subject x ROI, with a
    permutation null (stimulus labels of the brain data shuffled) and bootstrap
    resamples of stimuli (the same resample for model and brain)."""
    measure = similarity_measure(metric, settings)
    options = {key: settings[key] for key in ("sigma_factor", "k") if key in settings}
    pairs = _pairs(blocks, subjects, rois)
    xs = [da.values.astype(np.float64) for da in layers]
    ys = [blocks[p] for p in pairs]
    values = similarity.pairwise(measure, xs, ys, **options)
    n = xs[0].shape[0]
    n_permutations = int(settings.get("n_permutations", 0))
    if measure == "linear_cka":
        # Fast path: permuting stimuli permutes rows and columns of the centred Gram matrices.
        null = cka.permutation_null(np.stack([cka.centered_gram(x) for x in xs]),
                                    np.stack([cka.centered_gram(y) for y in ys]), n_permutations, rng)
    else:
        perms = stats.permutations(n, n_permutations, rng)
        null = np.stack([similarity.pairwise(measure, xs, [y[p] for y in ys], **options)
                         for p in tqdm(perms, desc=f"{measure} permutations", unit="perm")]) \
            if len(perms) else np.zeros((0, len(xs), len(ys)))
    boots = stats.bootstrap_indices(n, int(settings.get("n_bootstrap", 0)), rng)
    boot = np.stack([similarity.pairwise(measure, [x[b] for x in xs], [y[b] for y in ys], **options)
                     for b in tqdm(boots, desc=f"{measure} bootstrap", unit="sample")]) \
        if len(boots) else np.zeros((0, len(xs), len(ys)))
    return values, pairs, null, np.full((2, len(rois)), np.nan), boot, similarity.HIGHER_IS_BETTER[measure]


ENCODING_TARGET_VARS = ("target_r", "target_r2", "target_alpha", "target_r_ceiled")


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

    from .metrics import ceiling as ceilings

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
    dtype = torch.float64 if settings.get("dtype", "float32") == "float64" else torch.float32
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
        coords={**_layer_coords(layers), **neuroid_coords})
    for name in ("x", "y", "z"):
        if name in out.coords:
            out[name].attrs.update(brain[name].attrs)
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
    sub, roi = targets["target_subject"].values.astype(str), targets["target_roi"].values.astype(str)
    subjects, rois = np.unique(sub), np.unique(roi)
    n_layers = targets.sizes["layer"]
    out = {k: np.full((n_layers, len(subjects), len(rois)), np.nan) for k in ("score", "score_r2", "score_ceiled")}
    ceiling = np.full((len(subjects), len(rois)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN ceilings
        for i, s in enumerate(subjects):
            for j, rr in enumerate(rois):
                cols = np.flatnonzero((sub == s) & (roi == rr))
                if not len(cols):
                    continue
                out["score"][:, i, j] = summary(targets["target_r"].values[:, cols], axis=1)
                out["score_r2"][:, i, j] = summary(targets["target_r2"].values[:, cols], axis=1)
                ceiling[i, j] = summary(targets["target_ceiling_r"].values[cols])
                if ceiling[i, j] > 0:
                    out["score_ceiled"][:, i, j] = out["score"][:, i, j] / ceiling[i, j]
    return out, ceiling, subjects, rois


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


def score(metric: str, activations_path, brain_path, settings: dict, *, seed: int = 0,
          confidence: float = 0.95, names: dict | None = None) -> xr.Dataset:
    """Score every layer of one model against every subject and ROI of one dataset."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}' (known: {METRICS})")
    layers, model_attrs, brain = load_inputs(activations_path, brain_path)
    rng = np.random.default_rng(seed)
    if metric == "rsa":
        result = rsa_dataset(layers, brain, settings, rng, confidence)
    else:
        result = _other_dataset(metric, layers, brain, settings, rng, seed, confidence)
    label = metric_label(metric, settings)
    result["score"].attrs["long_name"] = label
    names = names or {}
    result.attrs.update(provenance(
        {"metric": metric, **settings}, seed=seed,
        metric=metric, metric_label=label, metric_settings=json.dumps(settings, sort_keys=True),
        confidence=confidence, **result.attrs,
        model=names.get("model", model_attrs.get("model_name", "")),
        dataset=names.get("dataset", ""),
        model_checksum=model_attrs.get("model_checksum", ""),
        model_revision=model_attrs.get("model_revision", ""),
        pooling=model_attrs.get("pooling", ""),
        dataset_checksum=brain.attrs.get("dataset_checksum", ""),
        planted=brain.attrs.get("planted", ""),
    ))
    return result


def _layer_coords(layers) -> dict:
    """``layer``, ``layer_index`` and ``depth`` coordinates of activations or model RDMs."""
    if isinstance(layers, xr.DataArray):
        return {"layer": ("layer", layers["layer"].values.astype(str)),
                "layer_index": ("layer", layers["layer_index"].values.astype(int)),
                "depth": ("layer", layers["depth"].values.astype(float))}
    return {"layer": ("layer", [str(da["layer"].item()) for da in layers]),
            "layer_index": ("layer", [int(da["layer_index"]) for da in layers]),
            "depth": ("layer", [float(da["depth"]) for da in layers])}


def rsa_dataset(layers, brain: xr.Dataset, settings: dict, rng, confidence: float) -> xr.Dataset:
    """The RSA scores Dataset: scores, inference and the RDMs its figures draw."""
    method = settings.get("rdm_method", "correlation")
    brain_method = settings.get("brain_rdm_method") or method
    models = rsa_scores.model_rdms(layers, method)
    brain_rdm = rsa_scores.brain_rdms(brain, brain_method)
    out = rsa_scores.rsa_scores(models, brain_rdm, settings, rng, confidence)
    time = brain_rdm.times is not None
    squeeze = (lambda a: a) if time else (lambda a: a[..., 0])
    grid = ("layer", "roi") + (("time",) if time else ())
    mean, low, high = across_subject_ci(out["score"], confidence)
    coords = {**_layer_coords(layers), "subject": brain_rdm.subjects, "roi": brain_rdm.rois}
    if time:
        coords["time"] = ("time", brain_rdm.times, {"units": "s"})
    result = xr.Dataset(
        {
            "score": (("layer", "subject") + grid[1:], squeeze(out["score"])),
            "score_mean": (grid, squeeze(mean)),
            "ci_low": (grid, squeeze(low)),
            "ci_high": (grid, squeeze(high)),
            "p_value": (grid, squeeze(out["p_value"])),
            "p_fdr": (grid, squeeze(out["p_fdr"])),
            "boot_ci_low": (grid, squeeze(out["boot_ci_low"])),
            "boot_ci_high": (grid, squeeze(out["boot_ci_high"])),
            "ceiling_low": (grid[1:], squeeze(out["ceiling_low"])),
            "ceiling_high": (grid[1:], squeeze(out["ceiling_high"])),
        },
        coords=coords,
    )
    if not time:
        result["best_layer_p"] = (("layer", "roi"), out["best_layer_p"][..., 0])
        result["best_layer_p"].attrs["description"] = (
            "one-sided paired test that the best layer (highest subject mean) beats this layer: "
            + ("bootstrap (same resamples for every layer)" if out["n_bootstrap"] else
               "paired t-test across subjects") + "; the best layer is chosen on the same data")
    figs = rsa_scores.rdm_figures_data(models, brain_rdm, out["observed"], result["layer"].values, out["method"])
    result["brain_rdm"] = (("roi", "stimulus", "stimulus_"), figs["brain_rdm"])
    result["best_rdm"] = (("roi", "stimulus", "stimulus_"), figs["best_rdm"])
    result["rdm_distance"] = (("rdm", "rdm_"), figs["rdm_distance"])
    result["rdm_distance"].attrs["description"] = f"1 - {out['method']} between RDMs"
    result = result.assign_coords(
        best_layer=("roi", figs["best_layer"]), rdm_label=("rdm", figs["rdm_label"]),
        rdm_kind=("rdm", figs["rdm_kind"]), stimulus_id=("stimulus", brain["stimulus_id"].values.astype(str)))
    if time:
        result = result.assign_coords(rdm_time=("roi", brain_rdm.times[figs["peak_time_index"]]))
        result["brain_rdm"].attrs["description"] = "subject-mean brain RDM at the ROI's peak time (rdm_time)"
    for name, coord in brain.coords.items():
        if coord.dims == ("stimulus",) and name != "stimulus_id" and coord.dtype.kind in "OUS":
            result = result.assign_coords({name: ("stimulus", coord.values.astype(str))})
    alpha = float(settings.get("alpha", 0.05))
    level = f"{confidence:.0%}"
    result["ci_low"].attrs["description"] = f"{level} Student-t interval across subjects"
    result["boot_ci_low"].attrs["description"] = (
        f"{level} percentile interval of the subject mean over {out['n_bootstrap']} bootstrap resamples of "
        f"{out['bootstrap']}" if out["n_bootstrap"] else "not computed (n_bootstrap = 0)")
    result["p_value"].attrs["description"] = (
        f"one-sided permutation test of stimulus labels on the subject-mean score ({out['n_permutations']} "
        "permutations)" if out["n_permutations"] else "not computed (n_permutations = 0)")
    result["p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted p_value across layers x ROIs" + (
        " x times" if time else "")
    result["ceiling_low"].attrs["description"] = (
        "rsatoolbox noise ceiling across subjects (lower: leave-one-subject-out; upper: all subjects)")
    result.attrs.update(n_permutations=out["n_permutations"], n_bootstrap=out["n_bootstrap"],
                        bootstrap=out["bootstrap"], alpha=alpha, higher_is_better=1,
                        comparison=out["method"], rdm_method=method, brain_rdm_method=brain_rdm.measure)
    return result


def _other_dataset(metric, layers, brain, settings, rng, seed, confidence) -> xr.Dataset:
    """Scores of CKA, Procrustes, mutual k-NN and encoding, per subject x ROI."""
    if isinstance(layers, xr.DataArray) or is_rdm_data(brain):
        raise ValueError(f"metric '{metric}' needs activations and brain responses; precomputed RDMs "
                         "support only 'rsa'")
    if metric == "encoding":
        return encoding_dataset(layers, brain, settings, seed, confidence)
    blocks, subjects, rois = brain_blocks(brain)
    values, pairs, null, ceiling, boot, higher_is_better = run_similarity(
        metric, layers, blocks, subjects, rois, settings, rng)
    n_layers = len(layers)
    per_subject = _fill(values, pairs, subjects, rois, n_layers)
    mean, low, high = across_subject_ci(per_subject, confidence)
    observed_mean = _subject_mean_null(values[None], pairs, subjects, rois)[0]
    p_value = stats.p_from_null(observed_mean, _subject_mean_null(null, pairs, subjects, rois), higher_is_better)
    boot_low, boot_high = stats.percentile_ci(_subject_mean_null(boot, pairs, subjects, rois), confidence)

    result = xr.Dataset(
        {
            "score": (("layer", "subject", "roi"), per_subject),
            "score_mean": (("layer", "roi"), mean),
            "ci_low": (("layer", "roi"), low),
            "ci_high": (("layer", "roi"), high),
            "p_value": (("layer", "roi"), p_value),
            "boot_ci_low": (("layer", "roi"), boot_low),
            "boot_ci_high": (("layer", "roi"), boot_high),
            "ceiling_low": (("roi",), ceiling[0]),
            "ceiling_high": (("roi",), ceiling[1]),
        },
        coords={
            **_layer_coords(layers),
            "subject": subjects,
            "roi": rois,
        },
    )
    result["ci_low"].attrs["description"] = f"{confidence:.0%} Student-t interval across subjects"
    result["boot_ci_low"].attrs["description"] = (
        f"{confidence:.0%} percentile interval of the subject mean over {boot.shape[0]} bootstrap resamples "
        "of stimuli" if boot.shape[0] else "not computed (n_bootstrap = 0 or not available for this metric)")
    result["p_value"].attrs["description"] = (
        "one-sided permutation test of stimulus labels on the subject-mean score"
        if null.shape[0] else "not computed for this metric")
    result.attrs.update(n_permutations=int(null.shape[0]), n_bootstrap=int(boot.shape[0]),
                        higher_is_better=int(higher_is_better))
    return result


def encoding_dataset(layers, brain, settings, seed, confidence) -> xr.Dataset:
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
        coords={**_layer_coords(layers), "subject": subjects, "roi": rois})
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


def metric_label(metric: str, settings: dict) -> str:
    """Human-readable name of a metric with its settings, for axes and captions."""
    if metric == "rsa":
        from .metrics.rsa import comparison_name

        comparison = {"spearman": "Spearman rho", "tau-a": "Kendall tau-a", "corr": "Pearson r",
                      "cosine": "cosine", "corr_cov": "whitened Pearson r", "cosine_cov": "whitened cosine"
                      }[comparison_name(settings.get("comparison", "spearman"))]
        method = settings.get("rdm_method", "correlation")
        brain = settings.get("brain_rdm_method") or method
        rdms = f"{method} RDMs" if brain == method else f"{method} model / {brain} brain RDMs"
        return f"RSA ({comparison}, {rdms})"
    if metric == "cka":
        kind = "debiased linear" if settings.get("debiased") else settings.get("kernel", "linear")
        return f"{kind} CKA"
    if metric == "procrustes":
        return ("angular Procrustes distance (rad)" if settings.get("measure") == "angular_procrustes"
                else "Procrustes similarity (nuclear norm)")
    if metric == "mutual_knn":
        return f"mutual k-NN alignment (k={settings.get('k', 10)})"
    return f"encoding ({settings.get('roi_summary', 'median')} held-out Pearson r)"


def score_file(metric: str, activations_path, brain_path, out_path, settings: dict, *, seed: int = 0,
               confidence: float = 0.95, names: dict | None = None):
    """File-level entry point used by the ``rsa``, ``cka`` and ``encoding`` rules."""
    from .io import write_netcdf

    result = score(metric, activations_path, brain_path, settings, seed=seed, confidence=confidence, names=names)
    return write_netcdf(result, out_path)
