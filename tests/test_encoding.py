"""Ridge encoding models against scikit-learn and brute-force cross-validation.

Note on the inner-CV score: himalaya's ``RidgeCV`` / ``KernelRidgeCV`` default to
``score_func=himalaya.scoring.l2_neg_loss`` (negative mean squared error on the
held-out fold, per target), averaged over the inner folds
(``_select_best_alphas``: ``scores.mean(axis=0)`` then argmax over alphas, with a
1e-10 * log(alpha) slope that only breaks exact ties towards larger alphas).
It is *not* R^2; on the data below an R^2-based choice differs for a sizeable
fraction of targets, so the reference here uses the fold-averaged negative MSE.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from brainalign.metrics import encoding


def _regression(rng, n, d, n_targets, snr=None, n_test=25):
    x = rng.standard_normal((n + n_test, d)) * 2.0 + rng.standard_normal(d)
    w = rng.standard_normal((d, n_targets)) / np.sqrt(d)
    if snr is not None:
        w = w * snr
    y = x @ w + rng.standard_normal((n + n_test, n_targets)) + rng.standard_normal(n_targets) * 5.0
    return x[:n], y[:n], x[n:], y[n:]


# ---------------------------------------------------------------- fixed-alpha ridge

@pytest.mark.parametrize("n,d", [(200, 30), (60, 300)])
@pytest.mark.parametrize("alpha", [0.1, 10.0, 1e4])
def test_ridge_predict_matches_sklearn(n, d, alpha):
    rng = np.random.default_rng(100 + n)
    x_train, y_train, x_test, _ = _regression(rng, n, d, n_targets=6)
    ours = encoding.ridge_predict(x_train, y_train, x_test, alpha)
    ref = Ridge(alpha=alpha, fit_intercept=True).fit(x_train, y_train).predict(x_test)
    assert ours.shape == (25, 6)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    # different alphas really give different predictions (the check is sensitive)
    other = Ridge(alpha=alpha * 10, fit_intercept=True).fit(x_train, y_train).predict(x_test)
    assert np.abs(other - ref).max() > 1e-3


# ---------------------------------------------------------------- CV-chosen alpha

ALPHAS = np.logspace(-2, 5, 8)


def _brute_force_cv(x, y, alphas, inner_folds, seed):
    """Fold-averaged held-out negative MSE per (alpha, target), sklearn Ridge per fold."""
    scores = np.zeros((inner_folds, len(alphas), y.shape[1]))
    splitter = KFold(n_splits=inner_folds, shuffle=True, random_state=seed)
    for f, (train, val) in enumerate(splitter.split(x)):
        for a, alpha in enumerate(alphas):
            pred = Ridge(alpha=alpha, fit_intercept=True).fit(x[train], y[train]).predict(x[val])
            scores[f, a] = -((y[val] - pred) ** 2).mean(0)
    return scores.mean(0)


@pytest.mark.parametrize("n,d", [(150, 20), (50, 200)], ids=["n>d RidgeCV", "n<d KernelRidgeCV"])
def test_ridge_cv_predict_matches_brute_force(n, d):
    rng = np.random.default_rng(200 + d)
    n_targets = 40
    snr = np.logspace(-2, 1, n_targets)  # from pure noise to strong signal: alphas vary
    x_train, y_train, x_test, _ = _regression(rng, n, d, n_targets, snr=snr)
    inner_folds, seed = 4, 3
    pred, best = encoding.ridge_cv_predict(x_train, y_train, x_test, ALPHAS, inner_folds, seed)

    mean_scores = _brute_force_cv(x_train, y_train, ALPHAS, inner_folds, seed)
    ranked = np.sort(mean_scores, axis=0)
    assert (ranked[-1] - ranked[-2]).min() > 1e-8  # every choice is well separated
    expected = ALPHAS[mean_scores.argmax(0)]
    assert best.shape == (n_targets,)
    # himalaya returns alphas recomputed through exp(-log(...)), equal to the grid up to rounding
    np.testing.assert_allclose(best, expected, rtol=1e-12, atol=0)
    assert len(np.unique(expected)) >= 4  # the test exercises several alphas

    # test predictions: sklearn Ridge refit on all training data at each target's alpha
    ref = np.empty_like(pred)
    for t, alpha in enumerate(expected):
        ref[:, t] = Ridge(alpha=alpha, fit_intercept=True).fit(x_train, y_train[:, t]).predict(x_test)
    assert pred.shape == (25, n_targets)
    np.testing.assert_allclose(pred, ref, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- standardisation

def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(300)
    train = rng.standard_normal((40, 7)) * rng.uniform(0.5, 5, 7) + rng.uniform(-10, 10, 7)
    train[:, 3] = 2.5  # constant column
    test_a = rng.standard_normal((10, 7)) * 3 + 1
    test_b = rng.standard_normal((13, 7)) * 100 - 50

    train_a, out_a = encoding.standardize(train, test_a)
    train_b, out_b = encoding.standardize(train, test_b)
    np.testing.assert_array_equal(train_a, train_b)

    mean, sd = train.mean(0), train.std(0)
    sd[3] = 1.0
    np.testing.assert_allclose(train_a, (train - mean) / sd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_a, (test_a - mean) / sd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_b, (test_b - mean) / sd, rtol=0, atol=1e-12)
    # same as scikit-learn's scaler fitted on the training rows
    scaler = StandardScaler().fit(train)
    np.testing.assert_allclose(out_b, scaler.transform(test_b), rtol=0, atol=1e-10)
    # training columns are z-scored; the constant one is all zeros
    np.testing.assert_allclose(np.delete(train_a, 3, 1).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.delete(train_a, 3, 1).std(0), 1, atol=1e-12)
    np.testing.assert_array_equal(train_a[:, 3], 0.0)
    # and the test rows are not z-scored with their own statistics
    assert np.abs(out_b.mean(0)).max() > 1.0


def test_standardize_does_not_modify_inputs():
    rng = np.random.default_rng(301)
    train, test = rng.standard_normal((20, 4)) + 3, rng.standard_normal((5, 4))
    train_copy, test_copy = train.copy(), test.copy()
    encoding.standardize(train, test)
    np.testing.assert_array_equal(train, train_copy)
    np.testing.assert_array_equal(test, test_copy)


# ---------------------------------------------------------------- Pearson r

def test_pearson_columns_matches_corrcoef():
    rng = np.random.default_rng(400)
    a = rng.standard_normal((50, 12)) * 4 + 2
    b = 0.3 * a + rng.standard_normal((50, 12)) - 7
    ours = encoding.pearson_columns(a, b)
    expected = [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(12)]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_pearson_columns_constant_column_is_zero():
    rng = np.random.default_rng(401)
    a = rng.standard_normal((30, 3))
    b = rng.standard_normal((30, 3))
    a[:, 1] = 4.0
    r = encoding.pearson_columns(a, b)
    assert r[1] == 0.0
    assert r[0] == pytest.approx(np.corrcoef(a[:, 0], b[:, 0])[0, 1], abs=1e-12)


# ---------------------------------------------------------------- end to end

def test_cross_validated_r_planted_vs_null():
    rng = np.random.default_rng(500)
    n, d, n_targets = 120, 50, 1000
    x = rng.standard_normal((n, d))
    w = rng.standard_normal((d, n_targets)) / np.sqrt(d)
    planted = x @ w + 0.2 * rng.standard_normal((n, n_targets))
    null = planted[rng.permutation(n)]  # same marginals, rows unrelated to x

    r_planted, chosen = encoding.cross_validated_r(x, planted, ALPHAS, outer_folds=5, inner_folds=3, seed=0)
    r_null, _ = encoding.cross_validated_r(x, null, ALPHAS, outer_folds=5, inner_folds=3, seed=0)
    assert r_planted.shape == r_null.shape == (n_targets,)
    assert chosen.shape == (5, n_targets)
    assert np.isin(np.round(chosen, 6), np.round(ALPHAS, 6)).all()
    assert np.median(r_planted) > 0.9
    assert abs(np.median(r_null)) < 0.2
    assert np.median(r_planted) - np.median(r_null) > 0.7


def test_cross_validated_r_equals_manual_outer_loop():
    """Each stimulus predicted once by the fold that held it out, standardised on that fold's training rows."""
    rng = np.random.default_rng(501)
    x_all, y_all, _, _ = _regression(rng, 60, 15, 5, snr=np.array([0.1, 0.5, 1, 2, 4]), n_test=0)
    r, chosen = encoding.cross_validated_r(x_all, y_all, ALPHAS, outer_folds=3, inner_folds=3, seed=7)

    pred = np.empty_like(y_all)
    expected_chosen, splits = [], list(KFold(3, shuffle=True, random_state=7).split(x_all))
    for train, test in splits:
        scaler = StandardScaler().fit(x_all[train])
        xtr, xte = scaler.transform(x_all[train]), scaler.transform(x_all[test])
        scores = _brute_force_cv(xtr, y_all[train], ALPHAS, 3, 7)
        alphas = ALPHAS[scores.argmax(0)]
        expected_chosen.append(alphas)
        for t, alpha in enumerate(alphas):
            pred[test, t] = Ridge(alpha=alpha).fit(xtr, y_all[train, t]).predict(xte)
    expected_r = [np.mean([np.corrcoef(pred[test, t], y_all[test, t])[0, 1] for _, test in splits])
                  for t in range(5)]
    np.testing.assert_allclose(chosen, np.array(expected_chosen), rtol=1e-12, atol=0)
    np.testing.assert_allclose(r, expected_r, rtol=0, atol=1e-8)
