"""Human judgements of word pairs (similarity or relatedness ratings: SimLex-999, MEN, WordSim-353).

A pairs table (CSV, or tab-separated ``.tsv``) has a column for each word of a pair
(``word1`` / ``word2`` by default) and, for the ratings, a numeric column (``similarity`` by
default); whole lines starting with ``#`` are comments (``# IRR .72`` gives the inter-rater
reliability). The files of the ``subs2vec`` package (``package:subs2vec/datasets/similarities/...``)
have this layout.

- Stimulus kind ``word_pairs`` (:func:`read_word_pairs_spec`): one stimulus per distinct word,
  in order of first appearance (``word1`` before ``word2`` on each line); ``stimulus_id`` and
  ``content`` are the word, modality ``text``. ``lowercase: true`` lowercases the words first.
- Dataset kind ``word_similarity`` (:mod:`brainalign.datasets.word_similarity`) reads the same
  file into an RDM of the ratings; the metric ``word_similarity`` (:mod:`brainalign.jobs.word_similarity`)
  scores a layer's cosine similarities against it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .stimuli import StimulusError, read_text_table

#: ``# IRR .72`` (subs2vec's files), ``# ... interrater Spearman rho = .53``.
RELIABILITY = (re.compile(r"^\s*IRR\s*[:=]?\s*(-?\d*\.\d+|-?\d+)\b", re.IGNORECASE),
               re.compile(r"inter-?rater\b[^=\d]*=\s*(-?\d*\.\d+|-?\d+)\b", re.IGNORECASE))


def reliability_from_comments(comments) -> tuple[float, str] | None:
    """The inter-rater reliability a file's comment lines report (``IRR .72``) and that comment, or None."""
    for comment in comments:
        for pattern in RELIABILITY:
            found = pattern.search(comment)
            if found:
                return float(found.group(1)), comment
    return None


def read_pairs(path, *, word1_column: str = "word1", word2_column: str = "word2",
               rating_column: str | None = None, lowercase: bool = False, error=StimulusError,
               key: str | None = None) -> pd.DataFrame:
    """The pairs of a pairs table: columns ``word1``, ``word2``, ``line`` (the line in the file) and,
    with ``rating_column``, ``rating`` (a float; a value that is not a number is an ``error`` naming
    the file, the line and ``key``). ``attrs["comments"]`` holds the comment lines. Words are
    stripped of surrounding whitespace (and lowercased with ``lowercase``); an empty word is an error."""
    path = Path(path)
    where = f"config key '{key}': " if key else ""
    try:
        table = read_text_table(path, comments=True)
    except StimulusError as exc:
        raise error(f"{where}{exc}") from None
    columns = {"word1_column": word1_column, "word2_column": word2_column}
    if rating_column is not None:
        columns["rating_column"] = rating_column
    for setting, column in columns.items():
        if column not in table.columns:
            raise error(f"{where}{path} has no column '{column}' (columns: {list(table.columns)}; "
                        f"set {setting})")
    if len(table) == 0:
        raise error(f"{where}{path}: no pairs")
    lines = np.asarray(table.attrs["lines"], dtype=np.int64)
    out = pd.DataFrame({"line": lines})
    for name, column in (("word1", word1_column), ("word2", word2_column)):
        words = table[column].str.strip()
        if lowercase:
            words = words.str.lower()
        empty = np.flatnonzero((words == "").to_numpy())
        if len(empty):
            raise error(f"{where}{path}, line {lines[empty[0]]}: empty '{column}'")
        out[name] = words.to_numpy(str)
    if rating_column is not None:
        values = pd.to_numeric(table[rating_column].str.strip(), errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise error(f"{where}{path}, line {lines[bad[0]]}: rating '{rating_column}' is not a number "
                        f"({table[rating_column].iloc[bad[0]]!r})")
        out["rating"] = values
    out.attrs["comments"] = list(table.attrs["comments"])
    return out


def pair_words(pairs: pd.DataFrame) -> list[str]:
    """The distinct words of the pairs, in order of first appearance (word1 before word2 on a line)."""
    return list(dict.fromkeys(np.column_stack([pairs["word1"], pairs["word2"]]).ravel().tolist()))


def word_stimuli_from_pairs(path, *, word1_column: str = "word1", word2_column: str = "word2",
                            lowercase: bool = False) -> xr.Dataset:
    """The stimulus contract of a pairs table: one stimulus per distinct word."""
    pairs = read_pairs(path, word1_column=word1_column, word2_column=word2_column, lowercase=lowercase)
    words = np.asarray(pair_words(pairs), dtype=str)
    ds = xr.Dataset(coords={"stimulus_id": ("stimulus", words),
                            "modality": ("stimulus", np.full(len(words), "text")),
                            "content": ("stimulus", words)})
    ds.attrs.update({"source_file": str(path), "content_column": "word", "unit": "word",
                     "condition_columns": "", "n_pairs": len(pairs), "lowercase": int(lowercase)})
    return ds


def read_word_pairs_spec(spec: dict, path: Path) -> xr.Dataset:
    """Kind ``word_pairs``: the distinct words of a pairs table (``word1_column``, ``word2_column``,
    ``lowercase``)."""
    return word_stimuli_from_pairs(path, word1_column=spec.get("word1_column", "word1"),
                                   word2_column=spec.get("word2_column", "word2"),
                                   lowercase=bool(spec.get("lowercase", False)))
