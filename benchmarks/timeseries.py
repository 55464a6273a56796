"""Encoding of a story's time series: every subject x ROI of a layer in one fit, against one fit
per subject (the same settings, the same numbers).

Reads the files of a finished run of ``config/examples/brennan2016_alice.yaml`` (the volume-level
features of one model and the brain file) and times :func:`brainalign.jobs.encoding.run_encoding`
on the first ``--layers`` layers with ``stack_subjects`` true and false, alternating, best of
``--repeats``; prints both times, the ratio and the largest difference of the held-out r.

    python benchmarks/timeseries.py                      # SmolLM2, 4 layers, the example's settings
    python benchmarks/timeseries.py --model minilm --layers 7
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import yaml

from brainalign.config.plan import analysis_settings
from brainalign.jobs.common import load_inputs
from brainalign.jobs.encoding import run_encoding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/examples/brennan2016_alice.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--dataset", default="alice")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    config = yaml.safe_load(open(args.config))
    settings = {**analysis_settings(config, args.dataset, args.model, "encoding")}
    layers, _, brain = load_inputs(f"{args.results}/features/{args.dataset}/{args.model}.nc",
                                   f"{args.results}/brain/{args.dataset}.nc")
    layers = layers[: args.layers]
    n_subjects = len(np.unique(brain["subject"].values))
    print(f"{args.model}: {len(layers)} layers x {brain.sizes['neuroid']} time courses ({n_subjects} subjects), "
          f"{brain.sizes['stimulus']} volumes, {layers[0].sizes['unit']} features, "
          f"{settings.get('n_permutations', 0)} circular shifts")
    best = {True: np.inf, False: np.inf}
    r = {}
    for _ in range(args.repeats):
        for stacked in (True, False):
            start = time.perf_counter()
            out = run_encoding(layers, brain, {**settings, "stack_subjects": stacked}, seed=int(config["seed"]))[0]
            best[stacked] = min(best[stacked], time.perf_counter() - start)
            r[stacked] = out["target_r"].values
    print(f"one fit per layer (stack_subjects: true): {best[True]:.1f} s")
    print(f"one fit per subject and layer:            {best[False]:.1f} s")
    print(f"ratio {best[False] / best[True]:.1f}x; largest |r difference| {np.nanmax(np.abs(r[True] - r[False])):.1e}")


if __name__ == "__main__":
    main()
