"""Building blocks of MLAD: positional encoding, class features (eq. 1),
per-class classifiers (eq. 7) and the attention block each MLAD branch uses (eq. 2-5).

Shape letters: B batch, T time steps, C classes, F input feature size, H hidden size,
N a flattened batch of sequences, S the attended axis (C for the co-occurrence
branch, T for the temporal branch, C*T for the full-attention baseline).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
    """Adds sinusoidal positions to input features ``(B, T, F)``.

    Attention over time is blind to order on its own; the positions let the temporal
    branch tell "fall follows jump" from "jump follows fall". With ``max_len=None`` the
    table grows on demand (any T); with ``max_len`` set it is a fixed, stored table, as in
    the public release, and longer inputs are refused.
    """

    def __init__(self, dim: int, max_len: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.max_len = max_len
        if max_len is None:
            self.register_buffer("pe", sinusoidal_table(0, dim), persistent=False)
        else:
            self.register_buffer("pe", sinusoidal_table(max_len, dim), persistent=True)

    def forward(self, x: Tensor) -> Tensor:
        T = x.shape[1]
        if T > self.pe.shape[0]:
            if self.max_len is not None:
                raise ValueError(
                    f"input has T={T} steps but the positional table holds {self.max_len}; "
                    "evaluate with windows of at most that length"
                )
            self.pe = sinusoidal_table(max(T, 2 * self.pe.shape[0]), self.dim).to(x.device)
        return x + self.pe[:T].to(x.dtype)


class ClassFeatures(nn.Module):
    """Eq. 1, ``f_{t,c} = ReLU(W_c^T x_t + b_c)``, for all C classes as one GEMM.

    ``(B, T, F) -> (B, T, C, H)``. The C per-class matrices ``W_c (F, H)`` are stored
    stacked as one ``(C*H, F)`` weight, so one ``F.linear`` computes every class.
    """

    def __init__(self, num_classes: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.num_classes, self.hidden_dim = num_classes, hidden_dim
        stacked = nn.Linear(feature_dim, num_classes * hidden_dim)  # fan-in F, as one W_c alone
        self.weight = stacked.weight  # (C*H, F)
        self.bias = stacked.bias  # (C*H,)

    def forward(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        f = F.linear(x, self.weight, self.bias)  # (B, T, C*H)
        return F.relu(f).view(B, T, self.num_classes, self.hidden_dim)


class ClassClassifiers(nn.Module):
    """Eq. 7 without the sigmoid: one ``W_c (H,)`` and ``b_c`` per class, as one batched op.

    ``(B, T, C, H) -> (B, T, C)`` logits; ``torch.sigmoid`` gives the probabilities.
    """

    def __init__(self, num_classes: int, hidden_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_dim)  # nn.Linear(H, 1)'s default init
        self.weight = nn.Parameter(torch.empty(num_classes, hidden_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))

    def forward(self, g: Tensor) -> Tensor:
        return torch.einsum("btch,ch->btc", g, self.weight) + self.bias


class AttentionBlock(nn.Module):
    """Self-attention over the S axis of ``(N, S, H)``, as a post-norm transformer sublayer.

    ``softmax(Q K^T / sqrt(H)) V`` (eq. 2-5, one head by default) computed with
    ``scaled_dot_product_attention``, then the residual, LayerNorm and feed-forward block
    that the public code adds and that lets five stacked layers train::

        a = Attn(x);  x = LN1(x + Dropout(a));  x = LN2(x + Dropout(W2 Dropout(ReLU(W1 x))))

    Options reproduce the public release's quirks: ``out_relu`` (a ReLU after the output
    projection) and ``attention_dropout`` (dropout on the attention weights).
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 1,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        out_relu: bool = False,
    ) -> None:
        super().__init__()
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}")
        ff_dim = hidden_dim if ff_dim is None else ff_dim
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)  # Q, K, V projections fused: one GEMM
        self.out = nn.Linear(hidden_dim, hidden_dim)
        self.linear1 = nn.Linear(hidden_dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, hidden_dim)
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = attention_dropout
        self.out_relu = out_relu

    def attend(self, x: Tensor, key_valid: Tensor | None, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """Attention alone: ``(N, S, H)`` -> ``(N, S, H)`` and, if asked, weights ``(N, S, S)``."""
        N, S, H = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(N, S, 3, heads, H // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (N, heads, S, H/heads)
        mask = None if key_valid is None else key_valid[:, None, None, :]  # (N, 1, 1, S): True = attend
        p_drop = self.attention_dropout if self.training else 0.0
        if need_weights:
            scores = q @ k.transpose(-1, -2) / math.sqrt(H // heads)  # (N, heads, S, S)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            attn = F.dropout(weights, p_drop, self.training) @ v
            mean_weights = weights.mean(dim=1)  # (N, S, S), averaged over heads
        else:
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop)
            mean_weights = None
        attn = self.out(attn.transpose(1, 2).reshape(N, S, H))
        if self.out_relu:
            attn = F.relu(attn)
        return attn, mean_weights

    def forward(
        self, x: Tensor, key_valid: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``x (N, S, H)``; ``key_valid (N, S)`` bool, False for padded keys."""
        attn, weights = self.attend(x, key_valid, need_weights)
        x = self.norm1(x + self.dropout(attn))
        ff = self.linear2(self.dropout(F.relu(self.linear1(x))))
        x = self.norm2(x + self.dropout(ff))
        return x, weights
