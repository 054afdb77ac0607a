"""The built book in a real browser: headless Chromium opens every page and checks what a reader
sees (``iaa book --browser-check``, ``tests/test_browser.py``).

Per page: the math is typeset (MathJax's ``mjx-container`` elements present where the page has
math, no raw ``\\[`` or ``$$`` left in the visible text); every ``<img>`` has loaded
(``naturalWidth > 0``); every internal link points at an existing file (and anchor); no output
cell holds a traceback; papermill's injected-parameters cell is not shown. A screenshot of each
page (the whole page, up to :data:`MAX_SHOT_HEIGHT` px) goes to ``screenshots/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``)
and the ``selenium`` package (the ``dev`` extra); :func:`start_chromium` raises
:class:`BrowserUnavailable` with what to install when Chromium cannot start. Selenium's own
driver download is never used (no network): the driver is the system's ``chromedriver``.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import IaaError

INSTALL_HINT = ("install Debian's Chromium and its driver (as root: apt-get install -y chromium "
                "chromium-driver) and the dev extra (pip install -e '.[dev]', for selenium)")
MATH_WAIT_S = 20.0
MAX_SHOT_HEIGHT = 12_000   # px: a screenshot shows the page down to here


class BrowserUnavailable(IaaError):
    """Chromium (or chromedriver, or selenium) is missing or cannot start."""


@dataclass
class PageReport:
    page: str
    math_elements: int = 0
    images: int = 0
    links: int = 0
    problems: list[str] = field(default_factory=list)
    screenshot: str | None = None


def start_chromium(width: int = 1280, height: int = 1600):
    """A headless Chromium driven by the system chromedriver; :class:`BrowserUnavailable` if not."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise BrowserUnavailable(f"selenium is not installed ({e}); {INSTALL_HINT}") from None
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver") or next(
        (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p)),
        None)
    if binary is None or driver_path is None:
        missing = "chromium" if binary is None else "chromedriver"
        raise BrowserUnavailable(f"{missing} not found on PATH; {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):
        options.add_argument(arg)
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as e:  # selenium's errors: the browser did not start
        raise BrowserUnavailable(f"Chromium ({binary}, driver {driver_path}) did not start: "
                                 f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; "
                                 f"{INSTALL_HINT}") from None


# MathJax's script is deferred: Chromium can hand the page back before it has run, so wait for
# MathJax.startup (up to arguments[0] ms) before calling it missing.
_MATH_DONE_JS = """
const done = arguments[arguments.length - 1], deadline = Date.now() + arguments[0];
(function wait() {
  if (window.MathJax && window.MathJax.startup) {
    window.MathJax.startup.promise.then(
      () => done(document.querySelectorAll('mjx-container').length), () => done(-2));
  } else if (Date.now() > deadline) { done(-1); } else { setTimeout(wait, 50); }
})();
"""
MATH_LOAD_WAIT_MS = 5000
_BROKEN_IMAGES_JS = """
return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
            .map(i => i.getAttribute('src'));
"""
_LINKS_JS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));"
_NAN_CELLS_JS = """
return Array.from(document.querySelectorAll('td')).filter(
    td => td.textContent.trim().toLowerCase() === 'nan').length;
"""

#: Markdown emphasis left as text (e.g. a glued string with ``**``), outside code and math.
_RAW_MARKDOWN_JS = """
const body = document.body.cloneNode(true);
body.querySelectorAll('pre, code, .highlight, script, style, mjx-container, .math')
    .forEach(e => e.remove());
return (body.textContent.match(/\\*\\*[^*\\s][^*]*\\*\\*/g) || []).slice(0, 3);
"""


def _internal_target(page: Path, href: str, root: Path) -> tuple[Path, str] | None:
    url = urlparse(href)
    if url.scheme in ("http", "https", "mailto", "javascript", "data") or url.netloc:
        return None
    if not url.path:                      # "#anchor" on the same page
        return page, url.fragment
    target = (page.parent / unquote(url.path)).resolve()
    if root.resolve() not in target.parents and target != root.resolve():
        return None                       # outside the build (e.g. a repository file link)
    return target, url.fragment


def _has_anchor(html: Path, anchor: str, cache: dict[Path, set[str]]) -> bool:
    if html not in cache:
        text = html.read_text(encoding="utf-8", errors="replace")
        cache[html] = set(re.findall(r'\bid="([^"]+)"', text)) | set(re.findall(r'\bname="([^"]+)"', text))
    return unquote(anchor) in cache[html]


def check_page(driver, page: Path, root: Path, *, screenshots: Path | None = None,
               anchors: dict[Path, set[str]] | None = None) -> PageReport:
    """Open ``page`` (an HTML file of the build ``root``) and report its problems."""
    from selenium.webdriver.common.by import By

    anchors = {} if anchors is None else anchors
    rel = page.relative_to(root).as_posix()
    report = PageReport(rel)
    driver.get(page.resolve().as_uri())
    html = page.read_text(encoding="utf-8", errors="replace")
    has_math = bool(re.search(r'class="[^"]*\bmath\b', html))
    driver.set_script_timeout(MATH_WAIT_S)
    try:
        typeset = driver.execute_async_script(_MATH_DONE_JS, MATH_LOAD_WAIT_MS if has_math else 0)
    except Exception as e:
        typeset = -3
        report.problems.append(f"MathJax did not finish in {MATH_WAIT_S:.0f} s ({type(e).__name__})")
    report.math_elements = max(0, int(typeset))
    text = driver.find_element(By.TAG_NAME, "body").text
    if has_math and typeset == -1:
        report.problems.append("the page has math but MathJax is not loaded")
    elif has_math and report.math_elements == 0:
        report.problems.append("the page has math but nothing was typeset")
    for raw in ("\\[", "$$", "\\begin{"):
        if raw in text:
            report.problems.append(f"raw TeX {raw!r} in the visible text")
    for bold in driver.execute_script(_RAW_MARKDOWN_JS):
        report.problems.append(f"raw Markdown {bold!r} in the visible text")
    nan_cells = driver.execute_script(_NAN_CELLS_JS)
    if nan_cells:
        report.problems.append(f"{nan_cells} table cell(s) show 'nan' (a missing value needs na_rep)")
    report.images = len(driver.find_elements(By.TAG_NAME, "img"))
    for src in driver.execute_script(_BROKEN_IMAGES_JS):
        report.problems.append(f"image not loaded: {src}")
    hrefs = driver.execute_script(_LINKS_JS)
    report.links = len(hrefs)
    for href in dict.fromkeys(hrefs):
        target = _internal_target(page, href, root)
        if target is None:
            continue
        path, anchor = target
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            report.problems.append(f"broken link {href} (no {path.relative_to(root.resolve()) if root.resolve() in path.parents else path})")
        elif anchor and path.suffix == ".html" and not _has_anchor(path, anchor, anchors):
            report.problems.append(f"broken anchor {href}")
    if driver.find_elements(By.CSS_SELECTOR, ".output.traceback, .output.error") or \
            "Traceback (most recent call last)" in text:
        report.problems.append("an output cell holds a traceback")
    if driver.find_elements(By.CSS_SELECTOR, ".tag_injected-parameters"):
        report.problems.append("papermill's injected-parameters cell is shown")
    if screenshots is not None:
        shot = screenshots / (rel.removesuffix(".html").replace("/", "__") + ".png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        size = driver.get_window_size()
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(size["width"], max(size["height"], min(height, MAX_SHOT_HEIGHT)))
        driver.save_screenshot(os.fspath(shot))          # the whole page, up to MAX_SHOT_HEIGHT
        driver.set_window_size(size["width"], size["height"])
        report.screenshot = os.fspath(shot)
    return report


def check_book(html_dir: str | os.PathLike, pages: list[str], *,
               screenshots: str | os.PathLike | None = None) -> list[PageReport]:
    """Every page of ``pages`` (paths relative to ``html_dir``, e.g. ``book/generated/02_kao_mtcnn.html``)
    in one Chromium session."""
    root = Path(html_dir)
    shots = Path(screenshots) if screenshots is not None else None
    driver = start_chromium()
    anchors: dict[Path, set[str]] = {}
    try:
        out = []
        for rel in pages:
            page = root / rel
            if not page.is_file():
                out.append(PageReport(rel, problems=[f"{page}: no such page"]))
                continue
            t0 = time.perf_counter()
            out.append(check_page(driver, page, root, screenshots=shots, anchors=anchors))
            out[-1].seconds = round(time.perf_counter() - t0, 2)  # type: ignore[attr-defined]
        return out
    finally:
        driver.quit()


def check_build(out: str | os.PathLike) -> list[PageReport]:
    """Every page of the table of contents in the build folder ``out`` (``out/html``), with
    screenshots in ``out/screenshots``; the reports are also written to ``out/browser-check.json``."""
    from .._io import write_json
    from .staging import TOC_FILE, toc_files

    out = Path(out)
    pages = [f"{doc}.html" for doc in toc_files(TOC_FILE)]
    reports = check_book(out / "html", pages, screenshots=out / "screenshots")
    write_json(out / "browser-check.json", [vars(r) for r in reports])
    return reports
