from brainalign.models.hub import offline_environment

offline_environment()  # before transformers loads: a hub model comes from its pinned snapshot

from brainalign.jobs.extract import extract_file  # noqa: E402
from brainalign.runlog import job  # noqa: E402

with job(snakemake):
    extract_file(snakemake.input.stimuli, snakemake.wildcards.model, snakemake.params.spec, snakemake.output[0],
                 seed=snakemake.params.seed, lock=snakemake.input.get("lock"))
