from brainalign.jobs.summary import collect_file
from brainalign.runlog import job

with job(snakemake):
    collect_file(dict(snakemake.input.items()), snakemake.output[0], control_of=snakemake.params.control_of,
                 model_info=snakemake.params.model_info)
