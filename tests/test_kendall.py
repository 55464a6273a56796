"""The compiled weighted tau-a (brainalign.metrics.kendall) against tau-a of explicitly
repeated and relabelled vectors (scipy's discordance count, through rsa.tau_a)."""

import numpy as np
import pytest
from scipy.stats import kendalltau

from brainalign.metrics import kendall, rsa


def _vectors(rng, n=300, levels=None):
    a, b = rng.standard_normal(n), rng.standard_normal(n) + 0.5 * rng.standard_normal(n)
    if levels:  # ties in both
        a, b = np.round(a * levels) / levels, np.round(b * levels) / levels
    return a, b


@pytest.mark.parametrize("levels", [None, 2])
def test_weighted_tau_a_equals_tau_a_of_the_repeated_vectors(levels):
    rng = np.random.default_rng(7)
    a, b = _vectors(rng, levels=levels)
    weights = rng.integers(0, 4, (6, len(a)))  # zeros included, as a bootstrap's absent stimuli
    ours = kendall.weighted_tau_a(a, kendall.dense_ranks(b), weights)
    expected = [rsa.tau_a(np.repeat(a, w)[None], np.repeat(b, w)[None])[0, 0] for w in weights]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-13)
    assert np.ptp(ours) > 0


def test_unweighted_equals_scipy_tau_b_rescaled_and_relabelled_rows():
    rng = np.random.default_rng(8)
    a, b = _vectors(rng, levels=3)
    n = len(a)
    total = n * (n - 1) / 2
    ties = [sum(c * (c - 1) / 2 for c in np.unique(v, return_counts=True)[1]) for v in (a, b)]
    tau_b = kendalltau(a, b, variant="b").statistic
    expected = tau_b * np.sqrt((total - ties[0]) * (total - ties[1])) / total
    assert kendall.weighted_tau_a(a, kendall.dense_ranks(b))[0] == pytest.approx(expected, abs=1e-13)
    perms = np.stack([rng.permutation(n) for _ in range(5)])
    ranks = kendall.dense_ranks(b)
    ours = kendall.weighted_tau_a(a, ranks[perms])
    np.testing.assert_allclose(ours, [rsa.tau_a(a[None], b[p][None])[0, 0] for p in perms], rtol=0, atol=1e-13)


def test_fewer_than_two_weighted_entries_is_nan():
    a, b = np.arange(5.0), np.arange(5.0)[::-1]
    out = kendall.weighted_tau_a(a, kendall.dense_ranks(b), np.array([[0, 0, 1, 0, 0], [1, 1, 0, 0, 0]]))
    assert np.isnan(out[0]) and out[1] == -1.0


@pytest.mark.parametrize("form", ["bootstrap", "permutations"])
def test_tau_a_grid_on_a_pool_of_threads_equals_each_pair_alone(form):
    """The pool over pairs (each pair's samples on one thread) gives each pair's own values exactly."""
    import numba

    rng = np.random.default_rng(9)
    a_list = [rng.standard_normal(120) for _ in range(3)]
    b_list = [np.round(rng.standard_normal(120) * 3) for _ in range(4)]
    sorted_a = [kendall.order_of(a) for a in a_list]
    if form == "bootstrap":
        weights = kendall.Weights(rng.integers(0, 3, (37, 120)))
        b_ranks = [kendall.dense_ranks(b) for b in b_list]
    else:
        weights = None
        perms = np.stack([rng.permutation(120) for _ in range(37)])
        b_ranks = [kendall.dense_ranks(b)[perms] for b in b_list]
    numba.set_num_threads(2)
    grid = kendall.tau_a_grid(sorted_a, b_ranks, weights)  # 12 pairs: on the pool
    assert grid.shape == (37, 3, 4)
    for i, a in enumerate(a_list):
        for j in range(4):
            np.testing.assert_array_equal(grid[:, i, j], kendall.weighted_tau_a(a, b_ranks[j], weights))
    assert np.ptp(grid) > 0
