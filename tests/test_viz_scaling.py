"""mladlib.viz.scaling: benchmark records read back cell by cell, figures that draw what they are given."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.viz.style import displayed_text_px  # noqa: E402

from mladlib.viz.scaling import (  # noqa: E402
    check_record,
    plot_flop_parts,
    plot_largest_T,
    plot_speedups,
    read_record,
    read_records,
)

REPO = Path(__file__).resolve().parents[1]

RECORD = {
    "benchmark": "bench_x", "title": "speed", "date": "2026-01-02",
    "machine": {"cpu": "Some Xeon", "cores": 2},
    "software": {"mladlib": "0.1.0", "torch": "2.0"},
    "command": "python benchmarks/bench_x.py", "source": "a test",
    "columns": [
        {"label": "model", "cell": "{model}"},
        {"label": "ms/step", "cell": "{ms_per_step:,.0f}"},
        {"label": "vs naive", "cell": "{vs_naive:.2f}x"},
        {"label": "largest T", "cell": "{largest_T:,}", "bound": "lower_bound"},
    ],
    "rows": [
        {"model": "naive", "ms_per_step": 1455.2, "vs_naive": 1.0, "largest_T": 1408,
         "lower_bound": False},
        {"model": "fast", "ms_per_step": 973.0, "vs_naive": 1.4955, "largest_T": 11264,
         "lower_bound": True},
        {"model": "failed"},
    ],
}


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_a_record_reads_back_with_its_rows_and_metadata(tmp_path):
    record = read_record(write(tmp_path / "bench_x_cpu.json", RECORD))
    assert record.name == "bench_x_cpu" and record["date"] == "2026-01-02"
    assert record.row(model="fast")["ms_per_step"] == 973.0
    assert record.where(model="nobody") == [] and len(record.where()) == 3
    with pytest.raises(ValueError, match="bench_x_cpu: 0 rows have"):
        record.row(model="nobody")


def test_a_record_renders_markdown_and_aligned_text(tmp_path):
    record = read_record(write(tmp_path / "r.json", RECORD))
    markdown = record.table(markdown=True).splitlines()
    assert markdown[0] == "| model | ms/step | vs naive | largest T |"
    assert markdown[2] == "| naive | 1,455 | 1.00x | 1,408 |"
    assert markdown[3] == "| fast | 973 | 1.50x | >= 11,264 |"
    assert markdown[4] == "| failed |  |  |  |"  # no fields: blank cells
    fast = record.where(model="fast")
    text = record.table(["vs naive", "model"], rows=fast).splitlines()
    assert text[2].index("1.50x") + len("1.50x") == len("vs naive")  # right-aligned
    with pytest.raises(ValueError, match="no column 'peak'"):
        record.table(["peak"])


def test_bad_records_are_refused_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.json"):
        read_record(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_record(tmp_path / "broken.json")
    no_date = {k: v for k, v in RECORD.items() if k != "date"}
    with pytest.raises(ValueError, match=r"nodate.json: a benchmark record needs"):
        read_record(write(tmp_path / "nodate.json", no_date))
    with pytest.raises(ValueError, match="must name the torch version"):
        check_record({**RECORD, "software": {"mladlib": "0.1.0"}}, "x")
    with pytest.raises(ValueError, match="column 0 needs a label and a cell"):
        check_record({**RECORD, "columns": [{"label": "a"}]}, "x")


def test_read_records_skips_other_json_and_filters_by_benchmark(tmp_path):
    write(tmp_path / "a.json", RECORD)
    write(tmp_path / "b.json", {**RECORD, "benchmark": "bench_y"})
    write(tmp_path / "ablations.json", {"runs": {}})  # a result that is not a table
    assert list(read_records(tmp_path)) == ["a", "b"]
    assert list(read_records(tmp_path, "bench_y")) == ["b"]
    with pytest.raises(FileNotFoundError, match="records folder not found"):
        read_records(tmp_path / "nothing")


def test_the_repository_records_read():
    records = read_records(REPO / "benchmarks" / "results", "bench_model")
    gpu = records["model_h200_2026-11-26"]
    assert all(r["vs_naive"] > 0 for r in gpu.rows)
    assert gpu.row(data="MultiTHUMOS", B=32, model="MLAD, compiled")["vs_naive"] == 4.89


def test_speedups_draw_one_bar_per_value_with_floors():
    groups = {"A\nB = 1": {"fp32": 1.5, "bf16": 2.4}, "A\nB = 4": {"bf16": 2.5}}
    fig = plot_speedups(groups, "speed", floors={"target 1.3x": 1.3}, colors={"bf16": "#D55E00"})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [1.5, 2.4, 2.5]
    assert {to_hex(p.get_facecolor()) for p in ax.patches if round(p.get_height(), 1) in (2.4, 2.5)} == {"#d55e00"}
    # the shared first line "A" once below its two groups, the second lines as ticks
    assert [t.get_text() for t in ax.get_xticklabels()] == ["B = 1", "B = 4"]
    assert [t.get_text() for t in ax.texts].count("A") == 1
    assert ax.get_title() == "speed" and "speed-up" in ax.get_ylabel()
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [1.0, 1.3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["target 1.3x", "fp32", "bf16"]
    assert {t.get_text() for t in ax.texts} == {"1.5x", "2.4x", "2.5x", "A"}
    other = plot_speedups({"A": {"x": 2.0}, "B": {"x": 3.0}}, "t").axes[0]
    assert [t.get_text() for t in other.get_xticklabels()] == ["A", "B"]
    log = plot_speedups(groups, "log", log=True)
    assert log.axes[0].get_yscale() == "log"


def test_speedups_stay_legible_with_many_groups_and_series():
    # six configurations of four series (chapter 8's H200 record): labels upright, no
    # text below 10 px at a 1400 px window, value labels of neighbouring bars apart
    series = ["fp32", "bf16", "bf16, math", "compiled"]
    groups = {f"{data}\nB = {b}": {s: 1.5 + k / 3 for k, s in enumerate(series)}
              for data in ("MultiTHUMOS", "Charades") for b in (1, 8, 32)}
    fig = plot_speedups(groups, "six groups", floors={"3x": 3.0})
    assert fig.get_figwidth() <= 7.0 and displayed_text_px(fig) >= 10
    labels = [t for t in fig.axes[0].texts if t.get_text().endswith("x")]
    assert len(labels) == 24 and all(t.get_rotation() == 90 for t in labels)
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))  # no two overlap
    import matplotlib.pyplot as plt
    plt.close("all")


def test_speedups_refuse_bad_input():
    with pytest.raises(ValueError, match="groups is empty"):
        plot_speedups({}, "t")
    with pytest.raises(ValueError, match="group 'a' has no values"):
        plot_speedups({"a": {}}, "t")
    with pytest.raises(ValueError, match=r"groups\['a'\]\['x'\] must be a positive number"):
        plot_speedups({"a": {"x": -1.0}}, "t")
    with pytest.raises(ValueError, match="must be a positive number"):
        plot_speedups({"a": {"x": float("nan")}}, "t")


def test_largest_T_marks_lower_bounds_and_the_reference():
    entries = [("explicit", 1408, False), ("fused", 11264, True)]
    fig = plot_largest_T(entries, "fits", reference=("T = 128", 128), notes=["125 GiB", ""],
                         colors=["#555555", "#999999"])
    ax = fig.axes[0]
    bars = ax.patches
    assert [round(b.get_width()) for b in bars] == [1408, 11264]
    assert [bool(b.get_hatch()) for b in bars] == [False, True]
    assert ax.get_xscale() == "log" and "1/3 s" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["explicit", "fused"]
    texts = [t.get_text() for t in ax.texts]
    assert "1,408  (125 GiB)" in texts and ">= 11,264" in texts
    assert any(line.get_xdata()[0] == 128 for line in ax.get_lines())
    assert ax.get_legend().get_texts()[0].get_text() == "T = 128"


def test_largest_T_refuses_bad_input():
    with pytest.raises(ValueError, match="entries is empty"):
        plot_largest_T([], "t")
    with pytest.raises(ValueError, match="entry 'a': T must be a positive number"):
        plot_largest_T([("a", 0, False)], "t")
    with pytest.raises(ValueError, match="notes has 2 texts for 1 entries"):
        plot_largest_T([("a", 5, False)], "t", notes=["x", "y"])
    with pytest.raises(ValueError, match="colors has 0 colours for 1 entries"):
        plot_largest_T([("a", 5, False)], "t", colors=[])


def test_flop_parts_stack_to_the_totals():
    parts = {"MLAD": {"class": 8.7, "blocks": 61.4}, "CT x CT": {"class": 8.7, "blocks": 111.3}}
    fig = plot_flop_parts(parts, "flops", colors={"class": "#0072B2"})
    ax = fig.axes[0]
    widths = np.array([p.get_width() for p in ax.patches]).reshape(2, 2)  # parts x bars
    assert np.allclose(widths.sum(axis=0), [70.1, 120.0])
    lefts = np.array([p.get_x() for p in ax.patches]).reshape(2, 2)
    assert np.allclose(lefts[1], widths[0])  # the second part starts where the first ends
    assert to_hex(ax.patches[0].get_facecolor()) == "#0072b2"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["MLAD", "CT x CT"]
    assert "70.1" in [t.get_text() for t in ax.texts] and "GFLOP" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class", "blocks"]


def test_flop_parts_refuse_bad_input():
    with pytest.raises(ValueError, match="parts is empty"):
        plot_flop_parts({}, "t")
    with pytest.raises(ValueError, match=r"parts\['b'\] has parts \['y', 'x'\], expected \['x', 'y'\]"):
        plot_flop_parts({"a": {"x": 1, "y": 2}, "b": {"y": 1, "x": 2}}, "t")
    with pytest.raises(ValueError, match=r"parts\['a'\]\['x'\] must be a number >= 0"):
        plot_flop_parts({"a": {"x": -1}}, "t")
