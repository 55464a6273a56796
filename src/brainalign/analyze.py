"""One model x dataset x metric job, vectorised over layers, subjects and ROIs.

The result follows the scores contract: ``score(layer, subject, roi)`` plus the
across-subject mean with its confidence interval, a permutation p value and
noise-ceiling bounds where the metric defines them. Attributes carry the
metric, its settings, the planted truth of simulated data and provenance.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from scipy import stats as scipy_stats
from tqdm.auto import tqdm

from .datasets.contract import check_brain
from .io import provenance, read_activations, read_netcdf
from .metrics import cka, encoding, rsa, similarity, stats
from .stimuli import StimulusError, align_to

METRICS = ("rsa", "cka", "encoding", "procrustes", "mutual_knn")


def load_inputs(activations_path, brain_path):
    """Read activations and brain data, aligned on the brain's ``stimulus_id`` order."""
    brain = check_brain(read_netcdf(brain_path), what=str(brain_path))
    ids = brain["stimulus_id"].values.astype(str)
    layers, model_attrs = read_activations(activations_path)
    try:
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


def run_rsa(layers, blocks, subjects, rois, settings, rng):
    method = settings.get("comparison", "spearman")
    pairs = _pairs(blocks, subjects, rois)
    model_rdms = np.stack([rsa.correlation_rdm(da.values) for da in layers])  # layers may differ in width
    brain_rdms = np.stack([rsa.correlation_rdm(blocks[p]) for p in pairs])
    values = rsa.compare(model_rdms, brain_rdms, method)
    n_stim = layers[0].sizes["stimulus"]
    null = rsa.permutation_null(model_rdms, brain_rdms, n_stim, method,
                                int(settings.get("n_permutations", 0)), rng)
    ceiling = np.full((2, len(rois)), np.nan)
    for j, r in enumerate(rois):
        rows = [k for k, (_, rr) in enumerate(pairs) if rr == r]
        ceiling[:, j] = rsa.noise_ceiling(brain_rdms[rows], method)
    return values, pairs, null, ceiling


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


def run_encoding(layers, blocks, subjects, rois, settings, rng, seed):
    """Ridge per subject (all its voxels at once), summarised per ROI."""
    summary = np.median if settings.get("roi_summary", "median") == "median" else np.mean
    pairs = _pairs(blocks, subjects, rois)
    values = np.full((len(layers), len(pairs)), np.nan)
    jobs = [(li, s) for li in range(len(layers)) for s in subjects]
    for li, s in tqdm(jobs, desc="encoding", unit="fit"):
        cols = [k for k, (ss, _) in enumerate(pairs) if ss == s]
        y = np.concatenate([blocks[pairs[k]] for k in cols], axis=1)
        bounds = np.cumsum([0] + [blocks[pairs[k]].shape[1] for k in cols])
        r, _ = encoding.cross_validated_r(
            layers[li].values, y, settings["alphas"], int(settings["outer_folds"]),
            int(settings["inner_folds"]), seed)
        for n, k in enumerate(cols):
            values[li, k] = summary(r[bounds[n]:bounds[n + 1]])
    empty_null = np.zeros((0, len(layers), len(pairs)))
    return values, pairs, empty_null, np.full((2, len(rois)), np.nan)


def across_subject_ci(score: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over subjects and its Student-t confidence interval, per (layer, roi)."""
    mean = np.nanmean(score, axis=1)
    n = np.sum(np.isfinite(score), axis=1)
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
    blocks, subjects, rois = brain_blocks(brain)
    rng = np.random.default_rng(seed)
    higher_is_better, boot = True, None
    if metric == "rsa":
        values, pairs, null, ceiling = run_rsa(layers, blocks, subjects, rois, settings, rng)
    elif metric == "encoding":
        values, pairs, null, ceiling = run_encoding(layers, blocks, subjects, rois, settings, rng, seed)
    else:
        values, pairs, null, ceiling, boot, higher_is_better = run_similarity(
            metric, layers, blocks, subjects, rois, settings, rng)
    if boot is None:
        boot = np.zeros((0,) + values.shape)

    n_layers = len(layers)
    per_subject = _fill(values, pairs, subjects, rois, n_layers)
    mean, low, high = across_subject_ci(per_subject, confidence)
    observed_mean = _subject_mean_null(values[None], pairs, subjects, rois)[0]
    p_value = stats.p_from_null(observed_mean, _subject_mean_null(null, pairs, subjects, rois), higher_is_better)
    boot_low, boot_high = stats.percentile_ci(_subject_mean_null(boot, pairs, subjects, rois), confidence)

    layer_dim = ("layer",)
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
            "layer": (layer_dim, [str(da["layer"].item()) for da in layers]),
            "layer_index": (layer_dim, [int(da["layer_index"]) for da in layers]),
            "depth": (layer_dim, [float(da["depth"]) for da in layers]),
            "subject": subjects,
            "roi": rois,
        },
    )
    label = metric_label(metric, settings)
    result["score"].attrs["long_name"] = label
    result["ci_low"].attrs["description"] = f"{confidence:.0%} Student-t interval across subjects"
    result["boot_ci_low"].attrs["description"] = (
        f"{confidence:.0%} percentile interval of the subject mean over {boot.shape[0]} bootstrap resamples "
        "of stimuli" if boot.shape[0] else "not computed (n_bootstrap = 0 or not available for this metric)")
    result["p_value"].attrs["description"] = (
        "one-sided permutation test of stimulus labels on the subject-mean score"
        if null.shape[0] else "not computed for this metric")
    names = names or {}
    result.attrs.update(provenance(
        {"metric": metric, **settings}, seed=seed,
        metric=metric, metric_label=label, metric_settings=json.dumps(settings, sort_keys=True),
        confidence=confidence, n_permutations=int(null.shape[0]), n_bootstrap=int(boot.shape[0]),
        higher_is_better=int(higher_is_better),
        model=names.get("model", model_attrs.get("model_name", "")),
        dataset=names.get("dataset", ""),
        model_checksum=model_attrs.get("model_checksum", ""),
        model_revision=model_attrs.get("model_revision", ""),
        pooling=model_attrs.get("pooling", ""),
        dataset_checksum=brain.attrs.get("dataset_checksum", ""),
        planted=brain.attrs.get("planted", ""),
    ))
    return result


def metric_label(metric: str, settings: dict) -> str:
    """Human-readable name of a metric with its settings, for axes and captions."""
    if metric == "rsa":
        comparison = {"spearman": "Spearman rho", "tau-a": "Kendall tau-a"}[settings.get("comparison", "spearman")]
        return f"RSA ({comparison}, {settings.get('rdm_method', 'correlation')} RDMs)"
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
