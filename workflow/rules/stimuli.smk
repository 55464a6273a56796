rule stimuli:
    input:
        unpack(stimulus_inputs),
    output:
        update("results/stimuli/{stimset}.nc"),
    params:
        spec=lambda wildcards: config["stimuli"][wildcards.stimset],
    resources:
        **family_resources("light"),
    log:
        "results/logs/stimuli/{stimset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/stimuli.py"
