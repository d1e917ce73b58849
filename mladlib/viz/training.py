"""Figures of training, evaluation windows and ablations (chapters 4 and 6).

* :func:`plot_batch_masks`: the padding masks ``(B, T)`` of a few training batches side by
  side, one window length per batch (variable-length training, table 4).
* :func:`plot_loss_parts`: a run's training loss per epoch, total and its initial and final
  terms (section 5.1, table S3).
* :func:`plot_windows`: the sliding windows that score one video, and how many cover each step.
* :func:`plot_ablation`: test f-mAP (mean +- std over seeds) against a setting, one line per
  series, the paper's numbers optionally in a panel of their own (tables 3, 4).
* :func:`plot_setting_bars`: the same as bars, one per setting, the paper's numbers as
  hatched bars beside them on the same axis (tables 5, S2, S3).
* :func:`plot_alpha`: the learned merge weight ``alpha = sigmoid(alpha_logit)`` of each
  MLAD layer, one line per run (eq. 6, table S2).

Every function takes plain numbers, refuses ill-shaped input with a ``ValueError`` naming
the argument, and returns the :class:`~matplotlib.figure.Figure` it drew on. Model colours
and names come from :func:`~mladlib.viz.model_color` and :func:`~mladlib.viz.model_label`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..utils import to_numpy
from .style import MODEL_COLORS, model_color, model_label

#: Colours of series that are not models (e.g. "fixed" and "variable" training length).
SERIES_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: The paper's numbers are drawn in this colour, as open markers.
PAPER_COLOR = "#666666"
STEP_LABEL = "time step (1/3 s)"


def _series_color(name: str, k: int, colors: Mapping[str, str] | None) -> str:
    if colors and name in colors:
        return colors[name]
    if name in MODEL_COLORS:  # a model name: its colour in every chapter
        return model_color(name)
    return SERIES_PALETTE[k % len(SERIES_PALETTE)]


def _per_seed(values, name: str, rows: int) -> np.ndarray:
    """``values`` as a ``(rows, seeds)`` float array (a 1-D array is one seed per row)."""
    array = np.asarray(to_numpy(values) if not isinstance(values, (list, tuple)) else values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != rows or array.shape[1] < 1:
        raise ValueError(f"{name} must hold one row of per-seed values for each of the {rows} settings, "
                         f"got shape {array.shape}")
    if not np.isfinite(array).any(axis=1).all():
        raise ValueError(f"{name} has a setting without any finite value")
    return array


def _paper_values(paper: Sequence[float | None] | None, name: str, rows: int) -> np.ndarray | None:
    if paper is None:
        return None
    values = np.array([np.nan if v is None else v for v in paper], dtype=float)
    if values.shape != (rows,):
        raise ValueError(f"{name} must give one number (or None) per setting: {rows}, got {len(values)}")
    return values


def _pad_limits(ax: Axes, values: np.ndarray) -> None:
    """y limits around ``values`` with a margin, so a few close numbers do not fill the axis."""
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(finite.max())
    margin = max(0.15 * (high - low), 0.5)
    ax.set_ylim(low - margin, high + margin)


def plot_batch_masks(
    masks: Sequence[object],
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The padding masks of a few batches, one panel per batch: window (row) x step, dark
    where a step holds real data, light where it is padding or beyond the batch's length.

    ``masks``: one ``(B, T_b)`` bool array per batch (``WindowBatch.mask``); every panel
    shares the step axis up to the longest ``T_b``, so the batches' lengths compare.
    """
    if not masks:
        raise ValueError("masks is empty: give at least one batch")
    arrays = []
    for k, mask in enumerate(masks):
        m = np.asarray(to_numpy(mask))
        if m.ndim != 2 or min(m.shape) < 1:
            raise ValueError(f"masks[{k}] must be a 2-D (B, T) array, got shape {m.shape}")
        arrays.append(m.astype(bool))
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"titles names {len(titles)} batches but masks holds {len(arrays)}")
    longest = max(m.shape[1] for m in arrays)
    fig, axes = plt.subplots(1, len(arrays), figsize=(min(7.0, 1.2 + 1.9 * len(arrays)), 2.8), sharey=False,
                             squeeze=False)
    for k, (ax, m) in enumerate(zip(axes[0], arrays)):
        shown = np.full((m.shape[0], longest), np.nan)
        shown[:, : m.shape[1]] = m  # beyond the batch's length: NaN, drawn blank
        ax.imshow(shown, aspect="auto", interpolation="nearest", cmap="Greys", vmin=-0.4, vmax=1.0,
                  extent=(-0.5, longest - 0.5, m.shape[0] - 0.5, -0.5))
        ax.axvline(m.shape[1] - 0.5, color=model_color("mlad"), linewidth=1.2)
        ax.grid(False)
        ax.set_xlabel(STEP_LABEL)
        if k == 0:
            ax.set_ylabel("window in the batch")
        ax.set_title(titles[k] if titles is not None else f"T = {m.shape[1]}", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_loss_parts(
    history: Sequence[Mapping[str, object]],
    model: str = "mlad",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A run's mean training loss per epoch: the total and, when the model has an initial
    head, its initial and final terms (``history``: ``RunResult.history``, one dict per epoch
    with ``"loss"``, ``"loss_initial"`` (or None) and ``"loss_final"``). Drawn in the
    colour of ``model``; the epoch of the best validation f-mAP is marked when known."""
    if not history:
        raise ValueError("history is empty: give at least one epoch")
    missing = [k for k in ("loss", "loss_final") if any(k not in h for h in history)]
    if missing:
        raise ValueError(f"history entries lack {missing[0]!r} (expected RunResult.history)")
    epochs = np.arange(1, len(history) + 1)
    parts = {"total": [h["loss"] for h in history], "final logits": [h["loss_final"] for h in history]}
    if all(h.get("loss_initial") is not None for h in history):
        parts["initial logits"] = [h["loss_initial"] for h in history]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    styles = {"total": "-", "final logits": "--", "initial logits": ":"}
    for part, values in parts.items():
        ax.plot(epochs, np.asarray(values, dtype=float), linestyle=styles[part], marker="o", markersize=3,
                color=model_color(model), label=f"{model_label(model)}, {part}")
    val = np.array([np.nan if h.get("val_frame_map") is None else h["val_frame_map"] for h in history], dtype=float)
    if np.isfinite(val).any():
        best = int(np.nanargmax(val)) + 1
        ax.axvline(best, color="#888888", linestyle=":", linewidth=1.0, label=f"best validation epoch ({best})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (BCE per step and class)")
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_windows(
    video_length: int,
    starts: Sequence[int],
    window: int,
    title: str | None = None,
) -> Figure:
    """The sliding windows that score a video of ``video_length`` steps (one bar per window,
    from each of ``starts``, ``window`` steps long, cut at the video's end) above the
    number of windows covering each step, whose mean score becomes the step's score."""
    T, w = int(video_length), int(window)
    first = np.asarray(to_numpy(starts) if not isinstance(starts, (list, tuple)) else starts).astype(np.int64)
    if T < 1 or w < 1:
        raise ValueError(f"video_length and window must be >= 1, got {video_length} and {window}")
    if first.ndim != 1 or first.size == 0 or (first < 0).any() or (first >= T).any():
        raise ValueError(f"starts must be a non-empty list of steps in [0, {T}), got {first.tolist()}")
    stops = np.minimum(first + w, T)
    coverage = np.zeros(T, dtype=np.int64)
    for s, e in zip(first, stops):
        coverage[s:e] += 1
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.0, 1.6 + 0.22 * len(first)),
                                      gridspec_kw={"height_ratios": [max(len(first), 2), 2]})
    for k, (s, e) in enumerate(zip(first, stops)):
        top.broken_barh([(s - 0.5, e - s)], (k - 0.35, 0.7), color=model_color("mlad"), alpha=0.75)
        top.text(s, k, f" {s}", va="center", ha="left", fontsize=8, color="white")
    top.set_ylim(len(first) - 0.5, -0.5)
    top.set_yticks(range(len(first)), [str(k + 1) for k in range(len(first))])
    top.set_ylabel("window")
    top.grid(axis="y", alpha=0.0)
    bottom.step(np.arange(T), coverage, where="mid", color="#000000", linewidth=1.2)
    bottom.set_ylim(0, coverage.max() + 0.8)
    bottom.set_yticks(range(0, int(coverage.max()) + 1))
    bottom.set_ylabel("windows\ncovering")
    bottom.set_xlabel(STEP_LABEL)
    bottom.set_xlim(-0.5, T - 0.5)
    if title:
        top.set_title(title)
    fig.tight_layout()
    return fig


def _check_ddof(ddof: int) -> None:
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population SD) or 1 (sample SD), got {ddof}")


def plot_ablation(
    settings: Sequence[object],
    results: Mapping[str, object],
    xlabel: str,
    ylabel: str = "test f-mAP (x100)",
    paper: Mapping[str, Sequence[float | None]] | None = None,
    paper_ylabel: str = "paper's f-mAP (x100)",
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    ddof: int = 0,
) -> Figure:
    """Mean +- standard deviation over seeds against a setting, one line per series.

    ``settings``: the x values (numbers, or labels drawn evenly spaced). ``results``:
    ``series -> (S, seeds)`` values (already in the unit of ``ylabel``; a 1-D array is one
    seed); each seed is also drawn as a faint dot. ``paper``: ``series -> S`` numbers (None
    where the paper has none), drawn as open markers in a panel of their own to the right,
    with its own y axis, since they are about other data (not on a twin axis, whose two
    scales a reader cannot tell apart); a given ``ax`` then cannot hold the figure. Series
    that are model names take the model's colour and name; others ``colors`` and
    ``labels``, else a fixed palette. ``ddof``: the error bars' delta degrees of
    freedom, 0 (population SD) or 1 (sample SD); the title is the place to say which.
    """
    S = len(settings)
    if S < 1:
        raise ValueError("settings is empty: give at least one setting")
    _check_ddof(ddof)
    if not results:
        raise ValueError("results is empty: give at least one series")
    numeric = all(isinstance(s, (int, float, np.integer, np.floating)) and not isinstance(s, bool) for s in settings)
    x = np.asarray(settings, dtype=float) if numeric else np.arange(S, dtype=float)
    values = {name: _per_seed(v, f"results[{name!r}]", S) for name, v in results.items()}
    references = {name: _paper_values(v, f"paper[{name!r}]", S) for name, v in (paper or {}).items()}
    paper_ax = None
    if references and ax is not None:
        raise ValueError("paper is drawn in a panel of its own: leave ax out")
    if references:
        _, (ax, paper_ax) = plt.subplots(1, 2, figsize=(9.0, 3.6), sharex=True,
                                         gridspec_kw={"width_ratios": [1.5, 1.0]})
    elif ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.4))
    offsets = np.linspace(-0.06, 0.06, len(values)) * (np.ptp(x) / max(S - 1, 1) if S > 1 else 1.0)
    handles = []
    for k, (name, v) in enumerate(values.items()):
        colour = _series_color(name, k, colors)
        label = (labels or {}).get(name, model_label(name))
        mean = np.nanmean(v, axis=1)
        std = np.nanstd(v, axis=1, ddof=ddof) if v.shape[1] > 1 else None
        ax.errorbar(x + offsets[k], mean, yerr=std, marker="o", capsize=3,
                    color=colour, label=f"{label} (here)")
        for seed in range(v.shape[1]):
            ax.scatter(x + offsets[k], v[:, seed], s=10, color=colour, alpha=0.35, linewidths=0, zorder=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(x, [f"{s:g}" if numeric else str(s) for s in settings])
    handles, texts = ax.get_legend_handles_labels()
    ax.legend(handles, texts, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False,
              borderaxespad=0.2, fontsize=9)
    rows = (len(texts) + 1) // 2
    if paper_ax is not None:
        for k, (name, ref) in enumerate(references.items()):
            colour = _series_color(name, list(values).index(name) if name in values else k, colors)
            label = (labels or {}).get(name, model_label(name))
            paper_ax.plot(x, ref, linestyle=":", marker="D", markersize=6, markerfacecolor="white",
                          markeredgecolor=colour, color=colour, linewidth=1.0, label=f"{label} (paper)")
        _pad_limits(paper_ax, np.concatenate(list(references.values())))
        paper_ax.set_ylabel(paper_ylabel)
        paper_ax.set_xlabel(xlabel)
        paper_ax.tick_params(axis="x", labelbottom=True)
        paper_ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=1, frameon=False,
                        borderaxespad=0.2, fontsize=9)
        rows = max(rows, len(references))
    if title:
        if paper_ax is not None:
            ax.figure.suptitle(title)
        else:
            ax.set_title(title, pad=12 + 12 * rows)
    ax.figure.tight_layout()
    return ax.figure


def plot_setting_bars(
    settings: Sequence[str],
    values: object,
    ylabel: str = "test f-mAP (x100)",
    colors: Sequence[str] | None = None,
    paper: Sequence[float | None] | None = None,
    paper_label: str = "paper",
    title: str | None = None,
    ax: Axes | None = None,
    ddof: int = 0,
) -> Figure:
    """One bar per setting: the mean over seeds, with the standard deviation as an error
    bar and each seed as a dot. ``values``: ``(S, seeds)`` (1-D: one seed). ``ddof``: the
    standard deviation's delta degrees of freedom, 0 (population SD, the legend says
    "std") or 1 (sample SD, the legend says "sample SD"). ``colors``: one
    per bar (e.g. ``model_color(name)``). ``paper``: the paper's number per setting (None
    where it has none), in the same unit, drawn as a hatched white bar beside each setting's
    bar, apart from this book's numbers (bars start at 0, so absolute levels compare);
    ``paper_label`` names them in the legend."""
    S = len(settings)
    if S < 1:
        raise ValueError("settings is empty: give at least one setting")
    _check_ddof(ddof)
    v = _per_seed(values, "values", S)
    if colors is not None and len(colors) != S:
        raise ValueError(f"colors must give one colour per setting: {S}, got {len(colors)}")
    reference = _paper_values(paper, "paper", S)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(7.0, 1.8 + 1.2 * S), 3.4))
    x = np.arange(S, dtype=float)
    # with the paper's numbers, each setting gets two bars: this book's, then the paper's
    here_x, width = (x - 0.19, 0.36) if reference is not None else (x, 0.6)
    mean = np.nanmean(v, axis=1)
    bar_colors = list(colors) if colors is not None else [SERIES_PALETTE[k % len(SERIES_PALETTE)] for k in range(S)]
    ax.bar(here_x, mean, width=width, color=bar_colors, alpha=0.85)
    if v.shape[1] > 1:  # two seeds or more: the SD is defined for ddof 0 and 1
        std = np.nanstd(v, axis=1, ddof=ddof)
        ax.errorbar(here_x, mean, yerr=std, fmt="none", ecolor="#000000", capsize=4, linewidth=1.0)
    for seed in range(v.shape[1]):
        spread = 0.2 * width * (seed - (v.shape[1] - 1) / 2)
        ax.scatter(here_x + spread, v[:, seed], s=12, color="#000000", zorder=3)
    handles = [Patch(facecolor="#bbbbbb"),
               Line2D([], [], linestyle="none", marker="o", markersize=4, color="#000000")]
    sd_name = " +- sample SD" if ddof else " +- std"
    texts = [f"here: mean{sd_name if v.shape[1] > 1 else ''} over seeds", "here: one seed"]
    if reference is not None:
        known = np.isfinite(reference)
        ax.bar(x[known] + 0.19, reference[known], width=0.3, facecolor="white",
               edgecolor=PAPER_COLOR, hatch="///", linewidth=1.0)
        handles.append(Patch(facecolor="white", edgecolor=PAPER_COLOR, hatch="///"))
        texts.append(paper_label)
    ax.set_xticks(x, list(settings))
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.08 * float(np.nanmax(np.concatenate([v.ravel(), reference if reference is not None else []]))))
    ax.grid(axis="x", alpha=0.0)
    ax.legend(handles, texts, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(texts), frameon=False,
              borderaxespad=0.2, fontsize=8)
    if title:
        ax.set_title(title, pad=22)
    ax.figure.tight_layout()
    return ax.figure


def plot_alpha(
    alphas: Mapping[str, object],
    title: str | None = None,
    reference: float | None = 0.5,
    colors: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The learned merge weight of each MLAD layer (eq. 6), one line per run.

    ``alphas``: ``label -> (L,)`` values of ``sigmoid(alpha_logit)`` in [0, 1], layer 1
    first, or ``label -> (runs, L)`` for several runs of one setting (e.g. its seeds), drawn
    in one colour under one legend entry; settings may differ in L. ``reference``: a dashed
    line at that value (0.5: the fixed merge of table S2, and every layer's value at
    initialisation).
    """
    if not alphas:
        raise ValueError("alphas is empty: give at least one run")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    longest = 1
    for k, (name, values) in enumerate(alphas.items()):
        a = np.asarray(to_numpy(values) if not isinstance(values, (list, tuple)) else values, dtype=float)
        rows = a[None, :] if a.ndim == 1 else a
        if rows.ndim != 2 or rows.size == 0 or not ((rows >= 0) & (rows <= 1)).all():
            raise ValueError(f"alphas[{name!r}] must be (L,) or (runs, L) values in [0, 1], one per layer, "
                             f"got {a.tolist()}")
        longest = max(longest, rows.shape[1])
        colour = _series_color(name, k, colors)
        for r, row in enumerate(rows):
            ax.plot(np.arange(1, row.size + 1), row, marker="o", color=colour, alpha=0.9 if len(rows) == 1 else 0.7,
                    label=name if r == 0 else None)
    if reference is not None:
        ax.axhline(reference, color="#888888", linestyle="--", linewidth=1.0, label=f"alpha = {reference:g}")
    ax.set_xticks(range(1, longest + 1))
    ax.set_xlim(0.6, longest + 0.4)
    ax.set_ylim(0, 1)
    ax.set_xlabel("MLAD layer")
    ax.set_ylabel(r"learned $\alpha$ (weight of CB, eq. 6)")
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure
