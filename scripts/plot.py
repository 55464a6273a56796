import matplotlib

matplotlib.use("Agg")  # a workflow job writes files; it never opens a window

from brainalign.figures import plot_many  # noqa: E402
from brainalign.runlog import job  # noqa: E402

with job(snakemake):
    plot_many(snakemake.input[0], snakemake.params.figures)
