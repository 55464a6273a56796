"""The summary table: each model's best layer per ROI, its score with CI, and the score as a
fraction of the noise ceiling.

Drawn from a model-summary file (``results/summary/<dataset>/<metric>.nc``, written by
:func:`brainalign.model_summary.collect_scores`) alone. :func:`summary_frame` gives the
numbers as a table (one row per model x ROI); :func:`plot_summary_table` draws them as a
figure (models as rows, ROIs as columns, cells shaded by the ceiling-normalised score) and,
for a ``.csv`` path, writes the table itself.

Ceiling-normalised = score / upper bound of the noise ceiling, taken at the best layer's own
time for time-resolved data; the CI is divided by the same number. Where the ceiling is
undefined, where its interval includes 0 (``ceiling_reliable`` = 0; the note then reads
"n/a (ceiling not above 0)"), or for distances (lower is better) the normalised columns are NaN.
Beside every score: the permutation null's mean and upper quantile (the chance level), the
chance-corrected score, and the best layer chosen on the other subjects and scored on the
held-out one; ``p_vs_<model>`` is the paired test of two models' held-out best layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .style import SEQUENTIAL, save, styled

COLUMNS = ("model", "roi", "best_layer", "best_depth", "best_time_ms", "score", "ci_low", "ci_high",
           "null_mean", "null_high", "score_corrected", "heldout_score", "heldout_ci_low", "heldout_ci_high",
           "ceiling_low", "ceiling_high", "ceiling_reliable", "normalised", "normalised_ci_low",
           "normalised_ci_high", "normalised_note")
NOT_ABOVE_ZERO = "n/a (ceiling not above 0)"
NEEDS = ("best_score", "best_ci_low", "best_ci_high", "best_layer", "best_depth")


def _check(summary: xr.Dataset) -> None:
    missing = [name for name in NEEDS if name not in summary.variables]
    if missing:
        raise ValueError(f"the summary table needs the variables {missing}, which are missing "
                         f"(variables present: {', '.join(map(str, summary.data_vars))})")


def summary_frame(summary: xr.Dataset) -> pd.DataFrame:
    """One row per model x ROI: best layer (name, relative depth, peak time in ms for
    time-resolved data), score and CI, noise ceiling, and the ceiling-normalised score."""
    _check(summary)
    higher = bool(int(summary.attrs.get("higher_is_better", 1)))
    rows = []
    models = summary["model"].values.astype(str)

    def value(s, name):
        return float(s[name]) if name in s else np.nan

    for model in models:
        for roi in summary["roi"].values.astype(str):
            s = summary.sel(model=model, roi=roi)
            ceiling_low = float(s["best_ceiling_low"]) if "best_ceiling_low" in s else float(s["ceiling_low"])
            ceiling_high = float(s["best_ceiling_high"]) if "best_ceiling_high" in s else float(s["ceiling_high"])
            score, low, high = float(s["best_score"]), float(s["best_ci_low"]), float(s["best_ci_high"])
            reliable = bool(int(s["ceiling_reliable"])) if "ceiling_reliable" in s else np.isfinite(ceiling_high)
            usable = higher and np.isfinite(ceiling_high) and ceiling_high > 0 and reliable
            scale = ceiling_high if usable else np.nan
            note = "" if usable else ("n/a (lower is better)" if not higher else
                                      NOT_ABOVE_ZERO if np.isfinite(ceiling_high) else "n/a (no ceiling)")
            paired = {}
            if "best_paired_p" in summary:
                for other in models:
                    if other != model:
                        pair = summary["best_paired_p"].sel(model=model, model_=other, roi=roi)
                        paired[f"p_vs_{other}"] = float(pair)
                        paired[f"difference_vs_{other}"] = float(
                            summary["best_paired_difference"].sel(model=model, model_=other, roi=roi))
            rows.append({
                "model": model, "roi": roi, "best_layer": str(s["best_layer"].item()),
                "best_depth": float(s["best_depth"]),
                "best_time_ms": float(s["best_time"]) * 1000.0 if "best_time" in s else np.nan,
                "score": score, "ci_low": low, "ci_high": high,
                "null_mean": value(s, "best_null_mean"), "null_high": value(s, "best_null_high"),
                "score_corrected": value(s, "best_score_corrected"),
                "heldout_score": value(s, "best_heldout"), "heldout_ci_low": value(s, "best_heldout_ci_low"),
                "heldout_ci_high": value(s, "best_heldout_ci_high"),
                "ceiling_low": ceiling_low, "ceiling_high": ceiling_high, "ceiling_reliable": int(reliable),
                "normalised": score / scale, "normalised_ci_low": low / scale, "normalised_ci_high": high / scale,
                "normalised_note": note, **paired,
            })
    extra = list(dict.fromkeys(c for row in rows for c in row if c not in COLUMNS))
    return pd.DataFrame(rows, columns=list(COLUMNS) + extra)


def cell_text(row) -> str:
    """The text of one table cell: layer (and time), score [CI], and % of ceiling."""
    where = row["best_layer"]
    if np.isfinite(row["best_time_ms"]):
        where += f" @ {row['best_time_ms']:.0f} ms"
    text = f"{where}\n{row['score']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    if np.isfinite(row.get("null_mean", np.nan)):
        text += f"\nchance {row['null_mean']:.3f} (null upper {row['null_high']:.3f})"
    if np.isfinite(row.get("heldout_score", np.nan)):
        text += f"\nheld-out best {row['heldout_score']:.3f}"
    if np.isfinite(row["normalised"]):
        text += f"\n{100 * row['normalised']:.0f}% of ceiling"
    elif row.get("normalised_note") == NOT_ABOVE_ZERO:
        text += f"\n{NOT_ABOVE_ZERO}"
    return text


def plot_summary_table(summary: xr.Dataset, paths, title: str | None = None):
    """Models as rows, ROIs as columns; each cell gives the best layer, its score with CI and
    the ceiling-normalised score, shaded by the latter (viridis, 0..100%). A ``.csv`` path
    gets :func:`summary_frame` itself; image paths get the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    frame = summary_frame(summary)
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    for path in [p for p in paths if str(p).endswith(".csv")]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, float_format="%.6g")
    images = [p for p in paths if not str(p).endswith(".csv")]
    models = list(dict.fromkeys(frame["model"]))
    rois = list(dict.fromkeys(frame["roi"]))
    cmap = plt.get_cmap(SEQUENTIAL)
    norm = Normalize(0.0, 1.0)
    label = summary["score_mean"].attrs.get("long_name") if "score_mean" in summary else None
    label = label or summary.attrs.get("metric_label") or summary.attrs.get("metric", "score")
    with styled():
        fig, ax = plt.subplots(figsize=(1.6 + 2.5 * len(rois), 1.3 + 1.1 * len(models)), layout="constrained")
        text = [[cell_text(frame[(frame.model == m) & (frame.roi == r)].iloc[0]) for r in rois] for m in models]
        shade = np.array([[frame[(frame.model == m) & (frame.roi == r)]["normalised"].iloc[0] for r in rois]
                          for m in models], dtype=float)
        colours = [[(*cmap(norm(v))[:3], 0.35) if np.isfinite(v) else (1, 1, 1, 1) for v in row] for row in shade]
        table = ax.table(cellText=text, cellColours=colours, rowLabels=models, colLabels=rois, loc="center",
                         cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
        table.scale(1.0, 4.6)
        ax.axis("off")
        if np.isfinite(shade).any():
            fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, alpha=0.35,
                         label="score / noise ceiling (upper bound)")
        level = f"{float(summary.attrs.get('confidence', 0.95)):.0%}"
        fig.suptitle(title or f"{summary.attrs.get('dataset', '')}: best layer per model and ROI\n"
                              f"{label}, mean over subjects [{level} CI]", fontsize=10)
        if images:
            save(fig, images)
    return fig
