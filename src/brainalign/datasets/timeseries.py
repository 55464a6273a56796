"""``timeseries``: naturalistic data, one response per volume while a story is heard (or read).

Per subject, a file of time courses (rows = kept volumes): a text table (columns = ROIs, named by
``columns``; or sensors, or voxels) or a 4D NIfTI run brought to ROI or voxel time courses by a
nilearn masker (``masker.labels_img`` for a labels atlas, ``masker.mask_img`` for voxels). File
names come from ``timecourses``, a pattern with ``{subject}`` (``subjects`` lists them; by default
every file that matches, minus ``exclude_subjects``).

The transcript is a word stimulus set with onsets (kind ``textgrid``, or ``words`` with
``onset_column``). Kept volume ``k`` is acquired at ``(discarded_volumes + k + slice_time_ref) * tr
+ offset`` s on the transcript's clock (:func:`brainalign.clock.volume_times`); the series must
cover the transcript, and may run past its last word by at most ``tail`` s.

Each subject's time courses are cleaned by :func:`nilearn.signal.clean`: ``confounds`` (patterns
with ``{subject}``, glob wildcards allowed, e.g. the SPM motion parameters) regressed out, linear
detrending and z-scoring (``detrend``, ``standardize``). A confound file may have the discarded
volumes' rows too (they are dropped from its start).

The baseline (stimulus coordinates ``baseline_<name>``, which ``encoding`` with ``baseline: true``
adds to every layer): ``word_rate`` (one event per word, brought to the volumes exactly as the
model's features are) and ``files`` (name: pattern with ``{subject}``), stimulus-locked regressors
such as sound power, averaged over subjects.

``features`` says how word features reach the volumes (the ``features`` rule applies it to every
layer): ``method`` ``hrf`` (nilearn's ``glover`` or ``spm`` HRF) or ``lanczos`` (the Huth lab's
resampling), FIR ``delays`` in volumes, ``event_time`` (a word's ``onset`` or ``middle``).
``trim`` drops volumes at the start and end from the responses (after the features are built, so
the delays still see the words before them).
"""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path

import numpy as np
import xarray as xr

from ..stimuli import resolve_path
from .contract import BrainDataError

FEATURE_DEFAULTS = {"method": "hrf", "hrf_model": "glover", "delays": [0], "event_time": "onset", "window": 3,
                    "cutoff_mult": 1.0, "oversampling": 50}


def _key(name: str, key: str) -> str:
    return f"config key 'datasets.{name}.{key}'"


def feature_settings(spec: dict) -> dict:
    return {**FEATURE_DEFAULTS, **spec.get("features", {})}


def subject_files(name: str, spec: dict, base_dir=None, root=None) -> dict[str, Path]:
    """Subject -> time-course file, in sorted subject order (``root``: the folder of simulated files)."""
    if "simulate" in spec:
        if root is None:
            raise BrainDataError(f"{_key(name, 'simulate')}: the simulated files are not written yet")
        spec = {**spec, "timecourses": str(Path(root) / "{subject}-timecourses.txt")}
    elif "timecourses" not in spec:
        raise BrainDataError(f"{_key(name, 'timecourses')}: required (or a simulate block)")
    pattern = str(resolve_path(spec["timecourses"], base_dir))
    if "{subject}" not in pattern:
        raise BrainDataError(f"{_key(name, 'timecourses')}: the pattern needs '{{subject}}' ({pattern})")
    excluded = {str(s) for s in spec.get("exclude_subjects", [])}
    if spec.get("subjects"):
        files = {str(s): Path(pattern.format(subject=s)) for s in spec["subjects"] if str(s) not in excluded}
        for subject, path in files.items():
            if not path.is_file():
                raise BrainDataError(f"{_key(name, 'timecourses')}: subject {subject}: file not found: {path}")
    else:
        regex = re.compile(re.escape(pattern).replace(re.escape("{subject}"), "(.+)") + "$")
        files = {}
        for found in sorted(glob.glob(pattern.replace("{subject}", "*"))):
            match = regex.match(found)
            if match and match.group(1) not in excluded:
                files[match.group(1)] = Path(found)
    if not files:
        raise BrainDataError(f"{_key(name, 'timecourses')}: no file matches {pattern}")
    return dict(sorted(files.items()))


def subject_file(name: str, key: str, pattern: str, subject: str, base_dir=None) -> Path:
    """The one file a pattern with ``{subject}`` (and glob wildcards) names for ``subject``."""
    found = sorted(glob.glob(str(resolve_path(pattern, base_dir)).replace("{subject}", str(subject))))
    if len(found) != 1:
        what = "no file" if not found else f"{len(found)} files ({', '.join(found[:3])})"
        raise BrainDataError(f"{_key(name, key)}: subject {subject}: {what} for the pattern {pattern}")
    return Path(found[0])


def read_columns(path: Path) -> np.ndarray:
    """A whitespace-, comma- or tab-separated numeric table without a header: (row, column)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BrainDataError(f"{path}: not a text file of numbers (not UTF-8)") from None
    rows = [line.replace(",", " ").split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise BrainDataError(f"{path}: empty")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        bad = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise BrainDataError(f"{path}, row {bad + 1}: {len(rows[bad])} values where row 1 has {len(rows[0])}")
    try:
        return np.asarray(rows, dtype=np.float64)
    except ValueError as exc:
        raise BrainDataError(f"{path}: not a table of numbers ({exc})") from None


def read_timecourses(name: str, spec: dict, path: Path) -> tuple[np.ndarray, list[str]]:
    """(volume, neuroid) time courses of one subject and the neuroids' ROI labels."""
    if path.name.endswith((".nii", ".nii.gz")):
        return _masked_timecourses(name, spec, path)
    values = read_columns(path)
    columns = [str(c) for c in spec.get("columns") or [f"column{i + 1}" for i in range(values.shape[1])]]
    if values.shape[1] != len(columns):
        raise BrainDataError(f"{path}: {values.shape[1]} columns, but {_key(name, 'columns')} names {len(columns)}")
    return values, columns


def _masked_timecourses(name: str, spec: dict, path: Path) -> tuple[np.ndarray, list[str]]:
    masker = spec.get("masker") or {}
    if "labels_img" in masker:
        from nilearn.maskers import NiftiLabelsMasker

        values = NiftiLabelsMasker(labels_img=str(masker["labels_img"]), standardize=None,
                                   strategy="mean").fit_transform(str(path))
        names = [str(v) for v in masker.get("labels", [])] or [f"label{i + 1}" for i in range(values.shape[1])]
        if len(names) != values.shape[1]:
            raise BrainDataError(f"{_key(name, 'masker.labels')}: {len(names)} names for the {values.shape[1]} "
                                 f"regions of {masker['labels_img']}")
        return values, names
    if "mask_img" in masker:
        from nilearn.maskers import NiftiMasker

        values = NiftiMasker(mask_img=masker["mask_img"], standardize=None).fit_transform(str(path))
        return values, [str(masker.get("roi", "mask"))] * values.shape[1]
    raise BrainDataError(f"{_key(name, 'masker')}: NIfTI time courses need masker.labels_img or masker.mask_img")


def _rows_for(name: str, key: str, path: Path, values: np.ndarray, n: int, discarded: int) -> np.ndarray:
    """A per-volume file cut to the kept volumes: it has n rows, or n + discarded (the first dropped)."""
    if len(values) == n:
        return values
    if discarded and len(values) == n + discarded:
        return values[discarded:]
    expected = f"{n}" + (f" (or {n + discarded} with the {discarded} discarded volumes)" if discarded else "")
    raise BrainDataError(f"{_key(name, key)}: {path} has {len(values)} rows; the time courses have {expected}")


def word_times(stimuli: xr.Dataset, event_time: str, name: str) -> np.ndarray:
    if "onset" not in stimuli.coords or not np.isfinite(stimuli["onset"].values.astype(float)).all():
        raise BrainDataError(f"{_key(name, 'stimuli')}: the transcript needs an onset for every word "
                             "(a textgrid stimulus set, or words with onset_column)")
    onset = stimuli["onset"].values.astype(float)
    if event_time == "middle":
        if "offset" not in stimuli.coords or not np.isfinite(stimuli["offset"].values.astype(float)).all():
            raise BrainDataError(f"{_key(name, 'features.event_time')}: 'middle' needs word offsets")
        return (onset + stimuli["offset"].values.astype(float)) / 2
    return onset


def check_coverage(name: str, path: Path, n: int, spec: dict, stimuli: xr.Dataset) -> None:
    """The series covers the transcript: its end is at most one TR before the last word's end and at
    most ``tail`` s after it."""
    tr, discarded = float(spec["tr"]), int(spec.get("discarded_volumes", 0))
    end = (discarded + n) * tr + float(spec.get("offset", 0.0))
    last = float(np.nanmax(stimuli["offset"].values.astype(float))) if "offset" in stimuli.coords \
        else float(np.nanmax(stimuli["onset"].values.astype(float)))
    tail = float(spec.get("tail", 30.0))
    if end < last - tr or end > last + tail:  # a last word inside the final volume still counts
        raise BrainDataError(
            f"{path}: {n} volumes x TR {tr:g} s after {discarded} discarded volumes end at {end:g} s, but the "
            f"transcript's last word ends at {last:g} s (allowed: from one TR before to {tail:g} s after it, "
            f"{_key(name, 'tail')}); check tr, discarded_volumes and the file")


def load(name: str, spec: dict, stimuli: xr.Dataset, base_dir=None, root=None, **_) -> xr.Dataset:
    from nilearn.signal import clean

    from ..clock import clock_matrix, on_volumes, volume_times
    from ..io import file_checksum

    files = subject_files(name, spec, base_dir, root)
    if "simulate" in spec and not spec.get("columns"):
        spec = {**spec, "columns": json.loads((Path(root) / "planted.json").read_text())["rois"]}
    tr, discarded = float(spec["tr"]), int(spec.get("discarded_volumes", 0))
    features = feature_settings(spec)
    times = word_times(stimuli, features["event_time"], name)
    blocks, subjects, rois, used = [], [], [], []
    n = None
    for subject, path in files.items():
        values, labels = read_timecourses(name, spec, path)
        if n is None:
            n = len(values)
            check_coverage(name, path, n, spec, stimuli)
        elif len(values) != n:
            raise BrainDataError(f"{path}: {len(values)} volumes where {next(iter(files.values()))} has {n}")
        if not np.isfinite(values).all():
            raise BrainDataError(f"{path}: NaN or infinite values")
        flat = np.ptp(values, axis=0) == 0
        if flat.any():
            raise BrainDataError(f"{path}: column {labels[int(np.flatnonzero(flat)[0])]!r} of subject {subject} is "
                                 "constant (an empty recording?); leave the subject out with "
                                 f"datasets.{name}.exclude_subjects")
        confounds = []
        for pattern in spec.get("confounds", []):
            conf_path = subject_file(name, "confounds", pattern, subject, base_dir)
            confounds.append(_rows_for(name, "confounds", conf_path, read_columns(conf_path), n, discarded))
            used.append(conf_path)
        cleaned = clean(values, detrend=bool(spec.get("detrend", True)),
                        standardize="zscore_sample" if spec.get("standardize", True) else None,
                        confounds=np.hstack(confounds) if confounds else None, filter=False, t_r=tr)
        blocks.append(cleaned)
        subjects += [subject] * values.shape[1]
        rois += labels
        used.append(path)
    all_times = volume_times(n, tr, discarded, float(spec.get("slice_time_ref", 0.0)), float(spec.get("offset", 0.0)))
    trim = spec.get("trim", {})
    keep = np.arange(int(trim.get("start", 0)), n - int(trim.get("end", 0)))
    if len(keep) < 10:
        raise BrainDataError(f"{_key(name, 'trim')}: leaves {len(keep)} of {n} volumes")
    coords = {"stimulus_id": ("stimulus", np.asarray([f"vol{k:04d}" for k in keep])),
              "volume": ("stimulus", keep.astype(np.int64)), "time": ("stimulus", all_times[keep]),
              "subject": ("neuroid", np.asarray(subjects, dtype=str)), "roi": ("neuroid", np.asarray(rois, dtype=str))}
    baseline = spec.get("baseline", {})
    if baseline.get("word_rate", True):
        matrix = clock_matrix(times, all_times, features["method"], window=int(features["window"]),
                              cutoff_mult=float(features["cutoff_mult"]), hrf_model=features["hrf_model"],
                              oversampling=int(features["oversampling"]))
        rate = on_volumes(np.ones((len(times), 1)), matrix, features["delays"])
        for j, d in enumerate(features["delays"]):
            coords["baseline_word_rate" + (f"_delay{d}" if len(features["delays"]) > 1 else "")] = \
                ("stimulus", rate[keep, j])
    for regressor, pattern in baseline.get("files", {}).items():
        columns = []
        for subject in files:
            path = subject_file(name, f"baseline.files.{regressor}", pattern, subject, base_dir)
            values = _rows_for(name, f"baseline.files.{regressor}", path, read_columns(path), n, discarded)
            columns.append(values[:, 0])
            used.append(path)
        coords[f"baseline_{regressor}"] = ("stimulus", np.mean(columns, axis=0)[keep])
    responses = np.hstack(blocks)[keep]
    brain = xr.Dataset({"responses": (("stimulus", "neuroid"), responses),
                        "word_id": (("word",), stimuli["stimulus_id"].values.astype(str)),
                        "word_time": (("word",), times)}, coords=coords)
    from ..io import array_checksum

    brain.attrs.update({
        "timeseries": 1, "tr": tr, "discarded_volumes": discarded, "n_volumes": int(n),
        "slice_time_ref": float(spec.get("slice_time_ref", 0.0)), "offset": float(spec.get("offset", 0.0)),
        "features": json.dumps(features, sort_keys=True),
        "confounds": json.dumps(list(spec.get("confounds", []))),
        "cleaning": f"nilearn.signal.clean(detrend={bool(spec.get('detrend', True))}, "
                    f"standardize={'zscore_sample' if spec.get('standardize', True) else False}, confounds regressed)",
        "dataset_checksum": array_checksum(np.asarray([file_checksum(p) for p in used])),
        "baseline": ",".join(k for k in coords if k.startswith("baseline_"))})
    return brain


def source_files(name: str, spec: dict, base_dir=None) -> list[str]:
    """Every file the dataset reads (the ``brain`` rule's inputs): a changed file reruns it."""
    if "simulate" in spec:
        return []  # the simulate rule's folder is the input
    files = subject_files(name, spec, base_dir)
    out = [str(p) for p in files.values()]
    patterns = list(spec.get("confounds", [])) + list(spec.get("baseline", {}).get("files", {}).values())
    for subject in files:
        for pattern in patterns:
            out += sorted(glob.glob(str(resolve_path(pattern, base_dir)).replace("{subject}", subject)))
    masker = spec.get("masker") or {}
    out += [str(masker[k]) for k in ("labels_img", "mask_img") if k in masker]
    return out


def check(key: str, entry: dict, base_dir, config: dict) -> None:
    """Validation (before any job): the files exist and agree with each other and the transcript."""
    from ..config.schema import ConfigError
    from ..errors import UserInputError
    from ..stimuli import read_stimulus_table

    name = key.split(".", 1)[1]
    stim = config["stimuli"].get(entry["stimuli"])
    if stim is None:
        return
    try:
        stimuli = read_stimulus_table(stim, base_dir)
    except UserInputError as exc:
        raise ConfigError(f"config key 'stimuli.{entry['stimuli']}': {exc}") from None
    try:
        if "simulate" in entry:
            word_times(stimuli, feature_settings(entry)["event_time"], name)
            _check_planted(key, entry, config)
        else:
            load(name, entry, stimuli, base_dir=base_dir)
    except UserInputError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("config key") else f"config key '{key}': {message}") from None


def _check_planted(key: str, entry: dict, config: dict) -> None:
    from ..config.schema import ConfigError

    for roi, planted in entry["simulate"].get("planted", {}).items():
        if planted["model"] not in config["models"]:
            raise ConfigError(f"config key '{key}.simulate.planted.{roi}.model': unknown model "
                              f"'{planted['model']}' (known: {sorted(config['models'])})")
