from brainalign.jobs.features import features_file
from brainalign.runlog import job

with job(snakemake):
    features_file(snakemake.input.activations, snakemake.input.brain, snakemake.output[0])
