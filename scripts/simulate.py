from brainalign.runlog import job
from brainalign.simulate import simulate_dataset

activations = {k.removeprefix("activations_"): v for k, v in snakemake.input.items() if k.startswith("activations_")}
with job(snakemake):
    simulate_dataset(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.input.stimuli, activations,
                     snakemake.output[0], seed=snakemake.params.seed)
