"""The brain-responses contract, checked in one place."""

from __future__ import annotations

from ..errors import UserInputError
import numpy as np
import xarray as xr

REQUIRED_DIMS = ("stimulus", "neuroid")
NEUROID_COORDS = ("subject", "roi")


class BrainDataError(UserInputError):
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
    _check_unique_ids(brain, what)
    if not np.isfinite(resp.values).all():
        raise BrainDataError(f"{what}: 'responses' contains NaN or infinite values")
    _check_varying_cells(brain, what)
    return brain


def _check_unique_ids(brain: xr.Dataset, what: str) -> None:
    ids, counts = np.unique(brain["stimulus_id"].values.astype(str), return_counts=True)
    if (counts > 1).any():
        dup = [f"'{i}' ({c} times)" for i, c in zip(ids[counts > 1][:5], counts[counts > 1][:5])]
        raise BrainDataError(f"{what}: stimulus_id {', '.join(dup)} appears more than once on 'stimulus'; "
                             "average the repetitions into one row per stimulus, or give them distinct ids")


def _check_varying_cells(brain: xr.Dataset, what: str) -> None:
    """A (subject, ROI) whose responses do not vary across stimuli has no geometry to compare."""
    resp = brain["responses"]
    others = [d for d in resp.dims if d != "neuroid"]
    constant = ((resp.max(others) - resp.min(others)) == 0).values
    if not constant.any():
        return
    subjects, rois, cells = subject_roi_cells(brain["subject"].values, brain["roi"].values)
    flat = [(subjects[i], rois[j]) for i, j, idx in cells if constant[idx].all()]
    if flat:
        cells_text = ", ".join(f"subject {s} ROI {r}" for s, r in flat[:5])
        raise BrainDataError(f"{what}: the responses of {cells_text} are the same for every stimulus "
                             "(a constant ROI: nothing to compare); drop it or check how the file was made")


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


def validate_entry(key: str, entry: dict, base_dir, config: dict, load, check=None):
    """What a dataset kind's validation shares: read the entry's stimulus set, ``load(name, entry,
    stimuli, base_dir)`` the data, run ``check(data)`` (default :func:`check_brain`), and turn any
    input error into a ConfigError naming the key. None when the stimulus set is unknown (the
    generic check of ``datasets.<name>.stimuli`` names that)."""
    from ..config.schema import ConfigError
    from ..errors import UserInputError
    from ..stimuli import read_stimulus_table

    name, stimulus_set = key.split(".", 1)[1], entry["stimuli"]
    if stimulus_set not in config["stimuli"]:
        return None
    try:
        stimuli = read_stimulus_table(config["stimuli"][stimulus_set], base_dir)
    except UserInputError as exc:
        raise ConfigError(f"config key 'stimuli.{stimulus_set}.path': {exc}") from None
    try:
        data = load(name, entry, stimuli, base_dir)
        return (check or (lambda d: check_brain(d, what=d.attrs.get("source_file") or f"dataset '{name}'")))(data)
    except UserInputError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("config key") else f"config key '{key}': {message}") from None
