"""mladlib.viz.scaling: benchmark records read back cell by cell, figures that draw what they are given."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mladlib.viz.scaling import (  # noqa: E402
    find_table,
    is_lower_bound,
    parse_benchmark_tables,
    parse_number,
    parse_numbers,
    plot_flop_parts,
    plot_largest_T,
    plot_speedups,
    read_benchmark_tables,
    strip_markup,
)

REPO = Path(__file__).resolve().parents[1]

RECORD = """\
# Benchmarks

## Speed

`benchmarks/bench_x.py` times things.

```bash
python benchmarks/bench_x.py                  # CPU, both sizes
python benchmarks/bench_x.py --device cuda    # and on the GPU
## not a heading: inside a code block
| not | a table | inside |
|---|---|---|
```

### 2026-01-02, CPU: Some Xeon, 2 cores

torch 2.0. A note.

`python benchmarks/bench_x.py --threads 1` (matmul 100 GFLOP/s):

| data | B | model | ms/step | vs naive |
|---|---|---|---|---|
| small | 1 | naive | 1,455 | 1.00x |
| small | 1 | **fast** | **973** | **1.50x** |

The largest T:

| model | largest T |
|:---|---:|
| fast | >= 11,264 |
| slow | 1,408 |

### 2026-01-03, GPU: Some GPU (80 GB)

A quiet machine.

| data | fast s | speed-up |
|---|---|---|
| small | 0.73 / 0.73 | 23x / 21x |

## Other

| a | b |
|---|---|
| 1 | |
"""


def test_tables_come_with_their_section_heading_caption_and_command():
    tables = parse_benchmark_tables(RECORD)
    assert [(t.section, t.subsection[:10]) for t in tables] == [
        ("Speed", "2026-01-02"), ("Speed", "2026-01-02"), ("Speed", "2026-01-03"), ("Other", "")]
    cpu, largest, gpu, other = tables
    assert cpu.subsection == "2026-01-02, CPU: Some Xeon, 2 cores"
    assert cpu.header == ("data", "B", "model", "ms/step", "vs naive")
    assert cpu.rows[1] == ("small", "1", "fast", "973", "1.50x")  # emphasis removed
    assert cpu.caption == "`python benchmarks/bench_x.py --threads 1` (matmul 100 GFLOP/s):"
    assert cpu.line == RECORD.splitlines().index("| data | B | model | ms/step | vs naive |") + 1
    # the closest inline command of the subsection, also for the table after it
    assert cpu.command == largest.command == "python benchmarks/bench_x.py --threads 1"
    assert largest.caption == "The largest T:" and largest.rows == (("fast", ">= 11,264"), ("slow", "1,408"))
    # no inline command: the section's fenced command whose comment names the device
    assert gpu.command == "python benchmarks/bench_x.py --device cuda"
    assert other.command is None and other.rows == (("1", ""),)


def test_table_accessors_and_plain_text():
    cpu = parse_benchmark_tables(RECORD)[0]
    assert cpu.column("ms/step") == ["1,455", "973"]
    assert cpu.records()[0] == {"data": "small", "B": "1", "model": "naive", "ms/step": "1,455", "vs naive": "1.00x"}
    assert cpu.where(model="fast", B="1") == [cpu.records()[1]]
    assert cpu.where(**{"vs naive": "9x"}) == []
    with pytest.raises(ValueError, match="no column 'peak'"):
        cpu.column("peak")
    with pytest.raises(ValueError, match="no column 'peak'"):
        cpu.where(peak="1")
    text = cpu.format().splitlines()
    assert text[0].split() == ["data", "B", "model", "ms/step", "vs", "naive"]
    assert set(text[1].replace("  ", "")) == {"-"} and len(text) == 4
    assert text[3].index("973") == text[0].index("ms/step")  # columns aligned
    assert "**" not in cpu.format()


def test_find_table_wants_exactly_one_match():
    tables = parse_benchmark_tables(RECORD)
    assert find_table(tables, "Speed", "CPU", ["vs naive"]) is tables[0]
    assert find_table(tables, "Speed", columns=["largest T"]) is tables[1]
    assert find_table(tables, "Speed", "GPU", command_contains="--device cuda") is tables[2]
    with pytest.raises(ValueError, match="2 tables match"):
        find_table(tables, "Speed", "CPU")
    with pytest.raises(ValueError, match="0 tables match"):
        find_table(tables, "Speed", "TPU")


def test_numbers_out_of_cells():
    assert parse_number("**3758**") == 3758 and parse_number("1,408") == 1408
    assert parse_number("2.64x") == 2.64 and parse_number("44%") == 44 and parse_number("0.364") == 0.364
    assert parse_number(">= 11,264") == 11264 and parse_number("6e-15") == 6e-15
    assert math.isnan(parse_number("")) and math.isnan(parse_number("  **  **"))
    assert parse_numbers("0.73 / 0.73") == [0.73, 0.73]
    assert parse_numbers("**1082 MB** (472 before)") == [1082, 472]
    assert parse_numbers("138,560 x 65") == [138560, 65]
    with pytest.raises(ValueError, match="holds 2 numbers"):
        parse_number("23x / 21x")
    with pytest.raises(ValueError, match="holds 0 numbers"):
        parse_number("n/a")
    assert is_lower_bound(">= 11,264") and is_lower_bound("**≥ 5**") and not is_lower_bound("1,408")
    assert strip_markup(" **`x`** ") == "x"


def test_bad_records_are_refused_by_name(tmp_path):
    broken = "## S\n\n| a | b |\n|---|---|\n| 1 | 2 | 3 |\n"
    with pytest.raises(ValueError, match=r"record\.md, line 5: a table row with 3 cells under a header of 2"):
        parse_benchmark_tables(broken, source="record.md")
    path = tmp_path / "README.md"
    with pytest.raises(FileNotFoundError, match="README.md"):
        read_benchmark_tables(path)
    path.write_text(RECORD)
    assert len(read_benchmark_tables(path)) == 4


def test_the_repository_record_parses():
    path = REPO / "benchmarks" / "README.md"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    tables = read_benchmark_tables(path)
    sections = {t.section for t in tables}
    assert {"Model", "Metrics"} <= sections
    for table in tables:
        if table.section in ("Model", "Metrics"):
            assert table.subsection[:4].isdigit(), table.line  # a dated heading
            assert table.command is not None and table.command.startswith("python benchmarks/bench_"), table.line
            assert all(len(row) == len(table.header) for row in table.rows)
    gpu = find_table(tables, "Model", "H200", ["vs naive", "dtype, attention"])
    assert all(parse_number(v) > 0 for v in gpu.column("vs naive"))


def test_speedups_draw_one_bar_per_value_with_floors():
    groups = {"A\nB = 1": {"fp32": 1.5, "bf16": 2.4}, "A\nB = 4": {"bf16": 2.5}}
    fig = plot_speedups(groups, "speed", floors={"target 1.3x": 1.3}, colors={"bf16": "#D55E00"})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [1.5, 2.4, 2.5]
    assert {to_hex(p.get_facecolor()) for p in ax.patches if round(p.get_height(), 1) in (2.4, 2.5)} == {"#d55e00"}
    assert [t.get_text() for t in ax.get_xticklabels()] == list(groups)
    assert ax.get_title() == "speed" and "speed-up" in ax.get_ylabel()
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [1.0, 1.3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["target 1.3x", "fp32", "bf16"]
    assert {t.get_text() for t in ax.texts} == {"1.5x", "2.4x", "2.5x"}
    log = plot_speedups(groups, "log", log=True)
    assert log.axes[0].get_yscale() == "log"


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
