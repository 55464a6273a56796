"""Banded ridge against himalaya's GroupRidgeCV, planted band preferences, reductions
to plain ridge, and variance partitioning against closed forms.

The himalaya reference is ``GroupRidgeCV(groups="input", solver="random_search")``
with an explicit gamma array (``solver_params["n_iter"]``), the same alphas and the
same K-fold splits, in float64 with the torch backend. It scores every
(gamma, alpha) by fold-averaged validation negative MSE, picks the alpha with a
1e-10 * log(alpha) slope, and moves a target to a later gamma only when the score
beats its best by more than float eps.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold

from brainalign.metrics import ridge as ridge_solver
from brainalign.metrics.banded import banded_ridge_cv, simplex_grid, variance_partition
from brainalign.metrics.encoding import r2_columns

F64 = dict(dtype=torch.float64, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The problems here are tiny: on a shared 2-core machine, multi-threaded MKL SVDs of
    ~100 x 40 matrices are 10-300x slower than single-threaded ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
ALPHAS = np.logspace(-2, 4, 13)


def _bands(seed, n, widths, n_targets, n_test=40):
    """Bands with non-zero means and different scales; each target's signal comes from
    band A (kind 0), band B (kind 1) or both (kind 2), with SNR rising over targets."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n + n_test, p)) * scale + rng.standard_normal(p)
          for p, scale in zip(widths, [1.0, 0.5, 2.0][: len(widths)])]
    kind = np.arange(n_targets) % 3
    snr = np.geomspace(0.05, 3, n_targets)
    signal = np.zeros((n + n_test, n_targets))
    for k, x in enumerate(xs[:2]):
        w = rng.standard_normal((x.shape[1], n_targets)) / np.sqrt(x.shape[1])
        w[:, kind == 1 - k] = 0
        signal += x @ w
    for x in xs[2:]:
        signal += x @ (rng.standard_normal((x.shape[1], n_targets)) / np.sqrt(x.shape[1]) * 0.5)
    y = signal * snr + rng.standard_normal((n + n_test, n_targets)) + rng.standard_normal(n_targets)
    return [x[:n] for x in xs], y[:n], [x[n:] for x in xs], y[n:], kind, snr


@pytest.fixture
def torch_backend():
    """himalaya's torch backend for the test, then whatever was set before."""
    from himalaya.backend import get_backend, set_backend

    previous = get_backend().name
    set_backend("torch", on_error="raise")
    yield
    set_backend(previous)


def _himalaya(xs, y, gammas, alphas, splits):
    from himalaya.ridge import GroupRidgeCV

    model = GroupRidgeCV(groups="input", solver="random_search", fit_intercept=True, cv=splits,
                         solver_params=dict(n_iter=torch.as_tensor(gammas), alphas=torch.as_tensor(alphas),
                                            progress_bar=False))
    model.fit([torch.as_tensor(x) for x in xs], torch.as_tensor(y))
    return model


def _compare(fit, model, xs_test, gammas):
    deltas = model.deltas_.cpu().numpy()
    best_alphas = model.best_alphas_.cpu().numpy()
    # himalaya's best gamma of each target, recovered from deltas = log(gamma / alpha)
    him_gammas = np.exp(deltas) * best_alphas
    np.testing.assert_allclose(fit.deltas, deltas, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.log(fit.alphas), np.log(best_alphas), rtol=0, atol=1e-9)
    np.testing.assert_allclose(fit.gammas, him_gammas, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(fit.gammas, gammas[fit.gamma_index].T)  # rows of the grid, exactly
    pred = model.predict([torch.as_tensor(x) for x in xs_test]).cpu().numpy()
    np.testing.assert_allclose(fit.predict(xs_test).numpy(), pred, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.coef.numpy(), model.coef_.cpu().numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.intercept.numpy(), model.intercept_.cpu().numpy(), rtol=0, atol=1e-8)
    # himalaya's cv_scores_ carry the 1e-10 * log(alpha) slope; ours do not
    np.testing.assert_allclose(fit.cv_scores, model.cv_scores_.cpu().numpy(), rtol=0, atol=2e-9)


# ---------------------------------------------------------------- himalaya equality

def test_matches_himalaya_group_ridge_cv_two_bands(torch_backend):
    xs, y, xs_test, _, _, _ = _bands(0, n=120, widths=(10, 30), n_targets=50)
    # two ties: a constant target (every score is exactly 0) and a target whose scores
    # differ by less than float eps across gammas; both stay at the first gamma and
    # take the largest alpha (the log-alpha slope), as in himalaya
    y = np.hstack([y, np.full((len(y), 1), 3.0), 1e-9 * y[:, -1:]])
    gammas = simplex_grid(2, 11, interior=True)  # himalaya cannot take zero band weights
    splits = list(KFold(5, shuffle=True, random_state=0).split(xs[0]))
    fit = banded_ridge_cv(xs, y, ALPHAS, gammas, splits, **F64)
    model = _himalaya(xs, y, gammas, ALPHAS, splits)
    _compare(fit, model, xs_test, gammas)
    np.testing.assert_array_equal(fit.gamma_index[-2:], 0)
    np.testing.assert_array_equal(fit.alphas[-2:], ALPHAS[-1])
    assert np.ptp(fit.cv_scores[:, -1]) > 0  # the near-tie is not an exact one

    # the case exercises the search: several gammas (both extremes) and alphas are chosen,
    # and some targets leave the first (uniform) gamma
    assert len(np.unique(fit.gamma_index)) >= 5
    assert (fit.gamma_index > 0).sum() >= 10
    assert fit.gammas[0].min() == pytest.approx(0.1) and fit.gammas[0].max() == pytest.approx(0.9)
    assert len(np.unique(fit.alphas)) >= 6
    # and the fold-averaged score of the chosen gamma is the best over the grid
    chosen = fit.cv_scores[fit.gamma_index, np.arange(y.shape[1])]
    np.testing.assert_allclose(chosen, fit.cv_scores.max(0), rtol=0, atol=1e-12)


def test_matches_himalaya_three_bands_dirichlet_gammas(torch_backend):
    from himalaya.kernel_ridge import generate_dirichlet_samples

    xs, y, xs_test, _, _, _ = _bands(1, n=80, widths=(6, 12, 8), n_targets=24)
    gammas = np.asarray(generate_dirichlet_samples(12, 3, concentration=[0.1, 1.0], random_state=0))
    gammas[0] = 1 / 3  # as himalaya's random search
    assert (gammas > 0).all()
    splits = list(KFold(4, shuffle=True, random_state=1).split(xs[0]))
    alphas = np.logspace(-3, 5, 9)
    fit = banded_ridge_cv(xs, y, alphas, gammas, splits, **F64)
    model = _himalaya(xs, y, gammas, alphas, splits)
    _compare(fit, model, xs_test, gammas)
    assert len(np.unique(fit.gamma_index)) >= 4
    assert len(np.unique(fit.alphas)) >= 3


# ---------------------------------------------------------------- planted preferences

def test_planted_band_is_favoured():
    xs, y, _, _, kind, snr = _bands(2, n=200, widths=(10, 30), n_targets=60)
    gammas = simplex_grid(2, 11)
    splits = list(KFold(5, shuffle=True, random_state=2).split(xs[0]))
    fit = banded_ridge_cv(xs, y, ALPHAS, gammas, splits, **F64)
    strong = snr > 0.8
    only_a, only_b = strong & (kind == 0), strong & (kind == 1)
    assert only_a.sum() >= 5 and only_b.sum() >= 5
    assert (fit.gammas[0, only_a] > 0.5).all(), fit.gammas[0, only_a]
    assert (fit.gammas[1, only_b] > 0.5).all(), fit.gammas[1, only_b]
    # weights on an unused band are exactly zero (that fit leaves the band out)
    for t in np.flatnonzero(fit.gammas[1] == 0):
        assert (fit.coef[fit.slices[1], t] == 0).all()
    assert (fit.gammas == 0).any()  # the boundary of the grid is exercised


# ---------------------------------------------------------------- reductions to plain ridge

@pytest.mark.parametrize("cv", ["kfold", "loo"])
def test_single_gamma_reduces_to_ridge_cv(cv):
    xs, y, xs_test, _, _, _ = _bands(3, n=90, widths=(8, 20), n_targets=15)
    splits = list(KFold(5, shuffle=True, random_state=3).split(xs[0])) if cv == "kfold" else "loo"

    # all weight on band A: plain ridge on A, zero weights on B
    only_a = banded_ridge_cv(xs, y, ALPHAS, [[1.0, 0.0]], splits, **F64)
    ref_a = ridge_solver.ridge_cv(xs[0], y, ALPHAS, splits, **F64)
    np.testing.assert_array_equal(only_a.alphas, ref_a.alphas)
    np.testing.assert_allclose(only_a.coef[:8].numpy(), ref_a.coef.numpy(), rtol=0, atol=1e-12)
    assert (only_a.coef[8:] == 0).all()
    np.testing.assert_allclose(only_a.predict(xs_test).numpy(), ref_a.predict(xs_test[0]).numpy(),
                               rtol=0, atol=1e-10)

    # uniform weights: ridge on the concatenation with alpha * n_bands
    uniform = banded_ridge_cv(xs, y, ALPHAS, simplex_grid(2, 2)[:1], splits, **F64)
    ref = ridge_solver.ridge_cv(np.hstack(xs), y, ALPHAS * 2, splits, **F64)
    np.testing.assert_allclose(uniform.alphas * 2, ref.alphas, rtol=1e-12)
    np.testing.assert_allclose(uniform.coef.numpy(), ref.coef.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(uniform.intercept.numpy(), ref.intercept.numpy(), rtol=0, atol=1e-10)
    assert len(np.unique(ref_a.alphas)) >= 3


def test_predict_bands_sums_to_predict():
    xs, y, xs_test, _, _, _ = _bands(4, n=60, widths=(5, 7), n_targets=6)
    splits = list(KFold(3, shuffle=True, random_state=4).split(xs[0]))
    fit = banded_ridge_cv(xs, y, ALPHAS, simplex_grid(2, 5), splits, **F64)
    full = fit.predict(xs_test).numpy()
    parts = fit.predict_bands(xs_test).numpy()
    assert parts.shape == (2, 40, 6)
    np.testing.assert_allclose(parts.sum(0) + fit.y_mean.numpy(), full, rtol=0, atol=1e-10)
    raw = fit.predict_bands(xs_test, center=False).numpy()
    np.testing.assert_allclose(raw.sum(0) + fit.intercept.numpy(), full, rtol=0, atol=1e-10)
    np.testing.assert_allclose(raw[1], xs_test[1] @ fit.coef[5:].numpy(), rtol=0, atol=1e-12)
    # centred contributions average to zero over the training rows
    np.testing.assert_allclose(fit.predict_bands(xs).numpy().mean(1), 0, atol=1e-10)


def test_simplex_grid():
    g = simplex_grid(3, 5)
    assert g.shape == (1 + 15, 3)  # uniform (off the lattice) + C(6, 2) lattice points
    np.testing.assert_array_equal(g[0], np.full(3, 1 / 3))
    np.testing.assert_allclose(g.sum(1), 1, atol=1e-15)
    assert len(np.unique(g, axis=0)) == len(g)
    np.testing.assert_array_equal(simplex_grid(2, 5), [[.5, .5], [1, 0], [.75, .25], [.25, .75], [0, 1]])
    assert (simplex_grid(3, 6, interior=True)[1:] > 0).all()
    np.testing.assert_array_equal(simplex_grid(3, 5), simplex_grid(3, 5))


# ---------------------------------------------------------------- errors

def test_input_errors():
    rng = np.random.default_rng(5)
    xa, xb, y = rng.standard_normal((30, 3)), rng.standard_normal((30, 4)), rng.standard_normal((30, 2))
    splits = list(KFold(3).split(xa))
    with pytest.raises(ValueError, match="mismatched row counts"):
        banded_ridge_cv([xa, xb[:29]], y, ALPHAS, [[0.5, 0.5]], splits, **F64)
    with pytest.raises(ValueError, match="rows"):
        banded_ridge_cv([xa, xb], y[:29], ALPHAS, [[0.5, 0.5]], splits, **F64)
    with pytest.raises(ValueError, match="sum to 1.*row 1 sums to 0.9"):
        banded_ridge_cv([xa, xb], y, ALPHAS, [[0.5, 0.5], [0.6, 0.3]], splits, **F64)
    with pytest.raises(ValueError, match="wrong width: 3 columns for 2 bands"):
        banded_ridge_cv([xa, xb], y, ALPHAS, [[0.2, 0.3, 0.5]], splits, **F64)
    with pytest.raises(ValueError, match="non-negative"):
        banded_ridge_cv([xa, xb], y, ALPHAS, [[1.5, -0.5]], splits, **F64)
    with pytest.raises(ValueError, match="list of"):
        banded_ridge_cv(np.hstack([xa, xb]), y, ALPHAS, [[1.0]], splits, **F64)
    with pytest.raises(ValueError, match="alphas"):
        banded_ridge_cv([xa, xb], y, [0.0, 1.0], [[0.5, 0.5]], splits, **F64)
    fit = banded_ridge_cv([xa, xb], y, ALPHAS, [[0.5, 0.5]], splits, **F64)
    with pytest.raises(ValueError, match="fitted on"):
        fit.predict([xb, xa])
    with pytest.raises(ValueError, match="missing R\\^2 of the model with bands \\['a'\\]"):
        variance_partition({("a", "b"): np.ones(3), "b": np.ones(3)})
    with pytest.raises(ValueError, match="same shape"):
        variance_partition({("a", "b"): np.ones(3), "a": np.ones(3), "b": np.ones(2)})


# ---------------------------------------------------------------- variance partitioning

def test_variance_partition_inverts_nested_r2_exactly():
    """R^2 of every model built from known Venn regions of three bands; the partition
    recovers the regions, the unique parts and the shared remainder."""
    rng = np.random.default_rng(6)
    bands = ["a", "b", "c"]
    subsets = [frozenset(c) for r in (1, 2, 3) for c in itertools.combinations(bands, r)]
    regions = {s: rng.uniform(-0.02, 0.2, 5) for s in subsets}
    r2 = {tuple(sorted(t)): sum(v for s, v in regions.items() if s & t) for t in subsets}
    r2["a"] = r2.pop(("a",))  # a bare name is a one-band model
    out = variance_partition(r2)
    for s in subsets:
        np.testing.assert_allclose(out["regions"][s], regions[s], rtol=0, atol=1e-14)
    for b in bands:
        np.testing.assert_allclose(out["unique"][b], regions[frozenset(b)], rtol=0, atol=1e-14)
    np.testing.assert_allclose(out["shared"], sum(v for s, v in regions.items() if len(s) > 1), atol=1e-14)
    np.testing.assert_array_equal(out["total"], r2[("a", "b", "c")])
    # only the joint and leave-one-out models: unique and shared, no regions
    partial = variance_partition({k: v for k, v in r2.items() if len(k) != 1 and k != "a"})
    assert "regions" not in partial
    np.testing.assert_allclose(partial["shared"], out["shared"], atol=1e-14)


def _fitted_r2(xa, xb, y, xa_t, xb_t, y_t):
    splits = list(KFold(5, shuffle=True, random_state=0).split(xa))
    r2 = {}
    for name, x, x_t in (("a", xa, xa_t), ("b", xb, xb_t)):
        fit = ridge_solver.ridge_cv(x, y, ALPHAS, splits, **F64)
        r2[name] = r2_columns(y_t, fit.predict(x_t).numpy())
    fit = banded_ridge_cv([xa, xb], y, ALPHAS, simplex_grid(2, 11), splits, **F64)
    r2[("a", "b")] = r2_columns(y_t, fit.predict([xa_t, xb_t]).numpy())
    return r2


def test_variance_partition_independent_bands_closed_form():
    """y = A wa + B wb + noise with independent bands: unique_a is A's share of the
    held-out variance, computed directly from the true parts, and shared is about 0."""
    rng = np.random.default_rng(7)
    n, n_test, p = 2000, 3000, 5
    scale_a = np.array([1.0, 0.8, 0.5, 0.2, 0.0, 0.6])
    scale_b = np.array([0.0, 0.4, 0.7, 0.9, 0.5, 0.6])
    xa, xb = rng.standard_normal((n + n_test, p)), rng.standard_normal((n + n_test, p))
    a_part = xa @ rng.standard_normal((p, 6)) / np.sqrt(p) * scale_a
    b_part = xb @ rng.standard_normal((p, 6)) / np.sqrt(p) * scale_b
    y = a_part + b_part + rng.standard_normal((n + n_test, 6)) * 0.7
    tr, te = slice(0, n), slice(n, None)
    out = variance_partition(_fitted_r2(xa[tr], xb[tr], y[tr], xa[te], xb[te], y[te]))

    # direct calculation on the held-out rows, with the true parts as predictions
    r2_ab, r2_a, r2_b = (r2_columns(y[te], part[te]) for part in (a_part + b_part, a_part, b_part))
    np.testing.assert_allclose(out["unique"]["a"], r2_ab - r2_b, rtol=0, atol=0.01)
    np.testing.assert_allclose(out["unique"]["b"], r2_ab - r2_a, rtol=0, atol=0.01)
    np.testing.assert_allclose(out["shared"], r2_a + r2_b - r2_ab, rtol=0, atol=0.01)
    # that is 2 a.b / SS(y) on the test rows, 0 up to sampling noise for independent bands
    np.testing.assert_allclose(out["shared"], 0, atol=0.03)
    # the direct value is A's share of the held-out variance, (|a|^2 + 2 a.noise) / SS(y),
    # so up to the sampling cross term
    share_a = a_part[te].var(0) / y[te].var(0)
    np.testing.assert_allclose(out["unique"]["a"], share_a, rtol=0, atol=0.05)
    assert out["unique"]["a"][0] > 0.3 and out["unique"]["b"][3] > 0.3
    # the partition adds up exactly
    np.testing.assert_allclose(out["unique"]["a"] + out["unique"]["b"] + out["shared"], out["total"],
                               rtol=0, atol=1e-15)


def test_variance_partition_common_latent_is_shared():
    """Bands that both contain a latent Z: what Z explains is shared, unique parts are
    what the other columns add."""
    rng = np.random.default_rng(8)
    n, n_test = 2000, 3000
    z = rng.standard_normal((n + n_test, 2))
    xa = np.hstack([z, rng.standard_normal((n + n_test, 3))])
    xb = np.hstack([z, rng.standard_normal((n + n_test, 3))])  # the same Z columns: collinear joint model
    z_part = z @ rng.standard_normal((2, 4)) * np.array([1.0, 0.6, 0.3, 0.0])
    a_part = xa[:, 2:] @ rng.standard_normal((3, 4)) / np.sqrt(3) * np.array([0.0, 0.5, 0.8, 0.6])
    y = z_part + a_part + rng.standard_normal((n + n_test, 4)) * 0.7
    tr, te = slice(0, n), slice(n, None)
    out = variance_partition(_fitted_r2(xa[tr], xb[tr], y[tr], xa[te], xb[te], y[te]))
    r2_z, r2_za = r2_columns(y[te], z_part[te]), r2_columns(y[te], (z_part + a_part)[te])
    np.testing.assert_allclose(out["shared"], r2_z, rtol=0, atol=0.01)
    np.testing.assert_allclose(out["unique"]["a"], r2_za - r2_z, rtol=0, atol=0.01)
    np.testing.assert_allclose(out["unique"]["b"], 0, atol=0.01)
    assert out["shared"][0] > 0.4 and out["unique"]["a"][2] > 0.2
