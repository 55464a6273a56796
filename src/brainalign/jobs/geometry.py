"""Scores of the representational-geometry metrics compared without RDMs (CKA, Procrustes,
mutual k-NN), per layer x subject x ROI, with their inference:

* a permutation null (stimulus labels of the brain data shuffled), its mean and quantiles
  stored beside the score, and a one-sided p value on the subject-mean score;
* an interval from resampling stimuli or subjects. Stimuli are *subsampled* (half of them,
  drawn without replacement; the delete-d jackknife of Shao & Wu 1989 and the subsampling
  interval of Politis & Romano 1994): a bootstrap with replacement would pair a stimulus with
  its own copy, which makes any two representations look alike for kernel, neighbour and
  alignment measures. Subjects are resampled with replacement (expanded percentile interval);
* a leave-one-subject-out noise ceiling: each subject's block against the other subjects'
  blocks of the same ROI concatenated along units (lower bound) and against all subjects'
  (upper bound), the construction of rsatoolbox's RDM ceiling applied to the measure itself.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..metrics import cka, similarity, stats
from .common import add_ceiling, add_null, brain_blocks, scores_dataset

BOOTSTRAP_MODES = ("stimuli", "subjects")
GRAM_MEASURES = {"linear_cka": ("linear", False), "debiased_cka": ("linear", True), "rbf_cka": ("rbf", False)}


def _pairs(blocks, subjects, rois):
    return [(s, r) for s in subjects for r in rois if (s, r) in blocks]


def _grid(values: np.ndarray, pairs, subjects, rois) -> np.ndarray:
    """Scatter (..., pair) values into a (..., subject, roi) array with NaN gaps."""
    out = np.full(values.shape[:-1] + (len(subjects), len(rois)), np.nan)
    s_index = {s: i for i, s in enumerate(subjects)}
    r_index = {r: i for i, r in enumerate(rois)}
    for k, (s, r) in enumerate(pairs):
        out[..., s_index[s], r_index[r]] = values[..., k]
    return out


def _subject_mean(values: np.ndarray, pairs, subjects, rois, weights: np.ndarray | None = None) -> np.ndarray:
    """(..., pair) -> (..., roi), the mean over subjects like the score; ``weights``
    (B, subject) weight subjects per resample (a subject bootstrap), ``values`` then (B, ..., pair)."""
    grid = _grid(values, pairs, subjects, rois)  # (..., subject, roi)
    present = np.isfinite(grid)
    w = np.ones(grid.shape[-2]) if weights is None else weights
    w = w.reshape(w.shape[:-1] + (1,) * (grid.ndim - w.ndim - 1) + (w.shape[-1], 1)) * present
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(present, grid, 0.0) * w).sum(-2) / w.sum(-2)


def similarity_measure(metric: str, settings: dict) -> str:
    """The :mod:`brainalign.metrics.similarity` measure a model x brain metric uses."""
    if metric == "cka":
        if settings.get("kernel", "linear") == "rbf":
            return "rbf_cka"
        return "debiased_cka" if settings.get("debiased", True) else "linear_cka"
    if metric == "procrustes":
        return settings.get("measure", "procrustes")
    return metric


def _options(settings: dict) -> dict:
    return {key: settings[key] for key in ("sigma_factor", "k") if key in settings}


def _grams(measure, xs, settings):
    kernel, _ = GRAM_MEASURES[measure]
    sf = float(settings.get("sigma_factor", 1.0))
    return np.stack([similarity.gram(x, kernel, sf).double().cpu().numpy() for x in xs])


def _null(measure, xs, ys, settings, n_permutations, rng) -> np.ndarray:
    """(perm, layer, pair) scores with the brain's stimulus labels shuffled."""
    if measure in GRAM_MEASURES:  # permuting stimuli permutes rows and columns of the Gram matrices
        return cka.permutation_null(_grams(measure, xs, settings), _grams(measure, ys, settings),
                                    n_permutations, rng, debiased=GRAM_MEASURES[measure][1])
    perms = stats.permutations(xs[0].shape[0], n_permutations, rng)
    options = _options(settings)
    out = np.zeros((len(perms), len(xs), len(ys)))
    chunk = max(1, 256 // len(ys))  # permuted brain blocks per call: one call scores them all
    with tqdm(total=len(perms), desc=f"{measure} permutations", unit="perm") as bar:
        for start in range(0, len(perms), chunk):
            rows = perms[start:start + chunk]
            values = similarity.pairwise(measure, xs, [y[p] for p in rows for y in ys], **options)
            out[start:start + len(rows)] = values.reshape(len(xs), len(rows), len(ys)).transpose(1, 0, 2)
            bar.update(len(rows))
    return out


def _subsamples(measure, xs, ys, settings, indices) -> np.ndarray:
    """(sample, layer, pair) scores on subsamples of stimuli (the same rows of model and brain)."""
    if not len(indices):
        return np.zeros((0, len(xs), len(ys)))
    options = _options(settings)
    if measure in ("linear_cka", "debiased_cka"):  # a linear Gram restricted to rows is the rows' Gram
        kx, ky = _grams(measure, xs, settings), _grams(measure, ys, settings)
        debiased = GRAM_MEASURES[measure][1]
        m = indices.shape[1]
        out = np.empty((len(indices), len(xs), len(ys)))
        chunk = max(1, int(2.5e8 // (8 * m * m * (len(xs) + len(ys)))))
        with tqdm(total=len(indices), desc=f"{measure} subsamples", unit="sample") as bar:
            for start in range(0, len(indices), chunk):  # a block of subsamples in one batched call
                b = indices[start:start + chunk, :, None], indices[start:start + chunk, None, :]
                out[start:start + chunk] = similarity.cka_matrix(kx[:, b[0], b[1]].swapaxes(0, 1),
                                                                 ky[:, b[0], b[1]].swapaxes(0, 1), debiased=debiased)
                bar.update(len(b[0]))
        return out
    # procrustes and mutual k-NN: a block of subsamples per batched call (the others one at a time)
    width = sum(np.shape(v)[1] for v in [*xs, *ys])
    chunk = max(1, int(2.5e8 // (8 * indices.shape[1] * width)))
    out = np.empty((len(indices), len(xs), len(ys)))
    with tqdm(total=len(indices), desc=f"{measure} subsamples", unit="sample") as bar:
        for start in range(0, len(indices), chunk):
            rows = indices[start:start + chunk]
            out[start:start + len(rows)] = similarity.subsample_pairwise(measure, xs, ys, rows, **options)
            bar.update(len(rows))
    return out


def _diagonal(measure, xs, ys, settings) -> np.ndarray:
    """measure(xs[i], ys[i]) for every i."""
    return np.array([similarity.pairwise(measure, [x], [y], **_options(settings))[0, 0] for x, y in zip(xs, ys)])


def loso_ceiling(measure, blocks, subjects, rois, settings, rng, n_null: int = 5):
    """Leave-one-subject-out ceiling per (subject, roi): the measure between a subject's block
    and the other subjects' blocks concatenated along units (lower) or all subjects' blocks,
    its own included (upper), and the lower bound's chance level (its mean over ``n_null``
    shuffles of the subject's stimulus labels; far from 0 for mutual k-NN and Procrustes).
    NaN with fewer than 2 subjects in an ROI."""
    lower = np.full((len(subjects), len(rois)), np.nan)
    upper, chance = lower.copy(), lower.copy()
    perms = stats.permutations(next(iter(blocks.values())).shape[0], n_null, rng)
    for j, r in enumerate(rois):
        present = [s for s in subjects if (s, r) in blocks]
        if len(present) < 2:
            continue
        own = [blocks[(s, r)] for s in present]
        others = [np.concatenate([blocks[(t, r)] for t in present if t != s], axis=1) for s in present]
        everyone = np.concatenate(own, axis=1)
        rows = [list(subjects).index(s) for s in present]
        lower[rows, j] = _diagonal(measure, own, others, settings)
        upper[rows, j] = _diagonal(measure, own, [everyone] * len(own), settings)
        chance[rows, j] = np.mean([_diagonal(measure, [x[p] for x in own], others, settings) for p in perms], axis=0)
    return lower, upper, chance


def run_similarity(metric, layers, blocks, subjects, rois, settings, rng, confidence=0.95):
    """Scores, permutation null and resampling interval of one geometry metric: arrays keyed
    by what :func:`score_geometry` stores."""
    measure = similarity_measure(metric, settings)
    mode = settings.get("bootstrap", "stimuli")
    if mode not in BOOTSTRAP_MODES:
        raise ValueError(f"config key 'metrics.{metric}.bootstrap': unknown mode '{mode}' (known: {BOOTSTRAP_MODES})")
    pairs = _pairs(blocks, subjects, rois)
    xs = [da.values.astype(np.float64) for da in layers]
    ys = [blocks[p] for p in pairs]
    values = similarity.pairwise(measure, xs, ys, **_options(settings))  # (layer, pair)
    observed = _subject_mean(values, pairs, subjects, rois)  # (layer, roi)
    null = _subject_mean(_null(measure, xs, ys, settings, int(settings.get("n_permutations", 0)), rng),
                         pairs, subjects, rois)
    higher = similarity.HIGHER_IS_BETTER[measure]
    n_boot = int(settings.get("n_bootstrap", 0))
    n = xs[0].shape[0]
    if mode == "stimuli":
        indices = stats.subsample_indices(n, n_boot, rng)
        samples = _subject_mean(_subsamples(measure, xs, ys, settings, indices), pairs, subjects, rois)
        low, high = stats.subsample_ci(observed, samples, confidence, indices.shape[1], n)
        interval = (f"{confidence:.0%} subsampling interval: the subject-mean score on {n_boot} subsamples of "
                    f"{indices.shape[1]} of {n} stimuli drawn without replacement, its spread around its median "
                    "scaled by sqrt(m / (n - m)) and centred on the score (Politis & Romano 1994; Shao & Wu 1989)")
    else:
        counts = stats.resample_counts(stats.bootstrap_indices(len(subjects), n_boot, rng), len(subjects))
        samples = _subject_mean(np.broadcast_to(values, (n_boot,) + values.shape), pairs, subjects, rois, counts)
        low, high = stats.expanded_percentile_ci(samples, confidence, len(subjects))
        interval = (f"{confidence:.0%} expanded percentile interval (Hesterberg 2015) of the subject mean over "
                    f"{n_boot} bootstrap resamples of subjects")
    if settings.get("noise_ceiling", True):
        lower, upper, chance = loso_ceiling(measure, blocks, subjects, rois, settings, rng)
    else:
        lower = upper = chance = np.full((len(subjects), len(rois)), np.nan)
    return {"values": values, "pairs": pairs, "observed": observed, "null": null, "boot_low": low,
            "boot_high": high, "n_bootstrap": int(samples.shape[0]), "interval": interval, "bootstrap": mode,
            "ceiling_lower": lower, "ceiling_upper": upper, "ceiling_chance": chance, "higher_is_better": higher, "measure": measure}


def score_geometry(layers, brain, settings, *, metric, rng, seed=0, confidence=0.95) -> xr.Dataset:
    """Scores of CKA, Procrustes or mutual k-NN (``metric``), per subject x ROI."""
    blocks, subjects, rois = brain_blocks(brain)
    out = run_similarity(metric, layers, blocks, subjects, rois, settings, rng, confidence)
    higher = out["higher_is_better"]
    per_subject = _grid(out["values"], out["pairs"], subjects, rois)
    result = scores_dataset(per_subject, layers, subjects, rois, confidence, higher_is_better=higher)
    result["p_value"].values[:] = stats.p_from_null(out["observed"], out["null"], higher)
    result["p_fdr"] = (("layer", "roi"), stats.fdr(result["p_value"].values))
    result["boot_ci_low"].values[:] = out["boot_low"]
    result["boot_ci_high"].values[:] = out["boot_high"]
    result["boot_ci_low"].attrs["description"] = (out["interval"] if out["n_bootstrap"]
                                                  else "not computed (n_bootstrap = 0)")
    result["p_value"].attrs["description"] = (
        f"one-sided permutation test of stimulus labels on the subject-mean score ({out['null'].shape[0]} "
        "permutations)" if out["null"].shape[0] else "not computed (n_permutations = 0)")
    result["p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted p_value across layers x ROIs"
    add_null(result, out["null"], float(settings.get("alpha", 0.05)), out["measure"])
    add_ceiling(result, out["ceiling_lower"], out["ceiling_upper"], confidence, out["ceiling_chance"],
                f"leave-one-subject-out ceiling of {out['measure']}: each subject against the other subjects' "
                "units of the ROI (lower) and against all subjects' (upper), mean over subjects")
    result.attrs.update(n_permutations=int(out["null"].shape[0]), n_bootstrap=out["n_bootstrap"],
                        bootstrap=out["bootstrap"], higher_is_better=int(higher), measure=out["measure"])
    return result
