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


# A time series (a story on the scanner's clock): every layer's word features brought to the
# volumes (Lanczos or HRF, FIR delays; the dataset's ``features``), cached for every metric.
rule features:
    input:
        unpack(features_inputs),
    output:
        update("results/features/{dataset}/{model}.nc"),
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/features/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/features.py"
