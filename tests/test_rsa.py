"""RSA metrics against rsatoolbox and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.data import Dataset
from rsatoolbox.inference import boot_noise_ceiling
from rsatoolbox.rdm import RDMs, calc_rdm
from rsatoolbox.rdm import compare as rsa_compare
from scipy.stats import rankdata

from brainalign.metrics import rsa


def _rsatoolbox_rdm(x: np.ndarray) -> np.ndarray:
    return calc_rdm(Dataset(x), method="correlation").dissimilarities[0]


def _patterns(rng, n_stimuli, n_units, shared=None, noise=1.0):
    """Random patterns; with ``shared`` (n_stimuli, n_units) added, subjects share structure."""
    x = rng.standard_normal((n_stimuli, n_units)) * noise
    return x if shared is None else x + shared


# ---------------------------------------------------------------- correlation_rdm

@pytest.mark.parametrize("n_stimuli,n_units", [(5, 3), (12, 40), (30, 7), (25, 200)])
def test_correlation_rdm_matches_rsatoolbox(n_stimuli, n_units):
    rng = np.random.default_rng(1000 + n_stimuli * n_units)
    x = rng.standard_normal((n_stimuli, n_units)) * 3.0 + rng.standard_normal(n_units)
    ours = rsa.rdm(x)
    ref = _rsatoolbox_rdm(x)
    assert ours.shape == (n_stimuli * (n_stimuli - 1) // 2,)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_correlation_rdm_matches_explicit_pearson_distance():
    """Independent of rsatoolbox: 1 - Pearson r between stimulus rows, row-major upper triangle."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((9, 13))
    r = np.corrcoef(x)
    expected = [1.0 - r[i, j] for i in range(9) for j in range(i + 1, 9)]
    np.testing.assert_allclose(rsa.rdm(x), expected, rtol=0, atol=1e-12)


def test_correlation_rdm_batched_over_layers():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 16, 24))
    x[1] *= 50.0
    x[2] += 4.0
    ours = rsa.rdm(x)
    assert ours.shape == (3, 16 * 15 // 2)
    for layer in range(3):
        np.testing.assert_allclose(ours[layer], _rsatoolbox_rdm(x[layer]), rtol=0, atol=1e-12)
    # two leading axes (e.g. layer x subject) as well
    x4 = rng.standard_normal((2, 3, 10, 6))
    ours4 = rsa.rdm(x4)
    assert ours4.shape == (2, 3, 45)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(ours4[i, j], _rsatoolbox_rdm(x4[i, j]), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- compare

def _model_and_brain_rdms(seed, n_stimuli=20, tied=False):
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n_stimuli, 60))
    model = rsa.rdm(np.stack([_patterns(rng, n_stimuli, 60, shared, noise=k) for k in (0.3, 0.6, 1.0)]))
    brain = rsa.rdm(np.stack([_patterns(rng, n_stimuli, 60, shared, noise=0.8) for _ in range(4)]))
    if tied:
        model = np.round(model, 1)   # coarse model RDMs: many ties
        brain = np.round(brain, 2)   # some ties in the data as well
    return model, brain


@pytest.mark.parametrize("method", ["spearman", "tau-a"])
@pytest.mark.parametrize("tied", [False, True])
def test_compare_matches_rsatoolbox(method, tied):
    model, brain = _model_and_brain_rdms(seed=21 if tied else 22, tied=tied)
    if tied:
        # the test is about ties: make sure there are many
        assert len(np.unique(model[0])) < model.shape[1] // 4
        assert len(np.unique(brain[0])) < brain.shape[1]
    ours = rsa.compare(model, brain, method)
    ref = rsa_compare(RDMs(model), RDMs(brain), method=method)
    assert ours.shape == (3, 4)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    # non-trivial values: positive structure shared, and not all equal
    assert ours.min() > 0.05 and np.ptp(ours) > 1e-3


def test_tau_a_equals_pair_counting_definition():
    """tau-a = (concordant - discordant) / (P(P-1)/2), ties counting zero, by brute force."""
    model, brain = _model_and_brain_rdms(seed=23, tied=True)
    constant = np.full((1, model.shape[1]), 0.5)  # all pairs tied: tau-a is 0, not NaN
    ours = rsa.tau_a(np.vstack([model, constant]), brain)
    p = model.shape[1]
    for i, x in enumerate(np.vstack([model, constant])):
        for j, y in enumerate(brain):
            sx = np.sign(x[:, None] - x[None, :])
            sy = np.sign(y[:, None] - y[None, :])
            expected = (sx * sy)[np.triu_indices(p, k=1)].sum() / (p * (p - 1) / 2)
            assert abs(ours[i, j] - expected) < 1e-12
    assert np.all(ours[-1] == 0)


def test_compare_rejects_unknown_method():
    model, brain = _model_and_brain_rdms(seed=24)
    with pytest.raises(ValueError, match="unknown RDM comparison"):
        rsa.compare(model, brain, "kendall")


# ---------------------------------------------------------------- permutations

def test_permuted_pairs_reorders_like_permuting_stimuli():
    rng = np.random.default_rng(31)
    n = 11
    x = rng.standard_normal((n, 8))
    vector = rsa.rdm(x)
    perms = np.stack([rng.permutation(n) for _ in range(6)] + [np.arange(n)])
    positions = rsa.permuted_pairs(n, perms)
    assert positions.shape == (7, n * (n - 1) // 2)
    for k, perm in enumerate(perms):
        direct = rsa.rdm(x[perm])
        # exact: same floating-point numbers, only reordered
        np.testing.assert_array_equal(vector[positions[k]], direct)
    np.testing.assert_array_equal(positions[-1], np.arange(n * (n - 1) // 2))


def test_pair_index_is_symmetric_triangle_numbering():
    n = 6
    idx = rsa.pair_index(n)
    iu = np.triu_indices(n, k=1)
    np.testing.assert_array_equal(idx[iu], np.arange(15))
    np.testing.assert_array_equal(idx, idx.T)
    np.testing.assert_array_equal(np.diag(idx), -1)


def _brute_force_null(model_rdms, brain_patterns, method, perms):
    out = np.empty((len(perms), model_rdms.shape[0], brain_patterns.shape[0]))
    for k, perm in enumerate(perms):
        brain_rdms = np.stack([rsa.rdm(b[perm]) for b in brain_patterns])
        out[k] = rsa.compare(model_rdms, brain_rdms, method)
    return out


@pytest.mark.parametrize("method,n_perm", [("spearman", 40), ("tau-a", 40)])
def test_permutation_null_matches_brute_force(method, n_perm):
    rng = np.random.default_rng(41)
    n = 15
    shared = rng.standard_normal((n, 60))
    model_patterns = np.stack([_patterns(rng, n, 60, shared, noise=s) for s in (0.3, 0.6, 1.0)])
    brain_patterns = np.stack([_patterns(rng, n, 60, shared, noise=0.8) for _ in range(4)])
    model_rdms = rsa.rdm(model_patterns)
    brain_rdms = np.stack([rsa.rdm(b) for b in brain_patterns])

    seed = 1234
    null = rsa.permutation_null(model_rdms, brain_rdms, n, method, n_perm, np.random.default_rng(seed))
    replay = np.random.default_rng(seed)
    perms = [replay.permutation(n) for _ in range(n_perm)]
    expected = _brute_force_null(model_rdms, brain_patterns, method, perms)

    assert null.shape == (n_perm, 3, 4)
    np.testing.assert_allclose(null, expected, rtol=0, atol=1e-10)
    # sanity: the null varies across permutations and sits well below the observed
    # (shared-structure) values on average
    observed = rsa.compare(model_rdms, brain_rdms, method)
    assert null.std(0).min() > 1e-3
    assert observed.mean() > 0.2 and abs(null.mean()) < 0.5 * observed.mean()


def test_permutation_null_consumes_rng_like_one_permutation_per_draw():
    """A different seed gives a different null; the rng state afterwards equals
    the state after drawing n_perm permutations."""
    model, brain = _model_and_brain_rdms(seed=42)
    rng_a = np.random.default_rng(5)
    a = rsa.permutation_null(model, brain, 20, "spearman", 6, rng_a)
    b = rsa.permutation_null(model, brain, 20, "spearman", 6, np.random.default_rng(6))
    assert np.abs(a - b).max() > 1e-3
    replay = np.random.default_rng(5)
    for _ in range(6):
        replay.permutation(20)
    assert rng_a.integers(1 << 62) == replay.integers(1 << 62)


def test_permutation_null_zero_permutations():
    model, brain = _model_and_brain_rdms(seed=43)
    null = rsa.permutation_null(model, brain, 20, "spearman", 0, np.random.default_rng(0))
    assert null.shape == (0, 3, 4)


# ---------------------------------------------------------------- noise ceiling

def _subject_rdms(seed, n_subjects=5, n_stimuli=18):
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n_stimuli, 60))
    return np.stack([rsa.rdm(_patterns(rng, n_stimuli, 60, shared, noise=1.0))
                     for _ in range(n_subjects)])


def _spearman(a, b):
    return np.corrcoef(rankdata(a), rankdata(b))[0, 1]


def test_noise_ceiling_matches_rsatoolbox_and_manual():
    brain = _subject_rdms(51)
    low, high = rsa.noise_ceiling(brain, "spearman")
    ref_low, ref_high = boot_noise_ceiling(RDMs(brain), method="spearman", rdm_descriptor="index")
    assert low == pytest.approx(float(ref_low), abs=1e-12)
    assert high == pytest.approx(float(ref_high), abs=1e-12)

    # manual definition: pooled RDM = mean of ranked RDMs; lower bound leaves the subject out
    ranks = np.stack([rankdata(v) for v in brain])
    s = len(brain)
    manual_high = np.mean([_spearman(ranks.mean(0), brain[i]) for i in range(s)])
    manual_low = np.mean([_spearman(np.delete(ranks, i, 0).mean(0), brain[i]) for i in range(s)])
    assert low == pytest.approx(manual_low, abs=1e-10)
    assert high == pytest.approx(manual_high, abs=1e-10)
    assert 0.0 < low <= high <= 1.0
    assert high - low > 1e-3


def test_noise_ceiling_needs_two_subjects():
    brain = _subject_rdms(52, n_subjects=1)
    low, high = rsa.noise_ceiling(brain, "spearman")
    assert np.isnan(low) and np.isnan(high)


def test_tau_a_without_scipys_private_kernel_gives_the_same_numbers(monkeypatch):
    """tau-a falls back to scipy's public tau-b, rescaled, if ``_kendall_dis`` disappears."""
    import scipy.stats._stats as private
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as rsatoolbox_compare

    rng = np.random.default_rng(5)
    a = rsa.rdm(rng.standard_normal((3, 14, 8)))
    a[0] = np.round(a[0], 1)  # ties
    b = rsa.rdm(rng.standard_normal((2, 14, 8)))
    fast = rsa.tau_a(a, b)
    monkeypatch.delattr(private, "_kendall_dis")
    slow = rsa.tau_a(a, b)
    np.testing.assert_allclose(slow, fast, rtol=0, atol=1e-12)
    np.testing.assert_allclose(slow, rsatoolbox_compare(RDMs(a), RDMs(b), method="tau-a"), rtol=0, atol=1e-12)


def test_resample_counts_match_a_loop():
    from brainalign.metrics.stats import resample_counts

    idx = np.random.default_rng(0).integers(0, 7, size=(5, 9))
    expected = np.stack([np.bincount(row, minlength=7) for row in idx])
    np.testing.assert_array_equal(resample_counts(idx, 7), expected)
