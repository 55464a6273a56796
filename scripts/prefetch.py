from brainalign.models.hub import fetch, write_lock
from brainalign.runlog import job

with job(snakemake):
    write_lock(snakemake.output[0], fetch(snakemake.wildcards.model, snakemake.params.entry,
                                          cache_dir=snakemake.params.cache_dir))
