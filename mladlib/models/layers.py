"""Building blocks of MLAD shared by both implementations: the positional encoding, class
features (eq. 1) and per-class classifiers (eq. 7). The attention block and the MLAD
layer are in :mod:`.reference` (the textbook code) and :mod:`.fast` (the CPU speed path).

Shape letters: B batch, T time steps, C classes, F input feature size, H hidden size.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

#: Length of the positional table a :class:`PositionalEncoding` without ``max_len`` keeps;
#: longer inputs get their table computed for that call (the table is not reallocated).
CACHED_POSITIONS = 512

#: The running RMS of ``positional_scale="auto"`` averages every batch equally over its
#: first 1/MOMENTUM batches, then follows an exponential average with this weight.
RMS_MOMENTUM = 0.01


def sinusoidal_table(length: int, dim: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The transformer's sinusoidal position table, ``(length, dim)``.

    ``pe[t, 2i] = sin(t / 10000^(2i/dim))`` and ``pe[t, 2i+1] = cos(...)``.
    """
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table.to(dtype)


class PositionalEncoding(nn.Module):
    """Adds ``scale *`` sinusoidal positions to input features ``(B, T, F)``.

    Attention over time is blind to order on its own; the positions let the temporal
    branch tell "fall follows jump" from "jump follows fall". The table has amplitude 1 in
    every dimension, so its weight against the evidence depends on the features' scale:
    against features of RMS 0.03 (L2-normalised 1024-d features) it drowns them.

    ``scale="auto"`` scales the table to the running RMS ``r`` of the input features (a
    buffer, ``feature_sq`` holding the mean square, updated in training mode from the
    valid steps only, as BatchNorm keeps its statistics) and divides the sum by ``r``:
    ``(x + r * table) / r``, so positions and evidence stay at the same scale, and the
    layers after it see unit-scale numbers, whatever the features' units. ``scale=1.0``
    is the public release's ``x + table`` (what
    :func:`~mladlib.models.load_official_checkpoint` uses); another float ``s`` adds
    ``s * table``.

    ``streams``: the widths of feature streams concatenated along F (RGB then flow, I3D
    then CLIP), summing to ``dim``. Under ``"auto"`` each stream keeps its own running
    RMS (``feature_sq`` of shape ``(len(streams),)``) and is divided by it, so a stream
    of small numbers is not drowned by a large one; None (or one stream): one RMS.

    In training mode the running RMS changes inside ``forward``. Under data parallelism,
    :func:`mladlib.train.distributed.synchronize_running_scales` sets ``synchronize``:
    each update then all-reduces the batch statistics over the processes, so every rank
    scales by the same RMS and holds the same buffer (as ``nn.SyncBatchNorm`` does).

    With ``max_len=None`` a table of :data:`CACHED_POSITIONS` steps is kept (not saved in
    the state dict) and longer inputs get theirs computed for that call (the table is
    never reallocated); with ``max_len`` set it is a fixed, stored table, as in the
    public release, and longer inputs are refused.
    """

    def __init__(
        self, dim: int, max_len: int | None = None, scale: str | float = 1.0,
        streams: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        number = isinstance(scale, (int, float)) and not isinstance(scale, bool)
        if scale != "auto" and not (number and 0 < float(scale) < math.inf):
            raise ValueError(
                f"positional_scale must be 'auto' or a positive number, got {scale!r}")
        if streams is not None and sum(streams) != dim:
            raise ValueError(f"feature_streams {tuple(streams)} add up to "
                             f"{sum(streams)}, not to the feature size {dim}")
        self.dim, self.max_len = dim, max_len
        self.scale = scale if scale == "auto" else float(scale)
        several = streams is not None and len(streams) > 1
        self.streams = tuple(streams) if several else None
        self.synchronize = False  # all-reduce the running RMS's batch statistics
        self.process_group: Any = None  # for synchronize: None is the default group
        length = CACHED_POSITIONS if max_len is None else max_len
        self.register_buffer("pe", sinusoidal_table(length, dim), persistent=max_len is not None)  # (T_max, F)
        if self.scale == "auto":
            shape = () if self.streams is None else (len(self.streams),)
            # the running mean of x^2 (per stream)
            self.register_buffer("feature_sq", torch.ones(shape))
            self.register_buffer("feature_batches", torch.zeros((), dtype=torch.long))  # batches seen

    def table(self, T: int, x: Tensor) -> Tensor:
        """The first ``T`` rows of the positional table ``(T, F)``, on ``x``'s device and dtype."""
        if T <= self.pe.shape[0]:
            return self.pe[:T].to(x.dtype)
        if self.max_len is not None:
            raise ValueError(
                f"input has T={T} steps but the positional table holds {self.max_len}; "
                "evaluate with windows of at most that length"
            )
        return sinusoidal_table(T, self.dim).to(device=x.device, dtype=x.dtype)

    @torch.no_grad()
    def _update_rms(self, x: Tensor, mask: Tensor | None) -> None:
        """Fold the mean square of ``x``'s valid steps (per stream) into ``feature_sq``;
        ``ValueError`` (the buffer left as it was) when that is outside what float32
        holds: features of 1e20 would make the buffer infinite, of 1e-20 zero, and
        either would erase them."""
        squares = x.detach().double().square()  # float64: no overflow before the check
        if self.streams is None:
            squares = squares.mean(dim=-1)  # (B, T)
        else:  # (S, B, T): each stream's own mean square
            parts = squares.split(self.streams, dim=-1)
            squares = torch.stack([part.mean(dim=-1) for part in parts])
        if self.synchronize and dist.is_available() and dist.is_initialized():
            # each rank's sum of squares and count of valid steps, summed over the ranks
            valid = squares if mask is None else squares * mask
            steps = squares.shape[-2] * squares.shape[-1]
            count = mask.sum() if mask is not None else torch.tensor(steps)
            sums = valid.sum(dim=(-2, -1)).reshape(-1)
            stats = torch.cat([sums, count.to(valid).reshape(1)])
            dist.all_reduce(stats, group=self.process_group)
            batch_sq = stats[:-1] / stats[-1].clamp(min=1)
            batch_sq = batch_sq.reshape(self.feature_sq.shape)
        elif self.streams is None:
            if mask is None:
                batch_sq = squares.mean()
            else:
                batch_sq = (squares * mask).sum() / mask.sum().clamp(min=1)
        elif mask is None:
            batch_sq = squares.mean(dim=(-2, -1))
        else:
            batch_sq = (squares * mask).sum(dim=(-2, -1)) / mask.sum().clamp(min=1)
        limits = torch.finfo(torch.float32)
        for mean_sq in batch_sq.reshape(-1).tolist():
            if not (mean_sq == 0 or limits.tiny <= mean_sq <= limits.max):
                raise ValueError(f"features of RMS {mean_sq ** 0.5:.3g} are outside the "
                                 "range that positional_scale='auto' can follow in float32 "
                                 "(about 1e-19 to 1e19); rescale the features")
        batch_sq = batch_sq.float()
        weight = torch.clamp(1.0 / (self.feature_batches + 1).float(), min=RMS_MOMENTUM)
        self.feature_sq.lerp_(batch_sq, weight)
        self.feature_batches += 1

    def amplitude(self) -> Tensor | float:
        """The positions' amplitude relative to the features: ``scale``, or for
        ``"auto"`` the running RMS (a scalar, or one per stream)."""
        return self.feature_sq.sqrt() if self.scale == "auto" else self.scale

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x (B, T, F)``, ``mask (B, T)`` True on valid steps (only for the running RMS)."""
        if self.scale == "auto" and self.training:
            self._update_rms(x, mask)
        table = self.table(x.shape[1], x)
        if self.scale == "auto":
            # (x + rms * table) / rms: positions at the features' scale, the sum at unit
            # scale, so the layers after it see the same numbers whatever the features' units
            rms = self.amplitude().clamp(min=1e-12)
            if self.streams is not None:  # (S,) -> (F,): each stream's RMS on its dims
                widths = torch.tensor(self.streams, device=rms.device)
                rms = rms.repeat_interleave(widths, output_size=self.dim)
            return x / rms + table
        return x + self.scale * table  # 1.0 * table is the table exactly


class ClassFeatures(nn.Module):
    """Eq. 1, ``f_{t,c} = ReLU(W_c^T x_t + b_c)``, for all C classes as one GEMM.

    ``(B, T, F) -> (B, T, C, H)``. The C per-class matrices ``W_c (F, H)`` are stored
    stacked as one ``(C*H, F)`` weight, so one ``F.linear`` computes every class.
    """

    def __init__(self, num_classes: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.num_classes, self.hidden_dim = num_classes, hidden_dim
        # fan-in F, as one W_c alone
        stacked = nn.Linear(feature_dim, num_classes * hidden_dim)
        self.weight = stacked.weight  # (C*H, F)
        self.bias = stacked.bias  # (C*H,)

    def forward(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        f = F.relu(F.linear(x, self.weight, self.bias))  # (B, T, C*H)
        return f.view(B, T, self.num_classes, self.hidden_dim)


class ClassClassifiers(nn.Module):
    """Eq. 7 without the sigmoid: one ``W_c (H,)`` and ``b_c`` per class, batched.

    ``(B, T, C, H) -> (B, T, C)`` logits; ``torch.sigmoid`` gives the probabilities.
    """

    def __init__(self, num_classes: int, hidden_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_dim)  # nn.Linear(H, 1)'s default init
        weight = torch.empty(num_classes, hidden_dim).uniform_(-bound, bound)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))

    def forward(self, g: Tensor) -> Tensor:
        return torch.einsum("btch,ch->btc", g, self.weight) + self.bias
