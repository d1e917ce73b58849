"""mladlib.viz.training: each figure draws what it is given, with labelled axes, and refuses bad input by name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.data import window_starts  # noqa: E402
from mladlib.viz import model_color, model_label  # noqa: E402
from mladlib.viz.training import (  # noqa: E402
    PAPER_COLOR,
    plot_ablation,
    plot_alpha,
    plot_batch_masks,
    plot_loss_parts,
    plot_setting_bars,
    plot_windows,
)


def _history(epochs: int = 4, initial: bool = True) -> list[dict]:
    return [{"loss": 1.0 / e, "loss_initial": 0.6 / e if initial else None, "loss_final": 0.4 / e,
             "val_frame_map": [0.1, 0.3, 0.2, None][e - 1] if e <= 4 else None} for e in range(1, epochs + 1)]


def test_batch_masks_one_panel_per_batch_with_its_length():
    masks = [np.ones((4, 16), bool), np.ones((4, 48), bool)]
    masks[1][2, 40:] = False  # a short video, padded
    fig = plot_batch_masks(masks, title="batches")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["T = 16", "T = 48"]
    assert all("1/3 s" in ax.get_xlabel() for ax in fig.axes)
    image = fig.axes[1].get_images()[0].get_array()
    assert image.shape == (4, 48)
    assert image[2, 45] == 0 and image[2, 10] == 1
    short = fig.axes[0].get_images()[0].get_array()
    assert short.shape == (4, 48) and np.ma.getmaskarray(short)[:, 16:].all()  # beyond T_b: blank (NaN)
    named = plot_batch_masks(masks[:1], titles=["first"])
    assert named.axes[0].get_title() == "first"


def test_batch_masks_refuse_bad_input():
    with pytest.raises(ValueError, match="masks is empty"):
        plot_batch_masks([])
    with pytest.raises(ValueError, match=r"masks\[0\] must be a 2-D"):
        plot_batch_masks([np.ones(5, bool)])
    with pytest.raises(ValueError, match="titles names 2 batches"):
        plot_batch_masks([np.ones((2, 3), bool)], titles=["a", "b"])


def test_loss_parts_draws_each_term_and_the_best_epoch():
    fig = plot_loss_parts(_history(), model="mlad", title="loss")
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(lines) == 3
    assert {to_hex(line.get_color()) for line in lines} == {model_color("mlad").lower()}
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 0.5, 1 / 3, 0.25])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:3] == [f"{model_label('mlad')}, total", f"{model_label('mlad')}, final logits",
                         f"{model_label('mlad')}, initial logits"]
    assert "best validation epoch (2)" in texts
    assert ax.get_xlabel() == "epoch" and "loss" in ax.get_ylabel()
    no_initial = plot_loss_parts(_history(initial=False), model="cf").axes[0]
    assert len([line for line in no_initial.get_lines() if line.get_marker() == "o"]) == 2


def test_loss_parts_refuse_bad_history():
    with pytest.raises(ValueError, match="history is empty"):
        plot_loss_parts([])
    with pytest.raises(ValueError, match="lack 'loss_final'"):
        plot_loss_parts([{"loss": 1.0}])


def test_windows_bars_and_coverage_match_window_starts():
    starts = window_starts(100, 32, 16)
    fig = plot_windows(100, starts, 32, title="windows")
    top, bottom = fig.axes
    assert len(top.collections) == len(starts)  # one bar per window
    left_edges = [c.get_paths()[0].vertices[:, 0].min() for c in top.collections]
    assert [round(x + 0.5) for x in left_edges] == starts.tolist()
    coverage = bottom.get_lines()[0].get_ydata()
    expected = np.zeros(100)
    for s in starts:
        expected[s : s + 32] += 1
    np.testing.assert_array_equal(coverage, expected)
    assert coverage.min() >= 1  # every step is covered
    assert "1/3 s" in bottom.get_xlabel() and top.get_ylabel() == "window"
    short = plot_windows(20, window_starts(20, 32, 16), 32)  # one window cut at the video's end
    np.testing.assert_array_equal(short.axes[1].get_lines()[0].get_ydata(), np.ones(20))


def test_windows_refuse_bad_input():
    with pytest.raises(ValueError, match="video_length and window"):
        plot_windows(0, [0], 4)
    with pytest.raises(ValueError, match="starts must be"):
        plot_windows(10, [12], 4)
    with pytest.raises(ValueError, match="starts must be"):
        plot_windows(10, [], 4)


def test_ablation_means_error_bars_and_paper_panel():
    values = {"mlad": np.array([[40.0, 42.0], [44.0, 46.0], [45.0, 47.0]]), "fixed": [[39.0], [43.0], [44.0]]}
    paper = {"mlad": [48.55, None, 51.52]}
    fig = plot_ablation([1, 3, 5], values, xlabel="number of MLAD layers L", paper=paper,
                        labels={"fixed": "fixed length"}, title="t3")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "number of MLAD layers L" and "f-mAP" in ax.get_ylabel()
    means = [line for line in ax.get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(means[0].get_ydata(), [41.0, 45.0, 46.0])
    assert to_hex(means[0].get_color()) == model_color("mlad").lower()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "5"]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"{model_label('mlad')} (here)", "fixed length (here)"]
    # the paper's numbers: a panel of their own beside (not a twin axis over) this book's
    assert len(fig.axes) == 2
    paper_ax = fig.axes[1]
    assert paper_ax.get_position().x0 > ax.get_position().x1
    assert "paper" in paper_ax.get_ylabel()
    np.testing.assert_allclose(paper_ax.get_lines()[0].get_ydata(), [48.55, np.nan, 51.52])
    paper_texts = [t.get_text() for t in paper_ax.get_legend().get_texts()]
    assert paper_texts == [f"{model_label('mlad')} (paper)"]
    labelled = plot_ablation(["a", "b"], {"x": [1.0, 2.0]}, xlabel="setting")
    assert [t.get_text() for t in labelled.axes[0].get_xticklabels()] == ["a", "b"]
    assert len(labelled.axes) == 1  # no paper, no second panel
    _, given = plt.subplots()
    with pytest.raises(ValueError, match="panel of its own"):
        plot_ablation([1, 3, 5], values, xlabel="L", paper=paper, ax=given)


def test_ablation_error_bars_are_the_sd_asked_for():
    values = np.array([[10.0, 12.0, 17.0], [20.0, 22.0, 21.0]])
    for ddof in (0, 1):
        ax = plot_ablation([1, 2], {"mlad": values}, xlabel="x", ddof=ddof).axes[0]
        # the error bar's vertical segments: mean - SD to mean + SD
        segments = next(c for c in ax.collections if hasattr(c, "get_segments"))
        half = [(seg[1][1] - seg[0][1]) / 2 for seg in segments.get_segments()]
        np.testing.assert_allclose(half, values.std(axis=1, ddof=ddof))
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="ddof must be 0"):
        plot_ablation([1, 2], {"mlad": values}, xlabel="x", ddof=2)


def test_ablation_refuses_bad_input():
    with pytest.raises(ValueError, match="settings is empty"):
        plot_ablation([], {"a": []}, xlabel="x")
    with pytest.raises(ValueError, match="results is empty"):
        plot_ablation([1], {}, xlabel="x")
    with pytest.raises(ValueError, match=r"results\['a'\] must hold one row"):
        plot_ablation([1, 2], {"a": [1.0, 2.0, 3.0]}, xlabel="x")
    with pytest.raises(ValueError, match=r"paper\['a'\] must give one number"):
        plot_ablation([1, 2], {"a": [1.0, 2.0]}, xlabel="x", paper={"a": [1.0]})
    with pytest.raises(ValueError, match="without any finite value"):
        plot_ablation([1, 2], {"a": [1.0, np.nan]}, xlabel="x")


def test_setting_bars_heights_colours_and_paper_bars_apart():
    values = np.array([[10.0, 12.0], [20.0, 22.0], [30.0, 34.0]])
    colors = [model_color(m) for m in ("cf", "cb", "mlad")]
    fig = plot_setting_bars(["CF", "CB only", "MLAD"], values, colors=colors, paper=[42.6, None, 51.5],
                            paper_label="paper: MultiTHUMOS", title="t5")
    assert len(fig.axes) == 1  # the paper's numbers share the axis: same unit, bars from 0
    ax = fig.axes[0]
    here, paper_bars = ax.patches[:3], ax.patches[3:]
    np.testing.assert_allclose([b.get_height() for b in here], [11.0, 21.0, 32.0])
    assert [to_hex(b.get_facecolor()) for b in here] == [c.lower() for c in colors]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CF", "CB only", "MLAD"]
    # the paper's: their own hatched bars, beside this book's (not drawn over them)
    np.testing.assert_allclose([b.get_height() for b in paper_bars], [42.6, 51.5])
    assert all(b.get_hatch() == "///" and to_hex(b.get_edgecolor()) == PAPER_COLOR.lower()
               for b in paper_bars)
    for mine, theirs in zip([here[0], here[2]], paper_bars):
        assert theirs.get_x() >= mine.get_x() + mine.get_width()
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 51.5
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["here: mean +- std over seeds", "here: one seed", "paper: MultiTHUMOS"]
    one_seed = plot_setting_bars(["a", "b"], [1.0, 2.0])
    assert [b.get_height() for b in one_seed.axes[0].patches] == [1.0, 2.0]
    assert [t.get_text() for t in one_seed.axes[0].get_legend().get_texts()] == ["here: mean over seeds",
                                                                                 "here: one seed"]


def test_setting_bars_error_bars_are_the_sd_the_legend_names():
    values = np.array([[10.0, 12.0, 17.0], [20.0, 22.0, 21.0]])
    for ddof, name in ((0, "std"), (1, "sample SD")):
        ax = plot_setting_bars(["a", "b"], values, ddof=ddof).axes[0]
        # the error bar's vertical segments: mean - SD to mean + SD
        segments = ax.collections[0].get_segments()
        half = [(seg[1][1] - seg[0][1]) / 2 for seg in segments]
        np.testing.assert_allclose(half, values.std(axis=1, ddof=ddof))
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[0] == f"here: mean +- {name} over seeds"
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="ddof must be 0"):
        plot_setting_bars(["a", "b"], values, ddof=2)


def test_setting_bars_refuse_bad_input():
    with pytest.raises(ValueError, match="settings is empty"):
        plot_setting_bars([], [])
    with pytest.raises(ValueError, match="values must hold one row"):
        plot_setting_bars(["a", "b"], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="colors must give one colour per setting"):
        plot_setting_bars(["a", "b"], [1.0, 2.0], colors=["#000000"])
    with pytest.raises(ValueError, match="paper must give one number"):
        plot_setting_bars(["a", "b"], [1.0, 2.0], paper=[1.0, 2.0, 3.0])


def test_alpha_one_line_per_run_and_the_fixed_reference():
    alphas = {"seed 0": [0.7, 0.6, 0.55], "seed 1": np.array([0.8, 0.4]), "mlad": [0.3]}
    fig = plot_alpha(alphas, title="alpha")
    ax = fig.axes[0]
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [0.7, 0.6, 0.55])
    np.testing.assert_allclose(lines[1].get_xdata(), [1, 2])
    assert to_hex(lines[2].get_color()) == model_color("mlad").lower()
    reference = lines[3]
    assert reference.get_linestyle() == "--" and list(reference.get_ydata()) == [0.5, 0.5]
    assert ax.get_xlabel() == "MLAD layer" and "alpha" in ax.get_ylabel()
    assert ax.get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert len(plot_alpha({"a": [0.5]}, reference=None).axes[0].get_lines()) == 1
    seeds = plot_alpha({"L = 2": [[0.4, 0.6], [0.45, 0.55]], "L = 1": [[0.3]]}, reference=None).axes[0]
    assert len(seeds.get_lines()) == 3  # one line per run
    assert to_hex(seeds.get_lines()[0].get_color()) == to_hex(seeds.get_lines()[1].get_color())
    assert [t.get_text() for t in seeds.get_legend().get_texts()] == ["L = 2", "L = 1"]  # one entry per setting


def test_alpha_refuses_bad_input():
    with pytest.raises(ValueError, match="alphas is empty"):
        plot_alpha({})
    with pytest.raises(ValueError, match=r"alphas\['a'\] must be \(L,\) or \(runs, L\) values in \[0, 1\]"):
        plot_alpha({"a": [1.2]})
    with pytest.raises(ValueError, match=r"alphas\['a'\]"):
        plot_alpha({"a": []})
    with pytest.raises(ValueError, match=r"alphas\['a'\]"):
        plot_alpha({"a": np.full((2, 2, 2), 0.5)})
