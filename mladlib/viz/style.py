"""One look for every figure: a colour per model, readable fonts at book width, PNG output."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.text  # noqa: F401 (mpl.text below)

from ..models import MODEL_LABELS

#: The order in which the book lists models (weakest baseline first).
MODEL_ORDER = ("linear", "cf", "cb", "tb", "mlad", "mlad-fixed-alpha", "full")

#: One colour per model, the same in every chapter (colour-blind-safe Okabe-Ito palette);
#: "truth" is the ground truth in timelines.
MODEL_COLORS = {
    "linear": "#009E73",  # green, as the I3D baseline in the paper's figure 4
    "cf": "#56B4E9",
    "cb": "#E69F00",
    "tb": "#0072B2",
    "mlad": "#D55E00",  # red, as "our model" in the paper's figure 4
    "mlad-fixed-alpha": "#CC79A7",
    "full": "#999999",
    "truth": "#000000",
}


def model_color(name: str) -> str:
    """The colour of model ``name`` (a key of :data:`MODEL_COLORS`)."""
    return MODEL_COLORS.get(name, "#444444")


def model_label(name: str) -> str:
    """The readable name of model ``name``."""
    return MODEL_LABELS.get(name, name)


#: Width of the book's content column: about 780 CSS px at a 1400 px window (measured in
#: headless Chromium), i.e. 7.0 inches of figure at the 111 px per inch a 150-dpi PNG is
#: shrunk to. A wider figure is scaled down further, and its text with it.
COLUMN_PX = 780
#: Figures are rendered (inline in notebooks, and saved) at this resolution.
DPI = 150
#: The smallest text a reader should have to read, in CSS px at normal zoom (9 pt = 12 px).
MIN_TEXT_PX = 11.0


def displayed_text_px(fig, column_px: int = COLUMN_PX) -> float:
    """The smallest font of ``fig``'s visible text (tick labels included) in CSS px, as the
    book shows it: ``size_pt * dpi / 72``, times the factor by which the browser shrinks a
    PNG wider than the column. ``inf`` when the figure has no text."""
    width_px = fig.get_figwidth() * fig.dpi
    shrink = min(1.0, column_px / width_px)
    fig.canvas.draw()  # tick labels exist only once drawn
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes) * fig.dpi / 72 * shrink if sizes else float("inf")


def apply_style() -> None:
    """Matplotlib settings for the book: PNG figures at book width, legible fonts, no clutter.

    PNG, not SVG: nbval compares SVG text (which carries a timestamp) but not PNG bytes.
    ``figure.dpi`` is what the inline backend renders notebook figures at: 150, so that a
    7-inch figure is 1050 px, shown at the column's 780 px with 9-pt tick labels about 14 px
    high (at 100 dpi they were drawn at 12 px and, in wide figures, shrunk below 6 px).
    """
    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.6),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "image.cmap": "viridis",
    })
    try:  # inline backend in notebooks: PNG only
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:  # outside Jupyter
        pass
