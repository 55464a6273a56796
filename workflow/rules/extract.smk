localrules:
    prefetch,


rule prefetch:
    """Fetch a hub-named model's snapshot once, where there is network (a localrule: on a cluster,
    the login node), and pin its commit in a lock file that the extraction job reads offline."""
    output:
        update("results/locks/{model}.json"),
    params:
        entry=lambda wildcards: hub_entry(wildcards.model),
        cache_dir=config["hub"]["cache_dir"],
    log:
        "results/logs/prefetch/{model}.log",
    conda:
        "../../envs/extract.yaml"
    script:
        "../../scripts/prefetch.py"


rule extract:
    input:
        unpack(model_inputs),
    output:
        update("results/activations/{stimset}/{model}.nc"),
    params:
        spec=lambda wildcards: config["models"][wildcards.model],
        seed=config["seed"],
        threads=config["threads"],
    threads: config["threads"]
    resources:
        **extract_resources(),
    log:
        "results/logs/extract/{stimset}/{model}.log",
    conda:
        "../../envs/extract.yaml"
    script:
        "../../scripts/extract.py"
