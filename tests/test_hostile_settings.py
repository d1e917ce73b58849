"""Settings that cannot work are refused up front, naming the setting (issue 28, items
11 and the smaller list): non-finite or fractional numbers, thresholds outside [0, 1],
an option with no effect. No training: these run in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest

from mladlib.cli import main
from mladlib.metrics import action_conditional, standard_metrics
from mladlib.train import TrainConfig


@pytest.mark.parametrize("settings, phrase", [
    (dict(positional_scale=float("inf")), "positional_scale must be 'auto' or a fini"),
    (dict(positional_scale=float("nan")), "positional_scale must be 'auto' or a fini"),
    (dict(hidden_dim=8.5), "hidden_dim must be an integer, got 8.5"),
    (dict(epochs="1"), "epochs must be an integer, got '1'"),
    (dict(window=16.0), "window must be an integer, got 16.0"),
    (dict(taus=[2.5]), "taus must be integers >= 0, got [2.5]"),
    (dict(lr="0.1"), "lr must be a number, got '0.1'"),
])
def test_config_refuses_settings_that_fail_late(settings, phrase):
    with pytest.raises(ValueError) as info:
        TrainConfig(**settings)
    assert phrase in str(info.value)


def test_whole_numbers_of_any_integer_type_pass():
    config = TrainConfig(taus=[np.int64(3), 20], window=np.int32(16))
    assert config.taus == (3, 20) and all(type(t) is int for t in config.taus)


@pytest.mark.parametrize("threshold", [2, -1, 1.5, -1e-9, float("nan")])
def test_metrics_refuse_thresholds_outside_0_1(threshold):
    rng = np.random.default_rng(0)
    scores = [rng.random((20, 3))]
    labels = [(rng.random((20, 3)) < 0.4).astype(np.int64)]
    for metric in (standard_metrics, action_conditional):
        with pytest.raises(ValueError, match=r"threshold must be a finite number in \[0, 1\]"):
            metric(scores, labels, threshold=threshold)


@pytest.mark.parametrize("extra", [["--no-positional-encoding"], ["--model", "linear"]])
def test_a_positional_scale_without_positions_is_refused(extra, capsys, monkeypatch):
    import mladlib.train

    def no_training(*args, **kwargs):
        raise AssertionError("the option was not refused: training started")

    monkeypatch.setattr(mladlib.train, "train", no_training)
    code = main(["train", "--positional-scale", "2", *extra, "--run-dir", "never-made"])
    err = capsys.readouterr().err
    assert code == 2 and "--positional-scale 2.0 has no effect" in err, err


@pytest.mark.parametrize("value", [1e20, 1e-20, float("inf")])
def test_the_running_rms_refuses_features_float32_cannot_follow(value):
    import torch

    from mladlib.models.layers import PositionalEncoding

    layer = PositionalEncoding(4, scale="auto").train()
    with pytest.raises(ValueError, match="outside the range that positional_scale="):
        layer(torch.full((1, 3, 4), value))
    assert float(layer.feature_sq) == 1.0 and int(layer.feature_batches) == 0
    out = layer(torch.full((1, 3, 4), 2.0))  # ordinary features still train it
    assert torch.isfinite(out).all() and float(layer.feature_sq) == 4.0
