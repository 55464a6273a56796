"""A real single-node SLURM cluster for tests: Debian's slurm-wlm and munge on localhost.

:func:`start` installs the packages when they are missing (apt, needs root), writes a minimal
``slurm.conf`` (one node with this machine's CPUs and memory, one partition, a job-completion
log as SLURM's own record of every job), and starts munged, slurmctld and slurmd;
:func:`stop` stops them. :func:`unavailable` says why a cluster cannot be started here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
JOBCOMP = Path("/var/log/slurm/jobcomp.log")
PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("slurmd", "slurmctld", "munged")


def unavailable() -> str | None:
    """None when a cluster can be started here, else the reason it cannot."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (to install slurm-wlm and munge and run their daemons)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "slurm-wlm is not installed and there is no apt-get to install it"
    return None


def _run(*cmd, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def install() -> None:
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if _run("apt-get", "install", "-y", "-q", *PACKAGES, check=False, env=env).returncode != 0:
        _run("apt-get", "update", "-q", env=env)
        _run("apt-get", "install", "-y", "-q", *PACKAGES, env=env)


def slurm_conf(host: str, cpus: int, memory_mb: int) -> str:
    return f"""# brainalign test cluster: one node, written by tests/slurm_cluster.py
ClusterName=brainalign
SlurmctldHost={host}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc={JOBCOMP}
MinJobAge=3600
ReturnToService=2
MpiDefault=none
DefMemPerCPU=1000
# Offer more CPUs than the machine has (config_overrides): a group of small figure jobs asks
# for one CPU per job it runs in parallel, as on a real cluster node.
SlurmdParameters=config_overrides
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def start() -> None:
    """Install if needed, configure, and start munged, slurmctld and slurmd; wait until the node is idle."""
    install()
    stop()
    host = socket.gethostname()
    cpus = max(8, os.cpu_count() or 1)
    memory_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    for d in ("/etc/slurm", "/var/spool/slurmd", "/var/spool/slurmctld", "/var/log/slurm", "/run/munge",
              "/var/log/munge", "/var/lib/munge", "/etc/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
    for d in ("/var/spool/slurmctld", "/var/spool/slurmd"):  # a fresh cluster: no jobs of earlier runs
        for p in Path(d).iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    JOBCOMP.unlink(missing_ok=True)
    CONF.write_text(slurm_conf(host, cpus, memory_mb))
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    for p in ("/etc/munge", "/run/munge", "/var/log/munge", "/var/lib/munge"):
        shutil.chown(p, "munge", "munge")
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    _run("su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged")
    _run("slurmctld")
    _run("slurmd")
    for _ in range(60):
        state = _run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
        if state == "idle":
            return
        time.sleep(1)
    raise RuntimeError(f"the SLURM node did not become idle (state {state!r}); see /var/log/slurm/")


def stop() -> None:
    """Stop the daemons and remove the ``slurm.conf`` this module wrote. Left behind, it makes
    every SLURM client command wait for the absent controller: the SLURM executor plugin runs
    ``scontrol show config`` when Snakemake loads it, which then costs 10 s per ``snakemake`` call."""
    for daemon in DAEMONS:
        _run("pkill", "-x", daemon, check=False)
    for _ in range(30):
        if all(_run("pgrep", "-x", d, check=False).returncode != 0 for d in DAEMONS):
            break
        time.sleep(0.5)
    if CONF.exists() and CONF.read_text().startswith("# brainalign test cluster"):
        CONF.unlink()


def completed_jobs() -> list[dict]:
    """SLURM's job-completion records: one dict per finished job (JobId, JobState, Name, ...)."""
    if not JOBCOMP.exists():
        return []
    jobs = []
    for line in JOBCOMP.read_text().splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields:
            jobs.append(fields)
    return jobs
