"""What a killed run leaves behind, cleared so that the same command resumes it.

Snakemake locks the working directory (``.snakemake/locks/``) for a run and removes the lock
when it ends; a run killed with ``kill -9`` (or by a cluster's time limit) cannot, and the
next run then stops with "Directory cannot be locked" until the user types ``--unlock``.
This module records which process holds the lock (:func:`record_owner`, from the
workflow's ``onstart``, i.e. once the lock is taken) and, when the next run starts, removes
the lock if that process is gone (:func:`clear_stale_lock`). A lock held by a live process,
or by a process on another host (whose liveness cannot be seen from here), is left alone,
so two live runs still cannot write into one directory.

:func:`sweep_partial_files` removes the hidden temporary files of killed writes
(``.<name>.*.part`` files and folders, :mod:`brainalign.io`); it runs once the lock is held, when no job of
this directory is writing.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

OWNER = Path(".snakemake") / "brainalign" / "lock_owner.json"
FAILED = Path(".snakemake") / "brainalign" / "failed"
LOCKS = Path(".snakemake") / "locks"


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (tells a reused pid apart), or None if it is gone.

    A killed process whose parent died with it lingers as a zombie (state ``Z``) until the
    system's init reaps it, which in some containers takes seconds; it holds nothing, so it
    counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X", "x") else fields[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "unknown"
        return "unknown"


def record_owner(workdir: str | os.PathLike = ".") -> None:
    """Record this process as the holder of the working directory's lock."""
    path = Path(workdir) / OWNER
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_time(os.getpid())}
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(owner))
    os.replace(tmp, path)


def clear_stale_lock(workdir: str | os.PathLike = ".") -> str | None:
    """Remove the lock of a run whose process is gone. Returns a message saying so, or None
    when there was no lock or it is (or may be) held by a live run."""
    workdir = Path(workdir)
    locks = sorted((workdir / LOCKS).glob("*.lock"))
    if not locks:
        return None
    try:
        owner = json.loads((workdir / OWNER).read_text())
    except (OSError, ValueError):
        return None  # a lock brainalign did not take (or from before it recorded owners): leave it
    if owner.get("host") != socket.gethostname():
        return None
    pid = int(owner.get("pid", -1))
    start = _start_time(pid) if pid > 0 else None
    if start is not None and (start == "unknown" or start == owner.get("start")):
        return None  # that run is alive
    for lock in locks:
        lock.unlink(missing_ok=True)
    (workdir / OWNER).unlink(missing_ok=True)
    return (f"brainalign: removed the lock of an earlier run that did not end (pid {pid}, killed?); "
            "its unfinished outputs are recomputed")


def record_failure(outputs, workdir: str | os.PathLike = ".") -> None:
    """Called by a failing job (:func:`brainalign.runlog.job`): remember its outputs.

    The rules flag their outputs ``update()``, so Snakemake keeps the previous output while the
    job reruns and puts it back when the job fails: a failed rerun loses nothing. But Snakemake
    then records the new params for that old file, and the next run would take it as up to
    date; :func:`age_failed_outputs` undoes that at the next start."""
    folder = Path(workdir) / FAILED
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{os.getpid()}.json").write_text(json.dumps([str(o) for o in outputs]))


def age_failed_outputs(workdir: str | os.PathLike = ".") -> list[Path]:
    """At the start of the next run, before its DAG (Snakemake restored the previous outputs of
    the failed jobs): date those outputs to 1970, older than every input, so this run
    recomputes them while the previous numbers stay readable meanwhile. Returns them."""
    folder = Path(workdir) / FAILED
    aged = []
    for record in sorted(folder.glob("*.json")):
        for name in json.loads(record.read_text()):
            path = Path(workdir) / name
            if path.exists():
                for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
                    os.utime(item, (0, 0), follow_symlinks=False)
                aged.append(path)
        record.unlink()
    return aged


def forget_failures(workdir: str | os.PathLike = ".") -> None:
    """From ``onsuccess``: every job succeeded, so no recorded failure stands."""
    for record in (Path(workdir) / FAILED).glob("*.json"):
        record.unlink(missing_ok=True)


def sweep_partial_files(results: str | os.PathLike = "results") -> list[Path]:
    """Remove the temporary files of killed writes under ``results``; returns them."""
    results = Path(results)
    if not results.is_dir():
        return []
    import shutil

    found = sorted(results.rglob(".*.part"))
    for path in found:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found
