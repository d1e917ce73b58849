"""Figures for the action-dependency metrics (chapter 5; paper section 4, tables 2, S5-S8).

* :func:`plot_condition_rows`: which time-steps a condition selects (eq. 9, 11), one row
  of boxes per mask over the concatenated frames of a few videos, video boundaries drawn.
* :func:`plot_metric_vs_tau`: an aggregate (P_AC, R_AC, F1_AC, mAP_AC) against tau, per model.
* :func:`plot_pair_ap`: AP(i | j, tau) of chosen pairs, one dot per model (tables S7/S8 as a figure).
* :func:`plot_pair_ap_scatter`: every counted pair's AP under a baseline against a model's
  (section 5.2's "improves the AP of 961 of 1322 pairs").

Every function returns the :class:`~matplotlib.figure.Figure` it drew; model colours and
names come from :func:`~mladlib.viz.model_color` and :func:`~mladlib.viz.model_label`.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .style import model_color, model_label

#: Readable names of the action-conditional aggregates (keys of ``ActionConditionalResult.as_dict()``).
METRIC_LABELS = {
    "P_AC": "action-conditional precision $P_{AC}$",
    "R_AC": "action-conditional recall $R_{AC}$",
    "F1_AC": "action-conditional F1 $F1_{AC}$",
    "mAP_AC": "action-conditional mAP $mAP_{AC}$",
}


def plot_condition_rows(
    lengths: Sequence[int],
    rows: Mapping[str, np.ndarray],
    video_names: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """One row of boxes per named mask over the frames of consecutive videos.

    ``lengths``: ``T_k`` of each video; ``rows``: ``name -> (N,)`` bool (or 0/1) masks
    over the ``N = sum(lengths)`` concatenated frames, drawn top to bottom in the given
    order, a filled box where the mask is true. Video boundaries are drawn as gaps, so a
    window that stopped at a boundary shows as one. Time steps are numbered within each video.
    """
    lengths = [int(n) for n in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"lengths must be a non-empty list of positive video lengths, got {lengths}")
    if not rows:
        raise ValueError("rows is empty: give at least one mask")
    N = sum(lengths)
    masks = {}
    for name, mask in rows.items():
        mask = np.asarray(mask)
        if mask.shape != (N,):
            raise ValueError(f"row {name!r} has shape {mask.shape}, expected ({N},) for videos of lengths {lengths}")
        masks[name] = mask.astype(bool)
    if video_names is not None and len(video_names) != len(lengths):
        raise ValueError(f"video_names has {len(video_names)} names for {len(lengths)} videos")

    gap = 1.0
    starts = np.concatenate([[0.0], np.cumsum(np.asarray(lengths[:-1], dtype=float) + gap)])  # x of each video's step 0
    x = np.concatenate([start + np.arange(n) for start, n in zip(starts, lengths)])  # (N,)
    width = float(starts[-1] + lengths[-1])
    fig, ax = plt.subplots(figsize=(min(7.0, 1.2 + 0.2 * width), 0.8 + 0.38 * len(masks)))
    for r, (name, mask) in enumerate(masks.items()):
        y = len(masks) - 1 - r
        color = (colors or {}).get(name, "#444444")
        for xi, on in zip(x, mask):
            ax.add_patch(Rectangle((xi + 0.06, y + 0.12), 0.88, 0.76, facecolor=color if on else "white",
                                   edgecolor="#999999", linewidth=0.6))
    for k, (start, n) in enumerate(zip(starts, lengths)):
        name = video_names[k] if video_names is not None else f"video {k + 1}"
        ax.text(start + n / 2, len(masks) + 0.15, name, ha="center", va="bottom", fontsize=9)
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(0, len(masks) + 0.9)
    ax.set_yticks(np.arange(len(masks)) + 0.5, list(masks)[::-1])
    ticks = np.concatenate([start + np.arange(0, n, 2) for start, n in zip(starts, lengths)])
    labels = np.concatenate([np.arange(0, n, 2) for n in lengths])
    ax.set_xticks(ticks + 0.5, [str(t) for t in labels])
    ax.set_xlabel("time step within each video (1/3 s)")
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_metric_vs_tau(
    results: Mapping[str, Mapping[int, Mapping[str, float]]],
    metrics: Sequence[str] = ("mAP_AC", "F1_AC"),
    title: str | None = None,
) -> Figure:
    """Aggregates against tau, one line per model, one panel per metric.

    ``results``: ``model name -> {tau: {"P_AC", "R_AC", "F1_AC", "mAP_AC"}}`` (fractions
    in [0, 1]; plotted x100, as the paper prints them).
    """
    if not results:
        raise ValueError("results is empty: give at least one model")
    unknown = [m for m in metrics if m not in METRIC_LABELS]
    if unknown or not metrics:
        raise ValueError(f"metrics must be among {list(METRIC_LABELS)}, got {list(metrics)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, by_tau in results.items():
            taus = sorted(by_tau)
            ax.plot(taus, [100 * by_tau[t][metric] for t in taus], marker="o", color=model_color(name),
                    label=model_label(name))
            ax.set_xticks(taus)
        ax.set_xlabel(r"$\tau$ (time steps of 1/3 s)")
        ax.set_ylabel(f"{metric} (x100)")
        ax.set_title(METRIC_LABELS[metric], fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08 * ((len(labels) + 4) // 5), 1, 1))  # room for the legend below
    return fig


def plot_pair_ap(
    pair_labels: Sequence[str],
    ap_by_model: Mapping[str, np.ndarray],
    title: str | None = None,
    ax=None,
    legend: bool = True,
) -> Figure:
    """AP of chosen class pairs, one row per pair, one dot per model, a line spanning the models.

    ``pair_labels``: one label per pair (e.g. ``"Fall | Jump"``); ``ap_by_model``:
    ``model name -> (P,)`` APs in [0, 1] (plotted x100), NaN where the pair does not
    count (no dot). Pairs are drawn top to bottom in the given order. ``ax``: draw into
    this Axes (e.g. one panel of several) instead of a new figure; ``legend``: name the
    models above the panel.
    """
    P = len(pair_labels)
    if P == 0 or not ap_by_model:
        raise ValueError("give at least one pair and one model")
    values = {}
    for name, ap in ap_by_model.items():
        ap = np.asarray(ap, dtype=float)
        if ap.shape != (P,):
            raise ValueError(f"model {name!r} has APs of shape {ap.shape}, expected ({P},) for {P} pairs")
        values[name] = 100 * ap
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.28 * P))
    else:
        fig = ax.figure
    y = np.arange(P)[::-1]  # first pair on top
    stacked = np.stack(list(values.values()))  # (M, P)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pair no model scores has no span: NaN, not drawn
        lo, hi = np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0)
    ax.hlines(y, lo, hi, color="#bbbbbb", linewidth=2, zorder=1)
    for name, v in values.items():
        ax.scatter(v, y, s=28, color=model_color(name), label=model_label(name), zorder=2)
    ax.set_yticks(y, list(pair_labels))
    ax.set_xlabel(r"AP(action 1 | action 2, $\tau$) (x100)")
    ax.set_ylim(-0.7, P - 0.3)
    ax.grid(axis="y", alpha=0.15)
    if legend:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(values), frameon=False, borderaxespad=0.2)
    if title:
        ax.set_title(title, pad=22 if legend else 6)
    fig.tight_layout()
    return fig


def plot_pair_ap_scatter(
    baseline_ap: np.ndarray,
    model_ap: np.ndarray,
    baseline: str,
    model: str,
    title: str | None = None,
) -> Figure:
    """Each counted pair's AP under ``baseline`` (x) against ``model`` (y), both x100.

    ``baseline_ap`` and ``model_ap``: per-pair AP matrices ``(C, C)`` (or flat arrays) of
    one tau, NaN where a pair does not count; pairs counted by both are drawn. Points above
    the diagonal are pairs the model improves; the legend counts them.
    """
    a, b = np.asarray(baseline_ap, dtype=float).ravel(), np.asarray(model_ap, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"baseline_ap has {a.size} entries but model_ap has {b.size}")
    both = ~np.isnan(a) & ~np.isnan(b)
    if not both.any():
        raise ValueError("no pair is counted by both the baseline and the model")
    a, b = 100 * a[both], 100 * b[both]
    better = b > a
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 100], [0, 100], color="#888888", linewidth=1, zorder=1)
    ax.scatter(a[better], b[better], s=16, color=model_color(model), alpha=0.8, zorder=2,
               label=f"{model_label(model)} better: {int(better.sum())} of {a.size} pairs")
    ax.scatter(a[~better], b[~better], s=16, color=model_color(baseline), alpha=0.8, zorder=2,
               label=f"not better: {int((~better).sum())} of {a.size} pairs")
    # A margin beyond 0 and 100: many pairs sit at AP 100 and would be cut in half.
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_aspect("equal")
    ax.set_xlabel(f"AP(i | j), {model_label(baseline)} (x100)")
    ax.set_ylabel(f"AP(i | j), {model_label(model)} (x100)")
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
