"""The convergence re-runs of bench_synth and bench_ablations (--converge): one stopping
rule, a separate record, never the fixed-budget files."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_ablations  # noqa: E402
import bench_synth  # noqa: E402

from mladlib.train import make_config


def test_converge_is_the_preset_plus_the_stopping_rule_only():
    preset = make_config("synthetic", model="mlad", seed=0, synthetic_seed=0).to_dict()
    converged = make_config(
        "synthetic", model="mlad", seed=0, synthetic_seed=0, **bench_synth.CONVERGE
    ).to_dict()
    assert {k for k in preset if preset[k] != converged[k]} == {
        "patience",
        "epochs",
        "num_threads",
    }
    assert converged["eval_every"] == 1 and converged["patience"] >= 5
    assert (
        converged["epochs"] >= 10 * preset["epochs"]
    )  # the cap is far beyond the fixed budget


def test_converge_never_writes_the_fixed_budget_records(tmp_path):
    with pytest.raises(SystemExit):
        bench_synth.main(["--converge", "--out", str(bench_synth.DEFAULT_OUT)])
    with pytest.raises(SystemExit):
        bench_ablations.main(["--converge", "--out", str(bench_ablations.DEFAULT_OUT)])


def test_converge_records_how_each_run_stopped(tmp_path):
    out = tmp_path / "converged.json"
    assert (
        bench_synth.main(
            [
                "--converge",
                "--models",
                "linear",
                "--seeds",
                "0",
                "--cap",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    stopping = record["results"]["linear"]["stopping"][0]
    assert stopping["ended_by"] in ("plateau", "cap") and stopping["steps"] > 0
    assert [c[0] for c in stopping["val_curve"]] == list(
        range(1, len(stopping["val_curve"]) + 1)
    )
    assert record["stopping_rule"]["patience"] == bench_synth.CONVERGE["patience"]
    assert record["stopping_rule"]["epochs"] == 2 and record["library"]["commit"]


def test_ablation_runs_record_their_stopping_under_converge():
    records = bench_ablations.run([0], quick=True, only=["mlad-L1"], log=lambda *a: None,
                                  converge=bench_synth.CONVERGE)
    stopping = records["mlad-L1"]["stopping"][0]
    assert stopping["ended_by"] in ("plateau", "cap") and len(stopping["val_curve"]) >= 1
    assert records["mlad-L1"]["best_epoch"][0] == stopping["best_epoch"]


def test_runs_start_a_new_file_and_later_runs_merge_into_it(tmp_path):
    out = tmp_path / "parts.json"
    assert bench_ablations.main(["--quick", "--runs", "mlad-L1", "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    assert set(first["runs"]) == {"mlad-L1"} and "--runs mlad-L1" in first["command"]
    assert bench_ablations.main(["--quick", "--runs", "mlad-L2", "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert set(merged["runs"]) == {"mlad-L1", "mlad-L2"}
    assert merged["runs"]["mlad-L1"] == first["runs"]["mlad-L1"]
    assert [u["runs"] for u in merged["updates"]] == [["mlad-L2"]]


def test_calibration_checks_read_a_converged_record():
    # a converged record also holds each run's stopping entry (a dict per seed)
    record = {m: {"frame_map": [10.0 * k], "ac0": [10.0 * k], "ac20": [10.0 * k],
                  "seconds": [0.0], "train_seconds": [1.0],
                  "stopping": [{"ended_by": "plateau"}]}
              for k, m in enumerate(bench_synth.MODELS)}
    verdicts = dict(bench_synth.checks(record))
    assert verdicts["CF - linear >= 3 (f-mAP)"] and verdicts["MLAD - TB-only >= 3 (f-mAP)"]
