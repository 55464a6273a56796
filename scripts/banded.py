from brainalign.jobs.banded import banded_file
from brainalign.runlog import job

with job(snakemake):
    activations = {key[len("activations_"):]: path for key, path in snakemake.input.items()
                   if key.startswith("activations_")}
    banded_file(snakemake.params.entry, activations, snakemake.input.brain, snakemake.output[0],
                snakemake.params.settings, seed=snakemake.params.seed)
