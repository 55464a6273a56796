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
        mem_mb=8000,
    log:
        "results/logs/encoding/{dataset}/{model}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"
