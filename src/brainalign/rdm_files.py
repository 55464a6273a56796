"""Precomputed RDMs stored in files (.mat, .npy): read, check, stack.

:func:`read_rdm_file` returns every RDM of a file as one ``(entry, stimulus,
stimulus_)`` float64 DataArray. A file may hold a grid of RDMs (a MATLAB struct
array such as the 1 x 4 x 2 ``RDMs`` of subjects x sessions, or a stack of
arrays); the grid is flattened in C order and each entry keeps its grid position
in the integer coordinates ``axis0``, ``axis1``, ... so callers can map grid
axes to subjects and sessions. Upper-triangle vectors follow the pair order of
:func:`scipy.spatial.distance.squareform` (rsatoolbox's order too).

Rows and columns follow the stimulus order of the file; :func:`load_spec_rdms`
attaches the stimulus set's ids for config-driven callers. No config or
Snakemake imports here.
"""

from __future__ import annotations

from .errors import UserInputError
import math
import os
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.spatial.distance import squareform

from .io import file_checksum
from .sources import resolve_file

DIMS = ("entry", "stimulus", "stimulus_")
TOLERANCE = 1e-8


class RDMFileError(UserInputError):
    """An RDM file is unreadable or holds invalid RDMs; the message names the file."""


class RDMVariableError(RDMFileError):
    """The requested .mat variable is missing or ambiguous."""


# --------------------------------------------------------------------------- reading
def read_rdm_file(path: str | os.PathLike, variable: str | None = None) -> xr.DataArray:
    """Read all RDMs of a .mat or .npy file.

    Parameters
    ----------
    path : a .mat file (struct array with an ``RDM`` field and optional ``name``
        field, a cell array, or a numeric array) or a .npy numeric array. Numeric
        arrays are shaped (N, N), (n, N, N), (P,) or (n, P) with P = N(N-1)/2.
    variable : the .mat variable; may be omitted when the file holds exactly one.

    Returns
    -------
    xarray.DataArray named ``rdms``, dims ``(entry, stimulus, stimulus_)``, float64,
    with ``name`` (str) and ``axis0``, ``axis1``, ... (grid position) on ``entry``.
    """
    path = Path(path)
    if not path.exists():
        raise RDMFileError(f"RDM file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        variable, array = _load_mat(path, variable)
        where = f"{path} (variable '{variable}')"
    elif suffix == ".npy":
        if variable is not None:
            raise RDMVariableError(f"{path}: a variable ('{variable}') applies to .mat files only")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise RDMFileError(f"{path}: cannot read as a numeric .npy array: {exc}") from None
        where = str(path)
    else:
        raise RDMFileError(f"{path}: unknown RDM file type '{suffix}' (use .mat or .npy)")

    raws, names, grid = _entries(array, where)
    if not raws:
        raise RDMFileError(f"{where}: no RDMs")
    names = [n or f"rdm{i}" for i, n in enumerate(names)]
    matrices = [_as_square(raw, f"{where}, entry '{n}'") for raw, n in zip(raws, names)]
    sizes = {m.shape[0] for m in matrices}
    if len(sizes) > 1:
        detail = ", ".join(f"'{n}': {m.shape[0]}" for n, m in zip(names, matrices))
        raise RDMFileError(f"{where}: RDMs of different sizes ({detail})")
    stack = np.stack(matrices)
    for name, matrix in zip(names, stack):
        check_rdm(matrix, f"{where}, entry '{name}'")
    positions = np.unravel_index(np.arange(len(stack)), grid) if grid else ()
    coords = {"name": ("entry", np.asarray(names, dtype=str))}
    coords.update({f"axis{k}": ("entry", pos.astype("int64")) for k, pos in enumerate(positions)})
    return xr.DataArray(stack, dims=DIMS, coords=coords, name="rdms",
                        attrs={"source_file": str(path), "variable": variable or "",
                               "grid_shape": tuple(int(s) for s in grid)})


def _load_mat(path: Path, variable: str | None) -> tuple[str, np.ndarray]:
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except (NotImplementedError, ValueError, OSError) as exc:
        raise RDMFileError(f"{path}: cannot read as a MATLAB file (v7.3 files are HDF5; "
                           f"save with -v7): {exc}") from None
    names = [k for k in content if not k.startswith("__")]
    if variable is None:
        if len(names) != 1:
            raise RDMVariableError(f"{path}: holds {len(names)} variables {names}; name one")
        variable = names[0]
    if variable not in names:
        raise RDMVariableError(f"{path}: no variable '{variable}' (variables: {names})")
    return variable, content[variable]


def _entries(array: np.ndarray, where: str) -> tuple[list, list[str], tuple[int, ...]]:
    """Split an array into raw RDMs (matrix or vector), their names and the grid shape."""
    array = np.asarray(array)
    if array.dtype.names is not None:  # MATLAB struct array
        if "RDM" not in array.dtype.names:
            raise RDMFileError(f"{where}: struct array has no 'RDM' field (fields: {list(array.dtype.names)})")
        items = [array.flat[i] for i in range(array.size)]
        names = [_mat_string(item["name"]) if "name" in array.dtype.names else "" for item in items]
        return [item["RDM"] for item in items], names, array.shape
    if array.dtype == object:  # MATLAB cell array
        return list(array.flat), [""] * array.size, array.shape
    if array.dtype.kind not in "fiub":
        raise RDMFileError(f"{where}: not a numeric array (dtype {array.dtype})")
    shape = array.shape
    if array.ndim == 1 or (array.ndim == 2 and shape[0] == shape[1]):
        return [array], [""], ()
    if array.ndim == 2 and shape[1] == 1:  # a column vector is one upper triangle
        return [array[:, 0]], [""], ()
    if array.ndim == 2 or (array.ndim == 3 and shape[1] == shape[2]):
        return list(array), [""] * shape[0], shape[:1]
    hint = " (MATLAB stacks RDMs as N x N x n; store them as n x N x N)" if array.ndim == 3 \
        and shape[0] == shape[1] else ""
    raise RDMFileError(f"{where}: array of shape {shape} is not (N, N), (n, N, N), (P,) or (n, P){hint}")


def _mat_string(value) -> str:
    """A MATLAB char array as loaded by scipy (``array(['name'])``) to str."""
    flat = np.asarray(value).ravel()
    return str(flat[0]).strip() if flat.size else ""


def _as_square(raw, where: str) -> np.ndarray:
    """A raw RDM (square matrix, or upper-triangle vector in squareform order) as float64 N x N."""
    try:
        a = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise RDMFileError(f"{where}: not numeric") from None
    if a.ndim == 2 and 1 in a.shape and a.size > 1:
        a = a.ravel()
    if a.ndim == 1:
        n = (1 + math.isqrt(1 + 8 * a.size)) // 2
        if n * (n - 1) // 2 != a.size:
            raise RDMFileError(f"{where}: a vector of length {a.size} is no upper triangle "
                               f"(lengths are N(N-1)/2, e.g. {n * (n - 1) // 2} for N={n}, "
                               f"{n * (n + 1) // 2} for N={n + 1})")
        return squareform(a, force="tomatrix", checks=False)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise RDMFileError(f"{where}: an RDM must be square, got shape {a.shape}")
    return a


def check_rdm(matrix: np.ndarray, where: str) -> None:
    """Raise :class:`RDMFileError` unless ``matrix`` is finite, symmetric and has a zero diagonal."""
    if not np.isfinite(matrix).all():
        raise RDMFileError(f"{where}: contains NaN or infinite values")
    scale = float(np.abs(matrix).max(initial=0.0))
    asymmetry = float(np.abs(matrix - matrix.T).max(initial=0.0))
    if asymmetry > TOLERANCE * scale:
        raise RDMFileError(f"{where}: not symmetric (largest |d[i,j] - d[j,i]| = {asymmetry:.3g})")
    diagonal = float(np.abs(np.diag(matrix)).max(initial=0.0))
    if diagonal > TOLERANCE * max(scale, 1.0):
        raise RDMFileError(f"{where}: diagonal is not zero (largest |d[i,i]| = {diagonal:.3g})")


# --------------------------------------------------------------------------- config entries
def load_spec_rdms(spec: dict, stimulus_ids, *, key: str, base_dir=None) -> xr.DataArray:
    """Resolve, read and check the RDM file of a config entry (``path``, ``url``,
    ``sha256``, ``variable``); attach ``stimulus_id`` from the stimulus set.

    The file's rows must follow the stimulus set's order. Errors name ``key``
    (e.g. ``datasets.human_it``) with the field at fault. The result's attrs hold
    ``source_file`` and ``checksum`` (sha256 of the file).
    """
    path = resolve_file(spec["path"], url=spec.get("url"), sha256=spec.get("sha256"), key=key,
                        base_dir=base_dir)
    try:
        rdms = read_rdm_file(path, spec.get("variable"))
    except RDMVariableError as exc:
        raise RDMFileError(f"config key '{key}.variable': {exc}") from None
    except RDMFileError as exc:
        raise RDMFileError(f"config key '{key}.path': {exc}") from None
    ids = np.asarray(stimulus_ids, dtype=str)
    if rdms.sizes["stimulus"] != len(ids):
        raise RDMFileError(f"config key '{key}.path': {path} holds {rdms.sizes['stimulus']} x "
                           f"{rdms.sizes['stimulus']} RDMs but the stimulus set has {len(ids)} stimuli "
                           f"(rows must follow the stimulus table's order)")
    rdms = rdms.assign_coords(stimulus_id=("stimulus", ids))
    rdms.attrs.update(source_file=str(path), checksum=file_checksum(path))
    return rdms


def select_entries(rdms: xr.DataArray, wanted, key: str) -> xr.DataArray:
    """Keep the entries named in ``wanted`` (names or 0-based indices), in that order."""
    names = rdms["name"].values.astype(str).tolist()
    picked = []
    for item in wanted:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= item < len(names):
                raise RDMFileError(f"config key '{key}': index {item} out of range "
                                   f"({rdms.attrs.get('source_file')} holds {len(names)} RDMs)")
            picked.append(int(item))
        elif str(item) in names:
            if names.count(str(item)) > 1:
                raise RDMFileError(f"config key '{key}': name '{item}' is ambiguous in "
                                   f"{rdms.attrs.get('source_file')}; use its index")
            picked.append(names.index(str(item)))
        else:
            raise RDMFileError(f"config key '{key}': unknown RDM '{item}' in "
                               f"{rdms.attrs.get('source_file')} (available: {names})")
    return rdms.isel(entry=picked)
