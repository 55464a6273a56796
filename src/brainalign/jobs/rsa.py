"""The RSA job: every layer RDM of one model against every brain RDM of one dataset.

Brain RDMs come from responses (per subject x ROI, and per time point for
MEG/EEG) or are given precomputed. The job returns the scores contract with
RSA's inference beside the scores: a permutation p value per layer and ROI,
its FDR correction, bootstrap CIs (stimuli, subjects or both), a paired test of
the best layer against each other layer, the noise ceiling, and the RDMs that
the figures draw (brain next to best layer, and an MDS of all RDMs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import xarray as xr
from scipy.spatial.distance import squareform
from tqdm.auto import tqdm

from ..metrics import rsa, stats
from ..metrics.rdm_transforms import RDMTransform
from ..datasets.contract import subject_roi_cells
from .common import across_subject_ci, add_null, layer_coords, set_ceiling_interval

BOOTSTRAP_MODES = ("stimuli", "subjects", "both")


@dataclass
class BrainRDMs:
    """Brain RDM vectors (rows, P) on a (subject, roi, time) grid; absent cells have no row."""

    vectors: np.ndarray
    cells: np.ndarray  # (rows, 3) grid positions (subject, roi, time)
    subjects: np.ndarray
    rois: np.ndarray
    times: np.ndarray | None  # seconds, or None without a time dim
    measure: str

    @property
    def shape(self):
        return len(self.subjects), len(self.rois), 1 if self.times is None else len(self.times)

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """(..., rows) -> (..., subject, roi, time) with NaN in absent cells."""
        out = np.full(values.shape[:-1] + self.shape, np.nan)
        out[..., self.cells[:, 0], self.cells[:, 1], self.cells[:, 2]] = values
        return out

    def subject_mean(self, values: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """Mean over subjects: (..., rows) -> (..., roi, time).

        ``counts`` (B, subject) weights subjects by how often a bootstrap resample
        drew them; ``values`` is then (B, ..., rows). Absent cells are skipped.
        """
        grid = self.scatter(values)
        present = np.isfinite(grid)
        if counts is None:
            with np.errstate(invalid="ignore"):
                return np.nanmean(grid, axis=-3)
        w = counts.reshape(counts.shape[:1] + (1,) * (grid.ndim - 4) + counts.shape[1:] + (1, 1)) * present
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.where(present, grid, 0.0) * w).sum(-3) / w.sum(-3)


def _rdm_of_block(x: np.ndarray, method: str) -> np.ndarray:
    """RDM vectors of one subject x ROI block (stimulus, unit, repetition[, time]) -> (time, P)."""
    if x.ndim == 3:
        x = x[..., None]
    if method in rsa.CV_RDM_METHODS:
        return np.stack([rsa.cv_rdm(x[..., t], method) for t in range(x.shape[-1])])
    mean = x.mean(2)  # repetitions averaged: (stimulus, unit, time)
    return rsa.rdm(np.moveaxis(mean, -1, 0), method)


def brain_rdms(brain: xr.Dataset, method: str = "correlation") -> BrainRDMs:
    """Brain RDMs from a brain-responses or brain-RDMs Dataset."""
    if "rdms" in brain:
        rd = brain["rdms"].transpose("subject", "roi", "stimulus", "stimulus_")
        subjects, rois = rd["subject"].values.astype(str), rd["roi"].values.astype(str)
        vectors, cells = [], []
        for i in range(len(subjects)):
            for j in range(len(rois)):
                m = rd.values[i, j]
                if np.isfinite(m).all():
                    vectors.append(squareform(m, checks=False))
                    cells.append((i, j, 0))
        return BrainRDMs(np.asarray(vectors, dtype=np.float64), np.asarray(cells), subjects, rois, None,
                         str(brain.attrs.get("distance_measure", rd.attrs.get("distance_measure", "given"))))
    resp = brain["responses"]
    if "repetition" not in resp.dims:
        resp = resp.expand_dims(repetition=1)
    has_time = "time" in resp.dims
    order = ("stimulus", "neuroid", "repetition") + (("time",) if has_time else ())
    values = resp.transpose(*order).values
    subjects, rois, blocks = subject_roi_cells(brain["subject"].values, brain["roi"].values)
    vectors, cells = [], []
    for i, j, idx in tqdm(blocks, desc="brain RDMs", unit="block"):
        per_time = _rdm_of_block(values[:, idx].astype(np.float64), method)
        for t, v in enumerate(per_time):
            vectors.append(v)
            cells.append((i, j, t))
    times = resp["time"].values.astype(np.float64) if has_time else None
    return BrainRDMs(np.asarray(vectors), np.asarray(cells), subjects, rois, times, method)


def model_rdms(layers, method: str = "correlation") -> np.ndarray:
    """(layer, P) RDM vectors from activations (list of (stimulus, unit) arrays) or an RDM array."""
    if isinstance(layers, xr.DataArray):  # precomputed (layer, stimulus, stimulus_)
        return np.stack([squareform(m, checks=False) for m in layers.values.astype(np.float64)])
    return np.stack([rsa.rdm(da.values, method) for da in layers])  # layers may differ in width


def rsa_scores(models: np.ndarray, brain: BrainRDMs, settings: dict, rng: np.random.Generator,
               confidence: float = 0.95) -> dict:
    """Scores and inference of model RDMs (L, P) against brain RDMs.

    Returns arrays keyed by the scores-contract variable names; grids are
    (layer, subject, roi, time) for ``score`` and (layer, roi, time) for the rest.

    ``settings["rdm_transform"]`` (see :mod:`brainalign.metrics.rdm_transforms`) transforms every
    model and brain RDM before the comparison, the permutation test (relabelling stimuli commutes
    with the transform), the noise ceiling and the figures' RDMs; the stimulus bootstrap transforms
    each resampled RDM with its own thresholds. ``models_transformed`` and ``brain_transformed``
    in the result are the transformed RDMs.
    """
    method = rsa.comparison_name(settings.get("comparison", "spearman"))
    transform = RDMTransform.from_settings(settings.get("rdm_transform"), "metrics.rsa.rdm_transform")
    raw_models, raw_brain = models, brain
    if transform.active:
        models = transform(models)
        brain = replace(brain, vectors=transform(brain.vectors))
    n_stim = rsa.n_stimuli_of(models.shape[1])
    n_perm = int(settings.get("n_permutations", 0))
    n_boot = int(settings.get("n_bootstrap", 0))
    mode = settings.get("bootstrap", "stimuli")
    if mode not in BOOTSTRAP_MODES:
        raise ValueError(f"config key 'metrics.rsa.bootstrap': unknown mode '{mode}' (known: {BOOTSTRAP_MODES})")

    values = rsa.compare(models, brain.vectors, method)  # (L, rows)
    observed = brain.subject_mean(values)  # (L, roi, time)

    with tqdm(total=n_perm, desc=f"RSA permutations ({method})", unit="perm") as bar:
        null = rsa.permutation_null(models, brain.vectors, n_stim, method, n_perm, rng,
                                    reduce=brain.subject_mean, progress=bar)
    p_value = stats.p_from_null(observed, null)
    boot = _bootstrap(raw_models, raw_brain, values, method, mode, n_boot, n_stim, rng, transform)
    boot_low, boot_high = stats.percentile_ci(boot, confidence)

    ceiling = np.full((2,) + brain.shape[1:], np.nan)
    subject_lower = np.full(brain.shape, np.nan)  # (subject, roi, time): the lower bound's terms
    if settings.get("noise_ceiling", True):
        for j in range(brain.shape[1]):
            for t in range(brain.shape[2]):
                rows = np.flatnonzero((brain.cells[:, 1] == j) & (brain.cells[:, 2] == t))
                ceiling[:, j, t] = rsa.noise_ceiling(brain.vectors[rows], method)
                subject_lower[brain.cells[rows, 0], j, t] = rsa.subject_ceilings(brain.vectors[rows], method)[0]

    per_subject = brain.scatter(values)  # (L, S, R, T)
    best_p = np.full(observed.shape, np.nan)
    for j in range(brain.shape[1]):
        for t in range(brain.shape[2]):
            best_p[:, j, t] = stats.best_vs_others_p(observed[:, j, t], boot[:, :, j, t], per_subject[:, :, j, t])
    return {
        "score": per_subject, "observed": observed, "p_value": p_value, "p_fdr": stats.fdr(p_value),
        "boot_ci_low": boot_low, "boot_ci_high": boot_high, "ceiling_low": ceiling[0],
        "ceiling_high": ceiling[1], "subject_ceiling_low": subject_lower, "null": null, "best_layer_p": best_p, "n_bootstrap": int(np.isfinite(boot).all(
            axis=tuple(range(1, boot.ndim))).sum()) if boot.shape[0] else 0,
        "n_permutations": int(null.shape[0]), "method": method, "bootstrap": mode,
        "transform": transform, "models_transformed": models, "brain_transformed": brain,
    }


def _bootstrap(models, brain: BrainRDMs, values, method, mode, n_boot, n_stim, rng,
               transform: RDMTransform | None = None) -> np.ndarray:
    """Bootstrap distribution of the subject-mean score: (B, layer, roi, time).

    ``models`` and ``brain`` are the untransformed RDMs and ``values`` the (transformed) observed
    comparisons: resampling subjects reuses ``values``; resampling stimuli recomputes each
    resample's RDMs and transforms them with their own thresholds."""
    if n_boot <= 0:
        return np.zeros((0,) + models.shape[:1] + brain.shape[1:])
    pattern_idx = rng.integers(0, n_stim, size=(n_boot, n_stim)) if mode in ("stimuli", "both") else None
    counts = None
    if mode in ("subjects", "both"):
        n_sub = brain.shape[0]
        rdm_idx = rng.integers(0, n_sub, size=(n_boot, n_sub))
        counts = stats.resample_counts(rdm_idx, n_sub)
    if pattern_idx is None:
        return brain.subject_mean(np.broadcast_to(values, (n_boot,) + values.shape), counts)

    def reduce(block, rows):
        return brain.subject_mean(block, None if counts is None else counts[rows])

    with tqdm(total=n_boot, desc=f"RSA bootstrap ({mode}, {method})", unit="sample") as bar:
        return rsa.bootstrap_compare(models, brain.vectors, method, pattern_idx, reduce=reduce, progress=bar,
                                     transform=transform)


def rdm_figures_data(models: np.ndarray, brain: BrainRDMs, observed: np.ndarray, layer_names,
                     method: str) -> dict:
    """RDMs for the figures: the subject-mean brain RDM and best layer's RDM per ROI,
    and second-order distances (1 - comparison) among all layer and brain RDMs.

    For time-resolved data each ROI's brain RDM is taken at its peak time (the
    time of the highest subject-mean score over all layers).
    """
    peak = np.nanargmax(np.nanmax(observed, axis=0), axis=-1)  # (roi,) time index
    mean_brain = np.stack([brain.vectors[(brain.cells[:, 1] == j) & (brain.cells[:, 2] == peak[j])].mean(0)
                           for j in range(brain.shape[1])])
    best = np.array([np.nanargmax(observed[:, j, peak[j]]) for j in range(brain.shape[1])])
    everything = np.concatenate([models, mean_brain])
    distance = 1.0 - rsa.compare(everything, everything, method)
    labels = list(layer_names) + [f"brain: {r}" for r in brain.rois]
    return {
        "brain_rdm": np.stack([squareform(v) for v in mean_brain]).astype(np.float32),
        "best_rdm": np.stack([squareform(models[b]) for b in best]).astype(np.float32),
        "best_layer": np.asarray([str(layer_names[b]) for b in best]),
        "peak_time_index": peak,
        "rdm_distance": np.clip((distance + distance.T) / 2, 0.0, None),
        "rdm_label": np.asarray(labels),
        "rdm_kind": np.asarray(["layer"] * len(models) + ["brain"] * len(mean_brain)),
    }


def best_layer_bootstrap(models: dict, brain: BrainRDMs, method: str, n_bootstrap: int,
                         rng: np.random.Generator, depths: dict | None = None, rdm_transform=None) -> xr.Dataset:
    """Each model's best layer on stimulus bootstrap resamples, the same resamples for every model.

    ``models`` maps a model name to its layer RDM vectors (L, P); ``depths`` maps
    it to the layers' relative depths (L,). In every resample each model's best
    layer is chosen anew (the selection is inside the bootstrap), so a
    percentile interval of ``best_score[a] - best_score[b]`` is a paired test of
    two models that does not favour either, and ``best_depth`` gives an interval
    for where in the network the best layer lies.

    Returns a Dataset on (sample, model, roi): ``best_score`` (subject-mean
    comparison of the best layer), ``best_layer`` (its index) and ``best_depth``;
    plus ``observed_best_score`` and ``observed_best_depth`` on the full data.
    Time-resolved brain RDMs are not supported here. ``rdm_transform`` (settings of
    :mod:`brainalign.metrics.rdm_transforms`) transforms the RDMs as :func:`rsa_scores` does.
    """
    transform = RDMTransform.from_settings(rdm_transform)
    if brain.times is not None:
        raise ValueError("best_layer_bootstrap takes brain RDMs without a time dimension")
    names = list(models)
    stacked = np.concatenate([np.atleast_2d(models[n]) for n in names])
    sizes = [np.atleast_2d(models[n]).shape[0] for n in names]
    n_stim = rsa.n_stimuli_of(stacked.shape[1])
    pattern_idx = rng.integers(0, n_stim, size=(n_bootstrap, n_stim))
    reduce = lambda block, rows: brain.subject_mean(block)[..., 0]  # noqa: E731  (b, L, roi)
    with tqdm(total=n_bootstrap, desc=f"best-layer bootstrap ({method})", unit="sample") as bar:
        boot = rsa.bootstrap_compare(stacked, brain.vectors, rsa.comparison_name(method), pattern_idx,
                                     reduce=reduce, progress=bar, transform=transform)
    observed = brain.subject_mean(rsa.compare(transform(stacked), transform(brain.vectors),
                                              rsa.comparison_name(method)))[..., 0]
    edges = np.cumsum([0] + sizes)
    shape = (n_bootstrap, len(names), len(brain.rois))
    best_score, best_layer, best_depth = np.full(shape, np.nan), np.zeros(shape, int), np.full(shape, np.nan)
    obs_score, obs_depth = np.full(shape[1:], np.nan), np.full(shape[1:], np.nan)
    for m, name in enumerate(names):
        part = boot[:, edges[m]:edges[m + 1]]  # (B, L_m, roi)
        depth = np.asarray((depths or {}).get(name, np.linspace(0, 1, sizes[m])), dtype=np.float64)
        index = np.nanargmax(np.where(np.isfinite(part), part, -np.inf), axis=1)  # (B, roi)
        best_layer[:, m] = index
        best_score[:, m] = np.take_along_axis(part, index[:, None], 1)[:, 0]
        best_depth[:, m] = depth[index]
        obs = observed[edges[m]:edges[m + 1]]
        obs_score[m], obs_depth[m] = np.nanmax(obs, axis=0), depth[np.nanargmax(obs, axis=0)]
    dims = ("sample", "model", "roi")
    return xr.Dataset(
        {"best_score": (dims, best_score), "best_layer": (dims, best_layer), "best_depth": (dims, best_depth),
         "observed_best_score": (dims[1:], obs_score), "observed_best_depth": (dims[1:], obs_depth)},
        coords={"model": names, "roi": brain.rois},
        attrs={"comparison": rsa.comparison_name(method), "n_bootstrap": n_bootstrap, "bootstrap": "stimuli",
               "rdm_transform": transform.describe() or "none"})
def score_rsa(layers, brain: xr.Dataset, settings: dict, *, metric="rsa", rng, seed=0,
              confidence: float = 0.95) -> xr.Dataset:
    """The RSA scores Dataset: scores, inference and the RDMs its figures draw."""
    method = settings.get("rdm_method", "correlation")
    brain_method = settings.get("brain_rdm_method") or method
    models = model_rdms(layers, method)
    brain_rdm = brain_rdms(brain, brain_method)
    out = rsa_scores(models, brain_rdm, settings, rng, confidence)
    time = brain_rdm.times is not None
    squeeze = (lambda a: a) if time else (lambda a: a[..., 0])
    grid = ("layer", "roi") + (("time",) if time else ())
    mean, low, high = across_subject_ci(out["score"], confidence)
    coords = {**layer_coords(layers), "subject": brain_rdm.subjects, "roi": brain_rdm.rois}
    if time:
        coords["time"] = ("time", brain_rdm.times, {"units": "s"})
    result = xr.Dataset(
        {
            "score": (("layer", "subject") + grid[1:], squeeze(out["score"])),
            "score_mean": (grid, squeeze(mean)),
            "ci_low": (grid, squeeze(low)),
            "ci_high": (grid, squeeze(high)),
            "p_value": (grid, squeeze(out["p_value"])),
            "p_fdr": (grid, squeeze(out["p_fdr"])),
            "boot_ci_low": (grid, squeeze(out["boot_ci_low"])),
            "boot_ci_high": (grid, squeeze(out["boot_ci_high"])),
            "ceiling_low": (grid[1:], squeeze(out["ceiling_low"])),
            "ceiling_high": (grid[1:], squeeze(out["ceiling_high"])),
        },
        coords=coords,
    )
    if not time:
        result["best_layer_p"] = (("layer", "roi"), out["best_layer_p"][..., 0])
        result["best_layer_p"].attrs["description"] = (
            "one-sided paired test that the best layer (highest subject mean) beats this layer: "
            + ("bootstrap (same resamples for every layer)" if out["n_bootstrap"] else
               "paired t-test across subjects") + "; the best layer is chosen on the same data")
    figs = rdm_figures_data(out["models_transformed"], out["brain_transformed"], out["observed"],
                            result["layer"].values, out["method"])
    result["brain_rdm"] = (("roi", "stimulus", "stimulus_"), figs["brain_rdm"])
    result["best_rdm"] = (("roi", "stimulus", "stimulus_"), figs["best_rdm"])
    result["rdm_distance"] = (("rdm", "rdm_"), figs["rdm_distance"])
    result["rdm_distance"].attrs["description"] = f"1 - {out['method']} between RDMs"
    transform = out["transform"]
    if transform.active:
        for name in ("brain_rdm", "best_rdm", "rdm_distance"):
            result[name].attrs["rdm_transform"] = f"RDMs after the {transform.describe()}"
    result = result.assign_coords(
        best_layer=("roi", figs["best_layer"]), rdm_label=("rdm", figs["rdm_label"]),
        rdm_kind=("rdm", figs["rdm_kind"]), stimulus_id=("stimulus", brain["stimulus_id"].values.astype(str)))
    if time:
        result = result.assign_coords(rdm_time=("roi", brain_rdm.times[figs["peak_time_index"]]))
        result["brain_rdm"].attrs["description"] = "subject-mean brain RDM at the ROI's peak time (rdm_time)"
    for name, coord in brain.coords.items():
        if coord.dims == ("stimulus",) and name != "stimulus_id" and coord.dtype.kind in "OUS":
            result = result.assign_coords({name: ("stimulus", coord.values.astype(str))})
    alpha = float(settings.get("alpha", 0.05))
    level = f"{confidence:.0%}"
    result["ci_low"].attrs["description"] = f"{level} Student-t interval across subjects"
    result["boot_ci_low"].attrs["description"] = (
        f"{level} percentile interval of the subject mean over {out['n_bootstrap']} bootstrap resamples of "
        f"{out['bootstrap']}" if out["n_bootstrap"] else "not computed (n_bootstrap = 0)")
    result["p_value"].attrs["description"] = (
        f"one-sided permutation test of stimulus labels on the subject-mean score ({out['n_permutations']} "
        "permutations)" if out["n_permutations"] else "not computed (n_permutations = 0)")
    result["p_fdr"].attrs["description"] = "Benjamini-Hochberg adjusted p_value across layers x ROIs" + (
        " x times" if time else "")
    result["ceiling_low"].attrs["description"] = (
        "rsatoolbox noise ceiling across subjects (lower: leave-one-subject-out; upper: all subjects)")
    add_null(result, squeeze(out["null"]), alpha, out["method"])
    _, c_low, c_high = across_subject_ci(squeeze(out["subject_ceiling_low"])[None], confidence)
    set_ceiling_interval(result, c_low[0], c_high[0], result["ceiling_low"].attrs["description"],
                         f"{level} Student-t interval across subjects of each subject's RDM against the mean "
                         "of the others' (the lower bound's terms)")
    result.attrs.update(n_permutations=out["n_permutations"], n_bootstrap=out["n_bootstrap"],
                        bootstrap=out["bootstrap"], alpha=alpha, higher_is_better=1,
                        comparison=out["method"], rdm_method=method, brain_rdm_method=brain_rdm.measure,
                        rdm_transform=transform.describe() or "none")
    if transform.active:
        result["score"].attrs["rdm_transform"] = (
            f"model and brain RDMs after the {transform.describe()} of Lin & Kriegeskorte (2024), before the "
            "comparison, permutations, bootstrap (each resampled RDM with its own thresholds) and noise ceiling")
    return result


