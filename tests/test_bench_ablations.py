"""The ablation sweep's run specifications (benchmarks/bench_ablations.py)."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_ablations  # noqa: E402

from mladlib.data.windows import WindowSampler
from mladlib.train import load_splits, make_config


def test_same_steps_runs_take_as_many_batches_as_the_preset():
    base = make_config("synthetic", seed=1, synthetic_seed=1)
    frames = load_splits(base, ("train",)).train.frame_counts
    windows = bench_ablations.windows_at_T(1, base.window)
    assert windows == math.ceil(int(np.sum(frames)) / base.window)
    preset = WindowSampler(frames, base.batch_size, base.window)
    for t in (16, 32, 48):
        shorter = WindowSampler(frames, base.batch_size, t, windows_per_epoch=windows)
        default = WindowSampler(frames, base.batch_size, t)
        assert len(shorter) == len(preset) < len(default)


def test_exercise_runs_are_single_changes_of_the_preset():
    specs = bench_ablations.run_specs(make_config("synthetic").num_layers)
    exercises = {name: spec for name, spec in specs.items() if "exercise" in spec}
    # exercise 3 reads a recorded run of an option since removed (alpha_branch)
    assert {spec["exercise"] for spec in exercises.values()} == {1, 2, 4}
    same_steps = [name for name in exercises if name.endswith("-same-steps")]
    assert len(same_steps) == 3
    for name in same_steps:
        overrides = exercises[name]["overrides"]
        assert overrides["windows_per_epoch"] == bench_ablations.STEPS_AS_AT_T
        assert overrides["variable_length"] is False
    with pytest.raises(ValueError, match="unknown run name"):
        bench_ablations.run([0], only=["no-such-run"])
