"""``mne_epochs``: MEG/EEG epochs saved by MNE-Python (``*-epo.fif``), one file per
subject (or several runs of one subject).

Each file is read with :func:`mne.read_epochs`; channels are picked (channels
marked bad in the file are left out), the baseline is applied, the epochs are
cropped and decimated, in that order. Each epoch's event (name or code) is mapped
to a ``stimulus_id``, and the k-th epoch of a stimulus becomes repetition k
(:func:`.trials.stack_repetitions`). Files of the same subject (the BIDS
``sub-XX`` entity of the file name, else the file's stem) are concatenated in
file-name order.

Every sensor of every subject is one neuroid, with the coordinates ``subject``,
``roi``, ``sensor`` (channel name) and ``ch_type``. ROIs are one per channel type
unless ``rois`` gives channel names or shell-style patterns; a channel in two
ROIs appears once in each. Values stay in MNE's SI units (T, T/m, V).
"""

from __future__ import annotations

import glob
import re
import warnings
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io import array_checksum
from .contract import BrainDataError
from .trials import check_known_stimuli, stack_repetitions

SUBJECT_ENTITY = re.compile(r"(?:^|_)(sub-[A-Za-z0-9]+)(?=[_.]|$)")
FIF_SUFFIXES = (".fif.gz", ".fif")


# --------------------------------------------------------------------------- files
def resolve_files(name: str, files, base: Path) -> list[Path]:
    """The files of ``datasets.<name>.files`` (a glob string or a list of paths), sorted."""
    key = f"config key 'datasets.{name}.files'"
    if isinstance(files, str):
        pattern = files if Path(files).is_absolute() else str(base / files)
        found = sorted({Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()})
        if not found:
            raise BrainDataError(f"{key}: no files match '{files}' (looked in {base})")
        return found
    paths = [Path(f) if Path(f).is_absolute() else base / f for f in files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BrainDataError(f"{key}: {len(missing)} file(s) not found, e.g. {missing[:3]}")
    if not paths:
        raise BrainDataError(f"{key}: no files listed")
    return sorted(set(paths))


def subject_label(path: Path) -> str:
    """The BIDS ``sub-XX`` entity of the file name, else the name without its FIF suffix."""
    match = SUBJECT_ENTITY.search(path.name)
    if match:
        return match.group(1)
    for suffix in FIF_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


# --------------------------------------------------------------------------- events
def read_event_map(name: str, event_map, base: Path) -> dict[str, str] | None:
    """``event_map`` (dict, or a TSV with columns ``event`` and ``stimulus_id``) as
    ``{str(event name or code): stimulus_id}``; None without one."""
    if event_map is None:
        return None
    key = f"config key 'datasets.{name}.event_map'"
    if isinstance(event_map, dict):
        return {str(k).strip(): str(v) for k, v in event_map.items()}
    path = Path(event_map) if Path(event_map).is_absolute() else base / event_map
    if not path.is_file():
        raise BrainDataError(f"{key}: event map file not found: {path}")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("event", "stimulus_id") if c not in table.columns]
    if missing:
        raise BrainDataError(f"{key}: {path} lacks the column(s) {missing} (columns: {list(table.columns)})")
    events = table["event"].str.strip()
    duplicated = events[events.duplicated()].unique()
    if len(duplicated):
        raise BrainDataError(f"{key}: {path} lists the event(s) {list(duplicated[:5])} more than once")
    return dict(zip(events, table["stimulus_id"].str.strip()))


def epoch_stimulus_ids(epochs, event_map: dict | None, path: Path, name: str, unknown: str):
    """The stimulus id of every epoch (None where ``unknown='drop'`` drops it).

    An epoch's event is looked up by its name in ``epochs.event_id``, then by its
    integer code; without a map the event name is the stimulus id.
    """
    name_of = {code: ev for ev, code in epochs.event_id.items()}
    codes = epochs.events[:, 2]
    events = [name_of.get(int(c), str(int(c))) for c in codes]
    if event_map is None:
        return np.asarray(events, dtype=object)
    ids = [event_map.get(ev, event_map.get(str(int(c)))) for ev, c in zip(events, codes)]
    bad = sorted({f"{ev} (code {int(c)})" if ev != str(int(c)) else ev
                  for ev, c, sid in zip(events, codes, ids) if sid is None})
    if bad and unknown != "drop":
        raise BrainDataError(f"{path}: {len(bad)} event(s) not in config key 'datasets.{name}.event_map': "
                             f"{bad[:10]} (set 'unknown_events: drop' to drop their epochs)")
    return np.asarray(ids, dtype=object)


# --------------------------------------------------------------------------- one file
def read_file(path: Path, name: str, spec: dict, event_map: dict | None):
    """Epochs of one file, preprocessed.

    Returns
    -------
    trials : xarray.DataArray
        (trial, channel, time) with coords ``channel``, ``ch_type`` and ``time``; the
        sampling frequency after decimation is ``trials.attrs["sfreq"]``.
    ids : numpy.ndarray
        The stimulus id of every kept trial.
    raw_sfreq : float
        The file's sampling frequency before decimation.
    n_unknown : int
        Epochs dropped because their event is not in the event map.
    """
    import mne

    try:
        epochs = mne.read_epochs(path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises many types for unreadable files
        raise BrainDataError(f"{path}: cannot read MNE epochs ({type(exc).__name__}: {exc})") from exc
    raw_sfreq = float(epochs.info["sfreq"])
    steps = (("picks", lambda e, v: e.pick(v, exclude="bads", verbose="error"), spec.get("picks", "data")),
             ("baseline", lambda e, v: e.apply_baseline(tuple(v), verbose="error"), spec.get("baseline")),
             ("crop", lambda e, v: e.crop(*v, verbose="error"), spec.get("crop")),
             ("decim", lambda e, v: e.decimate(int(v)), spec.get("decim", 1)))
    for step, apply, value in steps:
        if value is None or (step == "decim" and int(value) == 1):
            continue
        try:
            apply(epochs, value)
        except (ValueError, TypeError, IndexError) as exc:
            raise BrainDataError(f"{path}: config key 'datasets.{name}.{step}' ({value!r}): {exc}") from exc
    ids = epoch_stimulus_ids(epochs, event_map, path, name, spec.get("unknown_events", "error"))
    keep = np.flatnonzero([sid is not None for sid in ids])
    trials = xr.DataArray(
        epochs.get_data()[keep], dims=("trial", "channel", "time"),
        coords={"channel": epochs.ch_names, "ch_type": ("channel", epochs.get_channel_types()),
                "time": epochs.times},
        attrs={"sfreq": float(epochs.info["sfreq"])})
    return trials, ids[keep].astype(str), raw_sfreq, int(len(ids) - len(keep))


def drop_bad_channels(trials: xr.DataArray, what: str, name: str, policy: str) -> tuple[xr.DataArray, int]:
    """Drop (or, with ``policy='error'``, refuse) channels with NaN/inf values or zero variance."""
    finite = np.isfinite(trials).all(("trial", "time"))
    flat = trials.where(finite, 0.0).std(("trial", "time")) == 0
    bad = (~finite) | flat
    n_bad = int(bad.sum())
    if not n_bad:
        return trials, 0
    names = trials["channel"].values[bad.values].tolist()
    message = (f"{what}: {n_bad} channel(s) with NaN/infinite values or zero variance, e.g. {names[:5]} "
               f"(config key 'datasets.{name}.bad_channels')")
    if policy == "error":
        raise BrainDataError(message)
    warnings.warn(f"{message}; dropped", stacklevel=3)
    return trials.isel(channel=np.flatnonzero(~bad.values)), n_bad


def roi_channels(trials: xr.DataArray, rois: dict | None, what: str, name: str) -> dict[str, np.ndarray]:
    """ROI name -> channel indices: ``rois`` patterns, or one ROI per channel type."""
    channels = trials["channel"].values.astype(str)
    if not rois:
        types = trials["ch_type"].values.astype(str)
        return {t: np.flatnonzero(types == t) for t in dict.fromkeys(types)}
    out = {}
    for roi, patterns in rois.items():
        hit = np.array([any(fnmatchcase(ch, p) for p in patterns) for ch in channels], dtype=bool)
        if not hit.any():
            raise BrainDataError(f"{what}: config key 'datasets.{name}.rois.{roi}' matches no channel "
                                 f"(patterns {list(patterns)}; channels e.g. {channels[:5].tolist()})")
        out[roi] = np.flatnonzero(hit)
    return out


# --------------------------------------------------------------------------- subjects
def _check_same(values: dict, label: str, same) -> None:
    """All files share ``label`` (sfreq, times, channels); the error names two files that differ."""
    items = list(values.items())
    first_path, first = items[0]
    for path, value in items[1:]:
        if not same(first, value):
            raise BrainDataError(f"{label} differ between {first_path} and {path}: {_describe(first)} vs "
                                 f"{_describe(value)}")


def _describe(value) -> str:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
        return f"{value.size} times from {value[0]:.4f} to {value[-1]:.4f} s"
    return repr(value)


def _same_times(a: np.ndarray, b: np.ndarray) -> bool:
    step = np.min(np.diff(a)) if len(a) > 1 else 1.0
    return len(a) == len(b) and np.allclose(a, b, rtol=0, atol=1e-3 * step)


def stack_subject(joined: xr.DataArray, ids: np.ndarray, stimulus_ids, what: str, unequal: str):
    """One subject's trials (trial, channel, time) -> (stimulus, channel, repetition, time) and
    the count of trials dropped to equalise repetitions."""
    values, info = stack_repetitions(joined.transpose("trial", "channel", "time").values,
                                     ids, stimulus_ids, what, unequal)
    block = xr.DataArray(values, dims=("stimulus", "channel", "time", "repetition"),
                         coords={"channel": joined["channel"], "ch_type": joined["ch_type"]})
    return block.transpose("stimulus", "channel", "repetition", "time"), info["n_trials_dropped"]


def common_repetitions(blocks: dict, what: str, unequal: str) -> tuple[dict, int]:
    """Truncate every subject to the smallest repetition count (or refuse with ``'error'``)."""
    counts = {s: b.sizes["repetition"] for s, b in blocks.items()}
    n_rep = min(counts.values())
    if n_rep == max(counts.values()):
        return blocks, 0
    if unequal == "error":
        raise BrainDataError(f"{what}: subjects have different numbers of repetitions {counts}; set "
                             "'unequal_trials: truncate' or 'average' to accept this")
    dropped = sum((c - n_rep) * b.sizes["stimulus"] for c, b in zip(counts.values(), blocks.values()))
    warnings.warn(f"{what}: subjects have different numbers of repetitions {counts}; kept the first {n_rep} "
                  f"of each ({dropped} trial(s) dropped)", stacklevel=3)
    return {s: b.isel(repetition=slice(0, n_rep)) for s, b in blocks.items()}, dropped


def as_neuroids(blocks: dict, rois: dict | None, what: dict, name: str) -> xr.DataArray:
    """Subjects' (stimulus, channel, repetition, time) blocks -> one array over
    ``neuroid`` (subject x ROI x channel) with ``subject``, ``roi``, ``sensor``, ``ch_type``."""
    pieces = []
    for subject, block in blocks.items():
        for roi, idx in roi_channels(block, rois, what[subject], name).items():
            piece = block.isel(channel=idx)
            pieces.append(piece.assign_coords(sensor=("channel", piece["channel"].values.astype(str)),
                                              subject=("channel", np.full(len(idx), subject)),
                                              roi=("channel", np.full(len(idx), roi)))
                          .drop_vars("channel").rename(channel="neuroid"))
    return xr.concat(pieces, dim="neuroid").transpose("stimulus", "neuroid", "repetition", "time")


# --------------------------------------------------------------------------- load
def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, root=None, **_) -> xr.Dataset:
    """Read ``datasets.<name>`` (kind ``mne_epochs``) into the brain contract.

    Parameters
    ----------
    name : str
        The dataset's name in the config (used in error messages).
    spec : dict
        The validated config entry: ``files``, and optionally ``event_map``,
        ``unknown_events``, ``picks``, ``baseline``, ``crop``, ``decim``,
        ``unequal_trials``, ``rois`` and ``bad_channels``.
    stimuli : xarray.Dataset
        The stimulus set; the result follows its ``stimulus_id`` order.
    base_dir : path-like, optional
        Folder that relative paths in ``spec`` refer to (default: the working directory).
    root : path-like, optional
        Folder that ``files`` refers to instead of ``base_dir`` (simulated data).

    Returns
    -------
    xarray.Dataset
        ``responses(stimulus, neuroid, repetition, time)`` with ``time`` in seconds.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    paths = resolve_files(name, spec["files"], Path(root) if root is not None else base)
    event_map = read_event_map(name, spec.get("event_map"), base)
    stimulus_ids = stimuli["stimulus_id"].values.astype(str)
    unequal = spec.get("unequal_trials", "truncate")

    per_file, sfreqs, n_unknown = {}, {}, 0
    for path in paths:
        trials, ids, sfreqs[path], dropped = read_file(path, name, spec, event_map)
        source = (f"events mapped by config key 'datasets.{name}.event_map'" if event_map is not None
                  else "event names of the epochs")
        check_known_stimuli(ids, stimulus_ids, f"{path} ({source})")
        per_file[path], n_unknown = (trials, ids), n_unknown + dropped
    _check_same(sfreqs, "sampling frequencies (Hz)", lambda a, b: a == b)
    _check_same({p: t["time"].values for p, (t, _) in per_file.items()}, "epoch times (after crop and decim)",
                _same_times)

    by_subject: dict[str, list[Path]] = {}
    for path in paths:
        by_subject.setdefault(subject_label(path), []).append(path)
    what = {s: f"subject '{s}' ({', '.join(map(str, files))})" for s, files in by_subject.items()}
    blocks, n_dropped, n_bad = {}, 0, 0
    for subject, files in by_subject.items():
        _check_same({p: per_file[p][0]["channel"].values.tolist() for p in files}, "channels", lambda a, b: a == b)
        joined, bad = drop_bad_channels(xr.concat([per_file[p][0] for p in files], dim="trial"), what[subject],
                                        name, spec.get("bad_channels", "drop"))
        blocks[subject], dropped = stack_subject(joined, np.concatenate([per_file[p][1] for p in files]),
                                                 stimulus_ids, what[subject], unequal)
        n_dropped, n_bad = n_dropped + dropped, n_bad + bad
    blocks, dropped = common_repetitions(blocks, f"dataset '{name}'", unequal)

    responses = as_neuroids(blocks, spec.get("rois"), what, name)
    first = per_file[paths[0]][0]
    brain = xr.Dataset(
        {"responses": responses},
        coords={"stimulus_id": ("stimulus", stimulus_ids),
                "repetition": np.arange(responses.sizes["repetition"]),
                "time": ("time", first["time"].values, {"units": "s"})})
    brain.attrs.update({
        "dataset_kind": "mne_epochs",
        "dataset_checksum": array_checksum(responses.values, stimulus_ids),
        "source_files": ",".join(map(str, paths)),
        "n_trials_dropped": int(n_unknown + n_dropped + dropped),
        "n_unknown_events_dropped": int(n_unknown),
        "n_channels_dropped": int(n_bad),
        "sfreq": float(first.attrs["sfreq"]),
    })
    return brain
