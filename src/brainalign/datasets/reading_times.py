"""``reading_times``: one measure per word (self-paced reading, eye-tracking, any per-word scalar).

The table (CSV, or tab-separated ``.tsv`` / ``.tok``) has one row per word with the columns named
in config: ``word_column``, ``group_column`` (story), ``position_column`` (position in the story)
and ``measures`` (one or more numeric columns, e.g. ``meanItemRT``). Rows join the stimulus words
(a ``words`` stimulus set) on (group, position), and the table's word must equal the stimulus
word at every position: a dropped or inserted word shifts the alignment, which is an error naming
the first mismatching position, before any model runs.

Baseline predictors become stimulus coordinates ``baseline_<name>`` (``baseline`` in config):
``length`` (letters and digits of the word), ``position`` (in the story), ``log_frequency``
(log10 of 1 + a count from a frequency table: ``frequency.path`` with the key and count columns,
keys written as ``key_format`` of the group and position, e.g. ``{group}.{position}.whole``) and
any numeric table column. ``spillover: k`` adds each predictor of the k previous words
(``baseline_<name>_prev<j>``); a story's first words, which have none, take the story's mean.

Responses: ``(stimulus, neuroid)`` with one neuroid per measure (``subject`` = ``readers``,
``roi`` = the measure's column name), optionally log-transformed (``transform: log``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..stimuli import read_text_table, resolve_path
from .contract import BrainDataError


def read_table(name: str, spec: dict, base_dir=None) -> tuple[pd.DataFrame, Path]:
    """The reading-times table with its named columns checked (numeric measures, integer positions)."""
    from ..stimuli import StimulusError

    path = resolve_path(spec["path"], base_dir, f"datasets.{name}.path")
    try:
        table = read_text_table(path)
    except StimulusError as exc:
        raise BrainDataError(f"config key 'datasets.{name}.path': {exc}") from None
    columns = {key: spec.get(key, default) for key, default in
               (("word_column", "word"), ("group_column", "group"), ("position_column", "position"))}
    for key, column in [*columns.items(), *(("measures", m) for m in spec["measures"])]:
        if column not in table.columns:
            raise BrainDataError(f"config key 'datasets.{name}.{key}': {path} has no column '{column}' "
                                 f"(columns: {list(table.columns)})")
    if len(table) == 0:
        raise BrainDataError(f"{path}: no rows")
    out = pd.DataFrame({"word": table[columns["word_column"]].str.strip(),
                        "group": table[columns["group_column"]].str.strip()})
    from ..words import integer_column, numeric_column

    out["position"] = integer_column(table, columns["position_column"], path, BrainDataError)
    for column in [*spec["measures"], *spec.get("baseline_columns", [])]:
        out[column] = numeric_column(table, column, path, BrainDataError)
    duplicated = out.duplicated(["group", "position"], keep=False)
    if duplicated.any():
        first = out[duplicated].iloc[0]
        raise BrainDataError(f"{path}: position {first['position']} appears twice in group '{first['group']}'")
    return out, path


def join_words(table: pd.DataFrame, stimuli: xr.Dataset, path) -> pd.DataFrame:
    """Table rows in the stimulus set's order; an error names the first position (in reading
    order) where the words differ, or a story of the stimulus set without rows. Stories of the
    table that the stimulus set does not have are left out."""
    groups = stimuli["group"].values.astype(str)
    positions = stimuli["position"].values.astype(int)
    words = stimuli["content"].values.astype(str)
    indexed = table.set_index(["group", "position"])
    for group in dict.fromkeys(groups):
        mine = np.flatnonzero(groups == group)
        mine = mine[np.argsort(positions[mine], kind="stable")]
        if group not in indexed.index.get_level_values(0):
            raise BrainDataError(f"{path}: story '{group}' of the stimulus set has no rows (an empty story)")
        have = table[table["group"] == group].sort_values("position")
        expected = words[mine]
        got = have["word"].to_numpy(str)
        got_positions = have["position"].to_numpy(int)
        for k in range(max(len(expected), len(got))):
            if k >= len(got) or k >= len(expected) or got[k] != expected[k] or got_positions[k] != positions[mine[k]]:
                where = int(positions[mine[k]] if k < len(expected) else got_positions[k])
                table_word = str(got[k]) if k < len(got) else "(none)"
                stim_word = str(expected[k]) if k < len(expected) else "(none)"
                raise BrainDataError(
                    f"{path}: story '{group}', position {where}: the table has {table_word!r} where the stimulus "
                    f"words have {stim_word!r} (the first mismatch: a dropped or inserted word shifts the "
                    "alignment from here)")
    # stories of the table that the stimulus set leaves out are not read (a subset of the corpus)
    return indexed.loc[list(zip(groups, positions))].reset_index()


def frequency_counts(name: str, spec: dict, rows: pd.DataFrame, base_dir=None) -> np.ndarray:
    """Counts from the frequency table for every row (key = key_format of group and position)."""
    freq = spec["frequency"]
    path = resolve_path(freq["path"], base_dir, f"datasets.{name}.baseline.frequency.path")
    if not path.is_file():
        raise BrainDataError(f"config key 'datasets.{name}.baseline.frequency.path': file not found: {path}")
    header = 0 if freq.get("header", False) else None
    table = pd.read_csv(path, sep="\t" if path.suffix.lower() in (".tsv", ".tok") else ",", header=header,
                        dtype=str, keep_default_na=False)
    key_column, count_column = freq.get("key_column", 0), freq.get("count_column", 1)
    for key in ("key_column", "count_column"):
        column = freq.get(key, 0 if key == "key_column" else 1)
        if column not in table.columns:
            raise BrainDataError(f"config key 'datasets.{name}.baseline.frequency.{key}': {path} has no column "
                                 f"{column!r} (columns: {list(table.columns)})")
    counts = pd.to_numeric(table[count_column], errors="coerce")
    lookup = pd.Series(counts.to_numpy(float), index=table[key_column].str.strip())
    lookup = lookup[~lookup.index.duplicated()]
    keys = [freq.get("key_format", "{group}.{position}").format(group=g, position=p, word=w)
            for g, p, w in zip(rows["group"], rows["position"], rows["word"])]
    found = lookup.reindex(keys).to_numpy(float)
    if np.isnan(found).all():
        raise BrainDataError(f"config key 'datasets.{name}.baseline.frequency.key_format': no key such as "
                             f"{keys[0]!r} in column {key_column!r} of {path}")
    return found


def baseline_predictors(name: str, spec: dict, rows: pd.DataFrame, base_dir=None) -> dict[str, np.ndarray]:
    """``baseline_<name>`` arrays (one value per row), spillover included."""
    wanted = spec.get("baseline", {})
    out: dict[str, np.ndarray] = {}
    if wanted.get("length", True):
        out["length"] = rows["word"].map(lambda w: sum(c.isalnum() for c in w)).to_numpy(float)
    if wanted.get("position", True):
        out["position"] = rows["position"].to_numpy(float)
    if "frequency" in wanted:
        counts = frequency_counts(name, wanted, rows, base_dir)
        with np.errstate(invalid="ignore"):
            logf = np.log10(1.0 + counts)
        out["log_frequency"] = np.where(np.isfinite(logf), logf, np.nanmin(logf))  # unseen: the rarest
    for column in spec.get("baseline_columns", []):
        out[column] = rows[column].to_numpy(float)
    groups = rows["group"].to_numpy(str)
    for k in range(1, int(spec.get("spillover", 0)) + 1):
        for key in list(out):
            if "_prev" in key or key == "position":
                continue
            shifted = pd.Series(out[key]).groupby(groups).shift(k)
            fill = pd.Series(out[key]).groupby(groups).transform("mean")
            out[f"{key}_prev{k}"] = shifted.fillna(fill).to_numpy(float)
    return out


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, **_) -> xr.Dataset:
    from ..words import is_word_set

    if not is_word_set(stimuli):
        raise BrainDataError(f"config key 'datasets.{name}.stimuli': reading times need a words stimulus set "
                             "(kind words, with group and position)")
    table, path = read_table(name, spec, base_dir)
    rows = join_words(table, stimuli, path)
    measures = list(spec["measures"])
    values = rows[measures].to_numpy(float)
    if spec.get("transform", "none") == "log":
        if (values <= 0).any():
            raise BrainDataError(f"config key 'datasets.{name}.transform': log of non-positive values in {path}")
        values = np.log(values)
    coords = {"stimulus_id": ("stimulus", stimuli["stimulus_id"].values.astype(str)),
              "group": ("stimulus", rows["group"].to_numpy(str)),
              "position": ("stimulus", rows["position"].to_numpy(np.int64)),
              "subject": ("neuroid", np.full(len(measures), spec.get("subject", "readers"))),
              "roi": ("neuroid", np.asarray(measures, dtype=str))}
    for key, array in baseline_predictors(name, spec, rows, base_dir).items():
        coords[f"baseline_{key}"] = ("stimulus", array)
    brain = xr.Dataset({"responses": (("stimulus", "neuroid"), values)}, coords=coords)
    brain["responses"] = brain["responses"].expand_dims(repetition=1, axis=-1)
    from ..io import file_checksum

    brain.attrs.update({"source_file": str(path), "dataset_checksum": file_checksum(path),
                        "measures": ",".join(measures), "transform": spec.get("transform", "none"),
                        "spillover": int(spec.get("spillover", 0)),
                        "baseline": ",".join(k for k in coords if k.startswith("baseline_"))})
    return brain


def check(key: str, entry: dict, base_dir, config: dict) -> None:
    """Validation (before any job): the table loads, every named column exists and is numeric, and
    its words match the stimulus words position by position (the first mismatch is named)."""
    from ..config.schema import ConfigError
    from ..errors import UserInputError
    from ..stimuli import read_stimulus_table

    name = key.split(".", 1)[1]
    stim = config["stimuli"].get(entry["stimuli"])
    if stim is None:
        return  # named by the generic check of datasets.<name>.stimuli
    try:
        stimuli = read_stimulus_table(stim, base_dir)
        from ..words import is_word_set

        if not is_word_set(stimuli):
            raise BrainDataError(f"config key '{key}.stimuli': reading times need a words stimulus set "
                                 f"(stimuli.{entry['stimuli']}.kind: words)")
        table, path = read_table(name, entry, base_dir)
        rows = join_words(table, stimuli, path)
        baseline_predictors(name, entry, rows, base_dir)
    except UserInputError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("config key") else f"config key '{key}': {message}") from None
