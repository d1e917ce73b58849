"""mladlib.viz.metrics: each figure draws what it is given, and bad input is refused by name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.viz import model_color, model_label  # noqa: E402
from mladlib.viz.metrics import (  # noqa: E402
    plot_condition_rows,
    plot_metric_vs_tau,
    plot_pair_ap,
    plot_pair_ap_scatter,
)


def test_condition_rows_draws_one_box_per_frame_and_row():
    lengths = [4, 3]
    rows = {"Jump": np.array([0, 1, 1, 0, 0, 0, 1]), "chi": np.array([0, 0, 0, 1, 0, 0, 0], dtype=bool)}
    fig = plot_condition_rows(lengths, rows, video_names=["a", "b"], colors={"Jump": "#ff0000"}, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    boxes = ax.patches
    assert len(boxes) == 2 * 7
    filled_red = [b for b in boxes if to_hex(b.get_facecolor()) == "#ff0000"]
    assert len(filled_red) == 3  # the Jump row's three true frames
    assert [t.get_text() for t in ax.get_yticklabels()] == ["chi", "Jump"]  # first row on top
    assert {t.get_text() for t in ax.texts} == {"a", "b"}
    assert "1/3 s" in ax.get_xlabel()


def test_condition_rows_rejects_bad_shapes():
    with pytest.raises(ValueError, match="row 'x' has shape"):
        plot_condition_rows([3, 2], {"x": np.zeros(4)})
    with pytest.raises(ValueError, match="lengths"):
        plot_condition_rows([], {"x": np.zeros(0)})
    with pytest.raises(ValueError, match="video_names"):
        plot_condition_rows([2], {"x": np.zeros(2)}, video_names=["a", "b"])
    with pytest.raises(ValueError, match="rows is empty"):
        plot_condition_rows([2], {})


def test_metric_vs_tau_one_line_per_model_scaled_x100():
    results = {
        "cf": {0: {"P_AC": 0.1, "R_AC": 0.2, "F1_AC": 0.3, "mAP_AC": 0.4}, 20: {"P_AC": 0.1, "R_AC": 0.2, "F1_AC": 0.3, "mAP_AC": 0.5}},
        "mlad": {0: {"P_AC": 0.1, "R_AC": 0.2, "F1_AC": 0.3, "mAP_AC": 0.6}, 20: {"P_AC": 0.1, "R_AC": 0.2, "F1_AC": 0.3, "mAP_AC": 0.7}},
    }
    fig = plot_metric_vs_tau(results, metrics=("mAP_AC",))
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[1].get_ydata(), [60.0, 70.0])
    assert to_hex(lines[1].get_color()) == model_color("mlad").lower()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [model_label("cf"), model_label("mlad")]
    with pytest.raises(ValueError, match="metrics must be among"):
        plot_metric_vs_tau(results, metrics=("AP",))
    with pytest.raises(ValueError, match="results is empty"):
        plot_metric_vs_tau({})


def test_pair_ap_dots_per_model_and_nan_left_out():
    labels = ["Fall | Jump", "Run | Jump", "Jump | Run"]
    ap = {"linear": np.array([0.5, np.nan, 0.2]), "mlad": np.array([0.9, 0.4, 0.3])}
    fig = plot_pair_ap(labels, ap, title="pairs")
    ax = fig.axes[0]
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert ticks == {"Fall | Jump": 2, "Run | Jump": 1, "Jump | Run": 0}  # first pair on top
    collections = ax.collections[1:]  # the first is the span lines
    offsets = [c.get_offsets() for c in collections]
    np.testing.assert_allclose(np.asarray(offsets[1])[:, 0], [90.0, 40.0, 30.0])
    assert np.isnan(np.asarray(offsets[0])[1, 0])  # NaN: nothing drawn
    assert to_hex(collections[1].get_facecolor()[0]) == model_color("mlad").lower()
    fig, axes = plt.subplots(1, 2)
    assert plot_pair_ap(labels, ap, ax=axes[1], legend=False) is fig
    assert axes[1].get_legend() is None and len(axes[1].collections) == 3 and not axes[0].collections
    with pytest.raises(ValueError, match="model 'mlad' has APs of shape"):
        plot_pair_ap(labels, {"mlad": np.zeros(2)})


def test_pair_ap_scatter_counts_improved_pairs():
    base = np.array([[np.nan, 0.5], [0.2, np.nan]])
    model = np.array([[np.nan, 0.6], [0.1, np.nan]])
    fig = plot_pair_ap_scatter(base, model, "linear", "mlad")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == [f"{model_label('mlad')} better: 1 of 2 pairs", "not better: 1 of 2 pairs"]
    with pytest.raises(ValueError, match="no pair is counted"):
        plot_pair_ap_scatter(np.full(3, np.nan), np.ones(3), "linear", "mlad")
    with pytest.raises(ValueError, match="entries"):
        plot_pair_ap_scatter(np.ones(3), np.ones(2), "linear", "mlad")


def test_pair_ap_scatter_does_not_clip_pairs_at_100():
    # Pairs with AP 1 (x100 = 100) sit on the frame's edge: they must be drawn whole.
    fig = plot_pair_ap_scatter(np.array([0.5, 1.0]), np.array([1.0, 1.0]), "cf", "mlad")
    ax = fig.axes[0]
    assert ax.get_xlim()[1] > 100 and ax.get_ylim()[1] > 100
    assert ax.get_xlim()[0] < 0 and ax.get_ylim()[0] < 0
