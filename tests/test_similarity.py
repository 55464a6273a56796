"""Similarity measures against independent numpy implementations of their formulas,
their invariances, and the published C++ package repsim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import pdist, squareform

from brainalign.metrics import cka, rsa
from brainalign.metrics import similarity as sim


# ----------------------------------------------------------------------------- references

def np_centre(k: np.ndarray) -> np.ndarray:
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return h @ k @ h


def np_cka(k: np.ndarray, l: np.ndarray) -> float:
    """tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))."""
    kc, lc = np_centre(k), np_centre(l)
    return float(np.trace(kc @ lc) / np.sqrt(np.trace(kc @ kc) * np.trace(lc @ lc)))


def np_hsic_u(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. 2012, eq. 5, written out with the diagonals zeroed."""
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    one = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (one @ kt @ lt @ one)
    return float((term1 + term2 - term3) / (n * (n - 3)))


def np_debiased_cka(k: np.ndarray, l: np.ndarray) -> float:
    return np_hsic_u(k, l) / np.sqrt(np_hsic_u(k, k) * np_hsic_u(l, l))


def np_rbf_gram(x: np.ndarray, sigma_factor: float = 1.0) -> np.ndarray:
    d = pdist(x)  # Euclidean distances of pairs i < j
    sigma = sigma_factor * np.median(d)
    return np.exp(-squareform(d) ** 2 / (2.0 * sigma**2))


def np_unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    return x / np.linalg.norm(x)


def np_nuclear(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.linalg.svd(np_unit(x).T @ np_unit(y), compute_uv=False).sum())


def np_procrustes_distance(x: np.ndarray, y: np.ndarray) -> float:
    """min_R ||X R - Y||_F over orthogonal R, via scipy, narrower side zero-padded."""
    x, y = np_unit(x), np_unit(y)
    width = max(x.shape[1], y.shape[1])
    x = np.pad(x, ((0, 0), (0, width - x.shape[1])))
    y = np.pad(y, ((0, 0), (0, width - y.shape[1])))
    r, _ = orthogonal_procrustes(x, y)
    return float(np.linalg.norm(x @ r - y))


def brute_mutual_knn(x: np.ndarray, y: np.ndarray, k: int) -> float:
    def neighbours(z):
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        out = []
        for i in range(len(z)):
            s = z @ z[i]
            s[i] = -np.inf
            out.append(set(np.argsort(-s, kind="stable")[:k].tolist()))
        return out

    nx, ny = neighbours(x), neighbours(y)
    return float(np.mean([len(a & b) / k for a, b in zip(nx, ny)]))


def related(rng, n=40, dx=25, dy=15, noise=1.0, offset=3.0):
    """X and a noisy linear read-out Y of it, both with non-zero column means."""
    x = rng.standard_normal((n, dx)) + rng.standard_normal(dx) * offset
    y = x @ rng.standard_normal((dx, dy)) + noise * rng.standard_normal((n, dy)) + offset
    return x, y


def orthogonal(rng, d):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


# ----------------------------------------------------------------------------- API

def test_public_api():
    assert sim.MEASURES == ("linear_cka", "rbf_cka", "debiased_cka", "procrustes", "angular_procrustes",
                            "mutual_knn", "rsa")
    assert set(sim.HIGHER_IS_BETTER) == set(sim.MEASURES)
    assert [m for m, up in sim.HIGHER_IS_BETTER.items() if not up] == ["angular_procrustes"]


def test_pairwise_rejects_unknown_measure_and_settings():
    x = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match="unknown similarity measure 'cca'"):
        sim.pairwise("cca", [x], [x])
    with pytest.raises(TypeError, match="sigma_facter"):
        sim.pairwise("rbf_cka", [x], [x], sigma_facter=2.0)
    # one shared settings dict serves every measure: settings a measure does not use are ignored
    shared = {"sigma_factor": 0.5, "k": 3, "comparison": "tau-a", "dtype": "float64", "device": "cpu"}
    y = x + np.random.default_rng(1).standard_normal((10, 3))
    assert sim.pairwise("linear_cka", [x], [y], **shared) == pytest.approx(sim.pairwise("linear_cka", [x], [y]))
    with pytest.raises(ValueError, match="same stimuli"):
        sim.pairwise("procrustes", [x], [x[:9]])


# ----------------------------------------------------------------------------- CKA

@pytest.mark.parametrize("measure", ["linear_cka", "rbf_cka", "debiased_cka"])
@pytest.mark.parametrize("n,d", [(60, 20), (30, 80)])  # feature-space and Gram paths
def test_cka_self_is_one(measure, n, d):
    rng = np.random.default_rng(n * d)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 4.0
    out = sim.pairwise(measure, [x, x[:, ::-1] * 2.0], [x])
    np.testing.assert_allclose(out, 1.0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n,dx,dy", [(45, 20, 10), (30, 60, 45)])
def test_linear_cka_invariances_and_legacy_agreement(n, dx, dy):
    rng = np.random.default_rng(n + dx)
    x, y = related(rng, n, dx, dy, noise=3.0)
    base = cka.linear_cka(x, y)
    assert 0.05 < base < 0.99
    q = orthogonal(rng, dx)
    assert not np.allclose(q, np.eye(dx))
    variants = [x, x @ q, 3.7 * x, x + rng.standard_normal(dx) * 10.0, 0.2 * (x @ q) - 7.0]
    out = sim.pairwise("linear_cka", variants, [y])
    np.testing.assert_allclose(out[:, 0], base, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out[0, 0], np_cka(x @ x.T, y @ y.T), rtol=0, atol=1e-10)
    # a non-isotropic rescaling does change it, so the invariances above are not vacuous
    aniso = sim.pairwise("linear_cka", [x * np.linspace(0.1, 5.0, dx)], [y])[0, 0]
    assert abs(aniso - base) > 1e-3


def test_linear_cka_feature_path_equals_gram_path():
    rng = np.random.default_rng(1)
    x, y = related(rng, n=80, dx=12, dy=7, noise=2.0)
    features = sim.linear_cka_features(x, y)
    assert isinstance(features, float)
    grams = sim.cka_matrix(sim.gram(x[None]), sim.gram(y[None]))
    assert grams.shape == (1, 1)
    assert features == pytest.approx(grams[0, 0], abs=1e-12)
    assert features == pytest.approx(cka.linear_cka(x, y), abs=1e-12)
    # the torch implementation (used on GPUs) equals the numpy one used on the CPU
    xs, ys = [x, x[:, :5] ** 2], [y, y[:, :3]]
    for debiased in (False, True):
        cpu = sim.linear_cka_features(xs, ys, device="cpu", debiased=debiased)
        via_torch = sim._features_torch(xs, ys, torch.float64, torch.device("cpu"), 80, debiased)
        np.testing.assert_allclose(via_torch, cpu, rtol=0, atol=1e-12)
        f32 = sim._features_torch(xs, ys, torch.float32, torch.device("cpu"), 80, debiased)
        np.testing.assert_allclose(f32, cpu, rtol=0, atol=1e-4)
    # the Gram path of cka_matrix reproduces the legacy centred-Gram CKA
    legacy = cka.cka_from_grams(cka.centered_gram(x[None]), cka.centered_gram(y[None]))
    assert grams[0, 0] == pytest.approx(legacy[0, 0], abs=1e-12)


def test_gram_linear_is_uncentred_and_center_gram_is_hkh():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 12, 5)) + 2.0
    k = sim.gram(x)
    assert isinstance(k, torch.Tensor) and k.dtype == torch.float64 and k.shape == (3, 12, 12)
    np.testing.assert_allclose(k.numpy(), x @ np.swapaxes(x, -1, -2), rtol=1e-13, atol=0)
    kc = sim.center_gram(k)
    np.testing.assert_allclose(kc[1].numpy(), np_centre(x[1] @ x[1].T), rtol=0, atol=1e-11)
    assert sim.gram(x, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("n", [41, 42])  # an even and an odd number of stimulus pairs
def test_rbf_gram_matches_numpy_median_heuristic(n):
    rng = np.random.default_rng(n)
    xs = rng.standard_normal((3, n, 7)) * np.array([1.0, 2.0, 5.0])[:, None, None] + 3.0
    k = sim.gram(xs, kernel="rbf", sigma_factor=0.7).numpy()  # one bandwidth per matrix
    for i in range(3):
        np.testing.assert_allclose(k[i], np_rbf_gram(xs[i], 0.7), rtol=0, atol=1e-12)


@pytest.mark.parametrize("sigma_factor", [1.0, 0.5, 2.0])
def test_rbf_cka_matches_numpy(sigma_factor):
    rng = np.random.default_rng(4)
    x, y = related(rng, n=50, dx=30, dy=12, noise=4.0)
    xs = [x, np.tanh(x[:, :10])]
    ys = [y, y ** 2]
    out = sim.pairwise("rbf_cka", xs, ys, sigma_factor=sigma_factor)
    expected = np.array([[np_cka(np_rbf_gram(a, sigma_factor), np_rbf_gram(b, sigma_factor)) for b in ys]
                         for a in xs])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
    assert np.all((expected > 0.05) & (expected < 0.99))


def test_rbf_cka_depends_on_sigma_factor():
    rng = np.random.default_rng(5)
    x, y = related(rng, n=50, dx=30, dy=12, noise=4.0)
    values = [sim.pairwise("rbf_cka", [x], [y], sigma_factor=s)[0, 0] for s in (0.3, 1.0, 3.0)]
    assert min(abs(values[0] - values[1]), abs(values[1] - values[2])) > 1e-3


def test_hsic_unbiased_matches_numpy():
    rng = np.random.default_rng(6)
    x, y = related(rng, n=30, dx=8, dy=5, noise=2.0, offset=1.0)
    ks = np.stack([x @ x.T, np_rbf_gram(x)])
    ls = np.stack([y @ y.T, np_rbf_gram(y, 0.5), (y[:, :2] @ y[:, :2].T) ** 2])
    out = sim.hsic_unbiased(ks, ls)
    assert out.shape == (2, 3)
    expected = np.array([[np_hsic_u(k, l) for l in ls] for k in ks])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=0)
    assert float(sim.hsic_unbiased(ks[0], ls[0])) == pytest.approx(expected[0, 0], rel=1e-10)
    with pytest.raises(ValueError, match="n >= 4"):
        sim.hsic_unbiased(ks[:, :3, :3], ls[:, :3, :3])


@pytest.mark.parametrize("n,dx,dy", [(60, 12, 20), (25, 40, 30)])  # feature-space and Gram paths
def test_debiased_cka_matches_numpy_unbiased_hsic(n, dx, dy):
    rng = np.random.default_rng(n + dy)
    x, y = related(rng, n, dx, dy, noise=3.0, offset=1.0)
    xs = [x, x[:, : dx // 2]]
    ys = [y, rng.standard_normal((n, dy))]
    out = sim.pairwise("debiased_cka", xs, ys)
    expected = np.array([[np_debiased_cka(a @ a.T, b @ b.T) for b in ys] for a in xs])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
    grams = sim.cka_matrix(np.stack([a @ a.T for a in xs]), np.stack([b @ b.T for b in ys]), debiased=True)
    np.testing.assert_allclose(grams, expected, rtol=0, atol=1e-10)
    assert expected[0, 0] > 0.1 and abs(expected[0, 0] - np_cka(x @ x.T, y @ y.T)) > 1e-3  # not the biased CKA
    # invariant to translation, rotation and isotropic scaling
    shifted = sim.pairwise("debiased_cka", [5.0 - 0.3 * x @ orthogonal(rng, dx)], [y])
    assert shifted[0, 0] == pytest.approx(expected[0, 0], abs=1e-10)


def test_debiased_cka_removes_bias_on_independent_data():
    n = 1000
    biased, debiased = [], []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        x, y = rng.standard_normal((n, 50)), rng.standard_normal((n, 60))
        biased.append(sim.pairwise("linear_cka", [x], [y])[0, 0])
        debiased.append(sim.pairwise("debiased_cka", [x], [y])[0, 0])
    # biased linear CKA of independent Gaussians is about sqrt(dx dy) / n = 0.055
    assert np.mean(np.abs(debiased)) < 0.02
    assert min(biased) > 0.04 and np.mean(biased) > 3 * np.mean(np.abs(debiased))
    # the Gram path (n x n) agrees with the feature-space path at this size
    gram_path = sim.cka_matrix(sim.gram(x - x.mean(0))[None], sim.gram(y)[None], debiased=True)[0, 0]
    assert gram_path == pytest.approx(debiased[-1], abs=1e-10)


# ----------------------------------------------------------------------------- minibatch CKA

def test_minibatch_cka_single_batch_is_debiased_cka():
    rng = np.random.default_rng(7)
    x, y = related(rng, n=50, dx=20, dy=9, noise=3.0)
    perm = np.random.default_rng(3).permutation(50)
    full = sim.pairwise("debiased_cka", [x[perm]], [y[perm]])[0, 0]
    for batch_size in (50, 64):
        assert sim.minibatch_cka(x, y, batch_size, seed=3) == pytest.approx(full, abs=1e-10)
    assert full == pytest.approx(np_debiased_cka(x @ x.T, y @ y.T), abs=1e-10)


@pytest.mark.parametrize("n,batch_size,kernel", [(103, 20, "linear"), (105, 20, "linear"), (90, 25, "rbf")])
def test_minibatch_cka_matches_manual_accumulation(n, batch_size, kernel):
    rng = np.random.default_rng(n)
    x, y = related(rng, n=n, dx=15, dy=8, noise=3.0)
    seed = 11
    perm = np.random.default_rng(seed).permutation(n)
    batches = [perm[s:s + batch_size] for s in range(0, n, batch_size)]
    batches = [b for b in batches if len(b) >= 4]
    assert sum(map(len, batches)) == n - (3 if n == 103 else 0)  # 103: the 3-stimulus tail is dropped
    make = (lambda z: z @ z.T) if kernel == "linear" else np_rbf_gram
    hxy = np.mean([np_hsic_u(make(x[b]), make(y[b])) for b in batches])
    hxx = np.mean([np_hsic_u(make(x[b]), make(x[b])) for b in batches])
    hyy = np.mean([np_hsic_u(make(y[b]), make(y[b])) for b in batches])
    value = sim.minibatch_cka(x, y, batch_size, kernel=kernel, seed=seed)
    assert value == pytest.approx(hxy / np.sqrt(hxx * hyy), abs=1e-10)
    other_seed = sim.minibatch_cka(x, y, batch_size, kernel=kernel, seed=seed + 1)
    assert abs(other_seed - value) > 1e-6  # the seed really chooses the batches


# ----------------------------------------------------------------------------- Procrustes

@pytest.mark.parametrize("n,d", [(50, 20), (30, 80)])
def test_procrustes_distance_zero_for_similarity_transforms(n, d):
    rng = np.random.default_rng(n + d)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    q = orthogonal(rng, d)
    copies = [x @ q, 3.0 * x - 2.0, 0.1 * (x @ q) + rng.standard_normal(d)]
    dist = sim.procrustes_distance([x], copies)
    np.testing.assert_allclose(dist, 0.0, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sim.procrustes_similarity([x], copies), 1.0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sim.angular_procrustes([x], copies), 0.0, rtol=0, atol=1e-8)
    # a rotated copy plus noise is not at distance 0
    assert sim.procrustes_distance([x], [x @ q + 0.3 * x.std() * rng.standard_normal((n, d))])[0, 0] > 0.05


@pytest.mark.parametrize("n,widths_x,widths_y", [(40, (10, 25), (15, 6)), (20, (50, 8), (35, 60)),
                                                 (12, (30, 30), (30, 11))])
def test_procrustes_matches_feature_space_svd(n, widths_x, widths_y):
    rng = np.random.default_rng(n)
    base = rng.standard_normal((n, 6))
    xs = [base @ rng.standard_normal((6, w)) + 0.5 * rng.standard_normal((n, w)) + 2.0 for w in widths_x]
    ys = [base @ rng.standard_normal((6, w)) + 1.0 * rng.standard_normal((n, w)) for w in widths_y]
    nuc = np.array([[np_nuclear(x, y) for y in ys] for x in xs])
    assert np.all((nuc > 0.2) & (nuc < 0.99))
    np.testing.assert_allclose(sim.procrustes_similarity(xs, ys), nuc, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sim.pairwise("procrustes", xs, ys), nuc, rtol=0, atol=1e-8)
    scipy_dist = np.array([[np_procrustes_distance(x, y) for y in ys] for x in xs])
    np.testing.assert_allclose(sim.procrustes_distance(xs, ys), scipy_dist, rtol=0, atol=1e-8)
    np.testing.assert_allclose(scipy_dist, np.sqrt(2 - 2 * nuc), rtol=0, atol=1e-7)  # the identity itself
    np.testing.assert_allclose(sim.angular_procrustes(xs, ys), np.arccos(nuc), rtol=0, atol=1e-8)
    np.testing.assert_allclose(sim.pairwise("angular_procrustes", xs, ys), np.arccos(nuc), rtol=0, atol=1e-8)


def test_procrustes_rank_deficient_wide_layer():
    """A wide layer of rank 3: the square-root-of-eigenvalues route is off by ~1e-8 here."""
    rng = np.random.default_rng(9)
    n = 60
    x = rng.standard_normal((n, 3)) @ rng.standard_normal((3, 400))
    y = rng.standard_normal((n, 300))
    assert sim.procrustes_similarity([x], [y])[0, 0] == pytest.approx(np_nuclear(x, y), abs=1e-12)


def test_angular_procrustes_triangle_inequality():
    rng = np.random.default_rng(10)
    n = 30
    base = rng.standard_normal((n, 5))
    reps = [base @ rng.standard_normal((5, w)) + s * rng.standard_normal((n, w))
            for w, s in ((12, 0.5), (20, 1.5), (7, 3.0))]
    d = sim.angular_procrustes(reps, reps)
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-8)
    np.testing.assert_allclose(d, d.T, atol=1e-10)
    assert d[0, 1] > 0.1 and d[1, 2] > 0.1
    for i in range(3):
        for j in range(3):
            for k in range(3):
                assert d[i, k] <= d[i, j] + d[j, k] + 1e-12


# ----------------------------------------------------------------------------- mutual k-NN

def test_mutual_knn_identical_and_rotated_scaled_copies():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((80, 16))
    copies = [x, 4.0 * x @ orthogonal(rng, 16), 0.01 * x]
    np.testing.assert_array_equal(sim.mutual_knn([x], copies, k=10), 1.0)
    # translation changes cosine neighbourhoods, so it is not 1 (the measure is not shift-invariant)
    assert sim.mutual_knn([x], [x + 1.0], k=10)[0, 0] < 1.0


@pytest.mark.parametrize("k", [1, 5, 12])
def test_mutual_knn_matches_brute_force(k):
    rng = np.random.default_rng(12 + k)
    base = rng.standard_normal((70, 4))
    xs = [base @ rng.standard_normal((4, 20)) + 0.5 * rng.standard_normal((70, 20)), rng.standard_normal((70, 9))]
    ys = [base @ rng.standard_normal((4, 13)) + 0.8 * rng.standard_normal((70, 13))]
    expected = np.array([[brute_mutual_knn(x, y, k) for y in ys] for x in xs])
    out = sim.pairwise("mutual_knn", xs, ys, k=k)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert expected[0, 0] > 0.2  # shared structure is found


def test_mutual_knn_row_blocks_do_not_change_neighbours():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((50, 6))
    whole = sim._knn_indices(x, 7, torch.float64, "cpu")
    blocked = sim._knn_indices(x, 7, torch.float64, "cpu", max_block=50 * 7)  # 7 rows at a time
    np.testing.assert_array_equal(whole.numpy(), blocked.numpy())


def test_mutual_knn_chance_level_for_independent_data():
    n, k = 400, 10
    rng = np.random.default_rng(14)
    xs = [rng.standard_normal((n, 20)) for _ in range(3)]
    ys = [rng.standard_normal((n, 30)) for _ in range(3)]
    out = sim.mutual_knn(xs, ys, k=k)
    chance = k / (n - 1)
    # per-sample overlap is ~hypergeometric with mean k^2/(n-1); SE of the 9-score mean
    se = np.sqrt(k * chance * (1 - chance)) / k / np.sqrt(n * out.size)
    assert abs(out.mean() - chance) < 4 * se
    assert out.max() < 0.1


# ----------------------------------------------------------------------------- RSA

@pytest.mark.parametrize("comparison", ["spearman", "tau-a"])
def test_rsa_similarity_uses_rsa_module(comparison):
    rng = np.random.default_rng(15)
    x, y = related(rng, n=20, dx=12, dy=9, noise=2.0)
    xs, ys = [x, x[:, :4]], [y, rng.standard_normal((20, 30))]
    expected = rsa.compare(np.stack([rsa.rdm(a) for a in xs]),
                           np.stack([rsa.rdm(b) for b in ys]), comparison)
    out = sim.pairwise("rsa", xs, ys, comparison=comparison)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert out.shape == (2, 2) and out[0, 0] > 0.1


# ----------------------------------------------------------------------------- dtype

@pytest.mark.parametrize("measure", sim.MEASURES)
def test_pairwise_float32_close_to_float64(measure):
    rng = np.random.default_rng(16)
    x, y = related(rng, n=40, dx=10, dy=6, noise=2.0, offset=1.0)
    xs, ys = [x, x[:, :5]], [y]
    hi = sim.pairwise(measure, xs, ys, dtype="float64")
    lo = sim.pairwise(measure, xs, ys, dtype="float32", device="cpu")
    assert hi.dtype == lo.dtype == np.float64 and hi.shape == (2, 1)
    np.testing.assert_allclose(lo, hi, rtol=0, atol=1e-4 if measure != "mutual_knn" else 0.05)
    if measure not in ("mutual_knn", "rsa"):  # rsa runs in numpy float64 whatever the dtype
        assert np.abs(lo - hi).max() > 1e-12  # float32 really was used


def test_pairwise_accepts_stacks_and_tensors():
    rng = np.random.default_rng(18)
    stack = rng.standard_normal((3, 30, 8))
    ys = [rng.standard_normal((30, 5))]
    for measure in sim.MEASURES:
        expected = sim.pairwise(measure, list(stack), ys)
        assert expected.shape == (3, 1)
        np.testing.assert_allclose(sim.pairwise(measure, stack, ys), expected, rtol=0, atol=1e-12)
        if measure != "rsa":
            np.testing.assert_allclose(sim.pairwise(measure, torch.from_numpy(stack), [torch.from_numpy(ys[0])]),
                                       expected, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- repsim

def _repsim_inputs():
    rng = np.random.default_rng(17)
    x, y = related(rng, n=60, dx=20, dy=12, noise=3.0, offset=1.0)
    return x, y


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_cka_matches_repsim(kernel):
    import repsim

    x, y = _repsim_inputs()
    ref = repsim.cka([x, y], kernel_type=kernel, estimator="gretton")[0, 1]
    ours = sim.pairwise(f"{kernel}_cka", [x], [y])[0, 0]
    assert 0.1 < ours < 0.99
    assert ours == pytest.approx(ref, abs=1e-8)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_unbiased_hsic_and_debiased_cka_match_repsim(kernel):
    """repsim's "song" estimator is Song et al.'s unbiased HSIC. (Its ``cka(..., "song")``
    normalises by the *biased* self-HSIC, so debiased CKA is built from its HSIC matrix.)"""
    import repsim

    x, y = _repsim_inputs()
    h = repsim.hsic([x, y], kernel_type=kernel, estimator="song")
    grams = torch.stack([sim.gram(x, kernel=kernel), sim.gram(y, kernel=kernel)])
    ours = sim.hsic_unbiased(grams, grams).numpy()
    np.testing.assert_allclose(ours, h, rtol=1e-8, atol=0)
    debiased_ref = h[0, 1] / np.sqrt(h[0, 0] * h[1, 1])
    assert sim.cka_matrix(grams[:1], grams[1:], debiased=True)[0, 0] == pytest.approx(debiased_ref, abs=1e-8)
    if kernel == "linear":
        assert sim.pairwise("debiased_cka", [x], [y])[0, 0] == pytest.approx(debiased_ref, abs=1e-8)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matrix_with_batch_dims_pairs_within_each_batch(debiased):
    rng = np.random.default_rng(31)
    k = sim.gram(rng.standard_normal((5, 3, 12, 4))).double().numpy()  # (batch, A, n, n)
    l = sim.gram(rng.standard_normal((5, 2, 12, 6))).double().numpy()  # (batch, B, n, n)
    out = sim.cka_matrix(k, l, debiased=debiased)
    assert out.shape == (5, 3, 2)
    expected = np.stack([sim.cka_matrix(k[i], l[i], debiased=debiased) for i in range(5)])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("measure", ["linear_cka", "debiased_cka"])
def test_cka_subsamples_in_blocks_equal_one_subsample_at_a_time(measure):
    from brainalign.jobs import geometry
    from brainalign.metrics import stats

    rng = np.random.default_rng(32)
    xs = [rng.standard_normal((30, 7)) for _ in range(3)]
    ys = [rng.standard_normal((30, 5)) for _ in range(2)]
    indices = stats.subsample_indices(30, 11, np.random.default_rng(4))
    out = geometry._subsamples(measure, xs, ys, {}, indices)
    expected = np.stack([sim.pairwise(measure, [x[b] for x in xs], [y[b] for y in ys]) for b in indices])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("measure", ["procrustes", "angular_procrustes", "mutual_knn", "linear_cka"])
def test_subsample_pairwise_equals_pairwise_on_each_sample(measure):
    """Samples of rows batched into one call (Procrustes, mutual k-NN) give each sample's own
    scores: wide and narrow representations, widths that differ, two brain blocks of one shape."""
    rng = np.random.default_rng(12)
    n, m = 40, 20
    latent = rng.standard_normal((n, 6))
    xs = [latent @ rng.standard_normal((6, d)) + rng.standard_normal((n, d)) for d in (8, 30)]
    ys = [latent @ rng.standard_normal((6, d)) + 2 * rng.standard_normal((n, d)) for d in (12, 12, 25)]
    indices = np.stack([np.sort(rng.choice(n, m, replace=False)) for _ in range(7)])
    settings = {"k": 4} if measure == "mutual_knn" else {}
    batched = sim.subsample_pairwise(measure, xs, ys, indices, **settings)
    assert batched.shape == (7, 2, 3)
    one_by_one = np.stack([sim.pairwise(measure, [x[b] for x in xs], [y[b] for y in ys], **settings)
                           for b in indices])
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-12)
    assert np.ptp(batched[:, 0, 0]) > 0  # the samples differ
