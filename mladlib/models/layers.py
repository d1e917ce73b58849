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

from .dropout import (
    bit_dropout_applies,
    dropout_add_unscaled,
    dropout_scale,
    dropout_unscaled,
    relu_dropout_unscaled,
)


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
        B, T, F_in = x.shape
        f = linear_2d(x.reshape(B * T, F_in), self.weight, self.bias)  # (B*T, C*H)
        # in place on the 2-D GEMM output itself (its backward does not need it; an
        # in-place op on a view would make autograd copy)
        return torch.relu_(f).view(B, T, self.num_classes, self.hidden_dim)


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


def linear_2d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear`` for a 2-D ``x (M, K)`` with ``weight (N, K)``: ``(M, N)``.

    On eager CPU as a plain GEMM and an in-place bias add: ``addmm`` first copies the
    broadcast bias into its output and has the GEMM read it back, which measured about
    25% slower at MLAD's sizes (M = 33280, K = N = 128). Elsewhere ``F.linear`` itself:
    CUDA fuses the bias into the GEMM, inductor fuses it too, and under CPU bf16 autocast
    the separate add of an fp32 bias measured slower.
    """
    cpu_fp32 = x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
    if bias is None or not cpu_fp32 or torch.compiler.is_compiling():
        return F.linear(x, weight, bias)
    return torch.mm(x, weight.t()).add_(bias)  # in place: mm's backward does not need its output


class _BatchedNT(torch.autograd.Function):
    """``a @ b^T`` for ``a (N, S, H)``, ``b (N, S', H)``: ``(N, S, S')``, with both
    gradients computed straight into the inputs' own layout. (``torch.bmm(a,
    b.transpose(1, 2))`` hands ``b`` a transposed gradient, which a later ``view`` must copy.)"""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return torch.bmm(a, b.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        a, b = ctx.saved_tensors
        return torch.bmm(grad, b), torch.bmm(grad.transpose(1, 2), a)


def _scaled(t: Tensor | None, scale: float | Tensor) -> Tensor | None:
    """``t * scale`` for a small parameter; ``t`` itself when the scale is the number 1."""
    if t is None or (isinstance(scale, float) and scale == 1.0):
        return t
    return t * scale


class AttentionBlock(nn.Module):
    """Self-attention over the S axis of ``(N, S, H)``, as a post-norm transformer sublayer.

    ``softmax(Q K^T / sqrt(H)) V`` (eq. 2-5, one head by default), then the residual,
    LayerNorm and feed-forward block that the public code adds and that lets five stacked
    layers train::

        a = Attn(x);  x = LN1(x + Dropout(a));  x = LN2(x + Dropout(W2 Dropout(ReLU(W1 x))))

    Options reproduce the public release's quirks: ``out_relu`` (a ReLU after the output
    projection) and ``attention_dropout`` (dropout on the attention weights).

    Speed (the block is most of an MLAD step; see ``benchmarks/bench_model.py``):

    * attention runs through ``scaled_dot_product_attention`` (fused kernels: flash,
      memory-efficient or cuDNN on CUDA, flash on CPU), except where the weights are asked
      for or when training with attention dropout on eager CPU: PyTorch's CPU kernels have
      no fused dropout and its fallback draws an ``(N, S, S)`` Bernoulli mask per element,
      so there the block computes the attention explicitly, two batched GEMMs and a bit-mask
      dropout (:mod:`.dropout`), and with one head it merges the four projections into two
      (:meth:`_merged_attention`: ``M_qk = W_q^T W_k``, ``M_vo = W_v^T W_o^T``, the same
      function with a third fewer GEMM FLOPs);
    * every scalar factor (``1/sqrt(d)``, the dropout scales, ``out_scale``) is multiplied
      into an ``H``-sized weight instead of an ``(N, S, H)`` activation, which saves a pass
      over the activations forward and another backward for each; a residual and its
      dropout are one ``addcmul`` pass;
    * ReLUs run in place on fresh GEMM outputs (whose backward does not need them), on the
      2-D tensors themselves: an in-place op on a view would make autograd copy; the
      feed-forward ReLU and its dropout share one backward pass.
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
        if not 0.0 <= attention_dropout <= 1.0:
            raise ValueError(f"attention_dropout must be in [0, 1], got {attention_dropout}")
        ff_dim = hidden_dim if ff_dim is None else ff_dim
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)  # Q, K, V projections fused: one GEMM
        self.out = nn.Linear(hidden_dim, hidden_dim)
        self.linear1 = nn.Linear(hidden_dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, hidden_dim)
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)  # holds p; applied through the bit-mask functions of .dropout
        self.attention_dropout = attention_dropout
        self.out_relu = out_relu

    def _context(
        self, x2d: Tensor, N: int, S: int, key_valid: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None, float]:
        """``x2d (N*S, H)`` -> context ``(N*S, H)`` (before the output projection), the
        head-mean weights ``(N, S, S)`` if asked, and the dropout scale the context still needs.

        The fused path (any number of heads) and the explicit one with several heads; one
        head computed explicitly goes through :meth:`_merged_attention` instead."""
        H = x2d.shape[1]
        heads, d = self.num_heads, H // self.num_heads
        p_attn = self.attention_dropout if self.training else 0.0
        fused = not need_weights and not bit_dropout_applies(x2d, p_attn, self.training)
        weight, bias = self.qkv.weight, self.qkv.bias  # (3H, H), (3H,): Q, K, V rows
        if fused:
            qkv = linear_2d(x2d, weight, bias)  # (N*S, 3H); Q, K, V stay strided views of it
            q, k, v = (t.view(N, S, heads, d).transpose(1, 2) for t in qkv.split(H, dim=-1))  # (N, heads, S, d)
            mask = None if key_valid is None else key_valid[:, None, None, :]  # (N, 1, 1, S): True = attend
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_attn)
            return context.transpose(1, 2).reshape(N * S, H), None, 1.0
        # Three (N*S, H) GEMMs instead of one (N*S, 3H): on CPU they run faster at K = H = 128,
        # and the backward then adds three input gradients instead of concatenating them.
        # 1/sqrt(d) is folded into the query rows.
        q, k, v = (
            linear_2d(x2d, _scaled(weight[i * H:(i + 1) * H], s), _scaled(bias[i * H:(i + 1) * H], s))
            for i, s in enumerate((1.0 / math.sqrt(d), 1.0, 1.0))
        )
        q3, k3, v3 = (t.view(N, S, heads, d).transpose(1, 2).reshape(N * heads, S, d) for t in (q, k, v))
        scores = torch.bmm(q3, k3.transpose(1, 2))  # (N*heads, S, S)
        if key_valid is not None:
            key_valid = key_valid.repeat_interleave(heads, dim=0)[:, None, :]  # (N*heads, 1, S)
            scores.masked_fill_(~key_valid, float("-inf"))  # in place: bmm's backward does not need its output
        weights = scores.softmax(dim=-1)
        context = torch.bmm(dropout_unscaled(weights, p_attn, self.training), v3)  # (N*heads, S, d)
        context = context.view(N, heads, S, d).transpose(1, 2).reshape(N * S, H)
        mean_weights = weights.view(N, heads, S, S).mean(dim=1) if need_weights else None
        return context, mean_weights, dropout_scale(x2d, p_attn, self.training)

    def _attention(
        self, x2d: Tensor, N: int, S: int, key_valid: Tensor | None, need_weights: bool, out_scale: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """``x2d (N*S, H)`` -> ``out_scale *`` the projected attention output ``(N*S, H)``
        (ReLU'd if ``out_relu``) and the head-mean weights ``(N, S, S)`` if asked."""
        p_attn = self.attention_dropout if self.training else 0.0
        explicit = need_weights or bit_dropout_applies(x2d, p_attn, self.training)
        if explicit and self.num_heads == 1:
            return self._merged_attention(x2d, N, S, key_valid, need_weights, out_scale)
        context, weights, scale = self._context(x2d, N, S, key_valid, need_weights)
        return self._project(context, scale, out_scale), weights

    def _merged_attention(
        self, x2d: Tensor, N: int, S: int, key_valid: Tensor | None, need_weights: bool, out_scale: float
    ) -> tuple[Tensor, Tensor | None]:
        """One-head attention with its four projections merged into two ``H x H`` maps.

        With ``q = x W_q^T + b_q`` etc., the score ``q_i . k_j / sqrt(H)`` equals
        ``(x_i M_qk + w) . x_j`` plus terms of the query ``i`` alone, which the softmax over
        ``j`` cancels: ``M_qk = W_q^T W_k / sqrt(H)``, ``w = W_k^T b_q / sqrt(H)``. Likewise
        ``Attn V W_o^T = Attn (x M_vo + c)`` with ``M_vo = W_v^T W_o^T``, ``c = b_v W_o^T``.
        Same parameters, same function, but two ``(N*S, H) x (H, H)`` GEMMs instead of four
        (forward, and twice that backward), and the keys are ``x`` itself. ``b_k`` cancels
        from the scores, so its gradient is exactly zero here instead of rounding noise.
        """
        H = x2d.shape[1]
        p_attn = self.attention_dropout if self.training else 0.0
        w_q, w_k, w_v = self.qkv.weight.split(H)  # each (H, H), nn.Linear layout (out, in)
        b_q, b_v = self.qkv.bias[:H], self.qkv.bias[2 * H:]
        root = math.sqrt(H)
        queries = linear_2d(x2d, w_k.t().mm(w_q).div_(root), w_k.t().mv(b_q).div_(root))  # (N*S, H)
        scores = _BatchedNT.apply(queries.view(N, S, H), x2d.view(N, S, H))  # (N, S, S)
        if key_valid is not None:
            scores.masked_fill_(~key_valid[:, None, :], float("-inf"))  # in place: its backward does not need it
        weights = scores.softmax(dim=-1)
        scale = dropout_scale(x2d, p_attn, self.training) * out_scale  # folded into M_vo and c
        w_o = self.out.weight  # (H, H)
        m_vo = _scaled(w_v.t().mm(w_o.t()), scale)  # (H, H)
        z = torch.mm(x2d, m_vo).add_(_scaled(w_o.mv(b_v), scale))  # (N*S, H): values already projected
        attn = torch.bmm(dropout_unscaled(weights, p_attn, self.training), z.view(N, S, H))  # (N, S, H)
        # in place on the bmm output itself (neither bmm's nor add's backward needs it; on
        # a view, autograd would copy)
        attn = attn.add_(_scaled(self.out.bias, out_scale))
        if self.out_relu:
            attn = torch.relu_(attn)
        return attn.view(N * S, H), weights if need_weights else None

    def _project(self, context: Tensor, context_scale: float, out_scale: float = 1.0) -> Tensor:
        """``out_scale * out(context_scale * context)`` ``(N*S, H)`` -> ``(N*S, H)``, then the ReLU
        if ``out_relu`` (``relu(s z) = s relu(z)`` for ``s > 0``)."""
        weight = _scaled(self.out.weight, context_scale * out_scale)
        attn = linear_2d(context, weight, _scaled(self.out.bias, out_scale))
        return torch.relu_(attn) if self.out_relu else attn

    def attend(self, x: Tensor, key_valid: Tensor | None, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """Attention alone: ``(N, S, H)`` -> ``(N, S, H)`` and, if asked, weights ``(N, S, S)``."""
        N, S, H = x.shape
        attn, weights = self._attention(x.reshape(N * S, H), N, S, key_valid, need_weights)
        return attn.view(N, S, H), weights

    def forward(
        self,
        x: Tensor,
        key_valid: Tensor | None = None,
        need_weights: bool = False,
        out_scale: Tensor | float | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``x (N, S, H)``; ``key_valid (N, S)`` bool, False for padded keys.

        ``out_scale`` (a scalar) multiplies the output; it is folded into the last
        LayerNorm's affine weights (MLAD weights its two branches by ``a`` and ``1 - a``).
        """
        N, S, H = x.shape
        x2d = x.reshape(N * S, H)
        p, training = self.dropout.p, self.training
        drop = dropout_scale(x2d, p, training)  # 1/keep_rate where the bit masks leave it out
        attn, weights = self._attention(x2d, N, S, key_valid, need_weights, drop)
        x2d = self.norm1(dropout_add_unscaled(x2d, attn, p, training))
        hidden = relu_dropout_unscaled(linear_2d(x2d, self.linear1.weight, self.linear1.bias), p, training)
        ff = linear_2d(hidden, _scaled(self.linear2.weight, drop * drop), _scaled(self.linear2.bias, drop))
        y = dropout_add_unscaled(x2d, ff, p, training)
        gain, shift = self.norm2.weight, self.norm2.bias
        if out_scale is not None:
            gain, shift = _scaled(gain, out_scale), _scaled(shift, out_scale)
        return F.layer_norm(y, (H,), gain, shift, self.norm2.eps).view(N, S, H), weights
