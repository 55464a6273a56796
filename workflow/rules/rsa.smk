rule rsa:
    input:
        activations=activations_of,
        brain="results/brain/{dataset}.nc",
    output:
        "results/scores/{dataset}/{model}/rsa.nc",
    params:
        **score_params("rsa"),
    threads: 1
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/rsa/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"
