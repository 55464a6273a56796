# Helpers shared by the rules: which files a config asks for.
from brainalign.config import analysis_jobs, planted_models


def stimset_of(dataset):
    return config["datasets"][dataset]["stimuli"]


def activations_of(wildcards):
    return f"results/activations/{stimset_of(wildcards.dataset)}/{wildcards.model}.nc"


def brain_inputs(wildcards):
    spec = config["datasets"][wildcards.dataset]
    inputs = {"stimuli": f"results/stimuli/{spec['stimuli']}.nc"}
    for model in planted_models(spec):
        inputs[f"activations_{model}"] = f"results/activations/{spec['stimuli']}/{model}.nc"
    if spec["kind"] == "netcdf":
        inputs["source"] = spec["path"]
    return inputs


def score_params(metric):
    return {
        "settings": config["metrics"][metric],
        "seed": config["seed"],
        "confidence": config["metrics"]["confidence"],
    }


def all_scores():
    return [f"results/scores/{d}/{m}/{metric}.nc" for d, m, metric in analysis_jobs(config)]


def all_figures():
    return [
        f"results/figures/{d}/{m}/{metric}.{fmt}"
        for d, m, metric in analysis_jobs(config)
        for fmt in config["report"]["formats"]
    ]
