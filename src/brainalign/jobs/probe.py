"""The probe scorer: a cross-validated linear read-out of each label set from every layer.

Each target of the dataset (a ``labels`` column, or a norm of a ``responses_table``) is probed from
every layer by :mod:`brainalign.metrics.probe` (``StandardScaler`` + ``RidgeClassifierCV`` for
classes, + ``RidgeCV`` for numbers; alpha by leave-one-out within each training set). Folds are
stratified by class for categorical labels (``StratifiedKFold``, or ``StratifiedGroupKFold`` when the
data carry a ``group`` coordinate), ``KFold``/``GroupKFold`` otherwise, shuffled from the job's seed
and shared by every layer. The score is the fold mean (``cross_val_score``'s convention).

Inference, all with the same folds:

* chance: ``n_permutations`` shuffles of the labels within each fold's held-out stimuli, each probed like the real labels
  (alpha re-chosen), batched: ``null_mean`` is the chance level shown beside the score, ``p_value``
  one-sided, ``p_fdr`` Benjamini-Hochberg over layers per label set;
* interval: ``n_bootstrap`` resamples of the held-out stimuli within each fold (the same resamples for
  every layer), percentile interval of the fold mean, median-centred on the estimate;
* concept depth: per label set, the relative depth of the first layer whose score reaches
  ``depth_fraction`` of the best layer's (both above the chance level when ``depth_baseline`` is
  ``chance``), with its percentile interval over the same resamples.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..metrics import probe, stats
from .common import add_null, scores_dataset

SCORE_NAMES = probe.CATEGORICAL_SCORES + probe.CONTINUOUS_SCORES


def _folds(codes: np.ndarray, categorical: bool, groups, n_folds: int, seed: int, what: str):
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    n = len(codes)
    if categorical:
        counts = np.bincount(codes.astype(int))
        if counts.min() < n_folds:
            raise ValueError(f"{what}: class {int(counts.argmin())} has {counts.min()} stimuli, fewer than "
                             f"metrics.probe.folds = {n_folds}; lower the folds or drop rare classes")
        splitter = (StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed) if groups is not None
                    else StratifiedKFold(n_folds, shuffle=True, random_state=seed))
        return list(splitter.split(np.zeros(n), codes, groups))
    if groups is not None:
        if len(np.unique(groups)) < n_folds:
            raise ValueError(f"{what}: {len(np.unique(groups))} groups, fewer than metrics.probe.folds = {n_folds}")
        return list(GroupKFold(n_folds).split(np.zeros(n), codes, groups))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def within_fold_permutations(folds, n: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Label shuffles that keep each label in its fold: (permutation, stimulus) indices. Every fold
    keeps its class counts, so the shuffled labels are stratified like the real ones; shuffling over
    all stimuli instead unbalances the folds and puts the null below chance (a test class that is
    over-represented in its fold is under-represented in training)."""
    out = np.tile(np.arange(n), (n_permutations, 1))
    for _, test in folds:
        out[:, test] = test[rng.permuted(np.tile(np.arange(len(test)), (n_permutations, 1)), axis=1)]
    return out


def _targets(brain: xr.Dataset):
    """(column name, values (stimulus,), categorical?, classes) per neuroid."""
    resp = brain["responses"]
    if "repetition" in resp.dims:
        resp = resp.mean("repetition")
    resp = resp.transpose("stimulus", "neuroid")
    kinds = (brain["label_type"].values.astype(str) if "label_type" in brain.coords
             else np.full(resp.sizes["neuroid"], "continuous"))
    names = brain["roi"].values.astype(str)
    if len(set(names)) != len(names):
        raise ValueError("probe: each target must be its own ROI (give the dataset one ROI per column)")
    out = []
    for j, name in enumerate(names):
        categorical = kinds[j] == "categorical"
        values = resp.values[:, j].astype(np.float64)
        classes = json.loads(brain.attrs.get(f"classes_{name}", "[]")) if categorical else []
        out.append((name, values, categorical, classes))
    return out


def score_probe(layers, brain, settings, *, metric="probe", rng=None, seed=0, confidence=0.95) -> xr.Dataset:
    """Probe scores (layer, subject, roi), one ROI per label set."""
    n_folds = int(settings.get("folds", 5))
    alphas = settings.get("alphas") or probe.DEFAULT_ALPHAS
    n_perm, n_boot = int(settings.get("n_permutations", 1000)), int(settings.get("n_bootstrap", 1000))
    score_of = {True: settings.get("categorical_score", "balanced_accuracy"),
                False: settings.get("continuous_score", "r2")}
    rng = np.random.default_rng(seed) if rng is None else rng
    targets = _targets(brain)
    n = brain.sizes["stimulus"]
    groups = brain["group"].values.astype(str) if "group" in brain.coords else None
    plans = []
    for name, values, categorical, classes in targets:
        folds = _folds(values, categorical, groups, n_folds, seed, f"probe of '{name}'")
        counts = [stats.resample_counts(stats.bootstrap_indices(len(test), n_boot, rng), len(test))
                  for _, test in folds]
        perms = within_fold_permutations(folds, n, n_perm, rng)          # (perm, stimulus)
        sets = np.concatenate([values[None], values[perms]])              # (set, stimulus)
        plans.append((name, sets, categorical, len(classes), folds, counts))

    n_layers, n_targets = len(layers), len(targets)
    observed = {k: np.full((n_layers, n_targets), np.nan) for k in SCORE_NAMES}
    null = np.full((n_perm, n_layers, n_targets), np.nan)
    boot = np.full((n_boot, n_layers, n_targets), np.nan)
    chosen = np.full((n_layers, n_targets), np.nan)
    fits: dict = {}
    for li, layer in enumerate(tqdm(layers, desc="probe", unit="layer", leave=False)):
        x = layer.transpose("stimulus", ...).values.astype(np.float64)
        fits.clear()
        for ti, (name, sets, categorical, n_classes, folds, counts) in enumerate(plans):
            kind = "categorical" if categorical else "continuous"
            main = score_of[categorical]
            per_fold, per_boot, fold_alpha = {}, [], []
            for fi, (train, test) in enumerate(folds):
                key = (fi, train.tobytes())
                if key not in fits:
                    fits[key] = probe.FoldFit.of(x[train], x[test])
                codes = sets[:, train]
                y_train = probe.class_columns(codes.astype(int), n_classes) if categorical else codes[..., None]
                pred, alpha = probe.probe_fold(fits[key], y_train, alphas)
                truth = sets[:, test].astype(int) if categorical else sets[:, test]
                for k, v in probe.fold_scores(pred, truth, kind, n_classes).items():
                    per_fold.setdefault(k, []).append(v)
                per_boot.append(probe.fold_scores(pred[:1], truth[:1], kind, n_classes, counts[fi])[main][:, 0])
                fold_alpha.append(alpha[0])
            for k, v in per_fold.items():
                observed[k][li, ti] = np.mean(v, axis=0)[0]
            if n_perm:
                null[:, li, ti] = np.mean(per_fold[main], axis=0)[1:]
            boot[:, li, ti] = np.mean(per_boot, axis=0)
            chosen[li, ti] = float(np.exp(np.mean(np.log(fold_alpha))))

    main_of = np.array([score_of[t[2]] for t in targets])
    score = np.stack([observed[main_of[t]][:, t] for t in range(n_targets)], axis=1)  # (layer, roi)
    subject = str(brain["subject"].values.astype(str)[0])
    result = scores_dataset(score[:, None, :], layers, [subject], [t[0] for t in targets], confidence)
    low, high = stats.centred_percentile_ci(score, boot, confidence)  # resampling biases R^2 downward
    for var in ("ci_low", "boot_ci_low"):
        result[var] = (("layer", "roi"), low)
    for var in ("ci_high", "boot_ci_high"):
        result[var] = (("layer", "roi"), high)
    result["ci_low"].attrs["description"] = (
        f"{confidence:.0%} interval over {n_boot} bootstrap resamples of the held-out stimuli within each fold: "
        "percentiles of the resampled scores shifted so that their median is the estimate (resampling biases "
        "R^2 and balanced accuracy downward; the shift removes that bias and keeps the estimate inside)")
    add_null(result, null, float(settings.get("alpha", 0.05)), "labels shuffled within folds, probe refit")
    p = stats.p_from_null(score, null) if n_perm else np.full(score.shape, np.nan)
    result["p_value"] = (("layer", "roi"), p)
    result["p_value"].attrs["description"] = f"one-sided permutation p value ({n_perm} label shuffles)"
    result["p_fdr"] = (("layer", "roi"), np.stack([stats.fdr(p[:, t]) for t in range(n_targets)], axis=1))
    result["p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted p value over layers, per label set"
    for k in SCORE_NAMES:
        result[k] = (("layer", "roi"), observed[k])
        result[k].attrs["description"] = f"fold-mean {k} of the held-out stimuli (NaN where it does not apply)"
    result["alpha_chosen"] = (("layer", "roi"), chosen)
    result["alpha_chosen"].attrs["description"] = "geometric mean over folds of the alpha chosen by leave-one-out"
    result = result.assign_coords(score_measure=("roi", main_of.astype(str)),
                                  label_type=("roi", np.array(["categorical" if t[2] else "continuous"
                                                               for t in targets])),
                                  n_classes=("roi", np.array([len(t[3]) for t in targets], dtype=int)))
    result["score_boot"] = (("bootstrap", "layer", "roi"), boot)
    result["score_boot"].attrs["description"] = (
        "the score on each bootstrap resample of the held-out stimuli; the resamples depend only on the seed, "
        "the stimuli and the labels, so two models scored with one seed are paired resample by resample")
    add_concept_depth(result, boot, settings, confidence)
    result.attrs.update(n_permutations=n_perm, n_bootstrap=n_boot, folds=n_folds,
                        fold_groups=int(groups is not None), alphas=json.dumps(list(map(float, alphas))))
    return result


def add_concept_depth(result: xr.Dataset, boot: np.ndarray, settings: dict, confidence: float) -> xr.Dataset:
    """``concept_depth`` (roi): relative depth of the first layer reaching ``depth_fraction`` of the
    best score (above chance with ``depth_baseline: chance``), its bootstrap interval and layer."""
    fraction = float(settings.get("depth_fraction", 0.9))
    baseline = settings.get("depth_baseline", "chance")
    depth_of = result["depth"].values.astype(float)
    hidden = np.isfinite(depth_of) & ~np.isin(result["layer"].values.astype(str), ("surprisal", "entropy"))
    curves = result["score_mean"].transpose("roi", "layer").values[:, hidden]
    chance = (result["null_mean"].transpose("roi", "layer").values[:, hidden]
              if baseline == "chance" else np.zeros_like(curves))
    chance = np.nan_to_num(chance)
    depth, first = probe.concept_depth(curves, depth_of[hidden], fraction, chance)
    boot_depth, _ = probe.concept_depth(np.moveaxis(boot, 1, 2)[..., hidden], depth_of[hidden], fraction, chance)
    low, high = stats.percentile_ci(boot_depth, confidence)
    names = result["layer"].values.astype(str)[hidden]
    result["concept_depth"] = (("roi",), depth)
    result["concept_depth_ci_low"] = (("roi",), low)
    result["concept_depth_ci_high"] = (("roi",), high)
    result["concept_layer"] = (("roi",), np.array([names[i] if i >= 0 else "" for i in first]))
    base = "above the permutation chance level" if baseline == "chance" else "above zero"
    result["concept_depth"].attrs["description"] = (
        f"relative depth of the first layer whose score reaches {fraction:.0%} of the best layer's, {base}; "
        "the layer choice is made on the same data as the scores (in-sample)")
    result["concept_depth_ci_low"].attrs["description"] = (
        f"{confidence:.0%} percentile interval of the concept depth over the bootstrap resamples")
    result.attrs.update(depth_fraction=fraction, depth_baseline=baseline)
    return result
