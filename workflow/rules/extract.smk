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
        **family_resources("extract"),
    log:
        "results/logs/extract/{stimset}/{model}.log",
    conda:
        "../../envs/extract.yaml"
    script:
        "../../scripts/extract.py"
