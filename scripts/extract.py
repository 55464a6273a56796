from brainalign.jobs.extract import extract_file
from brainalign.runlog import logged

with logged(snakemake.log[0]):
    extract_file(snakemake.input.stimuli, snakemake.wildcards.model, snakemake.params.spec, snakemake.output[0],
                 seed=snakemake.params.seed)
