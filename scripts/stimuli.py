from brainalign.runlog import job
from brainalign.stimuli import write_stimulus_set

with job(snakemake):
    write_stimulus_set(snakemake.wildcards.stimset, snakemake.params.spec, snakemake.output[0])
