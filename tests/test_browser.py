"""The rendered book in headless Chromium (tests/browser_check.py), and each defect
class the check looks for, on fixture pages that carry exactly that defect
(tests/browser_fixtures/).

The Chromium tests skip, saying why, where no ``chromium`` is installed (``.ci/run``
installs Debian's). ``test_rendered_book`` builds the book strictly into a temporary
folder, or checks the build in ``$MLADLIB_BOOK_HTML`` (CI passes its own fresh
``_build/html``); it wants a local MathJax 3 (``bash .ci/fetch_mathjax``), since the
pages' CDN cannot be reached offline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import browser_check as bc  # noqa: E402

CHROMIUM = bc.find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; "
                             "or set $CHROMIUM): the rendered book is not checked here")
HAS_MATHJAX = (bc.DEFAULT_MATHJAX / "es5" / "tex-mml-chtml.js").is_file()
NO_MATHJAX = "no local MathJax 3 in _vendor/mathjax (run: bash .ci/fetch_mathjax)"
FIXTURES = Path(__file__).parent / "browser_fixtures"

#: Each fixture page and the defects the check must find on it: (class, words of the
#: detail).
EXPECTED = {
    "clean.html": [],
    "checks.html": [],
    "wrap.html": [("wrap", "3 source lines drawn as")],
    "indent.html": [("indent", "1 indented lines drawn left of their indentation")],
    "overflow.html": [("overflow", "<pre> in #overflow")],
    "toggle.html": [("overflow", "<pre> in #toggle")],
    "dropdown.html": [("overflow", "<pre> in #dropdown")],
    "phone.html": [("overflow", "<table> in #phone at 412 px")],
    "figure.html": [("figure", "figure in #figure: smallest text about")],
    "equation.html": [("equation", "display equation in #equation has no number")],
    "console.html": [("console", "SyntaxError")],
    "favicon.html": [("console", "404 for /favicon.ico")],
    "alt.html": [("alt", "alt text is a file path")],
    "math.html": [("math", "#math: \\tag not allowed in split environment")],
    "image.html": [("image", "image does not load: missing.png")],
    "link.html": [("link", "nowhere.html: no file nowhere.html")],
}
NEEDS_MATHJAX = {"equation.html", "math.html"}


def draw_figure(path: Path, points: float) -> None:
    """A 5-inch line plot at 150 dpi (750 px: shown at its own size in the fixtures'
    780 px column) with every label ``points`` high."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=150)
    ax.plot(range(10), [x * x for x in range(10)])
    ax.tick_params(labelsize=points)
    ax.set_xlabel("time (s)", fontsize=points)
    ax.set_ylabel("loss", fontsize=points)
    fig.savefig(path, dpi=150)
    plt.close(fig)


# --- without a browser ----------------------------------------------------------------

def test_report_becomes_one_problem_per_defect():
    report = {"width": 1400, "math_on_page": True, "mathjax_loaded": True,
              "merrors": [{"section": "s",
                           "text": "\\tag not allowed in split environment"}],
              "images": [{"src": "a.png", "ok": True}, {"src": "b.png", "ok": False}],
              "overflow": [{"section": "t", "text": "x" * 100, "chars": 100,
                            "tag": "pre", "scroll_width": 900, "client_width": 780,
                            "right": 1095, "column_right": 1128}],
              "wrapped": [{"section": "w", "source_lines": 3, "rendered_lines": 5,
                           "lines": 2, "text": "y = 1"}],
              "indent": [{"section": "w", "lines": 1, "text": "    return x"}],
              "hidden": [], "equations": [{"section": "e", "text": "a=b"}],
              "alt": [{"section": "f", "why": "alt text is a hash", "alt": "ab12" * 8,
                       "src": "c.png"}],
              "errors": ["console.error: Got invalid theme mode"], "figures": []}
    problems = bc.problems_from_report("p.html", report)
    assert [p.kind for p in problems] == ["math", "image", "overflow", "wrap", "indent",
                                          "equation", "alt", "console"]
    text = [str(p) for p in problems]
    assert "\\tag not allowed" in text[0] and "b.png" in text[1]
    assert "900 px wide in a 780 px box" in text[2]
    assert "3 source lines drawn as 5 (2 wrapped)" in text[3]
    assert "invalid theme mode" in text[7]
    clean = {"width": 1400, "math_on_page": True, "mathjax_loaded": True,
             "images": [{"src": "a.png", "ok": True}]}
    assert bc.problems_from_report("p.html", clean) == []
    offline = bc.problems_from_report("p.html", dict(clean, mathjax_loaded=False))
    assert [p.kind for p in offline] == ["math"]  # MathJax never loaded (offline CDN)
    assert [p.kind for p in bc.problems_from_report("p.html", None)] == ["page"]
    phone = dict(clean, width=412, overflow=report["overflow"])
    (narrow,) = bc.problems_from_report("p.html", phone)
    assert "in #t at 412 px is 900 px wide" in str(narrow)


def test_report_is_read_back_from_the_dom():
    dom = ('<html><body><p>x</p><script type="application/json" id="%s" tabindex="0">'
           '{"images": [], "note": "\\u003c/script>"}</script></body></html>'
           % bc.REPORT_ID)
    assert bc.report_from_dom(dom) == {"images": [], "note": "</script>"}
    assert bc.report_from_dom("<html><body></body></html>") is None


def test_broken_links_are_found_on_the_files(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(FIXTURES, site)
    (site / "redirect.html").write_text(
        '<meta http-equiv="Refresh" content="0; url=x.html">')
    pages = bc.html_pages(site)
    assert "redirect.html" not in pages and "link.html" in pages
    (site / "anchor.html").write_text(
        '<a href="clean.html#nothere">x</a><a href="#">top</a>')
    problems = bc.broken_links(site)
    assert [(p.page, p.detail) for p in problems] == [
        ("anchor.html", "clean.html#nothere: no anchor #nothere in clean.html"),
        ("link.html", "nowhere.html: no file nowhere.html")]
    with pytest.raises(FileNotFoundError, match="no built book"):
        bc.html_pages(tmp_path / "absent")


@pytest.mark.parametrize("points", [5, 6, 8, 10, 12])
def test_figure_text_is_measured_on_the_png(tmp_path, points):
    """The pixel estimate of a figure's smallest font against the font matplotlib drew:
    within 10 per cent (5-12 pt labels at 150 dpi)."""
    path = tmp_path / f"{points}.png"
    draw_figure(path, points)
    drawn = points * 150 / 72
    assert bc.figure_text_px(path) == pytest.approx(drawn, rel=0.10)


def test_a_figure_without_text_has_no_smallest_text(tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 100), "white").save(tmp_path / "blank.png")
    assert bc.figure_text_px(tmp_path / "blank.png") == float("inf")


# --- in Chromium ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_problems(tmp_path_factory):
    """Every problem the check finds on the fixture site, by page."""
    site = tmp_path_factory.mktemp("fixtures") / "site"
    shutil.copytree(FIXTURES, site)
    shutil.copy(bc.REPO / "_static" / "mladlib.js", site)  # for checks.html
    draw_figure(site / "small_text.png", 4)   # about 8 px text at its natural size
    draw_figure(site / "large_text.png", 12)  # 25 px
    problems = bc.check_site(site, CHROMIUM, workers=2)
    by_page: dict[str, list[bc.Problem]] = {page: [] for page in EXPECTED}
    for problem in problems:
        by_page.setdefault(problem.page, []).append(problem)
    return by_page


@needs_chromium
@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_each_fixture_yields_its_defect_and_no_other(fixture_problems, page):
    found = fixture_problems[page]
    if page in NEEDS_MATHJAX and not HAS_MATHJAX:  # offline without the local copy
        assert [p.detail for p in found] == [
            "the page has math but MathJax did not load"]
        pytest.skip(NO_MATHJAX)
    if page == "clean.html" and not HAS_MATHJAX:
        found = [p for p in found if "MathJax did not load" not in p.detail]
    assert [(p.kind, words) for p, (_, words) in zip(found, EXPECTED[page])
            if words in p.detail] == EXPECTED[page], found
    assert len(found) == len(EXPECTED[page]), found


@needs_chromium
def test_site_script_labels_check_toggles_and_zooms_figures(tmp_path):
    """_static/mladlib.js: a hide-input cell whose first line is '# checks: <what>'
    gets a toggle saying so, other hidden cells keep myst-nb's label; a figure opens at
    full size on click."""
    site = tmp_path / "site"
    shutil.copytree(FIXTURES, site)
    shutil.copy(bc.REPO / "_static" / "mladlib.js", site)
    draw_figure(site / "large_text.png", 12)
    page = (site / "checks.html").read_text()
    click = ("<script>window.addEventListener('load', function () {"
             "document.querySelector('img').click(); });</script></body>")
    (site / "checks.html").write_text(page.replace("</body>", click))
    with bc.serve(site) as base:
        dom = bc.dump_dom(CHROMIUM, base + "checks.html")
    labels = re.findall(
        r'<p class="(collapsed|expanded) admonition-title">([^<]*)</p>', dom)
    assert labels == [
        ("collapsed", "Checks: the counts of the worked example"),
        ("expanded", "Hide checks: the counts of the worked example"),
        ("collapsed", "Show code cell source"), ("expanded", "Hide code cell source")]
    zoomed = r'<div class="mladlib-zoom"[^>]*><img src="[^"]*large_text.png"'
    assert re.search(zoomed, dom)


@needs_chromium
def test_no_problem_lands_on_a_page_that_is_not_a_fixture(fixture_problems):
    assert set(fixture_problems) == set(EXPECTED), fixture_problems


@needs_chromium
@pytest.mark.slow
def test_rendered_book(tmp_path):
    """Every page of the built book passes every check of tests/browser_check.py."""
    if not HAS_MATHJAX:
        pytest.skip(NO_MATHJAX)
    given = os.environ.get("MLADLIB_BOOK_HTML")
    if given:
        site = Path(given)
    else:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "jupyter-book"), "build", str(bc.REPO),
             "--path-output", str(tmp_path), "-W", "-n", "--keep-going"],
            capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        site = tmp_path / "_build" / "html"
    problems = bc.check_site(site, CHROMIUM)
    assert not problems, f"{len(problems)} defects:\n" + "\n".join(map(str, problems))
