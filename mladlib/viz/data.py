"""Figures of the data and of per-class results (chapters 1, 2; reused by 4 and 7).

* :func:`plot_label_timeline`: a video's 0/1 labels as a raster, classes x time (a "piano roll").
* :func:`plot_timelines`: one row per class, ground truth in black and each model's scores
  as a line in its colour (the style of the paper's figure 4).
* :func:`plot_class_frequency`: how often each class is present, one bar per split.
* :func:`plot_dependency_heatmap`: a ``(C, C)`` statistic of class pairs (co-occurrence,
  "follows", similarity), with chosen cells outlined (e.g. the planted pairs).
* :func:`plot_per_class_ap`: per-class AP of several models, grouped bars.
* :func:`plot_histograms`: overlaid histograms in one or more panels (e.g. a feature
  projection on frames where a class is present vs absent).
* :func:`plot_learning_curves`: a per-epoch number (validation f-mAP) for several models.

Every function takes plain arrays, refuses ill-shaped input with a ``ValueError`` naming
the argument, and returns the :class:`~matplotlib.figure.Figure` it drew on. Model colours
and names come from :func:`~mladlib.viz.model_color` and :func:`~mladlib.viz.model_label`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ..utils import to_numpy
from .style import model_color, model_label

#: Colour of highlighted class names and outlined cells.
HIGHLIGHT_COLOR = "#D55E00"


def _class_indices(classes: Sequence[str | int] | None, class_names: Sequence[str], what: str = "classes") -> list[int]:
    """Column indices of ``classes`` (names or indices); all columns when None."""
    if classes is None:
        return list(range(len(class_names)))
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 0 <= int(c) < len(class_names):
                raise ValueError(f"{what}: index {c} is outside the {len(class_names)} classes")
            out.append(int(c))
        elif c in index:
            out.append(index[c])
        else:
            raise ValueError(f"{what}: unknown class {c!r}")
    if not out:
        raise ValueError(f"{what} is empty: give at least one class")
    return out


def _check_matrix(values, name: str, num_classes: int | None = None) -> np.ndarray:
    """``values`` as a 2-D float array ``(T, C)``; ``C`` must equal ``num_classes`` when given."""
    array = np.asarray(to_numpy(values), dtype=float)
    if array.ndim != 2 or array.shape[0] < 1:
        raise ValueError(f"{name} must be a 2-D (T, C) array with T >= 1, got shape {array.shape}")
    if num_classes is not None and array.shape[1] != num_classes:
        raise ValueError(f"{name} has {array.shape[1]} classes but class_names names {num_classes}")
    return array


def class_vectors(series: Mapping[str, object], num_classes: int, described: Callable[[str], str]) -> dict[str, np.ndarray]:
    """``name -> (C,)`` float arrays of ``series``; ``ValueError`` naming the series whose shape
    is wrong (``described(name)``, e.g. ``"model 'cf' has APs of shape"``)."""
    out = {}
    for name, v in series.items():
        v = np.asarray(to_numpy(v), dtype=float)
        if v.shape != (num_classes,):
            raise ValueError(f"{described(name)} {v.shape}, expected ({num_classes},) for {num_classes} classes")
        out[name] = v
    return out


def _time_axis(T: int, fps: float | None) -> tuple[np.ndarray, str]:
    """Times of the ``T`` steps and the axis label: seconds when ``fps`` is given, else steps."""
    if fps is None:
        return np.arange(T, dtype=float), "time step (1/3 s)"
    if not fps > 0:
        raise ValueError(f"fps must be > 0 features per second, got {fps}")
    return np.arange(T) / fps, "time (s)"


def _emphasize(labels, names: set[str]) -> None:
    for label in labels:
        if label.get_text() in names:
            label.set_color(HIGHLIGHT_COLOR)
            label.set_fontweight("bold")


def _legend_above(ax: Axes, highlight_label: str | None) -> bool:
    """A one-row legend above the axes (the series, then ``bold: highlight_label`` in the
    highlight colour); returns whether one was drawn."""
    handles, labels = ax.get_legend_handles_labels()
    if highlight_label:
        handles.append(Patch(facecolor="none", edgecolor="none"))
        labels.append(f"bold: {highlight_label}")
    if not labels:
        return False
    legend = ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(labels),
                       frameon=False, borderaxespad=0.2)
    if highlight_label:
        text = legend.get_texts()[-1]
        text.set_color(HIGHLIGHT_COLOR)
        text.set_fontweight("bold")
    return True


def _finish_class_bars(
    ax: Axes, class_names: Sequence[str], xlabel: str, highlight: Sequence[str] | None,
    highlight_label: str | None, title: str | None,
) -> Figure:
    """Class names top to bottom on the y axis (highlighted ones emphasized), legend above, title."""
    C = len(class_names)
    ax.set_yticks(np.arange(C)[::-1], list(class_names))
    _emphasize(ax.get_yticklabels(), set(highlight or ()))
    ax.set_ylim(-0.6, C - 0.4)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", alpha=0.0)
    legend = _legend_above(ax, highlight_label if highlight else None)
    if title:
        ax.set_title(title, pad=22 if legend else 6)
    ax.figure.tight_layout()
    return ax.figure


def plot_label_timeline(
    labels,
    class_names: Sequence[str],
    classes: Sequence[str | int] | None = None,
    fps: float | None = None,
    title: str | None = None,
    highlight: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A video's labels ``(T, C)`` (0/1, or scores in [0, 1]) as a raster: one row per class.

    ``classes``: which classes to draw, top to bottom (names or column indices; default
    all). ``fps``: features per second, to put the time axis in seconds (default: steps).
    ``highlight``: class names whose row labels are drawn bold and coloured.
    """
    values = _check_matrix(labels, "labels", len(class_names))
    rows = _class_indices(classes, class_names)
    T = values.shape[0]
    times, xlabel = _time_axis(T, fps)
    step = 1.0 if fps is None else 1.0 / fps
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.9 + 0.24 * len(rows)))
    ax.imshow(values[:, rows].T, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0.0, vmax=1.0,
              extent=(times[0] - step / 2, times[-1] + step / 2, len(rows) - 0.5, -0.5))
    ax.set_yticks(range(len(rows)), [class_names[c] for c in rows])
    _emphasize(ax.get_yticklabels(), set(highlight or ()))
    for y in np.arange(len(rows) - 1) + 0.5:  # faint lines between rows
        ax.axhline(y, color="#dddddd", linewidth=0.5)
    ax.grid(False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("class")
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_timelines(
    truth,
    class_names: Sequence[str],
    predictions: Mapping[str, object] | None = None,
    classes: Sequence[str | int] | None = None,
    fps: float | None = None,
    title: str | None = None,
    threshold: float | None = None,
    highlight: Sequence[str] | None = None,
) -> Figure:
    """Ground truth and model scores over time, one row per class (the paper's figure 4).

    ``truth (T, C)`` 0/1 is drawn as black bars; ``predictions``: ``model name -> (T, C)``
    scores in [0, 1], each a line in the model's colour. ``classes``: the rows, top to
    bottom (default: the classes present in ``truth``). ``threshold``: a dotted line at
    that score. ``highlight``: class names whose row labels are drawn bold and coloured.
    """
    gt = _check_matrix(truth, "truth", len(class_names))
    scores = {}
    for name, s in (predictions or {}).items():
        s = _check_matrix(s, f"predictions[{name!r}]", len(class_names))
        if s.shape != gt.shape:
            raise ValueError(f"predictions[{name!r}] has shape {s.shape} but truth has shape {gt.shape}")
        scores[name] = s
    if classes is None:
        classes = [c for c in range(gt.shape[1]) if gt[:, c].any()] or [0]
    rows = _class_indices(classes, class_names)
    times, xlabel = _time_axis(gt.shape[0], fps)
    fig, axes = plt.subplots(len(rows), 1, sharex=True, figsize=(7.0, 0.9 + 0.62 * len(rows)), squeeze=False)
    for ax, c in zip(axes[:, 0], rows):
        ax.fill_between(times, 0, gt[:, c], step="mid", color=model_color("truth"), alpha=0.85, linewidth=0,
                        label="ground truth")
        for name, s in scores.items():
            ax.plot(times, s[:, c], color=model_color(name), linewidth=1.2, label=model_label(name))
        if threshold is not None:
            ax.axhline(threshold, color="#888888", linestyle=":", linewidth=0.8)
        ax.set_ylim(0, 1.05)
        ax.yaxis.tick_right()  # the class name goes on the left
        ax.set_yticks([0, 1])
        ax.tick_params(axis="y", labelsize=8, length=2)
        ax.set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=9)
        if class_names[c] in set(highlight or ()):
            ax.yaxis.label.set_color(HIGHLIGHT_COLOR)
            ax.yaxis.label.set_fontweight("bold")
        ax.grid(False)
    axes[-1, 0].set_xlabel(xlabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(labels),
                      frameon=False, borderaxespad=0.2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.subplots_adjust(hspace=0.15)
    return fig


def plot_class_frequency(
    frequencies: Mapping[str, object] | object,
    class_names: Sequence[str],
    highlight: Sequence[str] | None = None,
    highlight_label: str | None = None,
    title: str | None = None,
    xlabel: str = "time steps where the class is present (%)",
    ax: Axes | None = None,
) -> Figure:
    """Horizontal bars: the fraction of time steps carrying each class, one bar per series.

    ``frequencies``: a ``(C,)`` array of fractions in [0, 1], or ``series name -> (C,)``
    (e.g. ``{"train": ..., "test": ...}``); drawn x100. ``highlight``: class names drawn
    bold and coloured, explained in the legend by ``highlight_label``.
    """
    series = dict(frequencies) if isinstance(frequencies, Mapping) else {"": frequencies}
    if not series:
        raise ValueError("frequencies is empty: give at least one series")
    C = len(class_names)
    def described(name: str) -> str:
        return f"frequencies{'[' + repr(name) + ']' if name else ''} has shape"

    values = {name: 100 * f for name, f in class_vectors(series, C, described).items()}
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 1.0 + 0.22 * C))
    y = np.arange(C)[::-1]  # first class on top
    height = 0.8 / len(values)
    palette = ["#444444", "#999999", "#56B4E9", "#E69F00"]
    for k, (name, v) in enumerate(values.items()):
        ax.barh(y + 0.4 - height * (k + 0.5), v, height=height, color=palette[k % len(palette)],
                label=name or None)
    return _finish_class_bars(ax, class_names, xlabel, highlight, highlight_label, title)


def plot_dependency_heatmap(
    matrix,
    class_names: Sequence[str],
    title: str | None = None,
    cbar_label: str = "",
    highlight=None,
    highlight_label: str | None = None,
    row_label: str = "class i",
    col_label: str = "class j",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | None = None,
    highlight_classes: Sequence[str] | None = None,
    ax: Axes | None = None,
    tick_step: int | None = None,
) -> Figure:
    """A ``(C, C)`` statistic of class pairs as a heat map: row i, column j.

    NaN cells (e.g. the diagonal, or a pair with no support) are drawn light grey.
    ``highlight``: ``(C, C)`` bool, cells to outline (e.g. the planted pairs), named in the
    legend by ``highlight_label``. ``center``: a value for the middle of a diverging
    colour map (e.g. 0 for a log ratio, with ``cmap="RdBu_r"``). ``highlight_classes``:
    class names whose row and column labels are drawn bold and coloured. ``tick_step``:
    name every k-th class only (default: every class up to 30, else enough to keep the
    names at 8 pt without overlap); every class keeps its tick mark.
    """
    values = np.asarray(to_numpy(matrix), dtype=float)
    C = len(class_names)
    if values.shape != (C, C):
        raise ValueError(f"matrix has shape {values.shape}, expected ({C}, {C}) for {C} classes")
    mask = None
    if highlight is not None:
        mask = np.asarray(to_numpy(highlight), dtype=bool)
        if mask.shape != (C, C):
            raise ValueError(f"highlight has shape {mask.shape}, expected ({C}, {C})")
    if ax is None:  # at most the column's 7 inches: wider figures are shrunk, text too
        side = min(5.8, 2.2 + 0.24 * C)
        _, ax = plt.subplots(figsize=(side + 1.2, side))
    finite = values[np.isfinite(values)]
    low = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    high = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if high <= low:
        high = low + 1.0
    colours = plt.get_cmap(cmap).with_extremes(bad="#eeeeee")
    if center is not None:
        low, high = min(low, center - 1e-9), max(high, center + 1e-9)
        norm = TwoSlopeNorm(vcenter=center, vmin=low, vmax=high)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, norm=norm, interpolation="nearest")
    else:
        image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=low, vmax=high, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label=cbar_label, fraction=0.046, pad=0.04)
    if tick_step is not None and tick_step < 1:
        raise ValueError(f"tick_step must be at least 1, got {tick_step}")
    step = tick_step or max(1, -(-C // 30))  # 30 names of 8 pt fit a 5.8-inch side
    named = range(0, C, step)
    ax.set_xticks(named, [class_names[c] for c in named], rotation=90)
    ax.set_yticks(named, [class_names[c] for c in named])
    if step > 1:
        ax.set_xticks(range(C), minor=True)
        ax.set_yticks(range(C), minor=True)
    ax.tick_params(labelsize=8)
    _emphasize([*ax.get_xticklabels(), *ax.get_yticklabels()], set(highlight_classes or ()))
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.grid(False)
    if mask is not None:
        for i, j in zip(*np.nonzero(mask)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=HIGHLIGHT_COLOR, linewidth=1.4))
        if highlight_label:
            ax.legend([Patch(facecolor="none", edgecolor=HIGHLIGHT_COLOR, linewidth=1.4)], [highlight_label],
                      loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, borderaxespad=0.2)
    if title:
        ax.set_title(title, pad=22 if mask is not None and highlight_label else 6)
    ax.figure.tight_layout()
    return ax.figure


def plot_per_class_ap(
    ap_by_model: Mapping[str, object],
    class_names: Sequence[str],
    highlight: Sequence[str] | None = None,
    highlight_label: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Per-class AP of several models as grouped horizontal bars (x100), classes top to bottom.

    ``ap_by_model``: ``model name -> (C,)`` APs in [0, 1], NaN for a class absent from the
    test set (no bar). ``highlight``: class names drawn bold and coloured, explained in the
    legend by ``highlight_label``.
    """
    if not ap_by_model:
        raise ValueError("ap_by_model is empty: give at least one model")
    C = len(class_names)
    values = {name: 100 * ap for name, ap in
              class_vectors(ap_by_model, C, lambda name: f"model {name!r} has APs of shape").items()}
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 1.0 + 0.26 * C))
    y = np.arange(C)[::-1]
    height = 0.8 / len(values)
    for k, (name, v) in enumerate(values.items()):
        ax.barh(y + 0.4 - height * (k + 0.5), np.nan_to_num(v), height=height, color=model_color(name),
                label=model_label(name))
    return _finish_class_bars(ax, class_names, "per-frame AP (x100)", highlight, highlight_label, title)


def plot_histograms(
    panels: Mapping[str, Mapping[str, object]],
    xlabel: str,
    bins: int = 40,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Overlaid density histograms, one panel per entry of ``panels``.

    ``panels``: ``panel title -> {series name -> 1-D values}``; every panel shares its
    bins across its series, so their shapes compare. ``colors``: series name -> colour.
    """
    if not panels:
        raise ValueError("panels is empty: give at least one panel")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.0), squeeze=False)
    palette = ["#000000", "#999999", "#D55E00", "#0072B2"]
    for ax, (panel, series) in zip(axes[0], panels.items()):
        if not series:
            raise ValueError(f"panel {panel!r} has no series")
        arrays = {name: np.asarray(to_numpy(v), dtype=float).ravel() for name, v in series.items()}
        empty = [name for name, v in arrays.items() if v.size == 0]
        if empty:
            raise ValueError(f"panel {panel!r}: series {empty[0]!r} is empty")
        edges = np.histogram_bin_edges(np.concatenate(list(arrays.values())), bins=bins)
        for k, (name, v) in enumerate(arrays.items()):
            colour = (colors or {}).get(name, palette[k % len(palette)])
            ax.hist(v, bins=edges, density=True, histtype="stepfilled", alpha=0.35, color=colour)
            ax.hist(v, bins=edges, density=True, histtype="step", color=colour, linewidth=1.2, label=name)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_learning_curves(
    curves: Mapping[str, Sequence[float]],
    ylabel: str = "validation f-mAP (x100)",
    title: str | None = None,
    scale: float = 100.0,
    ax: Axes | None = None,
) -> Figure:
    """One line per model of a per-epoch number (epochs from 1), multiplied by ``scale``.

    ``curves``: ``model name -> values``, e.g. ``[h.get("val_frame_map") for h in result.history]``;
    None or NaN marks an epoch without a value (not validated), which is skipped.
    """
    if not curves:
        raise ValueError("curves is empty: give at least one model")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    for name, values in curves.items():
        v = np.array([np.nan if x is None else x for x in values], dtype=float)
        if v.ndim != 1 or not np.isfinite(v).any():
            raise ValueError(f"curves[{name!r}] must be a 1-D sequence with at least one value, got {list(values)!r}")
        epochs = np.arange(1, v.size + 1)
        kept = np.isfinite(v)
        ax.plot(epochs[kept], scale * v[kept], marker="o", markersize=3, color=model_color(name),
                label=model_label(name))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure
