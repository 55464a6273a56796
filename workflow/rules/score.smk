# One job per model x dataset x metric; the metric registry (brainalign.metrics.registry)
# says which metrics exist, and the job scores every layer x subject x ROI inside.
rule score:
    input:
        activations=activations_of,
        brain="results/brain/{dataset}.nc",
    output:
        update("results/scores/{dataset}/{model}/{metric}.nc"),
    params:
        settings=lambda wildcards: analysis_settings(config, wildcards.dataset, wildcards.model, wildcards.metric),
        seed=config["seed"],
        confidence=config["metrics"]["confidence"],
        plugins=config["plugins"],
        threads=job_threads,
    threads: job_threads
    resources:
        **family_resources("analysis"),
    log:
        "results/logs/score/{dataset}/{model}/{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/score.py"
