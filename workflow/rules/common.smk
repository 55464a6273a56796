import os

# Helpers shared by the rules: which files a config asks for.
from brainalign.config import (
    analysis_jobs,
    banded_entry,
    banded_jobs,
    analysis_settings,
    is_rdm_kind,
    comparison_measures,
    dataset_comparison_jobs,
    dataset_comparison_measures,
    model_comparison_jobs,
    model_summary_jobs,
    planted_models,
    simulated_files,
)
from brainalign.captions import metric_category as _metric_category, settings_sentence, similarity_sentence


def family_resources(family):
    """Resources of a rule family (``extract``, ``analysis``, ``light``) from config ``resources``."""
    return dict(config["resources"][family])


def stimulus_inputs(wildcards):
    """The stimulus table, and the .mat holding its images when present (else it is downloaded)."""
    spec = config["stimuli"][wildcards.stimset]
    inputs = {"table": spec["path"]}
    if "images" in spec and os.path.exists(spec["images"]["path"]):
        inputs["images"] = spec["images"]["path"]
    return inputs


def stimset_of(dataset):
    return config["datasets"][dataset]["stimuli"]


def activations_of(wildcards):
    return f"results/activations/{stimset_of(wildcards.dataset)}/{wildcards.model}.nc"


def brain_inputs(wildcards):
    spec = config["datasets"][wildcards.dataset]
    inputs = {"stimuli": f"results/stimuli/{spec['stimuli']}.nc"}
    for model in planted_models(spec):
        inputs[f"activations_{model}"] = f"results/activations/{spec['stimuli']}/{model}.nc"
    if simulated_files(spec):
        return {"stimuli": inputs["stimuli"], "simulated": f"results/simulated/{wildcards.dataset}"}
    if spec["kind"] == "netcdf" or (is_rdm_kind(spec) and os.path.exists(spec["path"])):
        inputs["source"] = spec["path"]
    return inputs


def simulate_inputs(wildcards):
    spec = config["datasets"][wildcards.dataset]
    inputs = {"stimuli": f"results/stimuli/{spec['stimuli']}.nc"}
    for model in planted_models(spec):
        inputs[f"activations_{model}"] = f"results/activations/{spec['stimuli']}/{model}.nc"
    return inputs


def banded_inputs(wildcards):
    entry = banded_entry(config, wildcards.name)
    stimset = stimset_of(entry["dataset"])
    inputs = {"brain": f"results/brain/{entry['dataset']}.nc"}
    for band in entry["bands"].values():
        inputs[f"activations_{band['model']}"] = f"results/activations/{stimset}/{band['model']}.nc"
    return inputs


def all_banded():
    return [f"results/banded/{d}/{n}.nc" for d, n in banded_jobs(config)]


def model_inputs(wildcards):
    """A model given as RDMs reads its file (when present; otherwise it is downloaded)."""
    spec = config["models"][wildcards.model]
    inputs = {"stimuli": f"results/stimuli/{wildcards.stimset}.nc"}
    if is_rdm_kind(spec) and os.path.exists(spec["path"]):
        inputs["source"] = spec["path"]
    return inputs


def score_params(metric):
    return {
        "settings": lambda wildcards: analysis_settings(config, wildcards.dataset, wildcards.model, metric),
        "seed": config["seed"],
        "confidence": config["metrics"]["confidence"],
    }


def all_scores():
    return [f"results/scores/{d}/{m}/{metric}.nc" for d, m, metric in analysis_jobs(config)]


def all_model_similarities():
    return [f"results/model_similarity/{s}/{a}__{b}.nc" for s, a, b in model_comparison_jobs(config)]


def all_dataset_similarities():
    return [f"results/dataset_similarity/{a}__{b}.nc" for a, b in dataset_comparison_jobs(config)]


# dataset kinds whose neuroids are voxels with x, y, z on a grid: encoding maps are written
VOLUMETRIC_KINDS = ("simulated", "nifti_events")


def summary_models(wildcards):
    for dataset, metric, models in model_summary_jobs(config, min_models=1):
        if (dataset, metric) == (wildcards.dataset, wildcards.metric):
            return models
    raise ValueError(f"no model summary for dataset '{wildcards.dataset}' and metric '{wildcards.metric}'")


def summary_inputs(wildcards):
    return {m: f"results/scores/{wildcards.dataset}/{m}/{wildcards.metric}.nc" for m in summary_models(wildcards)}


def summary_controls(wildcards):
    return {m: config["models"][m].get("control_of", "") for m in summary_models(wildcards)}


def all_figures():
    formats = config["report"]["formats"]
    scores = [
        f"results/figures/{d}/{m}/{metric}.{fmt}"
        for d, m, metric in analysis_jobs(config)
        for fmt in formats
    ]
    scores += [
        f"results/figures/{d}/{m}/rsa_{figure}.{fmt}"
        for d, m, metric in analysis_jobs(config)
        if metric == "rsa"
        for figure in ("rdms", "mds")
        for fmt in formats
    ]
    similarity = [
        f"results/figures/model_similarity/{s}/{kind}/{a}__{b}.{fmt}"
        for s, a, b in model_comparison_jobs(config)
        for kind in ("heatmaps", "depth")
        for fmt in formats
    ]
    datasets = [
        f"results/figures/dataset_similarity/{a}__{b}.{fmt}"
        for a, b in dataset_comparison_jobs(config)
        for fmt in formats
    ]
    volumetric = [
        (d, m)
        for d, m, metric in analysis_jobs(config)
        if metric == "encoding" and config["datasets"][d]["kind"] in VOLUMETRIC_KINDS
    ]
    maps = [f"results/maps/{d}/{m}/encoding" for d, m in volumetric]
    maps += [f"results/figures/{d}/{m}/encoding_glass_brain.{fmt}" for d, m in volumetric for fmt in formats]
    banded = [f"results/figures/banded/{d}/{n}.{fmt}" for d, n in banded_jobs(config) for fmt in formats]
    summaries = [
        f"results/figures/{d}/models_{metric}.{fmt}"
        for d, metric, _ in model_summary_jobs(config)
        for fmt in formats
    ]
    tables = [
        f"results/figures/{d}/summary_{metric}.{fmt}"
        for d, metric, _ in model_summary_jobs(config, min_models=1)
        for fmt in [*formats, "csv"]
    ]
    surfaces = [f"results/figures/{d}/{m}/encoding_surface.{fmt}" for d, m in volumetric for fmt in formats]
    stimuli = [
        f"results/figures/stimuli/{s}.{fmt}"
        for s in dict.fromkeys(stimset_of(d) for d, _, _ in analysis_jobs(config))
        for fmt in formats
    ]
    brain = [
        f"results/figures/brain/{d}.{fmt}"
        for d in dict.fromkeys(d for d, _, _ in analysis_jobs(config))
        if not is_rdm_kind(config["datasets"][d])
        for fmt in formats
    ]
    return scores + similarity + datasets + maps + banded + summaries + tables + surfaces + stimuli + brain


def metric_category(wildcards):
    """Report category of a score figure: RSA, CKA (the CKA family) or Encoding."""
    return _metric_category(wildcards.metric)


def caption_settings(metric=None):
    """Params function: the settings sentence of a figure's caption (metric, comparator, CV
    scheme, permutations, bootstrap samples, seed). ``metric`` defaults to the wildcard; the
    settings are the job's own (with its analysis overrides), or the first model's for
    figures that span models."""

    def settings(wildcards):
        name = metric or wildcards.metric
        model = getattr(wildcards, "model", None)
        if model is None:
            model = summary_models(wildcards)[0] if hasattr(wildcards, "metric") else None
        dataset = getattr(wildcards, "dataset", None)
        values = (analysis_settings(config, dataset, model, name) if model and dataset
                  else dict(config["metrics"].get(name, {})))
        return settings_sentence(name, values, config["seed"], config["metrics"]["confidence"])

    return settings


def similarity_caption_settings():
    """Params function: the settings sentence of model/dataset similarity figures."""
    return lambda wildcards: similarity_sentence(config["similarity"], config["seed"])
