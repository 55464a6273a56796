"""The metric registry: every model x brain metric, and everything the rest of the code knows about it.

One :class:`Metric` entry says, in one place, what a metric is called, where its figures go in the
report, how its settings read in an axis label and a caption, which direction is better, whether it
takes precomputed RDMs, the JSON-schema fragment of its settings, and the function that scores one
model x dataset. The config schema and validation, the Snakefile's ``{metric}`` wildcard, the score
job, the figure captions and the summary tables all read this table; nothing else lists metrics.

Adding a metric is one module (the scorer) plus one :func:`register_metric` call. A metric that
lives outside the package (a lab's own) is registered by a module named in the config's ``plugins``
list, which validation imports before it reads ``analyses``.

The scorer is named by import path (``"package.module:function"``) and imported only when a job
runs, so validating a config imports no torch. It is called as
``scorer(layers, brain, settings, metric=name, rng=rng, seed=seed, confidence=confidence)`` and
returns the scores Dataset (``score(layer, subject, roi)``, ``score_mean``, intervals, p value,
ceiling bounds; see :mod:`brainalign.jobs.score`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from typing import Callable

from ..registry import Registry

#: Report categories, in menu order.
CATEGORIES = ("Stimuli", "Models", "Brain data", "RSA", "CKA", "Encoding", "Reading", "Probing", "Human judgements",
              "Geometry", "Summary")


@dataclass(frozen=True)
class Metric:
    """One model x brain metric.

    ``label(settings)`` is the axis label (also stored as the scores file's ``metric_label``);
    ``caption(settings)`` returns the metric's part of the caption's settings sentence (a list of
    reStructuredText clauses; the resampling, interval level and seed are added for every metric);
    ``higher_is_better(settings)`` the direction of the score; ``schema`` the JSON schema of
    ``metrics.<name>`` (a dict, or the name of a ``$defs`` entry of the shipped schema).
    ``figures`` are the extra per-model figures of the report beyond the layer curves (names known
    to :mod:`brainalign.figures`), ``summary_figures`` the extra figures of its model-summary file; ``maps`` asks for per-voxel maps (NIfTI, glass brain, fsaverage5) on
    volumetric data, from per-target ``target_r``; ``threads`` is what its job asks the scheduler for
    (1 for the RDM and kernel measures: their n x n problems run on one thread anyway, see
    :func:`brainalign.metrics.backend.one_thread_if_small`; 2 for encoding, whose ridge is wide).
    """

    name: str
    category: str
    scorer: str
    label: Callable[[dict], str]
    caption: Callable[[dict], list]
    schema: object
    higher_is_better: Callable[[dict], bool] = lambda settings: True
    accepts_rdms: bool = False
    figures: tuple = ()
    maps: bool = False
    threads: int = 2
    description: str = ""
    summary_figures: tuple = ()  # figures of the model-summary file beyond "models" (names in brainalign.figures)

    def score_function(self) -> Callable:
        """The scorer, imported on first use."""
        module, _, attr = self.scorer.partition(":")
        fn = importlib.import_module(module)
        for part in attr.split("."):
            fn = getattr(fn, part)
        return fn


_REGISTRY: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to the registry (``replace=True`` to redefine an existing name)."""
    if metric.category not in CATEGORIES:
        raise ValueError(f"metric {metric.name!r}: category {metric.category!r} is not one of {CATEGORIES}")
    return _REGISTRY.register(metric, replace=replace)


def get_metric(name: str) -> Metric:
    return _REGISTRY.get(name)


def metric_names() -> tuple[str, ...]:
    """Every registered metric, built-ins first, in registration order."""
    return _REGISTRY.names()


def builtin_metric_names() -> tuple[str, ...]:
    return tuple(name for name, m in _REGISTRY.items() if m.scorer.startswith("brainalign."))


def metric_category(name: str) -> str:
    """The report category of a metric's figures."""
    return get_metric(name).category


def metric_label(name: str, settings: dict) -> str:
    """Human-readable name of a metric with its settings, for axes and captions."""
    return get_metric(name).label(settings)


def load_plugins(modules) -> None:
    """Import the modules (dotted names or ``.py`` paths) that register metrics of their own."""
    from pathlib import Path

    for item in modules or ():
        if str(item).endswith(".py"):
            path = Path(item).resolve()
            name = f"brainalign_plugin_{path.stem}"

            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or not path.exists():
                raise FileNotFoundError(f"plugin file not found: {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(str(item))


# --------------------------------------------------------------------------- built-in metrics
NO_CV = "no cross-validation (all stimuli)"


def _rsa_label(settings: dict) -> str:
    from .rsa import comparison_name

    comparison = {"spearman": "Spearman rho", "tau-a": "Kendall tau-a", "corr": "Pearson r",
                  "cosine": "cosine", "corr_cov": "whitened Pearson r", "cosine_cov": "whitened cosine"
                  }[comparison_name(settings.get("comparison", "spearman"))]
    method = settings.get("rdm_method", "correlation")
    brain = settings.get("brain_rdm_method") or method
    rdms = f"{method} RDMs" if brain == method else f"{method} model / {brain} brain RDMs"
    transform = _rsa_transform(settings).short()
    return f"RSA ({comparison}, {rdms}{', ' + transform if transform else ''})"


def _rsa_transform(settings: dict):
    from .rdm_transforms import RDMTransform

    return RDMTransform.from_settings(settings.get("rdm_transform"), "metrics.rsa.rdm_transform")


def _rsa_caption(settings: dict) -> list:
    parts = [f"metric RSA: ``{settings.get('rdm_method', 'correlation')}`` RDMs compared by "
             f"``{settings.get('comparison', 'spearman')}``"]
    transform = _rsa_transform(settings)
    if transform.active:
        parts.append(f"model and brain RDMs after the {transform.describe()} of each RDM's dissimilarities "
                     "(topological RSA, Lin & Kriegeskorte 2024), each bootstrap resample's RDMs with their own "
                     "thresholds")
    return parts + [NO_CV]


def _cka_debiased(settings: dict) -> bool:
    """Debiased (the default) unless switched off; the RBF kernel has the biased estimator only."""
    return settings.get("kernel", "linear") == "linear" and settings.get("debiased", True)


def _cka_label(settings: dict) -> str:
    kind = "debiased linear" if _cka_debiased(settings) else settings.get("kernel", "linear")
    return f"{kind} CKA"


def _cka_caption(settings: dict) -> list:
    kernel = settings.get("kernel", "linear")
    debiased = "debiased (unbiased HSIC)" if _cka_debiased(settings) else "biased"
    return [f"metric CKA: {kernel} kernel, {debiased} HSIC estimator", NO_CV]


def _procrustes_label(settings: dict) -> str:
    return ("angular Procrustes distance (rad)" if settings.get("measure") == "angular_procrustes"
            else "Procrustes similarity (nuclear norm)")


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


def _encoding_caption(settings: dict) -> list:
    parts = ["metric encoding: ridge regression scored by held-out Pearson r "
             f"(ROI summary: {settings.get('roi_summary', 'median')} over targets)",
             _encoding_cv(settings), f"noise ceiling ``{settings.get('ceiling', 'split_half')}``"]
    if settings.get("pca"):
        parts.append(f"PCA to {settings['pca']} components on training rows")
    return parts


GEOMETRY_SCORER = "brainalign.jobs.geometry:score_geometry"

register_metric(Metric(
    name="rsa", category="RSA", scorer="brainalign.jobs.rsa:score_rsa", label=_rsa_label,
    caption=_rsa_caption, schema="metric_rsa", accepts_rdms=True, figures=("rdms", "mds"), threads=1,
    description="RDMs compared by rsatoolbox's comparators, with its noise ceiling and inference"))
register_metric(Metric(
    name="cka", category="CKA", scorer=GEOMETRY_SCORER, label=_cka_label, caption=_cka_caption,
    schema="metric_cka", threads=1, description="linear or RBF CKA, biased or debiased"))
register_metric(Metric(
    name="encoding", category="Encoding", scorer="brainalign.jobs.encoding:score_encoding",
    label=lambda s: f"encoding ({s.get('roi_summary', 'median')} held-out Pearson r)",
    caption=_encoding_caption, schema="metric_encoding", maps=True,
    description="cross-validated ridge from a layer to every target"))
register_metric(Metric(
    name="procrustes", category="CKA", scorer=GEOMETRY_SCORER, label=_procrustes_label,
    caption=lambda s: [f"metric ``{s.get('measure', 'procrustes')}`` (orthogonal Procrustes)", NO_CV],
    schema="metric_procrustes", threads=1, higher_is_better=lambda s: s.get("measure") != "angular_procrustes",
    description="orthogonal Procrustes similarity or angular shape distance"))
register_metric(Metric(
    name="mutual_knn", category="CKA", scorer=GEOMETRY_SCORER,
    label=lambda s: f"mutual k-NN alignment (k={s.get('k', 10)})",
    caption=lambda s: [f"metric mutual k-NN alignment, k = {s.get('k', 10)}", NO_CV],
    schema="metric_mutual_knn", threads=1, description="mutual k-nearest-neighbour alignment"))
register_metric(Metric(
    name="surprisal", category="Reading", scorer="brainalign.jobs.surprisal:score_surprisal",
    label=lambda s: "surprisal coefficient (per bit, over the baseline)",
    caption=lambda s: [
        "metric surprisal: OLS of the measure on the baseline predictors with and without the model's word "
        f"surprisal (spillover {s.get('spillover', 0)}); coefficient, Delta R^2 and Delta log-likelihood",
        f"{s.get('n_bootstrap', 1000)} bootstrap resamples of {s.get('bootstrap', 'groups')}, "
        f"{s.get('n_permutations', 1000)} circular shifts within stories"],
    schema={"type": "object", "additionalProperties": False, "properties": {
        "predictor": {"type": "string", "default": "surprisal",
                      "description": "The activations layer used as the predictor (surprisal or entropy)."},
        "spillover": {"type": "integer", "minimum": 0, "default": 1,
                      "description": "Previous words whose surprisal also enters the full model."},
        "bootstrap": {"type": "string", "enum": ["groups", "words"], "default": "groups"},
        "n_bootstrap": {"type": "integer", "minimum": 0, "default": 1000},
        "n_permutations": {"type": "integer", "minimum": 0, "default": 1000}}},
    figures=("effects",), threads=1,
    description="surprisal against a per-word measure over a baseline (reading times)"))


def _probe_caption(settings: dict) -> list:
    fraction = float(settings.get("depth_fraction", 0.9))
    return [f"metric probe: StandardScaler + ridge read-out (RidgeClassifierCV for classes, RidgeCV for numbers), "
            f"alpha by leave-one-out within each training set; {settings.get('folds', 5)}-fold cross-validation, "
            "stratified by class, grouped where the labels carry groups; score = fold mean of "
            f"{settings.get('categorical_score', 'balanced_accuracy')} (classes) or "
            f"{settings.get('continuous_score', 'r2')} (numbers)",
            f"chance from {settings.get('n_permutations', 1000)} label shuffles (refit), FDR over layers; "
            f"interval from {settings.get('n_bootstrap', 1000)} resamples of the held-out stimuli",
            f"concept depth: first layer at {fraction:.0%} of the best score "
            f"({'above chance' if settings.get('depth_baseline', 'chance') == 'chance' else 'above zero'})"]


register_metric(Metric(
    name="probe", category="Probing", scorer="brainalign.jobs.probe:score_probe",
    label=lambda s: (f"probe ({s.get('categorical_score', 'balanced_accuracy').replace('_', ' ')} / "
                     f"{s.get('continuous_score', 'r2').replace('r2', 'R^2')}, held out)"),
    caption=_probe_caption, schema="metric_probe", threads=1, summary_figures=("concept_depth",),
    description="cross-validated linear probe of labels or norms per layer, with concept depth"))


register_metric(Metric(
    name="word_similarity", category="Human judgements", scorer="brainalign.jobs.word_similarity:score_word_similarity",
    label=lambda s: "Spearman rho (cosine similarity vs human rating)",
    caption=lambda s: [
        "metric word_similarity: Spearman rho between the layer's cosine similarities of word pairs and the human "
        "ratings, over the rated pairs only; ceiling = the reported inter-rater reliability", NO_CV,
        f"{s.get('n_permutations', 1000)} permutations of the model's word labels, {s.get('n_bootstrap', 1000)} "
        f"bootstrap resamples of {s.get('bootstrap', 'words')}"],
    schema={"type": "object", "additionalProperties": False, "properties": {
        "n_permutations": {"type": "integer", "minimum": 0, "default": 1000},
        "n_bootstrap": {"type": "integer", "minimum": 0, "default": 1000},
        "bootstrap": {"type": "string", "enum": ["words", "pairs"], "default": "words",
                      "description": "words: draw words with replacement, keep the rated pairs among them "
                                     "(pairs sharing a word are dependent); pairs: draw rated pairs."},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.05}}},
    accepts_rdms=True, threads=1,
    description="human similarity ratings of word pairs against a layer's cosine similarities (Spearman)"))
