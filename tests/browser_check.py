"""Check the rendered book in headless Chromium: what a reader's browser would show.

Four defect classes, each reported with the page and where on it:

* **math**: a MathJax error element (``mjx-merror``/``merror``, e.g. "\\tag not allowed in
  split environment"), or a page with math on which MathJax did not load;
* **image**: an ``<img>`` whose file does not load (``naturalWidth == 0``);
* **link**: an ``href`` to a local page or anchor that does not exist (checked on the files);
* **overflow**: a code, output or table block wider than the content column at a 1400 px
  window (``scrollWidth > clientWidth``, or its right edge past the article's), the cells
  hidden behind toggles opened first.

The site is served on 127.0.0.1 by a thread. A page that loads MathJax 3 from its CDN (which
a machine without network cannot reach) gets a local copy in its place (``mathjax_dir``, as
``.ci/fetch_mathjax`` lays it out). Each page is loaded by ``chromium --headless --dump-dom``
with a virtual time budget; a script injected into the served page waits for MathJax's
typesetting and the images, measures, and writes its report into the DOM as JSON.

Run it on a built book: ``python tests/browser_check.py _build/html`` (exit status 1 when a
defect is found). ``tests/test_browser.py`` runs it on the book and on tiny fixture pages.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: The MathJax 3 address Sphinx writes into pages (any version under npm/mathjax@3).
CDN_MATHJAX = re.compile(r"https://cdn\.jsdelivr\.net/npm/mathjax@3[^\"']*?/es5/([\w.-]+\.js)")
LOCAL_MATHJAX_PREFIX = "/__mathjax__/"
REPORT_ID = "mladlib-browser-report"
#: Pixels a block may exceed its box by before it counts as overflowing (sub-pixel rounding).
OVERFLOW_TOLERANCE_PX = 2
WINDOW = (1400, 1000)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_MATHJAX = REPO / "_vendor" / "mathjax"

# Injected before </body>. Waits for the page's load event, MathJax's first typeset (when the
# page has MathJax) and every image, then writes the report as JSON into <pre id=REPORT_ID>.
CHECK_SCRIPT = r"""
<script>
(function () {
  var TOL = %(tol)d;
  function describe(el) {
    var sec = el.closest('section[id]');
    var lines = (el.textContent || '').split('\n');
    var longest = lines.reduce(function (a, b) { return b.length > a.length ? b : a; }, '');
    return {section: sec ? sec.id : '', text: longest.slice(0, 100), chars: longest.length};
  }
  function loads(src) {
    return new Promise(function (done) {
      var im = new Image();
      im.onload = function () { done(im.naturalWidth > 0); };
      im.onerror = function () { done(false); };
      im.src = src;
    });
  }
  function measure(images) {
    var r = {images: images, merrors: [], overflow: []};
    var hasMath = document.querySelector('.math, mjx-container, script[type^="math/tex"]');
    r.math_on_page = !!hasMath;
    r.mathjax_loaded = !!(window.MathJax && window.MathJax.startup &&
                          window.MathJax.startup.document);
    document.querySelectorAll('mjx-merror, merror, .MathJax_Error').forEach(function (el) {
      if (el.closest('mjx-assistive-mml')) { return; }  /* the same error, for screen readers */
      var d = describe(el);
      d.text = el.getAttribute('data-mjx-error') || d.text;
      r.merrors.push(d);
    });
    var article = document.querySelector('article.bd-article') ||
                  document.querySelector('[role="main"]') || document.body;
    var right = article.getBoundingClientRect().right;
    var blocks = article.querySelectorAll(
      'div.highlight pre, div.cell_output pre, div.output pre, div.cell_output table, ' +
      'table.table, div.cell_output img, mjx-container[display="true"]');
    blocks.forEach(function (el) {
      var box = el.getBoundingClientRect();
      if (box.width === 0) { return; }  /* not displayed */
      var scrolls = el.scrollWidth > el.clientWidth + TOL;
      var past = box.right > right + TOL;
      if (scrolls || past) {
        var d = describe(el);
        d.tag = el.tagName.toLowerCase();
        d.scroll_width = el.scrollWidth; d.client_width = el.clientWidth;
        d.right = Math.round(box.right); d.column_right = Math.round(right);
        r.overflow.push(d);
      }
    });
    var out = document.createElement('script');
    out.type = 'application/json';
    out.id = '%(report_id)s';
    out.textContent = JSON.stringify(r).replace(/</g, '\\u003c');
    document.body.appendChild(out);
  }
  window.addEventListener('load', function () {
    /* open every toggle (hidden checks, long outputs, dropdowns): a reader can */
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
    document.querySelectorAll('.toggle-hidden').forEach(function (e) {
      e.classList.remove('toggle-hidden');
    });
    var mj = (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) ||
             Promise.resolve();
    mj.catch(function () {}).then(function () {
      var imgs = Array.prototype.slice.call(document.images);
      return Promise.all(imgs.map(function (im) {
        var src = im.getAttribute('src') || '';
        return loads(im.src).then(function (ok) { return {src: src, ok: ok}; });
      }));
    }).then(measure);
  });
})();
</script>
""" % {"tol": OVERFLOW_TOLERANCE_PX, "report_id": REPORT_ID}


@dataclass(frozen=True)
class Problem:
    """One defect: its class (math, image, link, overflow, page), page and description."""

    kind: str
    page: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


def find_chromium() -> str | None:
    """The Chromium executable: $CHROMIUM, else chromium / chromium-browser / google-chrome."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _is_redirect(path: Path) -> bool:
    """A page that only forwards to another (Jupyter Book's index.html)."""
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def html_pages(site: Path) -> list[str]:
    """Every HTML page of a built book, redirects excluded, relative to ``site`` (sorted)."""
    if not site.is_dir():
        raise FileNotFoundError(f"no built book at {site}")
    skip = {"_static", "_sources", "_images"}
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not skip & set(p.relative_to(site).parts) and not _is_redirect(p))


# --- links (on the files) -----------------------------------------------------------------

class _LinkParser(HTMLParser):
    """Collects the ids (and a names) a page defines and the hrefs it uses."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag in ("a", "link") and a.get("href") is not None:
            self.hrefs.append(a["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def broken_links(site: Path, pages: list[str] | None = None) -> list[Problem]:
    """Every local href of ``pages`` whose file, or whose #anchor in an HTML file, is missing."""
    site = site.resolve()
    problems = []
    for page in pages if pages is not None else html_pages(site):
        path = site / page
        for href in _parse(path).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not href.strip("#"):
                continue  # external (http, mailto, data, javascript) or a bare "#"
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if site not in target.parents and target != site:
                problems.append(Problem("link", page, f"{href} leaves the site"))
            elif not target.is_file():
                problems.append(Problem("link", page, f"{href}: no file {target.relative_to(site)}"))
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target).ids:
                    problems.append(Problem("link", page, f"{href}: no anchor "
                                            f"#{parts.fragment} in {target.relative_to(site)}"))
    return problems


# --- the browser part -----------------------------------------------------------------------

def problems_from_report(page: str, report: dict | None) -> list[Problem]:
    """The defects a page's injected-script report shows (``None``: the script never ran)."""
    if report is None:
        return [Problem("page", page, "the check script did not finish (page did not load?)")]
    problems = []
    if report.get("math_on_page") and not report.get("mathjax_loaded"):
        problems.append(Problem("math", page, "the page has math but MathJax did not load"))
    for err in report.get("merrors", []):
        problems.append(Problem("math", page, f"MathJax error in #{err['section']}: {err['text']}"))
    for img in report.get("images", []):
        if not img["ok"]:
            problems.append(Problem("image", page, f"image does not load: {img['src']}"))
    for block in report.get("overflow", []):
        problems.append(Problem(
            "overflow", page,
            f"<{block['tag']}> in #{block['section']} is {block['scroll_width']} px wide in a "
            f"{block['client_width']} px box (right edge {block['right']}, column ends at "
            f"{block['column_right']}); longest line, {block.get('chars', '?')} characters: "
            f"{block['text']!r}"))
    return problems


def _handler(site: Path, mathjax_dir: Path | None):
    """A quiet static-file handler that injects the check script and serves local MathJax."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = unquote(urlsplit(self.path).path)
            if path.startswith(LOCAL_MATHJAX_PREFIX) and mathjax_dir is not None:
                local = (mathjax_dir / path[len(LOCAL_MATHJAX_PREFIX):]).resolve()
                if mathjax_dir.resolve() in local.parents and local.is_file():
                    return self._send(local.read_bytes(), "application/javascript"
                                      if local.suffix == ".js" else self.guess_type(str(local)))
                return self.send_error(404)
            file = site / path.lstrip("/")
            if file.is_dir():
                file = file / "index.html"
            if file.suffix == ".html" and file.is_file():
                text = file.read_text(encoding="utf-8")
                if mathjax_dir is not None:
                    text = CDN_MATHJAX.sub(lambda m: f"{LOCAL_MATHJAX_PREFIX}es5/{m.group(1)}",
                                           text)
                text = text.replace("</body>", CHECK_SCRIPT + "</body>", 1)
                return self._send(text.encode("utf-8"), "text/html; charset=utf-8")
            return super().do_GET()

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serve(site: Path, mathjax_dir: Path | None = None):
    """Serve ``site`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site, mathjax_dir))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def dump_dom(chromium: str, url: str, budget_ms: int = 20000, timeout_s: float = 90) -> str:
    """The DOM of ``url`` after headless Chromium has run its scripts (a fresh profile)."""
    with tempfile.TemporaryDirectory(prefix="mladlib-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
               f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 and not done.stdout:
        raise RuntimeError(f"chromium failed on {url} (status {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return done.stdout


def report_from_dom(dom: str) -> dict | None:
    """The JSON report the injected script wrote into the DOM, or None when it is missing."""
    match = re.search(rf'<script[^>]*id="{REPORT_ID}"[^>]*>(.*?)</script>', dom, flags=re.S)
    return json.loads(match.group(1)) if match else None


def check_site(site: Path, chromium: str, mathjax_dir: Path | None = DEFAULT_MATHJAX,
               pages: list[str] | None = None, workers: int = 2) -> list[Problem]:
    """Every defect of every page of the built book ``site`` (links, then the browser's)."""
    site = Path(site)
    pages = html_pages(site) if pages is None else pages
    if mathjax_dir is not None and not (Path(mathjax_dir) / "es5" / "tex-mml-chtml.js").is_file():
        mathjax_dir = None  # pages keep their CDN address: math then reports "did not load"
    problems = broken_links(site, pages)
    with serve(site, Path(mathjax_dir) if mathjax_dir else None) as base:
        def one(page: str) -> list[Problem]:
            return problems_from_report(page, report_from_dom(dump_dom(chromium, base + page)))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for found in pool.map(one, pages):
                problems.extend(found)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, nargs="?", default=REPO / "_build" / "html",
                        help="the built book (default: _build/html)")
    parser.add_argument("--mathjax", type=Path, default=DEFAULT_MATHJAX,
                        help="a local MathJax 3 (default: _vendor/mathjax from .ci/fetch_mathjax)")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("browser check skipped: no chromium on PATH (apt-get install chromium)")
        return 0
    problems = check_site(args.site, chromium, args.mathjax)
    for problem in problems:
        print(problem)
    counts = {k: sum(p.kind == k for p in problems) for k in ("math", "image", "link",
                                                               "overflow", "page")}
    print(f"{len(html_pages(args.site))} pages: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
