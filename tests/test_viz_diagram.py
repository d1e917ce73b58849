"""mladlib.viz.diagram: the figure 2 and figure 3 diagrams draw, with the shapes and equations."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.viz.diagram import draw_mlad_layer, draw_network  # noqa: E402


def _texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_network_diagram_has_shapes_equations_and_both_losses():
    fig = draw_network(num_layers="5")
    assert isinstance(fig, Figure)
    text = _texts(fig)
    for needed in ("(B, T, F)", "(B, T, C, H)", "(B, T, C) logits", "eq. 1", "eq. 7",
                   "MLAD layer 1 ... 5", "initial loss", "final loss", "positional encoding"):
        assert needed in text, needed
    assert len(fig.axes[0].patches) >= 10  # boxes and arrows
    fig.canvas.draw()  # the mathtext labels parse
    plt.close(fig)


def test_layer_diagram_has_both_branches_and_the_merge():
    fig = draw_mlad_layer()
    text = _texts(fig)
    for needed in ("(B*T, C, H)", "(B*C, T, H)", "(B, T, C, H)", "co-occurrence branch",
                   "temporal branch", "eq. 2-3", "eq. 4-5", "eq. 6", "\\alpha", "LayerNorm"):
        assert needed in text, needed
    fig.canvas.draw()
    plt.close(fig)


def test_diagrams_draw_into_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert draw_network(ax=left) is fig and draw_mlad_layer(ax=right) is fig
    assert not left.axison and not right.axison
    plt.close(fig)
