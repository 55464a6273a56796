from brainalign.jobs.model_similarity import compare_models_file
from brainalign.runlog import job

with job(snakemake):
    compare_models_file(snakemake.input.a, snakemake.input.b, snakemake.output[0], snakemake.params.measures,
                        snakemake.params.settings, seed=snakemake.params.seed,
                        names=(snakemake.wildcards.model_a, snakemake.wildcards.model_b))
