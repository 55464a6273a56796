"""brainalign's OpenMP wait policy is set when it is imported, before torch loads, and a
user's own setting is kept (see brainalign.threads)."""

import os
import subprocess
import sys

import pytest

PROBE = ("import os, sys; import brainalign; from brainalign.metrics import backend; "
         "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")


def _run(env_policy):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE"), ("passive", "passive")])
def test_wait_policy_is_set_on_import_and_a_users_value_is_kept(given, expected):
    assert _run(given) == [expected, "True"]


def test_after_torch_the_policy_is_not_pretended():
    from brainalign.threads import use_passive_wait

    code = ("import os, torch; os.environ.pop('OMP_WAIT_POLICY', None); "
            "from brainalign.threads import use_passive_wait; print(use_passive_wait())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
    assert use_passive_wait() in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))
