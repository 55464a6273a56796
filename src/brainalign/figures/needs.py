"""What each figure needs in its NetCDF file, and the error that names what is missing."""

from __future__ import annotations

import xarray as xr


FIGURE_NEEDS = {
    "heatmap": (("similarity",), ()),
    "depth": (("similarity", "depth_a", "best_depth_b"), ()),
    "rdms": (("brain_rdm", "best_rdm"), ()),
    "mds": (("rdm_distance", "rdm_label"), ()),
    "time": (("score_mean",), ("time",)),
    "glass_brain": (("target_r", "x", "y", "z"), ()),
    "partition": (("roi_unique", "roi_shared"), ()),
    "models": (("score_mean", "control_of", "best_depth"), ("model", "slot")),
    "table": (("best_score", "best_ci_low", "best_ci_high", "best_layer"), ("model", "roi")),
    "stimuli": (("stimulus_id",), ("stimulus",)),
    "brain_data": (("responses",), ("neuroid",)),
    "surface": (("target_r", "x", "y", "z"), ()),
    "effects": (("score", "delta_r2", "delta_loglik", "r_raw"), ()),
    "concept_depth": (("score_mean", "concept_depth", "concept_depth_ci_low", "best_layer"), ("model", "slot")),
    "families": (("best_score", "best_ci_low", "family", "size", "variant"), ("model", "roi")),
    "geometry": (("value", "ci_low", "ci_high", "depth"), ("model", "slot", "measure")),
}


FIGURES = ("auto", *FIGURE_NEEDS)


def require(data: xr.Dataset, figure: str, source=None):
    """Raise a ValueError naming the first variable or dimension ``figure`` needs that
    ``data`` lacks (and the file, when ``source`` is given)."""
    variables, dims = FIGURE_NEEDS[figure]
    where = f"{source}: " if source else ""
    present = ", ".join(map(str, data.data_vars)) or "none"
    for name in variables:
        if name not in data.variables:
            raise ValueError(f"{where}the {figure!r} figure needs the variable {name!r}, which is missing "
                             f"(variables present: {present})")
    for name in dims:
        if name not in data.dims:
            raise ValueError(f"{where}the {figure!r} figure needs the dimension {name!r}, which is missing "
                             f"(dimensions present: {', '.join(map(str, data.dims))})")


#: The label of each figure in the report's ``figure`` column.
FIGURE_LABELS = {
    "layers": "layer curves", "rdms": "RDM panels", "mds": "RDM MDS", "glass_brain": "best layer, glass brain",
    "surface": "maps on fsaverage5", "heatmap": "layer heatmaps", "depth": "depth correspondence",
    "dataset_heatmap": "ROI similarity heatmaps", "partition": "variance partition",
    "models": "models by relative depth", "table": "best layer per model x ROI", "stimuli": "categories and content",
    "brain_data": "reliability, size and location of ROIs",
    "effects": "effect sizes with intervals and chance",
    "concept_depth": "normalised probe curves and concept depth",
    "families": "score by model size and variant",
    "geometry": "geometry per layer by relative depth",
}
