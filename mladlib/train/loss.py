"""The training loss: binary cross-entropy on the initial and the final logits (section 5.1).

Each term is the mean over valid (step, class) entries of a batch: padded steps (mask
False) count for nothing. ``initial_weight = 0`` is table S3's "without initial loss".
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor


class LossParts(NamedTuple):
    """``total = initial_weight * initial + final_weight * final`` (scalars; ``initial`` is
    None for models without an initial head)."""

    total: Tensor
    initial: Tensor | None
    final: Tensor


def masked_bce(logits: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean binary cross-entropy with logits over the valid entries.

    ``logits``, ``labels`` ``(B, T, C)``; ``mask`` ``(B, T)`` bool, True on real steps.
    Computed in float32 whatever the autocast dtype of ``logits``.
    """
    per_entry = F.binary_cross_entropy_with_logits(  # (B, T, C)
        logits.float(), labels.float(), reduction="none"
    )
    if mask is None:
        return per_entry.mean()
    valid = mask[..., None].to(per_entry.dtype)  # (B, T, 1)
    total = (per_entry * valid).sum()
    return total / (valid.sum() * per_entry.shape[-1]).clamp_min(1.0)


def mlad_loss(
    logits: Tensor,
    initial_logits: Tensor | None,
    labels: Tensor,
    mask: Tensor | None = None,
    initial_weight: float = 1.0,
    final_weight: float = 1.0,
) -> LossParts:
    """The paper's loss on one batch. The initial term is kept even at weight 0 so that
    every parameter takes part in the graph (DistributedDataParallel requires it)."""
    final = masked_bce(logits, labels, mask)
    total = final_weight * final
    initial = None
    if initial_logits is not None:
        initial = masked_bce(initial_logits, labels, mask)
        total = total + initial_weight * initial
    return LossParts(total, initial, final)
