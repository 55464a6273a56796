"""Every figure of brainalign, one module per figure family, and the report captions.

Every drawer takes one NetCDF file's Dataset and output paths, draws in the one style of
:mod:`.style` and saves in every requested format (PNG plus SVG or PDF). :func:`plot_file`
dispatches on the file's content or a figure name; it is what ``brainalign plot`` and the
workflow's figure jobs call, and :func:`plot_many` draws several figures in one process.

- :mod:`.layer_curves`: score per layer (and over time) of one scores file
- :mod:`.rdms`: RDM panels and RDM MDS (RSA)
- :mod:`.glass_brain`, :mod:`.surface`: encoding maps on a glass brain and on fsaverage5
- :mod:`.banded`: variance partitions of banded encoding
- :mod:`.model_similarity`: model x model heatmaps and depth correspondence
- :mod:`.model_comparison`, :mod:`.summary_table`: every model by relative depth, best layers
- :mod:`.stimuli`, :mod:`.brain_data`: the stimulus set, and the brain data's ROIs
- :mod:`.captions`: report categories and the settings sentence of every caption

Importing this package does not change matplotlib's backend: with no display, matplotlib
picks Agg itself; the workflow's scripts select Agg explicitly.
"""

from __future__ import annotations

from .needs import FIGURE_NEEDS, FIGURES, require
from .style import figure_seed, styled

__all__ = ["FIGURE_NEEDS", "FIGURES", "plot_file", "plot_many", "require"]


def plot_file(path, out_paths, figure: str = "auto"):
    """Redraw a figure from one NetCDF file and save it to every path in ``out_paths``.

    ``figure``:
      - ``"auto"``: scores files give layer curves, or time curves when they have a
        ``time`` dimension; model- and dataset-similarity files give heatmaps;
      - ``"heatmap"`` / ``"depth"``: similarity heatmaps / depth correspondence
        (model-similarity files);
      - ``"rdms"``: brain RDM next to the best layer's RDM, per ROI (RSA scores);
      - ``"mds"``: second-order MDS of layer and brain RDMs (RSA scores);
      - ``"time"``: score over time per layer (time-resolved scores);
      - ``"glass_brain"``: best layer per voxel on a glass brain (encoding scores);
      - ``"partition"``: unique and shared variance per ROI (banded-encoding files);
      - ``"models"``: every model's curve against relative depth (model-summary files);
      - ``"table"``: best layer per model x ROI with score, CI and ceiling-normalised score
        (model-summary files; a ``.csv`` output path gets the table itself);
      - ``"stimuli"``: category counts and sentence lengths or example images (stimulus files);
      - ``"brain_data"``: reliability and size of each ROI, and where it is (brain-data files);
      - ``"surface"``: encoding maps projected on fsaverage5 (encoding scores of voxel data);
      - ``"effects"``: surprisal coefficient, Delta R^2 and Delta log-likelihood with intervals;
      - ``"concept_depth"``: normalised probe curves and concept depths (probe model-summary files;
        a ``.csv`` path gets the table of concept depths);
      - ``"families"``: best score against model size and variant, paired variant differences;
      - ``"geometry"``: geometry measures per layer against relative depth (geometry files).

    Raises ValueError naming the file and the missing variable when the file cannot give
    the requested figure. Returns the matplotlib Figure."""
    from ..io import read_netcdf

    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; choose one of {', '.join(FIGURES)}")
    data = read_netcdf(path)
    if figure == "auto":
        if "responses" in data:
            figure = "brain_data"
        elif not data.data_vars and "stimulus_id" in data.coords:
            figure = "stimuli"
        elif "similarity" in data:
            figure = "heatmap"
        elif "roi_unique" in data:
            figure = "partition"
        elif "slot" in data.dims:
            figure = "models"
        elif "score" in data:
            figure = "time" if "time" in data.dims else "layers"
        else:
            raise ValueError(f"{path}: not a file brainalign draws (no scores, similarity, summary, stimulus "
                             "or brain-data variables)")
    if figure != "layers":
        require(data, figure, source=path)
    with styled():
        return _drawer(figure)(data, out_paths)


def _drawer(figure: str):
    """The drawing function of a figure name (imported lazily: nilearn is slow to import)."""
    if figure == "table":
        from .summary_table import plot_summary_table
        return plot_summary_table
    if figure == "stimuli":
        from .stimuli import plot_stimuli
        return plot_stimuli
    if figure == "brain_data":
        from .brain_data import plot_brain_data

        return lambda data, paths: plot_brain_data(data, paths, seed=figure_seed(data))
    if figure == "surface":
        from .surface import plot_encoding_surface
        return plot_encoding_surface
    if figure == "concept_depth":
        from .concept_depth import plot_concept_depth
        return plot_concept_depth
    if figure == "families":
        from .families import plot_families
        return plot_families
    if figure == "geometry":
        from .geometry import plot_geometry
        return plot_geometry
    if figure == "effects":
        from .effects import plot_effects
        return plot_effects
    from .banded import plot_variance_partition
    from .glass_brain import plot_encoding_glass_brain
    from .layer_curves import plot_layer_curves, plot_time_curves
    from .model_comparison import plot_model_depth_curves
    from .model_similarity import plot_depth_correspondence, plot_model_similarity
    from .rdms import plot_rdm_mds, plot_rdm_panels

    return {"layers": plot_layer_curves, "heatmap": plot_model_similarity, "depth": plot_depth_correspondence,
            "rdms": plot_rdm_panels, "mds": plot_rdm_mds, "time": plot_time_curves,
            "glass_brain": plot_encoding_glass_brain, "partition": plot_variance_partition,
            "models": plot_model_depth_curves}[figure]


def plot_many(path, figures) -> None:
    """Draw several figures of one NetCDF file in one process: ``figures`` is a sequence of
    ``(figure, out_paths)``; ``"layers"`` is the file's default figure (as ``"auto"``)."""
    import matplotlib.pyplot as plt

    for figure, out_paths in figures:
        plot_file(path, list(out_paths), figure="auto" if figure == "layers" else figure)
        plt.close("all")
