from brainalign.jobs.maps import write_encoding_maps
from brainalign.runlog import job

with job(snakemake):
    write_encoding_maps(snakemake.input[0], snakemake.output[0])
