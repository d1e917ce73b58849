"""mladlib.train.inference: one verb for one video, a mapping of videos or a dataset,
and the helpers every model run shares. The window arithmetic and batching across
videos are tested in tests/test_data.py; evaluate in tests/test_train.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mladlib import synth
from mladlib.models import build_model
from mladlib.train import NonFiniteScoresError, predict
from mladlib.train.inference import autocast_context, autocast_dtype, eval_mode


def tiny_dataset():
    return synth.load_split("test", "tiny")


def test_one_video_a_mapping_and_a_dataset_give_the_same_scores():
    test = tiny_dataset()
    model = build_model("mlad", test.num_classes, test.feature_dim, hidden_dim=8,
                        num_layers=1, dropout=0.0, attention_dropout=0.0)
    whole = predict(model, test, window=16, batch_size=3)
    ids = test.video_ids[:3]
    some = predict(model, {v: test.features(test.video_ids.index(v)) for v in ids},
                   window=16, batch_size=3)
    assert list(whole) == test.video_ids and list(some) == ids
    for v in ids:
        k = test.video_ids.index(v)
        one = predict(model, torch.from_numpy(test.features(k)), window=16)
        assert one.shape == (test.frame_counts[k], test.num_classes)
        np.testing.assert_allclose(one, whole[v], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(some[v], whole[v], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs window="):
        predict(model, test.features(0))
    with pytest.raises(TypeError, match="not list"):
        predict(model, [test.features(0)], window=16)


class NanAfter(nn.Module):
    """Logit 0 everywhere, NaN from step ``t`` of every window on."""

    feature_dim, num_classes = 2, 3

    def __init__(self, t: int) -> None:
        super().__init__()
        self.t = t

    def forward(self, x, mask=None):
        logits = torch.zeros(*x.shape[:2], 3)
        logits[:, self.t:] = float("nan")
        return logits


def test_nan_scores_are_refused_naming_the_video():
    videos = {"fine": np.zeros((4, 2), np.float32), "bad": np.zeros((9, 2), np.float32)}
    model = NanAfter(5).train()
    with pytest.raises(NonFiniteScoresError,
                       match=r"on video 'bad' \(12 of 27 values\)") as caught:
        predict(model, videos, window=8, stride=8)
    error = caught.value
    assert (error.video, error.count, error.total) == ("bad", 12, 27)
    assert isinstance(error, ValueError) and model.training  # mode restored
    with pytest.raises(NonFiniteScoresError, match=r"NaN or infinite scores \(6 of 27"):
        predict(NanAfter(7), videos["bad"], window=8, stride=8)
    assert predict(NanAfter(8), videos["fine"], window=8).shape == (4, 3)


def test_eval_mode_and_the_autocast_rule():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with eval_mode(model) as inside:
        assert inside is model and not model.training and not torch.is_grad_enabled()
    assert model.training and torch.is_grad_enabled()
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError
    assert model.training
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [autocast_dtype(a, cuda) for a in ("auto", "bf16", "off")] == [
        torch.bfloat16, torch.bfloat16, None]
    assert [autocast_dtype(a, cpu) for a in ("auto", "bf16", "off")] == [
        None, torch.bfloat16, None]
    with autocast_context(cpu, None):
        assert not torch.is_autocast_enabled("cpu")
    with autocast_context(cpu, torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
