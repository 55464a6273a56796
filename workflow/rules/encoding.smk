rule encoding_maps:
    input:
        "results/scores/{dataset}/{model}/{metric}.nc",
    output:
        update(directory("results/maps/{dataset}/{model}/{metric}")),
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/maps/{dataset}/{model}/{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/maps.py"


rule banded_encoding:
    input:
        unpack(banded_inputs),
    output:
        update("results/banded/{dataset}/{name}.nc"),
    params:
        entry=lambda wildcards: banded_entry(config, wildcards.name),
        settings=config["metrics"]["encoding"],
        seed=config["seed"],
        threads=config["threads"],
    threads: config["threads"]
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/banded/{dataset}/{name}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/banded.py"
