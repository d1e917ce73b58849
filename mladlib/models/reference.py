"""The textbook MLAD layer (paper section 3.1, eq. 2-6), written to be read beside the paper.

Every step is spelled out the way the Annotated Transformer writes it: the projections,
``softmax(Q K^T / sqrt(d)) V``, the masks, each ``nn.Dropout`` where it applies, the
residual connections, the LayerNorms, the feed-forward block, and eq. 6 as one line.
:mod:`.fast` computes the same functions with CPU speed tricks; both share parameter
names, so a state dict loads into either, and ``tests/test_reference.py`` checks that
they agree (outputs and every gradient, with the same dropout masks).

Shape letters: B batch, T time steps, C classes, H hidden size, N a batch of sequences,
S the attended axis (C for the co-occurrence branch, T for the temporal branch), h heads,
d = H / h the size of one head.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .options import BRANCHES, ModelOptions, make_options


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_valid: Tensor | None = None,
    dropout: nn.Module | None = None,
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention: ``softmax(Q K^T / sqrt(d)) V`` (eq. 2-5).

    ``q, k, v (..., S, d)``; ``key_valid`` bool, broadcastable to ``(..., S, S)``, False
    for keys that must not be attended (padding); ``dropout`` is applied to the weights
    before they mix the values. Returns the context ``(..., S, d)`` and the weights
    ``(..., S, S)`` (before dropout: the attention map a reader inspects).
    """
    d = q.shape[-1]
    # (..., S, S): query i against key j
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if key_valid is not None:
        # exp(-inf) = 0: never attended
        scores = scores.masked_fill(~key_valid, float("-inf"))
    weights = scores.softmax(dim=-1)  # each row sums to 1 over the keys
    mixed = dropout(weights) if dropout is not None else weights
    return mixed @ v, weights


class AttentionBlock(nn.Module):
    """Self-attention over the S axis of ``(N, S, H)`` as a post-norm transformer sublayer.

    Attention (eq. 2-5) followed by the residual, LayerNorm and feed-forward block that
    the public code adds and that lets five stacked layers train::

        a = Attn(x);  x = LN1(x + Dropout(a));  x = LN2(x + Dropout(W2 Dropout(ReLU(W1 x))))

    Options (a :class:`~mladlib.models.ModelOptions`, or its fields as keywords):
    ``hidden_dim``, ``num_heads``, ``ff_dim``, ``dropout``; ``attention_dropout`` drops
    attention weights (the release uses its dropout rate); ``attention_out_relu=True``
    puts the public release's ReLU after the output projection.
    """

    def __init__(self, options: ModelOptions | None = None, **overrides: Any) -> None:
        super().__init__()
        options = make_options(options, overrides)
        H = options.hidden_dim
        self.num_heads, self.out_relu = options.num_heads, options.attention_out_relu
        self.qkv = nn.Linear(H, 3 * H)  # W_q, W_k, W_v stacked: rows [q; k; v]
        self.out = nn.Linear(H, H)  # W_o
        self.linear1 = nn.Linear(H, options.ff_width)  # feed-forward
        self.linear2 = nn.Linear(options.ff_width, H)
        self.norm1 = nn.LayerNorm(H)
        self.norm2 = nn.LayerNorm(H)
        self.attention_dropout = nn.Dropout(options.attention_dropout)  # on the weights
        self.dropout1 = nn.Dropout(options.dropout)  # attention output, before residual
        self.dropout = nn.Dropout(options.dropout)  # in the feed-forward, after its ReLU
        self.dropout2 = nn.Dropout(options.dropout)  # feed-forward output, before residual

    def forward(
        self, x: Tensor, key_valid: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``x (N, S, H)``; ``key_valid (N, S)`` bool, False for padded keys.

        Returns ``(N, S, H)`` and, if ``need_weights``, the weights averaged over heads
        ``(N, S, S)``.
        """
        N, S, H = x.shape
        h = self.num_heads
        d = H // h
        q, k, v = self.qkv(x).split(H, dim=-1)  # each (N, S, H)
        # each (N, h, S, d)
        q, k, v = (t.view(N, S, h, d).transpose(1, 2) for t in (q, k, v))
        # (N, 1, 1, S)
        valid = None if key_valid is None else key_valid[:, None, None, :]
        # (N, h, S, d)
        context, weights = attention(q, k, v, valid, self.attention_dropout)
        context = context.transpose(1, 2).reshape(N, S, H)  # heads side by side again
        a = self.out(context)
        if self.out_relu:
            a = F.relu(a)
        x = self.norm1(x + self.dropout1(a))
        ff = self.linear2(self.dropout(F.relu(self.linear1(x))))
        x = self.norm2(x + self.dropout2(ff))
        return x, weights.mean(dim=1) if need_weights else None


class MLADLayer(nn.Module):
    """One MLAD layer: ``(B, T, C, H) -> (B, T, C, H)``.

    * co-occurrence branch (CB, eq. 2-3): attention over the C classes within each step;
    * temporal branch (TB, eq. 4-5): attention over the T steps within each class;
    * merge (eq. 6): ``g = a f' + (1 - a) f''`` with ``f'`` from CB and ``f''`` from TB,
      ``a = sigmoid(alpha_logit)`` when ``alpha="learned"``, else the fixed float.

    Weights of each branch are shared across steps (CB) and across classes (TB), so the
    layer's size does not depend on C or T: about 200K parameters at H = 128. Options as
    :class:`AttentionBlock`, plus ``branches`` and ``alpha``.
    """

    #: The class of the two branches' blocks (the fast layer builds fast blocks).
    Block: type[AttentionBlock] = AttentionBlock

    def __init__(self, options: ModelOptions | None = None, **overrides: Any) -> None:
        super().__init__()
        options = make_options(options, overrides)
        self.branches = options.branches
        self.cb = self.Block(options) if "cb" in self.branches else None
        self.tb = self.Block(options) if "tb" in self.branches else None
        self.alpha_logit: nn.Parameter | None = None
        if len(self.branches) == 2:
            if options.alpha == "learned":
                self.alpha_logit = nn.Parameter(torch.zeros(()))  # a = 0.5 at start
            else:
                self.register_buffer("fixed_alpha", torch.tensor(float(options.alpha)))

    @property
    def alpha(self) -> Tensor | None:
        """Eq. 6's ``a``, the co-occurrence branch's weight (None with one branch)."""
        if len(self.branches) < 2:
            return None
        return torch.sigmoid(self.alpha_logit) if self.alpha_logit is not None else self.fixed_alpha

    def forward(
        self, f: Tensor, mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``f (B, T, C, H)``, ``mask (B, T)`` True where valid -> ``g (B, T, C, H)``.

        If ``need_weights``, also the maps ``{"cb": (B, T, C, C), "tb": (B, C, T, T)}``.
        """
        B, T, C, H = f.shape
        maps: dict[str, Tensor] = {}
        f_cb = f_tb = None
        if self.cb is not None:
            # every step is its own sequence of C class tokens: (B*T, C, H).
            # Padded steps attend among their own classes and are ignored downstream.
            out, w = self.cb(f.reshape(B * T, C, H), None, need_weights)
            f_cb = out.view(B, T, C, H)
            if w is not None:
                maps["cb"] = w.view(B, T, C, C)
        if self.tb is not None:
            # every class is its own sequence of T step tokens: (B*C, T, H).
            # Padded steps are never attended.
            key_valid = None
            if mask is not None:
                key_valid = mask[:, None, :].expand(B, C, T).reshape(B * C, T)
            f_t = f.transpose(1, 2).reshape(B * C, T, H)
            out, w = self.tb(f_t, key_valid, need_weights)
            f_tb = out.view(B, C, T, H).transpose(1, 2)  # back to (B, T, C, H)
            if w is not None:
                maps["tb"] = w.view(B, C, T, T)
        if f_tb is None:
            return f_cb, maps
        if f_cb is None:
            return f_tb, maps
        a = self.alpha
        g = a * f_cb + (1 - a) * f_tb  # eq. 6
        return g, maps
