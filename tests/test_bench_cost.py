"""benchmarks/bench_cost.py writes a complete record; the committed record is its output
(no timing is asserted)."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cost.py"
RECORD = BENCH.parent / "results" / "attention_cost_cpu.json"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_cost", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_record(record: dict, sweeps: dict) -> None:
    assert record["sweeps"] == sweeps
    assert set(record["results"]) == set(record["variants"])
    for label, (model, kernel) in record["variants"].items():
        assert model in ("mlad", "full") and kernel in ("fused", "math")
        for axis, sizes in sweeps.items():
            rows = record["results"][label][axis]
            assert len(rows) == len(sizes)
            for row in rows:
                assert row["cpu_ms"] > 0 and row["peak_bytes"] > 0 and row["flops"] > 0
    assert record["machine"]["cpu"] and record["machine"]["torch"]


def test_quick_run_writes_a_complete_record(tmp_path):
    bench = load_bench()
    out = tmp_path / "cost.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    check_record(record, bench.QUICK_SWEEPS)
    assert list(tmp_path.iterdir()) == [out]  # no temporary left behind
    # the FLOP count is the model's, not a timing: more classes, more FLOPs
    for label in record["variants"]:
        flops = [r["flops"] for r in record["results"][label]["C"]]
        assert flops == sorted(flops) and flops[0] < flops[-1]


def test_committed_record_is_the_full_sweep():
    bench = load_bench()
    record = json.loads(RECORD.read_text())
    check_record(record, bench.SWEEPS)
    assert record["settings"]["fixed"] == bench.FIXED
    assert record["variants"] == {k: list(v) for k, v in bench.VARIANTS.items()}
    assert not any(math.isnan(r["cpu_ms"]) for v in record["results"].values()
                   for rows in v.values() for r in rows)


def test_bad_argument_is_named(capsys):
    bench = load_bench()
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--repeats", "0"])
    assert exit_.value.code == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err
