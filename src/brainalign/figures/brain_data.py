"""The brain-data figure: how reliable and how large each ROI is, drawn from a brain file alone.

Input: a responses file of the brain contract (:mod:`brainalign.datasets.contract`), e.g.
``results/brain/<dataset>.nc``: ``responses`` with dims (stimulus, neuroid, repetition) or
(stimulus, neuroid, repetition, time), neuroid coordinates ``subject`` and ``roi`` and, for
volumetric data, ``x``/``y``/``z`` in mm. Precomputed-RDM files (``rdms``, no
``responses``) have no repetitions to assess and are refused with a ValueError.

* Panel A: split-half reliability per subject x ROI (:func:`roi_reliability`). Static data:
  grouped bars (x = ROI, one colour per subject). Time-resolved data: reliability over
  time (ms) per ROI, the mean over subjects as a thick line and each subject as a thin
  line, with a dashed vertical line at stimulus onset (0 ms).
* Panel B: number of neuroids per ROI and subject (:func:`neuroid_counts`), labelled
  voxels (files with x/y/z), sensors (files with a ``sensor`` coordinate) or neuroids.
* Panel C, only with x/y/z: the voxels of the first subject (in sorted order) as small
  markers on a nilearn glass brain, one palette colour per ROI, the ROI legend beside it.

Reliability: for every neuroid the repetitions are split into two halves of ``k // 2``
repetitions each (:func:`brainalign.metrics.ceiling.split_half_reliability`; all distinct
splits when there are at most ``n_splits``, otherwise ``n_splits`` random ones), the Pearson
r across stimuli between the two half means is averaged over splits and Spearman-Brown
corrected to the mean over all ``k`` repetitions (factor ``k / (k // 2)``). Under the model
response = signal + independent noise this estimates ``var_s / (var_s + var_n / k)``. A
subject x ROI is summarised by the median over its neuroids (per time point for
time-resolved data). Negative values are kept (not clipped), so a noise-only ROI scatters
around 0; since the correction is monotone, the median of the corrected r is the corrected
median r.

Speed: groups larger than ``max_neuroids`` (default :data:`MAX_NEUROIDS`) are subsampled to
that many neuroids, drawn without replacement with ``numpy.random.default_rng(seed)``
(groups in sorted subject, ROI order), so results are reproducible for a given seed; the
random repetition splits use the same seed. The figure states when it subsampled.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..datasets.contract import BrainDataError, check_brain, subject_roi_groups
from ..metrics.ceiling import spearman_brown, split_half_reliability
from .style import colour, save, styled

__all__ = ["roi_reliability", "neuroid_counts", "neuroid_unit", "plot_brain_data", "MAX_NEUROIDS",
           "RELIABILITY_LABEL"]

MAX_NEUROIDS = 5000
RELIABILITY_LABEL = "split-half reliability (Spearman-Brown r)"


def _require_responses(brain: xr.Dataset, what: str = "brain data") -> xr.DataArray:
    if "responses" not in brain.data_vars:
        raise BrainDataError(f"{what}: the brain-data figure needs the variable 'responses', which is missing "
                             f"(variables: {list(map(str, brain.data_vars))}); precomputed RDMs have no "
                             "repetitions to assess")
    return brain["responses"]


def _time_resolved(responses: xr.DataArray) -> bool:
    return "time" in responses.dims


def _sorted_labels(brain: xr.Dataset, coord: str) -> list[str]:
    return [str(v) for v in np.unique(np.asarray(brain[coord].values).astype(str))]


def neuroid_unit(brain: xr.Dataset) -> str:
    """What a neuroid is in this file: ``"voxels"`` (x/y/z coordinates), ``"sensors"``
    (a ``sensor`` coordinate) or ``"neuroids"``."""
    if {"x", "y", "z"} <= set(map(str, brain.coords)):
        return "voxels"
    if "sensor" in brain.coords:
        return "sensors"
    return "neuroids"


def neuroid_counts(brain: xr.Dataset) -> xr.DataArray:
    """Number of neuroids per subject x ROI: dims (subject, roi), 0 where a subject lacks an ROI."""
    subjects, rois = _sorted_labels(brain, "subject"), _sorted_labels(brain, "roi")
    counts = xr.DataArray(np.zeros((len(subjects), len(rois)), dtype=int), dims=("subject", "roi"),
                          coords={"subject": subjects, "roi": rois}, name="n_neuroids")
    for s, r, idx in subject_roi_groups(brain):
        counts.loc[s, r] = len(idx)
    counts.attrs["long_name"] = neuroid_unit(brain)
    return counts


def roi_reliability(brain: xr.Dataset, n_splits: int = 20, seed: int = 0,
                    max_neuroids: int | None = MAX_NEUROIDS) -> xr.DataArray:
    """Median split-half reliability (Spearman-Brown corrected to all repetitions) per subject
    x ROI: dims (subject, roi), or (subject, roi, time) for time-resolved responses.

    See the module docstring for the estimator and the deterministic subsampling of groups
    larger than ``max_neuroids`` (None: never subsample). Subject x ROI pairs without
    neuroids are NaN. The coordinates ``n_neuroids`` and ``n_used`` (subject, roi) give the
    group sizes before and after subsampling. Raises ValueError without ``responses`` or
    with fewer than 2 repetitions.
    """
    responses = _require_responses(brain)
    check_brain(brain)
    if "repetition" not in responses.dims or responses.sizes["repetition"] < 2:
        raise BrainDataError("split-half reliability needs a 'repetition' dimension with at least 2 "
                             f"repetitions (responses dims: {dict(responses.sizes)})")
    extra = set(responses.dims) - {"stimulus", "neuroid", "repetition", "time"}
    if extra:
        raise BrainDataError(f"responses has dimensions {sorted(extra)} the brain-data figure cannot summarise")
    timed = _time_resolved(responses)
    order = ("repetition", "stimulus", "neuroid") + (("time",) if timed else ())
    values = responses.transpose(*order).values
    k = values.shape[0]
    n_time = values.shape[3] if timed else 1

    subjects, rois = _sorted_labels(brain, "subject"), _sorted_labels(brain, "roi")
    out = np.full((len(subjects), len(rois), n_time), np.nan)
    n_neuroids = np.zeros((len(subjects), len(rois)), dtype=int)
    n_used = np.zeros_like(n_neuroids)
    rng = np.random.default_rng(seed)
    for s, r, idx in subject_roi_groups(brain):
        i, j = subjects.index(s), rois.index(r)
        n_neuroids[i, j] = len(idx)
        if max_neuroids is not None and len(idx) > max_neuroids:
            idx = np.sort(rng.choice(idx, size=max_neuroids, replace=False))
        n_used[i, j] = len(idx)
        reps = values[:, :, idx].reshape(k, values.shape[1], -1)  # targets: neuroid (x time)
        r_half = split_half_reliability(reps, n_splits=n_splits, rng=seed)
        r_full = spearman_brown(r_half, k / (k // 2)).reshape(len(idx), n_time)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (constant) groups stay NaN
            out[i, j] = np.nanmedian(r_full, axis=0)

    coords = {"subject": subjects, "roi": rois, "n_neuroids": (("subject", "roi"), n_neuroids),
              "n_used": (("subject", "roi"), n_used)}
    if timed:
        coords["time"] = responses["time"].values
        result = xr.DataArray(out, dims=("subject", "roi", "time"), coords=coords)
    else:
        result = xr.DataArray(out[..., 0], dims=("subject", "roi"), coords=coords)
    result.name = "reliability"
    result.attrs.update(long_name=RELIABILITY_LABEL, n_repetitions=k, n_splits=n_splits, seed=seed,
                        max_neuroids=-1 if max_neuroids is None else max_neuroids,
                        summary="median over neuroids")
    return result


def _grouped_bars(ax, table: xr.DataArray, subjects: list[str], rois: list[str]) -> None:
    """Bars x = ROI, one colour per subject (one bar per subject within each ROI group)."""
    width = 0.8 / len(subjects)
    x = np.arange(len(rois))
    for i, s in enumerate(subjects):
        heights = np.asarray(table.sel(subject=s).values, dtype=float)
        ax.bar(x - 0.4 + width * (i + 0.5), heights, width=width * 0.95, color=colour(i), label=s)
    ax.set_xticks(x, rois, rotation=30 if max(map(len, rois)) > 6 and len(rois) > 2 else 0,
                  ha="right" if max(map(len, rois)) > 6 and len(rois) > 2 else "center")
    ax.set_xlabel("ROI")
    ax.set_xlim(-0.6, len(rois) - 0.4)


def _glass_brain(fig, ax, legend_ax, brain: xr.Dataset, rois: list[str]) -> None:
    from matplotlib.lines import Line2D
    from nilearn import plotting

    subject = _sorted_labels(brain, "subject")[0]
    subj = np.asarray(brain["subject"].values).astype(str)
    roi_of = np.asarray(brain["roi"].values).astype(str)
    xyz = np.column_stack([np.asarray(brain[c].values, dtype=float) for c in ("x", "y", "z")])
    display = plotting.plot_glass_brain(None, display_mode="ortho", figure=fig, axes=ax, annotate=True,
                                        black_bg=False)  # nothing but the brain outline
    handles = []
    for k, r in enumerate(rois):
        keep = (subj == subject) & (roi_of == r)
        if keep.any():
            display.add_markers(xyz[keep], marker_color=colour(k), marker_size=2, alpha=0.6, linewidths=0)
            handles.append(Line2D([], [], ls="", marker="o", ms=5, color=colour(k),
                                  label=f"{r} ({int(keep.sum())})"))
    ax.set_title(f"C  ROI locations, {subject} (voxel centres, MNI mm)", loc="left")
    ax.title.set_visible(True)
    legend_ax.axis("off")
    legend_ax.legend(handles=handles, title="ROI (voxels)", loc="center left", borderaxespad=0.0)


def plot_brain_data(brain: xr.Dataset, paths, n_splits: int = 20, seed: int = 0):
    """Draw the brain-data figure (see the module docstring), save it to ``paths`` (one path
    or several) and return the Figure.

    Axes labels, for tests and callers: ``"reliability"`` (panel A), ``"neuroid_counts"``
    (panel B; its bars are the counts, subject by subject), ``"glass_brain"`` (panel C, only
    with x/y/z coordinates). Raises ValueError (naming ``'responses'``) for a file without
    responses. Reliability is computed with ``n_splits`` and ``seed``, deterministically."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    responses = _require_responses(brain)
    check_brain(brain)
    timed = _time_resolved(responses)
    subjects, rois = _sorted_labels(brain, "subject"), _sorted_labels(brain, "roi")
    unit = neuroid_unit(brain)
    has_xyz = unit == "voxels"
    counts = neuroid_counts(brain)
    try:
        reliability = roi_reliability(brain, n_splits=n_splits, seed=seed)
        problem = None
    except BrainDataError as err:  # e.g. a single repetition: draw the rest, say why A is empty
        reliability, problem = None, str(err)

    dataset = brain.attrs.get("dataset") or brain.attrs.get("name") or "unnamed"
    kind = brain.attrs.get("dataset_kind") or "responses"
    n_rep = responses.sizes.get("repetition", 1)
    details = f"{responses.sizes['stimulus']} stimuli, {responses.sizes['neuroid']} {unit}, " \
              f"{len(subjects)} subject(s), {n_rep} repetition(s)"
    if timed:
        t_ms = 1000.0 * np.asarray(responses["time"].values, dtype=float)
        details += f", {len(t_ms)} time points ({t_ms[0]:.0f} to {t_ms[-1]:.0f} ms)"
    if reliability is not None and (reliability["n_used"] < reliability["n_neuroids"]).any():
        details += f"; reliability on at most {int(reliability.attrs['max_neuroids'])} random {unit} per " \
                   f"subject x ROI (seed {seed})"

    with styled():
        wide_a = 1.6 if timed else 1.0 + 0.12 * len(rois)
        fig = plt.figure(figsize=(10.0, 7.4 if has_xyz else 3.8))
        outer = fig.add_gridspec(2 if has_xyz else 1, 1, height_ratios=[1.0, 1.0] if has_xyz else None,
                                 hspace=0.55)
        top = outer[0].subgridspec(1, 3, width_ratios=[wide_a, 1.0, 0.22], wspace=0.35)
        ax_a = fig.add_subplot(top[0, 0])
        ax_a.set_label("reliability")
        ax_b = fig.add_subplot(top[0, 1])
        ax_b.set_label("neuroid_counts")
        ax_subjects = fig.add_subplot(top[0, 2])
        ax_subjects.set_label("subject_legend")
        ax_subjects.axis("off")

        # ---- panel A
        if reliability is None:
            ax_a.text(0.5, 0.5, f"reliability unavailable:\n{problem}", ha="center", va="center",
                      transform=ax_a.transAxes, fontsize=7, wrap=True)
            ax_a.set_xticks([])
            ax_a.set_yticks([])
        elif timed:
            t_ms = 1000.0 * np.asarray(reliability["time"].values, dtype=float)
            handles = []
            for k, r in enumerate(rois):
                per_subject = reliability.sel(roi=r)
                for s in subjects:
                    ax_a.plot(t_ms, per_subject.sel(subject=s).values, color=colour(k), lw=0.7, alpha=0.45)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(per_subject.values, axis=0)
                handles.append(ax_a.plot(t_ms, mean, color=colour(k), lw=2.0, label=r)[0])
            handles.append(Line2D([], [], color="0.4", lw=0.7, alpha=0.6, label="single subjects"))
            ax_a.axvline(0.0, color="0.3", ls="--", lw=0.8)
            ax_a.axhline(0.0, color="0.6", lw=0.6)
            ax_a.set_xlabel("time (ms)")
            ax_a.set_xlim(t_ms[0], t_ms[-1])
            ax_a.legend(handles=handles, title="ROI (thick: mean over subjects)", loc="upper center",
                        bbox_to_anchor=(0.5, -0.2), ncol=min(4, len(handles)))
            ax_a.set_title("A  reliability over time (median over " + unit + ")", loc="left")
        else:
            _grouped_bars(ax_a, reliability, subjects, rois)
            ax_a.axhline(0.0, color="0.3", lw=0.6)
            if len(subjects) * len(rois) <= 16:  # values printed, so bars near 0 are not read as missing
                for bar in ax_a.patches:
                    h = bar.get_height()
                    if np.isfinite(h):
                        ax_a.annotate(f"{h:.2f}", (bar.get_x() + bar.get_width() / 2, max(h, 0.0)),
                                      xytext=(0, 1.5), textcoords="offset points", ha="center", va="bottom",
                                      fontsize=6)
            ax_a.set_title(f"A  reliability (median over {unit})", loc="left")
        ax_a.set_ylabel(RELIABILITY_LABEL)

        # ---- panel B
        _grouped_bars(ax_b, counts, subjects, rois)
        ax_b.set_ylabel(unit)
        ax_b.set_title(f"B  {unit} per ROI", loc="left")
        handles = [plt.Rectangle((0, 0), 1, 1, color=colour(i), label=s) for i, s in enumerate(subjects)]
        ax_subjects.legend(handles=handles, title="subject", loc="upper left", borderaxespad=0.0)

        # ---- panel C
        if has_xyz:
            bottom = outer[1].subgridspec(1, 2, width_ratios=[1.0, 0.22], wspace=0.02)
            ax_c = fig.add_subplot(bottom[0, 0])
            ax_c.set_label("glass_brain")
            ax_rois = fig.add_subplot(bottom[0, 1])
            ax_rois.set_label("roi_legend")
            _glass_brain(fig, ax_c, ax_rois, brain, rois)

        fig.suptitle(f"Brain data {dataset}: {kind}\n{details}", y=0.99 if has_xyz else 1.08, fontsize=10)
        save(fig, paths)
    return fig

