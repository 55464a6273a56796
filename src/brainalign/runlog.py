"""Copy a job's stderr (warnings, tqdm progress) into its Snakemake log file
while still showing it on the terminal."""

from __future__ import annotations

import contextlib
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
