rule simulate:
    input:
        unpack(simulate_inputs),
    output:
        update(directory("results/simulated/{dataset}")),
    params:
        spec=lambda wildcards: config["datasets"][wildcards.dataset],
        seed=config["seed"],
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/simulate/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/simulate.py"


rule brain:
    input:
        unpack(brain_inputs),
    output:
        update("results/brain/{dataset}.nc"),
    params:
        spec=lambda wildcards: config["datasets"][wildcards.dataset],
        seed=config["seed"],
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/brain/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/brain.py"
