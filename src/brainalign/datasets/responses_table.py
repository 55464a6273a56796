"""``responses_table``: one response per stimulus and target, read from a table.

For data that come as one number per stimulus: a response averaged over an ROI and over subjects
(Pereira et al. 2018's sentences as Brain-Score's language benchmarks use them), a rating, any
per-stimulus measure, feature norms of words (Binder et al. 2016's 65 features, concreteness). The
table (CSV, or tab-separated ``.tsv`` / ``.tok``) has one row per stimulus; ``targets`` names its
numeric columns, one neuroid each, or is ``numeric``: every column whose values are all numbers,
except the join column and those in ``exclude_columns`` (a column of numbers with a few values that
are not is an error naming it). Rows join the stimulus set by ``id_column`` (equal to
``stimulus_id``) or by ``text_column`` (equal to the stimulus text, both stripped of surrounding
whitespace); rows of stimuli the set leaves out are not read.

Coverage: by default every stimulus needs exactly one row (``min_coverage: 1``). With
``min_coverage`` below 1, stimuli without a row are dropped from the brain data (with a warning
giving their number; attribute ``n_stimuli_dropped``) as long as the covered fraction is at least
``min_coverage``; below it, the error names the file, the key, the number of stimuli without a row
and a few of them. Metrics then score the covered stimuli only.

Responses: ``(stimulus, neuroid, repetition)`` with one repetition, ``subject`` = ``subject``
(default ``average``), ``roi`` = ``roi`` (one name for every target, or one per target; default the
target's column name) and ``column`` = the target's column.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..stimuli import StimulusError, read_text_table, resolve_path
from ..words import numeric_column
from .contract import BrainDataError

JOIN_KEYS = ("id_column", "text_column")


def join_key(name: str, spec: dict) -> str:
    """``id_column`` or ``text_column``: the one the entry gives."""
    given = [k for k in JOIN_KEYS if spec.get(k) is not None]
    if len(given) != 1:
        raise BrainDataError(f"config key 'datasets.{name}': give either id_column (rows joined on stimulus_id) "
                             "or text_column (rows joined on the stimulus text)" + (", not both" if given else ""))
    return given[0]


def target_rois(name: str, spec: dict, targets: list[str] | None = None) -> list[str]:
    """The ROI of each target: ``roi`` (one name, or one per target) or the target's column name
    (``targets``: the target columns, when ``targets: numeric`` chose them from the table)."""
    targets, roi = list(spec["targets"] if targets is None else targets), spec.get("roi")
    if roi is None:
        return targets
    rois = [roi] * len(targets) if isinstance(roi, str) else list(roi)
    if len(rois) != len(targets):
        raise BrainDataError(f"config key 'datasets.{name}.roi': {len(rois)} names for {len(targets)} targets "
                             f"{targets}; give one name, or one per target")
    return rois


def numeric_targets(name: str, spec: dict, table: pd.DataFrame, path, join_column: str) -> list[str]:
    """``targets: numeric``: every column whose values are all numbers, except the join column and
    ``exclude_columns``; a column of numbers with some values that are not is an error naming it."""
    key = f"config key 'datasets.{name}"
    exclude = list(spec.get("exclude_columns", []))
    unknown = [c for c in exclude if c not in table.columns]
    if unknown:
        raise BrainDataError(f"{key}.exclude_columns': {path} has no column {unknown} (columns: {list(table.columns)})")
    targets = []
    for column in table.columns:
        if column == join_column or column in exclude:
            continue
        values = pd.to_numeric(table[column].str.strip(), errors="coerce").to_numpy(np.float64)
        number = np.isfinite(values)
        if number.all():
            targets.append(column)
        elif number.any():
            bad = int(np.flatnonzero(~number)[0])
            raise BrainDataError(f"{key}.targets': numeric: {path}, line {bad + 2}: column '{column}' holds numbers "
                                 f"and {table[column].iloc[bad]!r}; fix the value or list the column in "
                                 f"datasets.{name}.exclude_columns")
    if not targets:
        raise BrainDataError(f"{key}.targets': numeric: {path} has no numeric column besides '{join_column}' and "
                             f"exclude_columns {exclude} (columns: {list(table.columns)})")
    return targets


def read_rows(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None
              ) -> tuple[np.ndarray, Path, list[str], np.ndarray]:
    """The targets' values, (covered stimulus, target) in the stimulus set's order, the table's path,
    the target columns and the positions in the stimulus set of the covered stimuli."""
    key = f"config key 'datasets.{name}"
    path = resolve_path(spec["path"], base_dir, f"datasets.{name}.path")
    try:
        table = read_text_table(path)
    except StimulusError as exc:
        raise BrainDataError(f"{key}.path': {exc}") from None
    how = join_key(name, spec)
    column = spec[how]
    if column not in table.columns:
        raise BrainDataError(f"{key}.{how}': {path} has no column '{column}' (columns: {list(table.columns)})")
    targets = (numeric_targets(name, spec, table, path, column) if spec["targets"] == "numeric"
               else list(spec["targets"]))
    for setting, wanted in [(how, column), *(("targets", t) for t in targets)]:
        if wanted not in table.columns:
            raise BrainDataError(f"{key}.{setting}': {path} has no column '{wanted}' (columns: {list(table.columns)})")
    if len(table) == 0:
        raise BrainDataError(f"{key}.path': {path} has no rows")
    values = np.column_stack([numeric_column(table, t, path, lambda m: BrainDataError(f"{key}.targets': {m}"))
                              for t in targets])
    keys = table[column].str.strip()
    ids = stimuli["stimulus_id"].values.astype(str)
    if how == "id_column":
        wanted = ids
    else:
        wanted = np.char.strip(stimuli["content"].values.astype(str))
        twice = pd.Series(wanted).duplicated(keep=False).to_numpy()
        if twice.any():
            same = ids[wanted == wanted[twice][0]]
            raise BrainDataError(f"{key}.text_column': stimuli {same.tolist()} of stimulus set '{spec['stimuli']}' "
                                 "have the same text; join the rows by id_column instead")
    repeated = keys[keys.duplicated() & keys.isin(wanted)]  # rows of stimuli the set leaves out are not read
    if len(repeated):
        lines = (np.flatnonzero((keys == repeated.iloc[0]).to_numpy()) + 2).tolist()
        raise BrainDataError(f"{key}.{how}': {path}, lines {lines}: '{column}' value {repeated.iloc[0]!r} appears "
                             f"more than once (one row per stimulus)")
    unique = ~keys.duplicated(keep=False).to_numpy()  # repeated keys belong to no wanted stimulus
    rows = np.full(len(wanted), -1)
    found = pd.Index(keys[unique]).get_indexer(wanted)
    rows[found >= 0] = np.flatnonzero(unique)[found[found >= 0]]
    missing = np.flatnonzero(rows < 0)
    if len(missing):
        examples = ", ".join(f"'{ids[i]}'" + ("" if how == "id_column" else f" ({wanted[i][:60]!r})")
                             for i in missing[:3])
        message = (f"{path} has no row for {len(missing)} of the {len(ids)} stimuli of stimulus set "
                   f"'{spec['stimuli']}' (column '{column}'; e.g. {examples})")
        covered, least = 1 - len(missing) / len(ids), float(spec.get("min_coverage", 1.0))
        if covered < least:
            raise BrainDataError(f"{key}.{how}': {message}" + (
                f": {covered:.1%} covered, below datasets.{name}.min_coverage = {least:g}" if least < 1 else ""))
        warnings.warn(f"dataset '{name}': {message}; dropped them ({covered:.1%} covered, min_coverage {least:g})",
                      stacklevel=2)
    keep = np.flatnonzero(rows >= 0)
    return values[rows[keep]], path, targets, keep


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, **_) -> xr.Dataset:
    from ..io import file_checksum

    values, path, targets, keep = read_rows(name, spec, stimuli, base_dir)
    how = join_key(name, spec)
    brain = xr.Dataset(
        {"responses": (("stimulus", "neuroid"), values)},
        coords={"stimulus_id": ("stimulus", stimuli["stimulus_id"].values.astype(str)[keep]),
                "subject": ("neuroid", np.full(len(targets), spec.get("subject", "average"))),
                "roi": ("neuroid", np.asarray(target_rois(name, spec, targets), dtype=str)),
                "column": ("neuroid", np.asarray(targets, dtype=str))})
    brain["responses"] = brain["responses"].expand_dims(repetition=1, axis=-1)
    brain.attrs.update({"source_file": str(path), "dataset_checksum": file_checksum(path),
                        "targets": ",".join(targets), "join": f"{how}: {spec[how]}",
                        "n_stimuli_dropped": int(stimuli.sizes["stimulus"] - len(keep))})
    return brain


def check(key: str, entry: dict, base_dir, config: dict) -> None:
    """Validation (before any job): the table loads, the join column and every target exist, the
    targets are numbers, each stimulus has exactly one row (or enough of them have one:
    ``min_coverage``), and the responses meet the contract."""
    from .contract import validate_entry

    validate_entry(key, entry, base_dir, config, load)
