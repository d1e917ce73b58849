"""The fast path: the same functions as :mod:`.reference`, with CPU speed tricks.

Every trick here was measured faster on 2 CPU cores (``benchmarks/bench_model.py``); on
CUDA and under ``torch.compile`` the code falls back to ``F.linear``, fused
``scaled_dot_product_attention`` and ``F.dropout``. The classes subclass their reference
counterparts, can be built on their own, and add no parameter or buffer, so a state dict
loads into either. A model picks its classes once, at construction, from :data:`BLOCKS`;
to run a built model on the other path, build the other and load its state dict
(:func:`mladlib.models.with_implementation`). ``tests/test_reference.py`` checks every
path against the reference: outputs and every parameter gradient, in eval and in
training with the same dropout masks.

The tricks:

* dropout masks from raw random bits (:mod:`.dropout`), their ``1/keep`` factors folded
  into neighbouring ``H x H`` weights instead of a pass over the activations;
* attention through ``scaled_dot_product_attention`` (fused kernels) except where
  :func:`explicit_attention` says otherwise: the weights are asked for, or attention
  dropout runs on eager CPU (PyTorch's CPU kernels have no fused dropout); there it is
  computed explicitly with bit-mask dropout, and with one head the four projections
  merge into two (:meth:`AttentionBlock._merged_attention`);
* ``1/sqrt(d)`` and eq. 6's ``a`` and ``1 - a`` folded into ``H``-sized weights (the
  query rows, each branch's last LayerNorm gain and bias), so the merge is a plain sum;
* ReLUs in place on fresh GEMM outputs, a residual and its dropout as one ``addcmul``,
  custom autograd functions whose backward is one pass, and :func:`linear_2d`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import layers, reference
from .dropout import (
    bit_dropout_applies,
    dropout,
    dropout_add_unscaled,
    dropout_scale,
    dropout_unscaled,
    relu_dropout_unscaled,
)


def explicit_attention(
    x: Tensor, p_attn: float, training: bool, need_weights: bool
) -> bool:
    """The one rule choosing the fast block's attention path for input ``x``: explicit
    (batched GEMMs, a softmax, bit-mask dropout) where the weights are asked for or where
    attention dropout draws bit masks (training on eager CPU:
    :func:`~.dropout.bit_dropout_applies`); fused ``scaled_dot_product_attention``
    everywhere else."""
    return need_weights or bit_dropout_applies(x, p_attn, training)


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


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from random bits on eager CPU (:func:`.dropout.dropout`)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


class ClassFeatures(layers.ClassFeatures):
    """Eq. 1 as one 2-D GEMM (:func:`linear_2d`) and an in-place ReLU."""

    def forward(self, x: Tensor) -> Tensor:
        B, T, F_in = x.shape
        f = linear_2d(x.reshape(B * T, F_in), self.weight, self.bias)  # (B*T, C*H)
        # in place on the 2-D GEMM output itself (its backward does not need it; an
        # in-place op on a view would make autograd copy)
        return torch.relu_(f).view(B, T, self.num_classes, self.hidden_dim)


class AttentionBlock(reference.AttentionBlock):
    """:class:`.reference.AttentionBlock` computed fast (same parameters, same function).

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

    Dropout masks are drawn in the reference's order: attention weights, attention output,
    feed-forward hidden, feed-forward output.
    """

    def _context(
        self, x2d: Tensor, N: int, S: int, key_valid: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None, float]:
        """``x2d (N*S, H)`` -> context ``(N*S, H)`` (before the output projection).

        Also the head-mean weights ``(N, S, S)`` if asked, and the dropout scale the
        context still needs. The fused path (any number of heads) and the explicit one
        with several heads; one head computed explicitly goes through
        :meth:`_merged_attention` instead.
        """
        H = x2d.shape[1]
        heads, d = self.num_heads, H // self.num_heads
        p_attn = self.attention_dropout.p if self.training else 0.0
        fused = not explicit_attention(x2d, p_attn, self.training, need_weights)
        weight, bias = self.qkv.weight, self.qkv.bias  # (3H, H), (3H,): Q, K, V rows
        if fused:
            # (N*S, 3H); Q, K, V stay strided views of it
            qkv = linear_2d(x2d, weight, bias)
            # each (N, heads, S, d)
            q, k, v = (
                t.view(N, S, heads, d).transpose(1, 2) for t in qkv.split(H, dim=-1)
            )
            # (N, 1, 1, S): True = attend
            mask = None if key_valid is None else key_valid[:, None, None, :]
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p_attn
            )
            return context.transpose(1, 2).reshape(N * S, H), None, 1.0
        # Three (N*S, H) GEMMs instead of one (N*S, 3H): on CPU they run faster at
        # K = H = 128, and the backward then adds three input gradients instead of
        # concatenating them. 1/sqrt(d) is folded into the query rows.
        q, k, v = (
            linear_2d(
                x2d,
                _scaled(weight[i * H:(i + 1) * H], s),
                _scaled(bias[i * H:(i + 1) * H], s),
            )
            for i, s in enumerate((1.0 / math.sqrt(d), 1.0, 1.0))
        )
        q3, k3, v3 = (
            t.view(N, S, heads, d).transpose(1, 2).reshape(N * heads, S, d)
            for t in (q, k, v)
        )
        scores = torch.bmm(q3, k3.transpose(1, 2))  # (N*heads, S, S)
        if key_valid is not None:
            # (N*heads, 1, S)
            key_valid = key_valid.repeat_interleave(heads, dim=0)[:, None, :]
            # in place: bmm's backward does not need its output
            scores.masked_fill_(~key_valid, float("-inf"))
        weights = scores.softmax(dim=-1)
        dropped = dropout_unscaled(weights, p_attn, self.training)
        context = torch.bmm(dropped, v3)  # (N*heads, S, d)
        context = context.view(N, heads, S, d).transpose(1, 2).reshape(N * S, H)
        mean_weights = weights.view(N, heads, S, S).mean(dim=1) if need_weights else None
        return context, mean_weights, dropout_scale(x2d, p_attn, self.training)

    def _attention(
        self, x2d: Tensor, N: int, S: int, key_valid: Tensor | None, need_weights: bool, out_scale: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """``x2d (N*S, H)`` -> ``out_scale *`` the projected attention output ``(N*S, H)``
        (ReLU'd if ``out_relu``) and the head-mean weights ``(N, S, S)`` if asked."""
        p_attn = self.attention_dropout.p if self.training else 0.0
        explicit = explicit_attention(x2d, p_attn, self.training, need_weights)
        if explicit and self.num_heads == 1:
            return self._merged_attention(x2d, N, S, key_valid, need_weights, out_scale)
        context, weights, scale = self._context(x2d, N, S, key_valid, need_weights)
        return self._project(context, scale, out_scale), weights

    def _merged_attention(
        self,
        x2d: Tensor,
        N: int,
        S: int,
        key_valid: Tensor | None,
        need_weights: bool,
        out_scale: float,
    ) -> tuple[Tensor, Tensor | None]:
        """One-head attention with its four projections merged into two ``H x H`` maps.

        With ``q = x W_q^T + b_q`` etc., the score ``q_i . k_j / sqrt(H)`` equals
        ``(x_i M_qk + w) . x_j`` plus terms of the query ``i`` alone, which the softmax
        over ``j`` cancels: ``M_qk = W_q^T W_k / sqrt(H)``, ``w = W_k^T b_q / sqrt(H)``.
        Likewise ``Attn V W_o^T = Attn (x M_vo + c)`` with ``M_vo = W_v^T W_o^T``,
        ``c = b_v W_o^T``. Same parameters, same function, but two
        ``(N*S, H) x (H, H)`` GEMMs instead of four (forward, and twice that backward),
        and the keys are ``x`` itself. ``b_k`` cancels from the scores, so its gradient
        is exactly zero here instead of rounding noise.
        """
        H = x2d.shape[1]
        p_attn = self.attention_dropout.p if self.training else 0.0
        # each (H, H), nn.Linear layout (out, in)
        w_q, w_k, w_v = self.qkv.weight.split(H)
        b_q, b_v = self.qkv.bias[:H], self.qkv.bias[2 * H:]
        root = math.sqrt(H)
        m_qk = w_k.t().mm(w_q).div_(root)
        queries = linear_2d(x2d, m_qk, w_k.t().mv(b_q).div_(root))  # (N*S, H)
        # (N, S, S)
        scores = _BatchedNT.apply(queries.view(N, S, H), x2d.view(N, S, H))
        if key_valid is not None:
            # in place: its backward does not need it
            scores.masked_fill_(~key_valid[:, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        # folded into M_vo and c
        scale = dropout_scale(x2d, p_attn, self.training) * out_scale
        w_o = self.out.weight  # (H, H)
        m_vo = _scaled(w_v.t().mm(w_o.t()), scale)  # (H, H)
        # (N*S, H): values already projected
        z = torch.mm(x2d, m_vo).add_(_scaled(w_o.mv(b_v), scale))
        dropped = dropout_unscaled(weights, p_attn, self.training)
        attn = torch.bmm(dropped, z.view(N, S, H))  # (N, S, H)
        # In place on the bmm output itself: neither bmm's nor add's backward needs it.
        # On a view, autograd would copy.
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

    def forward(
        self,
        x: Tensor,
        key_valid: Tensor | None = None,
        need_weights: bool = False,
        out_scale: Tensor | float | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """As :meth:`.reference.AttentionBlock.forward`; ``out_scale`` (a scalar) multiplies
        the output, folded into the last LayerNorm's affine weights (MLAD weights its two
        branches by ``a`` and ``1 - a``)."""
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


class MLADLayer(reference.MLADLayer):
    """:class:`.reference.MLADLayer` computed fast: eq. 6's ``a`` and ``1 - a`` are folded
    into each branch's last LayerNorm (``H`` numbers, not a pass over ``(B, T, C, H)``), so
    the merge is a plain sum."""

    Block = AttentionBlock

    def forward(
        self, f: Tensor, mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        B, T, C, H = f.shape
        maps: dict[str, Tensor] = {}
        branch_weight: dict[str, Tensor | None] = {"cb": None, "tb": None}
        if len(self.branches) == 2:
            a = self.alpha
            branch_weight["cb"], branch_weight["tb"] = a, 1 - a
        merged = None
        if self.cb is not None:
            f_cb, w = self.cb(f.reshape(B * T, C, H), None, need_weights, branch_weight["cb"])
            merged = f_cb.view(B, T, C, H)
            if w is not None:
                maps["cb"] = w.view(B, T, C, C)
        if self.tb is not None:
            key_valid = None if mask is None else mask[:, None, :].expand(B, C, T).reshape(B * C, T)
            f_tb, w = self.tb(f.transpose(1, 2).reshape(B * C, T, H), key_valid, need_weights, branch_weight["tb"])
            f_tb = f_tb.view(B, C, T, H).transpose(1, 2)
            merged = f_tb if merged is None else merged + f_tb
            if w is not None:
                maps["tb"] = w.view(B, C, T, T)
        return merged, maps


class Blocks(NamedTuple):
    """The classes a model of one implementation is built from."""

    class_features: type[layers.ClassFeatures]
    attention_block: type[reference.AttentionBlock]
    mlad_layer: type[reference.MLADLayer]
    dropout: type[nn.Dropout]


#: implementation -> its classes: the one place a model's code path is chosen.
BLOCKS: dict[str, Blocks] = {
    "reference": Blocks(
        layers.ClassFeatures, reference.AttentionBlock, reference.MLADLayer, nn.Dropout),
    "fast": Blocks(ClassFeatures, AttentionBlock, MLADLayer, Dropout),
}
