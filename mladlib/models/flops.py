"""Analytic matmul FLOP counts of MLAD and the CT x CT baseline, forward and training step.

The step of both models is dominated by GEMMs (projections, feed-forward, ``Q K^T`` and
``A V``), so counting their FLOPs and dividing by a measured step time gives the fraction
of the machine's matmul throughput a step sustains (``benchmarks/bench_model.py``).

Conventions: a ``(m, k) @ (k, n)`` product is ``2 m k n`` FLOPs; elementwise work
(softmax, LayerNorm, dropout, biases) is not counted. A training step (forward and
backward) costs three times the forward GEMMs (forward; gradient of the input; gradient
of the weight), except the first GEMM, the class features of eq. 1, whose input is data
and needs no gradient: that one costs twice its forward. Multi-head attention has the
same count as one head of the full width.

``merged=True`` counts what the fast path's explicit one-head attention,
:meth:`mladlib.models.fast.AttentionBlock._merged_attention`, really runs (where
:func:`mladlib.models.fast.explicit_attention` chooses it: eager CPU training with
attention dropout, or attention maps asked for): its Q/K and V/output projections merged
into two ``H x H`` maps (two ``(tokens, H) x (H, H)`` GEMMs per block instead of four,
plus two ``H x H x H`` products to merge the weights). The reference path, and the fast
one elsewhere, run the unmerged count. The default counts the network as the paper
defines it; that is the count the benchmarks divide by a step's time, whatever path ran.
"""

from __future__ import annotations


def attention_block_flops(
    tokens: int,
    seq_len: int,
    hidden_dim: int,
    ff_dim: int | None = None,
    merged: bool = False,
) -> int:
    """Forward GEMM FLOPs of one :class:`~mladlib.models.AttentionBlock` over ``tokens``
    tokens grouped into sequences of ``seq_len``: Q/K/V and output projections (or, with
    ``merged``, the two merged maps and the two products that make them), ``Q K^T`` and
    ``A V``, and the two feed-forward layers."""
    ff_dim = hidden_dim if ff_dim is None else ff_dim
    if merged:
        projections = (
            2 * tokens * hidden_dim * (2 * hidden_dim) + 2 * (2 * hidden_dim**3)
        )
    else:
        projections = 2 * tokens * hidden_dim * (3 * hidden_dim + hidden_dim)
    # (S x H)(H x S) and (S x S)(S x H) per sequence
    attention = 2 * 2 * tokens * seq_len * hidden_dim
    feed_forward = 2 * 2 * tokens * hidden_dim * ff_dim
    return projections + attention + feed_forward


def _class_features_and_heads(B: int, T: int, C: int, F: int, H: int, layers: int) -> tuple[int, int]:
    """(forward FLOPs of eq. 1's GEMM, forward FLOPs of the classifiers)."""
    class_features = 2 * B * T * F * C * H
    heads = 2 * B * T * C * H * (2 if layers > 0 else 1)  # initial and final classifiers
    return class_features, heads


def mlad_forward_flops(
    B: int, T: int, C: int, F: int, H: int = 128, L: int = 5,
    ff_dim: int | None = None, branches: tuple[str, ...] = ("cb", "tb"), merged: bool = False,
) -> int:
    """Forward GEMM FLOPs of :class:`~mladlib.models.MLAD` on a batch ``(B, T, F)``.

    Per layer: the co-occurrence branch attends over C classes in each of ``B*T`` steps,
    the temporal branch over T steps in each of ``B*C`` class sequences; both see all
    ``B*T*C`` tokens.
    """
    class_features, heads = _class_features_and_heads(B, T, C, F, H, L)
    tokens = B * T * C
    per_layer = 0
    if "cb" in branches:
        per_layer += attention_block_flops(tokens, C, H, ff_dim, merged)
    if "tb" in branches:
        per_layer += attention_block_flops(tokens, T, H, ff_dim, merged)
    return class_features + heads + L * per_layer


def mlad_train_flops(
    B: int, T: int, C: int, F: int, H: int = 128, L: int = 5,
    ff_dim: int | None = None,
    branches: tuple[str, ...] = ("cb", "tb"),
    merged: bool = False,
) -> int:
    """GEMM FLOPs of one MLAD training step (forward + backward) on ``(B, T, F)``.

    ``3 x forward`` minus the input gradient of the class-feature GEMM, which is not
    computed: at the MultiTHUMOS configuration (C=65, T=128, F=2048, H=128, L=5) and
    B=4, 3 x 99.3 - 17.4 = 280.5 GFLOP.
    """
    class_features, _ = _class_features_and_heads(B, T, C, F, H, L)
    forward = mlad_forward_flops(B, T, C, F, H, L, ff_dim, branches, merged)
    return 3 * forward - class_features


def full_attention_forward_flops(
    B: int, T: int, C: int, F: int, H: int = 128, L: int = 1, ff_dim: int | None = None, merged: bool = False
) -> int:
    """Forward GEMM FLOPs of :class:`~mladlib.models.FullAttentionBaseline`: L attention
    blocks over all ``C*T`` class-time tokens of each window (``(C*T)^2`` attention)."""
    class_features, heads = _class_features_and_heads(B, T, C, F, H, L)
    return class_features + heads + L * attention_block_flops(B * T * C, T * C, H, ff_dim, merged)


def full_attention_train_flops(
    B: int, T: int, C: int, F: int, H: int = 128, L: int = 1, ff_dim: int | None = None, merged: bool = False
) -> int:
    """GEMM FLOPs of one CT x CT baseline training step: ``3 x forward`` minus the
    class-feature input gradient, as :func:`mlad_train_flops`."""
    class_features, _ = _class_features_and_heads(B, T, C, F, H, L)
    return 3 * full_attention_forward_flops(B, T, C, F, H, L, ff_dim, merged) - class_features
