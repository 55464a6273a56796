"""The same config gives the same numbers: under `--cores 1` and `--cores 2`, under any thread
count of the numeric libraries a job is started with, and after `kill -9` of the whole run at
any stage followed by the README's command again (slow: reduced default runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REDUCED_CONFIG, reduced_checkout

pytestmark = pytest.mark.slow

RUN = [sys.executable, "-m", "brainalign.cli", "run", "--configfile", REDUCED_CONFIG]
ONE_CORE = [*RUN, "--cores", "1"]
REPORT = [sys.executable, "-m", "brainalign.cli", "report", "--configfile", REDUCED_CONFIG]


def data_variables(results: Path) -> dict[str, np.ndarray]:
    """Every array in every NetCDF (all groups) and every NIfTI image under ``results``."""
    import nibabel as nib

    arrays = {}
    for path in sorted(results.rglob("*.nc")):
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: arrays.__setitem__(f"{path.relative_to(results)}:{name}", obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    for path in sorted(results.rglob("*.nii.gz")):
        arrays[str(path.relative_to(results))] = np.asarray(nib.load(path).dataobj)
    return arrays


def assert_identical(a: Path, b: Path, at_least: int = 100) -> None:
    x, y = data_variables(a), data_variables(b)
    assert sorted(x) == sorted(y), set(x) ^ set(y)
    assert len(x) >= at_least
    differ = []
    for key in x:
        u, v = np.asarray(x[key]), np.asarray(y[key])
        same = u.shape == v.shape and (np.array_equal(u, v, equal_nan=True) if u.dtype.kind in "fc"
                                       else np.array_equal(u, v))
        if not same:
            differ.append(key)
    assert not differ, f"{len(differ)} of {len(x)} arrays differ, e.g. {differ[:10]}"


def test_thread_environment_of_a_job_does_not_change_its_numbers(reduced_run, tmp_path):
    """The score jobs rerun with 1 and with 2 threads in the numeric libraries' environment
    (OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS; and torch's own count, which
    the job pins) write the same arrays."""
    outputs = {}
    for n in (1, 2):
        workdir = reduced_checkout(tmp_path / f"threads{n}")
        (workdir / "results").symlink_to(reduced_run / "results", target_is_directory=True)
        out = tmp_path / f"encoding_{n}.nc"
        code = f"""
import torch
torch.set_num_threads({n})
from brainalign.jobs.score import score_file
from brainalign.config import load_config, analysis_settings
from brainalign.threads import pin_threads
config = load_config("{REDUCED_CONFIG}")
pin_threads(config["threads"])
score_file("encoding", "results/activations/sentences/minilm.nc", "results/brain/fmri.nc", "{out}",
           analysis_settings(config, "fmri", "minilm", "encoding"), seed=config["seed"],
           confidence=config["metrics"]["confidence"], names={{"model": "minilm", "dataset": "fmri"}})
"""
        env = {**os.environ, **{v: str(n) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
               "TQDM_DISABLE": "1"}
        subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, check=True, capture_output=True)
        outputs[n] = out
    with h5py.File(outputs[1]) as f, h5py.File(outputs[2]) as g:
        names = [k for k in f if isinstance(f[k], h5py.Dataset)]
        assert "score" in names and "target_r" in names
        for k in names:
            np.testing.assert_array_equal(f[k][()], g[k][()], err_msg=k)
    with h5py.File(outputs[1]) as f, h5py.File(reduced_run / "results/scores/fmri/minilm/encoding.nc") as g:
        np.testing.assert_array_equal(f["score"][()], g["score"][()])


def _start(cmd, workdir) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "TQDM_DISABLE": "1"})


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    """kill -9 the whole process group once ``ready()`` holds."""
    start = time.monotonic()
    while not ready():
        assert proc.poll() is None, "the run ended before the point where it was to be killed"
        assert time.monotonic() - start < timeout
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _parts(results: Path) -> list[Path]:
    return sorted(results.rglob("*.part"))


def test_kill_9_at_any_stage_then_the_same_command_finishes_with_the_same_numbers(reduced_run, tmp_path):
    """Killed during extraction, during a score job and while the report is written, the same
    command finishes with the numbers of the uninterrupted run. These runs use ``--cores 1``, the
    uninterrupted one ``--cores 2``: Snakemake gives a job min(threads, --cores) and sets
    OMP_NUM_THREADS & co. from it; the numbers must not follow."""
    workdir = reduced_checkout(tmp_path / "killed")
    results = workdir / "results"

    # 1. during extraction: the activation file is being written
    proc = _start(ONE_CORE, workdir)
    _kill_when(proc, lambda: any(results.glob("activations/sentences/.minilm.nc.*.part")))
    assert (workdir / ".snakemake" / "locks").exists() and any((workdir / ".snakemake" / "locks").iterdir())
    assert _parts(results)

    # 2. the same command; killed during a score job
    proc = _start(ONE_CORE, workdir)
    _kill_when(proc, lambda: (results / "logs/score/fmri/minilm/encoding.log").exists()
               and not (results / "scores/fmri/minilm/encoding.nc").exists())
    assert not (results / "scores/fmri/minilm/encoding.nc").exists()

    # 3. the same command again, to the end
    proc = subprocess.run(ONE_CORE, cwd=workdir, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "removed the lock of an earlier run" in proc.stderr
    assert "--unlock" not in proc.stderr

    # 4. the report, killed while Snakemake writes it; the previous report (none) is untouched
    proc = _start(REPORT, workdir)
    _kill_when(proc, lambda: any(results.glob(".report.report-*.html")))
    assert not (results / "report.html").exists()
    proc = subprocess.run(REPORT, cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (results / "report.html").read_bytes()
    assert len(report) > 100_000 and report.rstrip().endswith(b"</html>")

    assert not _parts(results), _parts(results)
    assert not list(results.glob(".report.report-*"))
    assert_identical(reduced_run / "results", results)


def test_a_failed_rerun_keeps_the_previous_output_and_the_next_run_redoes_it(reduced_run, tmp_path):
    """A job that fails inside (here: its input file is broken after validation) must not cost
    the earlier output: Snakemake restores it (update()), and brainalign dates it back so the
    next run, with the input repaired, recomputes it rather than trusting it."""
    import shutil

    workdir = tmp_path / "failed"
    shutil.copytree(reduced_run, workdir, symlinks=True)
    results = workdir / "results"
    brain, score = results / "brain" / "fmri.nc", results / "scores" / "fmri" / "minilm" / "rsa.nc"
    before = score.read_bytes()
    good, stat = brain.read_bytes(), brain.stat()
    brain.write_bytes(b"not a NetCDF file\n" * 100)
    os.utime(brain, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # Snakemake sees no change

    proc = subprocess.run([*RUN, "--forcerun", "score", "--", str(score.relative_to(workdir))], cwd=workdir,
                          capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode != 0 and "OSError" in proc.stderr, proc.stderr[-3000:]  # the job ran and failed
    assert score.read_bytes() == before  # the earlier output survived the failed rerun

    brain.write_bytes(good)
    os.utime(brain, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    proc = subprocess.run(RUN, cwd=workdir, capture_output=True,
                          text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kept its previous version when its job failed; recomputing it" in proc.stderr
    assert "localrule score" in proc.stdout + proc.stderr  # recomputed, not trusted
    assert_identical(reduced_run / "results" / "scores", results / "scores", at_least=20)
