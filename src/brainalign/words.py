"""Word stimulus sets: one stimulus per word, in order, grouped into stories or passages.

The stimulus contract (:mod:`brainalign.stimuli`) gains four coordinates on ``stimulus``:
``group`` (the story, passage or sentence a word belongs to), ``position`` (its 1-based
place in the group), and ``onset`` / ``offset`` (seconds; NaN where the source has no
timing). ``content`` is the word as the source writes it (punctuation attached), and
``stimulus_id`` is ``<group>.<position>`` unless the table has its own ids. Rows are
sorted by group (in order of first appearance) and position.

Sources:

- a table (CSV, TSV or whitespace-separated ``.tok``), one row per word, with the word,
  group and position columns named in config (``onset`` / ``offset`` columns optional);
- a Praat TextGrid (one interval tier of words; silences such as ``sp`` dropped), one
  group per file.

:func:`group_texts` lays each group out as one string, the words joined by single spaces,
with every word's character span: what a tokenizer's offset mapping is matched against.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .stimuli import StimulusError, read_text_table

SILENCES = ("", "sp", "sil", "<sil>", "{sil}", "#")


def integer_column(table: pd.DataFrame, column: str, path, error=StimulusError) -> pd.Series:
    """A table column as integers; a value that is not one is an ``error`` naming the file and line."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() | (values % 1 != 0).to_numpy())
    if len(bad):
        raise error(f"{path}, line {bad[0] + 2}: '{column}' is not an integer ({table[column].iloc[bad[0]]!r})")
    return values.astype(int)


def numeric_column(table: pd.DataFrame, column: str, path, error=StimulusError) -> np.ndarray:
    """A table column as finite floats; a value that is not one is an ``error`` naming the file and line."""
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise error(f"{path}, line {bad[0] + 2}: '{column}' is not a number ({table[column].iloc[bad[0]]!r})")
    return values


def load_word_table(path, *, word_column: str = "word", group_column: str = "group",
                    position_column: str = "position", id_column: str | None = None,
                    onset_column: str | None = None, offset_column: str | None = None,
                    condition_columns=()) -> xr.Dataset:
    """A table with one row per word as the stimulus contract (see the module docstring)."""
    path = Path(path)
    table = read_text_table(path)
    wanted = [word_column, group_column, position_column, *(c for c in (id_column, onset_column, offset_column) if c),
              *condition_columns]
    for column in wanted:
        if column not in table.columns:
            raise StimulusError(f"{path}: missing column '{column}' (columns: {list(table.columns)})")
    if len(table) == 0:
        raise StimulusError(f"{path}: no words")
    position = integer_column(table, position_column, path)
    words = table[word_column].str.strip()
    empty = np.flatnonzero((words == "").to_numpy())
    if len(empty):
        raise StimulusError(f"{path}, line {empty[0] + 2}: empty '{word_column}'")
    if words.str.contains(r"\s").any():
        line = int(np.flatnonzero(words.str.contains(r"\s").to_numpy())[0]) + 2
        raise StimulusError(f"{path}, line {line}: the word {words.iloc[line - 2]!r} holds whitespace; one word a row")
    groups = table[group_column].str.strip()
    times = {}
    for name, column in (("onset", onset_column), ("offset", offset_column)):
        if column:
            values = pd.to_numeric(table[column], errors="coerce")
            if values.isna().any():
                line = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
                raise StimulusError(f"{path}, line {line}: '{column}' is not a number ({table[column].iloc[line - 2]!r})")
            times[name] = values.to_numpy(float)
    frame = pd.DataFrame({"word": words, "group": groups, "position": position,
                          "onset": times.get("onset", np.nan), "offset": times.get("offset", np.nan)})
    for column in condition_columns:
        frame[column] = table[column].to_numpy(str)
    frame["stimulus_id"] = (table[id_column].str.strip() if id_column
                            else frame["group"] + "." + frame["position"].astype(str))
    return word_stimuli(frame, str(path), condition_columns)


def read_textgrid(path, tier: str = "word", group: str | None = None) -> pd.DataFrame:
    """The words of one interval tier of a Praat TextGrid (long text format) with their onsets
    and offsets (s), silences dropped; ``group`` defaults to the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise StimulusError(f"TextGrid not found: {path}")
    text = path.read_text(encoding="utf-8", errors="strict") if path.read_bytes()[:2] not in (b"\xff\xfe", b"\xfe\xff") \
        else path.read_text(encoding="utf-16")
    tiers = re.split(r"\n\s*item \[\d+\]:\s*\n", text)[1:]
    names = [re.search(r'name = "(.*)"', t).group(1) if re.search(r'name = "(.*)"', t) else "" for t in tiers]
    if tier not in names:
        raise StimulusError(f"{path}: no tier '{tier}' (tiers: {names})")
    body = tiers[names.index(tier)]
    intervals = re.findall(r'xmin = ([-\d.eE+]+)\s*\n\s*xmax = ([-\d.eE+]+)\s*\n\s*text = "((?:[^"]|"")*)"', body)
    rows = [(float(a), float(b), t.replace('""', '"').strip()) for a, b, t in intervals]
    rows = [r for r in rows if r[2].lower() not in SILENCES]
    if not rows:
        raise StimulusError(f"{path}: tier '{tier}' has no words")
    group = group or path.stem
    return pd.DataFrame({"word": [r[2] for r in rows], "group": group, "position": np.arange(1, len(rows) + 1),
                         "onset": [r[0] for r in rows], "offset": [r[1] for r in rows]})


def load_textgrid(path, tier: str = "word", group: str | None = None) -> xr.Dataset:
    frame = read_textgrid(path, tier, group)
    frame["stimulus_id"] = frame["group"] + "." + frame["position"].astype(str)
    return word_stimuli(frame, str(path), ())


def word_stimuli(frame: pd.DataFrame, source: str, condition_columns=()) -> xr.Dataset:
    """Words (columns ``stimulus_id, word, group, position, onset, offset``) as the stimulus
    contract, sorted by group (first appearance) and position; duplicates are errors."""
    duplicated = frame[frame.duplicated(["group", "position"], keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise StimulusError(f"{source}: position {first['position']} appears twice in group '{first['group']}'")
    ids = frame["stimulus_id"]
    if ids.duplicated().any():
        raise StimulusError(f"{source}: duplicated stimulus_id {list(ids[ids.duplicated()].unique()[:5])}")
    order = {g: i for i, g in enumerate(dict.fromkeys(frame["group"]))}
    frame = frame.assign(_g=frame["group"].map(order)).sort_values(["_g", "position"], kind="stable")
    coords = {
        "stimulus_id": ("stimulus", frame["stimulus_id"].to_numpy(str)),
        "modality": ("stimulus", np.full(len(frame), "text")),
        "content": ("stimulus", frame["word"].to_numpy(str)),
        "group": ("stimulus", frame["group"].to_numpy(str)),
        "position": ("stimulus", frame["position"].to_numpy(np.int64)),
        "onset": ("stimulus", frame["onset"].to_numpy(float)),
        "offset": ("stimulus", frame["offset"].to_numpy(float)),
    }
    for column in condition_columns:
        coords[column] = ("stimulus", frame[column].to_numpy(str))
    ds = xr.Dataset(coords=coords)
    ds.attrs.update({"source_file": source, "content_column": "word", "unit": "word",
                     "condition_columns": ",".join(condition_columns)})
    return ds


def read_words_spec(spec: dict, path: Path) -> xr.Dataset:
    """Kind ``words``: a table with one row per word (column names from config)."""
    return load_word_table(path, word_column=spec.get("word_column", "word"),
                           group_column=spec.get("group_column", "group"),
                           position_column=spec.get("position_column", "position"),
                           id_column=spec.get("id_column"), onset_column=spec.get("onset_column"),
                           offset_column=spec.get("offset_column"),
                           condition_columns=tuple(spec.get("condition_columns", [])))


def read_textgrid_spec(spec: dict, path: Path) -> xr.Dataset:
    """Kind ``textgrid``: the words of tier ``tier`` (default ``word``) of a Praat TextGrid."""
    return load_textgrid(path, spec.get("tier", "word"), spec.get("group"))


def grouped_units(ds: xr.Dataset, table: pd.DataFrame, path, group_column: str | None,
                  position_column: str | None) -> xr.Dataset:
    """A stimulus table's rows (sentences) as units in context: ``group`` and ``position``
    coordinates from the named columns (both are needed; positions are unique per group)."""
    if not (group_column and position_column):
        raise StimulusError(f"{path}: units in context need both group_column and position_column")
    for column in (group_column, position_column):
        if column not in table.columns:
            raise StimulusError(f"{path}: missing column '{column}' (columns: {list(table.columns)})")
    position = integer_column(table, position_column, path)
    frame = pd.DataFrame({"group": table[group_column].str.strip(), "position": position})
    duplicated = frame[frame.duplicated(["group", "position"], keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise StimulusError(f"{path}: position {first['position']} appears twice in group '{first['group']}'")
    ds = ds.assign_coords(group=("stimulus", frame["group"].to_numpy(str)),
                          position=("stimulus", frame["position"].to_numpy(np.int64)))
    ds.attrs["unit"] = "sentence"
    return ds


def is_word_set(stimuli: xr.Dataset) -> bool:
    """Units in context: stimuli with ``group`` and ``position`` coordinates."""
    return "group" in stimuli.coords and "position" in stimuli.coords


def group_texts(stimuli: xr.Dataset) -> list[tuple[str, np.ndarray, str, np.ndarray]]:
    """Per group, in order: (group, the words' row indices in ``stimuli``, the text with the words
    joined by single spaces, the (n_words, 2) character spans of the words in that text)."""
    groups = stimuli["group"].values.astype(str)
    words = stimuli["content"].values.astype(str)
    out = []
    positions = stimuli["position"].values
    for group in dict.fromkeys(groups):
        rows = np.flatnonzero(groups == group)
        rows = rows[np.argsort(positions[rows], kind="stable")]
        lengths = np.array([len(words[r]) for r in rows])
        starts = np.concatenate([[0], np.cumsum(lengths[:-1] + 1)])
        spans = np.stack([starts, starts + lengths], axis=1)
        out.append((group, rows, " ".join(words[rows]), spans))
    return out


def sum_token_values(stimuli: xr.Dataset, tokens: pd.DataFrame, *, group_of: dict | None = None,
                     what: str = "token table") -> np.ndarray:
    """Per word (in ``stimuli``'s row order), the sum of a per-token value over the word's tokens,
    given each token's character ``offset`` and ``token`` text in its group's text (the words joined
    by single spaces, :func:`group_texts`) and ``group``; ``group_of`` maps the table's group labels
    to the stimulus groups. A word with a NaN token value is NaN. Tokens are matched to words by
    their characters (:func:`brainalign.models.context.align_tokens`), so a word split oddly or a
    token across two words is found, not guessed."""
    from .models.context import align_tokens

    out = np.full(stimuli.sizes["stimulus"], np.nan)
    labels = tokens["group"].map(group_of) if group_of else tokens["group"].astype(str)
    for group, rows, text, spans in group_texts(stimuli):
        mine = tokens[labels.to_numpy() == group]
        if mine.empty:
            raise StimulusError(f"{what}: no tokens for group '{group}'")
        starts = mine["offset"].to_numpy(np.int64)
        offsets = np.stack([starts, starts + mine["token"].str.len().to_numpy()], axis=1)
        word_of = align_tokens(text, spans, offsets, stimuli["content"].values[rows], f"{what}, group '{group}'")
        values = mine["value"].to_numpy(float)
        sums = np.bincount(word_of, weights=np.nan_to_num(values), minlength=len(rows))
        has_nan = np.bincount(word_of, weights=np.isnan(values).astype(float), minlength=len(rows)) > 0
        out[rows] = np.where(has_nan, np.nan, sums)
    return out
