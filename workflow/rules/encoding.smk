rule encoding:
    input:
        activations=activations_of,
        brain="results/brain/{dataset}.nc",
    output:
        "results/scores/{dataset}/{model}/encoding.nc",
    params:
        **score_params("encoding"),
    threads: 2
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/encoding/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"


rule encoding_maps:
    input:
        "results/scores/{dataset}/{model}/encoding.nc",
    output:
        directory("results/maps/{dataset}/{model}/encoding"),
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/maps/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/maps.py"


rule banded_encoding:
    input:
        unpack(banded_inputs),
    output:
        "results/banded/{dataset}/{name}.nc",
    params:
        entry=lambda wildcards: banded_entry(config, wildcards.name),
        settings=config["metrics"]["encoding"],
        seed=config["seed"],
    threads: 2
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/banded/{dataset}/{name}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/banded.py"
