"""The brain-responses contract, checked in one place."""

from __future__ import annotations

import numpy as np
import xarray as xr

REQUIRED_DIMS = ("stimulus", "neuroid")
NEUROID_COORDS = ("subject", "roi")


class BrainDataError(ValueError):
    """Brain data breaks the contract; the message names the file or dataset."""


def is_rdm_data(brain: xr.Dataset) -> bool:
    """True for precomputed brain RDMs (``rdms``) rather than responses."""
    return "rdms" in brain and "responses" not in brain


def check_rdms(brain: xr.Dataset, what: str = "brain RDMs") -> xr.Dataset:
    """The brain-RDM contract: ``rdms(subject, roi, stimulus, stimulus_)`` with ``stimulus_id``."""
    rdms = brain["rdms"]
    if set(rdms.dims) != {"subject", "roi", "stimulus", "stimulus_"}:
        raise BrainDataError(f"{what}: 'rdms' must have dims (subject, roi, stimulus, stimulus_), has {rdms.dims}")
    if "stimulus_id" not in brain.coords or brain["stimulus_id"].dims != ("stimulus",):
        raise BrainDataError(f"{what}: needs a 'stimulus_id' coordinate on 'stimulus'")
    if rdms.sizes["stimulus"] != rdms.sizes["stimulus_"]:
        raise BrainDataError(f"{what}: RDMs are not square ({rdms.sizes['stimulus']} x {rdms.sizes['stimulus_']})")
    return brain


def check_brain(brain: xr.Dataset, what: str = "brain data") -> xr.Dataset:
    if is_rdm_data(brain):
        return check_rdms(brain, what)
    if "responses" not in brain:
        raise BrainDataError(f"{what}: no variable 'responses' (variables: {list(brain.data_vars)})")
    resp = brain["responses"]
    for dim in REQUIRED_DIMS:
        if dim not in resp.dims:
            raise BrainDataError(f"{what}: 'responses' lacks the dimension '{dim}' (dims: {resp.dims})")
    if "stimulus_id" not in brain.coords or brain["stimulus_id"].dims != ("stimulus",):
        raise BrainDataError(f"{what}: needs a 'stimulus_id' coordinate on 'stimulus'")
    for coord in NEUROID_COORDS:
        if coord not in brain.coords or brain[coord].dims != ("neuroid",):
            raise BrainDataError(f"{what}: needs a '{coord}' coordinate on 'neuroid'")
    if resp.sizes["neuroid"] == 0:
        raise BrainDataError(f"{what}: no neuroids")
    if not np.isfinite(resp.values).all():
        raise BrainDataError(f"{what}: 'responses' contains NaN or infinite values")
    return brain


def subject_roi_cells(subject_of, roi_of):
    """The (subject, ROI) cells of a neuroid axis: sorted subjects, sorted ROIs, and
    ``(i, j, neuroid indices)`` for every cell that has neuroids. The one iteration every
    per-subject x per-ROI computation uses."""
    subject_of, roi_of = np.asarray(subject_of).astype(str), np.asarray(roi_of).astype(str)
    subjects, rois = np.unique(subject_of), np.unique(roi_of)
    cells = []
    for i, s in enumerate(subjects):
        for j, r in enumerate(rois):
            idx = np.flatnonzero((subject_of == s) & (roi_of == r))
            if len(idx):
                cells.append((i, j, idx))
    return subjects, rois, cells


def subject_roi_groups(brain: xr.Dataset):
    """Yield (subject, roi, neuroid indices) in sorted order."""
    subjects, rois, cells = subject_roi_cells(brain["subject"].values, brain["roi"].values)
    for i, j, idx in cells:
        yield subjects[i], rois[j], idx
