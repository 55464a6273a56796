"""envs/*.yaml (conda, per rule family) and envs/requirements.txt (pip) list exactly the
package's dependencies from pyproject.toml, with the same version bounds."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from conftest import ROOT

DEPENDENCIES = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
CONDA_NAME = {"torch": "pytorch", "matplotlib": "matplotlib-base"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def _env_requirements(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    listed = {}
    for item in env["dependencies"]:
        for requirement in (item["pip"] if isinstance(item, dict) else [item]):
            if requirement.startswith("-e") or requirement in ("pip",) or requirement.startswith("python="):
                continue
            name, spec = _split(requirement)
            listed[name] = spec
    return listed


@pytest.mark.parametrize("env", ["analysis", "extract"])
def test_conda_envs_match_pyproject(env):
    listed = _env_requirements(ROOT / "envs" / f"{env}.yaml")
    expected = {CONDA_NAME.get(n, n): s for n, s in map(_split, DEPENDENCIES) if n != "snakemake"}
    assert listed == expected


def test_pip_requirements_match_pyproject():
    lines = [line.strip() for line in (ROOT / "envs" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert dict(map(_split, lines)) == {**dict(map(_split, DEPENDENCIES)), "snakemake-executor-plugin-slurm": ">=1.0"}


def test_every_rule_names_an_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count("\nrule ") + text.startswith("rule ") == text.count('conda:\n        "../../envs/'), smk.name
