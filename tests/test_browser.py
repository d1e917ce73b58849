"""The rendered book in headless Chromium (tests/browser_check.py), and each defect class
the check looks for, put back on tiny fixture pages.

The Chromium tests skip, saying why, where no ``chromium`` is installed (``.ci/run`` installs
Debian's). ``test_rendered_book`` builds the book strictly into a temporary folder, or checks
the build in ``$MLADLIB_BOOK_HTML`` (CI passes its own fresh ``_build/html``); it wants a local
MathJax 3 (``bash .ci/fetch_mathjax``), since the pages' CDN cannot be reached offline.
"""

from __future__ import annotations

import os
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

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<style>article {{ width: 600px; }} pre {{ overflow: auto; font: 14px monospace; }}</style>
{head}</head><body><article class="bd-article">{body}</article></body></html>"""
MATHJAX = ('<script>MathJax = {{}};</script><script defer src="https://cdn.jsdelivr.net/npm/'
           'mathjax@3/es5/tex-mml-chtml.js"></script>').format()
# A 1x1 PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f5c2d4"
                    "0000000049454e44ae426082")


def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    """A fixture site: ``pages`` (name -> body), ``ok.png``, under tmp_path/site."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "ok.png").write_bytes(PNG)
    for name, body in pages.items():
        head = MATHJAX if "\\[" in body else ""
        (site / name).write_text(PAGE.format(head=head, body=body), encoding="utf-8")
    return site


GOOD = """<section id="fine">
<p>A link to <a href="other.html#there">the other page</a> and <a href="#fine">here</a>.</p>
<div class="math notranslate nohighlight">
\\[ f_{t,c} = \\mathrm{ReLU}(W_c^T x_t + b_c) \\tag{1} \\]</div>
<img src="ok.png" alt="a picture"><div class="highlight"><pre>print("short line")</pre></div>
</section>"""
OTHER = '<section id="there"><p>The other page.</p></section>'
# One defect of each kind the browser sees, each in its own section.
BAD = """<section id="math"><div class="math notranslate nohighlight">
\\[\\begin{split}a &= b\\\\ c &= d \\tag{10}\\end{split}\\]</div></section>
<section id="literal">
<mjx-merror data-mjx-error="planted error"><span>x</span></mjx-merror></section>
<section id="image"><img src="missing.png" alt="gone"></section>
<section id="overflow">
<div class="highlight"><pre>""" + "x = 1  # " + "y" * 150 + """</pre></div></section>
<section id="link">
<a href="nowhere.html">a broken link</a> <a href="ok.html#nothere">an anchor</a></section>"""


# --- without a browser ---------------------------------------------------------------------

def test_report_becomes_one_problem_per_defect():
    report = {"math_on_page": True, "mathjax_loaded": True,
              "merrors": [{"section": "s", "text": "\\tag not allowed in split environment"}],
              "images": [{"src": "a.png", "ok": True}, {"src": "b.png", "ok": False}],
              "overflow": [{"section": "t", "text": "x" * 100, "chars": 100, "tag": "pre",
                            "scroll_width": 900, "client_width": 780, "right": 1095,
                            "column_right": 1128}]}
    problems = bc.problems_from_report("p.html", report)
    assert [p.kind for p in problems] == ["math", "image", "overflow"]
    assert "\\tag not allowed" in str(problems[0]) and "b.png" in str(problems[1])
    assert "900 px wide in a 780 px box" in str(problems[2])
    clean = dict(report, merrors=[], images=[{"src": "a.png", "ok": True}], overflow=[])
    assert bc.problems_from_report("p.html", clean) == []
    assert [p.kind for p in bc.problems_from_report("p.html", dict(clean, mathjax_loaded=False))
            ] == ["math"]  # math on the page, MathJax never loaded (offline CDN)
    assert [p.kind for p in bc.problems_from_report("p.html", None)] == ["page"]


def test_report_is_read_back_from_the_dom():
    dom = ('<html><body><p>x</p><script type="application/json" id="%s" tabindex="0">'
           '{"images": [], "note": "\\u003c/script>"}</script></body></html>' % bc.REPORT_ID)
    assert bc.report_from_dom(dom) == {"images": [], "note": "</script>"}
    assert bc.report_from_dom("<html><body></body></html>") is None


def test_broken_links_are_found_on_the_files(tmp_path):
    site = _site(tmp_path, {"ok.html": GOOD, "other.html": OTHER, "bad.html": BAD})
    (site / "redirect.html").write_text('<meta http-equiv="Refresh" content="0; url=ok.html">')
    assert bc.html_pages(site) == ["bad.html", "ok.html", "other.html"]
    problems = bc.broken_links(site)
    assert {p.page for p in problems} == {"bad.html"}
    text = "\n".join(map(str, problems))
    assert "nowhere.html: no file nowhere.html" in text and "no anchor #nothere" in text
    assert len(problems) == 2
    with pytest.raises(FileNotFoundError, match="no built book"):
        bc.html_pages(tmp_path / "absent")


# --- in Chromium -------------------------------------------------------------------------

@needs_chromium
def test_each_defect_class_is_caught_and_a_clean_page_passes(tmp_path):
    site = _site(tmp_path, {"ok.html": GOOD, "other.html": OTHER, "bad.html": BAD})
    problems = bc.check_site(site, CHROMIUM)
    clean_pages = [p for p in problems if p.page != "bad.html"]
    if HAS_MATHJAX:
        assert not clean_pages, problems
    else:  # offline, without the local copy: each page with math says MathJax never loaded
        assert [(p.kind, p.page) for p in clean_pages] == [("math", "ok.html")], problems
        assert "MathJax did not load" in clean_pages[0].detail
    problems = [p for p in problems if p.page == "bad.html"]
    found = {(p.kind, p.detail.split(" ")[0] if p.kind == "link" else p.detail) for p in problems}
    kinds = sorted(p.kind for p in problems)
    math = [p.detail for p in problems if p.kind == "math"]
    assert any("#literal: planted error" in d for d in math), found
    if HAS_MATHJAX:  # the real chain: the CDN address served locally, TeX typeset, refused
        assert any("#math: \\tag not allowed in split environment" in d for d in math), math
        assert kinds == ["image", "link", "link", "math", "math", "overflow"], problems
        assert sum("split environment" in d for d in math) == 1  # once, not per MathML copy
    else:
        assert any("MathJax did not load" in d for d in math), math
    assert [p.detail for p in problems if p.kind == "image"] == [
        "image does not load: missing.png"]
    (overflow,) = [p.detail for p in problems if p.kind == "overflow"]
    assert overflow.startswith("<pre> in #overflow") and "159 characters" in overflow


@needs_chromium
@pytest.mark.slow
def test_rendered_book(tmp_path):
    """Every page of the built book: no MathJax error, images load, links resolve, no block
    wider than the content column."""
    if not HAS_MATHJAX:
        pytest.skip("no local MathJax 3 in _vendor/mathjax (run: bash .ci/fetch_mathjax)")
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
