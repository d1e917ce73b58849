"""Dropout from raw random bits: the same regularizer as ``F.dropout``, cheaper on CPU.

Why: on CPU, ``F.dropout`` draws its mask with ``bernoulli_`` (one floating-point random
number per element, about 20x slower than raw random words; with the paper's dropout it
took about 40% of a naive MLAD step). Here each element gets 16 random bits, drawn as
64-bit words (four elements per draw), and one comparison writes the mask as 0.0/1.0 in
the activation's dtype, so applying it is a vectorized multiply (``torch.where`` with a
bool mask is a scalar loop on CPU, about 4x slower) and a residual connection absorbs it
into one ``addcmul`` pass.

The drop probability is quantized to ``1/65536``: an element is dropped when its 16-bit
word is among the ``k = round(p * 65536)`` smallest values, so the drop rate is exactly
``k / 65536`` (``p = 0.1`` gives ``0.100006``) and kept elements are scaled by
``65536 / (65536 - k)``, which keeps the expectation of every output equal to its input.
Masks are seeded from torch's global generator, so ``torch.manual_seed`` reproduces them.
On CUDA, and inside ``torch.compile``, ``F.dropout`` is used instead: there it already
is a fused kernel with counter-based random numbers.

The ``*_unscaled`` functions leave the ``1/keep_rate`` factor out where they draw bit
masks (:func:`dropout_scale` says which factor): callers fold it into a neighbouring
linear map's ``H x H`` weight, which costs nothing, instead of a pass over the
activations forward and another backward.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Resolution of the drop probability: masks compare 16-bit random words.
LEVELS = 1 << 16


def quantized_drop_rate(p: float) -> float:
    """The drop probability that :func:`keep_mask` really uses for ``p``: ``round(p * 65536) / 65536``."""
    return round(p * LEVELS) / LEVELS


def uses_random_bits(x: Tensor) -> bool:
    """True where dropout of ``x`` draws bit masks here (eager CPU).

    False where ``F.dropout`` runs.
    """
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def bit_dropout_applies(x: Tensor, p: float, training: bool) -> bool:
    """True where dropout of ``x`` draws a bit mask: training, ``0 < p < 1``, eager CPU."""
    return training and 0.0 < p < 1.0 and uses_random_bits(x)


@contextlib.contextmanager
def _no_fill() -> Iterator[None]:
    # Deterministic mode fills every torch.empty with NaN first; the buffers made here are
    # overwritten at once, so that pass would be pure waste.
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = fill


def _random_words(n: int, device: torch.device) -> Tensor:
    """``n`` uniformly random int16 values, drawn four at a time as 64-bit words.

    On CPU the words come from NumPy's SFC64, seeded by one draw from torch's global
    generator (so ``torch.manual_seed`` reproduces them): it fills 64-bit words about 2x
    faster than torch's Mersenne twister. Elsewhere torch's own generator on ``device``.
    """
    if device.type == "cpu":
        seed = int(torch.randint(-(1 << 63), (1 << 63) - 1, (), dtype=torch.int64))
        raw = np.random.SFC64(seed & ((1 << 64) - 1)).random_raw((n + 3) // 4)  # uint64, all 64 bits random
        return torch.from_numpy(raw.view(np.int16))[:n]
    with _no_fill():
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    # random_() alone draws from [0, 2^63): the sign bit would always be 0 and every
    # fourth int16 would be non-negative. From int64's minimum with no upper bound it
    # draws all 64 bits.
    words.random_(-(1 << 63), None)
    return words.view(torch.int16)[:n]


def keep_mask(
    shape: tuple[int, ...] | torch.Size, p: float, device: torch.device | str = "cpu", dtype: torch.dtype = torch.bool
) -> tuple[Tensor, float]:
    """A keep-mask of ``shape`` (True or 1.0 = keep, with probability ``1 - k/65536``) and
    the scale ``1/keep_rate``. ``k = round(p * 65536)``; ``p`` must lie in ``[0, 1)``.

    ``dtype`` bool, or a floating dtype for a 0.0/1.0 mask written by the same comparison.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1) to draw a keep mask, got {p}")
    dropped = round(p * LEVELS)
    words = _random_words(math.prod(shape), torch.device(device)).view(shape)
    # words are uniform on [-32768, 32767]: exactly `dropped` of the 65536 values lie below the threshold
    threshold = dropped - LEVELS // 2
    if dtype == torch.bool:
        keep = words >= threshold
    else:
        with _no_fill():
            keep = torch.empty(shape, dtype=dtype, device=device)
        torch.ge(words, threshold, out=keep)  # one pass, straight to 0.0/1.0
    return keep, LEVELS / (LEVELS - dropped)


def dropout_scale(x: Tensor, p: float, training: bool) -> float:
    """The factor that the ``*_unscaled`` functions leave out: ``1/keep_rate`` where bit
    masks apply, else 1."""
    return LEVELS / (LEVELS - round(p * LEVELS)) if bit_dropout_applies(x, p, training) else 1.0


def dropout_unscaled(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``x * mask`` where bit masks apply (the caller owes :func:`dropout_scale`); else ``F.dropout``."""
    if not bit_dropout_applies(x, p, training):
        return F.dropout(x, p, training)
    keep, _ = keep_mask(x.shape, p, x.device, x.dtype)
    return x * keep


class _AddMasked(torch.autograd.Function):
    """``residual + x * mask``: one ``addcmul`` pass forward and one multiply backward.

    (``addcmul``'s own backward first multiplies the mask by its ``value``, even 1: a
    second pass over the activations.)
    """

    @staticmethod
    def forward(ctx, residual: Tensor, x: Tensor, mask: Tensor) -> Tensor:
        ctx.save_for_backward(mask)
        return torch.addcmul(residual, x, mask)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad, grad * mask, None


class _ReluMasked(torch.autograd.Function):
    """``relu(h) * mask`` for a fresh ``h`` (overwritten), whose backward is one pass:
    ``out > 0`` exactly where both the ReLU and the mask let the gradient through."""

    @staticmethod
    def forward(ctx, h: Tensor, mask: Tensor) -> Tensor:
        ctx.mark_dirty(h)
        out = torch.relu_(h).mul_(mask)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, out, 0), None


def relu_dropout_unscaled(h: Tensor, p: float, training: bool = True) -> Tensor:
    """``dropout(relu(h))`` without the scale where bit masks apply (the caller owes
    :func:`dropout_scale`); ``h`` must be a fresh activation that nothing else needs
    (it is overwritten). Else ``F.dropout(relu(h))``."""
    if not bit_dropout_applies(h, p, training):
        return F.dropout(torch.relu_(h), p, training)
    keep, _ = keep_mask(h.shape, p, h.device, h.dtype)
    return _ReluMasked.apply(h, keep)


def dropout_add_unscaled(residual: Tensor, x: Tensor, p: float, training: bool = True) -> Tensor:
    """``residual + x * mask`` in one pass where bit masks apply (the caller owes
    :func:`dropout_scale` on ``x``); else ``residual + F.dropout(x)``."""
    if not bit_dropout_applies(x, p, training):
        return residual + F.dropout(x, p, training)
    keep, _ = keep_mask(x.shape, p, x.device, x.dtype)
    return _AddMasked.apply(residual, x, keep)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Drop-in ``F.dropout(x, p, training)`` with bit masks on eager CPU."""
    scale = dropout_scale(x, p, training)
    dropped = dropout_unscaled(x, p, training)
    return dropped * scale if scale != 1.0 else dropped
