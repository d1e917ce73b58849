"""Figures of the semi-real v2 record: learning curves with seed bands, and quantities
over seeds with their intervals (:class:`mladlib.semireal_analysis.Interval`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..semireal_analysis import Interval, curve_band
from .style import model_color, model_label

Curves = Mapping[int, tuple[np.ndarray, np.ndarray]]


def plot_learning_curves(panels: Mapping[str, Mapping[str, Curves]],
                         width: float = 7.0) -> Figure:
    """One panel per title in ``panels`` (e.g. the conditions), one line per model: the
    mean validation f-mAP over the seeds still running at each check, and a band from
    the lowest to the highest seed. ``panels[title][model]`` are
    :func:`~mladlib.semireal_analysis.learning_curves`."""
    if not panels:
        raise ValueError("plot_learning_curves: no panel to draw")
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 3.3), sharey=True,
                             squeeze=False)
    for ax, (title, models) in zip(axes[0], panels.items()):
        for model, curves in models.items():
            if not curves:
                continue
            steps, mean, low, high, _ = curve_band(curves)
            color = model_color(model)
            ax.plot(steps, mean, color=color, lw=1.6,
                    label=f"{model_label(model)} ({len(curves)} seeds)")
            ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
        ax.set(title=title, xlabel="training steps (batches of 8 windows)")
        if ax.lines:
            ax.legend(frameon=False, fontsize=9)
    axes[0, 0].set_ylabel("validation f-mAP (x100)")
    fig.tight_layout()
    return fig


def plot_intervals(rows: Sequence[tuple[str, Interval]], ax=None,
                   xlabel: str = "difference in f-mAP (x100)") -> plt.Axes:
    """A forest plot: one row per ``(label, interval)``, the per-seed values as dots,
    the mean as a bar, the t interval as a line (absent where under two seeds), and a
    zero line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.45 * len(rows) + 1.0))
    for y, (label, x) in enumerate(rows):
        values = list(x.values.values())
        ax.scatter(values, [y] * len(values), s=14, color="0.45", zorder=3)
        if x.ready:
            low, high = x.bounds
            ax.plot([low, high], [y, y], color="#D55E00", lw=2.2, zorder=2)
        if x.n:
            ax.plot([x.mean] * 2, [y - 0.25, y + 0.25], color="black", lw=1.6)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.grid(False, axis="y")
    return ax


def plot_visibility_curve(levels: Sequence[float],
                          series: Mapping[str, Sequence[Interval]],
                          width: float = 7.0, ax: plt.Axes | None = None,
                          ylabel: str = "difference in f-mAP (x100)") -> Figure:
    """Quantities against the median visibility ``v`` (log axis): per series, the mean
    at each level joined by a line, the t interval as an error bar where two seeds or
    more are present, each seed as a dot. Draws on ``ax`` when given (one panel of a
    larger figure), else on a new figure ``width`` inches wide; returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(width, 3.4))
    offsets = np.linspace(-0.03, 0.03, max(1, len(series)))
    for (label, intervals), dx in zip(series.items(), offsets):
        xs = np.array(levels) * 10 ** dx  # a small shift so that bars do not overlap
        means = [x.mean for x in intervals]
        (line,) = ax.plot(xs, means, "-o", ms=4, label=label)
        for xv, x in zip(xs, intervals):
            ax.scatter([xv] * x.n, list(x.values.values()), s=10, alpha=0.5,
                       color=line.get_color())
            if x.ready:
                low, high = x.bounds
                ax.plot([xv, xv], [low, high], color=line.get_color(), lw=1.5)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xscale="log", xlabel="median visibility v (one-step signal-to-noise)",
           ylabel=ylabel)
    ax.set_xticks(list(levels), [f"{v:g}" for v in levels])
    ax.minorticks_off()
    ax.legend(frameon=False, fontsize=9)
    ax.figure.tight_layout()
    return ax.figure
