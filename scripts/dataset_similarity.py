from brainalign.jobs.dataset_similarity import compare_datasets_file
from brainalign.runlog import job

with job(snakemake):
    compare_datasets_file(snakemake.input.a, snakemake.input.b, snakemake.output[0], snakemake.params.measures,
                          snakemake.params.settings, seed=snakemake.params.seed,
                          names=(snakemake.wildcards.dataset_a, snakemake.wildcards.dataset_b))
