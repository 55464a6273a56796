from brainalign.jobs.layer_geometry import collect_geometry_file
from brainalign.runlog import job

with job(snakemake):
    collect_geometry_file(dict(snakemake.input.items()), snakemake.output[0])
