"""Job planning: which (dataset, model, metric), comparison, summary and extraction jobs a config
asks for. The Snakefile's target lists and input functions read these."""

from __future__ import annotations

from ..datasets.registry import dataset_kind
from ..models.registry import model_kind, model_kinds


def banded_jobs(config: dict) -> list[tuple[str, str]]:
    """(dataset, name) of every banded-encoding entry."""
    return [(e["dataset"], e["name"]) for e in config.get("banded_encoding", [])]


def banded_entry(config: dict, name: str) -> dict:
    return next(e for e in config.get("banded_encoding", []) if e["name"] == name)


def analysis_settings(config: dict, dataset: str, model: str, metric: str) -> dict:
    """Settings of one (dataset, model, metric) job: ``metrics.<metric>`` with the
    overrides of the first analysis that lists the job."""
    base = dict(config.get("metrics", {}).get(metric, {}))
    for analysis in config["analyses"]:
        if dataset in analysis["datasets"] and model in analysis["models"] and metric in analysis["metrics"]:
            return {**base, **analysis.get("settings", {}).get(metric, {})}
    return base


# --------------------------------------------------------------------------- job lists
def analysis_jobs(config: dict) -> list[tuple[str, str, str]]:
    """Unique (dataset, model, metric) analysis jobs, in config order."""
    jobs = []
    for analysis in config["analyses"]:
        for d in analysis["datasets"]:
            for m in analysis["models"]:
                for metric in analysis["metrics"]:
                    if (d, m, metric) not in jobs:
                        jobs.append((d, m, metric))
    return jobs


def model_comparison_jobs(config: dict) -> list[tuple[str, str, str]]:
    """Unique (stimulus set, model_a, model_b) comparisons, pairs in config order."""
    jobs = []
    for comparison in config.get("model_comparisons", []):
        for a, b in _pairs(comparison["models"], comparison.get("include_self", True)):
            if (comparison["stimuli"], a, b) not in jobs:
                jobs.append((comparison["stimuli"], a, b))
    return jobs


def comparison_measures(config: dict, stimset: str, a: str, b: str) -> list[str]:
    """Measures asked for a model pair (union over the entries that list both)."""
    measures = []
    for comparison in config.get("model_comparisons", []):
        if comparison["stimuli"] == stimset and a in comparison["models"] and b in comparison["models"]:
            measures += [m for m in comparison["measures"] if m not in measures]
    return measures


def _pairs(names: list[str], include_self: bool) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(names) for b in names[i:] if a != b or include_self]


def dataset_comparison_jobs(config: dict) -> list[tuple[str, str]]:
    """Unique (dataset_a, dataset_b) comparisons, pairs in config order."""
    jobs = []
    for comparison in config.get("dataset_comparisons", []):
        for pair in _pairs(comparison["datasets"], comparison.get("include_self", True)):
            if pair not in jobs:
                jobs.append(pair)
    return jobs


def dataset_comparison_measures(config: dict, a: str, b: str) -> list[str]:
    """Measures asked for a dataset pair (union over the entries that list both)."""
    measures = []
    for comparison in config.get("dataset_comparisons", []):
        if a in comparison["datasets"] and b in comparison["datasets"]:
            measures += [m for m in comparison["measures"] if m not in measures]
    return measures


def model_summary_jobs(config: dict, min_models: int = 2) -> list[tuple[str, str, list[str]]]:
    """(dataset, metric, models) where at least ``min_models`` activation models share a
    dataset and a metric. With two or more, their curves are drawn together against relative
    depth; every group (``min_models=1``) gets a summary table."""
    groups: dict[tuple[str, str], list[str]] = {}
    for dataset, model, metric in analysis_jobs(config):
        if not is_rdm_kind(config["models"][model]):
            groups.setdefault((dataset, metric), []).append(model)
    return [(d, metric, models) for (d, metric), models in groups.items() if len(models) >= min_models]


def planted_models(dataset: dict) -> list[str]:
    """Models whose activations a simulated dataset is generated from: a ``simulated``
    dataset's ROIs, or the ``simulate.planted`` entries of a file-based kind."""
    if dataset["kind"] == "simulated":
        return sorted({spec["model"] for spec in dataset["rois"].values() if "model" in spec})
    return sorted({spec["model"] for spec in dataset.get("simulate", {}).get("planted", {}).values()})


def simulated_files(dataset: dict) -> bool:
    """True when a dataset's files are written by the ``simulate`` rule before it is read."""
    return "simulate" in dataset


def is_rdm_kind(entry: dict) -> bool:
    """True for a model or dataset entry given as precomputed RDMs (model and dataset kinds
    share the names ``rdm_mat`` and ``rdm_npy``)."""
    kind = entry["kind"]
    return model_kind(kind).rdms if kind in model_kinds() else dataset_kind(kind).rdms


def is_hub_named(entry: dict) -> bool:
    """True for a model entry whose ``source`` is a hub id (not a local folder or ``package:``):
    the ``prefetch`` rule fetches and pins it before its extraction job
    (:mod:`brainalign.models.hub`)."""
    from ..sources import resolve_source

    if entry["kind"] not in model_kinds() or not model_kind(entry["kind"]).hub_source or "source" not in entry:
        return False
    try:
        return not resolve_source(entry["source"])[1]
    except FileNotFoundError:  # a missing local path (validation reports it)
        return False


def is_volumetric(dataset: dict) -> bool:
    """True for a dataset whose neuroids are voxels on a grid (encoding maps are drawn)."""
    return dataset_kind(dataset["kind"]).volumetric


def extraction_jobs(config: dict) -> list[tuple[str, str]]:
    """Unique (stimulus set, model) extraction jobs needed by analyses and simulations."""
    jobs = []
    for d, m, _ in analysis_jobs(config):
        dataset = config["datasets"][d]
        for model in [m, *planted_models(dataset)]:
            if (dataset["stimuli"], model) not in jobs:
                jobs.append((dataset["stimuli"], model))
    for pair in dataset_comparison_jobs(config):
        for d in pair:
            dataset = config["datasets"][d]
            for model in planted_models(dataset):
                if (dataset["stimuli"], model) not in jobs:
                    jobs.append((dataset["stimuli"], model))
    for stimset, a, b in model_comparison_jobs(config):
        for model in (a, b):
            if (stimset, model) not in jobs:
                jobs.append((stimset, model))
    for stimset, model in geometry_jobs(config):
        if (stimset, model) not in jobs:
            jobs.append((stimset, model))
    return jobs


def geometry_jobs(config: dict) -> list[tuple[str, str]]:
    """Unique (stimulus set, model) geometry jobs, in config order."""
    jobs = []
    for entry in config.get("geometry", []):
        for model in entry["models"]:
            if (entry["stimuli"], model) not in jobs:
                jobs.append((entry["stimuli"], model))
    return jobs


def geometry_entry(config: dict, stimset: str) -> dict:
    """The ``geometry`` entry of a stimulus set (its settings, models in order)."""
    for entry in config.get("geometry", []):
        if entry["stimuli"] == stimset:
            return entry
    raise ValueError(f"no geometry entry for stimulus set '{stimset}'")
