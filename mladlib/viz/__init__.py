"""The book's figures: one module per topic, one shared style.

Every plotting function takes data (arrays, dicts of results) and returns the matplotlib
``Figure`` (or ``Axes``) it drew, with labelled axes and units; the chapters call them
and end the cell with ``plt.show()``.
"""

from .style import MODEL_COLORS, MODEL_ORDER, apply_style, model_color, model_label

__all__ = ["MODEL_COLORS", "MODEL_ORDER", "apply_style", "model_color", "model_label"]
