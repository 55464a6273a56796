from brainalign.jobs.extract import extract_file
from brainalign.runlog import job

with job(snakemake):
    extract_file(snakemake.input.stimuli, snakemake.wildcards.model, snakemake.params.spec, snakemake.output[0],
                 seed=snakemake.params.seed)
