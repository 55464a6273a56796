from brainalign.jobs.summary import collect_file
from brainalign.runlog import logged

with logged(snakemake.log[0]):
    collect_file(dict(snakemake.input.items()), snakemake.output[0], control_of=snakemake.params.control_of)
