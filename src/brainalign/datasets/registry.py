"""The dataset-kind registry: each config ``kind`` and the facts the rest of the code needs about it.

An entry names the loader by import path (``load(name, spec, stimuli, **inputs)`` returning the
brain-responses contract; imported only when data is read), whether the kind gives precomputed
RDMs, whether its neuroids are voxels on a grid (``volumetric``: encoding maps are drawn), which
config key names a file the ``brain`` rule takes as input (``source_key``), and whether it can be
simulated (``simulator``: the writer of its files). Adding a dataset kind is one module plus one :func:`register_dataset_kind` call.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..registry import Registry


@dataclass(frozen=True)
class DatasetKind:
    name: str
    loader: str                  # "package.module:function"
    rdms: bool = False
    volumetric: bool = False
    source_key: str | None = None  # config key of a file the brain rule reads (tracked as an input)
    simulator: str | None = None   # "module:write" of the files a ``simulate:`` block writes
    check: Callable | None = None  # extra validation: check(key, entry, base_dir, config)
    schema: object = None          # JSON schema of the entry: a dict, or the name of a $defs entry;
    #                                None: the shipped schema already lists the kind
    sources: str | None = None     # "module:function" (name, spec) -> every file the brain rule reads
    clock: bool = False            # responses per volume of a transcript: the model's word features are
    #                                brought to the volumes by the ``features`` rule before any metric

    def load_function(self):
        return _resolve(self.loader)

    def source_files(self, name: str, spec: dict) -> list[str]:
        """The files a dataset of this kind reads (beyond ``source_key``), for the brain rule."""
        return list(_resolve(self.sources)(name, spec)) if self.sources else []


def _resolve(path: str):
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _check_simulated(key: str, entry: dict, base_dir, config: dict) -> None:
    from ..config.schema import ConfigError

    models = config["models"]
    for roi, spec in entry["rois"].items():
        if "model" in spec and spec["model"] not in models:
            raise ConfigError(f"config key '{key}.rois.{roi}.model': unknown model "
                              f"'{spec['model']}' (known: {sorted(models)})")


def _check_nifti_events(key: str, entry: dict, base_dir, config: dict) -> None:
    from ..config.schema import ConfigError

    if "simulate" in entry and ("root" in entry or "runs" in entry):
        name = key.split(".", 1)[1]
        raise ConfigError(f"config key '{key}.simulate': simulated runs are written to "
                          f"results/simulated/{name}/; drop 'root' and 'runs'")


_KINDS: Registry[DatasetKind] = Registry("dataset kind")


def register_dataset_kind(kind: DatasetKind) -> DatasetKind:
    return _KINDS.register(kind, replace=True)


def dataset_kind(name: str, key: str | None = None) -> DatasetKind:
    return _KINDS.get(name, key)


def dataset_kinds() -> tuple[str, ...]:
    return _KINDS.names()


register_dataset_kind(DatasetKind("simulated", "brainalign.datasets.simulated:load", volumetric=True,
                                  check=_check_simulated))
register_dataset_kind(DatasetKind("nifti_events", "brainalign.datasets.nifti_events:load", volumetric=True,
                                  simulator="brainalign.simulate.fmri:write", check=_check_nifti_events))
register_dataset_kind(DatasetKind("mne_epochs", "brainalign.datasets.mne_epochs:load",
                                  simulator="brainalign.simulate.meg:write"))
register_dataset_kind(DatasetKind("netcdf", "brainalign.datasets.netcdf:load", source_key="path"))
register_dataset_kind(DatasetKind("rdm_mat", "brainalign.datasets.rdms:load", rdms=True, source_key="path"))
register_dataset_kind(DatasetKind("rdm_npy", "brainalign.datasets.rdms:load", rdms=True, source_key="path"))
def _check_reading_times(key: str, entry: dict, base_dir, config: dict) -> None:
    from .reading_times import check

    check(key, entry, base_dir, config)


register_dataset_kind(DatasetKind("reading_times", "brainalign.datasets.reading_times:load", source_key="path",
                                  schema="reading_times_dataset", check=_check_reading_times))


def _check_timeseries(key: str, entry: dict, base_dir, config: dict) -> None:
    from .timeseries import check

    check(key, entry, base_dir, config)


register_dataset_kind(DatasetKind("timeseries", "brainalign.datasets.timeseries:load", schema="timeseries_dataset",
                                  sources="brainalign.datasets.timeseries:source_files", clock=True,
                                  simulator="brainalign.simulate.story:write",
                                  check=_check_timeseries))


def _check_responses_table(key: str, entry: dict, base_dir, config: dict) -> None:
    from .responses_table import check

    check(key, entry, base_dir, config)


register_dataset_kind(DatasetKind("responses_table", "brainalign.datasets.responses_table:load", source_key="path",
                                  schema="responses_table_dataset", check=_check_responses_table))


def _check_labels(key: str, entry: dict, base_dir, config: dict) -> None:
    from .labels import check

    check(key, entry, base_dir, config)


register_dataset_kind(DatasetKind("labels", "brainalign.datasets.labels:load", schema="labels_dataset",
                                  check=_check_labels))


def _check_word_similarity(key: str, entry: dict, base_dir, config: dict) -> None:
    from .word_similarity import check

    check(key, entry, base_dir, config)


register_dataset_kind(DatasetKind("word_similarity", "brainalign.datasets.word_similarity:load", rdms=True,
                                  source_key="path", schema="word_similarity_dataset", check=_check_word_similarity))
