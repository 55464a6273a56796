"""Screenshot a Snakemake HTML report in headless Chromium and check that it works.

    python tools/screenshot_report.py results/report.html docs/report.png [--category RSA]

Opens the report with the network blocked, visits every category of its menu (or only
the ``--expect`` ones), opens one image in each, and saves a full-page PNG with an image
of ``--category`` open. Prints a summary; exits 1 if anything is wrong (console or page
errors, network requests, missing categories, images that do not render).

Needs the ``test`` extra (Playwright) and the system Chromium (Debian: ``apt-get install
chromium``); the browser code is ``tools/report_browser.py`` beside it (a developer tool:
it is not part of the installed library).
"""

from __future__ import annotations

import argparse
import json
import sys

import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_browser import ReportBrowserError, inspect_report, problems, summary  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="the report, e.g. results/report.html")
    parser.add_argument("screenshot", help="the PNG to write, e.g. docs/report.png")
    parser.add_argument("--category", help="the category whose first image the screenshot shows "
                                           "(default: RSA if present, else the first category)")
    parser.add_argument("--expect", action="append", metavar="CATEGORY",
                        help="a category the report must have (repeatable; default: every category in its menu)")
    parser.add_argument("--per-category", metavar="DIR", help="also save one PNG per category in DIR")
    parser.add_argument("--json", metavar="PATH", help="write the full inspection result as JSON")
    parser.add_argument("--timeout-ms", type=int, default=5000, help="per-step timeout (default 5000)")
    parser.add_argument("--allow-console-errors", action="store_true", help="do not fail on console errors")
    args = parser.parse_args(argv)

    expect = args.expect
    if expect and args.category and args.category not in expect:
        expect = [*expect, args.category]
    try:
        result = inspect_report(args.report, expect, args.screenshot, screenshot_dir=args.per_category,
                                screenshot_category=args.category, timeout_ms=args.timeout_ms)
    except (ReportBrowserError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    shown = result["per_category"].get(args.category or "", {})
    if args.category and not shown.get("ok"):
        print(f"warning: no image of category {args.category!r} could be opened; the screenshot "
              "shows the report's start page", file=sys.stderr)
    found = problems(result, allow_console_errors=args.allow_console_errors)
    for line in found:
        print(f"problem: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
