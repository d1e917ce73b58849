"""A small, fast probe of the feature-scale trap (issue 16 §3; chapter 9's last section).

The sinusoidal positions of the public code have amplitude 1 in every dimension and are
added to the input features. Features of a much smaller scale (L2-normalised backbones:
RMS about 0.03) are then a faint signal under a loud, input-independent one.
:func:`frame_accuracy` trains a one-layer MLAD for a few dozen Adam steps on a planted
task whose answer is in the features, at a chosen feature scale, and returns its test
frame accuracy: with ``positional_scale=1.0`` (the public behaviour) it stays near chance
at scale 0.01, with ``"auto"`` (the running RMS of the features scales the positions and
the sum) it learns at every scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import MLAD

NUM_CLASSES, FEATURE_DIM, HIDDEN_DIM = 5, 16, 8


def planted_task(scale: float, videos: int = 48, steps: int = 24, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Features ``x (videos, steps, FEATURE_DIM)`` drawn ``scale * N(0, 1)`` and labels
    ``y (videos, steps, NUM_CLASSES)``: class ``c`` is on where feature ``c`` is positive."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(videos, steps, FEATURE_DIM, generator=gen)
    y = (x[..., :NUM_CLASSES] > 0).float()
    return x * scale, y


def frame_accuracy(scale: float, positional_scale: float | str, adam_steps: int = 40) -> float:
    """Test frame accuracy (fraction of (step, class) cells right; chance 0.5) of a one-layer
    MLAD (H 8, no dropout) after ``adam_steps`` steps of batch 8 at lr 0.03 on
    :func:`planted_task` at feature ``scale``. Seeded, so repeatable on one machine; the
    caller's random streams are left as found."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _train_and_score(scale, positional_scale, adam_steps)


def _train_and_score(scale: float, positional_scale: float | str, adam_steps: int) -> float:
    model = MLAD(NUM_CLASSES, FEATURE_DIM, hidden_dim=HIDDEN_DIM, num_layers=1, dropout=0.0,
                 attention_dropout=0.0, positional_scale=positional_scale)
    x, y = planted_task(scale)
    fit_probe(model, x, y, adam_steps)
    x_test, y_test = planted_task(scale, videos=16, seed=1)
    with torch.no_grad():
        return ((model(x_test).logits > 0).float() == y_test).float().mean().item()


def fit_probe(model: nn.Module, x: Tensor, y: Tensor, adam_steps: int) -> nn.Module:
    """``adam_steps`` Adam steps at lr 0.03 on batches of 8 of ``x`` ``(48, T, F)`` and
    ``y`` ``(48, T, C)``, cycling through 6 batches, both losses; the model is returned
    in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    model.train()
    for step in range(adam_steps):
        batch = slice(8 * (step % 6), 8 * (step % 6) + 8)
        out = model(x[batch])
        loss = (F.binary_cross_entropy_with_logits(out.logits, y[batch])
                + F.binary_cross_entropy_with_logits(out.initial_logits, y[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
