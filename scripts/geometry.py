from brainalign.jobs.layer_geometry import geometry_file
from brainalign.runlog import job

with job(snakemake):
    geometry_file(snakemake.input.activations, snakemake.output[0], snakemake.params.settings,
                  stimuli_path=snakemake.input.stimuli, seed=snakemake.params.seed,
                  confidence=snakemake.params.confidence,
                  names={"model": snakemake.wildcards.model, "stimuli": snakemake.wildcards.stimset})
