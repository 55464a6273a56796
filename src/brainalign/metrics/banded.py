"""Banded ridge regression (one scaling per feature space) and variance partitioning.

Banded ridge fits several feature spaces ("bands") at once, each with its own
amount of shrinkage. Following himalaya's ``GroupRidgeCV`` (``groups="input"``,
``solver="random_search"``), the model is ordinary ridge on rescaled features::

    Z = [sqrt(gamma_1) X_1, ..., sqrt(gamma_K) X_K],   b* = argmin ||Z b - y||^2 + alpha ||b||^2

with ``gamma`` a point of the simplex (the relative weight of each band) and
``alpha`` the overall penalty. Equivalently band k is penalised by
``alpha / gamma_k``; himalaya stores ``deltas = log(gamma / alpha)``.

:func:`banded_ridge_cv` searches a given list of gammas and, for each, the alpha
grid, exactly as ``solve_group_ridge_random_search`` does:

- for every gamma, fold-averaged validation negative MSE per (alpha, target)
  (the same K-fold scores as :func:`brainalign.metrics.ridge.ridge_cv`), the best
  alpha per target with the ``1e-10 * log(alpha)`` slope that breaks ties
  towards larger alphas;
- a target moves to a new (gamma, alpha) only when that score beats its current
  best by more than the float epsilon of the dtype, so near-ties keep the
  earlier gamma (put the gamma you prefer first; :func:`simplex_grid` starts
  with the uniform weights, as himalaya does);
- the model is refit on all rows with each target's own gamma and alpha
  (targets grouped by gamma), and the weights are returned for the *unscaled*
  features (the scaled-space weights times ``sqrt(gamma_k)``).

A band with ``gamma_k = 0`` is left out of that fit (its weights are 0). himalaya
itself cannot take such gammas (it divides the features by ``sqrt(gamma_k)``
after each step); everything else is matched number for number in the tests.

:func:`variance_partition` splits held-out R^2 of models fitted on subsets of
the bands into the part each band explains alone and the part they share.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from .backend import as_tensor, resolve_device
from .ridge import _kfold_scores, _loo_scores, _refit

#: tolerance on sum(gamma) == 1
SIMPLEX_TOL = 1e-6


# ---------------------------------------------------------------- gamma grids

def simplex_grid(n_bands: int, n_points: int, *, interior: bool = False) -> np.ndarray:
    """A deterministic grid of band weights on the simplex, (n_gammas, n_bands).

    All points whose coordinates are multiples of ``1 / (n_points - 1)`` and sum
    to 1 (``n_points`` values per band, from 0 to 1; for two bands that is
    ``gamma_1 = linspace(1, 0, n_points)``), in lexicographic order with the
    first band's weight decreasing. The uniform point ``1 / n_bands`` comes first
    (added if it is not on the lattice), like himalaya's ``gammas[0]``; since
    near-ties keep the earlier gamma, it is the default preference.

    ``interior=True`` drops the points where some band has weight 0 (those
    fits ignore that band entirely), e.g. to compare with himalaya, which cannot
    take zero weights.
    """
    if int(n_bands) != n_bands or n_bands < 1:
        raise ValueError(f"n_bands must be a positive integer, got {n_bands!r}")
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2 (values per band, 0 and 1 included), got {n_points!r}")
    n_bands, steps = int(n_bands), int(n_points) - 1
    uniform = np.full(n_bands, 1.0 / n_bands)
    if n_bands == 1:
        return uniform[None]
    points = []
    # compositions of `steps` into n_bands non-negative parts, first part decreasing
    for cuts in itertools.combinations(range(steps + n_bands - 1), n_bands - 1):
        parts = np.diff(np.concatenate([[-1], cuts, [steps + n_bands - 1]])) - 1
        points.append(parts[::-1] / steps)
    grid = np.array(points, dtype=np.float64)
    grid = grid[np.lexsort(grid.T[::-1] * -1)]  # first band's weight decreasing, then the next...
    if interior:
        grid = grid[(grid > 0).all(1)]
    on_lattice = np.isclose(grid, uniform, rtol=0, atol=1e-12).all(1)
    return np.concatenate([uniform[None], grid[~on_lattice]])


# ---------------------------------------------------------------- fitted model

@dataclass
class BandedFit:
    """A fitted banded ridge model.

    - ``coef`` (sum p_k, target): weights on the *unscaled*, concatenated features
      (band k occupies rows ``slices[k]``);
    - ``intercept`` (target,): so that ``predict(xs) = [X_1..X_K] @ coef + intercept``;
    - ``gammas`` (band, target): each target's band weights (a row of the grid);
    - ``alphas`` (target,): each target's overall penalty;
    - ``gamma_index`` (target,): the grid row chosen for each target (-1 if the
      target's scores were never finite; it then keeps the uniform weights,
      alpha 1 and zero weights, as himalaya);
    - ``cv_scores`` (gamma, target): fold-averaged validation negative MSE at the
      best alpha of each gamma (himalaya's ``cv_scores_`` less its 1e-10 log(alpha)
      tie slope);
    - ``x_mean`` (sum p_k,), ``y_mean`` (target,): training means (zeros without intercept).
    """

    coef: torch.Tensor
    intercept: torch.Tensor
    gammas: np.ndarray
    alphas: np.ndarray
    gamma_index: np.ndarray
    cv_scores: np.ndarray
    slices: list[slice]
    x_mean: torch.Tensor
    y_mean: torch.Tensor

    @property
    def deltas(self) -> np.ndarray:
        """himalaya's ``deltas_``: log(gamma / alpha), (band, target); -inf for zero weights."""
        with np.errstate(divide="ignore"):
            return np.log(self.gammas / self.alphas[None, :])

    @property
    def n_bands(self) -> int:
        return len(self.slices)

    def _xs(self, xs) -> list[torch.Tensor]:
        xs = _check_bands(xs, self.coef.dtype, self.coef.device)
        widths = [s.stop - s.start for s in self.slices]
        if [x.shape[1] for x in xs] != widths:
            raise ValueError(f"bands have {[x.shape[1] for x in xs]} features, the model was fitted on {widths}")
        return xs

    def predict(self, xs) -> torch.Tensor:
        """Predictions (n, target) from the list of band features."""
        xs = self._xs(xs)
        out = self.intercept.expand(xs[0].shape[0], -1).clone()
        for x, s in zip(xs, self.slices):
            out += x @ self.coef[s]
        return out

    def predict_bands(self, xs, *, center: bool = True) -> torch.Tensor:
        """Each band's contribution to the prediction, (band, n, target).

        With ``center=True`` (default) band k contributes ``(X_k - mean_k) W_k``,
        its features centred at their training means, so a band's contribution is
        not inflated by the offset of its features, and
        ``predict_bands(xs).sum(0) + y_mean == predict(xs)``. With
        ``center=False`` it is ``X_k W_k`` and the sum plus ``intercept`` gives
        ``predict(xs)``.
        """
        xs = self._xs(xs)
        out = torch.empty((len(xs), xs[0].shape[0], self.coef.shape[1]), dtype=self.coef.dtype,
                          device=self.coef.device)
        for k, (x, s) in enumerate(zip(xs, self.slices)):
            if center:
                x = x - self.x_mean[s]
            out[k] = x @ self.coef[s]
        return out


# ---------------------------------------------------------------- validation

def _check_bands(xs, dtype, device) -> list[torch.Tensor]:
    if isinstance(xs, (np.ndarray, torch.Tensor)) or not isinstance(xs, (list, tuple)):
        raise ValueError("xs must be a list of (n, p_k) feature arrays, one per band")
    if len(xs) == 0:
        raise ValueError("xs must contain at least one band")
    xs = [as_tensor(x, dtype, device) for x in xs]
    for k, x in enumerate(xs):
        if x.ndim != 2:
            raise ValueError(f"band {k} must be a 2-D (n, p_k) array, got shape {tuple(x.shape)}")
        if x.shape[0] != xs[0].shape[0]:
            raise ValueError(f"mismatched row counts between bands: band {k} has {x.shape[0]} rows, "
                             f"band 0 has {xs[0].shape[0]}")
    return xs


def _check_gammas(gammas, n_bands: int) -> np.ndarray:
    g = np.asarray(gammas, dtype=np.float64)
    if g.ndim == 1:
        g = g[None]
    if g.ndim != 2 or g.shape[0] == 0:
        raise ValueError(f"gammas must be a (n_gammas, n_bands) array, got shape {np.shape(gammas)}")
    if g.shape[1] != n_bands:
        raise ValueError(f"gammas has the wrong width: {g.shape[1]} columns for {n_bands} bands "
                         "(one weight per band)")
    if not np.isfinite(g).all() or (g < 0).any():
        raise ValueError("gammas must be finite and non-negative (band weights on the simplex)")
    sums = g.sum(1)
    bad = np.flatnonzero(np.abs(sums - 1) > SIMPLEX_TOL)
    if len(bad):
        raise ValueError(f"gammas rows must sum to 1 (band weights on the simplex); row {bad[0]} sums to "
                         f"{float(sums[bad[0]]):.6g}")
    return g


def _scaled(x: torch.Tensor, slices, gamma: np.ndarray) -> tuple[torch.Tensor, list[int]]:
    """sqrt(gamma_k) X_k for the bands with gamma_k > 0, concatenated, and their indices."""
    used = [k for k in range(len(slices)) if gamma[k] > 0]
    parts = [x[:, slices[k]] * float(np.sqrt(gamma[k])) for k in used]
    return torch.cat(parts, 1), used


# ---------------------------------------------------------------- solver

def banded_ridge_cv(xs, y, alphas, gammas, cv, *, fit_intercept: bool = True, dtype=torch.float32,
                    device="auto", batch: int | None = None) -> BandedFit:
    """Banded ridge: each target's band weights and penalty chosen by cross-validation.

    ``xs``: list of (n, p_k) arrays, one per band; ``y`` (n, target) or (n,);
    ``alphas``: grid of positive penalties; ``gammas`` (n_gammas, n_bands): band
    weights to try, each row on the simplex (see :func:`simplex_grid`); ``cv``: a
    list of (train, validation) index pairs (as himalaya's ``cv``), or ``"loo"``
    for exact leave-one-out scores (as :func:`~brainalign.metrics.ridge.ridge_cv`;
    the first best alpha wins there, as in scikit-learn).

    The selection and the refit are those of himalaya's
    ``GroupRidgeCV(groups="input", solver="random_search",
    solver_params=dict(n_iter=gammas, alphas=alphas), cv=cv)``; see the module
    docstring. Cost: one SVD per fold and gamma, and one per distinct chosen gamma.
    """
    device = resolve_device(device)
    xs = _check_bands(xs, dtype, device)
    y = as_tensor(y, dtype, device)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != xs[0].shape[0]:
        raise ValueError(f"y must be (n, targets) with the bands' {xs[0].shape[0]} rows, got shape {tuple(y.shape)}")
    grid = np.asarray(alphas, dtype=np.float64)
    if grid.ndim == 0:
        grid = grid[None]
    if grid.ndim != 1 or len(grid) == 0 or not np.isfinite(grid).all() or (grid <= 0).any():
        raise ValueError(f"alphas must be a non-empty list of positive numbers, got {alphas!r}")
    g = _check_gammas(gammas, len(xs))
    loo = isinstance(cv, str)
    if loo and cv != "loo":
        raise ValueError(f"cv must be 'loo' or a list of (train, validation) splits, got {cv!r}")
    if not loo:
        cv = [(np.asarray(tr), np.asarray(va)) for tr, va in cv]
        if not cv or any(len(tr) == 0 or len(va) == 0 for tr, va in cv):
            raise ValueError("cv must be a non-empty list of (train, validation) splits, none of them empty")

    widths = np.cumsum([0] + [x.shape[1] for x in xs])
    slices = [slice(int(a), int(b)) for a, b in zip(widths[:-1], widths[1:])]
    x = torch.cat(xs, 1)
    del xs
    n_targets = y.shape[1]
    a = torch.as_tensor(grid, dtype=dtype, device=device)
    tie_break = torch.as_tensor(np.log(grid) * 1e-10, device=device)[:, None]
    eps = torch.finfo(dtype).eps

    current = torch.full((n_targets,), -torch.inf, dtype=dtype, device=device)  # in dtype, as himalaya
    best_index = torch.full((n_targets,), -1, dtype=torch.long, device=device)
    best_alpha = torch.ones(n_targets, dtype=torch.float64, device=device)
    cv_scores = np.empty((len(g), n_targets))
    for i, gamma in enumerate(g):
        z, _ = _scaled(x, slices, gamma)
        if loo:
            scores = _loo_scores(z, y, a, fit_intercept, batch)
            # NaN marks alphas that cannot win (not computed); first maximum, as ridge_cv's LOO
            arg = torch.nan_to_num(scores, nan=-torch.inf).argmax(0)
            chosen = scores.gather(0, arg[None])[0]
            score_i = chosen
        else:
            scores = _kfold_scores(z, y, a, cv, fit_intercept, batch)  # NaN: cannot win (not computed)
            arg = torch.nan_to_num(scores + tie_break, nan=-torch.inf).argmax(0)
            chosen = scores.gather(0, arg[None])[0]
            score_i = chosen + tie_break[arg, 0]           # himalaya compares with the slope included
        cv_scores[i] = chosen.cpu().numpy()
        mask = score_i > current.double() + eps
        current[mask] = score_i[mask].to(dtype)
        best_index[mask] = i
        best_alpha[mask] = torch.as_tensor(grid, device=device)[arg[mask]]

    best_index_np = best_index.cpu().numpy()
    best_alpha_np = best_alpha.cpu().numpy()
    best_gammas = np.full((len(slices), n_targets), 1.0 / len(slices))
    found = best_index_np >= 0
    best_gammas[:, found] = g[best_index_np[found]].T

    # refit on all rows, one SVD per chosen gamma
    if fit_intercept:
        x_mean, y_mean = x.mean(0), y.mean(0)
    else:
        x_mean = torch.zeros(x.shape[1], dtype=dtype, device=device)
        y_mean = torch.zeros(n_targets, dtype=dtype, device=device)
    coef = torch.zeros((x.shape[1], n_targets), dtype=dtype, device=device)
    alpha_t = torch.as_tensor(best_alpha_np, dtype=dtype, device=device)
    for i in np.unique(best_index_np[found]):
        cols = torch.as_tensor(np.flatnonzero(best_index_np == i), device=device)
        z, used = _scaled(x, slices, g[i])
        w, _ = _refit(z, y[:, cols], alpha_t[cols], fit_intercept, batch)
        start = 0
        for k in used:
            width = slices[k].stop - slices[k].start
            coef[slices[k].start:slices[k].stop, cols] = w[start:start + width] * float(np.sqrt(g[i][k]))
            start += width
    intercept = y_mean - x_mean @ coef
    return BandedFit(coef=coef, intercept=intercept, gammas=best_gammas, alphas=best_alpha_np,
                     gamma_index=best_index_np, cv_scores=cv_scores, slices=slices, x_mean=x_mean,
                     y_mean=y_mean)


# ---------------------------------------------------------------- variance partitioning

def _model_key(key) -> frozenset:
    if isinstance(key, (frozenset, set, tuple, list)):
        return frozenset(key)
    return frozenset([key])  # a single band name, e.g. "a"


def variance_partition(r2: dict) -> dict:
    """Split held-out R^2 of nested models into unique and shared parts per target.

    ``r2`` maps a model, given as the set of its bands (a frozenset or tuple of
    band names; a bare name is a one-band model), to the (target,) held-out R^2
    of that model. The bands are all names that occur in the keys. Needed: the
    joint model and, for every band k, the model with all bands but k.

    Returns a dict with

    - ``"unique"``: {band: R2_all - R2_(all without band)}, what only that band explains;
    - ``"shared"``: R2_all - sum of the unique parts, what two or more bands
      explain together. For two bands: unique_a = R2_ab - R2_b, unique_b =
      R2_ab - R2_a, shared = R2_a + R2_b - R2_ab;
    - ``"total"``: R2_all, so ``total == sum(unique) + shared`` exactly;
    - ``"regions"`` (only when every non-empty subset of the bands is given):
      {frozenset S: variance explained by exactly the bands in S}, the full Venn
      decomposition by inclusion-exclusion (Lescroart et al. 2015); the
      singletons are the unique parts and the regions sum to R2_all.

    Caveat: this is set arithmetic on *estimates*. Held-out R^2 of separately
    fitted, regularised models is noisy and biased, so partitions are not
    guaranteed to be non-negative: small negative unique or shared parts (or
    regions) are expected from noise and from the joint model being
    under-regularised relative to the sub-models, and they should be read as
    "about zero", not clipped silently (de Heer et al. 2017, J. Neurosci.;
    Lescroart, Stansbury & Gallant 2015, Front. Comput. Neurosci.). Banded
    ridge for the joint model reduces, but does not remove, this problem.
    """
    if not isinstance(r2, dict) or not r2:
        raise ValueError("r2 must be a non-empty dict {bands of a model: held-out R^2}")
    models: dict[frozenset, np.ndarray] = {}
    for key, value in r2.items():
        k = _model_key(key)
        if not k:
            raise ValueError("empty model key in r2")
        if k in models:
            raise ValueError(f"model {sorted(map(str, k))} is given twice in r2")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().double().numpy()
        models[k] = np.asarray(value, dtype=np.float64)
    shapes = {v.shape for v in models.values()}
    if len(shapes) != 1:
        raise ValueError(f"all R^2 arrays must have the same shape, got {sorted(shapes)}")
    bands = frozenset().union(*models)
    if len(bands) < 2:
        raise ValueError("variance partitioning needs at least two bands")

    def get(subset: frozenset) -> np.ndarray:
        if subset not in models:
            raise ValueError(f"missing R^2 of the model with bands {sorted(map(str, subset))}")
        return models[subset]

    total = get(bands)
    unique = {b: total - get(bands - {b}) for b in sorted(bands, key=str)}
    shared = total - sum(unique.values())
    out = {"unique": unique, "shared": shared, "total": total}

    subsets = [frozenset(c) for r in range(1, len(bands) + 1)
               for c in itertools.combinations(sorted(bands, key=str), r)]
    if all(s in models for s in subsets):
        # f(C) = R2_all - R2_(all without C) is the total of the regions inside C;
        # Moebius inversion: region(S) = sum over non-empty C in S of (-1)^(|S|-|C|) f(C)
        gain = {c: total - (models[bands - c] if bands - c else 0.0) for c in subsets}
        out["regions"] = {s: sum((-1) ** (len(s) - len(c)) * gain[c] for c in subsets if c <= s)
                          for s in subsets}
    return out
