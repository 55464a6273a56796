"""Dataset x dataset: how similar the ROIs of two brain datasets are.

Each (subject, ROI) block of A is compared with each (subject, ROI) block of B
under every measure of :mod:`brainalign.metrics.similarity` (stimuli aligned by
``stimulus_id``, repetitions averaged). The result averages over subject pairs;
when a dataset is compared with itself, a subject is never paired with itself,
so the diagonal says how well an ROI generalises across subjects.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .common import brain_blocks
from ..datasets.contract import check_brain
from ..io import provenance, read_netcdf, write_netcdf
from ..metrics import similarity
from ..stimuli import StimulusError, align_to


def compare_datasets(brain_a: xr.Dataset, brain_b: xr.Dataset, measures, settings: dict | None = None,
                     same_dataset: bool = False) -> xr.Dataset:
    """``similarity(measure, roi_a, roi_b)``: mean over subject pairs of each measure."""
    settings = settings or {}
    blocks_a, subjects_a, rois_a = brain_blocks(brain_a)
    blocks_b, subjects_b, rois_b = brain_blocks(brain_b)
    keys_a, keys_b = list(blocks_a), list(blocks_b)
    values = np.full((len(measures), len(rois_a), len(rois_b)), np.nan)
    n_pairs = np.zeros((len(rois_a), len(rois_b)), dtype=np.int64)
    for m, measure in enumerate(measures):
        matrix = similarity.pairwise(measure, [blocks_a[k] for k in keys_a], [blocks_b[k] for k in keys_b],
                                     **settings)
        for i, ra in enumerate(rois_a):
            for j, rb in enumerate(rois_b):
                cells = [matrix[p, q] for p, (sa, xa) in enumerate(keys_a) for q, (sb, xb) in enumerate(keys_b)
                         if xa == ra and xb == rb and not (same_dataset and sa == sb)]
                if cells:
                    values[m, i, j] = np.mean(cells)
                    n_pairs[i, j] = len(cells)
    return xr.Dataset(
        {
            "similarity": (("measure", "roi_a", "roi_b"), values),
            "n_subject_pairs": (("roi_a", "roi_b"), n_pairs),
            "higher_is_better": (("measure",), [int(similarity.HIGHER_IS_BETTER[m]) for m in measures]),
        },
        coords={"measure": list(measures), "roi_a": rois_a, "roi_b": rois_b},
    )


def compare_datasets_file(path_a, path_b, out_path, measures, settings: dict | None = None, *,
                          seed: int | None = None, names: tuple[str, str] = ("", "")):
    """File-level entry point used by the ``dataset_similarity`` rule."""
    brain_a = check_brain(read_netcdf(path_a), what=str(path_a))
    brain_b = check_brain(read_netcdf(path_b), what=str(path_b))
    try:
        brain_b = align_to(brain_b, brain_a["stimulus_id"].values, what=f"{path_b} (aligned to {path_a})")
    except StimulusError as exc:
        raise StimulusError(f"dataset comparison {names[0]} x {names[1]}: {exc}") from None
    result = compare_datasets(brain_a, brain_b, list(measures), settings, same_dataset=names[0] == names[1])
    result.attrs.update(provenance(
        {"measures": list(measures), **(settings or {})}, seed=seed, dataset_a=names[0], dataset_b=names[1],
        dataset_a_checksum=brain_a.attrs.get("dataset_checksum", ""),
        dataset_b_checksum=brain_b.attrs.get("dataset_checksum", ""), settings=settings or {},
    ))
    return write_netcdf(result, out_path)
