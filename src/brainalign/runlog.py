"""The frame of a workflow job: its log (stderr, warnings and tqdm progress copied into the
rule's log file while still shown on the terminal), its thread pin, its checkout for
provenance, and one-line reports of user errors (:func:`job`)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, data):
        for s in self.streams:
            s.write(data)
            s.flush()
        return len(data)

    def flush(self):
        for s in self.streams:
            s.flush()

    def isatty(self):
        return False


@contextlib.contextmanager
def logged(path):
    """Within the block, stderr also goes to ``path`` (the rule's ``log:``)."""
    if not path:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        old = sys.stderr
        sys.stderr = _Tee(old, fh)
        try:
            yield
        except BaseException as exc:
            print(f"{type(exc).__name__}: {exc}", file=fh)
            raise
        finally:
            sys.stderr = old


@contextlib.contextmanager
def job(smk):
    """The frame of every workflow job script (``with job(snakemake): ...``):

    - pins the numeric libraries to the rule's ``threads`` param (config ``threads`` for the
      multi-threaded rules, 1 for the others; :mod:`brainalign.threads`), so the numbers do
      not depend on ``--cores`` or on the cores a cluster grants;
    - names the workflow checkout the job runs from (the scripts' folder), whose git commit
      and dirty flag go into every file's provenance (:func:`brainalign.io.provenance`);
    - copies stderr into the rule's log (:func:`logged`);
    - reports a user error (:class:`brainalign.errors.UserInputError`: a bad key or file)
      in one line, ``brainalign: error: ...``, and exits 1 without a traceback. Any other
      exception is a bug and keeps its traceback;
    - on any failure, records the job's outputs, whose previous versions Snakemake restores
      (``update()``), to be recomputed by the next run
      (:func:`brainalign.workflow_state.record_failure`).
    """
    from .errors import UserInputError
    from .threads import pin_threads

    pin_threads(getattr(smk.params, "threads", 1))
    os.environ["BRAINALIGN_CHECKOUT"] = str(Path(smk.scriptdir).resolve().parent)
    from .workflow_state import record_failure

    failed = None
    try:
        with logged(smk.log[0] if smk.log else None):
            try:
                yield
            except UserInputError as exc:
                failed = f"brainalign: error: {exc}"
                print(failed, file=sys.stderr)
    except BaseException:
        record_failure(list(smk.output))
        raise
    finally:
        _log_peak_memory(smk.log[0] if smk.log else None)
    if failed:
        record_failure(list(smk.output))
        raise SystemExit(1)


def peak_memory_mb() -> float:
    """This process's peak resident set size so far (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _log_peak_memory(path) -> None:
    """Append the job's peak resident memory to its log (what ``brainalign plan`` estimates)."""
    if path and Path(path).exists():
        with open(path, "a") as fh:
            print(f"brainalign: peak resident memory {peak_memory_mb():.0f} MB", file=fh)
