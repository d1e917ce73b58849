"""One look for every figure: a colour per model, readable fonts at book width, PNG output."""

from __future__ import annotations

import matplotlib as mpl

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


def apply_style() -> None:
    """Matplotlib settings for the book: PNG figures at book width, legible fonts, no clutter.

    PNG, not SVG: nbval compares SVG text (which carries a timestamp) but not PNG bytes.
    """
    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.6),
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
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
