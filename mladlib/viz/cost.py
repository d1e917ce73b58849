"""Figures of cost: how time or memory grows with a size, on log-log axes (chapter 3)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..profiling import loglog_slope


def plot_scaling(
    sizes: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str,
    slopes: bool = True,
    reference_slopes: Sequence[float] = (1.0, 2.0),
    colors: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One line per ``series`` entry (label -> values at ``sizes``) on log-log axes.

    On log-log axes a power law ``y ~ x^k`` is a straight line of slope ``k``. With
    ``slopes`` each legend entry carries its least-squares slope; ``reference_slopes``
    draws dashed grey guides of those slopes, anchored at the smallest first value, so
    "linear" and "quadratic" can be read off the figure. ``colors`` maps labels to
    colours. Draws into ``ax`` if given; returns the Figure.
    """
    x = np.asarray(sizes, dtype=float)
    if x.ndim != 1 or len(x) < 2 or (x <= 0).any():
        raise ValueError(f"sizes must be at least two positive numbers, got {list(sizes)}")
    if not series:
        raise ValueError("series is empty: nothing to plot")
    for label, values in series.items():
        if len(values) != len(x):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(x)} sizes")
    if ax is None:
        _, ax = plt.subplots()
    colors = colors or {}
    for label, values in series.items():
        y = np.asarray(values, dtype=float)
        text = f"{label} (slope {loglog_slope(x, y):.2f})" if slopes else label
        ax.plot(x, y, marker="o", label=text, color=colors.get(label))
    if reference_slopes:
        anchor = min(float(values[0]) for values in series.values())
        for k in reference_slopes:
            guide = anchor * (x / x[0]) ** k
            ax.plot(x, guide, linestyle="--", color="#999999", linewidth=0.8, zorder=0)
            ax.annotate(f"slope {k:g}", (x[-1], guide[-1]), textcoords="offset points", xytext=(3, 0),
                        fontsize=10, color="#666666", va="center")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.minorticks_off()
    # plain numbers: 10^1-style labels put a small exponent where a reader must read it
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left")
    return ax.figure
