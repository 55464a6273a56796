from brainalign.jobs.score import score_file
from brainalign.runlog import job

with job(snakemake):
    score_file(snakemake.wildcards.metric, snakemake.input.activations, snakemake.input.brain, snakemake.output[0],
               snakemake.params.settings, seed=snakemake.params.seed, confidence=snakemake.params.confidence,
               names={"model": snakemake.wildcards.model, "dataset": snakemake.wildcards.dataset},
               plugins=snakemake.params.plugins)
