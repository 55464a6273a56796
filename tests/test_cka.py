"""Linear CKA against the HSIC closed form and brute-force permutation references."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.metrics import cka, similarity, stats


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """tr(KHLH) / sqrt(tr(KHKH) tr(LHLH)) with K = XX', L = YY', H = I - 11'/n."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    khlh = np.trace(k @ h @ l @ h)
    return khlh / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l @ h @ l @ h))


def _related(rng, n=40, dx=25, dy=15, noise=1.0):
    """X and a noisy linear read-out Y of it, both with non-zero column means."""
    x = rng.standard_normal((n, dx)) + rng.standard_normal(dx) * 2.0
    y = x @ rng.standard_normal((dx, dy)) + noise * rng.standard_normal((n, dy)) + 5.0
    return x, y


@pytest.mark.parametrize("n,dx,dy", [(40, 25, 15), (30, 100, 8), (60, 3, 70)])
def test_linear_cka_matches_hsic_closed_form(n, dx, dy):
    rng = np.random.default_rng(n + dx + dy)
    x, y = _related(rng, n, dx, dy, noise=3.0)
    value = cka.linear_cka(x, y)
    assert value == pytest.approx(hsic_cka(x, y), abs=1e-10)
    assert 0.05 < value < 0.999  # a value that could plausibly be wrong


def test_linear_cka_unrelated_matches_hsic():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((50, 10)), rng.standard_normal((50, 12))
    assert cka.linear_cka(x, y) == pytest.approx(hsic_cka(x, y), abs=1e-10)


def test_cka_from_grams_equals_linear_cka_single_pair():
    rng = np.random.default_rng(5)
    x, y = _related(rng, noise=2.0)
    kx, ly = cka.centered_gram(x[None]), cka.centered_gram(y[None])
    assert kx.shape == (1, 40, 40)
    # centred Gram = H X X' H
    h = np.eye(40) - 1.0 / 40
    np.testing.assert_allclose(kx[0], h @ x @ x.T @ h, rtol=0, atol=1e-9 * np.abs(kx).max())
    out = cka.cka_from_grams(kx, ly)
    assert out.shape == (1, 1)
    assert out[0, 0] == pytest.approx(cka.linear_cka(x, y), abs=1e-10)
    assert out[0, 0] == pytest.approx(hsic_cka(x, y), abs=1e-10)


def test_cka_from_grams_batched_layers_by_brains():
    rng = np.random.default_rng(6)
    n = 35
    base = rng.standard_normal((n, 20))
    layers = np.stack([base @ rng.standard_normal((20, 30)) + s * rng.standard_normal((n, 30)) for s in (0.5, 2, 8)])
    brains = np.stack([base @ rng.standard_normal((20, 12)) + s * rng.standard_normal((n, 12)) for s in (1, 4)])
    out = cka.cka_from_grams(cka.centered_gram(layers), cka.centered_gram(brains))
    assert out.shape == (3, 2)
    expected = np.array([[cka.linear_cka(layers[a], brains[b]) for b in range(2)] for a in range(3)])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
    assert np.ptp(out) > 1e-2  # layers really differ


def test_cka_self_is_one():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((30, 17)) + 3.0
    assert cka.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    g = cka.centered_gram(x[None])
    assert cka.cka_from_grams(g, g)[0, 0] == pytest.approx(1.0, abs=1e-12)


def test_cka_invariances():
    rng = np.random.default_rng(8)
    x, y = _related(rng, n=45, dx=20, dy=10, noise=3.0)
    base = cka.linear_cka(x, y)
    q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    assert np.allclose(q.T @ q, np.eye(20), atol=1e-12) and not np.allclose(q, np.eye(20))
    assert cka.linear_cka(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert cka.linear_cka(3.7 * x, y) == pytest.approx(base, abs=1e-10)
    assert cka.linear_cka(x + rng.standard_normal(20) * 10.0, y) == pytest.approx(base, abs=1e-10)
    assert cka.linear_cka(x, y @ np.linalg.qr(rng.standard_normal((10, 10)))[0] * 0.2 - 7.0) == \
        pytest.approx(base, abs=1e-10)
    # the Gram path shares the invariances
    gy = cka.centered_gram(y[None])
    transformed = np.stack([x, x @ q, 3.7 * x, x + 11.0])
    np.testing.assert_allclose(cka.cka_from_grams(cka.centered_gram(transformed), gy)[:, 0], base,
                               rtol=0, atol=1e-10)


def test_cka_not_invariant_to_anisotropic_scaling():
    """Makes the invariance test meaningful: a non-isotropic rescaling changes CKA."""
    rng = np.random.default_rng(9)
    x, y = _related(rng, n=45, dx=20, dy=10, noise=3.0)
    d = np.linspace(0.1, 5.0, 20)
    assert abs(cka.linear_cka(x * d, y) - cka.linear_cka(x, y)) > 1e-3
    assert cka.linear_cka(x * d, y) == pytest.approx(hsic_cka(x * d, y), abs=1e-10)


def test_permutation_null_zero_permutations_shape():
    rng = np.random.default_rng(10)
    grams_a = cka.centered_gram(rng.standard_normal((3, 12, 5)))
    grams_b = cka.centered_gram(rng.standard_normal((2, 12, 4)))
    null = cka.permutation_null(grams_a, grams_b, 0, np.random.default_rng(0))
    assert null.shape == (0, 3, 2)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("max_bytes", [1.0, 2.5e8])  # one permutation per block, or all in one
def test_batched_permutation_null_equals_one_permutation_at_a_time(debiased, max_bytes):
    rng = np.random.default_rng(12)
    grams_a = cka.centered_gram(rng.standard_normal((3, 15, 6)))
    grams_b = cka.centered_gram(rng.standard_normal((4, 15, 5)))
    null = cka.permutation_null(grams_a, grams_b, 9, np.random.default_rng(3), debiased=debiased,
                                max_bytes=max_bytes)
    perms = stats.permutations(15, 9, np.random.default_rng(3))
    expected = np.stack([similarity.cka_matrix(grams_a, grams_b[:, p][:, :, p], debiased=debiased) for p in perms])
    np.testing.assert_allclose(null, expected, rtol=0, atol=1e-12)


def test_permutation_null_matches_brute_force():
    rng = np.random.default_rng(11)
    n = 25
    base = rng.standard_normal((n, 10))
    layers = np.stack([base @ rng.standard_normal((10, 16)) + s * rng.standard_normal((n, 16)) for s in (0.5, 3)])
    brains = np.stack([base @ rng.standard_normal((10, 9)) + s * rng.standard_normal((n, 9)) for s in (1, 2, 4)])
    seed, k = 77, 12
    null = cka.permutation_null(cka.centered_gram(layers), cka.centered_gram(brains), k,
                                np.random.default_rng(seed))
    replay = np.random.default_rng(seed)
    expected = np.empty((k, 2, 3))
    for i in range(k):
        p = replay.permutation(n)
        for a in range(2):
            for b in range(3):
                expected[i, a, b] = cka.linear_cka(layers[a], brains[b][p])
    assert null.shape == (k, 2, 3)
    np.testing.assert_allclose(null, expected, rtol=0, atol=1e-10)
    # sanity: permuting destroys the shared structure
    observed = cka.cka_from_grams(cka.centered_gram(layers), cka.centered_gram(brains))
    assert null.mean() < observed.mean() - 0.1
    assert null.std(0).min() > 1e-3
