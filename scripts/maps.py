from brainalign.jobs.maps import write_encoding_maps
from brainalign.runlog import logged

with logged(snakemake.log[0]):
    write_encoding_maps(snakemake.input[0], snakemake.output[0])
