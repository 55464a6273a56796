"""Effect sizes of a surprisal scores file: the surprisal coefficient, Delta R^2, Delta
log-likelihood and raw r per measure, each with its bootstrap interval and its chance level
(the mean under circular shifts)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import PALETTE, save

PANELS = (("score", "ci", "surprisal coefficient\n(measure units per bit)"),
          ("delta_r2", "delta_r2", "Delta R^2 over the baseline"),
          ("delta_loglik", "delta_loglik", "Delta log-likelihood (nats)"),
          ("r_raw", "r_raw", "r (raw surprisal, measure)"))


def _bounds(scores: xr.Dataset, var: str, prefix: str):
    low, high = ("ci_low", "ci_high") if prefix == "ci" else (f"{prefix}_ci_low", f"{prefix}_ci_high")
    null = "null_mean" if prefix == "ci" else f"{prefix}_null_mean"
    p = "p_value" if prefix == "ci" else f"{prefix}_p_value"
    get = (lambda name: scores[name].isel(layer=0).values if name in scores else np.full(scores.sizes["roi"], np.nan))
    return get(low), get(high), get(null), get(p)


def _per_story(scores: xr.Dataset, fig, grid, n_cols):
    """Observed vs predicted (baseline + surprisal) per story: story means of the first measure,
    and each story's in-sample r of the full and the baseline model."""
    roi = 0
    groups = scores["group"].values.astype(str)
    observed = scores["observed"].isel(roi=roi).values
    full = scores["fitted_full"].isel(roi=roi).values
    base = scores["fitted_baseline"].isel(roi=roi).values
    stories = list(dict.fromkeys(groups))
    ax = fig.add_subplot(grid[1, : n_cols // 2])
    r_full, r_base = [], []
    for g in stories:
        rows = (groups == g) & np.isfinite(full)
        r_full.append(np.corrcoef(observed[rows], full[rows])[0, 1])
        r_base.append(np.corrcoef(observed[rows], base[rows])[0, 1])
    x = np.arange(len(stories))
    ax.bar(x - 0.2, r_base, 0.4, color="0.7", label="baseline")
    ax.bar(x + 0.2, r_full, 0.4, color=PALETTE[0], label="baseline + surprisal")
    ax.set_xticks(x, stories)
    ax.set_xlabel("story")
    ax.set_ylabel("r (observed, predicted) per word")
    ax.legend(fontsize=7)
    ax2 = fig.add_subplot(grid[1, n_cols // 2:])
    means = [(np.nanmean(observed[groups == g]), np.nanmean(full[(groups == g) & np.isfinite(full)])) for g in stories]
    ax2.scatter([m[1] for m in means], [m[0] for m in means], color=PALETTE[0])
    for g, (obs, pred) in zip(stories, means):
        ax2.annotate(g, (pred, obs), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo = min(min(m) for m in means)
    hi = max(max(m) for m in means)
    ax2.plot([lo, hi], [lo, hi], color="0.6", lw=0.8, ls="--")
    ax2.set_xlabel("predicted story mean")
    ax2.set_ylabel(f"observed story mean ({scores['roi'].values[roi]})")


def plot_effects(scores: xr.Dataset, paths):
    rois = scores["roi"].values.astype(str)
    stories = "observed" in scores and "group" in scores.coords
    fig = plt.figure(figsize=(3.2 * len(PANELS), 6.4 if stories else 3.2))
    grid = fig.add_gridspec(2 if stories else 1, len(PANELS))
    axes = np.array([[fig.add_subplot(grid[0, k]) for k in range(len(PANELS))]])
    if stories:
        _per_story(scores, fig, grid, len(PANELS))
    for ax, (var, prefix, label) in zip(axes[0], PANELS):
        estimate = scores[var].isel(layer=0).mean("subject").values
        low, high, null, p = _bounds(scores, var, prefix)
        x = np.arange(len(rois))
        ax.errorbar(x, estimate, yerr=[estimate - low, high - estimate], fmt="o", color=PALETTE[0], capsize=4,
                    label="estimate, bootstrap interval")
        ax.scatter(x, null, marker="_", s=300, color="0.4", label="chance (circular shifts)", zorder=3)
        for k in range(len(rois)):
            if np.isfinite(p[k]):
                ax.annotate(f"p = {p[k]:.3g}", (x[k], high[k]), textcoords="offset points", xytext=(6, 0),
                            fontsize=8)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xticks(x, rois)
        ax.set_xlim(-0.8, len(rois) - 0.2)
        ax.set_title(label, fontsize=9)
    axes[0][0].legend(loc="best", fontsize=7)
    model = scores.attrs.get("model", "")
    fig.suptitle(f"{model}: surprisal over the baseline ({scores.attrs.get('baseline', '')}), "
                 f"{scores.attrs.get('n_words', '')} words", fontsize=9)
    fig.tight_layout()
    save(fig, paths)
    return fig
