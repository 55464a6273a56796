"""Layer-geometry measures against scikit-dimension, closed forms on matrices with known
spectra, planted manifolds and power laws, and by-hand loops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skdim

from brainalign.metrics import layer_geometry as lg


# ----------------------------------------------------------------------------- builders

def orthonormal(rng, n, k, orthogonal_to_ones=False):
    """n x k with orthonormal columns; optionally all orthogonal to the ones vector, so that
    column-centring U diag(s) V' leaves it unchanged."""
    a = rng.standard_normal((n, k))
    if orthogonal_to_ones:
        a -= a.mean(axis=0)
    return np.linalg.qr(a)[0]


def with_singular_values(rng, n, p, s, centred=True):
    """X (n, p) whose singular values are exactly ``s`` (plus zeros), with zero column means when
    ``centred``; the covariance eigenvalues of such X are s^2 / (n - 1)."""
    s = np.asarray(s, dtype=float)
    u = orthonormal(rng, n, len(s), orthogonal_to_ones=centred)
    v = orthonormal(rng, p, len(s))
    return (u * s) @ v.T


def embedded(rng, z, ambient=100):
    """Rows of ``z`` isometrically embedded in ``ambient`` dimensions (random rotation)."""
    return z @ orthonormal(rng, ambient, z.shape[1]).T


# ----------------------------------------------------------------------------- intrinsic dimension

@pytest.mark.parametrize("shape", [(400, 12), (600, 60)])  # skdim's two distance paths (p <= 25, p > 25)
@pytest.mark.parametrize("discard_fraction", [0.1, 0.25])
def test_twonn_equals_skdim(shape, discard_fraction):
    rng = np.random.default_rng(shape[1])
    x = rng.standard_normal(shape) @ rng.standard_normal((shape[1], shape[1])) + 5.0
    ref = skdim.id.TwoNN(discard_fraction=discard_fraction).fit(x).dimension_
    assert lg.twonn(x, discard_fraction=discard_fraction) == pytest.approx(ref, rel=1e-10, abs=0)


def test_twonn_default_is_skdim_default():
    x = np.random.default_rng(1).standard_normal((300, 30))
    assert lg.twonn(x) == pytest.approx(skdim.id.TwoNN().fit(x).dimension_, rel=1e-10, abs=0)


@pytest.mark.parametrize("shape", [(400, 12), (600, 60)])
@pytest.mark.parametrize("k", [5, 20])
def test_mle_equals_skdim(shape, k):
    rng = np.random.default_rng(shape[1] + k)
    x = np.tanh(rng.standard_normal(shape) @ rng.standard_normal((shape[1], shape[1])))
    ref = skdim.id.MLE().fit(x, n_neighbors=k).dimension_
    assert lg.mle(x, k=k) == pytest.approx(ref, rel=1e-10, abs=0)
    if k == 20:
        assert lg.mle(x) == pytest.approx(ref, rel=1e-10, abs=0)


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("kind", ["linear", "sphere"])
def test_twonn_recovers_planted_dimension(kind, d):
    """2000 points on a d-dimensional Gaussian subspace or on the curved unit d-sphere S^d
    (in R^{d+1}), rotated into 100 dimensions."""
    rng = np.random.default_rng(10 * d + (kind == "sphere"))
    if kind == "linear":
        z = rng.standard_normal((2000, d))
    else:
        g = rng.standard_normal((2000, d + 1))
        z = g / np.linalg.norm(g, axis=1, keepdims=True)
    x = embedded(rng, z)
    assert lg.twonn(x) == pytest.approx(d, rel=0.10)


def test_duplicates_dropped_with_warning_or_raise():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 8))
    with_dups = np.vstack([x, x[[4, 4, 17]]])        # three extra copies of two stimuli
    for f in (lg.twonn, lg.mle):
        with pytest.warns(UserWarning, match="3 of 203 stimuli duplicate"):
            value = f(with_dups)
        assert value == pytest.approx(f(x), rel=1e-12)
        with pytest.raises(ValueError, match="duplicate"):
            f(with_dups, duplicates="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lg.twonn(x)                                   # no duplicates, no warning


def test_id_argument_errors():
    x = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(ValueError, match="k"):
        lg.mle(x, k=30)
    with pytest.raises(ValueError, match="discard_fraction"):
        lg.twonn(x, discard_fraction=0.0)
    with pytest.raises(ValueError, match="NaN"):
        lg.twonn(np.where(np.eye(30, 4) > 0, np.nan, x))


# ----------------------------------------------------------------------------- spectrum

@pytest.mark.parametrize("k", [1, 3, 17])
def test_equal_spectrum_gives_k(k):
    rng = np.random.default_rng(k)
    x = with_singular_values(rng, 80, 40, np.full(k, 2.5))
    assert lg.participation_ratio(x) == pytest.approx(k, rel=1e-12)
    assert lg.participation_ratio(x + rng.standard_normal(40)) == pytest.approx(k, rel=1e-12)  # centred
    assert lg.effective_rank(x, eps=0) == pytest.approx(k, rel=1e-12)


def test_participation_ratio_and_rankme_closed_forms():
    rng = np.random.default_rng(7)
    s = np.array([9.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    n, p = 60, 25
    x = with_singular_values(rng, n, p, s)
    lam = s ** 2 / (n - 1)
    assert lg.participation_ratio(x) == pytest.approx(lam.sum() ** 2 / (lam ** 2).sum(), rel=1e-12)
    # RankMe over all min(n, p) = 25 singular values; the 18 zero ones contribute eps log eps each
    eps = 1e-7
    q = np.concatenate([s / s.sum(), np.zeros(p - len(s))]) + eps
    assert lg.effective_rank(x) == pytest.approx(np.exp(-(q * np.log(q)).sum()), rel=1e-9)
    q0 = s / s.sum()
    assert lg.effective_rank(x, eps=0) == pytest.approx(np.exp(-(q0 * np.log(q0)).sum()), rel=1e-12)


def test_effective_rank_is_uncentred():
    """Identical rows: one non-zero singular value, so RankMe (uncentred) is 1; the centred
    matrix would be all zeros."""
    x = np.tile(np.random.default_rng(2).standard_normal(30), (50, 1))
    assert lg.effective_rank(x, eps=0) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="zero variance"):
        lg.participation_ratio(x)


@pytest.mark.parametrize("alpha", [0.7, 1.8])
def test_alpha_req_exact_power_law(alpha):
    rng = np.random.default_rng(int(10 * alpha))
    n, p, r = 150, 90, 60
    lam = 3.0 * np.arange(1, r + 1) ** -alpha                    # covariance eigenvalues, rank 60
    x = with_singular_values(rng, n, p, np.sqrt(lam * (n - 1))) + rng.standard_normal(p)
    assert lg.alpha_req(x) == pytest.approx(alpha, abs=1e-6)    # zero tail excluded by rtol
    # a different head, skipped with k_min; a truncated range
    lam2 = lam.copy()
    lam2[0] *= 7.0
    x2 = with_singular_values(rng, n, p, np.sqrt(lam2 * (n - 1)))
    assert lg.alpha_req(x2, k_min=2) == pytest.approx(alpha, abs=1e-6)
    assert lg.alpha_req(x2, k_min=2, k_max=20) == pytest.approx(alpha, abs=1e-6)
    assert abs(lg.alpha_req(x2) - alpha) > 1e-3


@pytest.mark.parametrize("alpha", [0.8, 1.5])
def test_alpha_req_sampled(alpha):
    """4000 Gaussian samples with covariance eigenvalues k^-alpha (random basis), fit over the
    top 50 of 100 ranks (the sample spectrum's far tail is biased)."""
    rng = np.random.default_rng(int(100 * alpha))
    p = 100
    x = rng.standard_normal((4000, p)) * np.arange(1, p + 1) ** (-alpha / 2) @ orthonormal(rng, p, p).T
    assert lg.alpha_req(x, k_max=50) == pytest.approx(alpha, rel=0.05)


# ----------------------------------------------------------------------------- shape

def test_anisotropy_equals_double_loop():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 16)) + 0.7                      # uncentred: positive anisotropy
    total, pairs = 0.0, 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            total += x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
            pairs += 1
    assert lg.anisotropy(x) == pytest.approx(total / pairs, rel=1e-12)
    assert lg.anisotropy(np.tile(x[:1], (5, 1))) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="all-zero"):
        lg.anisotropy(np.vstack([x, np.zeros(16)]))


def test_massive_activation_closed_form():
    rng = np.random.default_rng(6)
    mags = rng.permutation(np.arange(1.0, 10 * 21 + 1))          # |entries| 1..210: median 105.5
    x = (mags * rng.choice([-1.0, 1.0], size=mags.size)).reshape(10, 21)
    assert lg.massive_activation(x) == pytest.approx(210 / 105.5, rel=1e-15)
    x = np.ones((8, 50))
    x[3, 7] = -2500.0
    assert lg.massive_activation(x) == 2500.0
    sparse = np.zeros((4, 4))
    sparse[0, :3] = 1.0
    assert lg.massive_activation(sparse) == np.inf              # median |x| = 0
    assert np.isnan(lg.massive_activation(np.zeros((3, 3))))


def nc1_by_hand(x, labels):
    classes = sorted(set(labels))
    labels = np.asarray(labels)
    mu_g = x.mean(axis=0)
    means = {c: x[labels == c].mean(axis=0) for c in classes}
    sw = sum(np.outer(xi - means[c], xi - means[c]) for xi, c in zip(x, labels)) / len(x)
    sb = sum(np.outer(means[c] - mu_g, means[c] - mu_g) for c in classes) / len(classes)
    return np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10, hermitian=True)) / len(classes)


@pytest.mark.parametrize("p,counts", [(6, (5, 10, 15)), (2, (4, 4, 6, 9)), (12, (7, 7, 7, 7))])
def test_nc1_equals_by_hand(p, counts):
    rng = np.random.default_rng(p)
    labels = np.repeat([f"c{i}" for i in range(len(counts))], counts)
    rng.shuffle(labels)
    x = rng.standard_normal((len(labels), p)) + 0.5 * rng.standard_normal((len(counts), p))[
        np.searchsorted(np.unique(labels), labels)]
    assert lg.nc1(x, labels) == pytest.approx(nc1_by_hand(x, labels), rel=1e-10)


def test_nc1_collapsed_is_zero_and_errors():
    rng = np.random.default_rng(8)
    means = rng.standard_normal((3, 10))
    labels = np.array([0, 1, 2] * 7)
    assert lg.nc1(means[labels], labels) == pytest.approx(0.0, abs=1e-20)
    with pytest.raises(ValueError, match="at least 2 classes"):
        lg.nc1(means[labels], np.zeros(21))
    with pytest.raises(ValueError, match="one label per stimulus"):
        lg.nc1(means[labels], labels[:-1])
    with pytest.raises(ValueError, match="class means coincide"):
        lg.nc1(np.tile(rng.standard_normal(10), (6, 1)), [0, 1] * 3)
    # equal class means whose sums round differently: (0.1 + 0.2) + 0.3 != (0.3 + 0.2) + 0.1
    x = np.repeat([[0.0], [0.1], [0.2], [0.3], [0.0], [0.3], [0.2], [0.1]], 10, axis=1)
    assert x[:4].sum(axis=0)[0] != x[4:].sum(axis=0)[0]
    with pytest.raises(ValueError, match="class means coincide"):
        lg.nc1(x, [0] * 4 + [1] * 4)


# ----------------------------------------------------------------------------- table

def test_layer_geometry_table_and_settings():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((120, 20)) + 1.0
    labels = np.arange(120) % 4
    assert [n for n, m in lg.MEASURES.items() if m.needs_labels] == ["nc1"]
    no_labels = lg.layer_geometry(x)
    assert list(no_labels) == [n for n in lg.MEASURES if n != "nc1"]
    everything = lg.layer_geometry(x, labels, k=10, eps=0.0, k_max=15)
    assert list(everything) == list(lg.MEASURES)
    assert everything["mle"] == lg.mle(x, k=10)
    assert everything["effective_rank"] == lg.effective_rank(x, eps=0.0)
    assert everything["alpha_req"] == lg.alpha_req(x, k_max=15)
    assert everything["twonn"] == no_labels["twonn"] == lg.twonn(x)
    assert everything["nc1"] == lg.nc1(x, labels)
    assert lg.layer_geometry(x, measures=["anisotropy"]) == {"anisotropy": lg.anisotropy(x)}
    with pytest.raises(ValueError, match="need labels"):
        lg.layer_geometry(x, measures=["nc1"])
    with pytest.raises(ValueError, match="unknown geometry measure"):
        lg.layer_geometry(x, measures=["cka"])
    with pytest.raises(TypeError, match="unknown setting"):
        lg.layer_geometry(x, n_neighbours=5)
