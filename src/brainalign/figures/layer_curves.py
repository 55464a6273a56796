"""Layer curves of one scores file: score against layer per ROI, or score over time per layer
(time-resolved MEG/EEG), with subjects, CI band, noise-ceiling band, significance and planted layer."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import Normalize

from .style import PALETTE, depth_colourbar, layer_depth, legend_below, save
from .needs import require


ALPHA_SIGNIFICANT = 0.05


def _planted_layer(scores: xr.Dataset, roi: str):
    """Hidden-state index planted in ``roi`` for this model, or None."""
    try:
        planted = json.loads(scores.attrs.get("planted") or "{}")
    except json.JSONDecodeError:
        return None
    entry = planted.get(roi)
    if entry and entry.get("model") == scores.attrs.get("model"):
        return int(entry["layer_index"])
    return None


def _metric_label(scores: xr.Dataset) -> str:
    """The y-axis label: the score's long name, else the file's metric label, else the metric."""
    return scores["score"].attrs.get("long_name") or scores.attrs.get("metric_label") \
        or scores.attrs.get("metric", "score")


def _significance(scores: xr.Dataset):
    """(p values, level, legend label): FDR-adjusted p where the file has it, else the raw
    permutation p; the level is the file's ``alpha`` attribute (default 0.05)."""
    alpha = float(scores.attrs.get("alpha", ALPHA_SIGNIFICANT))
    if "p_fdr" in scores:
        return scores["p_fdr"], alpha, f"p_FDR < {alpha:g}"
    return scores["p_value"], alpha, f"p < {alpha:g}"


def _title(scores: xr.Dataset, label: str) -> str:
    return f"{scores.attrs.get('model', '')} on {scores.attrs.get('dataset', '')}: {label}"


def plot_layer_curves(scores: xr.Dataset, paths, title: str | None = None):
    """One panel per ROI: score against layer, subject lines (spread), the
    subject mean with its CI band, the permutation null's band and mean (chance),
    the noise-ceiling band where defined (faint where it is not reliably above chance), marks
    at layers whose p (FDR-adjusted where the file has ``p_fdr``) is below the
    file's ``alpha``, and the planted layer of simulated data.

    Time-resolved files (a ``time`` dimension) have no single curve per layer:
    they are drawn by :func:`plot_time_curves` instead."""
    if "time" in scores.dims:
        return plot_time_curves(scores, paths, title=title)
    rois = list(scores["roi"].values.astype(str))
    n = len(rois)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    names = [str(v) for v in scores["layer"].values]
    named = not all(v.lstrip("-").isdigit() for v in names) and len(names) <= 16  # e.g. model RDMs
    courses = "prediction" in scores  # a time series: measured against predicted below the curves
    fig, all_axes = plt.subplots(nrows * (2 if courses else 1), ncols, squeeze=False,
                                 figsize=(max(3.4 * ncols, 6.5), ((3.6 if named else 2.9) * nrows + 0.6)
                                          * (1.8 if courses else 1)))
    axes = all_axes[:nrows]
    x = scores["layer_index"].values
    label = _metric_label(scores)
    p_all, alpha, sig_label = _significance(scores)
    for ax, roi in zip(axes.flat, rois):
        s = scores.sel(roi=roi)
        for k, subject in enumerate(s["subject"].values):
            ax.plot(x, s["score"].sel(subject=subject), color="0.6", lw=0.8, alpha=0.8,
                    label="subjects" if k == 0 else None)
        level = f"{float(scores.attrs.get('confidence', 0.95)):.0%}"
        if "boot_ci_low" in s and np.isfinite(s["boot_ci_low"].values).all():
            ax.fill_between(x, s["boot_ci_low"], s["boot_ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                            label=f"{level} bootstrap CI ({scores.attrs.get('bootstrap', 'stimuli')})")
        else:
            ax.fill_between(x, s["ci_low"], s["ci_high"], color=PALETTE[0], alpha=0.25, lw=0,
                            label=f"{level} CI (subjects)")
        if "null_low" in s and np.isfinite(s["null_low"].values).any():
            ax.fill_between(x, s["null_low"], s["null_high"], color="0.5", alpha=0.18, lw=0, hatch="///",
                            label=f"null {alpha:g}-{1 - alpha:g} quantiles (permutations)")
            ax.plot(x, s["null_mean"], color="0.35", lw=1, ls=":", label="chance (null mean)")
        ax.plot(x, s["score_mean"], color=PALETTE[0], lw=2, marker="o", ms=3, label="subject mean")
        low, high = float(s["ceiling_low"]), float(s["ceiling_high"])
        if np.isfinite(low) and np.isfinite(high):
            reliable = bool(int(s["ceiling_reliable"])) if "ceiling_reliable" in s else True
            ax.axhspan(low, high, color=PALETTE[1], alpha=0.2 if reliable else 0.08, lw=0,
                       label="noise ceiling" if reliable else "noise ceiling (not above chance)")
        p = p_all.sel(roi=roi).values
        sig = np.isfinite(p) & (p < alpha)
        if sig.any():
            ax.plot(x[sig], np.asarray(s["score_mean"])[sig], ls="none", marker="*", ms=8,
                    color=PALETTE[3], label=sig_label)
        planted = _planted_layer(scores, roi)
        if planted is not None:
            ax.axvline(planted, color=PALETTE[2], ls="--", lw=1.2, label="planted layer")
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(f"ROI: {roi}", fontsize=10)
        if named:
            ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
            ax.set_xlabel("layer")
        else:
            ax.set_xlabel("layer (hidden-state index)")
        ax.grid(alpha=0.2)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    low, high = zip(*(ax.get_ylim() for ax in axes.flat[:n]))
    for ax in axes.flat[:n]:  # the score panels share one y axis
        ax.set_ylim(min(low), max(high))
    for ax in axes[:, 0]:
        ax.set_ylabel(label, fontsize=8)
    if courses:
        _plot_courses(scores, rois, all_axes[nrows:])
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3 if ncols == 1 else 6),
               frameon=False, fontsize=8)
    fig.suptitle(title or _title(scores, label), fontsize=10 if ncols == 1 else 11, wrap=True)
    fig.tight_layout(rect=(0, 0.16 if ncols == 1 else 0.08, 1, 1))
    save(fig, paths)
    return fig


def _plot_courses(scores: xr.Dataset, rois, axes) -> None:
    """Per ROI, the subject mean of the measured time courses against the subject mean of their
    held-out predictions at the ROI's best layer (chosen on the same data: in-sample)."""
    seconds = scores["volume_time"].values
    for ax, roi in zip(axes.flat, rois):
        cols = scores["target_roi"].values.astype(str) == roi
        measured = scores["measured"].values[:, cols].mean(1)
        predicted = scores["prediction"].values[:, cols].mean(1)
        r = np.corrcoef(measured, predicted)[0, 1]
        ax.plot(seconds, measured, color="0.3", lw=0.9, label="measured (subject mean)")
        ax.plot(seconds, predicted, color=PALETTE[0], lw=1.2, label="predicted, held out (subject mean)")
        layer = str(scores["prediction_layer"].sel(roi=roi).item())
        ax.set_title(f"{roi}: {layer} (in-sample best), r = {r:.2f}", fontsize=8)
        ax.set_xlabel("time (s, transcript clock)")
        ax.set_ylabel("z", fontsize=8)
        ax.grid(alpha=0.2)
    for ax in axes.flat[len(rois):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, frameon=False, loc="upper right")


def _per_time(values, n_time: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.broadcast_to(values, (n_time,)) if values.ndim == 0 else values


def plot_time_curves(scores: xr.Dataset, paths, title: str | None = None):
    """One panel per ROI for time-resolved (MEG/EEG) scores: the subject-mean score of
    every layer over time (coloured by relative depth), the noise-ceiling band where it is
    defined, and a row of marks at times where the best layer's p (FDR-adjusted where
    the file has ``p_fdr``) is below the file's ``alpha``; each mark is coloured by the
    depth of that best layer."""
    require(scores, "time")
    rois = list(scores["roi"].values.astype(str))
    layers = list(scores["layer"].values.astype(str))
    depth = layer_depth(scores)
    time_ms = np.asarray(scores["time"].values, dtype=float) * 1000.0
    n_time = time_ms.size
    label = _metric_label(scores)
    p_all, alpha, sig_label = _significance(scores)
    higher = bool(int(scores.attrs.get("higher_is_better", 1)))
    cmap = plt.get_cmap("viridis")
    norm = Normalize(0.0, 1.0)

    mean = scores["score_mean"].transpose("layer", "roi", "time")
    ceiling = {name: scores[name] for name in ("ceiling_low", "ceiling_high") if name in scores}
    shown = [mean.values] + [c.values for c in ceiling.values()]
    finite = np.concatenate([np.ravel(v)[np.isfinite(np.ravel(v))] for v in shown])
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    span = (high - low) or 1.0
    mark_y = low - 0.08 * span

    n = len(rois)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows + 0.7), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, roi in zip(axes.flat, rois):
        curves = mean.sel(roi=roi).values
        for k, layer in enumerate(layers):
            ax.plot(time_ms, curves[k], color=cmap(norm(depth[k])), lw=1.2, label=layer)
        if len(ceiling) == 2:
            c_low = _per_time(ceiling["ceiling_low"].sel(roi=roi).values, n_time)
            c_high = _per_time(ceiling["ceiling_high"].sel(roi=roi).values, n_time)
            ok = np.isfinite(c_low) & np.isfinite(c_high)
            if ok.any():
                ax.fill_between(time_ms, np.where(ok, c_low, np.nan), np.where(ok, c_high, np.nan), where=ok,
                                color=PALETTE[1], alpha=0.25, lw=0, label="noise ceiling")
        defined = np.isfinite(curves).any(axis=0)
        filled = np.where(np.isfinite(curves), curves, -np.inf if higher else np.inf)
        best = filled.argmax(axis=0) if higher else filled.argmin(axis=0)
        p = p_all.sel(roi=roi).transpose("layer", "time").values[best, np.arange(n_time)]
        sig = defined & np.isfinite(p) & (p < alpha)
        if sig.any():
            ax.scatter(time_ms[sig], np.full(sig.sum(), mark_y), c=depth[best[sig]], cmap=cmap, norm=norm,
                       marker="s", s=14, lw=0, label=f"best layer {sig_label} (colour: its depth)")
        if time_ms.min() < 0 < time_ms.max():
            ax.axvline(0, color="0.3", lw=0.6, ls=":")
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_title(f"ROI: {roi}", fontsize=10)
        ax.set_xlabel("time (ms)")
        ax.grid(alpha=0.2)
    axes.flat[0].set_ylim(low - 0.14 * span, high + 0.06 * span)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(label, fontsize=8)
    depth_colourbar(fig, list(axes.flat[:n]), cmap)
    legend_below(fig, axes.flat[:n], skip=set(layers))  # layers: the depth colourbar
    fig.suptitle(title or _title(scores, label), fontsize=11)
    save(fig, paths)
    return fig
