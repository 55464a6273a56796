"""Scores of the representational-geometry metrics compared without RDMs (CKA, Procrustes,
mutual k-NN), per layer x subject x ROI, with a stimulus-permutation null and stimulus
bootstrap resamples."""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..metrics import cka, similarity, stats
from .common import brain_blocks, scores_dataset


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


def score_geometry(layers, brain, settings, *, metric, rng, seed=0, confidence=0.95) -> xr.Dataset:
    """Scores of CKA, Procrustes or mutual k-NN (``metric``), per subject x ROI."""
    blocks, subjects, rois = brain_blocks(brain)
    values, pairs, null, ceiling, boot, higher_is_better = run_similarity(
        metric, layers, blocks, subjects, rois, settings, rng)
    per_subject = _fill(values, pairs, subjects, rois, len(layers))
    observed_mean = _subject_mean_null(values[None], pairs, subjects, rois)[0]
    p_value = stats.p_from_null(observed_mean, _subject_mean_null(null, pairs, subjects, rois), higher_is_better)
    boot_low, boot_high = stats.percentile_ci(_subject_mean_null(boot, pairs, subjects, rois), confidence)
    result = scores_dataset(per_subject, layers, subjects, rois, confidence, higher_is_better=higher_is_better)
    result["p_value"].values[:] = p_value
    result["boot_ci_low"].values[:] = boot_low
    result["boot_ci_high"].values[:] = boot_high
    result["ceiling_low"].values[:], result["ceiling_high"].values[:] = ceiling
    result["boot_ci_low"].attrs["description"] = (
        f"{confidence:.0%} percentile interval of the subject mean over {boot.shape[0]} bootstrap resamples "
        "of stimuli" if boot.shape[0] else "not computed (n_bootstrap = 0 or not available for this metric)")
    result["p_value"].attrs["description"] = (
        "one-sided permutation test of stimulus labels on the subject-mean score"
        if null.shape[0] else "not computed for this metric")
    result.attrs.update(n_permutations=int(null.shape[0]), n_bootstrap=int(boot.shape[0]),
                        higher_is_better=int(higher_is_better))
    return result


