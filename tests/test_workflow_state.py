"""The stale-lock check of :mod:`brainalign.workflow_state` on real processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brainalign import workflow_state as ws


def _hold_lock(workdir: Path, pid: int) -> None:
    (workdir / ws.LOCKS).mkdir(parents=True)
    (workdir / ws.LOCKS / "0.input.lock").write_text("x")
    (workdir / ws.OWNER).parent.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": socket.gethostname(), "start": ws._start_time(pid)}
    (workdir / ws.OWNER).write_text(json.dumps(owner))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_lock_of_a_live_run_is_kept_and_of_a_killed_one_removed_even_while_a_zombie(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _hold_lock(tmp_path, proc.pid)
        assert ws.clear_stale_lock(tmp_path) is None  # alive: kept
        assert any((tmp_path / ws.LOCKS).iterdir())
        os.kill(proc.pid, signal.SIGKILL)
        # not reaped yet: a zombie, as a killed Snakemake is until init reaps it
        for _ in range(500):
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
            time.sleep(0.01)
        assert state == "Z"
        message = ws.clear_stale_lock(tmp_path)
        assert message is not None and f"pid {proc.pid}" in message
        assert not any((tmp_path / ws.LOCKS).iterdir()) and not (tmp_path / ws.OWNER).exists()
    finally:
        proc.kill()
        proc.wait()


def test_lock_owned_on_another_host_is_left_alone(tmp_path):
    _hold_lock(tmp_path, 999_999_999)
    owner = json.loads((tmp_path / ws.OWNER).read_text())
    (tmp_path / ws.OWNER).write_text(json.dumps({**owner, "host": "elsewhere"}))
    assert ws.clear_stale_lock(tmp_path) is None
    assert any((tmp_path / ws.LOCKS).iterdir())
