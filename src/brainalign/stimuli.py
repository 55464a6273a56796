"""Stimulus sets: a CSV table becomes the ``stimulus`` contract.

The contract is an ``xarray.Dataset`` with one dimension ``stimulus`` and the
coordinates ``stimulus_id`` (unique strings), ``modality`` and ``content``
(the sentence, or the image path), plus any condition labels (``category``).
Everything downstream joins on ``stimulus_id``, never on row order.
"""

from __future__ import annotations

from .errors import UserInputError
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


class StimulusError(UserInputError):
    """The stimulus table is unusable; the message names the file and column."""


def read_text_table(path: Path, comments: bool = False) -> pd.DataFrame:
    """A CSV (or tab-separated ``.tsv`` / ``.tok``) file as a table of strings. A missing, empty, binary, non-UTF-8 or
    malformed file raises :class:`StimulusError` naming the file (and the line where known).

    ``comments=True`` skips whole lines starting with ``#`` (after any spaces); they are kept, without
    the ``#``, in ``table.attrs["comments"]``, and ``table.attrs["lines"]`` holds each row's line number
    in the file (for error messages)."""
    if not path.is_file():
        raise StimulusError(f"stimulus file not found: {path}")
    raw = path.read_bytes()
    if not raw.strip():
        raise StimulusError(f"{path}: the file is empty (expected a header line with stimulus_id and the "
                            "content column, then one row per stimulus)")
    if b"\x00" in raw[:8192]:
        raise StimulusError(f"{path}: a binary file, not a CSV table")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise StimulusError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the "
                            "table as UTF-8") from None
    import io

    notes, numbers = [], None
    if comments:
        lines = text.splitlines()
        kept = [i for i, line in enumerate(lines) if not line.lstrip().startswith("#")]
        notes = [line.lstrip()[1:].strip() for line in lines if line.lstrip().startswith("#")]
        numbers = [i + 1 for i in kept if lines[i].strip()][1:]  # after the header line
        text = "\n".join(lines[i] for i in kept)
        if not text.strip():
            raise StimulusError(f"{path}: only comment lines, no header line")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            sep="\t" if path.suffix.lower() in (".tsv", ".tok") else ",")
    except pd.errors.ParserError as exc:
        raise StimulusError(f"{path}: not a valid table: {exc}") from None
    if comments:
        table.attrs.update(comments=notes, lines=numbers[:len(table)])
    return table


def load_stimulus_table(path, modality: str = "text", content_column: str = "sentence",
                        condition_columns=("category",), id_column: str = "stimulus_id",
                        duplicate_ids: str = "error") -> xr.Dataset:
    """The stimulus contract of a table; ``duplicate_ids: drop`` leaves out every row whose id is
    not unique (two senses of one word in a norms table), with a warning, instead of an error."""
    path = Path(path)
    table = read_text_table(path)
    for column in (id_column, content_column, *condition_columns):
        if column not in table.columns:
            raise StimulusError(f"{path}: missing column '{column}' (columns: {list(table.columns)})")
    if len(table) == 0:
        raise StimulusError(f"{path}: no stimuli")
    ids = table[id_column].str.strip()
    if (ids == "").any():
        raise StimulusError(f"{path}: empty {id_column} in row(s) {(np.flatnonzero(ids == '') + 2).tolist()}")
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated) and duplicate_ids == "drop":
        import warnings

        keep = ~ids.isin(duplicated).to_numpy()
        warnings.warn(f"{path}: {int((~keep).sum())} rows with a duplicated {id_column} left out "
                      f"({list(duplicated[:5])})", stacklevel=2)
        table, ids = table[keep].reset_index(drop=True), ids[keep].reset_index(drop=True)
    elif len(duplicated):
        raise StimulusError(f"{path}: duplicated {id_column} {list(duplicated[:5])} (give duplicate_ids: drop to "
                            "leave those rows out)")
    content = table[content_column]
    if (content.str.strip() == "").any():
        bad = list(ids[content.str.strip() == ""][:5])
        raise StimulusError(f"{path}: empty '{content_column}' for stimulus_id {bad}")
    if modality == "image":
        content = content.map(lambda p: str((path.parent / p).resolve()) if not Path(p).is_absolute() else p)
    coords = {
        "stimulus_id": ("stimulus", ids.to_numpy(dtype=str)),
        "modality": ("stimulus", np.full(len(table), modality)),
        "content": ("stimulus", content.to_numpy(dtype=str)),
    }
    for column in condition_columns:
        coords[column] = ("stimulus", table[column].to_numpy(dtype=str))
    ds = xr.Dataset(coords=coords)
    ds.attrs.update({"source_file": str(path), "content_column": content_column,
                     "condition_columns": ",".join(condition_columns)})
    return ds


def align_to(data: xr.DataArray | xr.Dataset, stimulus_ids, what: str = "data", subset: bool = False):
    """Reorder ``data`` (with a ``stimulus_id`` coordinate on ``stimulus``) to
    ``stimulus_ids``. A missing or extra id is an error naming ``what``; with ``subset=True``
    ``stimulus_ids`` may be a subset of ``data``'s (brain data that covers only some stimuli of
    its set, e.g. ``responses_table``'s ``min_coverage``), and the other rows are dropped."""
    have = data["stimulus_id"].values.astype(str)
    want = np.asarray(stimulus_ids, dtype=str)
    missing = np.setdiff1d(want, have)
    extra = np.setdiff1d(have, want) if not subset else np.zeros(0, dtype=str)
    if len(missing) or len(extra):
        raise StimulusError(
            f"{what}: stimulus ids do not match the stimulus set "
            f"({len(missing)} missing, e.g. {missing[:3].tolist()}; {len(extra)} unknown, e.g. {extra[:3].tolist()})")
    if len(np.unique(have)) != len(have):
        raise StimulusError(f"{what}: duplicated stimulus_id")
    order = pd.Index(have).get_indexer(want)
    return data.isel(stimulus=order)


def images_from_mat(name: str, images: dict, stimulus_ids, out_dir, base_dir=None) -> list[str]:
    """Write the images stored in a .mat struct array (one element per stimulus, in the
    table's row order) as PNG files ``out_dir/<stimulus_id>.png``; return their paths.

    ``images`` is the stimulus set's ``images`` entry: ``path`` (with optional ``url``
    and ``sha256``: downloaded once and checked), ``variable`` and ``field``. The folder
    is filled under a temporary name and renamed when complete.
    """
    import shutil
    import tempfile

    import scipy.io as sio
    from PIL import Image

    from .sources import resolve_file

    key = f"stimuli.{name}.images"
    path = resolve_file(images["path"], url=images.get("url"), sha256=images.get("sha256"), key=key,
                        base_dir=base_dir)
    variable, field = images.get("variable", "stimuli"), images.get("field", "image")
    content = sio.loadmat(path, variable_names=[variable])
    if variable not in content:
        raise StimulusError(f"config key '{key}.variable': {path} has no variable '{variable}'")
    array = np.asarray(content[variable]).ravel()
    if array.dtype.names is None or field not in array.dtype.names:
        raise StimulusError(f"config key '{key}.field': '{variable}' in {path} has no field '{field}' "
                            f"(fields: {list(array.dtype.names or [])})")
    if len(array) != len(stimulus_ids):
        raise StimulusError(f"{path}: '{variable}' holds {len(array)} images but the stimulus table has "
                            f"{len(stimulus_ids)} rows")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for sid, element in zip(stimulus_ids, array):
            pixels = np.asarray(element[field])
            if pixels.dtype != np.uint8:
                pixels = np.clip(np.round(pixels * (255 if pixels.max() <= 1 else 1)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp / f"{sid}.png")
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [str((out_dir / f"{sid}.png").resolve()) for sid in stimulus_ids]


def resolve_path(value, base_dir=None, key: str | None = None) -> Path:
    """A path from config: absolute as given, relative to ``base_dir`` when one is given (else to
    the working directory, the repository root of a run), or ``package:NAME/SUB``, a file inside an
    installed package (:func:`brainalign.sources.package_path`; a missing package or file is an
    error naming ``key``)."""
    from .sources import PACKAGE_PREFIX, package_path

    if str(value).startswith(PACKAGE_PREFIX):
        return package_path(str(value), key)
    path = Path(value)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def stimulus_path(spec: dict, base_dir=None, key: str | None = None) -> Path:
    return resolve_path(spec["path"], base_dir, key)


def read_table_spec(spec: dict, path: Path) -> xr.Dataset:
    """Kind ``table``: one row per stimulus, ids from ``id_column`` (default ``stimulus_id``); with
    ``group_column`` and ``position_column`` the rows are units in context (sentences of passages),
    with ``group`` and ``position`` coords."""
    id_column = spec.get("id_column", "stimulus_id")
    content_column = id_column if "images" in spec else spec.get("content_column", "sentence")
    ds = load_stimulus_table(path, spec.get("modality", "text"), content_column,
                             tuple(spec.get("condition_columns", ["category"])), id_column,
                             spec.get("duplicate_ids", "error"))
    group_column, position_column = spec.get("group_column"), spec.get("position_column")
    if group_column or position_column:
        from .words import grouped_units

        ds = grouped_units(ds, read_text_table(path), path, group_column, position_column)
    return ds


def read_stimulus_table(spec: dict, base_dir=None) -> xr.Dataset:
    """The stimulus contract of a ``stimuli.<name>`` entry, read by its kind's reader
    (:mod:`brainalign.stimulus_kinds`); images from a .mat are named by id."""
    from .stimulus_kinds import stimulus_kind

    return stimulus_kind(spec.get("kind", "table")).read_function()(spec, stimulus_path(spec, base_dir))


def write_stimulus_set(name: str, spec: dict, out_path, base_dir=None):
    """Read ``stimuli.<name>`` (a validated config entry) and write the contract.

    With an ``images`` entry the images come from a .mat file and are written as PNG
    files in a folder beside ``out_path`` (``results/stimuli/<name>/``)."""
    from .io import array_checksum, provenance, write_netcdf

    ds = read_stimulus_table(spec, base_dir)
    if "images" in spec:
        files = images_from_mat(name, spec["images"], ds["stimulus_id"].values.astype(str),
                                Path(out_path).with_suffix(""), base_dir)
        ds = ds.assign_coords(content=("stimulus", np.asarray(files)))
    ds.attrs.update(name=name, checksum=array_checksum(ds["stimulus_id"].values, ds["content"].values))
    return write_netcdf(ds, out_path, attrs=provenance(spec, dataset_checksum=ds.attrs["checksum"]))
