"""``labels``: columns of the stimulus set itself, as targets of a probe.

A label set is a column of the stimulus table (a condition column such as ``category``):
``categorical`` columns become class codes (classes sorted by name), ``continuous`` columns numbers.
Each column is one neuroid whose ``roi`` is the column name, ``subject`` is ``labels`` and
``label_type`` says which it is; the class names are the attr ``classes_<column>`` (JSON).
``groups`` names a stimulus column that keeps stimuli together in cross-validation (a lemma, a word
type: a word never in train and test in two forms); it is stored as the stimulus coordinate ``group``.

Checked before any job: the column exists; no label is empty or NaN; a categorical column has at
least two classes; a continuous column is numeric and varies.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from .contract import BrainDataError


def _column(name: str, key: str, stimuli: xr.Dataset, column: str) -> np.ndarray:
    if column not in stimuli.coords or stimuli[column].dims != ("stimulus",):
        known = [c for c in stimuli.coords if stimuli[c].dims == ("stimulus",) and c != "stimulus_id"]
        raise BrainDataError(f"config key 'datasets.{name}.{key}': the stimulus set has no column '{column}' "
                             f"(columns: {known}; list it in the stimulus set's condition_columns)")
    values = pd.Series(stimuli[column].values)
    text = values.astype(str).str.strip()
    empty = values.isna().to_numpy() | text.isin(["", "nan", "NaN", "None"]).to_numpy()
    if empty.any():
        ids = stimuli["stimulus_id"].values.astype(str)[empty][:5].tolist()
        raise BrainDataError(f"config key 'datasets.{name}.{key}': column '{column}' has {int(empty.sum())} empty or "
                             f"NaN labels (stimuli {ids}); give every stimulus a label or drop those rows")
    return values.to_numpy()


def categorical_codes(name: str, stimuli: xr.Dataset, column: str) -> tuple[np.ndarray, list[str]]:
    values = _column(name, "categorical", stimuli, column).astype(str)
    classes, codes = np.unique(np.char.strip(values), return_inverse=True)
    if len(classes) < 2:
        raise BrainDataError(f"config key 'datasets.{name}.categorical': column '{column}' has one class "
                             f"('{classes[0]}'); a probe needs at least two")
    return codes.astype(np.float64), classes.tolist()


def continuous_values(name: str, stimuli: xr.Dataset, column: str) -> np.ndarray:
    values = pd.to_numeric(pd.Series(_column(name, "continuous", stimuli, column)), errors="coerce").to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        ids = stimuli["stimulus_id"].values.astype(str)[bad][:5].tolist()
        raise BrainDataError(f"config key 'datasets.{name}.continuous': column '{column}' is not numeric for "
                             f"{int(bad.sum())} stimuli (e.g. {ids})")
    if np.ptp(values) == 0:
        raise BrainDataError(f"config key 'datasets.{name}.continuous': column '{column}' is constant "
                             f"({values[0]:g}); a probe needs values that vary")
    return values


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, **_) -> xr.Dataset:
    categorical, continuous = list(spec.get("categorical", [])), list(spec.get("continuous", []))
    if not categorical and not continuous:
        raise BrainDataError(f"config key 'datasets.{name}': name at least one column under 'categorical' "
                             "or 'continuous'")
    columns, kinds, attrs = [], [], {}
    for column in categorical:
        codes, classes = categorical_codes(name, stimuli, column)
        columns.append(codes)
        kinds.append("categorical")
        attrs[f"classes_{column}"] = json.dumps(classes)
    for column in continuous:
        columns.append(continuous_values(name, stimuli, column))
        kinds.append("continuous")
    names = categorical + continuous
    coords = {"stimulus_id": ("stimulus", stimuli["stimulus_id"].values.astype(str)),
              "subject": ("neuroid", np.full(len(names), "labels")),
              "roi": ("neuroid", np.asarray(names, dtype=str)),
              "column": ("neuroid", np.asarray(names, dtype=str)),
              "label_type": ("neuroid", np.asarray(kinds, dtype=str))}
    if spec.get("groups"):
        coords["group"] = ("stimulus", np.asarray(_column(name, "groups", stimuli, spec["groups"])).astype(str))
    brain = xr.Dataset({"responses": (("stimulus", "neuroid", "repetition"), np.stack(columns, 1)[:, :, None])},
                       coords=coords)
    brain.attrs.update(attrs, labels=",".join(names), stimulus_file=str(stimuli.attrs.get("source_file", "")),
                       groups=spec.get("groups") or "")
    return brain


def check(key: str, entry: dict, base_dir, config: dict) -> None:
    """Validation (before any job): the columns exist and hold usable labels."""
    from .contract import validate_entry

    validate_entry(key, entry, base_dir, config, load)
