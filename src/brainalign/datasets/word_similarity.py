"""``word_similarity``: human ratings of word pairs (SimLex-999, MEN, WordSim-353) as an RDM.

The pairs table (:func:`brainalign.word_judgements.read_pairs`: ``word1_column``, ``word2_column``,
``rating_column``, ``#`` comment lines; e.g. ``package:subs2vec/datasets/similarities/en-simlex999.tsv``)
is read against the stimulus set, whose stimuli are matched to the words by their text (``content``;
a ``word_pairs`` stimulus set on the same file has exactly these words). ``lowercase: true`` lowercases
the file's words first.

Returns the brain-RDM contract: ``rdms(subject, roi, stimulus, stimulus_)`` with one subject
(``subject``, default ``raters``) and one ROI (``roi``, default the dataset's name). Entry (i, j) is
the dissimilarity ``scale_max - rating`` of the pair, the same at (j, i); 0 on the diagonal and NaN
at every pair nobody rated. Attributes: ``rating_min`` / ``rating_max`` (the scale: ``scale``, or
the ratings' range), ``reliability`` (the inter-rater reliability: config ``reliability``, else a
``# IRR .72`` comment of the file, else NaN) and where it came from, and the counts of rated pairs,
words and merged or dropped lines.

Errors name the file and the config key: a word the stimulus set lacks, a rating that is not a
number (with its line), a pair rated twice with different ratings (both orders count as one pair;
``duplicates: mean`` averages them instead: SimLex-999 and WordSim-353 have a few), a rating outside
``scale``. A pair of a word with itself (WordSim-353's ``tiger tiger``) is dropped with a warning:
a model's cosine similarity there is 1 whatever the layer.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..stimuli import resolve_path
from ..word_judgements import read_pairs, reliability_from_comments
from .contract import BrainDataError

DUPLICATES = ("error", "mean")
#: The metrics that know the RDM is NaN at unrated pairs.
METRICS = ("word_similarity",)


def read_ratings(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None) -> dict:
    """The rated pairs of ``datasets.<name>`` as stimulus positions ``i < j`` with their (mean) rating,
    plus the file's path, reliability and counts."""
    key = f"datasets.{name}"
    path = resolve_path(spec["path"], base_dir, f"{key}.path")
    rating_column = spec.get("rating_column", "similarity")
    pairs = read_pairs(path, word1_column=spec.get("word1_column", "word1"),
                       word2_column=spec.get("word2_column", "word2"), rating_column=rating_column,
                       lowercase=bool(spec.get("lowercase", False)), error=BrainDataError, key=f"{key}.path")
    comments = pairs.attrs["comments"]
    own = (pairs["word1"] == pairs["word2"]).to_numpy()
    if own.any():
        warnings.warn(f"dataset '{name}': {path}, line(s) {pairs['line'][own].tolist()[:5]}: dropped {int(own.sum())} "
                      "pair(s) of a word with itself (a model's cosine similarity there is 1 whatever the layer)",
                      stacklevel=2)
        pairs = pairs[~own]
    content = np.char.strip(stimuli["content"].values.astype(str))
    twice = pd.Series(content).duplicated()
    if twice.any():
        raise BrainDataError(f"config key '{key}.stimuli': stimulus set '{spec['stimuli']}' has the word "
                             f"{str(content[twice.to_numpy()][0])!r} twice; a word_similarity dataset matches words "
                             "to stimuli by their text")
    index = pd.Index(content)
    i, j = index.get_indexer(pairs["word1"]), index.get_indexer(pairs["word2"])
    missing = pd.unique(np.concatenate([pairs["word1"].to_numpy()[i < 0], pairs["word2"].to_numpy()[j < 0]]))
    if len(missing):
        hint = "" if spec.get("lowercase") else "; lowercase: true if the stimulus set lowercases them"
        raise BrainDataError(f"config key '{key}.path': {len(missing)} word(s) of {path} are not in stimulus set "
                             f"'{spec['stimuli']}' (e.g. {[str(w) for w in missing[:3]]}{hint})")
    frame = pd.DataFrame({"a": np.minimum(i, j), "b": np.maximum(i, j), "rating": pairs["rating"].to_numpy(),
                          "line": pairs["line"].to_numpy()})
    grouped = frame.groupby(["a", "b"], sort=True)
    summary = grouped["rating"].agg(["mean", "min", "max", "size"]).reset_index()
    conflict = summary[summary["max"] > summary["min"]]
    duplicates = spec.get("duplicates", "error")
    if duplicates not in DUPLICATES:
        raise BrainDataError(f"config key '{key}.duplicates': unknown value {duplicates!r} (use {list(DUPLICATES)})")
    if len(conflict) and duplicates == "error":
        first = conflict.iloc[0]
        rows = frame[(frame["a"] == first["a"]) & (frame["b"] == first["b"])]
        pair = (str(content[int(first["a"])]), str(content[int(first["b"])]))
        raise BrainDataError(
            f"config key '{key}.duplicates': {path}, lines {rows['line'].tolist()}: the pair {pair} is rated "
            f"{len(rows)} times with different ratings {rows['rating'].tolist()} ({len(conflict)} such pair(s); "
            "either order is the same pair); give duplicates: mean to average them")
    ratings = summary["mean"].to_numpy(np.float64)
    scale = spec.get("scale")
    low, high = (float(scale[0]), float(scale[1])) if scale else (float(ratings.min()), float(ratings.max()))
    outside = np.flatnonzero((ratings < low) | (ratings > high))
    if len(outside):
        raise BrainDataError(f"config key '{key}.scale': {path}: the rating {ratings[outside[0]]:g} lies outside the "
                             f"scale [{low:g}, {high:g}]")
    given = spec.get("reliability")
    found = reliability_from_comments(comments)
    if given is not None:
        reliability, source = float(given), f"config key {key}.reliability"
    elif found is not None:
        reliability, source = found[0], f"the file's comment '# {found[1]}'"
    else:
        reliability, source = np.nan, "none (no IRR comment in the file, no reliability key)"
    return {"path": path, "a": summary["a"].to_numpy(np.int64), "b": summary["b"].to_numpy(np.int64),
            "rating": ratings, "scale": (low, high), "reliability": reliability, "reliability_source": source,
            "n_lines": int(len(frame) + own.sum()), "n_merged": int((summary["size"] - 1).sum()),
            "n_self_pairs_dropped": int(own.sum()), "rating_column": rating_column}


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, **_) -> xr.Dataset:
    """The brain-RDM contract of ``datasets.<name>`` (see the module docstring)."""
    from ..io import file_checksum

    out = read_ratings(name, spec, stimuli, base_dir)
    n = stimuli.sizes["stimulus"]
    low, high = out["scale"]
    rdm = np.full((n, n), np.nan)
    np.fill_diagonal(rdm, 0.0)
    rdm[out["a"], out["b"]] = rdm[out["b"], out["a"]] = high - out["rating"]
    words = np.union1d(out["a"], out["b"])
    return xr.Dataset(
        {"rdms": (("subject", "roi", "stimulus", "stimulus_"), rdm[None, None])},
        coords={"subject": np.asarray([str(spec.get("subject", "raters"))]),
                "roi": np.asarray([str(spec.get("roi", name))]),
                "stimulus_id": ("stimulus", stimuli["stimulus_id"].values.astype(str))},
        attrs={"distance_measure": f"{high:g} - rating ('{out['rating_column']}'); NaN where unrated",
               "source_file": str(out["path"]), "dataset_checksum": file_checksum(out["path"]), "content": "rdms",
               "judgement": "word_similarity", "rating_min": low, "rating_max": high,
               "reliability": float(out["reliability"]), "reliability_source": out["reliability_source"],
               "n_pairs": len(out["rating"]), "n_words_rated": len(words), "n_lines": out["n_lines"],
               "n_duplicates_merged": out["n_merged"], "n_self_pairs_dropped": out["n_self_pairs_dropped"]})


def check(key: str, entry: dict, base_dir, config: dict) -> None:
    """Validation (before any job): the file reads against the stimulus set (every word known, ratings
    numbers, no conflicting duplicates), and only metrics that skip unrated pairs score the dataset."""
    from ..config.schema import ConfigError
    from .contract import check_rdms, validate_entry

    name = key.split(".", 1)[1]
    for i, analysis in enumerate(config.get("analyses", [])):
        other = [m for m in analysis.get("metrics", []) if m not in METRICS]
        if name in analysis.get("datasets", []) and other:
            raise ConfigError(f"config key 'analyses.{i}.metrics': dataset '{name}' (kind word_similarity) is an RDM "
                              f"of human ratings with NaN at unrated pairs, which only {list(METRICS)} skip; "
                              f"remove {other} or split the analysis")

    def quiet_load(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the job warns; validation only checks
            return load(*args)

    validate_entry(key, entry, base_dir, config, quiet_load, lambda d: check_rdms(d, what=f"dataset '{name}'"))
