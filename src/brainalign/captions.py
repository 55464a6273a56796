"""Report categories, and the settings sentence every figure caption carries.

The report (``snakemake --report``) files each figure under one of :data:`CATEGORIES`.
Score figures go to their metric's family (:func:`metric_category`): RSA, the CKA family
(linear/RBF/debiased CKA, Procrustes, mutual k-NN: measures that compare representational
geometry without RDMs), or Encoding.

:func:`settings_sentence` turns one analysis's settings into the reStructuredText sentence
that ends each caption: the metric, its comparator, the cross-validation scheme, the
resampling (permutations, bootstrap samples), the interval level, and the seed, so a figure
pasted into a paper says what made it.
"""

from __future__ import annotations

CATEGORIES = ("Stimuli", "Models", "Brain data", "RSA", "CKA", "Encoding", "Summary")

METRIC_CATEGORY = {"rsa": "RSA", "cka": "CKA", "procrustes": "CKA", "mutual_knn": "CKA", "encoding": "Encoding"}


def metric_category(metric: str) -> str:
    """The report category of a metric's figures."""
    try:
        return METRIC_CATEGORY[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_CATEGORY)}") from None


def _resampling(settings: dict) -> list[str]:
    parts = []
    n_perm = int(settings.get("n_permutations", 0) or 0)
    parts.append(f"{n_perm} permutations of stimulus labels" if n_perm else "no permutation test")
    n_boot = int(settings.get("n_bootstrap", 0) or 0)
    if n_boot:
        parts.append(f"{n_boot} bootstrap samples over {settings.get('bootstrap', 'stimuli')}")
    else:
        parts.append("no bootstrap (intervals across subjects)")
    return parts


def _encoding_cv(settings: dict) -> str:
    if settings.get("split"):
        outer = f"the fixed train/test split in coordinate ``{settings['split']}``"
    else:
        outer = f"{settings.get('outer_folds', 5)}-fold outer cross-validation over stimuli"
        if settings.get("groups"):
            outer += f" grouped by ``{settings['groups']}``"
    inner = settings.get("inner_folds", 5)
    inner = "leave-one-out" if inner == "loo" else f"{inner}-fold"
    alphas = settings.get("alphas") or []
    alpha_text = f"{len(alphas)} alphas from {min(alphas):g} to {max(alphas):g}" if alphas else "the default alphas"
    return f"{outer}; ridge alpha per target by {inner} inner cross-validation over {alpha_text}"


def settings_sentence(metric: str, settings: dict, seed: int, confidence: float = 0.95) -> str:
    """One reStructuredText sentence stating the settings behind a ``metric`` figure."""
    level = f"{confidence * 100:g}%"
    if metric == "rsa":
        parts = [f"metric RSA: ``{settings.get('rdm_method', 'correlation')}`` RDMs compared by "
                 f"``{settings.get('comparison', 'spearman')}``", "no cross-validation (all stimuli)"]
        parts += _resampling(settings)
    elif metric == "cka":
        kernel = settings.get("kernel", "linear")
        debiased = "debiased" if settings.get("debiased") else "biased"
        parts = [f"metric CKA: {kernel} kernel, {debiased} HSIC estimator", "no cross-validation (all stimuli)"]
        parts += _resampling(settings)
    elif metric == "procrustes":
        parts = [f"metric ``{settings.get('measure', 'procrustes')}`` (orthogonal Procrustes)",
                 "no cross-validation (all stimuli)"]
        parts += _resampling(settings)
    elif metric == "mutual_knn":
        parts = [f"metric mutual k-NN alignment, k = {settings.get('k', 10)}", "no cross-validation (all stimuli)"]
        parts += _resampling(settings)
    elif metric == "encoding":
        parts = ["metric encoding: ridge regression scored by held-out Pearson r "
                 f"(ROI summary: {settings.get('roi_summary', 'median')} over targets)",
                 _encoding_cv(settings), f"noise ceiling ``{settings.get('ceiling', 'split_half')}``"]
        if settings.get("pca"):
            parts.append(f"PCA to {settings['pca']} components on training rows")
        parts += _resampling(settings)
    else:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_CATEGORY)}")
    parts += [f"{level} intervals", f"seed {seed}"]
    return "Settings: " + "; ".join(parts) + "."


def similarity_sentence(settings: dict, seed: int) -> str:
    """The settings sentence of model x model and dataset x dataset similarity figures."""
    items = ", ".join(f"{key} = {value}" for key, value in sorted(settings.items()) if not isinstance(value, dict))
    return (f"Settings: {items or 'defaults'}; no cross-validation (all shared stimuli); "
            f"no resampling; seed {seed}.")
