"""Scores of the ``word_similarity`` metric: per layer, Spearman's rho between the model's cosine
similarities of word pairs and human similarity ratings, over the rated pairs only.

The brain side is an RDM of ratings (the ``word_similarity`` dataset kind: ``scale max - rating``,
NaN where unrated); the rated pairs are its finite entries above the diagonal and the human
similarity is minus the dissimilarity (the same ranks as the ratings). The model side is the
cosine similarity of the two words' vectors in the layer; a model given as RDMs gives minus its
dissimilarity. The score equals ``scipy.stats.spearmanr(cosine, rating)`` over the rated pairs.

Inference, vectorised over resamples (:mod:`brainalign.metrics.word_similarity`):

* a permutation null: the model's word labels shuffled (the same permutations for every layer),
  which keeps the rated pairs and the ratings and breaks only the link between a word and its
  vector; ``null_mean`` and quantiles, and a one-sided p value (higher is better) with its FDR
  correction across layers x ROIs;
* a bootstrap of words (``bootstrap: words``, the default): the stimulus words are drawn with
  replacement and a resample keeps the rated pairs among the drawn words, each as many times as
  the product of its two words' counts (the vertex bootstrap of Snijders & Borgatti 1999). Pairs
  that share a word are not independent (SimLex-999's 999 pairs share 1028 words, MEN's 3000 share
  751), so resampling pairs (``bootstrap: pairs``) treats them as if they were and gives too narrow
  an interval when words carry effects of their own. Resampling words captures that dependence;
  when words carry none it is conservative (wider by up to about sqrt(3), like Owen's 2007
  pigeonhole bootstrap of crossed designs), which is the honest side to err on. The interval is
  the bootstrap distribution's percentile interval re-centred so that its median sits on the
  score, so it always contains the score;
* the ceiling: the inter-rater reliability the dataset reports (``reliability`` attribute: the
  file's ``# IRR`` comment or the config's ``reliability``) as ``ceiling_low`` = ``ceiling_high``.
  A reported value counts as reliable (``ceiling_reliable`` = 1 where it is above 0); it has no
  interval. It is the agreement of single raters, so a model can exceed it.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.stats import rankdata

from ..datasets.contract import BrainDataError, is_rdm_data
from ..metrics import stats
from ..metrics import word_similarity as ws
from .common import add_null, scores_dataset, set_ceiling_interval

BOOTSTRAP_MODES = ("words", "pairs")


def rated_pairs(rdm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, human similarity) of the finite entries above the diagonal of a ratings RDM."""
    i, j = np.triu_indices(rdm.shape[0], k=1)
    values = rdm[i, j]
    keep = np.isfinite(values)
    return i[keep], j[keep], -values[keep]


def _similarities(layers):
    """One (n, n) similarity matrix per layer, computed when asked for (one at a time in memory)."""
    if isinstance(layers, xr.DataArray):  # model RDMs (layer, stimulus, stimulus_)
        for k in range(layers.sizes["layer"]):
            yield -layers.isel(layer=k).values.astype(np.float64)
    else:
        for da in layers:
            yield ws.cosine_matrix(da.values)


def score_word_similarity(layers, brain, settings, *, metric, rng, seed=0, confidence=0.95) -> xr.Dataset:
    """Spearman rho of each layer's cosine similarities with the human ratings, per subject x ROI."""
    if not is_rdm_data(brain):
        raise BrainDataError(f"metric '{metric}' needs human ratings as an RDM (a word_similarity dataset), "
                             f"not brain responses ({brain.attrs.get('source_file', 'brain data')})")
    mode = settings.get("bootstrap", "words")
    if mode not in BOOTSTRAP_MODES:
        raise ValueError(f"config key 'metrics.{metric}.bootstrap': unknown mode '{mode}' (known: {BOOTSTRAP_MODES})")
    rdms = brain["rdms"].transpose("subject", "roi", "stimulus", "stimulus_")
    subjects, rois = rdms["subject"].values.astype(str).tolist(), rdms["roi"].values.astype(str).tolist()
    n = rdms.sizes["stimulus"]
    cells = []
    for a in range(len(subjects)):
        for b in range(len(rois)):
            i, j, human = rated_pairs(rdms.values[a, b])
            if len(i) >= 3:
                cells.append((a, b, i, j, human, rankdata(human)))
    if not cells:
        raise BrainDataError(f"metric '{metric}': fewer than 3 rated pairs in every subject x ROI of "
                             f"{brain.attrs.get('source_file', 'the brain data')}")
    n_perm, n_boot = int(settings.get("n_permutations", 1000)), int(settings.get("n_bootstrap", 1000))
    perms = stats.permutations(n, n_perm, rng)
    word_counts = stats.resample_counts(stats.bootstrap_indices(n, n_boot, rng), n) if mode == "words" else None
    weights = []
    for _, _, i, j, _, _ in cells:
        if mode == "words":
            weights.append(ws.word_weights(word_counts, i, j))
        else:  # pairs with replacement
            weights.append(stats.resample_counts(stats.bootstrap_indices(len(i), n_boot, rng), len(i)))

    n_layers = layers.sizes["layer"] if isinstance(layers, xr.DataArray) else len(layers)
    score = np.full((n_layers, len(subjects), len(rois)), np.nan)
    null = np.full((len(perms), n_layers, len(subjects), len(rois)), np.nan)
    boot = np.full((n_boot, n_layers, len(subjects), len(rois)), np.nan)
    for k, similarity in enumerate(_similarities(layers)):
        for (a, b, i, j, human, ranks), w in zip(cells, weights):
            model = similarity[i, j]
            score[k, a, b] = ws.spearman_rows(model, ranks)
            null[:, k, a, b] = ws.permutation_null(similarity, i, j, ranks, perms)
            if n_boot:
                boot[:, k, a, b] = ws.weighted_spearman(model, human, w)

    result = scores_dataset(score, layers, subjects, rois, confidence)
    with warnings.catch_warnings():  # a subject x ROI without rated pairs is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        observed = np.nanmean(score, axis=1)
        null_mean = np.nanmean(null, axis=2)
        boot_mean = np.nanmean(boot, axis=2)
    result["p_value"].values[:] = stats.p_from_null(observed, null_mean, True)
    result["p_value"].attrs["description"] = (
        f"one-sided permutation test of the model's word labels on the subject-mean score ({len(perms)} "
        "permutations)" if len(perms) else "not computed (n_permutations = 0)")
    result["p_fdr"] = (("layer", "roi"), stats.fdr(result["p_value"].values))
    result["p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted p_value across layers x ROIs"
    low, high = stats.centred_percentile_ci(observed, boot_mean, confidence)
    result["boot_ci_low"].values[:] = low
    result["boot_ci_high"].values[:] = high
    if len(subjects) == 1:  # one rater group: the interval is the bootstrap's
        result["ci_low"].values[:], result["ci_high"].values[:] = low, high
        result["ci_low"].attrs["description"] = "the bootstrap interval (boot_ci_low): one subject"
    resampled = ("words with replacement, each resample keeping the rated pairs among the drawn words (a pair "
                 "counted count(word1) x count(word2) times; Snijders & Borgatti 1999)" if mode == "words"
                 else "rated pairs with replacement (pairs that share a word treated as independent)")
    result["boot_ci_low"].attrs["description"] = (
        f"{confidence:.0%} bootstrap interval over {n_boot} resamples of {resampled}: the percentile interval "
        "re-centred so that its median is the score" if n_boot else "not computed (n_bootstrap = 0)")
    add_null(result, null_mean, float(settings.get("alpha", 0.05)), "the model's word labels")
    _add_reliability(result, brain, rois)
    result.attrs.update(n_permutations=len(perms), n_bootstrap=n_boot, bootstrap=mode, higher_is_better=1,
                        measure="spearman(cosine similarity, rating)",
                        n_rated_pairs=",".join(str(len(c[2])) for c in cells))
    return result


def _add_reliability(result: xr.Dataset, brain: xr.Dataset, rois) -> None:
    """The reported inter-rater reliability as the ceiling of every ROI (reliable where above 0)."""
    reliability = float(brain.attrs.get("reliability", np.nan))
    value = np.full(len(rois), reliability)
    result["ceiling_low"] = (("roi",), value)
    result["ceiling_high"] = (("roi",), value.copy())
    nan = np.full(len(rois), np.nan)
    source = brain.attrs.get("reliability_source", "")
    set_ceiling_interval(result, nan, nan.copy(),
                         "the inter-rater reliability the ratings report" + (f" ({source})" if source else "")
                         + "; the agreement of single raters, which a model scored against the mean ratings "
                           "can exceed",
                         "none: a reported value, without an interval")
    result["ceiling_reliable"].values[:] = (np.isfinite(value) & (value > 0)).astype(np.int8)
    result["ceiling_reliable"].attrs["description"] = (
        "1 where the reported inter-rater reliability is above 0 (a reported value counts as reliable)")

