"""benchmarks/bench_train.py runs end to end and reports what it measured (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mladlib import synth

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_train", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_train_reports_the_windows_and_frames_it_ran(capsys, tmp_path):
    bench = load_bench()
    args = ["--size", "tiny", "--classes", "30", "--hidden", "16", "--layers", "1", "--window", "32",
            "--batch-size", "8", "--windows", "16", "--test-videos", "2",
            "--threads", "1", "--out", str(tmp_path / "record.json")]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ") and not line.startswith("| what")}
    assert set(rows) == {"train epoch", "data only", "sliding inference"}
    test = synth.load_split("test", "tiny")
    measured, _, throughput, step_share, _ = rows["train epoch"]
    assert measured.startswith("16 of ")
    assert 0 < float(step_share) <= 100
    assert float(throughput.split()[0]) > 0
    frames = int(re.search(r"([\d,]+) frames", rows["sliding inference"][0]).group(1).replace(",", ""))
    assert frames == sum(test.frame_counts[:2])


def test_first_classes_keeps_the_data_classes():
    import torch

    from mladlib.models import MLAD

    bench = load_bench()
    model = MLAD(num_classes=30, feature_dim=8, hidden_dim=8, num_layers=1).eval()
    x = torch.randn(2, 5, 8)
    assert torch.equal(bench.FirstClasses(model, 22)(x), model(x).logits[..., :22])
    labels = torch.ones(2, 5, 22)
    padded = bench.pad_classes(labels, 30)
    assert padded.shape == (2, 5, 30) and padded[..., 22:].sum() == 0 and torch.equal(padded[..., :22], labels)


def test_bench_train_record_holds_the_printed_table(capsys, tmp_path):
    from mladlib.viz.scaling import read_record

    bench = load_bench()
    out = tmp_path / "train.json"
    args = ["--size", "tiny", "--classes", "30", "--hidden", "16", "--layers", "1",
            "--window", "32", "--batch-size", "8", "--windows", "8",
            "--test-videos", "1", "--threads", "1", "--out", str(out)]
    assert bench.main(args) == 0
    printed = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
               for line in capsys.readouterr().out.splitlines()
               if line.startswith("| ") and not line.startswith("| what")}
    record = read_record(out)
    assert record["benchmark"] == "bench_train" and "--out" in record["command"]
    assert record["settings"]["T"] == 32 and record["software"]["mladlib"]
    for row in record.rows:
        measured, seconds, throughput = printed[row["what"]][:3]
        assert row["measured"] == measured and f"{row['seconds']:.2f}" == seconds
        shown = float(throughput.split()[0].replace(",", ""))
        assert abs(row["throughput"] - shown) <= 0.5
