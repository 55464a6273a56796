"""Model x model: layer-by-layer similarity of two models on one stimulus set.

The result has dims ``(measure, layer_a, layer_b)``; ``best_depth_b`` holds, for
each layer of A, the relative depth of the best-matching layer of B (the
depth-correspondence curve). Comparing a model with itself gives the usual
within-model layer similarity matrix.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..io import provenance, read_activations, write_netcdf
from ..metrics import similarity
from ..stimuli import StimulusError, align_to


def _layer_coords(layers, suffix):
    dim = f"layer_{suffix}"
    return {
        dim: (dim, [str(da["layer"].item()) for da in layers]),
        f"layer_index_{suffix}": (dim, [int(da["layer_index"]) for da in layers]),
        f"depth_{suffix}": (dim, [float(da["depth"]) for da in layers]),
    }


def compare_models(layers_a, layers_b, measures, settings: dict | None = None) -> xr.Dataset:
    """Every measure between every layer of A and every layer of B (aligned stimuli)."""
    settings = settings or {}
    xs = [da.values for da in layers_a]
    ys = [da.values for da in layers_b]
    values, best = [], []
    depth_b = np.array([float(da["depth"]) for da in layers_b])
    for measure in tqdm(measures, desc="model similarity", unit="measure"):
        matrix = similarity.pairwise(measure, xs, ys, **settings)
        higher = similarity.HIGHER_IS_BETTER[measure]
        values.append(matrix)
        best.append(depth_b[(matrix.argmax if higher else matrix.argmin)(axis=1)])
    return xr.Dataset(
        {
            "similarity": (("measure", "layer_a", "layer_b"), np.stack(values)),
            "best_depth_b": (("measure", "layer_a"), np.stack(best)),
            "higher_is_better": (("measure",), [int(similarity.HIGHER_IS_BETTER[m]) for m in measures]),
        },
        coords={"measure": list(measures), **_layer_coords(layers_a, "a"), **_layer_coords(layers_b, "b")},
    )


def compare_models_file(path_a, path_b, out_path, measures, settings: dict | None = None, *,
                        seed: int | None = None, names: tuple[str, str] = ("", "")):
    """File-level entry point used by the ``model_similarity`` rule."""
    layers_a, attrs_a = read_activations(path_a)
    layers_b, attrs_b = read_activations(path_b)
    ids = layers_a[0]["stimulus_id"].values
    try:
        layers_b = [align_to(da, ids, what=f"{path_b} (aligned to {path_a})") for da in layers_b]
    except StimulusError as exc:
        raise StimulusError(f"model comparison {names[0]} x {names[1]}: {exc}") from None
    result = compare_models(layers_a, layers_b, list(measures), settings)
    result.attrs.update(provenance(
        {"measures": list(measures), **(settings or {})}, seed=seed,
        model_a=names[0], model_b=names[1],
        model_a_checksum=attrs_a.get("model_checksum", ""), model_b_checksum=attrs_b.get("model_checksum", ""),
        settings=settings or {}, n_stimuli=len(ids),
    ))
    return write_netcdf(result, out_path)
