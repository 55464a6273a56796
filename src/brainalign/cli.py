"""Command line: ``brainalign plot results.nc -o figure.png [figure.svg ...]``."""

from __future__ import annotations

import argparse
import sys

from .plots import plot_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="brainalign", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plot = sub.add_parser("plot", help="redraw a figure from a scores or model-similarity NetCDF file")
    plot.add_argument("scores", help="results/scores/{dataset}/{model}/{metric}.nc or "
                                     "results/model_similarity/{stimuli}/{a}__{b}.nc")
    plot.add_argument("-o", "--output", nargs="+", required=True, help="figure file(s): .png, .svg or .pdf")
    plot.add_argument("--figure", choices=["auto", "heatmap", "depth"], default="auto",
                      help="for model-similarity files: layer heatmaps (default) or depth correspondence")
    args = parser.parse_args(argv)
    try:
        plot_file(args.scores, args.output, figure=args.figure)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"brainalign: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
