"""Provenance names the workflow checkout that ran (its commit and whether a tracked file was
edited), the thread count and every library that can change a number."""

from __future__ import annotations

import json
import subprocess

import pytest

from brainalign.io import PROVENANCE_KEYS, checkout_state, library_versions, read_netcdf

from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"]


def _git(workdir, *args) -> str:
    return subprocess.run([*GIT, *args], cwd=workdir, check=True, capture_output=True, text=True).stdout.strip()


def test_every_number_changing_library_is_recorded():
    versions = library_versions()
    for lib in ("numpy", "scipy", "torch", "transformers", "scikit-learn", "nilearn", "mne", "nibabel", "pandas",
                "matplotlib", "pillow", "rsatoolbox", "himalaya", "h5py", "blas"):
        assert lib in versions and versions[lib] not in ("", "not installed", "unknown"), lib
    assert "openblas" in versions["blas"].lower()


def test_commit_and_dirty_flag_of_the_workflow_checkout(tmp_path):
    workdir = copy_workflow(tmp_path / "checkout")
    _git(workdir, "init", "-q")
    _git(workdir, "add", "-A")
    _git(workdir, "commit", "-q", "-m", "a user's checkout")
    head = _git(workdir, "rev-parse", "HEAD")
    target = "results/stimuli/sentences.nc"

    run_snakemake(workdir, "--cores", "1", target, check=True)
    attrs = read_netcdf(workdir / target).attrs
    assert set(PROVENANCE_KEYS) <= set(attrs)
    assert attrs["git_commit"] == head  # the checkout's commit, not the installed library's
    assert int(attrs["git_dirty"]) == 0
    assert attrs["workflow_checkout"] == str(workdir.resolve())
    assert int(attrs["threads"]) == 1  # the stimuli rule runs on one thread
    assert "nilearn" in json.loads(attrs["library_versions"])

    # an untracked file (results/, .snakemake/) does not count; an edited tracked file does
    with open(workdir / "scripts" / "stimuli.py", "a") as fh:
        fh.write("# a local edit\n")
    run_snakemake(workdir, "--cores", "1", target, "--forcerun", "stimuli", check=True)
    attrs = read_netcdf(workdir / target).attrs
    assert attrs["git_commit"] == head and int(attrs["git_dirty"]) == 1


def test_outside_a_git_checkout_the_commit_is_unknown(tmp_path):
    state = checkout_state(str(tmp_path))
    assert state["git_dirty"] == -1 and state["git_commit"].startswith("unknown")
