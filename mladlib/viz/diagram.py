"""Architecture diagrams: the paper's figure 2 (the network) and figure 3 (the MLAD layer).

Both are drawn with plain matplotlib boxes and arrows, with the tensor shape on every arrow,
so that the book needs no image files and the shapes stay the ones the code uses:
``(B, T, F)`` features in, ``(B, T, C, H)`` class features through the layers, ``(B, T, C)``
logits out. Each function returns the ``Figure`` it drew.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .style import model_color

#: Box colours by role (light fills, so that the black text stays legible).
FILL = {
    "data": "#F2F2F2",
    "features": "#D6EAF8",
    "cb": "#FCE5C0",
    "tb": "#CFE2F3",
    "merge": "#F6D5C3",
    "head": "#E8DAEF",
    "loss": "#FADBD8",
}


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, role: str,
         fontsize: float = 10.5, edge: str = "#333333") -> tuple[float, float, float, float]:
    """A rounded box centred at ``(x, y)`` of size ``(w, h)`` in axes data units."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=FILL[role], edgecolor=edge, linewidth=1.1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return x, y, w, h


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str = "",
           side: str = "right", color: str = "#333333", fontsize: float = 10,
           style: str = "-|>") -> None:
    """An arrow from ``start`` to ``end`` with ``label`` (a tensor shape) beside its middle."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color,
                                 linewidth=1.2, shrinkA=0, shrinkB=0))
    if label:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        offset = {"right": (0.08, 0.0, "left", "center"), "left": (-0.08, 0.0, "right", "center"),
                  "above": (0.0, 0.06, "center", "bottom"), "below": (0.0, -0.06, "center", "top")}
        dx, dy, ha, va = offset[side]
        ax.text(mx + dx, my + dy, label, ha=ha, va=va, fontsize=fontsize, family="monospace",
                color="#1F3A5F")


def _canvas(figsize: tuple[float, float], xlim: tuple[float, float], ylim: tuple[float, float],
            ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("auto")
    ax.axis("off")
    if len(fig.axes) == 1:  # a figure of its own: use all of it
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.94)
    return fig, ax


def draw_network(num_layers: str = "L", ax: Axes | None = None,
                 title: str = "The MLAD network (the paper's figure 2)") -> Figure:
    """Figure 2: features ``(B, T, F)`` + positions, class features (eq. 1), ``num_layers``
    MLAD layers on ``(B, T, C, H)``, one classifier per class (eq. 7) on ``(B, T, C)``, and
    where the two losses attach (initial: on the class features; final: after the last layer).
    """
    fig, ax = _canvas((7.6, 6.0), (0.0, 10.0), (-0.2, 10.4), ax)
    x, w = 3.6, 4.6
    _box(ax, x, 9.9, w, 0.7, "input features, one vector per step\n(I3D: RGB + flow)", "data")
    _box(ax, x, 8.35, w, 0.75, "+ sinusoidal positional encoding", "data")
    _box(ax, x, 6.75, w, 0.85, "class-level features (eq. 1)\n$f_{t,c} = \\mathrm{ReLU}(W_c^\\top x_t + b_c)$",
         "features")
    _box(ax, x, 4.75, w, 1.25, f"MLAD layer 1 ... {num_layers}\n(figure 3: co-occurrence and temporal\n"
         "branches, merged by eq. 6)", "merge")
    _box(ax, x, 2.7, w, 0.85, "one classifier per class (eq. 7)\n$\\hat y_{t,c} = \\sigma(W_c^\\top g_{t,c} + b_c)$",
         "head")
    _box(ax, x, 0.85, w, 0.7, "final loss: BCE on the valid steps", "loss")
    _arrow(ax, (x, 9.55), (x, 8.73), "(B, T, F)")
    _arrow(ax, (x, 7.97), (x, 7.18), "(B, T, F)")
    _arrow(ax, (x, 6.32), (x, 5.38), "(B, T, C, H)")
    _arrow(ax, (x, 4.12), (x, 3.13), "(B, T, C, H)")
    _arrow(ax, (x, 2.27), (x, 1.2), "(B, T, C) logits")
    # the initial classifier and loss branch off the class features
    hx = 8.3
    _box(ax, hx, 5.3, 2.9, 0.85, "initial classifiers\n(eq. 7 on $f$)", "head")
    _box(ax, hx, 3.4, 2.9, 0.7, "initial loss: BCE", "loss")
    _arrow(ax, (x + w / 2, 6.75), (hx, 5.73), "(B, T, C, H)", side="right")
    _arrow(ax, (hx, 4.87), (hx, 3.75), "(B, T, C)", side="right")
    ax.text(6.9, 1.6, "B windows, T steps,\nF input features,\nC classes, H hidden size",
            fontsize=10, color="#555555", va="center")
    ax.set_title(title)
    return fig


def draw_mlad_layer(ax: Axes | None = None,
                    title: str = "One MLAD layer (the paper's figure 3)") -> Figure:
    """Figure 3: the layer's input ``(B, T, C, H)`` viewed as ``(B*T, C, H)`` for the
    co-occurrence branch (eq. 2-3) and as ``(B*C, T, H)`` for the temporal branch (eq. 4-5),
    each an attention block (projections, residual + LayerNorm, feed-forward), merged by
    eq. 6 into ``(B, T, C, H)``.
    """
    fig, ax = _canvas((7.6, 6.4), (0.0, 10.0), (0.0, 10.6), ax)
    cx, tx, w = 2.5, 7.5, 4.4
    _box(ax, 5.0, 10.1, 4.6, 0.7, "input $f$: one H-vector per class and step", "data")
    _arrow(ax, (4.0, 9.75), (cx, 8.83), "(B*T, C, H)", side="left")
    _arrow(ax, (6.0, 9.75), (tx, 8.83), "(B*C, T, H)", side="right")
    _box(ax, cx, 8.4, w, 0.8, "co-occurrence branch (CB)\nclasses of one step", "cb",
         edge=model_color("cb"))
    _box(ax, tx, 8.4, w, 0.8, "temporal branch (TB)\nsteps of one class", "tb", edge=model_color("tb"))
    _box(ax, cx, 6.7, w, 1.3, "attention over C tokens (eq. 2-3)\n"
         "$A^{(t)} = \\mathrm{softmax}(Q_t K_t^\\top / \\sqrt{H})$\n$f' = A^{(t)} V_t$", "cb", fontsize=9)
    _box(ax, tx, 6.7, w, 1.3, "attention over T tokens (eq. 4-5)\n"
         "$A^{(c)} = \\mathrm{softmax}(Q_c K_c^\\top / \\sqrt{H})$\n$f'' = A^{(c)} V_c$", "tb", fontsize=9)
    _arrow(ax, (cx, 8.0), (cx, 7.35), "")
    _arrow(ax, (tx, 8.0), (tx, 7.35), "")
    _box(ax, cx, 4.95, w, 0.95, "residual + LayerNorm,\nfeed-forward, residual + LayerNorm", "cb",
         fontsize=9)
    _box(ax, tx, 4.95, w, 0.95, "residual + LayerNorm,\nfeed-forward, residual + LayerNorm", "tb",
         fontsize=9)
    _arrow(ax, (cx, 6.05), (cx, 5.43), "(B*T, C, H)", side="right")
    _arrow(ax, (tx, 6.05), (tx, 5.43), "(B*C, T, H)", side="left")
    _box(ax, 5.0, 2.6, 5.4, 0.95, "merge (eq. 6)\n$g = \\alpha\\, f' + (1 - \\alpha)\\, f''$,  "
         "$\\alpha = \\sigma(\\alpha_{\\mathrm{logit}})$", "merge")
    _arrow(ax, (cx, 4.47), (3.4, 3.08), "(B, T, C, H)", side="left")
    _arrow(ax, (tx, 4.47), (6.6, 3.08), "(B, T, C, H)", side="right")
    _box(ax, 5.0, 0.75, 4.6, 0.7, "output $g$: to the next layer or eq. 7", "data")
    _arrow(ax, (5.0, 2.12), (5.0, 1.1), "(B, T, C, H)")
    ax.text(7.6, 0.75, "padding: a key mask\nof shape (B*C, T) in the TB", fontsize=10,
            color="#555555", va="center")
    ax.set_title(title)
    return fig
