rule cka:
    input:
        activations=activations_of,
        brain="results/brain/{dataset}.nc",
    output:
        "results/scores/{dataset}/{model}/cka.nc",
    params:
        **score_params("cka"),
    threads: 1
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/cka/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"


rule model_similarity:
    input:
        a="results/activations/{stimset}/{model_a}.nc",
        b="results/activations/{stimset}/{model_b}.nc",
    output:
        "results/model_similarity/{stimset}/{model_a}__{model_b}.nc",
    params:
        measures=lambda wildcards: comparison_measures(
            config, wildcards.stimset, wildcards.model_a, wildcards.model_b
        ),
        settings=config["similarity"],
        seed=config["seed"],
    threads: 2
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/model_similarity/{stimset}/{model_a}__{model_b}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/model_similarity.py"


rule procrustes:
    input:
        activations=activations_of,
        brain="results/brain/{dataset}.nc",
    output:
        "results/scores/{dataset}/{model}/procrustes.nc",
    params:
        **score_params("procrustes"),
    threads: 2
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/procrustes/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"


rule mutual_knn:
    input:
        activations=activations_of,
        brain="results/brain/{dataset}.nc",
    output:
        "results/scores/{dataset}/{model}/mutual_knn.nc",
    params:
        **score_params("mutual_knn"),
    threads: 2
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/mutual_knn/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"


rule dataset_similarity:
    input:
        a="results/brain/{dataset_a}.nc",
        b="results/brain/{dataset_b}.nc",
    output:
        "results/dataset_similarity/{dataset_a}__{dataset_b}.nc",
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
