"""The workflow on a real SLURM cluster (Debian's slurm-wlm, one node on localhost).

A reduced default workflow runs with ``--profile profiles/slurm`` (the SLURM executor plugin);
one running job is killed with ``scancel`` and must be retried. SLURM's own job-completion log
must show every job, and the scores must equal a local run's. Needs root (CI runs as root);
elsewhere the tests skip and say why.
"""

from __future__ import annotations

import copy
import re
import subprocess
import time

import numpy as np
import pytest
import yaml

import slurm_cluster
from brainalign.io import read_netcdf
from conftest import ROOT, SNAKEMAKE, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

SCORE_VARS = ("score", "score_mean", "ci_low", "ci_high", "p_value", "ceiling_low", "ceiling_high")


def reduced_config() -> dict:
    """The default config cut to one model, the simulated fMRI, RSA and CKA, and no GPU."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["models"] = {"minilm": config["models"]["minilm"]}
    fmri = copy.deepcopy(config["datasets"]["fmri"])
    fmri["simulate"]["subjects"] = 2
    config["datasets"] = {"fmri": fmri}
    config["analyses"] = [{"datasets": ["fmri"], "models": ["minilm"], "metrics": ["rsa", "cka"]}]
    for key in ("banded_encoding", "model_comparisons", "dataset_comparisons"):
        config.pop(key, None)
    config["metrics"]["rsa"].update(n_permutations=100, n_bootstrap=100)
    config["metrics"]["cka"].update(n_permutations=100, n_bootstrap=20)
    # extraction's mem_mb is the plan's (brainalign plan); the others are fixed
    config["resources"] = {"extract": {"gpu": 0}, "analysis": {"mem_mb": 3000}, "light": {"mem_mb": 1000}}
    return config


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_cluster.unavailable()
    if reason:
        print(f"SLURM tests skipped: {reason}")
        pytest.skip(reason)
    slurm_cluster.start()
    try:
        yield
    finally:
        slurm_cluster.stop()


def _workdir(tmp_path_factory, name):
    workdir = copy_workflow(tmp_path_factory.mktemp(name))
    (workdir / "reduced.yaml").write_text(yaml.safe_dump(reduced_config(), sort_keys=False))
    return workdir


def _running_job(rule: str) -> str | None:
    """SLURM id of a running job of ``rule`` (the plugin names jobs by rule in the comment)."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k|%j"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        job_id, comment, name = (line.split("|") + ["", ""])[:3]
        if comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_wildcards"):
            return job_id
    return None


def test_reduced_workflow_on_slurm_survives_scancel(cluster, tmp_path_factory, capsys):
    local = _workdir(tmp_path_factory, "local")
    run_snakemake(local, "--configfile", "reduced.yaml", "--cores", "2", check=True)

    workdir = _workdir(tmp_path_factory, "slurm")
    log = (workdir / "snakemake.log").open("w")
    proc = subprocess.Popen([*SNAKEMAKE, "--profile", "profiles/slurm", "--configfile", "reduced.yaml",
                             "--slurm-status-command", "squeue", "--slurm-no-account", "--jobs", "4",
                             "--slurm-init-seconds-before-status-checks", "5", "--seconds-between-status-checks", "5"],
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True)
    cancelled = None
    deadline = time.time() + 1500
    try:
        while proc.poll() is None and time.time() < deadline:
            if cancelled is None:
                cancelled = _running_job("brain")
                if cancelled:
                    time.sleep(3)  # let it get going, then kill it as a scheduler would
                    subprocess.run(["scancel", cancelled], check=True)
            time.sleep(2)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (workdir / "snakemake.log").read_text()
    print(output[-6000:])
    assert proc.returncode == 0, output[-4000:]
    assert cancelled is not None, "never saw the brain job running"

    # SLURM's own records: every submitted job id appears in the job-completion log; the cancelled
    # one as CANCELLED, and the workflow still completed every job on a resubmission.
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    records = {job["JobId"]: job for job in slurm_cluster.completed_jobs()}
    with capsys.disabled():  # shown in CI's output even though pytest captures output
        print(f"\nSLURM job ids submitted by Snakemake: {sorted(submitted, key=int)}; scancel'd: {cancelled}")
        print("SLURM job-completion log:\n" + "\n".join(
            f"  JobId={j['JobId']} JobState={j['JobState']} NodeList={j.get('NodeList', '')} "
            f"Start={j.get('StartTime', '')} End={j.get('EndTime', '')}" for j in records.values()))
    assert submitted, output[-3000:]
    assert submitted <= set(records), (sorted(submitted), sorted(records))
    assert records[cancelled]["JobState"] == "CANCELLED"
    completed = [j for j in records.values() if j["JobState"] == "COMPLETED"]
    assert len(completed) >= len(submitted) - 1

    # the extraction job asked SLURM for the plan's mem_mb (scontrol keeps finished jobs for MinJobAge)
    from brainalign.config import load_config
    from brainalign.job_memory import plan

    (planned,) = plan(load_config(workdir / "reduced.yaml", base_dir=workdir), base_dir=workdir)
    extract_ids = [job_id for job_id, path in re.findall(r"submitted with SLURM jobid (\d+) \(log: ([^)]*)\)", output)
                   if "rule_extract" in path]
    assert extract_ids, output[-3000:]
    shown = subprocess.run(["scontrol", "show", "job", extract_ids[-1]], capture_output=True, text=True).stdout
    asked = re.search(r"(?:MinMemoryNode|mem)=(\d+)M", shown)
    with capsys.disabled():
        print(f"extraction job {extract_ids[-1]}: plan {planned.ram_mb} MB peak, mem_mb {planned.mem_mb}; "
              f"scontrol: {' '.join(w for w in shown.split() if 'Mem' in w or 'TRES' in w)}")
    assert asked and int(asked.group(1)) == planned.mem_mb, shown

    # the same numbers as the local run
    local_scores = sorted((local / "results" / "scores").rglob("*.nc"))
    assert [p.relative_to(local) for p in local_scores] == \
        [p.relative_to(workdir) for p in sorted((workdir / "results" / "scores").rglob("*.nc"))]
    for path in local_scores:
        a, b = read_netcdf(path), read_netcdf(workdir / path.relative_to(local))
        for var in SCORE_VARS:
            np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=f"{path.name}:{var}")
    brain_a = read_netcdf(local / "results" / "brain" / "fmri.nc")
    brain_b = read_netcdf(workdir / "results" / "brain" / "fmri.nc")
    np.testing.assert_array_equal(brain_a["responses"].values, brain_b["responses"].values)
