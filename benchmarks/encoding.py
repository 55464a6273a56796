"""Encoding-model speed: brainalign's ``ridge_cv`` vs himalaya and scikit-learn.

The task, at every size: choose each target's ridge penalty from a grid of alphas
by cross-validation on the n training stimuli, refit on all of them, predict held-out
test stimuli, and score each target by its held-out Pearson r. Same data, same
process, one library after the other:

1. K-fold (shuffled ``KFold``, the same splits for both): ``ridge_cv(x, y, alphas,
   cv=splits)`` vs himalaya at its fastest configuration here -- ``himalaya.ridge.RidgeCV``
   when p < n, ``himalaya.kernel_ridge.KernelRidgeCV(kernel="linear")`` when p >= n
   (which himalaya itself recommends there), with intercept, on every backend himalaya
   can load here (numpy, torch; torch_cuda and cupy where there is a GPU) and at each
   ``n_targets_batch`` of ``--himalaya-batches``: all are timed on a slice of the targets,
   and the fastest backend and batch run the full problem. Both in ``--dtype`` (float64
   by default, where equal alphas can be asked for; float32 is faster for both).
2. Efficient leave-one-out: ``ridge_cv(..., cv="loo")`` vs scikit-learn's
   ``RidgeCV(alphas, alpha_per_target=True)`` (it always computes in float64).

No environment variable is set here: brainalign's thread policy (passive OpenMP waiting,
:mod:`brainalign.threads`) is set when brainalign is imported, as in a user's run, and
applies to himalaya's torch backend in this process too.

The FLOP floor of full-grid K-fold: the matrix products of K-fold selection that scores
every alpha, as himalaya does (per fold U'Y and one prediction of the validation rows per
alpha; then U'Y and the weights on all rows), at the machine's measured matrix-product rate
in that dtype. The script prints it and each library's fraction of it. brainalign scores
exactly only the alphas that its bounds cannot rule out (it prints how many per target), so
it can run faster than that floor.

Data: X has a power-law spectrum (feature j has variance 1/j, like network
activations); each target is X w + unit noise with w ~ N(0, tau^2 I) and tau^2 set
so that the Bayes-optimal alpha (1 / tau^2) spreads log-uniformly over the grid,
so the chosen alphas really spread (their histogram is printed).

Reported per size: wall time (fit + predict, best of ``--repeats``), peak memory
(resident set size above the level just before the call, sampled every 20 ms by a
background thread; the inputs already exist), max and median |r_ours - r_ref| over
targets, the fraction of targets given the same alpha, and whether max |dr| <= 1e-4.
Where it is not, the script says how many targets exceed 1e-4, whether they are
the ones whose alpha differs, and how close those alphas' cross-validation scores
are when recomputed in float64 (a relative gap near float32 precision = a tie that
rounding decides).

    python benchmarks/encoding.py                # n=2,000; p 1,024 and 4,096; V 20,000 and 100,000
    python benchmarks/encoding.py --quick        # n=500; p 128 and 512; V 2,000 (about a minute)
    python benchmarks/encoding.py --skip-sklearn-above 20000   # scikit-learn at 100k: minutes, ~10+ GB
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import sys
import threading
import time
import warnings

import brainalign  # noqa: F401  (first: its thread policy is in force for every library here)
import himalaya  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from himalaya.backend import set_backend  # noqa: E402
from himalaya.kernel_ridge import KernelRidgeCV  # noqa: E402
from himalaya.ridge import RidgeCV as HimalayaRidgeCV  # noqa: E402
from sklearn.linear_model import RidgeCV as SkRidgeCV  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from brainalign.metrics.ridge import ridge_cv  # noqa: E402

N_TEST = 500
TOL = 1e-4
MiB = 2**20


# ---------------------------------------------------------------- measurement

try:
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    _LIBC = None


def release_memory():
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise,
    and a later allocation reusing them would not show in the RSS)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


class PeakRSS:
    """Peak resident set size above the level at entry, sampled by a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.process = psutil.Process()

    def __enter__(self):
        release_memory()
        self.baseline = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.above = (self.peak - self.baseline) / MiB


def measure(fn, repeats: int):
    """Best wall time, largest peak RSS increase (MiB) and the last result of ``fn``."""
    best, peak, out = float("inf"), 0.0, None
    for _ in range(repeats):
        out = None
        release_memory()
        with PeakRSS() as mem:
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        peak = max(peak, mem.above)
    return best, peak, out


def measure_alternating(fn_a, fn_b, repeats: int):
    """:func:`measure` of two functions, run in turn (a, b, a, b, ...) so that a change of load
    on the machine falls on both; returns ((time, peak, result) of a, the same of b)."""
    best, peak, out = [float("inf")] * 2, [0.0] * 2, [None, None]
    for _ in range(repeats):
        for i, fn in enumerate((fn_a, fn_b)):
            out[i] = None
            release_memory()
            with PeakRSS() as mem:
                t = time.perf_counter()
                out[i] = fn()
                best[i] = min(best[i], time.perf_counter() - t)
            peak[i] = max(peak[i], mem.above)
    return (best[0], peak[0], out[0]), (best[1], peak[1], out[1])


def pearson(pred: np.ndarray, y: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """Pearson r per column, in float64, a chunk of columns at a time."""
    out = np.empty(y.shape[1])
    for s in range(0, y.shape[1], chunk):
        a = pred[:, s:s + chunk].astype(np.float64)
        b = y[:, s:s + chunk].astype(np.float64)
        a -= a.mean(0)
        b -= b.mean(0)
        denom = np.sqrt((a * a).sum(0) * (b * b).sum(0))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + chunk] = (a * b).sum(0) / denom
    return out


# ---------------------------------------------------------------- data

def simulate(n_train: int, p: int, v: int, alphas: np.ndarray, seed: int, chunk: int = 10_000):
    """X (n_train + N_TEST, p) and Y (n_train + N_TEST, v), float32, as described above."""
    rng = np.random.default_rng(seed)
    n = n_train + N_TEST
    scale = (1.0 / np.sqrt(np.arange(1, p + 1))).astype(np.float32)
    x = rng.standard_normal((n, p), dtype=np.float32) * scale
    lo, hi = np.log10(alphas[0]) - 0.5, np.log10(alphas[-1]) + 0.5
    tau = (10.0 ** (-rng.uniform(lo, hi, v) / 2)).astype(np.float32)   # tau^2 = 1 / optimal alpha
    y = np.empty((n, v), dtype=np.float32)
    for s in range(0, v, chunk):
        e = min(s + chunk, v)
        w = rng.standard_normal((p, e - s), dtype=np.float32) * tau[s:e]
        y[:, s:e] = x @ w + rng.standard_normal((n, e - s), dtype=np.float32)
    return x, y


# ---------------------------------------------------------------- the libraries

def run_ours(x_tr, y_tr, x_te, alphas, cv):
    fit = ridge_cv(x_tr, y_tr, alphas, cv=cv, dtype=torch.from_numpy(x_tr[:1]).dtype, device="cpu")
    pred = fit.predict(x_te).numpy()
    return pred, fit.alphas, fit.cv_scores


def himalaya_model(p, n_train, alphas, splits, batch):
    params = dict(n_targets_batch=batch, n_targets_batch_refit=batch)
    if p < n_train:
        return HimalayaRidgeCV(alphas=alphas, cv=splits, fit_intercept=True, solver_params=params)
    return KernelRidgeCV(alphas=alphas, kernel="linear", cv=splits, fit_intercept=True, solver_params=params)


def run_himalaya(backend, x_tr, y_tr, x_te, alphas, splits, batch):
    model = himalaya_model(x_tr.shape[1], x_tr.shape[0], alphas, splits, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x_tr, y_tr)
        pred = backend.to_numpy(model.predict(x_te))
    return pred, backend.to_numpy(model.best_alphas_), None


def run_sklearn(x_tr, y_tr, x_te, alphas, chunks: int = 1):
    """RidgeCV(alpha_per_target=True); with ``chunks`` > 1, one fit per slice of the targets
    (the result is the same: every target's alpha and weights are its own)."""
    preds, chosen, best = [], [], []
    for cols in np.array_split(np.arange(y_tr.shape[1]), chunks):
        y = y_tr if chunks == 1 else y_tr[:, cols]
        model = SkRidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=True).fit(x_tr, y)
        preds.append(model.predict(x_te))
        chosen.append(np.asarray(model.alpha_))
        best.append(np.asarray(model.best_score_))
        del model, y
    if chunks == 1:
        return preds[0], chosen[0], best[0]
    return np.concatenate(preds, 1), np.concatenate(chosen), np.concatenate(best)


def alpha_index(chosen, grid):
    """Index in the grid of each chosen alpha (robust to float32 rounding)."""
    return np.abs(np.log(np.asarray(chosen, dtype=np.float64))[:, None] - np.log(grid)[None]).argmin(1)


# ---------------------------------------------------------------- float64 arbiter

def _gram_eig(x_fit):
    """Centre X, then eigendecompose its n x n Gram in float64: (mean, centred X, eigenvalues, vectors)."""
    x_fit = x_fit.astype(np.float64)
    mean = x_fit.mean(0)
    xc = x_fit - mean
    lam, u = np.linalg.eigh(xc @ xc.T)
    return mean, xc, np.clip(lam, 0, None), u


def ridge64_predict(x_fit, y_fit, x_eval, alpha_per_col):
    """Ridge with intercept and one alpha per column, in float64 (dual form, exact for any p)."""
    mean, xc, lam, u = _gram_eig(x_fit)
    y_fit = y_fit.astype(np.float64)
    y_mean = y_fit.mean(0)
    uty = u.T @ (y_fit - y_mean)
    k_eval = (x_eval.astype(np.float64) - mean) @ xc.T
    out = np.empty((x_eval.shape[0], y_fit.shape[1]))
    for alpha in np.unique(alpha_per_col):
        cols = np.flatnonzero(alpha_per_col == alpha)
        out[:, cols] = k_eval @ (u @ (uty[:, cols] / (lam + alpha)[:, None])) + y_mean[cols]
    return out


def kfold_mse64(x, y, alpha_per_col, splits):
    """Fold-averaged validation MSE in float64 (himalaya's and ours' K-fold criterion)."""
    total = np.zeros(y.shape[1])
    for train, val in splits:
        pred = ridge64_predict(x[train], y[train], x[val], alpha_per_col)
        total += ((y[val].astype(np.float64) - pred) ** 2).mean(0)
    return total / len(splits)


def loo_mse64(x, y, alpha_per_col):
    """Exact leave-one-out MSE in float64 through the hat matrix (unpenalised intercept)."""
    _, _, lam, u = _gram_eig(x)
    n = x.shape[0]
    y = y.astype(np.float64)
    y = y - y.mean(0)
    uty = u.T @ y
    out = np.empty(y.shape[1])
    for alpha in np.unique(alpha_per_col):
        cols = np.flatnonzero(alpha_per_col == alpha)
        f = lam / (lam + alpha)
        h = (u**2) @ f + 1.0 / n
        resid = y[:, cols] - u @ (f[:, None] * uty[:, cols])
        out[cols] = ((resid / (1 - h)[:, None]) ** 2).mean(0)
    return out


def flip_gaps(kind, x_tr, y_tr, grid, i_ours, i_ref, splits, flips):
    """For targets whose chosen alpha differs: float64 CV MSE at both alphas.

    Returns the relative gap |mse_a - mse_b| / min and whether ours' alpha is the better one."""
    y = y_tr[:, flips]
    if kind == "kfold":
        mse_ours = kfold_mse64(x_tr, y, grid[i_ours[flips]], splits)
        mse_ref = kfold_mse64(x_tr, y, grid[i_ref[flips]], splits)
    else:
        mse_ours = loo_mse64(x_tr, y, grid[i_ours[flips]])
        mse_ref = loo_mse64(x_tr, y, grid[i_ref[flips]])
    gap = np.abs(mse_ours - mse_ref) / np.minimum(mse_ours, mse_ref)
    return gap, mse_ours <= mse_ref


def subsample(idx, limit, rng):
    return np.sort(rng.choice(idx, limit, replace=False)) if len(idx) > limit else idx


# ---------------------------------------------------------------- one comparison

def compare(label, kind, ours, ref, x, y, n_train, grid, splits, check_limit, seed):
    """Agreement of held-out r and of chosen alphas; returns a dict and prints details."""
    x_tr, x_te, y_tr, y_te = x[:n_train], x[n_train:], y[:n_train], y[n_train:]
    pred_o, alphas_o, _ = ours
    pred_r, alphas_r, _ = ref
    r_o, r_r = pearson(pred_o, y_te), pearson(pred_r, y_te)
    diff = np.abs(r_o - r_r)
    diff = np.where(np.isnan(diff), np.where(np.isnan(r_o) & np.isnan(r_r), 0.0, np.inf), diff)
    i_o, i_r = alpha_index(alphas_o, grid), alpha_index(alphas_r, grid)
    same = i_o == i_r
    over = diff > TOL
    res = dict(max=float(diff.max()), median=float(np.median(diff)), p999=float(np.quantile(diff, 0.999)),
               same=float(same.mean()), n_over=int(over.sum()), n_flip=int((~same).sum()),
               over_flips=int((over & ~same).sum()), max_same=float(diff[same].max()) if same.any() else 0.0,
               max_flip=float(diff[~same].max()) if (~same).any() else 0.0, ok=bool(diff.max() <= TOL))
    print(f"  {label}: max |dr| {res['max']:.1e}, median {res['median']:.1e}, 99.9th pct {res['p999']:.1e}; "
          f"same alpha {100 * res['same']:.2f}% ({res['n_flip']} targets differ)")
    print(f"    max |dr| over same-alpha targets {res['max_same']:.1e}; over alpha-flip targets {res['max_flip']:.1e}")
    if not res["ok"]:
        print(f"    {res['n_over']} targets have |dr| > {TOL:g}; {res['over_flips']} of them are alpha-flip targets")
    rng = np.random.default_rng(seed)
    if res["n_flip"]:
        flips = subsample(np.flatnonzero(~same), check_limit, rng)
        gap, ours_better = flip_gaps(kind, x_tr, y_tr, grid, i_o, i_r, splits, flips)
        note = f" (a random {len(flips)} of them)" if len(flips) < res["n_flip"] else ""
        print(f"    alpha flips{note}: CV MSE recomputed in float64 at the two alphas differs by "
              f"{np.median(gap):.1e} (median), {gap.max():.1e} (max) relative; ours' alpha is the better "
              f"one in float64 for {ours_better.mean() * 100:.0f}% of them")
        res["gap_max"] = float(gap.max())
    # float32 error of each library: r of a float64 refit at the alpha each one chose, on the targets
    # beyond the tolerance plus a random sample of all targets
    beyond = subsample(np.flatnonzero(over), check_limit, rng)
    cols = np.union1d(beyond, subsample(np.arange(len(diff)), min(1000, check_limit), rng))
    r64_o = pearson(ridge64_predict(x_tr, y_tr[:, cols], x_te, grid[i_o[cols]]), y_te[:, cols])
    r64_r = pearson(ridge64_predict(x_tr, y_tr[:, cols], x_te, grid[i_r[cols]]), y_te[:, cols])
    err_o, err_r = np.abs(r_o[cols] - r64_o), np.abs(r_r[cols] - r64_r)
    in_beyond = np.isin(cols, beyond)
    line = (f"    float64 refit at each one's own alphas, {len(cols)} targets: max |r - r_float64| "
            f"ours {np.nanmax(err_o):.1e}, reference {np.nanmax(err_r):.1e}")
    if in_beyond.any():
        line += (f"; on the {in_beyond.sum()} targets with |dr| > {TOL:g}: ours {np.nanmax(err_o[in_beyond]):.1e}, "
                 f"reference {np.nanmax(err_r[in_beyond]):.1e}")
    print(line)
    res["err64"] = (float(np.nanmax(err_o)), float(np.nanmax(err_r)))
    return res


# ---------------------------------------------------------------- main

def table_row(n, p, v, what, t_o, t_r, m_o, m_r, res) -> str:
    """One Markdown row of the final table."""
    if res is None:
        if t_r is None:
            return f"| {p} | {v} | {what} | {t_o:.1f} | not run | | {m_o:.0f} | | | | | | |"
        return (f"| {p} | {v} | {what} | {t_o:.1f} | ≈{t_r:.0f} (extrapolated, not run) | "
                f"≈{t_r / t_o:.1f}x | {m_o:.0f} | | | | | | |")
    if res["ok"]:
        verdict = "yes"
    else:
        verdict = (f"no: {res['n_over']} targets > 1e-4, {res['over_flips']} of them alpha flips; "
                   f"99.9th pct {res['p999']:.0e}")
    err_o, err_r = res["err64"]
    return (f"| {p} | {v} | {what} | {t_o:.1f} | {t_r:.1f} | {t_r / t_o:.1f}x | {m_o:.0f} | {m_r:.0f} | "
            f"{res['max']:.0e} | {res['median']:.0e} | {verdict} | {100 * res['same']:.2f}% | "
            f"{err_o:.0e} / {err_r:.0e} |")


def himalaya_backends() -> dict:
    """Every himalaya backend that loads here (GPU ones only with a GPU)."""
    from himalaya.backend import ALL_BACKENDS

    out = {}
    for name in ALL_BACKENDS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = set_backend(name, on_error="raise")
        except Exception:  # noqa: BLE001 -- not installed, or no device for it
            continue
    return out


def tune_himalaya(backends, x, y, n_train, alphas, splits, batches, tune_v, repeats):
    """Time himalaya on every backend at each target batch size on the first ``tune_v``
    targets; return the fastest (backend name, batch) and all times."""
    y_tune = np.ascontiguousarray(y[:n_train, :tune_v])
    times = {}
    for name in backends:
        backend = set_backend(name)
        for b in batches:
            t, peak, _ = measure(lambda: run_himalaya(backend, x[:n_train], y_tune, x[n_train:], alphas, splits, b),
                                 repeats)
            times[name, b] = t
            print(f"  himalaya {name} batch {b}: {t:.2f} s, peak +{peak:.0f} MiB on {tune_v} targets", flush=True)
    best = min(times, key=times.get)
    return best, times


def matmul_rate(dtype, n: int = 2048) -> float:
    """FLOP/s of torch's matrix product (n x n by n x n) in ``dtype`` on this machine, best of 3."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(3))
    return 2 * n ** 3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def kfold_flops(n_train: int, n_test: int, p: int, v: int, folds: int, n_alphas: int) -> float:
    """Matrix-product FLOPs K-fold selection with a refit cannot avoid: per fold U'Y
    (rank x n_fit x V) and a prediction of the validation rows per alpha (alphas x n_val x
    rank x V); then U'Y on all rows, the weights (p x rank x V) and the test predictions."""
    total = 0.0
    for k in range(folds):
        n_val = n_train // folds + (1 if k < n_train % folds else 0)
        n_fit = n_train - n_val
        rank = min(n_fit, p)
        total += rank * n_fit * v + n_alphas * n_val * rank * v
    rank = min(n_train, p)
    total += rank * n_train * v + p * rank * v + n_test * p * v
    return 2 * total


def warm_up(backend):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 10), dtype=np.float32), rng.standard_normal((60, 20), dtype=np.float32)
    splits = list(KFold(3).split(x[:50]))
    run_ours(x[:50], y[:50], x[50:], [1.0, 10.0], splits)
    run_ours(x[:50], y[:50], x[50:], [1.0, 10.0], "loo")
    run_himalaya(backend, x[:50], y[:50], x[50:], np.array([1.0, 10.0]), splits, None)
    run_himalaya(backend, x[:8], y[:8], x[50:], np.array([1.0, 10.0]), list(KFold(2).split(x[:8])), None)
    run_sklearn(x[:50], y[:50], x[50:], [1.0, 10.0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="training stimuli (default 2000; --quick: 500); "
                        f"{N_TEST} more are held out for testing")
    parser.add_argument("--p", type=int, nargs="+", default=None, help="features (default 1024 4096; --quick: 128 512)")
    parser.add_argument("--v", type=int, nargs="+", default=None,
                        help="targets (default 20000 100000; --quick: 2000)")
    parser.add_argument("--alphas", type=int, default=10, help="size of the grid np.logspace(-1, 6, ALPHAS)")
    parser.add_argument("--folds", type=int, default=5, help="K of the K-fold comparison (himalaya)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=None,
                        help="best of this many runs of each library (default 1; --quick: 3)")
    parser.add_argument("--himalaya-batches", type=int, nargs="+", default=None,
                        help="himalaya n_targets_batch (= n_targets_batch_refit) candidates, timed on "
                             "--himalaya-tune-v targets per p; the fastest is used (default 1000 5000; "
                             "--quick: 500 2000)")
    parser.add_argument("--himalaya-tune-v", type=int, default=None,
                        help="targets used to choose the himalaya batch (default: the largest candidate, "
                             "at most the smallest --v)")
    parser.add_argument("--skip-sklearn-above", type=int, default=None,
                        help="do not run scikit-learn for V above this (it is float64: minutes and many GB at 100k)")
    parser.add_argument("--sklearn-max-seconds", type=float, default=900,
                        help="skip scikit-learn when its time, extrapolated linearly in V from the previous size "
                             "at the same p, exceeds this (its extrapolated time is then reported, marked)")
    parser.add_argument("--memory-reserve", type=float, default=4,
                        help="GiB of available memory to leave free: scikit-learn, whose memory is extrapolated "
                             "from the previous size, runs on slices of the targets when it would not fit")
    parser.add_argument("--sklearn-slice-gib", type=float, default=6,
                        help="and on slices needing at most this many GiB each (the machine is shared)")
    parser.add_argument("--skip-himalaya", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and the BLAS of numpy/scikit-learn (default: their defaults)")
    parser.add_argument("--check-limit", type=int, default=2000,
                        help="at most this many targets (a random subset) are re-scored in float64 when "
                             "explaining alpha flips and |dr| > 1e-4")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="precision of both libraries' inputs and computation (default float64)")
    parser.add_argument("--quick", action="store_true", help="small sizes: n=500, p 128 512, V 2000")
    args = parser.parse_args()

    n_train = args.n or (500 if args.quick else 2000)
    ps = args.p or ([128, 512] if args.quick else [1024, 4096])
    vs = sorted(args.v or ([2000] if args.quick else [20_000, 100_000]))
    batches = args.himalaya_batches or ([500, 2000] if args.quick else [1000, 5000])
    args.repeats = args.repeats or (3 if args.quick else 1)
    tune_v = min(args.himalaya_tune_v or max(batches), min(vs))
    grid = np.logspace(-1, 6, args.alphas)
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)

    print("command: python " + " ".join(sys.argv))
    print(f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"himalaya {himalaya.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
          f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"n_train {n_train}, n_test {N_TEST}, alphas np.logspace(-1, 6, {args.alphas}), {args.folds} folds, "
          f"seed {args.seed}, best of {args.repeats}; {load()} at start\n", flush=True)

    np_dtype = np.dtype(args.dtype)
    torch_dtype = getattr(torch, args.dtype)
    rate = matmul_rate(torch_dtype)
    print(f"matrix product rate here ({args.dtype}, torch, 2048^3): {rate / 1e9:.0f} GFLOP/s", flush=True)
    backends = {} if args.skip_himalaya else himalaya_backends()
    print(f"himalaya backends that load here: {', '.join(backends) or 'none'}", flush=True)
    for backend in backends.values():
        set_backend(backend)
        warm_up(backend)

    rows, notes = [], []
    for p in ps:
        chosen_batch, sklearn_last = None, None   # sklearn_last: (V, seconds, peak MiB) at the previous V
        for v in vs:
            print(f"## n={n_train}, p={p}, V={v}", flush=True)
            t = time.perf_counter()
            x, y = simulate(n_train, p, v, grid, args.seed)
            x, y = x.astype(np_dtype, copy=False), y.astype(np_dtype, copy=False)
            x_tr, x_te = x[:n_train], x[n_train:]
            y_tr, y_te = y[:n_train], y[n_train:]
            splits = list(KFold(args.folds, shuffle=True, random_state=args.seed).split(x_tr))
            print(f"  data simulated in {time.perf_counter() - t:.1f} s "
                  f"(Y {y.nbytes / 2**30:.2f} GiB {args.dtype})", flush=True)

            # ---- 1. K-fold: ours vs himalaya (its fastest backend and batch, chosen first), in turn
            floor = kfold_flops(n_train, N_TEST, p, v, args.folds, len(grid)) / rate
            solver = "RidgeCV" if p < n_train else "KernelRidgeCV(linear)"
            if not args.skip_himalaya and chosen_batch is None:
                candidates = [b for b in batches if b <= tune_v] or [min(batches)]
                print(f"  himalaya {solver}: choosing the backend among {list(backends)} and n_targets_batch "
                      f"among {candidates} on {tune_v} targets", flush=True)
                chosen_batch, times = tune_himalaya(backends, x, y, n_train, grid, splits, candidates, tune_v,
                                                    args.repeats)
                notes.append(f"p={p}: himalaya {solver}, fastest here: backend {chosen_batch[0]}, "
                             f"n_targets_batch = n_targets_batch_refit = {chosen_batch[1]} (timed on {tune_v} "
                             "targets: " + ", ".join(f"{k} {b}: {s:.2f} s" for (k, b), s in times.items()) + ")")

            def ours_kfold():
                return run_ours(x_tr, y_tr, x_te, grid, splits)

            if args.skip_himalaya:
                t_o, m_o, ours = measure(ours_kfold, args.repeats)
            else:
                backend = set_backend(chosen_batch[0])
                (t_o, m_o, ours), (t_h, m_h, ref) = measure_alternating(
                    ours_kfold, lambda: run_himalaya(backend, x_tr, y_tr, x_te, grid, splits, chosen_batch[1]),
                    args.repeats)
            print(f"  FLOP floor of full-grid K-fold with refit: {floor:.2f} s at {rate / 1e9:.0f} GFLOP/s",
                  flush=True)
            counts = np.bincount(alpha_index(ours[1], grid), minlength=len(grid))
            print(f"  ours K-fold: {t_o:.2f} s = {floor / t_o:.0%} of the floor's rate, peak +{m_o:.0f} MiB "
                  f"({load()}); alphas scored exactly per target {np.isfinite(ours[2]).sum(0).mean():.2f} of "
                  f"{len(grid)}; {np.count_nonzero(counts)} distinct alphas chosen, targets per alpha "
                  f"{counts.tolist()}", flush=True)
            if not args.skip_himalaya:
                print(f"  himalaya {solver} ({chosen_batch[0]}, batch {chosen_batch[1]}): {t_h:.2f} s = "
                      f"{floor / t_h:.0%} of the floor's rate, peak +{m_h:.0f} MiB ({load()})", flush=True)
                res = compare("ours vs himalaya", "kfold", ours, ref, x, y, n_train, grid, splits,
                              args.check_limit, args.seed)
                rows.append((n_train, p, v, f"{args.folds}-fold, vs himalaya {solver}, {chosen_batch[0]} backend",
                             t_o, t_h, m_o, m_h, res))
                print("  row: " + table_row(*rows[-1]), flush=True)
                del ref
            del ours
            gc.collect()

            # ---- 2. LOO: ours vs scikit-learn
            def ours_loo():
                return run_ours(x_tr, y_tr, x_te, grid, "loo")

            skip, estimate = None, None
            if sklearn_last is not None:
                # time and memory grow linearly in V: extrapolate from the previous size
                last_v, last_t, last_m = sklearn_last
                estimate, need = last_t * v / last_v, last_m * v / last_v
                source = f"extrapolated from V={last_v}: about {estimate:.0f} s and"
            else:
                # a priori: about 6 n + 5 p float64 per target (measured at n=2000, p=1024 and 4096)
                need = 8 * v * (6 * n_train + 5 * p) / MiB
                source = "estimated memory"
            room = psutil.virtual_memory().available / MiB - 1024 * args.memory_reserve
            chunks = max(1, int(np.ceil(need / max(room, 1.0))), int(np.ceil(need / (1024 * args.sklearn_slice_gib))))
            print(f"  scikit-learn {source} {need / 1024:.1f} GiB; {room / 1024:.1f} GiB to use "
                  f"-> {chunks} target slice(s)", flush=True)
            if args.skip_sklearn_above is not None and v > args.skip_sklearn_above:
                skip = f"V={v} > --skip-sklearn-above {args.skip_sklearn_above}"
            elif estimate is not None and estimate > args.sklearn_max_seconds:
                skip = f"extrapolated {estimate:.0f} s > --sklearn-max-seconds {args.sklearn_max_seconds:g}"
            elif chunks > 16:
                skip = f"not enough free memory (it would need about {need / 1024:.1f} GiB)"
            if skip:
                print(f"  scikit-learn skipped ({skip})", flush=True)
                notes.append(f"p={p}, V={v}: scikit-learn not run ({skip})")
                t_o, m_o, ours = measure(ours_loo, args.repeats)
                print(f"  ours LOO: {t_o:.2f} s, peak +{m_o:.0f} MiB ({load()}); alphas scored exactly per "
                      f"target {np.isfinite(ours[2]).sum(0).mean():.2f} of {len(grid)}", flush=True)
                rows.append((n_train, p, v, "LOO, vs scikit-learn RidgeCV", t_o, estimate, m_o, None, None))
                print("  row: " + table_row(*rows[-1]), flush=True)
            else:
                (t_o, m_o, ours), (t_s, m_s, ref) = measure_alternating(
                    ours_loo, lambda: run_sklearn(x_tr, y_tr, x_te, grid, chunks), args.repeats)
                print(f"  ours LOO: {t_o:.2f} s, peak +{m_o:.0f} MiB ({load()}); alphas scored exactly per "
                      f"target {np.isfinite(ours[2]).sum(0).mean():.2f} of {len(grid)}", flush=True)
                sklearn_last = (v, t_s, m_s * chunks)
                sliced = f" in {chunks} target slices" if chunks > 1 else ""
                print(f"  scikit-learn RidgeCV(alpha_per_target=True){sliced}: {t_s:.2f} s, peak +{m_s:.0f} MiB "
                      f"({load()})", flush=True)
                if chunks > 1:
                    notes.append(f"p={p}, V={v}: scikit-learn ran on {chunks} slices of the targets, one after "
                                 "the other, to fit in memory (same result; its peak is that of one slice)")
                res = compare("ours vs scikit-learn", "loo", ours, ref, x, y, n_train, grid, splits,
                              args.check_limit, args.seed)
                what = "LOO, vs scikit-learn RidgeCV" + (f" ({chunks} target slices)" if chunks > 1 else "")
                rows.append((n_train, p, v, what, t_o, t_s, m_o, m_s, res))
                print("  row: " + table_row(*rows[-1]), flush=True)
                del ref
            del ours, x, y, x_tr, y_tr, x_te, y_te
            gc.collect()
            print(flush=True)

    print(f"## Encoding models: ridge with a per-target alpha ({args.alphas} alphas), n={n_train} training "
          f"stimuli, Pearson r on {N_TEST} held-out stimuli\n")
    print("| p | V | CV, reference | brainalign s | reference s | speed-up | brainalign peak MiB | "
          "reference peak MiB | max \\|Δr\\| | median \\|Δr\\| | max \\|Δr\\| ≤ 1e-4 | same alpha | "
          "max \\|r − r_f64\\| brainalign / reference |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for row in rows:
        print(table_row(*row))
    print()
    print("Times: fit (alpha selection + refit) plus prediction of the held-out rows, wall clock, best of "
          f"{args.repeats}, brainalign and the reference run in turn. Peak MiB: resident memory above the level before the call (inputs excluded), "
          f"sampled every 20 ms. brainalign and himalaya {args.dtype} (himalaya's backend: the fastest here); "
          "scikit-learn float64 (it upcasts). Δr: held-out Pearson r of brainalign minus the reference's, "
          "per target; 'alpha flips' are targets whose chosen alpha differs. r_f64: the held-out r of a "
          "float64 refit at the alphas that library chose (on the targets beyond 1e-4 and a random 1,000), "
          "i.e. each library's own rounding error.")
    print(f"\n{load()} at the end (2 cores; other work on the machine inflates and scatters the times).")
    for note in notes:
        print(f"\nNote: {note}.")
    print("\ncommand: python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
