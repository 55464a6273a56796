"""Report categories, and the settings sentence every figure caption carries.

The report (``snakemake --report``) files each figure under one of :data:`CATEGORIES`.
Score figures go to their metric's category (the metric registry's ``category``): RSA, the CKA family
(linear/RBF/debiased CKA, Procrustes, mutual k-NN: measures that compare representational
geometry without RDMs), or Encoding.

:func:`settings_sentence` turns one analysis's settings into the reStructuredText sentence
that ends each caption: the metric, its comparator, the cross-validation scheme, the
resampling (permutations, bootstrap samples), the interval level, and the seed, so a figure
pasted into a paper says what made it.
"""

from __future__ import annotations

from ..metrics.registry import CATEGORIES, GEOMETRY_SCORER, get_metric, metric_category

__all__ = ["CATEGORIES", "metric_category", "settings_sentence", "similarity_sentence"]


def _resampling(metric: str, settings: dict) -> list[str]:
    parts = []
    n_perm = int(settings.get("n_permutations", 0) or 0)
    shuffled = ("permutations of the responses, refit at the chosen alphas" if metric == "encoding"
                else "permutations of stimulus labels")
    parts.append(f"{n_perm} {shuffled}" if n_perm else "no permutation test")
    n_boot = int(settings.get("n_bootstrap", 0) or 0)
    mode = settings.get("bootstrap", "stimuli")
    if n_boot and get_metric(metric).scorer == GEOMETRY_SCORER and mode == "stimuli":
        parts.append(f"{n_boot} subsamples of half the stimuli without replacement")
    elif n_boot:
        parts.append(f"{n_boot} bootstrap samples over {mode}")
    else:
        parts.append("no bootstrap (intervals across subjects)")
    return parts


def settings_sentence(metric: str, settings: dict, seed: int, confidence: float = 0.95) -> str:
    """One reStructuredText sentence stating the settings behind a ``metric`` figure."""
    level = f"{confidence * 100:g}%"
    parts = list(get_metric(metric).caption(settings)) + _resampling(metric, settings)
    parts += [f"{level} intervals", f"seed {seed}"]
    return "Settings: " + "; ".join(parts) + "."


def similarity_sentence(settings: dict, seed: int) -> str:
    """The settings sentence of model x model and dataset x dataset similarity figures."""
    items = ", ".join(f"{key} = {value}" for key, value in sorted(settings.items()) if not isinstance(value, dict))
    transform = ""
    if settings.get("rdm_transform"):
        from ..metrics.rdm_transforms import RDMTransform

        described = RDMTransform.from_settings(settings["rdm_transform"], "similarity.rdm_transform").describe()
        transform = f"; ``rsa`` RDMs after the {described}" if described else ""
    return (f"Settings: {items or 'defaults'}{transform}; no cross-validation (all shared stimuli); "
            f"no resampling; seed {seed}.")
