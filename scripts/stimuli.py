from brainalign.runlog import logged
from brainalign.stimuli import write_stimulus_set

with logged(snakemake.log[0]):
    write_stimulus_set(snakemake.wildcards.stimset, snakemake.params.spec, snakemake.output[0])
