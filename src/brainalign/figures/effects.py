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


def plot_effects(scores: xr.Dataset, paths):
    rois = scores["roi"].values.astype(str)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.2 * len(PANELS), 3.2), squeeze=False)
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
