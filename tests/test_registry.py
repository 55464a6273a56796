"""The registries are the one list of metrics, model kinds and dataset kinds: the schema, the
Snakefile and validation read them; validating a config imports no torch; importing the library
leaves matplotlib's backend alone; an installed (non-editable) wheel validates a config."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from brainalign.config import SCHEMA_PATH, load_schema
from brainalign.datasets.registry import dataset_kinds
from brainalign.metrics.registry import builtin_metric_names, get_metric, metric_names
from brainalign.models.registry import model_kinds

from conftest import ROOT


def _schema():
    return yaml.safe_load(SCHEMA_PATH.read_text())


def test_registry_schema_and_snakefile_name_the_same_metrics():
    """The effective schema (the shipped file plus what the registry adds) lists exactly the
    registered metrics; a metric's settings schema is a $defs entry of the file or its own dict."""
    schema = load_schema()
    analyses = schema["properties"]["analyses"]["items"]["properties"]
    assert tuple(analyses["metrics"]["items"]["enum"]) == builtin_metric_names()
    assert tuple(analyses["settings"]["propertyNames"]["enum"]) == builtin_metric_names()
    metrics = schema["properties"]["metrics"]["properties"]
    assert set(metrics) - {"confidence"} == set(builtin_metric_names())
    shipped = _schema()["$defs"]
    for name in builtin_metric_names():
        assert f"metric_{name}" in schema["$defs"], name
        fragment = get_metric(name).schema
        assert isinstance(fragment, dict) or (fragment == f"metric_{name}" and fragment in shipped), name
    snakefile = (ROOT / "workflow" / "Snakefile").read_text()
    assert 'metric="|".join(metric_names())' in snakefile
    # no rule, script or rule file names a metric: the one score rule takes {metric}
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert "rule score:" in rules
    for name in metric_names():
        assert f"rule {name}:" not in rules
        assert f"/{name}.nc" not in rules and f"/{name}_" not in rules, name


def test_schema_kind_enums_match_the_kind_registries():
    schema = load_schema()
    assert set(schema["$defs"]["model"]["properties"]["kind"]["enum"]) == set(model_kinds())
    datasets = schema["properties"]["datasets"]["additionalProperties"]
    assert set(datasets["properties"]["kind"]["enum"]) == set(dataset_kinds())


def test_workflow_schema_is_the_packaged_schema():
    workflow_schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    assert workflow_schema.resolve() == SCHEMA_PATH.resolve() or \
        workflow_schema.read_bytes() == SCHEMA_PATH.read_bytes()
    assert SCHEMA_PATH.parent.name == "config" and SCHEMA_PATH.parent.parent.name == "brainalign"


def test_a_registered_metric_enters_the_schema():
    from brainalign.metrics.registry import Metric, _REGISTRY, register_metric

    register_metric(Metric(name="toy_schema_check", category="CKA", scorer="x:y", label=lambda s: "toy",
                           caption=lambda s: ["toy"],
                           schema={"type": "object", "properties": {"k": {"type": "integer", "default": 3}}}))
    try:
        schema = load_schema()
        assert "toy_schema_check" in schema["properties"]["analyses"]["items"]["properties"]["metrics"]["items"]["enum"]
        assert schema["properties"]["metrics"]["properties"]["toy_schema_check"] == {
            "$ref": "#/$defs/metric_toy_schema_check", "default": {}}
    finally:
        _REGISTRY.pop("toy_schema_check")


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=600)


def test_validating_a_config_imports_no_torch(tmp_path):
    """The first validation reads the files the config names (nilearn's bundled coordinate atlas
    for the ROI names); no model or plotting library is imported. A job's validation, which finds
    the success marker of the main process, imports none of them, nilearn included."""
    code = f"""
        import sys
        from brainalign.config import load_yaml, validate_config
        for path in ("config/config.yaml", "config/examples/kriegeskorte92.yaml"):
            validate_config(load_yaml(path), cache_dir={str(tmp_path)!r})
        heavy = sorted(m for m in ("torch", "transformers", "nilearn", "mne", "matplotlib") if m in sys.modules)
        print("heavy:", heavy)
    """
    first, cached = _python(code), _python(code)
    assert first.returncode == 0, first.stderr
    assert "heavy: ['nilearn']" in first.stdout
    assert cached.returncode == 0, cached.stderr
    assert "heavy: []" in cached.stdout


@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_importing_the_library_leaves_the_matplotlib_backend(backend):
    proc = _python(f"""
        import importlib, pkgutil
        import matplotlib
        matplotlib.use({backend!r})
        import brainalign, brainalign.figures
        for module in pkgutil.walk_packages(brainalign.__path__, "brainalign."):
            importlib.import_module(module.name)
        print("backend:", matplotlib.get_backend())
    """)
    assert proc.returncode == 0, proc.stderr
    assert f"backend: {backend}" in proc.stdout


def test_no_module_selects_a_backend():
    """Only entry points choose a backend: scripts/ and the ``brainalign`` command (inside main())."""
    for path in (ROOT / "src" / "brainalign").rglob("*.py"):
        if path.name != "cli.py":
            assert "matplotlib.use(" not in path.read_text(), path


@pytest.mark.slow
def test_installed_wheel_validates_the_default_config_from_another_folder(tmp_path):
    """``pip install .`` (not editable) into a fresh virtual environment; its dependencies come from
    the test environment's site-packages (added to the new one's path, so nothing is downloaded),
    while brainalign itself is the installed copy, schema included."""
    import site
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    new_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    assert ours in site.getsitepackages() or ours in sys.path
    Path(new_site, "deps_from_test_env.pth").write_text(ours + "\n")
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = textwrap.dedent(f"""
        import importlib, pkgutil
        import brainalign, brainalign.config
        from brainalign.config import load_config
        print("module:", brainalign.__file__)
        modules = [m.name for m in pkgutil.walk_packages(brainalign.__path__, "brainalign.")]
        for name in ("brainalign.jobs.score", "brainalign.figures.layer_curves", "brainalign.metrics.registry",
                     "brainalign.models.registry", "brainalign.datasets.registry", "brainalign.config.plan"):
            assert name in modules, name
        print("packages:", sorted({{importlib.import_module(m).__file__.startswith(brainalign.__path__[0])
                                    for m in modules if m.count(".") == 1}}))
        print("schema:", brainalign.config.SCHEMA_PATH, brainalign.config.SCHEMA_PATH.exists())
        config = load_config({str(ROOT / "config" / "config.yaml")!r}, base_dir={str(ROOT)!r})
        print("metrics:", config["metrics"]["rsa"]["n_permutations"], sorted(config["models"]))
        try:
            load_config({str(ROOT / "config" / "config.yaml")!r}, base_dir=".")
        except Exception as exc:
            print("error:", exc)
    """)
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=elsewhere,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"module: {new_site}" in proc.stdout, proc.stdout
    assert "packages: [True]" in proc.stdout, proc.stdout
    assert "schema: " + new_site in proc.stdout and proc.stdout.split("schema: ")[1].split("\n")[0].endswith("True")
    assert "metrics: 1000 ['minilm', 'smollm2', 'smollm2_all_tokens']" in proc.stdout
    # relative paths resolve against the working folder: from elsewhere the stimulus table is missing
    assert "error: config key 'stimuli.sentences.path': file not found" in proc.stdout


@pytest.mark.parametrize("plugins, message", [
    (["no_such_plugin_module"], "config key 'plugins.0': cannot import 'no_such_plugin_module': ModuleNotFoundError"),
    (["missing_plugin.py"], "config key 'plugins.0': cannot import 'missing_plugin.py': FileNotFoundError"),
])
def test_a_plugin_that_cannot_be_imported_is_named(plugins, message):
    from brainalign.config import ConfigError, load_yaml, validate_config

    config = load_yaml(ROOT / "config" / "config.yaml")
    config["plugins"] = plugins
    with pytest.raises(ConfigError) as err:
        validate_config(config, base_dir=ROOT)
    assert str(err.value).startswith(message), str(err.value)
