"""``rdm_mat`` / ``rdm_npy``: brain data that exists only as precomputed RDMs.

The file's RDM rows and columns follow the stimulus table's order. A file may
hold a grid of RDMs (e.g. the 1 x 4 x 2 ``RDMs`` of ``92_brainRDMs.mat``:
subjects x sessions); ``layout`` names each grid axis (``subject``, ``session``
or null for a singleton axis), and ``sessions`` says whether a subject's
session RDMs are averaged or kept as separate entries.

Returns the brain-RDM contract: variable ``rdms`` with dims ``(subject, roi,
stimulus, stimulus_)``, ``stimulus_id`` on ``stimulus``, and attrs
``distance_measure``, ``source_file``, ``dataset_checksum``, ``content="rdms"``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..rdm_files import RDMFileError, load_spec_rdms, select_entries

ROLES = ("subject", "session", None)
SESSION_MODES = ("average", "separate")


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, **_) -> xr.Dataset:
    """Build the brain-RDM contract for the config entry ``datasets.<name>``."""
    key = f"datasets.{name}"
    rdms = load_spec_rdms(spec, stimuli["stimulus_id"].values, key=key, base_dir=base_dir)
    if spec.get("entries") is not None:
        rdms = select_entries(rdms, spec["entries"], f"{key}.entries")
    subject_pos, session_pos = _roles(rdms, spec.get("layout"), f"{key}.layout")
    mode = spec.get("sessions", "average")
    if mode not in SESSION_MODES:
        raise RDMFileError(f"config key '{key}.sessions': unknown value '{mode}' (use {list(SESSION_MODES)})")

    subjects = np.unique(subject_pos)
    labels = [str(s) for s in spec.get("subjects") or [f"sub-{i + 1:02d}" for i in range(len(subjects))]]
    if len(labels) != len(subjects) or len(set(labels)) != len(labels):
        raise RDMFileError(f"config key '{key}.subjects': need {len(subjects)} distinct labels, "
                           f"got {labels}")
    all_sessions = np.unique(session_pos)
    values = rdms.values
    names, matrices = [], []
    for label, subject in zip(labels, subjects):
        mine = subject_pos == subject
        if mode == "average" or len(all_sessions) == 1:
            matrices.append(values[mine].mean(axis=0))
            names.append(label)
            continue
        for index in np.flatnonzero(mine)[np.argsort(session_pos[mine], kind="stable")]:
            matrices.append(values[index])
            names.append(f"{label}_session{np.searchsorted(all_sessions, session_pos[index]) + 1}")

    data = np.stack(matrices)[:, None]
    return xr.Dataset(
        {"rdms": (("subject", "roi", "stimulus", "stimulus_"), data)},
        coords={"subject": np.asarray(names, dtype=str),
                "roi": np.asarray([str(spec.get("roi", name))], dtype=str),
                "stimulus_id": ("stimulus", rdms["stimulus_id"].values)},
        attrs={"distance_measure": str(spec.get("measure", "unknown")),
               "source_file": rdms.attrs["source_file"],
               "dataset_checksum": rdms.attrs["checksum"],
               "content": "rdms"})


def _roles(rdms: xr.DataArray, layout, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Subject and session position of each entry, from the grid axes named in ``layout``."""
    n = rdms.sizes["entry"]
    if layout is None:
        return np.arange(n), np.zeros(n, dtype=int)
    grid = tuple(rdms.attrs["grid_shape"])
    where = rdms.attrs["source_file"]
    if not isinstance(layout, (list, tuple)) or len(layout) != len(grid):
        raise RDMFileError(f"config key '{key}': {where} holds a grid of RDMs shaped {grid}; "
                           f"give one role per axis ({list(ROLES)}), got {layout}")
    for k, role in enumerate(layout):
        if role not in ROLES:
            raise RDMFileError(f"config key '{key}': unknown role '{role}' for axis {k} (use {list(ROLES)})")
        if role is None and len(np.unique(rdms[f"axis{k}"].values)) > 1:
            raise RDMFileError(f"config key '{key}': axis {k} of {where} has {grid[k]} entries; "
                               f"name it 'subject' or 'session' (null is for singleton axes)")
    for role in ("subject", "session"):
        if list(layout).count(role) > 1:
            raise RDMFileError(f"config key '{key}': '{role}' names more than one axis")

    def position(role):
        return rdms[f"axis{list(layout).index(role)}"].values if role in layout else np.zeros(n, dtype=int)

    return position("subject"), position("session")
