"""The stimulus-set figure: what was shown, drawn from a stimulus-set file alone.

Input: the ``stimulus`` contract as :func:`brainalign.stimuli.write_stimulus_set` writes it
(``results/stimuli/<name>.nc``): coordinates ``stimulus_id``, ``modality`` (``"text"`` or
``"image"``), ``content`` (the sentence, or the absolute path of the image file) and,
optionally, ``category``.

* Panel A: number of stimuli per category (horizontal bars, categories top to bottom in
  order of first appearance, one palette colour each). Without a ``category`` coordinate
  there is one bar, ``"all"``.
* Panel B, text: sentence length in words per category (box plot plus the individual
  sentences as jittered points, same category order and colours as panel A). A word is a
  whitespace-separated token holding at least one letter or digit, so a lone dash or
  punctuation mark does not count.
* Panel B, images: a montage of thumbnails, the first stimulus of each category (at most
  :data:`MAX_THUMBNAILS`; with a single category, its first :data:`MAX_THUMBNAILS`
  stimuli), drawn only from image files that exist. If none exists panel B is omitted and
  a note says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import xarray as xr

from .style import colour, save, styled

__all__ = ["plot_stimuli", "stimulus_categories", "word_counts", "MAX_THUMBNAILS"]

MAX_THUMBNAILS = 12
_HORIZONTAL = ({"orientation": "horizontal"} if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10)
               else {"vert": False})
THUMBNAIL_PIXELS = 160


def stimulus_categories(stimuli: xr.Dataset) -> np.ndarray:
    """The category of every stimulus as strings (``"all"`` without a ``category`` coordinate)."""
    if "category" in stimuli.variables:
        return np.asarray(stimuli["category"].values).astype(str)
    return np.full(stimuli.sizes.get("stimulus", len(stimuli["stimulus_id"])), "all")


def word_counts(sentences) -> np.ndarray:
    """Number of words per sentence: whitespace-separated tokens with a letter or digit."""
    return np.array([sum(any(ch.isalnum() for ch in token) for token in str(s).split()) for s in sentences],
                    dtype=int)


def _category_order(categories: np.ndarray) -> list[str]:
    return [str(c) for c in pd.unique(categories)]


def _thumbnails(paths: np.ndarray, categories: np.ndarray, order: list[str]) -> list[tuple[str, np.ndarray]]:
    """(label, RGB(A) pixel array) for up to MAX_THUMBNAILS existing images."""
    from PIL import Image

    if len(order) > 1:
        picks = []
        for cat in order:
            existing = [p for p in paths[categories == cat] if Path(p).is_file()]
            if existing:
                picks.append((cat, existing[0]))
    else:
        picks = [(Path(p).stem, p) for p in paths if Path(p).is_file()]
    out = []
    for label, path in picks[:MAX_THUMBNAILS]:
        try:
            with Image.open(path) as img:
                img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
                img.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                out.append((label, np.asarray(img)))
        except OSError:  # unreadable or not an image: skip it, as for a missing file
            continue
    return out


def plot_stimuli(stimuli: xr.Dataset, paths):
    """Draw the stimulus-set figure (see the module docstring), save it to ``paths`` (one
    path or several; the suffix picks the format) and return the Figure.

    The first axes of the figure is panel A (its bar widths are the category counts); panel
    B's axes has the label ``"sentence_length"`` (text) or ``"thumbnails"`` (images, each
    thumbnail's axes labelled ``"thumbnail"``)."""
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpecFromSubplotSpec

    if "stimulus_id" not in stimuli.variables:
        raise ValueError("a stimulus set needs a 'stimulus_id' coordinate on 'stimulus'")
    n = int(stimuli["stimulus_id"].size)
    name = stimuli.attrs.get("name") or Path(str(stimuli.attrs.get("source_file", "stimuli"))).stem
    categories = stimulus_categories(stimuli)
    order = _category_order(categories)
    counts = np.array([(categories == c).sum() for c in order])
    modality = (np.asarray(stimuli["modality"].values).astype(str) if "modality" in stimuli.variables
                else np.full(n, "text"))
    content = (np.asarray(stimuli["content"].values).astype(str) if "content" in stimuli.variables
               else np.full(n, ""))
    is_text = modality == "text"
    is_image = modality == "image"

    thumbs = _thumbnails(content[is_image], categories[is_image], _category_order(categories[is_image])) \
        if is_image.any() and not is_text.any() else []
    panel_b = "text" if is_text.any() else ("images" if thumbs else None)

    ncols = min(len(thumbs), max(1, math.ceil(math.sqrt(len(thumbs) * 1.5)))) if thumbs else 1
    nrows = math.ceil(len(thumbs) / ncols) if thumbs else 0

    with styled():
        height = max(2.6, 0.32 * len(order) + 1.4, 1.25 * nrows + 1.2)
        width = 9.0 if panel_b else 5.0
        fig = plt.figure(figsize=(width, height))
        grid = fig.add_gridspec(1, 2 if panel_b else 1, width_ratios=[1, 1.5] if panel_b else None, wspace=0.35,
                                top=1.0 - 0.6 / height)
        ax_a = fig.add_subplot(grid[0, 0])
        ax_a.set_label("category_counts")
        y = np.arange(len(order))
        ax_a.barh(y, counts, color=[colour(k) for k in range(len(order))], height=0.7)
        for yi, c in zip(y, counts):
            ax_a.text(c, yi, f" {c}", va="center", ha="left", fontsize=7)
        ax_a.set_yticks(y, order)
        ax_a.set_ylim(len(order) - 0.5, -0.5)  # first category on top
        ax_a.set_xlim(0, counts.max() * 1.15)
        ax_a.xaxis.get_major_locator().set_params(integer=True)
        ax_a.set_xlabel("stimuli (count)")
        ax_a.set_ylabel("category")
        ax_a.set_title("A  stimuli per category", loc="left")

        if panel_b == "text":
            ax_b = fig.add_subplot(grid[0, 1], sharey=ax_a)
            ax_b.set_label("sentence_length")
            words = word_counts(content)
            rng = np.random.default_rng(0)  # jitter only; the plotted x values are exact
            groups = []
            for k, cat in enumerate(order):
                keep = (categories == cat) & is_text
                groups.append(words[keep])
                if keep.any():
                    ax_b.scatter(words[keep], k + rng.uniform(-0.18, 0.18, keep.sum()), s=9,
                                 color=colour(k), alpha=0.75, linewidths=0, zorder=3, label=cat)
            ax_b.boxplot([g if len(g) else [np.nan] for g in groups], positions=y, **_HORIZONTAL,
                         widths=0.6, showfliers=False, manage_ticks=False, medianprops={"color": "black"},
                         boxprops={"color": "0.4"}, whiskerprops={"color": "0.4"}, capprops={"color": "0.4"})
            ax_b.set_ylim(len(order) - 0.5, -0.5)
            ax_b.tick_params(axis="y", labelleft=False)
            ax_b.set_xlabel("sentence length (words)")
            ax_b.set_title("B  sentence length (box: quartiles, dots: sentences)", loc="left")
            ax_b.xaxis.get_major_locator().set_params(integer=True)
        elif panel_b == "images":
            ax_b = fig.add_subplot(grid[0, 1])
            ax_b.set_label("thumbnails")
            ax_b.axis("off")
            ax_b.set_title("B  example stimuli" + (" (first of each category)" if len(order) > 1 else ""),
                           loc="left")
            # a spacer row on top keeps the thumbnails' titles clear of the panel title
            sub = GridSpecFromSubplotSpec(nrows + 1, ncols, subplot_spec=grid[0, 1], wspace=0.08, hspace=0.3,
                                          height_ratios=[0.12] + [1.0] * nrows)
            for i, (label, pixels) in enumerate(thumbs):
                ax = fig.add_subplot(sub[1 + i // ncols, i % ncols])
                ax.set_label("thumbnail")
                ax.imshow(pixels)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(label, fontsize=7, pad=2)
        elif is_image.any():
            ax_a.annotate("example images omitted: none of the image files was found", xy=(0.5, 0.0),
                          xycoords=ax_a.xaxis.label, xytext=(0, -6), textcoords="offset points",
                          ha="center", va="top", fontsize=7, color="0.3")
        fig.suptitle(f"Stimulus set {name}: {n} stimuli", y=1.0)
        save(fig, paths)
    return fig
