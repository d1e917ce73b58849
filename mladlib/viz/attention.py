"""Figures of attention maps (chapters 3, 7).

* :func:`plot_attention_map`: one ``(rows, cols)`` weight matrix as a heat map.
* :func:`plot_attention_grid`: a grid of such maps, e.g. actions x layers (figures 5, S4, S5).
* :func:`plot_time_attention`: a class's ``T x T`` temporal maps per layer, with the steps
  where the class is present marked (figures 6, S6, S7).
* :func:`plot_class_time_attention`: attention received by each class over time, ``C x T``
  per layer (figure S3).
* :func:`plot_per_class_scores`: one number per class and series as dots (e.g. how well
  attention ranks each class's planted partners).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ..utils import to_numpy
from .data import class_vectors

#: Above this many rows or columns, tick labels are thinned to about this many.
MAX_TICK_LABELS = 32


def plot_attention_map(
    matrix,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "attention weights",
    ax: Axes | None = None,
    highlight: Mapping[int, str] | None = None,
    xlabel: str = "attended to (key)",
    ylabel: str = "attending (query)",
    vmax: float | None = None,
    colorbar: bool = True,
) -> Figure:
    """Heat map of an attention matrix ``(rows, cols)``: row ``i`` holds the weights that
    query ``i`` gives to each key (rows of a softmax sum to 1).

    ``row_labels``/``col_labels`` name the ticks (class names, or steps); long axes are
    thinned to about :data:`MAX_TICK_LABELS` labels. ``highlight`` maps an index to a
    colour for its row and column tick labels (as the paper's figure S4 colours related
    classes green and unrelated ones red). ``vmax`` fixes the top of the colour scale
    (default: the largest weight; bottom 0). Draws into ``ax`` if given; returns the Figure.
    """
    weights = to_numpy(matrix).astype(float)
    if weights.ndim != 2:
        raise ValueError(f"expected a 2-D attention matrix (rows, cols), got shape {weights.shape}")
    rows, cols = weights.shape
    for name, labels, n in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} entries for {n} {name.split('_')[0]}s")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    top = float(np.nanmax(weights)) if vmax is None else vmax
    image = ax.imshow(weights, vmin=0.0, vmax=top if top > 0 else 1.0, aspect="auto", interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="attention weight", fraction=0.046, pad=0.04)
    _ticks(ax.set_yticks, rows, row_labels, rotation=0)
    _ticks(ax.set_xticks, cols, col_labels, rotation=90)
    if highlight:
        for axis in (ax.xaxis, ax.yaxis):
            for location, label in zip(axis.get_ticklocs(), axis.get_ticklabels()):
                colour = highlight.get(int(round(location)))
                if colour is not None:
                    label.set_color(colour)
                    label.set_fontweight("bold")
    ax.grid(False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax.figure


def _ticks(setter, n: int, labels: Sequence[str] | None, rotation: int) -> None:
    """Ticks at every index, or about :data:`MAX_TICK_LABELS` of them on a long axis."""
    step = max(1, -(-n // MAX_TICK_LABELS))
    positions = list(range(0, n, step))
    names = [str(labels[i]) if labels is not None else str(i) for i in positions]
    setter(positions, names, rotation=rotation, fontsize=9 if n <= 12 else 8 if n <= 24 else 7.5)


# --- chapter 7: attention maps of a trained MLAD -------------------------------------------
#: Colours of the paper's figures 5 and S4-S7 (Okabe-Ito): classes related to the main
#: one, unrelated classes, and the steps where a class is present or absent.
RELATED_COLOR = "#009E73"  # green
UNRELATED_COLOR = "#D55E00"  # vermillion (the paper's red)
MAIN_COLOR = "#000000"
PRESENT_COLOR = "#009E73"  # green, as the paper's figure 6
ABSENT_COLOR = "#E69F00"  # orange


def plot_attention_grid(
    maps: Sequence[Sequence[object]],
    labels: Sequence[Sequence[str]],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    highlight: Sequence[Mapping[int, str] | None] | None = None,
    title: str | None = None,
    xlabel: str = "attended to (key)",
    ylabel: str = "attending (query)",
    panel_size: float = 2.6,
) -> Figure:
    """A grid of square attention maps: ``maps[r][c]`` is a ``(k_r, k_r)`` matrix (e.g. row r
    an action, column c a layer, as the paper's figures 5, S4 and S5).

    ``labels[r]``: the ``k_r`` tick names of row r (the same on both axes). One colour
    scale per row (from 0 to the row's largest weight), so a row's layers compare;
    ``highlight[r]``: index -> colour for that row's tick labels (see :func:`plot_attention_map`).
    ``row_titles`` label the rows on the left, ``col_titles`` the columns on top.
    """
    rows = [list(r) for r in maps]
    if not rows or not rows[0]:
        raise ValueError("maps is empty: give at least one row with one map")
    n_cols = len(rows[0])
    if any(len(r) != n_cols for r in rows):
        raise ValueError(f"every row of maps needs {n_cols} maps, got {[len(r) for r in rows]}")
    if len(labels) != len(rows):
        raise ValueError(f"labels has {len(labels)} rows for {len(rows)} rows of maps")
    for name, values, n in (("row_titles", row_titles, len(rows)), ("col_titles", col_titles, n_cols),
                            ("highlight", highlight, len(rows))):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n}")
    arrays = [[to_numpy(m).astype(float) for m in r] for r in rows]
    for r, (row, names) in enumerate(zip(arrays, labels)):
        for m in row:
            if m.shape != (len(names), len(names)):
                raise ValueError(f"row {r}: a map has shape {m.shape} but labels names {len(names)} classes")
    longest = max(len(str(name)) for names in labels for name in names)
    margin = 0.3 + 0.075 * longest  # inches for the rotated column labels under each row
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(panel_size * n_cols + 1.0 + margin,
                                                         (panel_size + margin) * len(rows) + 0.4),
                             squeeze=False, layout="constrained")
    for r, row in enumerate(arrays):
        top = max(float(np.nanmax(m)) for m in row)
        for c, m in enumerate(row):
            ax = axes[r, c]
            plot_attention_map(m, labels[r], labels[r], title=col_titles[c] if col_titles and r == 0 else "",
                               ax=ax, highlight=highlight[r] if highlight else None, vmax=top, colorbar=False,
                               xlabel=xlabel if r == len(rows) - 1 else "", ylabel="")
            if c > 0:
                ax.set_yticklabels([])
        fig.colorbar(axes[r, -1].images[0], ax=list(axes[r]), fraction=0.04, pad=0.02, label="attention weight")
        axes[r, 0].set_ylabel(f"{row_titles[r]}\n{ylabel}" if row_titles else ylabel)
    if title:
        fig.suptitle(title)
    return fig


_STRIP_OFFSET = 0.055  # the left strip spans [-0.055, -0.01] of its panel's width


def _presence_strip(ax: Axes, present: np.ndarray, extent: tuple[float, float], side: str) -> Axes:
    """A thin bar beside ``ax`` (``"top"`` or ``"left"``) coloured by ``present``, step by step."""
    colours = ListedColormap([ABSENT_COLOR, PRESENT_COLOR])
    if side == "top":
        strip = ax.inset_axes([0.0, 1.01, 1.0, 0.045])
        strip.imshow(present[None, :].astype(float), aspect="auto", cmap=colours, vmin=0, vmax=1,
                     extent=(extent[0], extent[1], 0, 1), interpolation="nearest")
    else:
        strip = ax.inset_axes([-_STRIP_OFFSET, 0.0, 0.045, 1.0])
        # move the y tick labels out past the strip (points: panel width x offset)
        width_in = ax.get_position().width * ax.figure.get_figwidth()
        ax.tick_params(axis="y", pad=_STRIP_OFFSET * width_in * 72 + 3)
        strip.imshow(present[:, None].astype(float), aspect="auto", cmap=colours, vmin=0, vmax=1,
                     extent=(0, 1, extent[1], extent[0]), interpolation="nearest")
    strip.set_axis_off()
    return strip


def plot_time_attention(
    maps,
    present,
    title: str | None = None,
    start: int = 0,
    panel_titles: Sequence[str] | None = None,
    panel_size: float = 3.0,
    clip_quantile: float | None = 0.99,
) -> Figure:
    """Temporal-branch maps of one class on one window, one panel per layer (figures 6, S6, S7).

    ``maps (L, T, T)``: row t holds the weights step t gives to each step s.
    ``present (T,)`` bool: steps where the class is present, drawn as a green (present) /
    orange (absent) strip along the top and left of every panel, so the checkerboard of
    present-to-present attention shows. ``start``: the window's first step in its video
    (the axes count steps from it). ``clip_quantile``: the colour scale tops out at this
    quantile of all the weights shown (a few large weights would otherwise flatten the rest
    to one colour); ``None`` uses the maximum.
    """
    weights = to_numpy(maps).astype(float)
    if weights.ndim == 2:
        weights = weights[None]
    if weights.ndim != 3 or weights.shape[1] != weights.shape[2]:
        raise ValueError(f"expected TB maps of shape (L, T, T), got {weights.shape}")
    L, T, _ = weights.shape
    present = np.asarray(to_numpy(present)).astype(bool)
    if present.shape != (T,):
        raise ValueError(f"present has shape {present.shape}, expected ({T},) for maps of {T} steps")
    if panel_titles is not None and len(panel_titles) != L:
        raise ValueError(f"panel_titles has {len(panel_titles)} entries for {L} maps")
    if clip_quantile is not None and not 0 < clip_quantile <= 1:
        raise ValueError(f"clip_quantile must be in (0, 1] (or None), got {clip_quantile}")
    fig, axes = plt.subplots(1, L, figsize=(panel_size * L + 0.8, panel_size + 0.6), squeeze=False)
    extent = (start - 0.5, start + T - 0.5)
    peak = float(np.nanmax(weights))
    top = (float(np.nanquantile(weights, clip_quantile)) if clip_quantile is not None else peak) or peak or 1.0
    for l, ax in enumerate(axes[0]):
        image = ax.imshow(weights[l], vmin=0.0, vmax=top, interpolation="nearest", aspect="equal",
                          extent=(extent[0], extent[1], extent[1], extent[0]))
        _presence_strip(ax, present, extent, "top")
        _presence_strip(ax, present, extent, "left")
        ax.grid(False)
        ax.set_xlabel("attended step s (1/3 s)")
        if l == 0:
            ax.set_ylabel("attending step t (1/3 s)", labelpad=12)
        ax.set_title(panel_titles[l] if panel_titles else f"layer {l + 1}", pad=14)
    fig.colorbar(image, ax=list(axes[0]), fraction=0.02, pad=0.02, extend="max" if top < peak else "neither",
                 label="attention weight" + (f" (top {100 * (1 - clip_quantile):.3g}% clipped)" if top < peak else ""))
    handles = [Patch(color=PRESENT_COLOR, label="class present"), Patch(color=ABSENT_COLOR, label="class absent")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.45, -0.02))
    if title:
        fig.suptitle(title, y=1.02)
    return fig


def plot_class_time_attention(
    maps,
    class_names: Sequence[str],
    present,
    title: str | None = None,
    start: int = 0,
    panel_titles: Sequence[str] | None = None,
) -> Figure:
    """Attention received by each class over time, one ``(C, T)`` panel per layer (figure S3).

    ``maps (L, C, T)`` (see :func:`mladlib.interpret.class_time_attention`); ``present
    (T, C)`` 0/1 labels of the window: present cells are outlined in white and the names
    of classes present somewhere in the window drawn bold in green. ``start``: the
    window's first step in its video.
    """
    weights = to_numpy(maps).astype(float)
    if weights.ndim == 2:
        weights = weights[None]
    C = len(class_names)
    if weights.ndim != 3 or weights.shape[1] != C:
        raise ValueError(f"expected maps of shape (L, {C}, T) for {C} classes, got {weights.shape}")
    L, _, T = weights.shape
    labels = np.asarray(to_numpy(present)).astype(bool)
    if labels.shape != (T, C):
        raise ValueError(f"present has shape {labels.shape}, expected ({T}, {C})")
    if panel_titles is not None and len(panel_titles) != L:
        raise ValueError(f"panel_titles has {len(panel_titles)} entries for {L} maps")
    fig, axes = plt.subplots(L, 1, figsize=(7.0, (0.6 + 0.13 * C) * L + 0.6), squeeze=False, sharex=True)
    top = float(np.nanmax(weights)) or 1.0
    extent = (start - 0.5, start + T - 0.5, C - 0.5, -0.5)
    in_window = set(np.nonzero(labels.any(axis=0))[0].tolist())
    for l, ax in enumerate(axes[:, 0]):
        image = ax.imshow(weights[l], vmin=0.0, vmax=top, aspect="auto", interpolation="nearest", extent=extent)
        for c, first, last in _runs(labels):  # outline each stretch where a class is present
            ax.add_patch(Rectangle((start + first - 0.5, c - 0.5), last - first + 1, 1.0, fill=False,
                                   edgecolor="white", linewidth=0.9))
        ax.set_yticks(range(C), list(class_names), fontsize=7.5 if C > 24 else 8)
        for c, label in enumerate(ax.get_yticklabels()):
            if c in in_window:
                label.set_color(PRESENT_COLOR)
                label.set_fontweight("bold")
        ax.grid(False)
        ax.set_title(panel_titles[l] if panel_titles else f"layer {l + 1}", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="attention\nreceived")
    axes[-1, 0].set_xlabel("time step (1/3 s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """``(class, first step, last step)`` of every run of consecutive True steps in ``labels (T, C)``."""
    padded = np.pad(labels.astype(np.int8), ((1, 1), (0, 0)))
    change = np.diff(padded, axis=0)  # (T + 1, C): +1 where a run starts, -1 after it ends
    starts, ends = np.nonzero(change.T == 1), np.nonzero(change.T == -1)
    return [(int(c), int(a), int(b) - 1) for c, a, b in zip(starts[0], starts[1], ends[1])]


def plot_per_class_scores(
    values: Mapping[str, object],
    class_names: Sequence[str],
    xlabel: str,
    reference: float | None = None,
    reference_label: str | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One row per class, one marker per series (e.g. how well each method ranks that
    class's planted partners). ``values``: series name -> ``(C,)``, NaN = no marker (the
    class is left out when every series is NaN there). ``reference``: a dotted vertical
    line (e.g. 0.5, a random ranking's AUC), named ``reference_label`` in the legend.
    """
    if not values:
        raise ValueError("values is empty: give at least one series")
    C = len(class_names)
    series = class_vectors(values, C, lambda name: f"values[{name!r}] has shape")
    kept = [c for c in range(C) if any(np.isfinite(v[c]) for v in series.values())]
    if not kept:
        raise ValueError("every value is NaN: nothing to draw")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 1.0 + 0.24 * len(kept)))
    y = np.arange(len(kept))[::-1]
    palette = ["#D55E00", "#0072B2", "#999999", "#009E73", "#CC79A7", "#E69F00"]
    markers = ["o", "s", "D", "^", "v", "P"]
    offsets = np.linspace(-0.2, 0.2, len(series)) if len(series) > 1 else [0.0]
    for k, (name, v) in enumerate(series.items()):
        colour = (colors or {}).get(name, palette[k % len(palette)])
        ax.scatter(v[kept], y + offsets[k], color=colour, marker=markers[k % len(markers)], s=22, label=name, zorder=3)
    if reference is not None:
        ax.axvline(reference, color="#666666", linestyle=":", linewidth=1.0, label=reference_label)
    ax.set_yticks(y, [class_names[c] for c in kept])
    ax.set_ylim(-0.6, len(kept) - 0.4)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", alpha=0.0)
    entries = len(series) + (reference is not None and reference_label is not None)
    ncol = entries if entries <= 3 else 2
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=ncol, frameon=False, borderaxespad=0.2, fontsize=8)
    if title:
        ax.set_title(title, pad=12 + 13 * -(-entries // ncol))
    ax.figure.tight_layout()
    return ax.figure
