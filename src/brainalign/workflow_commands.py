"""``brainalign run`` and ``brainalign report``: Snakemake, with what its command line lacks.

``brainalign run [snakemake arguments ...]``
    ``snakemake --profile profiles/local`` (unless a ``--profile`` is given), after reading
    every ``--configfile`` strictly: Snakemake reads those files itself before the workflow
    starts, says only "Config file is not valid JSON or YAML" on a syntax error, and keeps
    the last of two equal keys; here the error names the file and the line.
``brainalign report [-o results/report.html] [snakemake arguments ...]``
    ``snakemake --report`` into a hidden temporary file beside the report (same suffix, which
    Snakemake needs), renamed only when Snakemake succeeded: a report killed midway leaves
    the previous report untouched, and the next call removes the killed one's file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEFAULT_PROFILE = "profiles/local"


def _option_values(args: list[str], names: tuple[str, ...]) -> list[str]:
    """The values of a Snakemake option that takes several (``--configfile a.yaml b.yaml``)."""
    values, taking = [], False
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in names:
            taking = not eq
            if eq:
                values.append(value)
        elif arg.startswith("-"):
            taking = False
        elif taking:
            values.append(arg)
    return values


def _snakemake(args) -> int:
    return subprocess.call([sys.executable, "-m", "snakemake", *args])


def run_workflow(args=()) -> int:
    """Check the config files strictly, then run Snakemake; returns its exit code."""
    from .config import ConfigError, load_yaml

    args = list(args)
    for path in _option_values(args, ("--configfile", "--configfiles")):
        try:
            load_yaml(path)
        except ConfigError as exc:
            print(f"brainalign: error: {exc}", file=sys.stderr)
            return 1
    if not any(a.split("=")[0] == "--profile" for a in args) and not os.environ.get("SNAKEMAKE_PROFILE"):
        args = ["--profile", DEFAULT_PROFILE, *args]
    return _snakemake(args)


def write_report(output: str | os.PathLike = "results/report.html", snakemake_args=()) -> int:
    """``snakemake --report`` (with ``snakemake_args``, e.g. ``--configfile X``) into ``output``,
    replaced only on success; returns Snakemake's exit code."""
    output = Path(output)
    if output.suffix not in (".html", ".zip"):
        print(f"brainalign: error: the report must end in .html or .zip: {output}", file=sys.stderr)
        return 2
    output.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{output.stem}.report-"
    for stale in output.parent.glob(f"{prefix}*{output.suffix}"):
        stale.unlink(missing_ok=True)
    tmp = output.parent / f"{prefix}{os.getpid()}{output.suffix}"
    try:
        code = _snakemake(["--report", str(tmp), *snakemake_args])
        if code == 0 and tmp.is_file() and tmp.stat().st_size > 0:
            os.replace(tmp, output)
            print(f"Report: {output}", file=sys.stderr)
            return 0
        return code or 1
    finally:
        tmp.unlink(missing_ok=True)
