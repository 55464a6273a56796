"""The Snakemake HTML report, opened in headless Chromium (the system ``chromium``, driven by
Playwright) with the network blocked: no console or page errors, no request leaves the
file, every category is in the menu and one image per category decodes and is laid out.

The fast tests build a two-rule report in a temp dir (seconds); the slow one inspects the
default workflow's report and keeps a screenshot in the repo's ``results/`` for CI."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, run_snakemake

from report_browser import find_chromium, inspect_report, problems, summary  # tools/ (on pytest's pythonpath)

# The categories of the default workflow's report (``report(..., category=...)``).
CATEGORIES = ["Stimuli", "Models", "Brain data", "RSA", "CKA", "Encoding", "Summary"]
SCREENSHOT = ROOT / "results" / "report_screenshot.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TINY_CATEGORIES = ["Alpha", "Beta plots"]
# The figures are drawn by a plain Python script: `run:` jobs would each start a Snakemake
# subprocess, which loads every executor plugin (about 10 s here with the SLURM one).
TINY_PLOT = textwrap.dedent('''
    import sys

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for n, path in enumerate(sys.argv[1:], start=3):
        if path.endswith(".html"):
            with open(path, "w") as fh:
                fh.write("<table><tr><td>1</td></tr></table>")
            continue
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot(range(n))
        fig.savefig(path, dpi=60)
        plt.close(fig)
''')
TINY_SNAKEFILE = textwrap.dedent('''
    import sys

    PYTHON = sys.executable

    rule all:
        input: "alpha/one.png", "alpha/two.png", "beta/plot.svg", "beta/table.html"

    # Two subcategories: the report lists them before any result.
    rule alpha:
        output:
            report("alpha/one.png", category="Alpha", subcategory="one"),
            report("alpha/two.png", category="Alpha", subcategory="two"),
        shell: '"{PYTHON}" plot.py {output}'

    # One subcategory; its first row (sorted by label) is HTML, not an image.
    rule beta:
        output:
            report("beta/plot.svg", category="Beta plots", labels={"result": "b plot"}),
            report("beta/table.html", category="Beta plots", labels={"result": "a table"}),
        shell: '"{PYTHON}" plot.py {output}'
''')


def require_browser():
    """Skip (with the reason printed) unless Playwright and a system Chromium are installed."""
    reason = None
    if importlib.util.find_spec("playwright") is None:
        reason = "playwright is not installed (pip install -e '.[test]')"
    elif find_chromium() is None:
        reason = "no chromium on PATH (Debian: apt-get install chromium)"
    if reason:
        print(f"SKIP report browser test: {reason}")
        pytest.skip(reason)


def assert_valid_png(path: Path, min_bytes: int = 10_000):
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.width >= 800 and im.height >= 600, im.size
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 20, f"{path} looks blank ({len(colours)} colours)"


def assert_clean(result: dict, categories):
    report = summary(result)
    assert result["app_rendered"], report
    assert result["console_errors"] == [], report
    assert result["page_errors"] == [], report
    assert result["blocked_requests"] == [], report
    assert [c for c in categories if c not in result["categories_found"]] == [], report
    for category in categories:
        entry = result["per_category"][category]
        assert entry["ok"], f"{category}: {entry['error']}; skipped {entry['skipped']}\n{report}"
        assert min(entry["natural_size"]) > 0 and min(entry["bbox_size"]) > 0, report
        assert entry["mime"] in ("image/png", "image/svg+xml", "image/jpeg"), report
    assert problems(result) == [], report


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> Path:
    require_browser()
    workdir = tmp_path_factory.mktemp("tiny_report")
    (workdir / "Snakefile").write_text(TINY_SNAKEFILE)
    (workdir / "plot.py").write_text(TINY_PLOT)
    run_snakemake(workdir, "--cores", "1", check=True, timeout=300)
    run_snakemake(workdir, "--report", "report.html", check=True, timeout=300)
    return workdir / "report.html"


def test_inspector_on_a_tiny_report(tiny_report, tmp_path):
    shot = tmp_path / "shot.png"
    result = inspect_report(tiny_report, TINY_CATEGORIES, shot, screenshot_dir=tmp_path / "shots")
    print(summary(result))
    assert_clean(result, TINY_CATEGORIES)
    alpha, beta = result["per_category"]["Alpha"], result["per_category"]["Beta plots"]
    assert alpha["subcategories"] == ["one", "two"] and alpha["subcategory"] == "one"
    assert alpha["result_path"] == "alpha/one.png" and alpha["mime"] == "image/png"
    assert beta["result_path"] == "beta/plot.svg" and beta["mime"] == "image/svg+xml"
    assert any("not an image" in s for s in beta["skipped"])  # the HTML row came first
    assert result["screenshot"] == str(shot)
    assert_valid_png(shot)
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["Alpha.png", "Beta_plots.png"]


def test_inspector_reports_errors_requests_and_missing_categories(tiny_report, tmp_path):
    # The tiny report with a console error and an external image injected.
    html = tiny_report.read_text(encoding="utf-8")
    injected = ('<script>console.error("injected-error")</script>'
                '<img src="https://example.com/a.png" alt=""></body>')
    head, sep, tail = html.rpartition("</body>")
    assert sep, "no </body> in the report"
    broken = tmp_path / "broken.html"
    broken.write_text(head + injected + tail, encoding="utf-8")

    result = inspect_report(broken, [*TINY_CATEGORIES, "Gamma"], None)
    print(summary(result))
    assert any("injected-error" in e for e in result["console_errors"]), result["console_errors"]
    assert result["blocked_requests"] == ["https://example.com/a.png"]
    assert result["per_category"]["Alpha"]["ok"] and result["per_category"]["Beta plots"]["ok"]
    assert not result["per_category"]["Gamma"]["found"] and result["missing_categories"] == ["Gamma"]
    found = problems(result)
    assert any("injected-error" in p for p in found)
    assert any("example.com" in p for p in found)
    assert any("'Gamma'" in p for p in found)

    # Not a Snakemake report at all: still reports what happened, never hangs.
    page = tmp_path / "plain.html"
    page.write_text('<html><body><script>console.error("x")</script>'
                    '<img src="https://example.com/b.png"></body></html>')
    result = inspect_report(page, ["RSA"], tmp_path / "plain.png", load_timeout_ms=3000)
    assert "x" in result["console_errors"]
    assert result["blocked_requests"] == ["https://example.com/b.png"]
    assert not result["app_rendered"] and result["per_category"] == {}
    assert result["missing_categories"] == ["RSA"]
    assert (tmp_path / "plain.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "the report's app did not render" in problems(result)


@pytest.mark.slow
def test_default_report_in_a_browser(default_run):
    require_browser()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    result = inspect_report(default_run / "results" / "report.html", CATEGORIES, SCREENSHOT,
                            screenshot_dir=SCREENSHOT.parent / "report_screenshots")
    print(summary(result))
    assert_clean(result, CATEGORIES)
    assert result["screenshot"] == str(SCREENSHOT)
    assert_valid_png(SCREENSHOT)
