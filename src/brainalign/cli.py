"""Command line.

``brainalign run [snakemake arguments ...]``
    run the workflow (``snakemake --profile profiles/local``, config files read strictly).
``brainalign report [-o results/report.html] [snakemake arguments ...]``
    write the report atomically.
``brainalign plan [--configfile config/config.yaml]``
    the estimated peak memory of every extraction job, and what it asks SLURM for.
``brainalign plot results.nc -o figure.png [figure.svg ...]``
    redraw a report figure from its NetCDF file.

See :mod:`brainalign.workflow_commands` for ``run`` and ``report``.
"""

from __future__ import annotations

import argparse
import sys

from .figures.needs import FIGURES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="brainalign", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plot = sub.add_parser("plot", help="redraw any report figure from the NetCDF file it was drawn from")
    plot.add_argument("scores", help="results/scores/{dataset}/{model}/{metric}.nc, "
                                     "results/model_similarity/{stimuli}/{a}__{b}.nc, "
                                     "results/summary/{dataset}/{metric}.nc, results/stimuli/{stimuli}.nc, "
                                     "results/brain/{dataset}.nc, ...")
    plot.add_argument("-o", "--output", nargs="+", required=True,
                      help="figure file(s): .png, .svg or .pdf (and .csv for --figure table)")
    plot.add_argument("--figure", choices=FIGURES, default="auto",
                      help="auto (default): layer curves for scores files (time curves when they have a "
                           "time dimension), heatmaps for similarity files; heatmap or depth: layer "
                           "heatmaps or depth correspondence of a model-similarity file; rdms: brain RDM "
                           "next to the best layer's RDM per ROI; mds: 2-D MDS of layer and brain RDMs; "
                           "time: score over time per layer (RSA scores with those variables); models: every model "
                           "against relative depth and table: best layer per model x ROI (summary files); "
                           "stimuli: the stimulus set; brain_data: ROI reliability, size and location; "
                           "surface: encoding maps on fsaverage5")
    sub.add_parser("run", help="run the workflow: snakemake --profile profiles/local [arguments], after reading "
                               "every --configfile strictly (file and line of a YAML error, duplicated keys)")
    plan = sub.add_parser("plan", help="estimated peak RAM and GPU memory of every extraction job, and the mem_mb and "
                                       "GPUs the workflow asks SLURM for")
    plan.add_argument("--configfile", default="config/config.yaml", help="config file (default config/config.yaml)")
    report = sub.add_parser("report", help="write the Snakemake report atomically (temporary name, then renamed)")
    report.add_argument("-o", "--output", default="results/report.html", help="report file (.html or .zip)")
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        from .workflow_commands import run_workflow

        return run_workflow(extra)
    if args.command == "report":
        from .workflow_commands import write_report

        return write_report(args.output, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "plan":
        return _plan(args.configfile)
    import matplotlib

    matplotlib.use("Agg")  # a command line tool writes files; it never opens a window
    from .figures import plot_file

    try:
        plot_file(args.scores, args.output, figure=args.figure)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"brainalign: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _plan(configfile: str) -> int:
    from .config import load_config
    from .errors import UserInputError
    from .job_memory import format_plan, plan

    try:
        print(format_plan(plan(load_config(configfile))))
    except UserInputError as exc:
        print(f"brainalign: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
