rule stimuli:
    input:
        lambda wildcards: config["stimuli"][wildcards.stimset]["path"],
    output:
        "results/stimuli/{stimset}.nc",
    params:
        spec=lambda wildcards: config["stimuli"][wildcards.stimset],
    log:
        "results/logs/stimuli/{stimset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/stimuli.py"
