"""Check the rendered book in headless Chromium: what a reader's browser would show.

Every page is loaded at a 1400 px window with every toggle opened (hidden checks, long
outputs, solution dropdowns), and again at a 412 px phone's width. Each defect is
reported with its class, the page and the section:

* **math**: a MathJax error element (``mjx-merror``/``merror``, e.g. "\\tag not allowed
  in split environment"), or a page with math on which MathJax did not load;
* **image**: an ``<img>`` whose file does not load (``naturalWidth == 0``);
* **link**: an ``href`` to a local page or anchor that does not exist (checked on the
  files);
* **overflow**: a code, output or table block, a figure or a display equation wider than
  the content column at 1400 px (``scrollWidth > clientWidth``, or its right edge past
  the article's); at 412 px, a table or display equation (code keeps its lines and
  scrolls sideways there);
* **wrap**: a code or output block drawn on more lines than its source has (the browser
  wrapped a line);
* **indent**: an indented line of a code or output block drawn left of where its
  indentation puts it (a wrapped line's continuation at column 0, collapsed spaces);
* **hidden**: a code block that stays hidden with every toggle opened (so it was not
  checked);
* **equation**: a display equation with no number at its margin. The rule: every display
  equation carries one; the paper's equations the paper's number (``\\tag{N}``, or
  MyST's labelled ``$$ ... $$ (eq-N)`` form, which Sphinx numbers), the book's own
  displays a tag of their own, e.g. ``\\tag{5a}``, or they are written inline. A number
  typed into the formula ("... (6)") is not at the margin and does not count;
* **figure**: a PNG figure whose smallest text is under :data:`MIN_FIGURE_TEXT_PX` as
  displayed: the PNG's smallest font, estimated from its pixels
  (:func:`figure_text_px`), times the factor by which the browser draws the PNG
  (displayed / natural width);
* **alt**: an image whose alt text is missing, empty, a file path or hash, or under
  :data:`MIN_ALT_WORDS` words (it must say what the figure shows);
* **console**: an error in the browser's console (``console.error``, an uncaught
  exception, a rejected promise, a script or stylesheet that fails to load) or a request
  the server answers with 404 (a favicon the browser asks for on a first visit); each
  page is a first visit, with a fresh browser profile.

The site is served on 127.0.0.1 by a thread. A page that loads MathJax 3 from its CDN
(which a machine without network cannot reach) gets a local copy in its place
(``mathjax_dir``, as ``.ci/fetch_mathjax`` lays it out). Each page is loaded by
``chromium --headless --dump-dom`` with a virtual time budget; a script injected first
in the page records console errors, and one injected at its end waits for MathJax's
typesetting and the images, opens the toggles, measures, and writes its report into the
DOM as JSON.

Run it on a built book: ``python tests/browser_check.py _build/html`` (exit status 1
when a defect is found). ``tests/test_browser.py`` runs it on the book and on fixture
pages that each carry one defect (``tests/browser_fixtures``).
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
CDN_MATHJAX = re.compile(
    r"https://cdn\.jsdelivr\.net/npm/mathjax@3[^\"']*?/es5/([\w.-]+\.js)")
LOCAL_MATHJAX_PREFIX = "/__mathjax__/"
REPORT_ID = "mladlib-browser-report"
#: Pixels a block may exceed its box by before it counts as overflowing (sub-pixel
#: rounding).
OVERFLOW_TOLERANCE_PX = 2
REPO = Path(__file__).resolve().parents[1]
DEFAULT_MATHJAX = REPO / "_vendor" / "mathjax"

#: Display widths: a desktop window, where every block is checked, and a phone, where
#: the blocks a reader cannot scroll sideways on without losing the sentence (display
#: equations, prose tables) must still fit. Code keeps its lines at 412 px and scrolls
#: sideways there.
WINDOWS = {"desktop": (1400, 1000), "phone": (412, 915)}
#: The smallest figure text a reader must read at 1400 px, in CSS px (about 7.5 pt).
MIN_FIGURE_TEXT_PX = 10.0
#: Fewer words than this in an image's alt text do not say what a figure shows.
MIN_ALT_WORDS = 3

# Injected first thing in <head>: records console errors, uncaught exceptions, rejected
# promises and resources that fail to load, before the page's own scripts run.
ERROR_HOOK = r"""
<script>
(function () {
  var errors = window.__mladlibErrors = [];
  var original = console.error;
  console.error = function () {
    var text = Array.prototype.map.call(arguments, String).join(' ');
    errors.push('console.error: ' + text);
    return original.apply(console, arguments);
  };
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      if (t.tagName !== 'IMG') {  /* images: the image check says which did not load */
        errors.push('failed to load <' + t.tagName.toLowerCase() + '> ' +
                    (t.src || t.href));
      }
    } else {
      errors.push('uncaught ' + (e.message || 'error') + ' (' + (e.filename || '') +
                  ':' + (e.lineno || 0) + ')');
    }
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    errors.push('unhandled promise rejection: ' + String(e.reason));
  });
})();
</script>
"""

# Injected before </body>. Waits for the page's load event, MathJax's first typeset
# (when the page has MathJax) and every image, opens every toggle, measures, and writes
# the report as JSON into <script id=REPORT_ID>.
#: Headless Chromium will not make its window narrower than 500 px, so a page is checked
#: at phone width inside an <iframe> of that width, which reports back to the framing
#: page.
PHONE_PREFIX = "/__phone__/"
PHONE_FRAME = """<!DOCTYPE html><html><head><meta charset="utf-8">
<link rel="icon" href="data:,"></head>
<body style="margin:0"><iframe src="/%(page)s" width="%(w)d" height="%(h)d"
style="border:0"></iframe><script>
window.addEventListener('message', function (e) {
  var out = document.createElement('script');
  out.type = 'application/json'; out.id = '%(report_id)s'; out.textContent = e.data;
  document.body.appendChild(out);
});
</script></body></html>"""

CHECK_SCRIPT = r"""
<script>
(function () {
  var TOL = %(tol)d;
  var PHONE = window.innerWidth < 700;
  function describe(el) {
    var sec = el.closest('section[id]');
    var lines = (el.textContent || '').split('\n');
    var longest = lines.reduce(function (a, b) {
      return b.length > a.length ? b : a;
    }, '');
    return {section: sec ? sec.id : '', text: longest.slice(0, 100),
            chars: longest.length};
  }
  function rows(rects) {  /* distinct line boxes among client rects: [{top, left}] */
    var out = [];
    Array.prototype.forEach.call(rects, function (r) {
      if (r.width === 0 && r.height === 0) { return; }
      var row = out.find(function (o) {
        return Math.abs(o.top - r.top) < r.height / 2;
      });
      if (row) { row.left = Math.min(row.left, r.left); }
      else { out.push({top: r.top, left: r.left, height: r.height}); }
    });
    return out.sort(function (a, b) { return a.top - b.top; });
  }
  /* Each source line of a <pre>: [{text, start: [node, off], end: [node, off]}] */
  function sourceLines(pre) {
    var walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    var lines = [], text = '', start = null, node, last = null;
    while ((node = walker.nextNode())) {
      var s = node.data;
      for (var i = 0; i <= s.length; i++) {
        if (start === null && i < s.length) { start = [node, i]; }
        if (i < s.length && s[i] !== '\n') { text += s[i]; continue; }
        if (i < s.length) {  /* a newline ends the line */
          lines.push({text: text, start: start || [node, i], end: [node, i]});
          text = ''; start = null;
        }
      }
      last = node;
    }
    if (text.length) {
      lines.push({text: text, start: start, end: [last, last.data.length]});
    }
    return lines;
  }
  function charAt(line, k) {  /* a Range over the k-th character of a line */
    var walker = document.createTreeWalker(line.start[0].parentNode.closest('pre'),
                                           NodeFilter.SHOW_TEXT);
    walker.currentNode = line.start[0];
    var node = line.start[0], off = line.start[1];
    while (node) {
      var room = node.data.length - off;
      if (k < room) {
        var r = document.createRange();
        r.setStart(node, off + k);
        r.setEnd(node, off + k + 1);
        return r;
      }
      k -= room; node = walker.nextNode(); off = 0;
    }
    return null;
  }
  /* Wrapping and lost indentation in one <pre>: a source line drawn on several rows,
     and a row of an indented line that starts left of where its indentation puts it. */
  function lineDefects(pre, r) {
    var lines = sourceLines(pre);
    var cs = getComputedStyle(pre);
    var box = pre.getBoundingClientRect();
    var left0 = box.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft) -
                pre.scrollLeft;
    var wrapped = 0, lost = 0, firstWrap = null, firstLost = null, rendered = 0, cw = 0;
    lines.forEach(function (line, n) {
      var range = document.createRange();
      range.setStart(line.start[0], line.start[1]);
      range.setEnd(line.end[0], line.end[1]);
      var rs = rows(range.getClientRects());
      rendered += Math.max(1, rs.length);
      if (rs.length > 1) { wrapped++; if (firstWrap === null) { firstWrap = n; } }
      var indent = line.text.length - line.text.replace(/^\s+/, '').length;
      if (indent === 0 || indent === line.text.length) { return; }
      var first = charAt(line, indent);
      if (!first) { return; }
      var fr = first.getBoundingClientRect();
      if (!cw) { cw = fr.width; }
      /* where the indentation puts the text */
      var want = left0 + indent * cw - cw / 2;
      var bad = fr.left < want ||
        rs.slice(1).some(function (row) { return row.left < want; });
      if (bad) { lost++; if (firstLost === null) { firstLost = n; } }
    });
    var d = describe(pre);
    if (wrapped) {
      r.wrapped.push({section: d.section, source_lines: lines.length,
                      rendered_lines: rendered,
                      lines: wrapped, text: lines[firstWrap].text.slice(0, 100)});
    }
    if (lost) {
      r.indent.push({section: d.section, lines: lost,
                     text: lines[firstLost].text.slice(0, 100)});
    }
  }
  function altProblem(alt) {
    if (alt === null) { return 'no alt attribute'; }
    var a = alt.trim();
    if (!a) { return 'empty alt text'; }
    if (/[\\/]|\.(png|jpe?g|gif|svg|webp)\b/i.test(a)) {
      return 'alt text is a file path';
    }
    if (/^[0-9a-f_-]{12,}$/i.test(a)) { return 'alt text is a hash'; }
    if (a.split(/\s+/).length < %(alt_words)d) { return 'alt text says too little'; }
    return null;
  }
  function numbered(el) {  /* a display equation with a number or tag at its margin */
    var holder = el.closest('div.math, .math') || el.parentNode;
    return !!(el.querySelector('mjx-labels, mjx-mlabeledtr, mlabeledtr') ||
              (holder && holder.querySelector('span.eqno')));
  }
  function measure(images) {
    var r = {width: window.innerWidth, images: images, merrors: [], overflow: [],
             wrapped: [], indent: [], equations: [], hidden: [], figures: [], alt: [],
             errors: (window.__mladlibErrors || []).slice()};
    var hasMath = document.querySelector(
      '.math, mjx-container, script[type^="math/tex"]');
    r.math_on_page = !!hasMath;
    r.mathjax_loaded = !!(window.MathJax && window.MathJax.startup &&
                          window.MathJax.startup.document);
    var errs = document.querySelectorAll('mjx-merror, merror, .MathJax_Error');
    errs.forEach(function (el) {
      /* skip the same error's copy for screen readers */
      if (el.closest('mjx-assistive-mml')) { return; }
      var d = describe(el);
      d.text = el.getAttribute('data-mjx-error') || d.text;
      r.merrors.push(d);
    });
    var article = document.querySelector('article.bd-article') ||
                  document.querySelector('[role="main"]') || document.body;
    var right = article.getBoundingClientRect().right;
    var selector = PHONE ?
      'table.table, div.cell_output table, mjx-container[display="true"]' :
      'div.highlight pre, div.cell_output pre, div.output pre, ' +
      'div.cell_output table, ' +
        'table.table, div.cell_output img, mjx-container[display="true"]';
    article.querySelectorAll(selector).forEach(function (el) {
      var box = el.getBoundingClientRect();
      var d = describe(el);
      d.tag = el.tagName.toLowerCase();
      if (box.width === 0) {  /* still hidden after every toggle was opened */
        if (!PHONE && el.tagName === 'PRE') { r.hidden.push(d); }
        return;
      }
      /* a table's scrolling box is the theme's wrapper around it */
      var wrapper = el.parentNode;
      var scroller = el.tagName === 'TABLE' &&
        /auto|scroll/.test(getComputedStyle(wrapper).overflowX) ? wrapper : el;
      var scrolls = scroller.scrollWidth > scroller.clientWidth + TOL;
      var past = box.right > right + TOL;
      if (scrolls || past) {
        d.scroll_width = scroller.scrollWidth; d.client_width = scroller.clientWidth;
        d.right = Math.round(box.right); d.column_right = Math.round(right);
        r.overflow.push(d);
      }
      if (!PHONE && el.tagName === 'PRE') { lineDefects(el, r); }
    });
    article.querySelectorAll('mjx-container[display="true"]').forEach(function (el) {
      /* an equation MathJax refused is reported once, as a math error */
      if (!PHONE && !numbered(el) && !el.querySelector('mjx-merror')) {
        var d = describe(el);
        d.text = (el.querySelector('mjx-assistive-mml') || el).textContent.slice(0, 80);
        r.equations.push(d);
      }
    });
    if (!PHONE) {
      article.querySelectorAll('img').forEach(function (im) {
        var d = describe(im);
        d.src = im.getAttribute('src') || '';
        var why = altProblem(im.getAttribute('alt'));
        if (why) { d.why = why; d.alt = im.getAttribute('alt'); r.alt.push(d); }
        var w = im.getBoundingClientRect().width;
        if (w > 0 && im.naturalWidth > 0) {
          r.figures.push({section: d.section, src: d.src, url: im.src,
                          scale: w / im.naturalWidth});
        }
      });
    }
    var out = document.createElement('script');
    out.type = 'application/json';
    out.id = '%(report_id)s';
    out.textContent = JSON.stringify(r).replace(/</g, '\\u003c');
    document.body.appendChild(out);
    if (window.parent !== window) { window.parent.postMessage(out.textContent, '*'); }
    fetch('%(hold)sdone/' + TOKEN, {method: 'POST'});  /* lets virtual time run on */
  }
  /* Chromium's virtual time leaps over idle stretches, so on a busy machine the DOM
     could be dumped before MathJax has typeset. A request the server holds open until
     the report is written keeps it waiting: virtual time stops while a fetch is
     pending. */
  var TOKEN = Math.random().toString(36).slice(2);
  fetch('%(hold)shold/' + TOKEN).catch(function () {});
  window.addEventListener('load', function () {
    /* open every toggle (hidden checks, long outputs, solution dropdowns) */
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
    document.querySelectorAll('button.toggle-button[aria-expanded="false"]').forEach(
      function (b) { b.click(); });  /* sphinx-togglebutton's dropdowns */
    document.querySelectorAll('.toggle-hidden').forEach(function (e) {
      e.classList.remove('toggle-hidden');
    });
    /* No timers from here on: while the held request is pending, virtual time (and with
       it every setTimeout) stands still. The load event has waited for the images. */
    var mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    mj = mj || Promise.resolve();
    mj.catch(function () {}).then(function () {
      var images = Array.prototype.map.call(document.images, function (im) {
        var ok = im.complete && im.naturalWidth > 0;
        return {src: im.getAttribute('src') || '', ok: ok};
      });
      measure(images);
    });
  });
})();
</script>
""" % {"tol": OVERFLOW_TOLERANCE_PX, "report_id": REPORT_ID, "alt_words": MIN_ALT_WORDS,
       "hold": "/__check__/"}
#: How long (real seconds) the server holds a page's request open waiting for its
#: report.
HOLD_S = 90


@dataclass(frozen=True)
class Problem:
    """One defect: its class (one of :data:`KINDS`), page and description."""

    kind: str
    page: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


def find_chromium() -> str | None:
    """The Chromium executable: $CHROMIUM, else chromium, chromium-browser or Chrome."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def _is_redirect(path: Path) -> bool:
    """A page that only forwards to another (Jupyter Book's index.html)."""
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def html_pages(site: Path) -> list[str]:
    """Every HTML page of a built book, redirects excluded, relative to ``site``
    (sorted)."""
    if not site.is_dir():
        raise FileNotFoundError(f"no built book at {site}")
    skip = {"_static", "_sources", "_images"}
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not skip & set(p.relative_to(site).parts) and not _is_redirect(p))


# --- links (on the files) -------------------------------------------------------------

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
    """Every local href of ``pages`` whose file, or whose #anchor in an HTML file, is
    missing."""
    site = site.resolve()
    problems = []
    for page in pages if pages is not None else html_pages(site):
        path = site / page
        for href in _parse(path).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not href.strip("#"):
                continue  # external (http, mailto, data, javascript) or a bare "#"
            target = path
            if parts.path:
                target = (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if site not in target.parents and target != site:
                problems.append(Problem("link", page, f"{href} leaves the site"))
            elif not target.is_file():
                missing = target.relative_to(site)
                problems.append(Problem("link", page, f"{href}: no file {missing}"))
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target).ids:
                    where = target.relative_to(site)
                    problems.append(Problem(
                        "link", page,
                        f"{href}: no anchor #{parts.fragment} in {where}"))
    return problems


# --- the browser part -----------------------------------------------------------------

def problems_from_report(page: str, report: dict | None,
                         site: Path | None = None) -> list[Problem]:
    """The defects a page's injected-script report shows (``None``: the script never
    ran). ``site``, the served folder, is where the figures' PNG files are read for
    their text."""
    if report is None:
        return [Problem("page", page,
                        "the check script did not finish (page did not load?)")]
    width = report.get("width", WINDOWS["desktop"][0])
    at = "" if width >= 700 else f" at {width} px"
    problems = []
    if report.get("math_on_page") and not report.get("mathjax_loaded"):
        problems.append(Problem("math", page,
                                "the page has math but MathJax did not load"))
    for err in report.get("merrors", []):
        problems.append(Problem(
            "math", page, f"MathJax error in #{err['section']}: {err['text']}"))
    for img in report.get("images", []):
        if not img["ok"]:
            problems.append(Problem("image", page,
                                    f"image does not load: {img['src']}"))
    for block in report.get("overflow", []):
        problems.append(Problem(
            "overflow", page,
            f"<{block['tag']}> in #{block['section']}{at} is "
            f"{block['scroll_width']} px "
            f"wide in a {block['client_width']} px box (right edge {block['right']}, "
            f"column ends at {block['column_right']}); longest line, "
            f"{block.get('chars', '?')} characters: "
            f"{block['text']!r}"))
    for block in report.get("wrapped", []):
        problems.append(Problem(
            "wrap", page,
            f"<pre> in #{block['section']}: {block['source_lines']} source lines drawn "
            f"as {block['rendered_lines']} ({block['lines']} wrapped), first: "
            f"{block['text']!r}"))
    for block in report.get("indent", []):
        problems.append(Problem(
            "indent", page,
            f"<pre> in #{block['section']}: {block['lines']} indented lines drawn "
            f"left of "
            f"their indentation, first: {block['text']!r}"))
    for block in report.get("hidden", []):
        problems.append(Problem(
            "hidden", page,
            f"<{block['tag']}> in #{block['section']} stays hidden with "
            f"every toggle opened, so it was not checked: {block['text']!r}"))
    for eq in report.get("equations", []):
        problems.append(Problem(
            "equation", page, f"display equation in #{eq['section']} has no number: "
            f"{eq['text']!r}"))
    for img in report.get("alt", []):
        problems.append(Problem(
            "alt", page, f"image in #{img['section']}: {img['why']} "
            f"(alt={img['alt']!r}, src {img['src']})"))
    for err in report.get("errors", []):
        problems.append(Problem("console", page, err))
    if site is not None:
        for fig in report.get("figures", []):
            file = Path(site) / unquote(urlsplit(fig["url"]).path).lstrip("/")
            if file.suffix.lower() != ".png" or not file.is_file():
                continue
            shown = figure_text_px(file) * fig["scale"]
            if shown < MIN_FIGURE_TEXT_PX:
                problems.append(Problem(
                    "figure", page, f"figure in #{fig['section']}: smallest text about "
                    f"{shown:.2f} px as displayed (under {MIN_FIGURE_TEXT_PX:g} px; "
                    f"drawn {fig['scale']:.2f} x its size): {fig['src']}"))
    return problems


# --- figure text, measured on the PNG -------------------------------------------------

#: Height of digits and capitals in DejaVu Sans (matplotlib's default font), in em.
CAP_HEIGHT_EM = 0.73


Box = tuple[int, int, int, int]  # a glyph's top, bottom, left, right (PNG pixels)


def _words(boxes: list[Box]) -> list[list[Box]]:
    """Glyph boxes chained into words: left to right, sharing at least half their
    height, at most 0.6 x the taller one's height apart."""
    words: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: b[2]):
        height = box[1] - box[0]
        for word in words:
            top, bottom = min(b[0] for b in word), max(b[1] for b in word)
            last = word[-1]
            shared = min(bottom, box[1]) - max(top, box[0])
            tall = max(height, bottom - top)
            if (shared >= 0.5 * min(height, bottom - top)
                    and 0 <= box[2] - last[3] <= 0.6 * tall):
                word.append(box)
                break
        else:
            words.append([box])
    return words


def _word_height(word: list[Box]) -> int | None:
    """A word's height in pixels (its tallest glyphs'), or None when it says nothing of
    the font's size: a single glyph, or a word of lower-case letters without ascenders
    ("over", "mean": 0.55 em, not 0.73), whose tallest glyphs are about as wide as tall,
    where digits, capitals and ascenders are at least 1.15 times taller than wide."""
    if len(word) < 2:
        return None
    height = max(b[1] - b[0] for b in word)
    tallest = sorted((b[1] - b[0]) / (b[3] - b[2]) for b in word
                     if b[1] - b[0] >= height - 1)
    return height if tallest[len(tallest) // 2] >= 1.15 else None


@functools.lru_cache(maxsize=None)
def figure_text_px(png: Path, repeat: int = 3) -> float:
    """The font size (em, in the PNG's own pixels) of a figure's smallest text,
    estimated from its pixels; ``inf`` when no text is found.

    A PNG carries no record of its fonts, so the text is found as matplotlib draws it:
    dark grey glyphs (connected components of dark, unsaturated pixels, 3-80 px, not
    solid blocks), chained into words along a line. A word's height is its tallest
    glyph, a digit, capital or ascender, 0.73-0.76 em in DejaVu Sans (words of x-height
    letters only are left out: :func:`_word_height`). The smallest height shared (within
    1 px) by ``repeat`` words is the smallest text, so that one stray mark does not
    decide it. Measured on matplotlib
    figures with 5-12 pt labels the estimate is within 10 per cent of the font's size
    (tests/test_browser.py); labels turned 90 degrees are read across, by a glyph's
    width, and come out about a quarter smaller: the check is stricter for them, never
    more lenient.
    """
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    rgba = np.asarray(Image.open(png).convert("RGBA"), dtype=float)
    alpha = rgba[..., 3:] / 255
    rgb = rgba[..., :3] * alpha + 255 * (1 - alpha)  # on the page's white
    dark = (rgb.mean(axis=2) < 128) & (np.ptp(rgb, axis=2) < 80)
    labels, n = ndimage.label(dark, structure=np.ones((3, 3)))
    if n == 0:
        return float("inf")
    ink = ndimage.sum(dark, labels, index=np.arange(1, n + 1))
    boxes = []
    for (rows, cols), px in zip(ndimage.find_objects(labels), ink):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        if 3 <= h <= 80 and w <= 2 * h + 2 and px / (h * w) <= 0.8:
            boxes.append((rows.start, rows.stop, cols.start, cols.stop))
    heights = sorted(h for h in map(_word_height, _words(boxes)) if h is not None)
    for h in heights:
        if sum(abs(x - h) <= 1 for x in heights) >= repeat:
            return h / CAP_HEIGHT_EM
    return float("inf")


_holds: dict[str, threading.Event] = {}
_holds_lock = threading.Lock()


def _hold(token: str) -> threading.Event:
    """The event a page's held request waits on (set when its report is written)."""
    with _holds_lock:
        return _holds.setdefault(token, threading.Event())


def _handler(site: Path, mathjax_dir: Path | None, missing: list[tuple[str, str]]):
    """A quiet static-file handler that injects the check scripts, serves local MathJax
    and appends each request it cannot answer to ``missing`` as (path, referring
    page)."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args) -> None:  # quiet
            pass

        def send_error(self, code, message=None, explain=None) -> None:
            if code == 404:
                referer = urlsplit(self.headers.get("Referer", "")).path.lstrip("/")
                referer = referer.removeprefix(PHONE_PREFIX.lstrip("/"))
                missing.append((urlsplit(self.path).path, referer))
            super().send_error(code, message, explain)

        def do_POST(self) -> None:  # noqa: N802: a page's report is written
            path = urlsplit(self.path).path
            if path.startswith("/__check__/done/"):
                _hold(path.rsplit("/", 1)[1]).set()
                return self._send(b"", "text/plain")
            return self.send_error(404)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/__check__/hold/"):
                _hold(path.rsplit("/", 1)[1]).wait(HOLD_S)
                return self._send(b"", "text/plain")
            if path.startswith(LOCAL_MATHJAX_PREFIX) and mathjax_dir is not None:
                local = (mathjax_dir / path[len(LOCAL_MATHJAX_PREFIX):]).resolve()
                if mathjax_dir.resolve() in local.parents and local.is_file():
                    ctype = ("application/javascript" if local.suffix == ".js"
                             else self.guess_type(str(local)))
                    return self._send(local.read_bytes(), ctype)
                return self.send_error(404)
            if path.startswith(PHONE_PREFIX):
                page = path[len(PHONE_PREFIX):]
                width, height = WINDOWS["phone"]
                frame = PHONE_FRAME % {"page": page, "w": width, "h": height,
                                       "report_id": REPORT_ID}
                return self._send(frame.encode("utf-8"), "text/html; charset=utf-8")
            file = site / path.lstrip("/")
            if file.is_dir():
                file = file / "index.html"
            if file.suffix == ".html" and file.is_file():
                text = file.read_text(encoding="utf-8")
                if mathjax_dir is not None:
                    text = CDN_MATHJAX.sub(
                        lambda m: f"{LOCAL_MATHJAX_PREFIX}es5/{m.group(1)}", text)
                text = re.sub(r"<head[^>]*>", lambda m: m.group(0) + ERROR_HOOK, text,
                              count=1)
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
def serve(site: Path, mathjax_dir: Path | None = None,
          missing: list[tuple[str, str]] | None = None):
    """Serve ``site`` on 127.0.0.1 (a free port) in a thread; yields the base URL.
    Requests it answers with 404 are appended to ``missing`` as (path, referring
    page)."""
    handler = _handler(site, mathjax_dir, missing if missing is not None else [])
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def dump_dom(chromium: str, url: str, window: tuple[int, int] = WINDOWS["desktop"],
             budget_ms: int = 20000, timeout_s: float = 120) -> str:
    """The DOM of ``url`` after headless Chromium has run its scripts (a fresh profile,
    so each page is a first visit: no stored theme mode, no cached favicon)."""
    with tempfile.TemporaryDirectory(prefix="mladlib-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
               f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 and not done.stdout:
        raise RuntimeError(f"chromium failed on {url} (status {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return done.stdout


def report_from_dom(dom: str) -> dict | None:
    """The JSON report the injected script wrote into the DOM, or None when it is
    missing."""
    match = re.search(rf'<script[^>]*id="{REPORT_ID}"[^>]*>(.*?)</script>', dom,
                      flags=re.S)
    return json.loads(match.group(1)) if match else None


def check_site(site: Path, chromium: str, mathjax_dir: Path | None = DEFAULT_MATHJAX,
               pages: list[str] | None = None, workers: int = 2) -> list[Problem]:
    """Every defect of every page of the built book ``site``: links (on the files), then
    each page in Chromium at each of :data:`WINDOWS`, then every request that got a 404
    (a favicon the browser asks for, a script or stylesheet the page names)."""
    site = Path(site)
    pages = html_pages(site) if pages is None else pages
    if mathjax_dir and not (Path(mathjax_dir) / "es5" / "tex-mml-chtml.js").is_file():
        mathjax_dir = None  # pages keep their CDN address: math reports "did not load"
    problems = broken_links(site, pages)
    missing: list[tuple[str, str]] = []
    with serve(site, Path(mathjax_dir) if mathjax_dir else None, missing) as base:
        def one(job: tuple[str, tuple[int, int]]) -> list[Problem]:
            page, window = job
            url = base + page
            if window == WINDOWS["phone"]:  # framed: see PHONE_FRAME
                url, window = base + PHONE_PREFIX.lstrip("/") + page, WINDOWS["desktop"]
            report = report_from_dom(dump_dom(chromium, url, window))
            if report is None:  # once more: on a busy machine a page may miss it
                dom = dump_dom(chromium, url, window, budget_ms=60000)
                report = report_from_dom(dom)
            return problems_from_report(page, report, site)

        jobs = [(page, window) for page in pages for window in WINDOWS.values()]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for found in pool.map(one, jobs):
                problems.extend(found)
    images = {p.detail.split(": ", 1)[1] for p in problems if p.kind == "image"}
    for path, referer in dict.fromkeys(missing):
        if not any(path.endswith(src.lstrip("./")) for src in images):  # as "image"
            problems.append(Problem("console", referer or "(site)", f"404 for {path}"))
    return list(dict.fromkeys(problems))  # a defect seen at both widths is one defect


KINDS = ("math", "image", "link", "overflow", "wrap", "indent", "hidden", "equation",
         "figure", "alt", "console", "page")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, nargs="?", default=REPO / "_build" / "html",
                        help="the built book (default: _build/html)")
    parser.add_argument("--mathjax", type=Path, default=DEFAULT_MATHJAX,
                        help="a local MathJax 3 (default: _vendor/mathjax from "
                             ".ci/fetch_mathjax)")
    parser.add_argument("--pages", nargs="*",
                        help="only these pages (relative to the site)")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("browser check skipped: no chromium on PATH (apt-get install chromium)")
        return 0
    problems = check_site(args.site, chromium, args.mathjax, args.pages)
    for problem in problems:
        print(problem)
    counts = {k: sum(p.kind == k for p in problems) for k in KINDS}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    pages = args.pages or html_pages(args.site)
    print(f"{len(pages)} pages: {summary}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
