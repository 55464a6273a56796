"""Model families: each model's best-layer score against its size, by variant (base, instruct,
untrained), with the paired differences between variants of one family and size, from a
model-summary file whose models declare ``family``, ``size`` or ``variant`` in config."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import PALETTE, save

MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def variant_pairs(summary: xr.Dataset) -> list[tuple[str, str]]:
    """(model, other) pairs of one family and size that differ in variant, each pair once."""
    models = summary["model"].values.astype(str)
    fam, size, var = (summary[k].values for k in ("family", "size", "variant"))
    pairs = []
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            same_size = (size[i] == size[j]) or (np.isnan(size[i]) and np.isnan(size[j]))
            if fam[i] and fam[i] == fam[j] and same_size and var[i] != var[j]:
                pairs.append((models[i], models[j]))
    return pairs


def paired_difference(summary: xr.Dataset, a: str, b: str, roi: str) -> tuple[float, float, float, str]:
    """Best score of a minus b with its paired interval: the shared bootstrap resamples of the
    stimuli, else the paired held-out scores across subjects. NaN where neither exists."""
    for name, low, high, what in (("best_boot_difference", "best_boot_difference_ci_low",
                                   "best_boot_difference_ci_high", "bootstrap over shared stimuli"),):
        if name in summary:
            s = summary.sel(model=a, model_=b, roi=roi)
            return float(s[name]), float(s[low]), float(s[high]), what
    if "best_paired_difference" in summary:
        d = float(summary["best_paired_difference"].sel(model=a, model_=b, roi=roi))
        return d, np.nan, np.nan, "paired across subjects"
    return np.nan, np.nan, np.nan, ""


def plot_families(summary: xr.Dataset, paths):
    """Left: best-layer score (with its interval and chance level) per model against size (log
    scale; models without a size at the right), colour by family, marker by variant. Right: the
    paired difference of every two variants of one family and size, with its interval."""
    rois = list(summary["roi"].values.astype(str))
    models = list(summary["model"].values.astype(str))
    families = [f or m for f, m in zip(summary["family"].values.astype(str), models)]
    variants = [v or "(none)" for v in summary["variant"].values.astype(str)]
    size = summary["size"].values.astype(float)
    colour = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(dict.fromkeys(families))}
    marker = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(dict.fromkeys(variants))}
    pairs = variant_pairs(summary)
    fig, axes = plt.subplots(len(rois), 2, figsize=(10, 3.0 * len(rois) + 1.0), squeeze=False,
                             gridspec_kw={"width_ratios": [1.4, 1]})
    label = summary["score_mean"].attrs.get("long_name") or summary.attrs.get("metric", "score")
    level = f"{float(summary.attrs.get('confidence', 0.95)):.0%}"
    known = size[np.isfinite(size)]
    spare = known.max() * 3 if known.size else 1.0
    for (ax, ax_pair), roi in zip(axes, rois):
        s = summary.sel(roi=roi)
        for i, m in enumerate(models):
            x = size[i] if np.isfinite(size[i]) else spare
            y, lo, hi = (float(s[k].sel(model=m)) for k in ("best_score", "best_ci_low", "best_ci_high"))
            ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]] if np.isfinite(lo) else None, color=colour[families[i]],
                        marker=marker[variants[i]], ms=7, capsize=3, ls="none")
            ax.annotate(m, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
            if "best_null_mean" in s:
                ax.plot([x], [float(s["best_null_mean"].sel(model=m))], marker="_", ms=14, color="0.4")
        if known.size:
            ax.set_xscale("log")
        ax.set_xlabel("parameters (models without a size at the right)")
        ax.set_ylabel(label, fontsize=8)
        ax.set_title(f"{roi}: best layer per model ({level} intervals; grey bar: chance)", fontsize=9)
        ax.grid(alpha=0.2)
        for k, (a, b) in enumerate(pairs):
            d, lo, hi, what = paired_difference(summary, a, b, roi)
            ax_pair.errorbar([d], [k], xerr=[[d - lo], [hi - d]] if np.isfinite(lo) else None, color="k",
                             marker="o", capsize=3)
        ax_pair.axvline(0, color="0.5", lw=0.8)
        ax_pair.set_yticks(range(len(pairs)), [f"{a} - {b}" for a, b in pairs], fontsize=7)
        ax_pair.set_ylim(-0.7, max(len(pairs), 1) - 0.3)
        ax_pair.set_xlabel("paired difference of best-layer scores", fontsize=8)
        ax_pair.set_title("variants of one family and size" if pairs else "no two variants of one family and size",
                          fontsize=9)
        ax_pair.grid(alpha=0.2)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="none") for c in colour.values()]
    handles += [plt.Line2D([], [], color="0.3", marker=mk, ls="none") for mk in marker.values()]
    fig.legend(handles, [*colour, *marker], loc="lower center", ncol=min(len(handles), 6), frameon=False, fontsize=8)
    fig.suptitle(f"{summary.attrs.get('dataset', '')}: {label} by model size and variant (best layers chosen "
                 "in-sample)", fontsize=10, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save(fig, paths)
    return fig
