"""Measuring attention cost (mladlib.profiling) and its figures (mladlib.viz.cost, .attention)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.models import flops  # noqa: E402
from mladlib.profiling import (  # noqa: E402
    attention_cost,
    attention_score_entries,
    loglog_slope,
    peak_tensor_bytes,
    saved_tensor_bytes,
)
from mladlib.utils import seed_everything  # noqa: E402
from mladlib.viz.attention import plot_attention_map  # noqa: E402
from mladlib.viz.cost import plot_scaling  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    seed_everything(0)
    yield
    plt.close("all")


# ------------------------------------------------------------------ counting

def test_score_entries_are_cc_plus_tt_for_mlad_and_ct_squared_for_full():
    C, T, B = 5, 7, 3
    assert attention_score_entries("cb", C, T, B) == B * T * C * C
    assert attention_score_entries("tb", C, T, B) == B * C * T * T
    assert attention_score_entries("mlad", C, T, B) == B * C * T * (C + T)
    assert attention_score_entries("full", C, T, B) == B * (C * T) ** 2
    # the paper's MultiTHUMOS size: the decomposition stores CT / (C + T) times fewer scores
    ratio = attention_score_entries("full", 65, 128) / attention_score_entries("mlad", 65, 128)
    assert ratio == pytest.approx(65 * 128 / (65 + 128))


@pytest.mark.parametrize("bad", [dict(model_name="linear"), dict(C=0), dict(T=-1), dict(B=1.5)])
def test_score_entries_reject_bad_arguments(bad):
    args = dict(model_name="mlad", C=3, T=4, B=1) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        attention_score_entries(**args)


def test_loglog_slope_recovers_power_laws():
    x = [2, 4, 8, 16]
    assert loglog_slope(x, [3 * v**2 for v in x]) == pytest.approx(2.0)
    assert loglog_slope(x, [0.5 * v for v in x]) == pytest.approx(1.0)
    assert loglog_slope(np.array(x), torch.tensor([7.0] * 4)) == pytest.approx(0.0)


@pytest.mark.parametrize("sizes, values, match", [
    ([1, 2], [1, 2, 3], "equal length"),
    ([1], [1], "equal length >= 2"),
    ([1, 2], [0, 1], "positive"),
    ([3, 3], [1, 2], "all be equal"),
])
def test_loglog_slope_rejects_bad_input(sizes, values, match):
    with pytest.raises(ValueError, match=match):
        loglog_slope(sizes, values)


# ---------------------------------------------------------------- measuring

def test_peak_tensor_bytes_follows_allocations_and_frees():
    def work():
        a = torch.empty(1000)  # 4000 bytes
        b = torch.empty(500)  # 2000: peak 6000
        del a
        c = torch.empty(200)  # 800: live 2800 < 6000
        return b, c

    assert peak_tensor_bytes(work) == 6000
    assert peak_tensor_bytes(lambda: None) == 0


def test_peak_tensor_bytes_rejects_other_devices():
    with pytest.raises(ValueError, match="meta"):
        peak_tensor_bytes(lambda: None, "meta")


def test_saved_tensor_bytes_counts_each_storage_once_and_skips_parameters():
    weight = torch.nn.Parameter(torch.randn(100))
    inputs = torch.randn(100)

    def forward():
        y = torch.exp(inputs * weight)  # mul keeps `inputs` (for weight's grad); exp keeps y
        return y * y[None, :].squeeze(0)  # y saved again through a view: same storage

    # inputs (400 bytes) and y (400); the parameter is not counted
    assert saved_tensor_bytes(forward) == 800
    with torch.no_grad():
        assert saved_tensor_bytes(forward) == 0


def test_attention_cost_reports_every_quantity():
    result = attention_cost("mlad", 4, 8, H=8, B=1, F=8, repeats=1)
    assert set(result) == {"time_ms", "cpu_ms", "peak_bytes", "saved_bytes", "flops", "score_entries"}
    assert result["time_ms"] > 0 and result["cpu_ms"] > 0
    assert result["peak_bytes"] > 0 and result["saved_bytes"] > 0
    assert result["flops"] == flops.mlad_train_flops(1, 8, 4, 8, 8, 1)
    assert result["score_entries"] == attention_score_entries("mlad", 4, 8, 1)
    forward = attention_cost("full", 4, 8, H=8, B=1, F=8, L=2, repeats=1, backward=False)
    assert forward["flops"] == flops.full_attention_forward_flops(1, 8, 4, 8, 8, 2)
    assert forward["saved_bytes"] == 0


def test_explicit_attention_stores_the_ct_by_ct_scores_and_fused_does_not():
    C, T, B = 8, 32, 2  # CT = 256 tokens: one score matrix is B * 256^2 * 4 bytes = 512 KiB
    scores_bytes = 4 * attention_score_entries("full", C, T, B)
    explicit = attention_cost("full", C, T, H=8, B=B, F=8, kernel="math", repeats=1)
    fused = attention_cost("full", C, T, H=8, B=B, F=8, kernel="fused", repeats=1)
    mlad = attention_cost("mlad", C, T, H=8, B=B, F=8, kernel="math", repeats=1)
    # the explicit path keeps the softmax output for the backward pass: one fp32 copy at least
    assert explicit["saved_bytes"] - fused["saved_bytes"] >= scores_bytes
    assert explicit["peak_bytes"] > fused["peak_bytes"] + scores_bytes
    assert explicit["peak_bytes"] > 2 * mlad["peak_bytes"]


def test_saved_memory_grows_with_layers():
    one = attention_cost("mlad", 4, 16, H=8, B=1, F=8, L=1, repeats=1)["saved_bytes"]
    three = attention_cost("mlad", 4, 16, H=8, B=1, F=8, L=3, repeats=1)["saved_bytes"]
    # class features and classifiers are shared; every layer adds the same activations
    assert 2.5 * one < three < 3 * one


def test_attention_cost_is_seeded_and_leaves_the_callers_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = attention_cost("tb", 3, 6, H=8, B=1, F=8, repeats=1, attention_dropout=0.5, threads=1)
    assert torch.equal(torch.rand(3), expected)  # the caller's random stream is untouched
    assert torch.get_num_threads() == threads
    b = attention_cost("tb", 3, 6, H=8, B=1, F=8, repeats=1, attention_dropout=0.5, threads=1)
    assert a["peak_bytes"] == b["peak_bytes"] and a["saved_bytes"] == b["saved_bytes"]


@pytest.mark.parametrize("bad, match", [
    (dict(model_name="cf"), "model_name"),
    (dict(kernel="flash"), "kernel"),
    (dict(C=0), "C must be"),
    (dict(repeats=0), "repeats"),
    (dict(threads=0), "threads"),
    (dict(attention_dropout=1.0), "attention_dropout"),
])
def test_attention_cost_rejects_bad_arguments(bad, match):
    args = dict(model_name="mlad", C=3, T=4, H=8, B=1, F=8, repeats=1) | bad
    with pytest.raises(ValueError, match=match):
        attention_cost(**args)


# ------------------------------------------------------------------ figures

def test_plot_scaling_draws_log_log_lines_with_slopes():
    sizes = [8, 16, 32]
    fig = plot_scaling(sizes, {"quadratic": [1, 4, 16], "linear": [2, 4, 8]}, "C", "ms", "cost",
                       colors={"linear": "#D55E00"})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["quadratic (slope 2.00)", "linear (slope 1.00)"]
    assert len(ax.lines) == 2 + 2  # two series, two reference guides
    assert ax.lines[1].get_color() == "#D55E00"
    assert ax.get_xlabel() == "C" and ax.get_title() == "cost"


def test_plot_scaling_into_given_axes_and_bad_input():
    fig, axes = plt.subplots(1, 2)
    assert plot_scaling([1, 2], {"a": [1, 2]}, "x", "y", "t", slopes=False, reference_slopes=(), ax=axes[1]) is fig
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["a"]
    with pytest.raises(ValueError, match="3 values for 2 sizes"):
        plot_scaling([1, 2], {"a": [1, 2, 3]}, "x", "y", "t")
    with pytest.raises(ValueError, match="empty"):
        plot_scaling([1, 2], {}, "x", "y", "t")
    with pytest.raises(ValueError, match="positive"):
        plot_scaling([0, 2], {"a": [1, 2]}, "x", "y", "t")


def test_plot_attention_map_labels_and_highlights():
    weights = torch.softmax(torch.randn(4, 4), dim=-1)
    names = ["Run", "Jump", "Fall", "Sit"]
    fig = plot_attention_map(weights, names, names, title="CB", highlight={1: "green", 3: "red"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    colours = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert colours["Jump"] == "green" and colours["Sit"] == "red"
    assert np.allclose(ax.images[0].get_array(), weights.numpy())
    assert len(fig.axes) == 2  # the heat map and its colour bar


def test_plot_attention_map_thins_long_axes_and_rejects_bad_input():
    fig = plot_attention_map(np.full((128, 128), 1 / 128), colorbar=False)
    assert len(fig.axes[0].get_xticklabels()) <= 33
    with pytest.raises(ValueError, match="2-D"):
        plot_attention_map(np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="row_labels has 2 entries for 3 rows"):
        plot_attention_map(np.ones((3, 3)), row_labels=["a", "b"])
    assert math.isclose(float(np.asarray(fig.axes[0].images[0].get_array()).sum()), 128.0)
