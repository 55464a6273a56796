import os
import re

# Helpers shared by the rules: which files a config asks for.
from brainalign.config import (
    analysis_jobs,
    banded_entry,
    banded_jobs,
    analysis_settings,
    is_hub_named,
    is_rdm_kind,
    is_volumetric,
    comparison_measures,
    dataset_comparison_jobs,
    dataset_comparison_measures,
    geometry_entry,
    geometry_jobs,
    model_comparison_jobs,
    model_summary_jobs,
    planted_models,
    simulated_files,
)
from brainalign.datasets.registry import dataset_kind
from brainalign.figures.captions import settings_sentence, similarity_sentence
from brainalign.figures.needs import FIGURE_LABELS
from brainalign.job_memory import extract_gpus, extract_mem_mb
from brainalign.models.hub import lock_params
from brainalign.metrics.registry import get_metric
from brainalign.stimuli import resolve_path


def family_resources(family):
    """Resources of a rule family (``extract``, ``analysis``, ``light``) from config ``resources``."""
    return dict(config["resources"][family])


def extract_resources():
    """Resources of an extraction job: the ``extract`` family's, with ``mem_mb`` and ``gpu`` from the
    plan (``brainalign plan``, :mod:`brainalign.job_memory`) unless the config sets them."""
    fixed = {k: v for k, v in config["resources"]["extract"].items() if k not in ("mem_mb", "gpu", "gpu_mem_mb")}
    return {
        **fixed,
        "mem_mb": lambda wildcards: extract_mem_mb(config, wildcards.stimset, wildcards.model),
        "gpu": lambda wildcards: extract_gpus(config, wildcards.stimset, wildcards.model),
    }


def job_threads(wildcards):
    """Threads of a score job: the metric registry's count, at most config ``threads``. The job
    pins its numeric libraries to this number (a param), whatever --cores scales ``threads:`` to."""
    return min(get_metric(wildcards.metric).threads, config["threads"])


def config_path(value):
    """A file a config entry names, as an input of a job. ``package:NAME/SUB`` becomes the file inside
    the installed package (validation has checked it exists); other paths are unchanged."""
    return str(resolve_path(value)) if value.startswith("package:") else value


def stimulus_inputs(wildcards):
    """The stimulus table, and the .mat holding its images when present (else it is downloaded)."""
    spec = config["stimuli"][wildcards.stimset]
    inputs = {"table": config_path(spec["path"])}
    if "images" in spec and os.path.exists(spec["images"]["path"]):
        inputs["images"] = spec["images"]["path"]
    return inputs


def stimset_of(dataset):
    return config["datasets"][dataset]["stimuli"]


def activations_of(wildcards):
    """What a score job reads: the model's activations on the dataset's stimuli, or, for data on a
    scanner's clock (a time series), the same features brought to the volumes (rule ``features``)."""
    if dataset_kind(config["datasets"][wildcards.dataset]["kind"]).clock:
        return f"results/features/{wildcards.dataset}/{wildcards.model}.nc"
    return f"results/activations/{stimset_of(wildcards.dataset)}/{wildcards.model}.nc"


def features_inputs(wildcards):
    return {"activations": f"results/activations/{stimset_of(wildcards.dataset)}/{wildcards.model}.nc",
            "brain": f"results/brain/{wildcards.dataset}.nc"}


def brain_inputs(wildcards):
    spec = config["datasets"][wildcards.dataset]
    inputs = {"stimuli": f"results/stimuli/{spec['stimuli']}.nc"}
    for model in planted_models(spec):
        inputs[f"activations_{model}"] = f"results/activations/{spec['stimuli']}/{model}.nc"
    if simulated_files(spec):
        return {"stimuli": inputs["stimuli"], "simulated": f"results/simulated/{wildcards.dataset}"}
    kind = dataset_kind(spec["kind"])
    if kind.sources:
        inputs["sources"] = kind.source_files(wildcards.dataset, spec)
    source_key = kind.source_key
    if source_key and (not is_rdm_kind(spec) or os.path.exists(config_path(spec[source_key]))):
        inputs["source"] = config_path(spec[source_key])
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
    if is_hub_named(spec):  # the pinned snapshot: a changed revision fetches again and reruns extraction
        inputs["lock"] = f"results/locks/{wildcards.model}.json"
    return inputs


def hub_entry(model):
    """What a model's lock depends on (the prefetch rule's params): its hub source, revision and
    the files its adapter reads; not pooling, layers and the rest, which extraction alone uses."""
    return lock_params(config["models"][model])


def all_scores():
    return [f"results/scores/{d}/{m}/{metric}.nc" for d, m, metric in analysis_jobs(config)]


def all_model_similarities():
    return [f"results/model_similarity/{s}/{a}__{b}.nc" for s, a, b in model_comparison_jobs(config)]


def all_dataset_similarities():
    return [f"results/dataset_similarity/{a}__{b}.nc" for a, b in dataset_comparison_jobs(config)]


def summary_models(wildcards):
    for dataset, metric, models in model_summary_jobs(config, min_models=1):
        if (dataset, metric) == (wildcards.dataset, wildcards.metric):
            return models
    raise ValueError(f"no model summary for dataset '{wildcards.dataset}' and metric '{wildcards.metric}'")


def summary_inputs(wildcards):
    return {m: f"results/scores/{wildcards.dataset}/{m}/{wildcards.metric}.nc" for m in summary_models(wildcards)}


def summary_controls(wildcards):
    return {m: config["models"][m].get("control_of", "") for m in summary_models(wildcards)}


def geometry_inputs(wildcards):
    models = geometry_entry(config, wildcards.stimset)["models"]
    return {m: f"results/geometry/{wildcards.stimset}/{m}.nc" for m in models}


def summary_model_info(wildcards):
    return {m: {k: config["models"][m][k] for k in ("family", "size", "variant") if k in config["models"][m]}
            for m in summary_models(wildcards)}


def declares_families(models):
    """Whether a model summary gets the families figure: some model declares a family, size or variant."""
    return any(k in config["models"][m] for m in models for k in ("family", "size", "variant"))


def score_figure_names_for(metric, volumetric):
    """The figures drawn from one scores file: layer curves, the metric's own extra figures
    (registry ``figures``), and per-voxel maps where the metric has them and the data is volumetric."""
    entry = get_metric(metric)
    return ["layers", *entry.figures] + (["glass_brain", "surface"] if entry.maps and volumetric else [])


def score_figure_names(dataset, metric):
    return score_figure_names_for(metric, is_volumetric(config["datasets"][dataset]))


def dataset_pattern(volumetric):
    """Wildcard constraint on ``{dataset}``: the volumetric datasets (True), the others (False), any (None)."""
    if volumetric is None:
        return NAME
    names = [re.escape(d) for d, spec in config["datasets"].items() if is_volumetric(spec) == volumetric]
    return "|".join(names) or "(?!)"


def figure_stem(figure, dataset="{dataset}", model="{model}", metric="{metric}"):
    """Path stem (no suffix) of a score figure: the layer curves are {metric}.*, the others {metric}_{figure}.*."""
    name = metric if figure == "layers" else f"{metric}_{figure}"
    return f"results/figures/{dataset}/{model}/{name}"


def volumetric_maps():
    """(dataset, model, metric) whose per-voxel maps are written."""
    return [(d, m, metric) for d, m, metric in analysis_jobs(config)
            if get_metric(metric).maps and is_volumetric(config["datasets"][d])]


def all_figures():
    formats = config["report"]["formats"]
    scores = [
        f"{figure_stem(figure, d, m, metric)}.{fmt}"
        for d, m, metric in analysis_jobs(config)
        for figure in score_figure_names(d, metric)
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
    maps = [f"results/maps/{d}/{m}/{metric}" for d, m, metric in volumetric_maps()]
    banded = [f"results/figures/banded/{d}/{n}.{fmt}" for d, n in banded_jobs(config) for fmt in formats]
    summaries = [
        f"results/figures/{d}/models_{metric}.{fmt}"
        for d, metric, _ in model_summary_jobs(config)
        for fmt in formats
    ]
    geometry = [
        f"results/figures/geometry/{s}.{fmt}"
        for s in dict.fromkeys(s for s, _ in geometry_jobs(config))
        for fmt in formats
    ]
    extras = [
        f"results/figures/{d}/{figure}_{metric}.{fmt}"
        for d, metric, models in model_summary_jobs(config)
        for figure in get_metric(metric).summary_figures
        for fmt in [*formats, *(["csv"] if figure == "concept_depth" else [])]
    ]
    families = [
        f"results/figures/{d}/families_{metric}.{fmt}"
        for d, metric, models in model_summary_jobs(config)
        if declares_families(models)
        for fmt in formats
    ]
    tables = [
        f"results/figures/{d}/summary_{metric}.{fmt}"
        for d, metric, _ in model_summary_jobs(config, min_models=1)
        for fmt in [*formats, "csv"]
    ]
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
    return (scores + similarity + datasets + maps + banded + summaries + extras + families + tables + stimuli
            + brain + geometry)


def figure_outputs(stems, caption, category, subcategory, labels, extra=()):
    """Output files of a figure job: for each (figure, stem), its PNG (in the report, with the
    caption ``caption.format(figure=...)``) and SVG, plus ``extra`` files (e.g. a table's CSV)."""
    outputs = []
    for figure, stem in stems:
        outputs.append(report(f"{stem}.png", caption=caption.format(figure=figure), category=category,
                              subcategory=subcategory, labels={**labels, "figure": FIGURE_LABELS[figure]}))
        outputs.append(f"{stem}.svg")
    return outputs + list(extra)


def figure_plan(stems, extra=()):
    """Params function: [(figure, [output paths])] of a figure job, in output order."""

    def plan(wildcards):
        jobs = [(figure, [f"{stem}.png".format(**wildcards), f"{stem}.svg".format(**wildcards)])
                for figure, stem in stems]
        if extra:
            jobs[-1][1].extend(path.format(**wildcards) for path in extra)
        return jobs

    return plan


def metric_category(wildcards):
    """Report category of a score figure (the metric registry's ``category``)."""
    return get_metric(wildcards.metric).category


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
