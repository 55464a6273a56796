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
        mem_mb=4000,
    log:
        "results/logs/cka/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"
