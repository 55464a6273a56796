from brainalign.datasets import write_dataset
from brainalign.runlog import job

activations = {k.removeprefix("activations_"): v for k, v in snakemake.input.items() if k.startswith("activations_")}
with job(snakemake):
    write_dataset(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.input.stimuli, snakemake.output[0],
                  seed=snakemake.params.seed, activations=activations, root=snakemake.input.get("simulated"))
