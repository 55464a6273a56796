"""Topological RSA (Lin & Kriegeskorte 2024, PNAS): geo-topological RDM transforms.

The transforms are checked against rsatoolbox's ``geotopological_transform`` (where it is
right: one RDM at a time, upper threshold value >= 1; see below) and against by-hand loops
written from the paper's definitions; at thresholds (0, 1) the scorer gives plain RSA; the
stimulus bootstrap transforms every resampled RDM with its own thresholds, as rsatoolbox's
resampled RDMs would be; a case where only the topology is shared scores higher with the
transform; and the setting reaches the scorer's provenance, the label, the caption, the model x
model ``rsa`` measure and config validation.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import xarray as xr
import yaml
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsatoolbox_compare
from rsatoolbox.rdm.transform import geotopological_transform

from brainalign.config import ConfigError, validate_config
from brainalign.figures.captions import settings_sentence, similarity_sentence
from brainalign.jobs import rsa as rsa_job
from brainalign.metrics import rdm_transforms as rt
from brainalign.metrics import rsa
from brainalign.metrics.registry import metric_label
from brainalign.metrics.similarity import pairwise

from conftest import ROOT

THRESHOLDS = [(0.0, 1.0), (0.1, 0.9), (0.25, 0.5), (0.0, 0.3), (0.6, 0.65)]


# ------------------------------------------------------------------ by hand, from the paper

def _quantile_by_hand(values, q):
    """numpy's default (linear) quantile: position q (n - 1) in the sorted values."""
    x = sorted(values)
    h = q * (len(x) - 1)
    lo = math.floor(h)
    hi = min(lo + 1, len(x) - 1)
    return x[lo] + (h - lo) * (x[hi] - x[lo])


def _gt_by_hand(vector, lower, upper):
    """GT_{l,u}: 0 at or below l, 1 at or above u, linear in between; l, u quantiles of the RDM."""
    present = [d for d in vector if not math.isnan(d)]
    lo, hi = _quantile_by_hand(present, lower), _quantile_by_hand(present, upper)
    out = []
    for d in vector:
        if math.isnan(d):
            out.append(math.nan)
        elif d <= lo:
            out.append(0.0)
        elif d >= hi:
            out.append(1.0)
        else:
            out.append((d - lo) / (hi - lo))
    return out


def _geodesic_by_hand(vector, lower, upper):
    """Shortest paths over the edges with GT < 1 (weighted by GT), / largest finite; no path -> 1."""
    t = _gt_by_hand(vector, lower, upper)
    n = rsa.n_stimuli_of(len(vector))
    dist = [[0.0 if i == j else math.inf for j in range(n)] for i in range(n)]
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            if t[k] < 1.0:  # NaN is not an edge
                dist[i][j] = dist[j][i] = t[k]
            k += 1
    for m in range(n):
        for i in range(n):
            for j in range(n):
                if dist[i][m] + dist[m][j] < dist[i][j]:
                    dist[i][j] = dist[i][m] + dist[m][j]
    g = [dist[i][j] for i in range(n) for j in range(i + 1, n)]
    finite = [x for x, ti in zip(g, t) if math.isfinite(x) and not math.isnan(ti)]
    top = max(finite) if finite else 0.0
    out = []
    for x, ti in zip(g, t):
        if math.isnan(ti):
            out.append(math.nan)
        elif not math.isfinite(x):
            out.append(1.0)
        else:
            out.append(x / top if top > 0 else x)
    return out


def _test_rdms(rng, n=9):
    """Four RDM vectors: continuous, with many ties, constant, and with missing pairs."""
    p = n * (n - 1) // 2
    v = rng.uniform(0.0, 2.0, size=(4, p))
    v[1] = np.round(v[1] * 2) / 2  # values 0, 0.5, ..., 2: ties, quantiles often equal
    v[2] = 0.7  # constant: every threshold ties (a step gives all 0)
    v[3, [2, 11, 20]] = np.nan  # pairs left out, as a resampled RDM's self-pairs
    return v


# ------------------------------------------------------------------ the transforms

@pytest.mark.parametrize("lower, upper", THRESHOLDS)
def test_geotopological_equals_rsatoolbox(lower, upper):
    """rsatoolbox's transform takes one quantile over all RDMs it is given and, assigning in place,
    maps middle values again when the upper threshold value is below 1; so compare one RDM at a
    time, with dissimilarities in [2, 10] (where its result is the definition's)."""
    rng = np.random.default_rng(5)
    vectors = rng.uniform(2.0, 10.0, size=(3, 66))
    ours = rt.geotopological(vectors, lower, upper)
    for r in range(3):
        ref = geotopological_transform(RDMs(vectors[r][None].copy()), lower, upper).get_vectors()[0]
        np.testing.assert_allclose(ours[r], ref, rtol=0, atol=1e-12)
    # the RDMTransform applies the same function
    np.testing.assert_array_equal(rt.RDMTransform("geotopological", lower, upper)(vectors), ours)


@pytest.mark.parametrize("lower, upper", THRESHOLDS)
def test_geotopological_equals_definition_by_hand(lower, upper):
    vectors = _test_rdms(np.random.default_rng(11))
    ours = rt.geotopological(vectors, lower, upper)  # batched over the four RDMs
    for r in range(len(vectors)):
        np.testing.assert_allclose(ours[r], _gt_by_hand(list(vectors[r]), lower, upper), rtol=0, atol=1e-12)
    assert np.array_equal(np.isnan(ours), np.isnan(vectors))
    assert np.nanmin(ours) >= 0.0 and np.nanmax(ours) <= 1.0
    # leading axes (layer x subject) as well
    stacked = np.stack([vectors[:2], vectors[2:]])
    np.testing.assert_array_equal(rt.geotopological(stacked, lower, upper), np.stack([ours[:2], ours[2:]]))


@pytest.mark.parametrize("lower, upper", THRESHOLDS)
def test_geodesic_equals_definition_by_hand(lower, upper):
    rng = np.random.default_rng(12)
    vectors = _test_rdms(rng, n=10)
    # two far-apart clusters: with a low upper threshold the graph falls into two components
    clusters = np.concatenate([rng.normal(0, 0.1, (5, 3)), rng.normal(5, 0.1, (5, 3))])
    vectors = np.concatenate([vectors, rsa.rdm(clusters, "euclidean")[None]])
    ours = rt.geodesic(vectors, lower, upper)
    for r in range(len(vectors)):
        np.testing.assert_allclose(ours[r], _geodesic_by_hand(list(vectors[r]), lower, upper), rtol=0, atol=1e-12)
    assert np.array_equal(np.isnan(ours), np.isnan(vectors))
    if upper <= 0.3:  # within-cluster pairs are 20 of 45: every between-cluster edge is cut
        between = squareform_mask(10, range(5), range(5, 10))
        assert np.all(ours[-1][between] == 1.0)
        assert ours[-1][~between].min() == 0.0


def squareform_mask(n, group_a, group_b):
    """Upper-triangle positions of the pairs with one stimulus in each group."""
    a, b = set(group_a), set(group_b)
    iu = np.triu_indices(n, k=1)
    return np.array([(i in a and j in b) or (i in b and j in a) for i, j in zip(*iu)])


def test_geodesic_is_not_monotone_even_at_full_range():
    """A path through a middle stimulus is shorter than a long direct edge: geodesic changes RSA."""
    points = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 0.2]])
    d = np.sqrt(rsa.rdm(points, "euclidean") * 2)  # Euclidean distances (the RDM divides by units)
    g = rt.geodesic(d, 0.0, 1.0)
    assert not np.array_equal(np.argsort(g, kind="stable"), np.argsort(d, kind="stable"))


def test_full_range_is_monotone_so_rank_comparisons_are_plain_rsa():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.2, 1.8, size=(2, 5, 105))
    t = rt.RDMTransform("geotopological", 0.0, 1.0)
    ta = t(a)
    for row, trow in zip(a, ta):
        order = np.argsort(row, kind="stable")
        assert np.all(np.diff(trow[order]) > 0)  # strictly increasing: no ties made
        np.testing.assert_allclose(trow, (row - row.min()) / (row.max() - row.min()), rtol=0, atol=1e-15)
    for method in ("spearman", "tau-a"):
        np.testing.assert_array_equal(rsa.compare(ta, t(b), method), rsa.compare(a, b, method))
    for method in ("corr", "corr_cov"):
        np.testing.assert_allclose(rsa.compare(ta, t(b), method), rsa.compare(a, b, method), rtol=0, atol=1e-12)
    # cosine is not shift-invariant: the transform changes it (documented)
    assert np.abs(rsa.compare(ta, t(b), "cosine") - rsa.compare(a, b, "cosine")).max() > 1e-3


def test_bad_thresholds_are_refused_by_the_library():
    with pytest.raises(ValueError, match=r"'metrics\.rsa\.rdm_transform\.upper'"):
        rt.RDMTransform.from_settings({"kind": "geotopological", "lower": 0.5, "upper": 0.5},
                                      "metrics.rsa.rdm_transform")
    with pytest.raises(ValueError, match=r"rdm_transform\.lower"):
        rt.RDMTransform.from_settings({"kind": "geodesic", "lower": -0.1})
    with pytest.raises(ValueError, match=r"rdm_transform\.kind"):
        rt.RDMTransform.from_settings({"kind": "topological"})
    assert not rt.RDMTransform.from_settings(None).active
    assert rt.RDMTransform.from_settings({"kind": "geodesic"}) == rt.RDMTransform("geodesic", 0.0, 1.0)


# ------------------------------------------------------------------ stimulus bootstrap

def test_weighted_quantiles_equal_quantiles_of_the_resampled_rdm():
    rng = np.random.default_rng(8)
    n = 11
    vectors = rsa.rdm(rng.standard_normal((3, n, 4)))
    iu = np.triu_indices(n, k=1)
    for _ in range(5):
        idx = rng.integers(0, n, size=n)
        counts = np.bincount(idx, minlength=n)
        w = np.broadcast_to(counts[iu[0]] * counts[iu[1]], vectors.shape)
        expanded = rsa.resample_rdms(vectors, idx, n)  # rsatoolbox's resampled RDM, NaN self-pairs
        qs = [0.0, 0.13, 0.5, 0.87, 1.0]
        np.testing.assert_allclose(rt.weighted_quantiles(vectors, w, qs), np.nanquantile(expanded, qs, axis=-1),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind, lower, upper", [("geotopological", 0.1, 0.8), ("geotopological", 0.3, 0.35),
                                                ("geodesic", 0.0, 0.6), ("geodesic", 0.05, 0.9)])
@pytest.mark.parametrize("method", ["spearman", "corr", "cosine", "tau-a", "corr_cov", "cosine_cov"])
def test_bootstrap_transforms_each_resampled_rdm(kind, lower, upper, method):
    """Each resample equals rsatoolbox's comparison of the resampled RDMs (drawn stimuli with
    their duplicates, self-pairs left out) transformed with their own quantiles."""
    rng = np.random.default_rng(21)
    n = 12
    models = rsa.rdm(rng.standard_normal((3, n, 5)))
    brain = rsa.rdm(rng.standard_normal((2, n, 6)))
    idx = rng.integers(0, n, size=(12, n))
    idx[0, :] = np.r_[0, 0, 1, 1, np.zeros(n - 4, int)]  # two distinct stimuli: NaN, as rsatoolbox's rule
    transform = rt.RDMTransform(kind, lower, upper)
    ours = rsa.bootstrap_compare(models, brain, method, idx, transform=transform)
    assert np.isnan(ours[0]).all() and np.isfinite(ours[1:]).all()
    for k in range(1, len(idx)):
        a = transform(rsa.resample_rdms(models, idx[k], n))
        b = transform(rsa.resample_rdms(brain, idx[k], n))
        if method == "tau-a":
            keep = np.isfinite(a[0])
            ref = rsa.tau_a(a[:, keep], b[:, keep])
        else:
            ref = rsatoolbox_compare(RDMs(a), RDMs(b), method=method)
        np.testing.assert_allclose(ours[k], ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "corr", "cosine"])
def test_batched_transformed_bootstrap_at_full_range_equals_plain(method):
    """The batched path for transforms (skipped at (0, 1) for affine-invariant comparisons, since it
    cannot change them) gives the plain numbers there; cosine is rescaled, so only its own reference."""
    rng = np.random.default_rng(4)
    n = 15
    models = rsa.rdm(rng.standard_normal((4, n, 6)))
    brain = rsa.rdm(rng.standard_normal((3, n, 8)))
    idx = rng.integers(0, n, size=(25, n))
    out = np.full((25, 4, 3), np.nan)
    general = rsa._bootstrap_transformed(models, brain, method, idx, np.arange(25), out,
                                         rt.RDMTransform("geotopological", 0.0, 1.0), 3e8, None, lambda b, r: b)
    if method == "cosine":
        ref = rsa.bootstrap_compare(models, brain, "cosine", idx, transform={"kind": "geotopological"})
    else:
        ref = rsa.bootstrap_compare(models, brain, method, idx)
    np.testing.assert_allclose(general, ref, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ the scorer

def _layers(patterns):
    return [xr.DataArray(x, dims=("stimulus", "unit"), coords={"layer": f"layer{k}", "layer_index": k,
                                                              "depth": k / max(1, len(patterns) - 1)})
            for k, x in enumerate(patterns)]


def _brain(rng, n, signal, subjects=3, units=12, noise=1.0):
    """Responses of ``subjects`` x 2 ROIs; ROI A carries ``signal`` (n, units) plus noise."""
    blocks, subject, roi = [], [], []
    for s in range(subjects):
        for r in ("A", "B"):
            base = signal if r == "A" else rng.standard_normal((n, units))
            blocks.append(base + noise * rng.standard_normal((n, units)))
            subject += [f"s{s}"] * units
            roi += [r] * units
    return xr.Dataset({"responses": (("stimulus", "neuroid"), np.concatenate(blocks, axis=1))},
                      coords={"stimulus_id": ("stimulus", [f"st{i}" for i in range(n)]),
                              "subject": ("neuroid", subject), "roi": ("neuroid", roi)})


@pytest.fixture(scope="module")
def small_case():
    rng = np.random.default_rng(2024)
    n = 14
    signal = rng.standard_normal((n, 12))
    layers = _layers([rng.standard_normal((n, 10)), signal @ rng.standard_normal((12, 9)), rng.standard_normal((n, 7))])
    return layers, _brain(rng, n, signal)


@pytest.mark.parametrize("comparison, bootstrap", [("spearman", "stimuli"), ("spearman", "both"),
                                                   ("tau-a", "stimuli")])
def test_full_range_thresholds_give_plain_rsa_in_the_scorer(small_case, comparison, bootstrap):
    layers, brain = small_case
    base = {"comparison": comparison, "n_permutations": 30, "n_bootstrap": 25, "bootstrap": bootstrap}
    plain = rsa_job.score_rsa(layers, brain, base, rng=np.random.default_rng(9))
    full = rsa_job.score_rsa(layers, brain, {**base, "rdm_transform": {"kind": "geotopological", "lower": 0.0,
                                                                       "upper": 1.0}}, rng=np.random.default_rng(9))
    for name in ("score", "score_mean", "ci_low", "ci_high", "p_value", "p_fdr", "boot_ci_low", "boot_ci_high",
                 "ceiling_low", "ceiling_high", "best_layer_p", "null_low", "null_mean", "null_high"):
        np.testing.assert_array_equal(full[name].values, plain[name].values, err_msg=name)
    assert np.isfinite(plain["boot_ci_low"].values).all()


def test_scorer_with_transform_records_it(small_case):
    layers, brain = small_case
    settings = {"comparison": "spearman", "n_permutations": 20, "n_bootstrap": 20,
                "rdm_transform": {"kind": "geotopological", "lower": 0.1, "upper": 0.9}}
    result = rsa_job.score_rsa(layers, brain, settings, rng=np.random.default_rng(1))
    assert "geo-topological transform" in result.attrs["rdm_transform"]
    assert "0.1" in result.attrs["rdm_transform"] and "0.9" in result.attrs["rdm_transform"]
    assert "Lin & Kriegeskorte" in result["score"].attrs["rdm_transform"]
    assert "geo-topological" in result["brain_rdm"].attrs["rdm_transform"]
    for name in ("score", "p_value", "boot_ci_low", "boot_ci_high", "ceiling_low"):
        assert np.isfinite(result[name].values).all(), name
    # the figures show the transformed RDMs (values in [0, 1], the lowest 10% of pairs at 0)
    brain_rdm = result["brain_rdm"].values
    assert brain_rdm.min() >= 0 and brain_rdm.max() <= 1
    # the scores are the comparisons of the transformed RDMs
    transform = rt.RDMTransform("geotopological", 0.1, 0.9)
    models = transform(rsa_job.model_rdms(layers))
    brain_rdms = rsa_job.brain_rdms(brain)
    expected = brain_rdms.scatter(rsa.compare(models, transform(brain_rdms.vectors), "spearman"))[..., 0]
    np.testing.assert_allclose(result["score"].values, expected, rtol=0, atol=1e-12)
    plain = rsa_job.score_rsa(layers, brain, {**settings, "rdm_transform": None}, rng=np.random.default_rng(1))
    assert plain.attrs["rdm_transform"] == "none"
    assert np.abs(plain["score"].values - result["score"].values).max() > 1e-3
    # label, caption, and the geodesic variant runs too
    assert metric_label("rsa", settings) == "RSA (Spearman rho, correlation RDMs, geo-topological 0.1-0.9)"
    assert metric_label("rsa", {"comparison": "spearman"}) == "RSA (Spearman rho, correlation RDMs)"
    sentence = settings_sentence("rsa", settings, seed=1)
    assert "geo-topological transform" in sentence and "Lin & Kriegeskorte 2024" in sentence
    geodesic = {**settings, "rdm_transform": {"kind": "geodesic", "lower": 0.0, "upper": 0.5}}
    result = rsa_job.score_rsa(layers, brain, geodesic, rng=np.random.default_rng(1))
    assert "geodesic" in result.attrs["rdm_transform"] and np.isfinite(result["boot_ci_low"].values).all()
    assert "geodesic GT 0-0.5" in metric_label("rsa", geodesic)


# ------------------------------------------------------------------ what the transform is for

def test_shared_topology_with_different_geometry_scores_higher():
    """Two representations with the same neighbourhoods but different geometry.

    Clusters: the same four clusters of stimuli, at different places and with different spreads
    in the two systems. The geo-topological transform with thresholds around the within-cluster
    share of pairs keeps which stimuli are together and drops where (between cluster pairs -> 1,
    within -> 0): RSA rises to 1. A path: the same chain of stimuli, straight in one system and
    bent into a horseshoe in the other; its ends come close in the bent one. The geodesic transform
    measures along the chain in both and recovers the shared order.
    """
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(4), 6)  # 24 stimuli; within-cluster pairs: 60 of 276
    a = 10 * np.eye(4, 5)[labels] + rng.normal(0, 0.5, (24, 5))  # a regular simplex of tight clusters
    centres = np.array([[0, 0, 0, 0, 0], [30, 0, 0, 0, 0], [0, 12, 0, 0, 0], [0, 0, 0, 0, 60.0]])
    b = centres[labels] + rng.normal(0, 1.0, (24, 5)) * np.array([2, 1, 1, 0.3, 1])  # uneven, elongated
    ra, rb = rsa.rdm(a, "euclidean")[None], rsa.rdm(b, "euclidean")[None]
    # thresholds at the gap: the largest within-cluster pair (sorted position 59 of 0..275) and the
    # smallest between-cluster pair (60)
    transform = rt.RDMTransform("geotopological", 59 / 275, 60 / 275)
    plain = rsa.compare(ra, rb, "spearman")[0, 0]
    topological = rsa.compare(transform(ra), transform(rb), "spearman")[0, 0]
    assert topological > plain + 0.3 and topological > 1 - 1e-12, (plain, topological)
    # thresholds over a wider band keep more geometry, and the score is between the two
    wide = rsa.compare(*(rt.RDMTransform("geotopological", 0.1, 0.5)(r) for r in (ra, rb)), "spearman")[0, 0]
    assert plain < wide < topological, (plain, wide, topological)

    s = np.sort(rng.uniform(0, 1, 30))  # uneven steps (even ones would all tie at the lower threshold)
    straight = np.stack([s * 3 * np.pi, np.zeros_like(s)], 1)
    bent = np.stack([np.cos(s * 1.8 * np.pi), np.sin(s * 1.8 * np.pi)], 1)  # a horseshoe, ends close
    rs, rbent = rsa.rdm(straight, "euclidean")[None], rsa.rdm(bent, "euclidean")[None]
    geodesic = rt.RDMTransform("geodesic", 0.0, 0.1)
    plain = rsa.compare(rs, rbent, "spearman")[0, 0]
    along = rsa.compare(geodesic(rs), geodesic(rbent), "spearman")[0, 0]
    assert along > plain + 0.1 and along > 0.999, (plain, along)


# ------------------------------------------------------------------ model x model, config

def test_model_similarity_rsa_reads_the_transform():
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal((16, 5)) for _ in range(2)]
    ys = [rng.standard_normal((16, 7)) for _ in range(3)]
    spec = {"kind": "geotopological", "lower": 0.2, "upper": 0.7}
    transform = rt.RDMTransform.from_settings(spec)
    ours = pairwise("rsa", xs, ys, rdm_transform=spec)
    ref = rsa.compare(transform(np.stack([rsa.rdm(x) for x in xs])), transform(np.stack([rsa.rdm(y) for y in ys])),
                      "spearman")
    np.testing.assert_array_equal(ours, ref)
    assert np.abs(ours - pairwise("rsa", xs, ys)).max() > 1e-3
    # (0, 1) gives plain RSA there too, and one settings dict still serves every measure
    np.testing.assert_array_equal(pairwise("rsa", xs, ys, rdm_transform={"kind": "geotopological"}),
                                  pairwise("rsa", xs, ys))
    pairwise("linear_cka", xs, ys, rdm_transform=spec)
    assert "geo-topological transform" in similarity_sentence({"comparison": "spearman", "rdm_transform": spec}, 1)


REDUCED = yaml.safe_load((ROOT / "tests" / "configs" / "reduced.yaml").read_text())


def _config(where, value):
    config = copy.deepcopy(REDUCED)
    if where == "metrics":
        config.setdefault("metrics", {}).setdefault("rsa", {})["rdm_transform"] = value
    elif where == "analysis":
        config["analyses"][1]["settings"]["rsa"]["rdm_transform"] = value
    else:
        config["similarity"] = {"rdm_transform": value}
    return config


@pytest.mark.parametrize("where, value, key", [
    ("metrics", {"kind": "geotopological", "lower": 0.8, "upper": 0.2}, "metrics.rsa.rdm_transform.upper"),
    ("metrics", {"kind": "geotopological", "lower": 0.5, "upper": 0.5}, "metrics.rsa.rdm_transform.upper"),
    ("metrics", {"kind": "geodesic", "lower": 0.3}, None),  # valid: upper defaults to 1
    ("metrics", {"kind": "geotopological", "lower": -0.1}, "metrics.rsa.rdm_transform.lower"),
    ("metrics", {"kind": "geotopological", "upper": 1.5}, "metrics.rsa.rdm_transform.upper"),
    ("metrics", {"kind": "topological"}, "metrics.rsa.rdm_transform.kind"),
    ("metrics", {"lower": 0.1, "upper": 0.9}, "metrics.rsa.rdm_transform"),  # no kind: not silently none
    ("analysis", {"kind": "geotopological", "lower": 0.9, "upper": 0.1}, "analyses.1.settings.rsa.rdm_transform.upper"),
    ("similarity", {"kind": "geodesic", "lower": 0.6, "upper": 0.4}, "similarity.rdm_transform.upper"),
])
def test_config_validation_names_the_key(where, value, key):
    config = _config(where, value)
    if key is None:
        validate_config(config, base_dir=ROOT, data=False)
        assert config["metrics"]["rsa"]["rdm_transform"] == {"kind": "geodesic", "lower": 0.3, "upper": 1.0}
        assert "rdm_transform" not in config["similarity"]  # absent by default: no transform
        return
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        validate_config(config, base_dir=ROOT, data=False)
