"""Benchmark records: every record well formed, the README's tables rendered from them,
the records transcribed from the 2026-12-04 logs equal to the logs cell by cell."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from mladlib.viz.scaling import read_record, read_records

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LOGS = RESULTS / "gpu_h200_2026-12-04"


def load(name: str):
    path = REPO / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def log_table(path: Path) -> list[dict[str, str]]:
    """The rows of a ``|``-separated table printed into a log, as ``{label: cell}``."""
    lines = [line for line in path.read_text().splitlines()
             if "|" in line and not line.startswith("#")]
    split = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    header, rows = split[0], [r for r in split[1:] if not set("".join(r)) <= set("-")]
    return [dict(zip(header, r + [""] * (len(header) - len(r)))) for r in rows]


def test_every_record_names_machine_date_versions_and_command():
    records = read_records(RESULTS)
    assert {"model_cpu_2026-11-26_1thread", "model_h200_2026-12-04",
            "metrics_cpu_2026-11-26", "train_h200_2026-12-04"} <= set(records)
    for name, record in records.items():
        assert record["date"][:4].isdigit() and record["machine"], name
        assert record["software"]["mladlib"] and record["software"]["torch"], name
        assert record["command"].startswith("python benchmarks/bench_"), name
        assert record.rows and record.table(), name


def test_the_readme_tables_are_rendered_from_the_records():
    render = load("render_tables")
    assert render.main(["--check"]) == 0, "run: python benchmarks/render_tables.py"


def test_render_check_fails_on_a_stale_table(tmp_path):
    render = load("render_tables")
    text = (REPO / "benchmarks" / "README.md").read_text()
    stale = text.replace("| 2427 |", "| 2426 |", 1)
    assert stale != text
    readme = tmp_path / "README.md"
    readme.write_text(stale)
    assert render.main(["--check", "--readme", str(readme)]) == 1
    assert render.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == text


def test_render_names_the_marker_of_a_missing_record(tmp_path):
    render = load("render_tables")
    with pytest.raises(ValueError, match="README: table marker 'nothing'"):
        render.render("<!-- table: nothing -->\n<!-- end table -->\n", tmp_path)


@pytest.mark.parametrize("record, log", [("model_h200_2026-12-04", "bench_model.log"),
                                         ("train_h200_2026-12-04", "bench_train.log")])
def test_records_from_the_gpu_logs_equal_the_logs(record, log):
    rec = read_record(RESULTS / f"{record}.json")
    logged = log_table(LOGS / log)
    assert len(logged) == len(rec.rows)
    columns = {c["label"]: c for c in rec.columns}
    compared = 0
    for cells, row in zip(logged, rec.rows):
        for label, cell in cells.items():
            label = label if label in columns else label.replace(" (est.)", "")
            if label == "ms/step" and cell.startswith("failed"):
                assert row["error"] == cell
            elif label in columns:
                assert rec.cell(row, columns[label]) == cell, (record, label, row)
                compared += 1
    assert compared >= 6 * len(rec.rows)


def test_bench_model_writes_a_record_the_book_can_read(tmp_path):
    bench = load("bench_model")
    records = load("records")
    common = dict(data="quick", B=2, T=32, C=21, F=256, H=32, L=2)
    rates = dict(gemm_gflops=50.0, gemm_cpu_gflops=25.0)
    naive = bench.Result(bench.Case("naive", **common), times_s=[0.2],
                         cpu_times_s=[0.4], peak_mib=100.0, **rates)
    mlad = bench.Result(bench.Case("mlad", **common), times_s=[0.1], cpu_times_s=[0.1],
                        peak_mib=80.0, **rates)
    failed = bench.Result(bench.Case("mlad", compile=True, **common),
                          error="failed: RuntimeError")
    by_size = {("quick", 2, 32): naive}
    rows = [bench.record_row(r, by_size) for r in (naive, mlad, failed)]
    columns = [dict(label=label, cell=cell) for label, cell in bench.COLUMNS]
    argv = ["benchmarks/bench_model.py", "--quick"]
    record = records.make_record("bench_model", "test", {"cpu": "x", "cores": 2},
                                 columns, rows, argv=argv)
    path = records.write_record(tmp_path / "quick.json", record)
    back = read_record(path)
    assert back["command"] == "python benchmarks/bench_model.py --quick"
    assert back["software"]["mladlib"] and back["date"][:2] == "20"
    assert back.row(model="MLAD fast")["vs_naive"] == pytest.approx(2.0)
    assert back.row(model="MLAD fast")["vs_naive_cpu"] == pytest.approx(4.0)
    assert back.row(model="MLAD fast, compiled")["error"] == "failed: RuntimeError"
    # the record's cells are the printed table's cells
    printed = bench.row(mlad, by_size)
    assert [back.cell(back.rows[1], c) for c in columns[:len(bench.HEADER)]] == printed
    with pytest.raises(ValueError, match="needs"):
        records.write_record(tmp_path / "bad.json", {"rows": []})
    assert not (tmp_path / "bad.json").exists()


def test_bench_metrics_record_rows_render_as_a_record(tmp_path):
    bench = load("bench_metrics")
    records = load("records")
    common = dict(dataset="Charades", labels="real", frames=160455, classes=157,
                  exact=True, max_abs_diff=5e-15, memory="1082 MB RSS (472 MB before)",
                  what="sweep", reference_s=(110.0, 100.0))
    rows = [dict(common, device="cpu", fast_s=(2.0, 2.5)),
            dict(common, device="cuda", fast_s=(0.5, 0.4))]
    converted = bench.record_rows(rows)
    assert converted[0]["speedup_wall"] == 55.0 and converted[0]["speedup_cpu"] == 40.0
    assert "speedup_cpu" not in converted[1]  # CPU time means nothing for a GPU run
    record = records.make_record("bench_metrics", "t", {"cpu": "x"}, bench.COLUMNS,
                                 converted, argv=["benchmarks/bench_metrics.py"])
    back = read_record(records.write_record(tmp_path / "m.json", record))
    text = back.table(["dataset", "device", "speed-up (wall / CPU)",
                       "frames x classes"])
    assert "55.0x / 40.0x" in text and "160,455 x 157" in text
    both = {"label": "s", "cell": "{speedup_wall:.1f}x / {speedup_cpu:.1f}x"}
    assert back.cell(back.rows[1], both) == ""  # a field missing: a blank cell


def test_bench_model_plans_each_row_once(monkeypatch):
    bench = load("bench_model")
    monkeypatch.setattr(bench, "bf16_supported", lambda device: True)
    for device in ("cpu", "cuda"):
        args = argparse.Namespace(
            device=device, dtype="both", repeats=None, quick=False, data=["MultiTHUMOS"],
            batch_sizes=None, optimizer="fused", compile=True, search_batch=1)
        cases, _ = bench.plan(args)
        assert len(cases) == len({repr(c) for c in cases}), device
        math_rows = [c for c in cases if c.model == "mlad" and c.attention == "math"]
        assert len(math_rows) == (3 if device == "cuda" else 0), device  # one per batch size
