"""RSA comparison speed: brainalign's vectorised Spearman/tau-a vs rsatoolbox.compare.

Same inputs in the same process: model RDMs of L layers against brain RDMs of S
subjects; prints both times, their ratio and the largest absolute difference.

    python benchmarks/rsa.py [--stimuli 92] [--layers 31] [--subjects 8]
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best_of
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsatoolbox_compare

from brainalign.metrics import rsa


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stimuli", type=int, default=92)
    parser.add_argument("--layers", type=int, default=31)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--units", type=int, default=576)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = rsa.correlation_rdm(rng.standard_normal((args.layers, args.stimuli, args.units)))
    brain = rsa.correlation_rdm(rng.standard_normal((args.subjects, args.stimuli, 200)))
    print(f"{args.layers} layers x {args.subjects} subjects, {args.stimuli} stimuli "
          f"({model.shape[1]} pairs)")
    print(f"{'comparison':<10} {'brainalign s':>13} {'rsatoolbox s':>13} {'speed-up':>9} {'max |diff|':>11}")
    for method in ("spearman", "tau-a"):
        ours_t, ours = best_of(lambda: rsa.compare(model, brain, method))
        ref_t, ref = best_of(lambda: rsatoolbox_compare(RDMs(model), RDMs(brain), method=method),
                             repeats=1 if method == "tau-a" else 3)
        print(f"{method:<10} {ours_t:13.4f} {ref_t:13.4f} {ref_t / ours_t:8.1f}x {np.abs(ours - ref).max():11.1e}")


if __name__ == "__main__":
    main()
