"""Several models' scores on one dataset and metric, gathered on a shared relative-depth axis.

:func:`collect_scores` reads one scores file per model and writes a single Dataset on
(model, slot, roi): ``slot`` is the layer position (models differ in depth, so shorter
models are NaN-padded), with the layer name and relative depth as (model, slot)
coordinates. It keeps each model's subject mean, its CI (the stimulus bootstrap where
the file has one, else the across-subject interval), the noise ceiling, and each
model's best layer, and it marks untrained controls (``control_of``), so the
comparison figure is drawn from this one file. Time-resolved scores are summarised at
each layer's peak time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..io import read_netcdf


def _at_peak_time(scores: xr.Dataset) -> xr.Dataset:
    if "time" not in scores.dims:
        return scores
    higher = bool(int(scores.attrs.get("higher_is_better", 1)))
    mean = scores["score_mean"]
    peak = (mean.fillna(-np.inf) if higher else -mean.fillna(np.inf)).argmax("time")
    out = scores.isel(time=peak)  # ``time`` becomes a (layer, roi) coordinate: each layer's peak time
    ceiling = scores[["ceiling_low", "ceiling_high"]].max("time")
    if "ceiling_reliable" in scores:  # reliable at some time
        ceiling["ceiling_reliable"] = scores["ceiling_reliable"].max("time")
    out = out.rename(ceiling_low="peak_ceiling_low", ceiling_high="peak_ceiling_high")  # at each layer's peak
    return out.assign(**{name: ceiling[name] for name in ceiling.data_vars})


def _interval(scores: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray, str]:
    if "boot_ci_low" in scores and np.isfinite(scores["boot_ci_low"].values).all():
        return scores["boot_ci_low"], scores["boot_ci_high"], \
            f"bootstrap ({scores.attrs.get('bootstrap', 'stimuli')})"
    return scores["ci_low"], scores["ci_high"], "across subjects"


def collect_scores(paths: Mapping[str, str], control_of: Mapping[str, str] | None = None,
                   model_info: Mapping[str, Mapping] | None = None) -> xr.Dataset:
    """Gather ``{model: scores file}`` (one dataset, one metric) into one Dataset; ``model_info``
    gives each model's ``family``, ``size`` and ``variant`` from config (model coordinates)."""
    if not paths:
        raise ValueError("collect_scores needs at least one scores file")
    files = {model: _at_peak_time(read_netcdf(path)) for model, path in paths.items()}
    models = list(files)
    rois = files[models[0]]["roi"].values.astype(str).tolist()
    metrics = {str(s.attrs.get("metric", "")) for s in files.values()}
    if len(metrics) > 1:
        raise ValueError(f"collect_scores: the files mix metrics {sorted(metrics)}: {dict(paths)}")
    n_slots = max(s.sizes["layer"] for s in files.values())
    shape = (len(models), n_slots, len(rois))
    mean, low, high = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    names = np.full(shape[:2], "", dtype=object)
    peak_time = np.full(shape, np.nan)
    layer_ceiling = np.full((2, *shape), np.nan)  # the ceiling at each layer's own (peak) time
    depth = np.full(shape[:2], np.nan)
    intervals = []
    for i, model in enumerate(models):
        s = files[model]
        missing = sorted(set(rois) - set(s["roi"].values.astype(str).tolist()))
        if missing:
            raise ValueError(f"{paths[model]}: ROIs {missing} are missing (other models have them)")
        s = s.sel(roi=rois)
        n = s.sizes["layer"]
        ci_low, ci_high, kind = _interval(s)
        intervals.append(kind)
        mean[i, :n] = s["score_mean"].transpose("layer", "roi").values
        low[i, :n] = ci_low.transpose("layer", "roi").values
        high[i, :n] = ci_high.transpose("layer", "roi").values
        names[i, :n] = s["layer"].values.astype(str)
        for k, name in enumerate(("ceiling_low", "ceiling_high")):
            value = s[f"peak_{name}"] if f"peak_{name}" in s else s[name]
            layer_ceiling[k, i, :n] = np.broadcast_to(
                value.transpose(*[d for d in ("layer", "roi") if d in value.dims]).values, (n, len(rois)))
        if "time" in s.coords:
            peak_time[i, :n] = np.broadcast_to(s["time"].transpose(*[d for d in ("layer", "roi") if d in s["time"].dims]
                                                                   ).values, (n, len(rois)))
        depth[i, :n] = s["depth"].values if "depth" in s.coords else np.linspace(0, 1, n)
    first = files[models[0]].sel(roi=rois)
    higher = bool(first.attrs.get("higher_is_better", 1))
    best = np.nanargmax(np.where(np.isfinite(mean), mean if higher else -mean, -np.inf), axis=1)  # (model, roi)
    pick = lambda a: np.take_along_axis(a, best[:, None, :], 1)[:, 0]  # noqa: E731
    timed = np.isfinite(peak_time).any()
    out = xr.Dataset(
        {
            "score_mean": (("model", "slot", "roi"), mean),
            "ci_low": (("model", "slot", "roi"), low),
            "ci_high": (("model", "slot", "roi"), high),
            "ceiling_low": ("roi", first["ceiling_low"].values.astype(float)),
            "ceiling_high": ("roi", first["ceiling_high"].values.astype(float)),
            "best_score": (("model", "roi"), pick(mean)),
            "best_ci_low": (("model", "roi"), pick(low)),
            "best_ci_high": (("model", "roi"), pick(high)),
            "best_ceiling_low": (("model", "roi"), pick(layer_ceiling[0])),
            "best_ceiling_high": (("model", "roi"), pick(layer_ceiling[1])),
            "best_depth": (("model", "roi"), pick(np.broadcast_to(depth[..., None], shape))),
            "best_layer": (("model", "roi"), pick(np.broadcast_to(names[..., None], shape)).astype(str)),
        },
        coords={"model": models, "roi": rois, "layer": (("model", "slot"), names.astype(str)),
                "depth": (("model", "slot"), depth),
                "control_of": ("model", [str((control_of or {}).get(m, "")) for m in models]),
                "ci_kind": ("model", intervals)},
        attrs={key: first.attrs[key] for key in ("metric", "metric_label", "dataset", "confidence", "comparison", "alpha",
                                                 "n_bootstrap", "bootstrap", "higher_is_better", "seed",
                                                 "depth_fraction", "depth_baseline")
               if key in first.attrs},
    )
    for name in ("null_mean", "null_low", "null_high", "score_corrected"):
        if all(name in f for f in files.values()):
            grid = np.full(shape, np.nan)
            for i, model in enumerate(models):
                v = files[model].sel(roi=rois)[name]
                grid[i, :v.sizes["layer"]] = v.transpose("layer", "roi").values
            out[f"best_{name}"] = (("model", "roi"), pick(grid))
    info = model_info or {}
    out.coords["family"] = ("model", [str(info.get(m, {}).get("family") or "") for m in models])
    out.coords["size"] = ("model", [float(info.get(m, {}).get("size") or np.nan) for m in models])
    out.coords["variant"] = ("model", [str(info.get(m, {}).get("variant") or "") for m in models])
    _add_per_slot(out, files, models, rois, shape, ("null_mean",))
    _add_per_model(out, files, models, rois, ("concept_depth", "concept_depth_ci_low", "concept_depth_ci_high",
                                              "concept_layer"))
    if all("score_boot" in f for f in files.values()):
        _add_paired_bootstrap(out, files, models, rois, best)
    if "ceiling_reliable" in first:
        out["ceiling_reliable"] = ("roi", first["ceiling_reliable"].values.astype(np.int8))
    if all("best_heldout" in f for f in files.values()):
        _add_heldout(out, files, models, rois)
    if timed:
        out["peak_time"] = (("model", "slot", "roi"), peak_time, {"units": "s", "long_name": "time of the layer's peak"})
        out["best_time"] = (("model", "roi"), pick(peak_time), {"units": "s", "long_name": "peak time of the best layer"})
    out["score_mean"].attrs["long_name"] = first["score"].attrs.get("long_name") or first.attrs.get(
        "metric_label") or first.attrs.get("metric", "score")
    return out


def _add_per_slot(out: xr.Dataset, files: dict, models: list, rois: list, shape: tuple, names) -> None:
    """(model, slot, roi) grids of per-layer variables every file has (``null_mean``: the chance level)."""
    for name in names:
        if all(name in f for f in files.values()):
            grid = np.full(shape, np.nan)
            for i, model in enumerate(models):
                v = files[model].sel(roi=rois)[name]
                grid[i, :v.sizes["layer"]] = v.transpose("layer", "roi").values
            out[name] = (("model", "slot", "roi"), grid, files[models[0]][name].attrs)


def _add_per_model(out: xr.Dataset, files: dict, models: list, rois: list, names) -> None:
    """(model, roi) variables every file has (a probe's concept depth)."""
    for name in names:
        if all(name in f for f in files.values()):
            values = np.stack([files[m][name].sel(roi=rois).values for m in models])
            out[name] = (("model", "roi"), values, files[models[0]][name].attrs)


def _add_paired_bootstrap(out: xr.Dataset, files: dict, models: list, rois: list, best: np.ndarray) -> None:
    """Paired differences of the models' best-layer scores over shared bootstrap resamples.

    Scores files of one seed on the same stimuli share their resamples (``score_boot``), so model a
    minus model b on each resample, both at their own best layer, gives the paired interval
    ``best_boot_difference_ci_low/high`` (model, model_, roi) and a two-sided bootstrap p value."""
    sizes = {f.sizes["bootstrap"] for f in files.values()}
    if len(sizes) != 1 or 0 in sizes:
        return
    confidence = float(out.attrs.get("confidence", 0.95))
    draws = np.stack([np.take_along_axis(files[m]["score_boot"].sel(roi=rois).transpose("bootstrap", "layer", "roi")
                                         .values, best[i][None, None, :], 1)[:, 0] for i, m in enumerate(models)])
    diff = draws[:, None] - draws[None, :]                 # (model, model_, bootstrap, roi)
    tail = (1 - confidence) / 2 * 100
    best_score = out["best_score"].values
    out["best_boot_difference"] = (("model", "model_", "roi"), best_score[:, None] - best_score[None, :])
    out["best_boot_difference_ci_low"] = (("model", "model_", "roi"), np.nanpercentile(diff, tail, axis=2))
    out["best_boot_difference_ci_high"] = (("model", "model_", "roi"), np.nanpercentile(diff, 100 - tail, axis=2))
    with np.errstate(invalid="ignore"):
        p = 2 * np.minimum((diff <= 0).mean(2), (diff >= 0).mean(2))
    out["best_boot_p"] = (("model", "model_", "roi"), np.minimum(p, 1.0))
    out.coords["model_"] = ("model_", models)
    out["best_boot_difference"].attrs["description"] = (
        "best-layer score of model minus model_ (each at its own best layer, chosen in-sample); interval: "
        f"{confidence:.0%} percentile over the shared bootstrap resamples of the stimuli (paired)")


def _add_heldout(out: xr.Dataset, files: dict, models: list, rois: list) -> None:
    """Each model's leave-one-subject-out best-layer score, and a paired t-test across subjects
    between every two models' held-out best scores (the same subjects, each scored on a layer
    chosen without it): ``best_paired_difference`` (model, model_, roi) is the mean of
    model minus model_, ``best_paired_p`` its two-sided p value."""
    from scipy.stats import ttest_rel

    for name in ("best_heldout", "best_heldout_ci_low", "best_heldout_ci_high", "best_insample"):
        out[name] = (("model", "roi"), np.stack([files[m][name].sel(roi=rois).values for m in models]))
    subjects = files[models[0]]["subject"].values
    per_subject = np.stack([files[m]["best_heldout_subject"].sel(roi=rois, subject=subjects).transpose(
        "subject", "roi").values for m in models])  # (model, subject, roi)
    diff = np.full((len(models), len(models), len(rois)), np.nan)
    p = diff.copy()
    for a in range(len(models)):
        for b in range(len(models)):
            for j in range(len(rois)):
                x, y = per_subject[a, :, j], per_subject[b, :, j]
                ok = np.isfinite(x) & np.isfinite(y)
                if a != b and ok.sum() >= 2:
                    diff[a, b, j] = np.mean(x[ok] - y[ok])
                    if np.ptp(x[ok] - y[ok]) > 0:
                        p[a, b, j] = ttest_rel(x[ok], y[ok]).pvalue
    out["best_paired_difference"] = (("model", "model_", "roi"), diff)
    out["best_paired_p"] = (("model", "model_", "roi"), p)
    out.coords["model_"] = ("model_", models)
    out["best_heldout"].attrs["description"] = files[models[0]]["best_heldout"].attrs.get("description", "")
    out["best_paired_p"].attrs["description"] = (
        "two-sided paired t-test across subjects of the held-out best-layer scores of model vs model_")


def collect_file(paths: Mapping[str, str], out_path, control_of: Mapping[str, str] | None = None,
                 model_info: Mapping[str, Mapping] | None = None):
    """File-level entry point of the ``collect_model_scores`` rule."""
    from ..io import provenance, write_netcdf

    data = collect_scores(paths, control_of, model_info)
    seed = data.attrs.pop("seed", None)
    section = {"scores": {m: str(p) for m, p in paths.items()}, "control_of": dict(control_of or {}),
               "model_info": {m: dict(v) for m, v in (model_info or {}).items()}}
    return write_netcdf(data, out_path, attrs={**data.attrs, **provenance(section, seed=seed)})
