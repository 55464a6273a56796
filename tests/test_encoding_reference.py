"""The encoding stage against its references (himalaya, scikit-learn), its leakage
guarantees, and planted truth swept over SNR."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import RidgeCV as SklearnRidgeCV
from sklearn.model_selection import KFold

from brainalign.jobs import encoding as encoding_job
from brainalign.datasets.simulated import planted_signal
from brainalign.io import read_activations
from brainalign.metrics import encoding, ridge

ALPHAS = np.logspace(-2, 6, 9)


def _data(rng, n, p, v, n_test=40):
    x = rng.standard_normal((n + n_test, p)) * rng.uniform(0.5, 3, p) + rng.standard_normal(p)
    w = rng.standard_normal((p, v)) / np.sqrt(p) * np.logspace(-2, 1, v)  # pure noise .. strong signal
    y = x @ w + rng.standard_normal((n + n_test, v)) + rng.standard_normal(v) * 3
    return x[:n], y[:n], x[n:], y[n:]


@pytest.fixture
def torch_backend():
    from himalaya.backend import get_backend, set_backend

    previous = get_backend()
    set_backend("torch")
    yield
    set_backend(previous)


@pytest.mark.parametrize("n,p", [(150, 40), (60, 200)], ids=["n>p RidgeCV", "n<p KernelRidgeCV"])
def test_ridge_cv_equals_himalaya(n, p, torch_backend):
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV

    rng = np.random.default_rng(10 + n)
    x, y, x_test, y_test = _data(rng, n, p, 60)
    splits = list(KFold(5, shuffle=True, random_state=3).split(x))
    ref = (RidgeCV(alphas=ALPHAS, cv=splits, fit_intercept=True) if n > p else
           KernelRidgeCV(alphas=ALPHAS, kernel="linear", cv=splits, fit_intercept=True))
    ref.fit(torch.as_tensor(x), torch.as_tensor(y))
    ours = ridge.ridge_cv(x, y, ALPHAS, splits, dtype=torch.float64, device="cpu")

    ref_alphas = ref.best_alphas_.numpy()
    np.testing.assert_allclose(np.log(ours.alphas), np.log(ref_alphas), rtol=0, atol=1e-9)
    assert len(np.unique(ours.alphas)) >= 5  # the grid is really exercised
    pred, ref_pred = ours.predict(x_test).numpy(), ref.predict(torch.as_tensor(x_test)).numpy()
    np.testing.assert_allclose(pred, ref_pred, rtol=0, atol=1e-6)
    np.testing.assert_allclose(encoding.pearson_columns(pred, y_test),
                               encoding.pearson_columns(ref_pred, y_test), rtol=0, atol=1e-6)


@pytest.mark.parametrize("n,p", [(150, 40), (60, 200)])
def test_loo_equals_sklearn_alpha_per_target(n, p):
    rng = np.random.default_rng(20 + n)
    x, y, x_test, _ = _data(rng, n, p, 80)
    ref = SklearnRidgeCV(alphas=ALPHAS, alpha_per_target=True, store_cv_results=True).fit(x, y)
    ours = ridge.ridge_cv(x, y, ALPHAS, "loo", dtype=torch.float64, device="cpu")
    np.testing.assert_array_equal(ours.alphas, ref.alpha_)
    assert len(np.unique(ours.alphas)) >= 4
    np.testing.assert_allclose(ours.predict(x_test).numpy(), ref.predict(x_test), rtol=0, atol=1e-6)
    # the factored form (few rows) and the weights (as many rows as features, or coef asked for)
    few, many = x_test[:5], np.tile(x_test, (-(-2 * p // len(x_test)), 1))
    np.testing.assert_allclose(ours.predict(few).numpy(), ref.predict(few), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.predict(many).numpy(), ref.predict(many), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.coef.numpy().T, ref.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.intercept.numpy(), ref.intercept_, rtol=0, atol=1e-9)
    # every LOO score we computed equals scikit-learn's; the alphas we skipped could not have won
    ref_scores = -ref.cv_results_.mean(0).T  # (alpha, target)
    computed = np.isfinite(ours.cv_scores)
    assert computed.sum() < computed.size  # the bounds pruned some alphas
    np.testing.assert_allclose(ours.cv_scores[computed], ref_scores[computed], rtol=1e-9)
    best = ref_scores.max(0)
    assert (ref_scores[~computed] < np.broadcast_to(best, ref_scores.shape)[~computed]).all()


def test_float32_matches_float64_choices():
    rng = np.random.default_rng(30)
    x, y, x_test, _ = _data(rng, 300, 60, 200)
    splits = list(KFold(5, shuffle=True, random_state=0).split(x))
    f64 = ridge.ridge_cv(x, y, ALPHAS, splits, dtype=torch.float64, device="cpu")
    f32 = ridge.ridge_cv(x, y, ALPHAS, splits, dtype=torch.float32, device="cpu")
    assert (f32.alphas == f64.alphas).mean() >= 0.99
    same = f32.alphas == f64.alphas
    np.testing.assert_allclose(f32.predict(x_test).numpy()[:, same], f64.predict(x_test).numpy()[:, same],
                               atol=1e-3 * np.abs(f64.predict(x_test).numpy()).max())


# ---------------------------------------------------------------- leakage

def test_shuffled_brain_data_scores_zero_over_10000_targets():
    """Brain data shuffled across stimuli: nothing to predict; the held-out r must centre on 0."""
    rng = np.random.default_rng(40)
    n, p, v = 200, 60, 10_000
    x = rng.standard_normal((n, p))
    y = x @ (rng.standard_normal((p, v)) / np.sqrt(p)) + rng.standard_normal((n, v))
    shuffled = y[rng.permutation(n)]
    result = encoding.cross_validated_encoding(x, shuffled, ALPHAS, outer_folds=5, inner_folds=5, seed=1,
                                               dtype=torch.float32, device="cpu")
    assert abs(np.median(result.r)) < 0.02
    planted = encoding.cross_validated_encoding(x, y, ALPHAS, outer_folds=5, inner_folds=5, seed=1,
                                                dtype=torch.float32, device="cpu")
    assert np.median(planted.r) > 0.5  # the same pipeline does find signal that is there


class RecordingPreprocessor(encoding.Preprocessor):
    seen: list = []

    def fit(self, x):
        RecordingPreprocessor.seen.append(np.array(x, copy=True))
        return super().fit(x)


@pytest.mark.parametrize("kwargs", [{"outer_folds": 4}, {"groups": np.repeat(np.arange(8), 10), "outer_folds": 8}])
def test_preprocessing_is_fitted_on_training_rows_only(kwargs):
    rng = np.random.default_rng(50)
    x = rng.standard_normal((80, 12)) * 3 + 1
    y = x @ rng.standard_normal((12, 5)) + rng.standard_normal((80, 5))
    RecordingPreprocessor.seen = []
    result = encoding.cross_validated_encoding(
        x, y, ALPHAS, inner_folds=3, seed=0, pca=6, dtype=torch.float64, device="cpu",
        preprocessor_factory=lambda: RecordingPreprocessor(pca=6), **kwargs)
    assert len(RecordingPreprocessor.seen) == len(result.folds)
    for seen, (train, test) in zip(RecordingPreprocessor.seen, result.folds):
        np.testing.assert_array_equal(seen, x[train])  # exactly the training rows...
        assert not set(test) & set(train)              # ...which exclude the held-out ones
    if "groups" in kwargs:  # grouped folds never split a group
        for train, test in result.folds:
            assert not set(kwargs["groups"][train]) & set(kwargs["groups"][test])


def test_test_rows_cannot_influence_the_model():
    """With a fixed split, replacing one test row's features by huge values changes that
    row's prediction only: standardisation, PCA and alphas come from training rows."""
    rng = np.random.default_rng(60)
    x = rng.standard_normal((90, 20))
    y = x @ rng.standard_normal((20, 30)) + rng.standard_normal((90, 30))
    split = np.array(["train"] * 60 + ["test"] * 30)
    kwargs = dict(split=split, inner_folds=4, seed=0, pca=8, dtype=torch.float64, device="cpu")
    base = encoding.cross_validated_encoding(x, y, ALPHAS, **kwargs)
    poisoned = x.copy()
    poisoned[75] = 1e6
    other = encoding.cross_validated_encoding(poisoned, y, ALPHAS, **kwargs)
    np.testing.assert_array_equal(base.alphas, other.alphas)
    keep = np.setdiff1d(np.arange(60, 90), [75])
    np.testing.assert_allclose(other.predictions[keep], base.predictions[keep], rtol=0, atol=1e-10)
    assert np.abs(other.predictions[75] - base.predictions[75]).max() > 1.0


def test_fir_delays_recover_a_lagged_response_and_stay_within_runs():
    rng = np.random.default_rng(70)
    runs = np.repeat(np.arange(6), 100)
    x = rng.standard_normal((600, 8))
    delayed = encoding.delay_features(x, [0, 1, 2, 3], runs)
    # a shift never carries the end of one run into the start of the next
    starts = np.flatnonzero(np.diff(runs)) + 1
    np.testing.assert_array_equal(delayed[starts, 8:16], 0)
    np.testing.assert_array_equal(delayed[starts + 1, 8:16], x[starts])
    # a response lagging the features by 2 samples is found only with delays, leave-one-run-out
    y = encoding.delay_features(x, [2], runs) @ rng.standard_normal((8, 20)) + 0.3 * rng.standard_normal((600, 20))
    kwargs = dict(groups=runs, outer_folds=6, inner_folds=5, seed=0, dtype=torch.float64, device="cpu")
    without = encoding.cross_validated_encoding(x, y, ALPHAS, **kwargs)
    with_fir = encoding.cross_validated_encoding(x, y, ALPHAS, delays=[0, 1, 2, 3], **kwargs)
    assert len(with_fir.folds) == 6  # leave-one-run-out
    assert np.median(without.r) < 0.2
    assert np.median(with_fir.r) > 0.9


# ---------------------------------------------------------------- planted truth

def _brain(signal_by_roi: dict, snr: float, rng, n_rep: int = 2, subjects: int = 1) -> xr.Dataset:
    blocks, subject, roi = [], [], []
    for s in range(subjects):
        for name, signal in signal_by_roi.items():
            noise = rng.standard_normal(signal.shape + (n_rep,)) / np.sqrt(snr)
            blocks.append(signal[..., None] + noise)
            subject += [f"sub-{s + 1}"] * signal.shape[1]
            roi += [name] * signal.shape[1]
    values = np.concatenate(blocks, axis=1)
    n = values.shape[0]
    return xr.Dataset({"responses": (("stimulus", "neuroid", "repetition"), values)},
                      coords={"stimulus_id": ("stimulus", [f"s{i}" for i in range(n)]),
                              "subject": ("neuroid", subject), "roi": ("neuroid", roi)})


SETTINGS = {"alphas": list(np.logspace(-1, 6, 8)), "outer_folds": 5, "inner_folds": 5, "dtype": "float32",
            "device": "cpu"}


def test_planted_layer_recovered_above_an_snr_threshold(minilm_activations):
    """Real MiniLM layers; ROIs planted from layers 1, 3 and 5; SNR swept from 0.01 to 3."""
    layers, _ = read_activations(minilm_activations)
    planted = {"a": 1, "b": 3, "c": 5}
    snrs = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    best, planted_score = {}, {}
    for snr in snrs:
        rng = np.random.default_rng(80)
        signals = {roi: planted_signal(layers[li].values.astype(np.float64), 100, rng)
                   for roi, li in planted.items()}
        result = encoding_job.score_encoding(layers, _brain(signals, snr, rng), SETTINGS, seed=0, confidence=0.95)
        scores = result["score_mean"]
        best[snr] = {roi: int(scores.sel(roi=roi).argmax("layer")) for roi in planted}
        planted_score[snr] = [float(scores.sel(roi=roi).isel(layer=li)) for roi, li in planted.items()]
    right = [all(best[snr][roi] == li for roi, li in planted.items()) for snr in snrs]
    # the threshold: the lowest SNR from which every higher SNR recovers every planted layer
    threshold = next(snr for k, snr in enumerate(snrs) if all(right[k:]))
    print(f"best layers by SNR: {best}; threshold SNR = {threshold}")
    assert threshold <= 1.0  # found 1.0: adjacent MiniLM layers are close (r > 0.9 between their RDMs)
    assert not right[0]  # at SNR 0.01 the data do not identify the layers: the threshold is real
    scores = np.array([planted_score[snr] for snr in snrs])
    assert (np.diff(scores, axis=0) > 0).all()  # each planted ROI's score rises with SNR


def test_ceiled_score_approaches_one_for_the_generating_layer():
    """Many stimuli, few features: the generating layer's ridge fit is near perfect, so its
    held-out r reaches the noise ceiling; other layers stay below it."""
    rng = np.random.default_rng(90)
    n, p = 2000, 16
    h = rng.standard_normal((n, p))
    activations = []
    for k in range(4):  # a small random network: each layer a nonlinear mix of the previous one
        activations.append(xr.DataArray(h, dims=("stimulus", "unit"),
                                        coords={"layer": f"layer{k}", "layer_index": k, "depth": k / 3}))
        h = np.tanh(h @ rng.standard_normal((p, p)) / np.sqrt(p) * 2.5)
    signal = planted_signal(activations[2].values, 50, rng)
    result = encoding_job.score_encoding(activations, _brain({"roi": signal}, 0.5, rng, n_rep=4), SETTINGS,
                                      seed=0, confidence=0.95)
    ceiled = result["target_r_ceiled"].median("neuroid").values
    assert abs(ceiled[2] - 1.0) < 0.05
    assert ceiled[2] == ceiled.max() and np.delete(ceiled, 2).max() < 0.95
    # the ROI summary (median r over median ceiling) agrees
    assert abs(float(result["score_ceiled_mean"].sel(roi="roi").isel(layer=2)) - 1.0) < 0.05


def test_banded_job_partitions_two_planted_bands():
    """The banded-encoding job (as its rule runs it, device 'auto'): an ROI generated from
    band a is explained uniquely by a, one from band b by b."""
    from brainalign.jobs.banded import banded_encoding

    rng = np.random.default_rng(100)
    n = 300
    a, b = rng.standard_normal((n, 10)), rng.standard_normal((n, 10))
    signals = {"from_a": planted_signal(a, 40, rng), "from_b": planted_signal(b, 40, rng)}
    brain = _brain(signals, 1.0, rng, subjects=2)
    settings = {"alphas": list(np.logspace(-1, 5, 7)), "outer_folds": 4, "inner_folds": 4, "device": "auto"}
    out = banded_encoding({"a": a, "b": b}, brain, settings, n_points=5, seed=0)
    unique = out["roi_unique"]
    assert (unique.sel(band="a", roi="from_a") > 0.2).all() and (unique.sel(band="b", roi="from_a") < 0.05).all()
    assert (unique.sel(band="b", roi="from_b") > 0.2).all() and (unique.sel(band="a", roi="from_b") < 0.05).all()
    np.testing.assert_allclose(out["r2_joint"], out["unique"].sum("band") + out["shared"], atol=1e-12)
    gamma_a = out["gamma"].sel(band="a").values
    assert np.median(gamma_a[out["target_roi"].values == "from_a"]) > 0.6


@pytest.mark.parametrize("n,p,intercept,dtype,leverage", [
    (150, 40, True, torch.float64, "even"), (150, 40, False, torch.float64, "outliers"),
    (60, 200, True, torch.float64, "even"), (300, 80, True, torch.float32, "outliers")])
def test_loo_bounds_contain_every_exact_score(n, p, intercept, dtype, leverage):
    """The pruning is exact only if each alpha's exact score lies within its bounds: checked on
    every alpha and target, with rows of even leverage and with a few high-leverage rows."""
    rng = np.random.default_rng(50 + n)
    x = rng.standard_normal((n, p)) / np.sqrt(np.arange(1, p + 1))
    if leverage == "outliers":
        x[:5] *= 8
    tau = 10.0 ** (-rng.uniform(-1.5, 6.5, 300) / 2)
    y = x @ (rng.standard_normal((p, 300)) * tau) + rng.standard_normal((n, 300))
    alphas = torch.as_tensor(ALPHAS, dtype=dtype)
    loo = ridge._LeaveOneOut(torch.as_tensor(x, dtype=dtype), alphas, intercept)
    yt = torch.as_tensor(y, dtype=dtype)
    yc = yt - yt.mean(0) if intercept else yt
    y2 = yc.double() ** 2
    lower, upper = loo.bounds(y2, y2.sum(0), loo.u.T @ yc)
    ref = SklearnRidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=intercept,
                         store_cv_results=True).fit(x, y)
    exact = ref.cv_results_.sum(0).T  # (alpha, target): sums of squared LOO residuals
    tolerance = 1e-4 * exact if dtype == torch.float32 else 1e-9 * exact
    assert (lower.numpy() <= exact + tolerance).all()
    assert (upper.numpy() >= exact - tolerance).all()
    assert (lower.numpy() < upper.numpy()).all()


@pytest.mark.parametrize("n,p,dtype", [(200, 40, torch.float64), (400, 60, torch.float64),
                                       (200, 400, torch.float64), (300, 80, torch.float32),
                                       (150, 40, torch.float64), (60, 200, torch.float64),
                                       (163, 40, torch.float64)],
                         ids=["svd", "gram", "kernel", "float32", "small_folds", "small_folds_kernel",
                              "folds_of_32_and_33"])
def test_kfold_scores_computed_are_exact_and_pruned_alphas_cannot_win(n, p, dtype):
    """K-fold scores against scikit-learn's Ridge fitted on every fold at every alpha: each
    score we compute equals the brute force, and each alpha we skip scores below the best.
    Folds of at most 32 validation rows (``small_folds``) are scored at every alpha."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(60 + n)
    x, y, _, _ = _data(rng, n, p, 120)
    splits = list(KFold(5, shuffle=True, random_state=7).split(x))
    brute = np.zeros((len(ALPHAS), y.shape[1]))
    for train, val in splits:
        for k, alpha in enumerate(ALPHAS):
            pred = Ridge(alpha=alpha).fit(x[train], y[train]).predict(x[val])
            brute[k] -= ((y[val] - pred) ** 2).mean(0) / len(splits)
    scores = ridge._kfold_scores(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype),
                                 torch.as_tensor(ALPHAS, dtype=dtype), splits, True, None).numpy()
    computed = np.isfinite(scores)
    if -(-n // 5) <= ridge.KFOLD_BOUND_RANK:  # every fold small (the largest has ceil(n / 5) rows)
        assert computed.all()
    else:
        assert 0 < computed.sum() < computed.size * 0.6  # most alphas are pruned
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(scores[computed], brute[computed], rtol=rtol)
    best = np.where(computed, scores, -np.inf).max(0)
    assert (brute[~computed] < np.broadcast_to(best, brute.shape)[~computed] + rtol * np.abs(best).max()).all()
    if dtype == torch.float64:
        np.testing.assert_array_equal(np.nanargmax(scores, 0), brute.argmax(0))


@pytest.mark.parametrize("p", [1, 2])
def test_kfold_and_loo_with_one_or_two_features(p):
    """Fewer features than the K-fold bounds' 32 directions (a single baseline predictor, say)."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(70 + p)
    x = rng.standard_normal((50, p))
    y = x @ rng.standard_normal((p, 30)) * np.logspace(-2, 0.5, 30) + rng.standard_normal((50, 30))
    splits = list(KFold(5, shuffle=True, random_state=1).split(x))
    brute = np.zeros((len(ALPHAS), 30))
    for train, val in splits:
        for k, alpha in enumerate(ALPHAS):
            brute[k] -= ((y[val] - Ridge(alpha=alpha).fit(x[train], y[train]).predict(x[val])) ** 2).mean(0)
    brute += np.log(ALPHAS)[:, None] * 1e-10 * len(splits)  # ridge_cv's tie-break: larger alphas
    kfold = ridge.ridge_cv(x, y, ALPHAS, splits, dtype=torch.float64, device="cpu")
    np.testing.assert_array_equal(kfold.alphas, ALPHAS[brute.argmax(0)])
    loo = ridge.ridge_cv(x, y, ALPHAS, "loo", dtype=torch.float64, device="cpu")
    np.testing.assert_array_equal(loo.alphas, SklearnRidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(x, y).alpha_)


@pytest.mark.parametrize("n,p", [(120, 30), (40, 90)], ids=["primal", "dual"])
def test_factored_fit_predicts_few_and_many_rows_and_gives_weights(n, p):
    """A fit is kept as basis x factor: predictions of fewer rows than the basis has go through
    the factor, of more through the weights; both, and the weights, equal scikit-learn's Ridge."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(80 + n)
    x, y, x_test, _ = _data(rng, n, p, 25)
    alphas = 10.0 ** rng.uniform(-1, 3, 25)
    ref = Ridge(alpha=alphas).fit(x, y)
    rows = len(ridge.ridge(x, y, alphas, dtype=torch.float64, device="cpu")._basis)
    few, many = x_test[:3], np.tile(x_test, (-(-2 * rows // len(x_test)), 1))
    for data in (few, many):
        fit = ridge.ridge(x, y, alphas, dtype=torch.float64, device="cpu")
        np.testing.assert_allclose(fit.predict(data).numpy(), ref.predict(data), rtol=0, atol=1e-9)
    np.testing.assert_allclose(fit.coef.numpy().T, ref.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fit.intercept.numpy(), ref.intercept_, rtol=0, atol=1e-9)
