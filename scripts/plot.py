from brainalign.plots import plot_file
from brainalign.runlog import logged

with logged(snakemake.log[0]):
    plot_file(snakemake.input[0], list(snakemake.output), figure=snakemake.params.get("figure", "auto"))
