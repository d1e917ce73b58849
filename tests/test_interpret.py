"""mladlib.interpret (attention statistics, ranking against a known graph) and the chapter-7
figures of mladlib.viz.attention, on the tiny embedded dataset and hand-made arrays."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib import interpret, synth  # noqa: E402
from mladlib.data.windows import window_starts  # noqa: E402
from mladlib.models import build_model  # noqa: E402
from mladlib.utils import seed_everything  # noqa: E402
from mladlib.viz.attention import (  # noqa: E402
    ABSENT_COLOR,
    PRESENT_COLOR,
    RELATED_COLOR,
    plot_attention_grid,
    plot_attention_map,
    plot_class_time_attention,
    plot_per_class_scores,
    plot_time_attention,
)

WINDOW = 48  # shorter than most tiny videos (several windows, an overlapping last one), longer than one


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # these models are tiny: a second thread only waits for the first on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_test(tmp_path_factory):
    """The tiny embedded dataset's test split (6 videos, 405 steps, C = 22), generated in a tmp cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLADLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
        return synth.load_split("test", size="tiny")  # read into memory


def _model(dataset, **options):
    seed_everything(0)
    model = build_model("mlad", dataset.num_classes, dataset.feature_dim, hidden_dim=8, num_layers=2, **options)
    with torch.no_grad():  # sharpen the untrained attention so that the statistics differ from chance
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == 3 * module.in_features:
                module.weight.mul_(4.0)
    return model.eval()


def _reference(model, dataset, window):
    """Every statistic by explicit loops over windows, steps and classes."""
    C = dataset.num_classes
    L = len(model.layers)
    ref = {k: np.zeros(s) for k, s in {
        "cb": (L, C, C), "cb_given": (L, C, C, C), "tb": (L, C, C), "tb_chance": (C, C), "tb_absent": (L, C),
        "tb_absent_chance": (C,), "tb_before": (L, C, C), "tb_before_chance": (C, C)}.items()}
    steps, present, absent_queries = 0, np.zeros(C), np.zeros(C)
    for v in range(len(dataset)):
        n_frames, counted_to = dataset.num_frames(v), 0
        for start in window_starts(n_frames, window, window):
            stop = min(start + window, n_frames)
            maps = interpret.window_attention(model, dataset.features(v, start, stop))
            y = dataset.labels(v)[start:stop].astype(bool)  # (T, C)
            T = stop - start
            for t in range(max(start, counted_to) - start, T):
                steps += 1
                for l in range(L):
                    ref["cb"][l] += maps.cb[l, t]
                for k in range(C):
                    if y[t, k]:
                        for l in range(L):
                            ref["cb_given"][l, k] += maps.cb[l, t]
                for i in range(C):
                    if y[t, i]:
                        present[i] += 1
                        earlier = (np.arange(T) < t)[:, None] & y & ~y[:, i:i + 1]  # (T, C): keys s, classes j
                        ref["tb_chance"][i] += y.mean(0)
                        ref["tb_before_chance"][i] += earlier.sum(0) / T
                        for l in range(L):
                            ref["tb"][l, i] += maps.tb[l, i, t] @ y
                            ref["tb_before"][l, i] += maps.tb[l, i, t] @ earlier
                    elif y[:, i].any():
                        absent_queries[i] += 1
                        ref["tb_absent_chance"][i] += y[:, i].mean()
                        for l in range(L):
                            ref["tb_absent"][l, i] += maps.tb[l, i, t][y[:, i]].sum()
            counted_to = stop
    return ref, steps, present, absent_queries


def test_collect_attention_matches_loops_over_windows_steps_and_classes(tiny_test):
    model = _model(tiny_test)
    stats = interpret.collect_attention(model, tiny_test, window=WINDOW, batch_size=3)  # padded, several batches
    ref, steps, present, absent_queries = _reference(model, tiny_test, WINDOW)
    assert stats.steps == steps == int(tiny_test.frame_counts.sum())  # every step counted once
    np.testing.assert_array_equal(stats.present_steps, present)
    np.testing.assert_array_equal(stats.present_steps, sum(tiny_test.labels(i).sum(0) for i in range(len(tiny_test))))
    np.testing.assert_array_equal(stats.absent_queries, absent_queries)
    for name in ref:
        np.testing.assert_allclose(getattr(stats, f"{name}_sum"), ref[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert stats.num_layers == 2 and stats.num_classes == tiny_test.num_classes
    assert stats.class_names == tuple(tiny_test.spec.class_names)
    assert model.training is False


def test_means_rows_and_mean_cb_attention(tiny_test):
    model = _model(tiny_test).train()  # collect_attention evaluates in eval mode and restores the mode
    stats = interpret.collect_attention(model, tiny_test)
    assert model.training
    np.testing.assert_allclose(stats.cb_mean.sum(-1), 1.0, atol=1e-5)  # (L, C) softmax rows
    k = int(np.argmax(stats.present_steps))
    given = interpret.mean_cb_attention(model, tiny_test, k)
    np.testing.assert_allclose(given, stats.cb_given(k), atol=1e-6)
    np.testing.assert_allclose(given.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(stats.cb_from_present[:, k], given[:, k], atol=1e-6)  # row k of its own map
    never = np.nonzero(stats.present_steps == 0)[0]
    if len(never):
        assert np.isnan(stats.cb_from_present[:, never[0]]).all()
        with pytest.raises(ValueError, match="never present"):
            stats.cb_given(int(never[0]))
    with pytest.raises(ValueError, match="outside the"):
        stats.cb_given(tiny_test.num_classes)
    checker = stats.checkerboard
    assert checker["from_present"].shape == (2, tiny_test.num_classes)
    seen = stats.present_steps > 0
    assert (checker["from_present"][:, seen] >= 0).all() and (checker["from_present"][:, seen] <= 1 + 1e-9).all()


def test_uniform_attention_is_chance(tiny_test):
    """With zero queries and keys every weight is uniform: every lift is 1, the checkerboard flat."""
    model = _model(tiny_test)
    with torch.no_grad():
        for layer in model.layers:
            for block in (layer.cb, layer.tb):
                H = block.qkv.in_features
                block.qkv.weight[: 2 * H] = 0
                block.qkv.bias[: 2 * H] = 0
    stats = interpret.collect_attention(model, tiny_test, window=WINDOW, batch_size=4)
    C = tiny_test.num_classes
    np.testing.assert_allclose(stats.cb_mean, 1.0 / C, atol=1e-6)
    for lift in (stats.tb_lift, stats.tb_before_lift):
        finite = np.isfinite(lift)
        assert finite.any()
        np.testing.assert_allclose(lift[finite], 1.0, atol=1e-5)
    checker = stats.checkerboard
    np.testing.assert_allclose(checker["from_present"], np.broadcast_to(checker["chance_present"], (2, C)),
                               atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(checker["from_absent"], np.broadcast_to(checker["chance_absent"], (2, C)),
                               atol=1e-6, equal_nan=True)


def test_one_branch_models_and_models_without_attention(tiny_test):
    cb_only = interpret.collect_attention(_model(tiny_test, branches=("cb",)), tiny_test)
    assert cb_only.tb_sum is None and cb_only.cb_sum.shape[0] == 2
    with pytest.raises(ValueError, match="no TB branch"):
        cb_only.tb_lift
    tb_only = interpret.collect_attention(_model(tiny_test, branches=("tb",)), tiny_test)
    assert tb_only.cb_sum is None and tb_only.num_layers == 2
    with pytest.raises(ValueError, match="no CB branch"):
        tb_only.cb_from_present
    C, F = tiny_test.num_classes, tiny_test.feature_dim
    with pytest.raises(ValueError, match="no MLAD layers"):
        interpret.collect_attention(build_model("cf", C, F, hidden_dim=8), tiny_test)
    with pytest.raises(ValueError, match="LinearBaseline returned no attention maps"):
        interpret.collect_attention(build_model("linear", C, F), tiny_test)
    with pytest.raises(ValueError, match="-d features"):
        interpret.collect_attention(build_model("mlad", C, F + 1, hidden_dim=8, num_layers=1), tiny_test)
    with pytest.raises(ValueError, match="window and batch_size"):
        interpret.collect_attention(_model(tiny_test), tiny_test, window=0)


def test_window_attention_class_time_and_present_mass(tiny_test):
    model = _model(tiny_test)
    x = tiny_test.features(0, 0, 30)
    maps = interpret.window_attention(model, x)
    C = tiny_test.num_classes
    assert maps.cb.shape == (2, 30, C, C) and maps.tb.shape == (2, C, 30, 30)
    out = model(torch.from_numpy(x)[None], return_attention=True).attention
    np.testing.assert_allclose(maps.tb[1], out[1]["tb"][0].detach().numpy(), atol=1e-6)
    received = interpret.class_time_attention(maps.cb)
    assert received.shape == (2, C, 30)
    np.testing.assert_allclose(received.sum(axis=1), 1.0, atol=1e-5)  # the mean of softmax rows sums to 1
    np.testing.assert_allclose(received[0, 3, 7], maps.cb[0, 7, :, 3].mean(), atol=1e-7)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        interpret.window_attention(model, x[None])
    with pytest.raises(ValueError, match=r"\(\.\.\., T, C, C\)"):
        interpret.class_time_attention(np.zeros((3, 4, 5)))

    # a perfect checkerboard: present steps attend only to present steps, absent ones to absent ones
    present = np.array([0, 1, 1, 0, 0, 1], dtype=bool)
    same = (present[:, None] == present[None, :]).astype(float)
    checker = same / same.sum(1, keepdims=True)
    uniform = np.full((6, 6), 1 / 6)
    from_present, from_absent = interpret.present_mass(np.stack([checker, uniform]), present)
    np.testing.assert_allclose(from_present, [1.0, 0.5])
    np.testing.assert_allclose(from_absent, [0.0, 0.5])
    assert np.isnan(interpret.present_mass(uniform, np.zeros(6, bool))[0])
    with pytest.raises(ValueError, match="present"):
        interpret.present_mass(uniform, present[:5])


def test_ranking_quality_on_hand_made_rankings():
    truth = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    perfect = np.array([[9, 3, 2, 1], [3, 9, 1, 2], [3, 1, 9, 2], [1, 2, 3, 9]], float)
    q = interpret.ranking_quality(perfect, truth)
    np.testing.assert_allclose(q.auc[:3], 1.0)
    np.testing.assert_allclose(q.precision[:3], 1.0)
    np.testing.assert_allclose(q.chance_precision[:3], [2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(q.k, [2, 1, 1, 0])
    assert np.isnan(q.auc[3]) and np.isnan(q.precision[3])  # no true partner: no score
    reversed_ = interpret.ranking_quality(-perfect, truth)
    np.testing.assert_allclose(reversed_.auc[:3], 0.0)
    np.testing.assert_allclose(reversed_.precision[:3], [0.5, 0.0, 0.0])  # row 0: 2 of its 3 candidates are partners
    ties = interpret.ranking_quality(np.ones((4, 4)), truth)
    np.testing.assert_allclose(ties.auc[:3], 0.5)  # ties count half
    # row 0: partners 1, 2; scores put 1 first, then 3, then 2 -> AUC 1/2, precision@2 1/2, @1 1
    mixed = perfect.copy()
    mixed[0] = [0, 5, 1, 3]
    q = interpret.ranking_quality(mixed, truth)
    assert q.auc[0] == pytest.approx(0.5) and q.precision[0] == pytest.approx(0.5)
    assert interpret.ranking_quality(mixed, truth, k=1).precision[0] == pytest.approx(1.0)
    # NaN scores and candidates leave pairs out; the diagonal never counts
    masked = mixed.copy()
    masked[0, 3] = np.nan
    assert interpret.ranking_quality(masked, truth).auc[0] == pytest.approx(np.nan, nan_ok=True)  # no negative left
    only = np.ones((4, 4), bool)
    only[0, 2] = False
    q = interpret.ranking_quality(mixed, truth, candidates=only)
    assert q.auc[0] == pytest.approx(1.0) and q.k[0] == 1
    with pytest.raises(ValueError, match=r"\(C, C\)"):
        interpret.ranking_quality(np.ones((4, 3)), truth)
    with pytest.raises(ValueError, match="k must be"):
        interpret.ranking_quality(perfect, truth, k=0)


def test_label_statistics_by_hand():
    # classes: 0 runs 0-3, 1 co-occurs at 2-3, 2 starts right after (4-5), 3 never
    y = np.zeros((8, 4), int)
    y[0:4, 0] = 1
    y[2:4, 1] = 1
    y[4:6, 2] = 1
    co = interpret.label_cooccurrence([y, y])
    assert co[0, 1] == pytest.approx(0.5) and co[1, 0] == pytest.approx(1.0) and co[0, 2] == 0
    assert np.isnan(co[3]).all()
    np.testing.assert_allclose(np.diag(co)[:3], 1.0)
    follows = interpret.label_precedence({"a": y}, horizon=1)
    assert follows[2, 0] == 1 and follows[2, 1] == 1 and follows[1, 0] == 1 and follows[0, 2] == 0
    assert np.isnan(follows[3]).all()
    second = np.zeros((8, 4), int)
    second[5:7, 2] = 1  # an onset of class 2 with nothing before it
    follows = interpret.label_precedence([y, second], horizon=2)
    assert follows[2, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="horizon"):
        interpret.label_precedence([y], horizon=0)
    with pytest.raises(ValueError, match="same C"):
        interpret.label_cooccurrence([y, y[:, :3]])
    with pytest.raises(ValueError, match="empty"):
        interpret.label_cooccurrence([])


def test_label_statistics_on_the_tiny_dataset(tiny_test):
    co = interpret.label_cooccurrence(tiny_test)
    seen = np.nonzero(sum(tiny_test.labels(i).sum(0) for i in range(len(tiny_test))))[0]
    np.testing.assert_allclose(np.diag(co)[seen], 1.0)
    assert ((co[seen] >= 0) & (co[seen] <= 1)).all()


# --- figures ------------------------------------------------------------------------------
def test_attention_grid_rows_scales_and_highlights():
    rng = np.random.default_rng(0)
    maps = [[rng.random((3, 3)) for _ in range(2)], [0.1 * rng.random((4, 4)) for _ in range(2)]]
    labels = [["A", "B", "C"], ["A", "D", "E", "F"]]
    fig = plot_attention_grid(maps, labels, row_titles=["A", "A again"], col_titles=["layer 1", "layer 2"],
                              highlight=[{1: RELATED_COLOR}, None], title="grid")
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(panels) == 4
    assert panels[0].get_title() == "layer 1" and panels[2].get_title() == ""
    top = panels[0].images[0].get_clim()[1]
    assert top == pytest.approx(max(m.max() for m in maps[0]))  # one scale per row
    assert panels[2].images[0].get_clim()[1] == pytest.approx(max(m.max() for m in maps[1]))
    b = [t for t in panels[0].get_xticklabels() if t.get_text() == "B"][0]
    assert to_hex(b.get_color()) == RELATED_COLOR.lower()
    with pytest.raises(ValueError, match="labels names 3"):
        plot_attention_grid([[np.ones((2, 2))]], [["A", "B", "C"]])
    with pytest.raises(ValueError, match="every row"):
        plot_attention_grid([[np.ones((2, 2))], []], [["A", "B"], ["A", "B"]])
    with pytest.raises(ValueError, match="col_titles"):
        plot_attention_grid([[np.ones((2, 2))]], [["A", "B"]], col_titles=["x", "y"])


def test_time_attention_panels_and_presence_strips():
    present = np.zeros(10, bool)
    present[3:6] = True
    maps = np.full((3, 10, 10), 0.1)
    fig = plot_time_attention(maps, present, title="Run", start=20)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("layer")]
    assert [ax.get_title() for ax in panels] == ["layer 1", "layer 2", "layer 3"]
    assert panels[0].get_xlim() == pytest.approx((19.5, 29.5))  # steps counted from the window's start
    strips = [child for ax in panels for child in ax.child_axes]
    assert len(strips) == 6  # top and left of each panel
    strip = strips[0].images[0]
    colours = [to_hex(strip.cmap(strip.norm(v))) for v in (0.0, 1.0)]
    assert colours == [ABSENT_COLOR.lower(), PRESENT_COLOR.lower()]
    np.testing.assert_array_equal(np.asarray(strip.get_array()).ravel(), present.astype(float))
    assert len(plot_time_attention(maps[0], present).axes) >= 1  # one (T, T) map
    with pytest.raises(ValueError, match=r"present has shape \(9,\)"):
        plot_time_attention(maps, present[:9])
    with pytest.raises(ValueError, match=r"\(L, T, T\)"):
        plot_time_attention(np.ones((2, 3, 4)), present[:3])


def test_time_attention_y_ticks_clear_the_presence_strip():
    # The left presence strip sits just outside the panel: the y tick labels must stand
    # clear of it (they used to run into it and lose their last digit).
    present = np.zeros(64, bool)
    present[10:30] = True
    fig = plot_time_attention(np.full((3, 64, 64), 1 / 64), present, start=1200)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title().startswith("layer")]
    for ax in panels:
        left = min(ax.child_axes, key=lambda child: child.get_position().x0)
        strip_x0 = left.get_window_extent(renderer).x0
        labels = [t for t in ax.get_yticklabels() if t.get_text()]
        assert labels
        assert max(t.get_window_extent(renderer).x1 for t in labels) <= strip_x0


def test_time_attention_colour_scale_clips_a_few_large_weights():
    present = np.zeros(10, bool)
    present[3:6] = True
    maps = np.full((2, 10, 10), 0.1)
    maps[0, 0, 0] = 0.9  # one outlier would otherwise set the top of the scale
    top = lambda fig: fig.axes[0].images[0].get_clim()[1]  # noqa: E731
    assert top(plot_time_attention(maps, present)) == pytest.approx(np.quantile(maps, 0.99))
    assert top(plot_time_attention(maps, present, clip_quantile=None)) == pytest.approx(0.9)
    assert top(plot_time_attention(np.full((1, 10, 10), 0.1), present)) == pytest.approx(0.1)  # nothing to clip
    with pytest.raises(ValueError, match="clip_quantile"):
        plot_time_attention(maps, present, clip_quantile=0.0)


def test_class_time_attention_marks_present_classes():
    names = ["Run", "Jump", "Fall"]
    labels = np.zeros((8, 3), int)
    labels[2:5, 1] = 1
    labels[6:8, 1] = 1
    maps = np.full((2, 3, 8), 1 / 3)
    fig = plot_class_time_attention(maps, names, labels, start=4, title="S3")
    panels = [ax for ax in fig.axes if ax.get_title().startswith("layer")]
    assert len(panels) == 2
    outlines = panels[0].patches
    assert len(outlines) == 2  # two runs of Jump
    assert outlines[0].get_x() == pytest.approx(4 + 2 - 0.5) and outlines[0].get_width() == pytest.approx(3)
    jump = panels[0].get_yticklabels()[1]
    assert to_hex(jump.get_color()) == PRESENT_COLOR.lower() and jump.get_fontweight() == "bold"
    assert to_hex(panels[0].get_yticklabels()[0].get_color()) != PRESENT_COLOR.lower()
    with pytest.raises(ValueError, match=r"present has shape"):
        plot_class_time_attention(maps, names, labels[:7])
    with pytest.raises(ValueError, match="for 2 classes"):
        plot_class_time_attention(maps, names[:2], labels)


def test_per_class_scores_and_the_original_map_still_work():
    names = ["A", "B", "C"]
    fig = plot_per_class_scores({"attention": [0.7, np.nan, 0.4], "labels": [1.0, np.nan, 0.9]}, names,
                                xlabel="AUC", reference=0.5, reference_label="random")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "C"]  # B has no value anywhere
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["attention", "labels", "random"]
    with pytest.raises(ValueError, match="expected \\(3,\\)"):
        plot_per_class_scores({"x": [1, 2]}, names, "AUC")
    with pytest.raises(ValueError, match="NaN"):
        plot_per_class_scores({"x": [np.nan] * 3}, names, "AUC")
    heat = plot_attention_map(np.eye(3), names, names, highlight={0: RELATED_COLOR})
    assert isinstance(heat, Figure) and heat.axes[0].get_title() == "attention weights"
