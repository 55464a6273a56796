"""The key numbers of a run, for the golden-score regression tests.

For every scores file ``results/scores/<dataset>/<model>/<metric>.nc`` and every ROI: the best
layer (by subject mean, in the metric's direction; for time-resolved data the best layer x time),
its score, interval, chance level, p value, the noise ceiling, and the held-out best-layer score.
``tests/golden/*.json`` hold these numbers for the default run and the 92-image example; the tests
compare a fresh run with them at 1e-10, so any change of a score shows in review.

    python tools/golden_scores.py RESULTS_DIR OUT.json    # write (after a deliberate change)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import xarray as xr

VALUES = ("score_mean", "boot_ci_low", "boot_ci_high", "null_mean", "p_value")
PER_ROI = ("ceiling_low", "ceiling_high", "best_heldout")
TOLERANCE = 1e-10


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def key_numbers(results: Path) -> dict:
    """``{"<dataset>/<model>/<metric>": {roi: {...}}}`` for every scores file under ``results``."""
    out = {}
    for path in sorted(Path(results).glob("scores/*/*/*.nc")):
        key = "/".join(path.with_suffix("").parts[-3:])
        with xr.open_dataset(path, engine="h5netcdf") as scores:
            higher = bool(int(scores.attrs.get("higher_is_better", 1)))
            entry = {}
            for roi in scores["roi"].values.astype(str):
                s = scores.sel(roi=roi)
                mean = s["score_mean"].transpose("layer", ...).values
                filled = np.where(np.isfinite(mean), mean if higher else -mean, -np.inf)
                index = np.unravel_index(int(np.argmax(filled)), filled.shape)
                cell = {"best_layer": str(s["layer"].values[index[0]])}
                if len(index) > 1:
                    cell["best_time"] = _number(s["time"].values[index[1]])
                for name in VALUES:
                    if name in s:
                        cell[name] = _number(s[name].transpose("layer", ...).values[index])
                for name in PER_ROI:
                    if name in s:
                        value = s[name].values
                        cell[name] = _number(value[index[1]] if value.ndim else value)
                entry[roi] = cell
            out[key] = entry
    return out


def differences(actual: dict, expected: dict, tolerance: float = TOLERANCE) -> list[str]:
    """What differs between two :func:`key_numbers` results (numbers beyond ``tolerance``)."""
    found = []
    for key in sorted(set(actual) | set(expected)):
        if key not in actual or key not in expected:
            found.append(f"{key}: {'missing' if key not in actual else 'not in the golden file'}")
            continue
        for roi in sorted(set(actual[key]) | set(expected[key])):
            a, e = actual[key].get(roi, {}), expected[key].get(roi, {})
            for name in sorted(set(a) | set(e)):
                x, y = a.get(name), e.get(name)
                same = (x == y) if not isinstance(x, float) or not isinstance(y, float) else abs(x - y) <= tolerance
                if not same:
                    found.append(f"{key} {roi} {name}: {x!r} (golden {y!r})")
    return found


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    numbers = key_numbers(Path(argv[0]))
    if not numbers:
        print(f"no scores files under {argv[0]}/scores", file=sys.stderr)
        return 1
    Path(argv[1]).write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    print(f"wrote {argv[1]}: {len(numbers)} scores files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
