"""Open a Snakemake HTML report in headless Chromium and check that it works.

``inspect_report`` loads the self-contained report (``snakemake --report report.html``)
from a ``file://`` URL with every other network request blocked, walks the navigation
the way a reader would (menu -> category -> [subcategory] -> result -> eye button) and
measures that one image per expected category actually decodes and is laid out.

It drives the system Chromium (Debian's ``chromium`` package) through Playwright's sync
API; ``playwright install`` is never needed. Playwright is an optional dependency (the
``test`` extra) and is imported inside the functions only.

DOM of the Snakemake 9 report (a React app rendered into ``#app``; see
``snakemake/report/html_reporter/template/components``):

* sidebar: ``#app nav:has(> h1)``; its breadcrumbs are ``nav > ol > li`` (the first
  link, a home icon, returns to the menu; the last ``li`` holds the search box);
  its body is ``div.p-3``.
* menu (``navbarMode == "menu"``): ``div.p-3 > ul > li``; an ``li.uppercase`` heading
  "Results" precedes one ``li > a > span`` per category. A report with a single
  category shows one "Results" item instead of the category's name.
* category with several subcategories: ``div.p-3 > ul > li > a > span``, one per
  subcategory (a single subcategory is skipped straight to its results).
* results (``navbarMode == "subcategory"``): ``div.p-3 table > tbody > tr``, one row per
  result (cells are the result's labels), with an ``a[iconname=eye]`` button. Images,
  HTML and PDF results have ``href="#"`` and open in the content pane; other files are
  plain download links (``href="data:..."``). The open result's row gets ``bg-slate-700``.
* content pane: ``#app > div > div.grow``; an image result is ``div.p-3 > img`` with a
  ``data:image/...`` source, HTML/PDF results are an ``iframe``.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

SIDEBAR = "#app nav:has(> h1)"
BODY = f"{SIDEBAR} div.p-3"
BREADCRUMB_ITEMS = f"{SIDEBAR} nav ol > li"
CONTENT = "#app > div > div.grow"
CONTENT_IMG = f"{CONTENT} img"
ROWS = f"{BODY} table > tbody > tr"
MENU_LINKS = f"{BODY} > ul > li > a"

# The report app's state (snakemake's report keeps it in the global ``app``), if any.
STATE_JS = "(typeof app !== 'undefined' && app.state ? app.state : null)"
# True once the content pane shows the row just clicked: the app's content path changed (the
# selected row is not highlighted in every snakemake version, so its state is what is read),
# and an image pane's <img> carries that content; with no app state, once any img or iframe shows.
SHOWN_JS = """([content, before]) => {
    const c = document.querySelector(content);
    if (!c) return false;
    const s = %s;
    if (s === null) return c.querySelector('img') !== null || c.querySelector('iframe') !== null;
    if (!s.contentPath || s.contentPath === before) return false;
    if (s.content === 'img') {
        const img = c.querySelector('img');
        return img !== null && img.getAttribute('src') === s.contentPath;
    }
    return c.querySelector('img') !== null || c.querySelector('iframe') !== null;
}""" % STATE_JS
ALLOWED_SCHEMES = ("file:", "data:", "blob:", "about:")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--mute-audio"]


class ReportBrowserError(RuntimeError):
    """Playwright or Chromium is missing."""


def find_chromium() -> str | None:
    """The system Chromium (Debian: ``apt-get install chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _measure_js() -> str:
    # Waits for the <img> to load and decode, then reports its natural and laid-out size.
    return """async (img) => {
        const out = {src_prefix: (img.currentSrc || img.src || '').slice(0, 40), decode_error: null};
        try { await img.decode(); } catch (e) { out.decode_error = String(e); }
        const r = img.getBoundingClientRect();
        out.complete = img.complete;
        out.natural = [img.naturalWidth, img.naturalHeight];
        out.bbox = [Math.round(r.width * 10) / 10, Math.round(r.height * 10) / 10];
        return out;
    }"""


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "category"


def inspect_report(html_path, categories=None, screenshot_path=None, *, screenshot_dir=None,
                   screenshot_category=None, timeout_ms: int = 5000, load_timeout_ms: int = 60000,
                   max_results: int = 12, viewport=(1600, 1000), chromium: str | None = None) -> dict:
    """Open ``html_path`` in headless Chromium and inspect it.

    ``categories``: the category names expected in the report's menu (``report(...,
    category=...)``); None inspects every category the menu lists. For each one the
    category is opened, then (if it lists subcategories) each subcategory in turn, and
    the eye button of each result row until one shows an image; that image's natural
    size and bounding box are measured after ``img.decode()``.

    ``screenshot_path``: a full-page PNG of the report with an image of
    ``screenshot_category`` open (default: the first expected category named like
    "rsa", else the first one). ``screenshot_dir``: one PNG per category as well.

    Returns a JSON-serialisable dict; ``problems(result)`` lists what is wrong with it.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ReportBrowserError("inspect_report needs Playwright: pip install 'brainalign[test]' "
                                 "(or pip install playwright); the browser is the system chromium") from exc
    chromium = chromium or find_chromium()
    if chromium is None:
        raise ReportBrowserError("no Chromium found on PATH (Debian: apt-get install chromium)")

    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(html_path)
    expected = None if categories is None else [str(c) for c in categories]
    t_start = time.perf_counter()
    out: dict = {
        "url": html_path.as_uri(), "chromium": chromium,
        "console_errors": [], "console_warnings": [], "page_errors": [], "blocked_requests": [],
        "app_rendered": False, "categories_expected": expected, "categories_found": [],
        "missing_categories": [], "per_category": {}, "navigation_errors": [],
        "screenshot": None, "screenshots": {}, "timings": {},
    }

    def on_console(msg):
        entry = msg.text
        loc = msg.location or {}
        if loc.get("url") and not loc["url"].startswith("file:"):
            entry += f" ({loc['url'][:120]}:{loc.get('lineNumber')})"
        if msg.type == "error":
            out["console_errors"].append(entry)
        elif msg.type == "warning":
            out["console_warnings"].append(entry)

    def on_page_error(exc):
        name = getattr(exc, "name", None) or "Error"
        message = getattr(exc, "message", None) or str(exc)
        out["page_errors"].append(f"{name}: {message}")

    def on_route(route):
        url = route.request.url
        if url.startswith(ALLOWED_SCHEMES):
            route.continue_()
        else:
            out["blocked_requests"].append(url)
            route.abort("blockedbyclient")

    def on_websocket(ws):
        out["blocked_requests"].append(ws.url)
        ws.close()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                          service_workers="block", accept_downloads=False)
            context.set_default_timeout(timeout_ms)
            context.route("**/*", on_route)
            context.route_web_socket(re.compile(".*"), on_websocket)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", on_page_error)

            t0 = time.perf_counter()
            page.goto(out["url"], wait_until="load", timeout=load_timeout_ms)
            out["timings"]["load_s"] = round(time.perf_counter() - t0, 2)
            try:
                page.locator(MENU_LINKS, has_text="Workflow").first.wait_for(timeout=load_timeout_ms)
                out["app_rendered"] = True
            except PlaywrightTimeout:
                out["navigation_errors"].append("the report app did not render its menu "
                                                f"({MENU_LINKS} 'Workflow') within {load_timeout_ms} ms")
            out["timings"]["render_s"] = round(time.perf_counter() - t0, 2)

            if not out["app_rendered"]:
                out["missing_categories"] = list(expected or [])
            else:
                _walk(page, out, expected, screenshot_path, screenshot_dir, screenshot_category,
                      max_results, timeout_ms, (PlaywrightError, PlaywrightTimeout))
            if screenshot_path is not None and out["screenshot"] is None:
                out["screenshot"] = _screenshot(page, screenshot_path)  # whatever the page shows
        finally:
            browser.close()
    out["timings"]["total_s"] = round(time.perf_counter() - t_start, 2)
    return out


def _screenshot(page, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return str(path)


def _breadcrumbs(page) -> list[str]:
    return [t.strip() for t in page.locator(BREADCRUMB_ITEMS).all_inner_texts() if t.strip()]


def _go_home(page):
    """Back to the menu: the home icon, the first breadcrumb."""
    page.locator(f"{BREADCRUMB_ITEMS} a").first.click()
    page.locator(MENU_LINKS, has_text="Workflow").first.wait_for()


def _menu_link(page, label: str):
    """The sidebar link whose text is exactly ``label``."""
    return page.locator(MENU_LINKS).filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first


def _menu_categories(page) -> tuple[list[str], bool]:
    """Category labels listed after the "Results" heading, and whether the report has a
    single category (shown as one "Results" item)."""
    items = page.locator(f"{BODY} > ul > li")
    labels, after_heading, single = [], False, False
    for i in range(items.count()):
        item = items.nth(i)
        text = item.inner_text().strip()
        if item.locator("a").count() == 0:  # a ListHeading ("General", "Results")
            after_heading = text.lower() == "results"
        elif after_heading:
            labels.append(text)
        elif text == "Results":
            single = True
    return labels, single


def _wait_for_results_or_list(page, crumb: str | None, timeout_ms: int) -> str:
    """After a click into a category/subcategory: "results" (a table) or "list" (subcategories)."""
    page.wait_for_function(
        """([body, crumbSel, crumb]) => {
            const b = document.querySelector(body);
            if (!b) return false;
            const crumbs = [...document.querySelectorAll(crumbSel)].map(li => li.innerText.trim());
            if (crumb !== null && !crumbs.includes(crumb)) return false;
            return b.querySelector('table > tbody') !== null || b.querySelector(':scope > ul > li > a') !== null;
        }""", arg=[BODY, BREADCRUMB_ITEMS, crumb], timeout=timeout_ms)
    return "results" if page.locator(f"{BODY} table > tbody").count() else "list"


def _open_image(page, entry: dict, max_results: int, timeout_ms: int, errors) -> bool:
    """Click the eye button of each row until an image shows; measure it into ``entry``."""
    rows = page.locator(ROWS)
    n = rows.count()
    entry["n_results"] = entry.get("n_results", 0) + n
    headers = [h.strip() for h in page.locator(f"{BODY} table > thead th").all_inner_texts()]
    for i in range(min(n, max_results)):
        row = rows.nth(i)
        eye = row.locator("a[iconname=eye]")
        if eye.count() == 0:
            continue
        href = eye.first.get_attribute("href") or ""
        cells = [c.strip() for c in row.locator("td").all_inner_texts()][:-1]
        name = " / ".join(c for c in cells if c)
        if href != "#":  # a download link, not something the report displays
            entry["skipped"].append(f"{name}: download only ({href[:30]})")
            continue
        entry["tried"] += 1
        try:
            before = page.evaluate(STATE_JS + "?.contentPath ?? null")
            eye.first.click()
            page.wait_for_function(SHOWN_JS, arg=[CONTENT, before], timeout=timeout_ms)
            if page.locator(CONTENT_IMG).count() == 0:
                entry["skipped"].append(f"{name}: not an image (iframe)")
                continue
            img = page.locator(CONTENT_IMG).first
            page.wait_for_function("(img) => img.complete", arg=img.element_handle(), timeout=timeout_ms)
            m = img.evaluate(_measure_js())
        except errors as exc:
            entry["skipped"].append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        try:
            result_path = page.evaluate(f"() => {STATE_JS}?.resultPath ?? null")
        except errors:
            result_path = None
        mime = re.match(r"data:([^;,]+)", m["src_prefix"])
        entry.update(result=name, labels=dict(zip(headers, cells)), result_path=result_path,
                     mime=mime.group(1) if mime else m["src_prefix"], natural_size=m["natural"],
                     bbox_size=m["bbox"], decode_error=m["decode_error"])
        entry["ok"] = (m["decode_error"] is None and min(m["natural"]) > 0 and min(m["bbox"]) > 0)
        if entry["ok"]:
            return True
    return False


def _walk(page, out, expected, screenshot_path, screenshot_dir, screenshot_category, max_results,
          timeout_ms, errors):
    found, single = _menu_categories(page)
    out["categories_found"] = list(found)
    try:  # cross-check only: the category names embedded in the report's data
        out["categories_in_data"] = page.evaluate("() => typeof categories === 'object' ? Object.keys(categories) : null")
    except errors:
        out["categories_in_data"] = None
    if single and not found and out["categories_in_data"]:
        found = list(out["categories_in_data"])  # the menu shows "Results" for the only category
        out["categories_found"] = found
    wanted = list(found) if expected is None else list(expected)
    out["missing_categories"] = [c for c in wanted if c not in found]
    if screenshot_category is None:
        screenshot_category = next((c for c in wanted if c.lower() == "rsa"),
                                   next((c for c in wanted if c in found), None))

    for category in wanted:
        entry = {"found": category in found, "subcategory": None, "result": None, "labels": {},
                 "result_path": None, "mime": None, "natural_size": None, "bbox_size": None,
                 "decode_error": None, "ok": False, "tried": 0, "skipped": [], "error": None,
                 "seconds": None}
        out["per_category"][category] = entry
        if not entry["found"]:
            lower = {c.lower(): c for c in found}
            entry["error"] = "not in the menu" + (f" (did you mean {lower[category.lower()]!r}?)"
                                                  if category.lower() in lower else "")
            continue
        t0 = time.perf_counter()
        try:
            if not page.locator(MENU_LINKS, has_text="Workflow").count():
                _go_home(page)
            label = "Results" if single else category
            _menu_link(page, label).click()
            crumb = None if single else category
            mode = _wait_for_results_or_list(page, crumb, timeout_ms)
            if mode == "results":
                _open_image(page, entry, max_results, timeout_ms, errors)
            else:
                subs = [t.strip() for t in page.locator(MENU_LINKS).all_inner_texts()]
                entry["subcategories"] = subs
                for sub in subs:
                    if sub != subs[0]:  # back to the category's list of subcategories
                        page.locator(f"{BREADCRUMB_ITEMS} a", has_text=category).first.click()
                        _wait_for_results_or_list(page, category, timeout_ms)
                    _menu_link(page, sub).click()
                    if _wait_for_results_or_list(page, sub, timeout_ms) != "results":
                        entry["skipped"].append(f"{sub}: no results table")
                        continue
                    entry["subcategory"] = sub
                    if _open_image(page, entry, max_results, timeout_ms, errors):
                        break
            if not entry["ok"] and entry["error"] is None:
                entry["error"] = f"no image result rendered (tried {entry['tried']})"
            if entry["ok"]:
                if screenshot_dir is not None:
                    shot = Path(screenshot_dir) / f"{_safe_name(category)}.png"
                    out["screenshots"][category] = _screenshot(page, shot)
                if screenshot_path is not None and category == screenshot_category:
                    out["screenshot"] = _screenshot(page, screenshot_path)
        except errors as exc:
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]} (breadcrumbs: {_breadcrumbs(page)})"
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        try:
            _go_home(page)
        except errors as exc:
            out["navigation_errors"].append(f"could not return to the menu after {category!r}: {exc}")
            page.reload(wait_until="load")
            page.locator(MENU_LINKS, has_text="Workflow").first.wait_for()


def problems(result: dict, *, allow_console_errors: bool = False) -> list[str]:
    """Everything wrong in an ``inspect_report`` result, one line each (empty if fine)."""
    out = []
    if not allow_console_errors:
        out += [f"console error: {e}" for e in result["console_errors"]]
    out += [f"page error: {e}" for e in result["page_errors"]]
    out += [f"network request attempted: {u}" for u in result["blocked_requests"]]
    out += [f"navigation: {e}" for e in result["navigation_errors"]]
    if not result["app_rendered"]:
        out.append("the report's app did not render")
    for category, entry in result["per_category"].items():
        if not entry["ok"]:
            out.append(f"category {category!r}: {entry['error']}; skipped: {entry['skipped']}; "
                       f"natural={entry['natural_size']} bbox={entry['bbox_size']}")
    return out


def summary(result: dict) -> str:
    """A few human-readable lines about an ``inspect_report`` result."""
    lines = [f"{result['url']}: categories found {result['categories_found']}; "
             f"{len(result['console_errors'])} console errors, {len(result['page_errors'])} page errors, "
             f"{len(result['blocked_requests'])} blocked requests; timings {result['timings']}"]
    for category, e in result["per_category"].items():
        where = f"{e['subcategory']} / " if e.get("subcategories") else ""
        lines.append(f"  {category}: {'OK ' if e['ok'] else 'FAIL'} {where}{e['result']} [{e['mime']}] "
                     f"natural={e['natural_size']} bbox={e['bbox_size']} ({e['seconds']} s)"
                     + (f" error: {e['error']}" if e["error"] else ""))
    if result["screenshot"]:
        lines.append(f"  screenshot: {result['screenshot']}")
    return "\n".join(lines)
