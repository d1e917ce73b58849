"""Sphinx settings of the book that _config.yml cannot express.

* Bibliography labels in author-year form ("Tirupattur et al., 2021"), matching the text's
  author-year citations (``bibtex_reference_style: author_year``); pybtex's default labels
  are alphabetic ("TDRS21"). Registered as the formatting style ``authoryear``
  (``bibtex_default_style`` in _config.yml).
* MathJax 3 from ``_vendor/mathjax`` (fetched by ``bash .ci/fetch_mathjax``) when it is
  there, so that the built book renders its equations offline; else Sphinx's CDN address.
* Two console errors of the theme stack, mended: the inline scripts of sphinx-thebe and
  sphinx-togglebutton reach every page twice, and a page that declares
  ``const THEBE_JS_URL`` twice throws a SyntaxError; the pydata theme, given no
  ``default_mode``, logs "Got invalid theme mode" on a first visit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

#: Where .ci/fetch_mathjax puts MathJax, relative to the book's root; copied to _static/mathjax.
VENDOR_DIR = "_vendor"
MATHJAX_COMPONENT = "mathjax/es5/tex-mml-chtml.js"


def _surname(person) -> str:
    """A person's last name(s) as text, LaTeX accents and braces removed."""
    return " ".join(part.render_as("text") for part in person.rich_last_names)


def author_year_label(entry) -> str:
    """'Surname, year', 'Surname and Other, year' or 'Surname et al., year' for one entry."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    if not names:
        who = entry.fields.get("title", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Author-year labels; two entries with the same label get 2018a, 2018b."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year_label(e) for e in entries]
        counts = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                label = f"{label}{chr(ord('a') + seen[label] - 1)}"
            yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt formatting, with author-year labels, sorted by author, year, title."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def _use_local_mathjax(app, config) -> None:
    """Point mathjax_path at the vendored copy when .ci/fetch_mathjax has put one there."""
    vendor = Path(app.srcdir) / VENDOR_DIR
    if (vendor / MATHJAX_COMPONENT).is_file():
        config.mathjax_path = MATHJAX_COMPONENT  # relative: resolved inside _static
        config.html_static_path = [*config.html_static_path, str(vendor)]


def _theme_mode(app, config) -> None:
    """Name the theme's default colour mode ("auto": the reader's system setting),
    which the pydata theme reads from the page context and, when it is empty, falls back
    to only after logging an error."""
    config.html_context = {"default_mode": "auto", **(config.html_context or {})}


def _one_copy_of_each_script(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated script tags (same file or inline body, same attributes) from a
    page, keeping the first: two inline ``const THEBE_JS_URL`` declarations are a
    SyntaxError. The two copies of an inline script reach the page filed under the
    names None and "", which Sphinx does not treat as equal: here they compare by body.
    """
    seen = set()
    unique = []
    for js in context.get("script_files", []):
        attributes = sorted(getattr(js, "attributes", {}).items())
        key = (getattr(js, "filename", js) or "", repr(attributes))  # None and "" alike
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("config-inited", _use_local_mathjax)
    app.connect("config-inited", _theme_mode)
    # late (priority 900), after the theme and other extensions have added their scripts
    app.connect("html-page-context", _one_copy_of_each_script, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
