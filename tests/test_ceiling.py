"""Noise ceilings against the closed form of the signal-plus-noise model and hand computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from brainalign.metrics.ceiling import ncsnr, noise_ceiling, spearman_brown, split_half_reliability

# (signal sd, noise sd per repetition) per target: single-trial reliability from 0.1 to 0.8
SIGNAL_NOISE = np.array([(1.0, 3.0), (1.0, 2.0), (1.0, 1.0), (2.0, 1.0), (0.5, 1.0)])


def simulate(k, n_stim=100_000, seed=0):
    """reps (k, stimulus, target) = s + noise, plus the signal s and the true R2 ceiling for k."""
    rng = np.random.default_rng(seed)
    sd_s, sd_n = SIGNAL_NOISE.T
    s = rng.standard_normal((n_stim, len(sd_s)))
    s = (s - s.mean(0)) / s.std(0) * sd_s + 3.0  # exact signal variance: only the noise is random
    reps = s + rng.standard_normal((k, n_stim, len(sd_s))) * sd_n
    return reps, s


def true_r2(n):
    var_s, var_n = SIGNAL_NOISE.T ** 2
    return var_s / (var_s + var_n / n)


def pearson_cols(a, b):
    return np.array([np.corrcoef(a[:, t], b[:, t])[0, 1] for t in range(a.shape[1])])


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("method", ["split_half", "ncsnr"])
def test_closed_form_ceiling_and_perfect_model(k, method):
    reps, s = simulate(k, seed=k)
    out = noise_ceiling(reps, method=method, rng=1)
    expected = true_r2(k)
    assert np.all(expected > 0.15) and np.all(expected < 0.97)  # informative range
    np.testing.assert_allclose(out["r2"], expected, atol=0.02)
    np.testing.assert_allclose(out["r"], np.sqrt(expected), atol=0.02)
    np.testing.assert_allclose(out["r"], np.sqrt(out["r2"]), rtol=1e-12)
    # the key property: a perfect model reaches the ceiling on r with the repetition mean
    perfect = pearson_cols(s, reps.mean(0))
    np.testing.assert_allclose(perfect, out["r"], atol=0.02)


@pytest.mark.parametrize("method", ["split_half", "ncsnr"])
@pytest.mark.parametrize("n", [1, 2, 10])
def test_ceiling_for_other_numbers_of_repetitions(method, n):
    reps, s = simulate(4, seed=11)
    out = noise_ceiling(reps, method=method, n_repetitions_averaged=n)
    np.testing.assert_allclose(out["r2"], true_r2(n), atol=0.02)
    if n == 1:  # a perfect model against one single trial
        np.testing.assert_allclose(pearson_cols(s, reps[0]), out["r"], atol=0.02)


def test_spearman_brown_exact():
    assert spearman_brown(0.5, 2) == pytest.approx(2 / 3, abs=1e-15)
    assert spearman_brown(0.25, 3) == pytest.approx(0.75 / 1.5, abs=1e-15)
    assert spearman_brown(0.6, 2.5) == pytest.approx(1.5 / 1.9, abs=1e-15)
    np.testing.assert_allclose(spearman_brown(np.array([0.0, 1.0]), 4), [0.0, 1.0], atol=0)
    r = np.linspace(0.05, 0.95, 7)
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 2.5), 1 / 2.5), r, rtol=1e-12)
    # composition: lengthening 2-fold then 3-fold equals 6-fold
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 2), 3), spearman_brown(r, 6), rtol=1e-12)


def test_split_half_with_two_repetitions_is_corrcoef():
    rng = np.random.default_rng(5)
    reps = rng.standard_normal((2, 30, 7)) + rng.standard_normal((1, 30, 7))
    got = split_half_reliability(reps)
    np.testing.assert_allclose(got, pearson_cols(reps[0], reps[1]), atol=1e-12)
    out = noise_ceiling(reps, method="split_half")
    np.testing.assert_allclose(out["r2"], np.clip(spearman_brown(got, 2), 0, 1), atol=1e-12)


def test_split_half_four_repetitions_enumerates_all_three_splits():
    rng = np.random.default_rng(6)
    reps = rng.standard_normal((4, 25, 3)) + rng.standard_normal((1, 25, 3))
    splits = [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    expected = np.mean([pearson_cols(reps[list(a)].mean(0), reps[list(b)].mean(0)) for a, b in splits], axis=0)
    np.testing.assert_allclose(split_half_reliability(reps, rng=123), expected, atol=1e-12)


def test_ncsnr_hand_computation():
    reps = np.array([[[1.0, 0.0], [2.0, 4.0], [0.5, 1.0]],
                     [[1.5, 1.0], [3.0, 2.0], [0.0, 3.0]],
                     [[0.5, 2.0], [2.5, 5.0], [1.0, 1.5]]])  # (3 reps, 3 stimuli, 2 targets)
    expected = []
    for t in range(2):
        x = reps[:, :, t]
        noise_var = np.mean([np.var(x[:, i], ddof=1) for i in range(3)])
        total_var = np.var(x.ravel(), ddof=1)
        expected.append(np.sqrt(max(0.0, total_var - noise_var)) / np.sqrt(noise_var))
    np.testing.assert_allclose(ncsnr(reps), expected, atol=1e-12)
    # target 0 by hand: noise var mean(0.25, 0.25, 0.25) = 0.25; total var of the 9 trials
    x = reps[:, :, 0].ravel()
    assert np.var(x, ddof=1) == pytest.approx(((x - x.mean()) ** 2).sum() / 8)
    assert ncsnr(reps)[0] == pytest.approx(np.sqrt(np.var(x, ddof=1) - 0.25) / 0.5, abs=1e-12)
    nc = ncsnr(reps)
    np.testing.assert_allclose(noise_ceiling(reps, method="ncsnr")["r2"], nc ** 2 / (nc ** 2 + 1 / 3), atol=1e-12)


def test_one_repetition_raises():
    reps = np.zeros((1, 10, 3)) + np.arange(10)[None, :, None]
    for method in ("split_half", "ncsnr"):
        with pytest.raises(ValueError, match="noise ceiling needs at least 2 repetitions"):
            noise_ceiling(reps, method=method)
    with pytest.raises(ValueError, match="at least 2 repetitions"):
        split_half_reliability(reps)
    with pytest.raises(ValueError, match="at least 2 repetitions"):
        ncsnr(reps)
    with pytest.raises(ValueError, match="unknown noise-ceiling method"):
        noise_ceiling(np.ones((2, 10, 3)), method="bogus")


def test_constant_target_gives_nan_without_raising():
    rng = np.random.default_rng(8)
    reps = rng.standard_normal((4, 40, 3)) + rng.standard_normal((1, 40, 3))
    reps[:, :, 1] = 7.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sh = split_half_reliability(reps)
        nc = ncsnr(reps)
        ceilings = [noise_ceiling(reps, method=m) for m in ("split_half", "ncsnr")]
    for values in [sh, nc] + [c[key] for c in ceilings for key in ("r2", "r")]:
        assert np.isnan(values[1])
        assert np.all(np.isfinite(values[[0, 2]]))


def test_noiseless_target_has_ceiling_one():
    s = np.random.default_rng(9).standard_normal((50, 1))
    reps = np.repeat(s[None], 3, axis=0)
    for method in ("split_half", "ncsnr"):
        np.testing.assert_allclose(noise_ceiling(reps, method=method)["r2"], [1.0], atol=1e-12)


def test_reproducible_with_seed():
    reps, _ = simulate(12, n_stim=200, seed=3)  # 462 distinct splits > n_splits: random splits
    a = split_half_reliability(reps, n_splits=50, rng=42)
    b = split_half_reliability(reps, n_splits=50, rng=np.random.default_rng(42))
    c = split_half_reliability(reps, n_splits=50, rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(noise_ceiling(reps, rng=7)["r2"], noise_ceiling(reps, rng=7)["r2"])
    np.testing.assert_array_equal(split_half_reliability(reps), split_half_reliability(reps))  # None: seed 0
