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
