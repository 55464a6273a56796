rule model_similarity:
    input:
        a="results/activations/{stimset}/{model_a}.nc",
        b="results/activations/{stimset}/{model_b}.nc",
    output:
        update("results/model_similarity/{stimset}/{model_a}__{model_b}.nc"),
    params:
        measures=lambda wildcards: comparison_measures(
            config, wildcards.stimset, wildcards.model_a, wildcards.model_b
        ),
        settings=config["similarity"],
        seed=config["seed"],
        threads=config["threads"],
    threads: config["threads"]
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/model_similarity/{stimset}/{model_a}__{model_b}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/model_similarity.py"


rule dataset_similarity:
    input:
        a="results/brain/{dataset_a}.nc",
        b="results/brain/{dataset_b}.nc",
    output:
        update("results/dataset_similarity/{dataset_a}__{dataset_b}.nc"),
    params:
        measures=lambda wildcards: dataset_comparison_measures(
            config, wildcards.dataset_a, wildcards.dataset_b
        ),
        settings=config["similarity"],
        seed=config["seed"],
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/dataset_similarity/{dataset_a}__{dataset_b}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/dataset_similarity.py"


# Representational geometry of each model's layers on a stimulus set (no brain data), then every
# model of the stimulus set on one axis for the figure.
rule geometry:
    input:
        activations="results/activations/{stimset}/{model}.nc",
        stimuli="results/stimuli/{stimset}.nc",
    output:
        update("results/geometry/{stimset}/{model}.nc"),
    params:
        settings=lambda wildcards: {k: v for k, v in geometry_entry(config, wildcards.stimset).items()
                                    if k not in ("stimuli", "models")},
        seed=config["seed"],
        confidence=config["metrics"]["confidence"],
        threads=1,
    threads: 1
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/geometry/{stimset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/geometry.py"


rule collect_geometry:
    input:
        unpack(geometry_inputs),
    output:
        update("results/geometry/{stimset}.nc"),
    group:
        "light"
    resources:
        **family_resources("light"),
    log:
        "results/logs/geometry/{stimset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/collect_geometry.py"
