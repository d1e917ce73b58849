"""mladlib.viz.data: each figure draws what it is given, with labelled axes, and refuses bad input by name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.viz import model_color, model_label  # noqa: E402
from mladlib.viz.data import (  # noqa: E402
    HIGHLIGHT_COLOR,
    plot_class_frequency,
    plot_dependency_heatmap,
    plot_histograms,
    plot_label_timeline,
    plot_learning_curves,
    plot_per_class_ap,
    plot_timelines,
)

NAMES = ["Run", "Jump", "Fall"]


def _labels() -> np.ndarray:
    y = np.zeros((12, 3), dtype=np.uint8)
    y[2:6, 0] = 1
    y[5:7, 1] = 1
    y[7:9, 2] = 1
    return y


def test_label_timeline_rows_time_axis_and_highlight():
    fig = plot_label_timeline(_labels(), NAMES, classes=["Fall", "Run"], fps=3.0, title="t", highlight=["Fall"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Fall", "Run"]  # rows in the given order
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "class"
    image = ax.get_images()[0].get_array()
    assert image.shape == (2, 12)
    np.testing.assert_array_equal(image[0], _labels()[:, 2])  # first row = Fall
    fall = ax.get_yticklabels()[0]
    assert to_hex(fall.get_color()) == HIGHLIGHT_COLOR.lower()
    steps = plot_label_timeline(_labels(), NAMES).axes[0]
    assert "1/3 s" in steps.get_xlabel() and len(steps.get_yticklabels()) == 3


def test_label_timeline_refuses_bad_input():
    with pytest.raises(ValueError, match="labels has 3 classes but class_names names 2"):
        plot_label_timeline(_labels(), NAMES[:2])
    with pytest.raises(ValueError, match="unknown class 'Swim'"):
        plot_label_timeline(_labels(), NAMES, classes=["Swim"])
    with pytest.raises(ValueError, match="fps"):
        plot_label_timeline(_labels(), NAMES, fps=0)


def test_timelines_one_row_per_class_truth_and_model_lines():
    y = _labels()
    scores = {"linear": np.full(y.shape, 0.3), "mlad": y * 0.9}
    fig = plot_timelines(y, NAMES, scores, classes=["Jump", "Fall"], fps=3.0, threshold=0.5, highlight=["Fall"])
    assert len(fig.axes) == 2
    assert to_hex(fig.axes[1].yaxis.label.get_color()) == HIGHLIGHT_COLOR.lower()
    assert [ax.get_ylabel() for ax in fig.axes] == ["Jump", "Fall"]
    assert fig.axes[-1].get_xlabel() == "time (s)"
    lines = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "-"]
    assert [to_hex(line.get_color()) for line in lines] == [model_color("linear").lower(), model_color("mlad").lower()]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["ground truth", model_label("linear"), model_label("mlad")]
    default = plot_timelines(y, NAMES)  # the classes present, truth only
    assert len(default.axes) == 3


def test_timelines_refuses_mismatched_predictions():
    with pytest.raises(ValueError, match=r"predictions\['cf'\] has shape \(5, 3\)"):
        plot_timelines(_labels(), NAMES, {"cf": np.zeros((5, 3))})


def test_class_frequency_bars_per_series_x100():
    fig = plot_class_frequency({"train": [0.1, 0.2, 0.3], "test": [0.3, 0.2, 0.1]}, NAMES, highlight=["Jump"],
                               highlight_label="background")
    ax = fig.axes[0]
    widths = sorted(round(p.get_width(), 6) for p in ax.patches if p.get_width() > 0)
    assert widths == [10, 10, 20, 20, 30, 30]
    assert "%" in ax.get_xlabel()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["train", "test", "bold: background"]
    single = plot_class_frequency(np.array([0.5, 0.25, 0.25]), NAMES).axes[0]
    assert len(single.patches) == 3
    with pytest.raises(ValueError, match=r"frequencies\['train'\] has shape \(2,\)"):
        plot_class_frequency({"train": [0.1, 0.2]}, NAMES)


def test_dependency_heatmap_outlines_highlighted_cells():
    m = np.array([[np.nan, 0.8, 0.1], [0.5, np.nan, 0.0], [0.2, 0.3, np.nan]])
    planted = np.zeros((3, 3), bool)
    planted[0, 1] = planted[2, 0] = True
    fig = plot_dependency_heatmap(m, NAMES, title="P(i | j)", cbar_label="probability", highlight=planted,
                                  highlight_label="planted", highlight_classes=["Jump"])
    ax = fig.axes[0]
    bold = [t.get_text() for t in [*ax.get_xticklabels(), *ax.get_yticklabels()] if t.get_fontweight() == "bold"]
    assert bold == ["Jump", "Jump"]
    outlined = sorted((p.get_x() + 0.5, p.get_y() + 0.5) for p in ax.patches)
    assert outlined == [(0.0, 2.0), (1.0, 0.0)]  # (column, row) of each planted cell
    assert ax.get_xlabel() == "class j" and ax.get_ylabel() == "class i"
    assert fig.axes[1].get_ylabel() == "probability"  # the colour bar
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["planted"]
    diverging = plot_dependency_heatmap(np.log2(np.array([[1, 2, 4], [0.5, 1, 1], [1, 1, 1.0]])), NAMES,
                                        cmap="RdBu_r", center=0.0)
    assert diverging.axes[0].get_images()[0].norm.vcenter == 0.0
    with pytest.raises(ValueError, match=r"matrix has shape \(2, 2\)"):
        plot_dependency_heatmap(np.zeros((2, 2)), NAMES)
    with pytest.raises(ValueError, match="highlight has shape"):
        plot_dependency_heatmap(m, NAMES, highlight=np.zeros((2, 3), bool))


def test_dependency_heatmap_of_many_classes_stays_legible():
    from mladlib.viz.style import MIN_TEXT_PX, displayed_text_px

    names = [f"Class{c}" for c in range(65)]  # MultiTHUMOS's count
    fig = plot_dependency_heatmap(np.eye(65), names, title="P(i | j)", cbar_label="P")
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert shown == names[::3]  # every third class named, every class ticked
    assert len({*ax.get_yticks(), *ax.get_yticks(minor=True)}) == 65
    assert displayed_text_px(fig) >= MIN_TEXT_PX
    with pytest.raises(ValueError, match="tick_step"):
        plot_dependency_heatmap(np.eye(3), NAMES, tick_step=0)


def test_per_class_ap_grouped_bars_in_model_colours():
    fig = plot_per_class_ap({"linear": [0.1, 0.2, np.nan], "cf": [0.3, 0.4, 0.5]}, NAMES, highlight=["Run"],
                            highlight_label="view-dependent")
    ax = fig.axes[0]
    colours = {to_hex(p.get_facecolor()) for p in ax.patches}
    assert colours == {model_color("linear").lower(), model_color("cf").lower()}
    assert sorted(round(p.get_width(), 6) for p in ax.patches) == [0, 10, 20, 30, 40, 50]  # NaN: no bar
    assert ax.get_xlabel() == "per-frame AP (x100)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        model_label("linear"), model_label("cf"), "bold: view-dependent"]
    with pytest.raises(ValueError, match="model 'cf' has APs of shape"):
        plot_per_class_ap({"cf": [0.1]}, NAMES)
    with pytest.raises(ValueError, match="empty"):
        plot_per_class_ap({}, NAMES)


def test_histograms_one_panel_per_entry():
    rng = np.random.default_rng(0)
    fig = plot_histograms({"A": {"present": rng.normal(size=50), "absent": rng.normal(size=80)},
                           "B": {"present": rng.normal(size=10)}}, xlabel="projection")
    assert [ax.get_title() for ax in fig.axes] == ["A", "B"]
    assert all(ax.get_xlabel() == "projection" and ax.get_ylabel() == "density" for ax in fig.axes)
    with pytest.raises(ValueError, match="series 'x' is empty"):
        plot_histograms({"A": {"x": []}}, xlabel="v")


def test_learning_curves_one_line_per_model():
    fig = plot_learning_curves({"linear": [0.05, 0.06], "cf": [0.05, 0.1, 0.12]})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [len(line.get_xdata()) for line in lines] == [2, 3]
    np.testing.assert_allclose(lines[1].get_ydata(), [5, 10, 12])
    assert ax.get_xlabel() == "epoch" and "f-mAP" in ax.get_ylabel()
    sparse = plot_learning_curves({"mlad": [None, 0.2, None, 0.3]}).axes[0].get_lines()[0]  # validated every 2nd epoch
    np.testing.assert_allclose(sparse.get_xdata(), [2, 4])
    with pytest.raises(ValueError, match=r"curves\['cf'\]"):
        plot_learning_curves({"cf": []})
    with pytest.raises(ValueError, match=r"curves\['cf'\]"):
        plot_learning_curves({"cf": [None, None]})
