"""The MLAD network (paper fig. 2): class features, L MLAD layers, classifiers."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .fast import BLOCKS
from .layers import ClassClassifiers, PositionalEncoding
from .options import ModelOptions, make_options


class ModelOutput(NamedTuple):
    """What every model in :mod:`mladlib.models` returns.

    ``logits (B, T, C)``: final per-frame class logits (after the last MLAD layer).
    ``initial_logits (B, T, C)`` or None: logits of the class features before any MLAD
    layer (the paper's "initial loss", table S3); None for models without that head.
    ``attention``: with ``return_attention=True``, one dict per layer holding
    ``"cb": (B, T, C, C)``, ``"tb": (B, C, T, T)`` (MLAD) or ``"full": (B, CT, CT)``;
    otherwise None.
    """

    logits: Tensor
    initial_logits: Tensor | None = None
    attention: list[dict[str, Tensor]] | None = None


def check_input(
    x: Tensor, mask: Tensor | None, feature_dim: int, dtype: torch.dtype = torch.float32
) -> None:
    """Raise ``ValueError`` naming the expected shape when ``x``/``mask`` are malformed.

    ``dtype``: the model's weights' dtype, which ``x`` must have unless autocast runs on
    ``x``'s device (it then casts both for each GEMM).
    """
    if not isinstance(x, Tensor):
        kind = f"{type(x).__module__}.{type(x).__name__}"
        raise ValueError(f"expected features as a torch.Tensor of shape "
                         f"(B, T, {feature_dim}), got {kind} "
                         "(torch.from_numpy converts an array)")
    shape = tuple(x.shape)
    if x.ndim != 3 or x.shape[-1] != feature_dim:
        raise ValueError(
            f"expected features of shape (B, T, {feature_dim}), got {shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"expected features of shape (B, T, F) with B, T >= 1, got {shape}")
    autocast = x.is_floating_point() and torch.is_autocast_enabled(x.device.type)
    if x.dtype != dtype and not autocast:
        raise ValueError(f"expected {dtype} features (the model's weights' dtype), got "
                         f"{x.dtype}: convert the features, or the model with "
                         f".to({dtype})")
    if mask is not None:
        if not isinstance(mask, Tensor):
            got = type(mask).__name__
        elif mask.shape != x.shape[:2] or mask.dtype != torch.bool:
            got = f"{mask.dtype} {tuple(mask.shape)}"
        else:
            got = None
        if got is not None:
            raise ValueError(
                f"expected a bool mask of shape {tuple(x.shape[:2])} (B, T), got {got}")
    # a data-dependent check would break torch.compile's graph
    if not torch.compiler.is_compiling():
        # one reduction pass (min and max propagate NaN, and any inf is an extreme); an
        # isfinite() mask would write a bool per element and read it back
        if not torch.isfinite(torch.stack(torch.aminmax(x))).all():
            raise ValueError(
                f"features of shape {shape} contain NaN or infinite values")
        if mask is not None and not mask.any(dim=1).all():
            raise ValueError(
                "every sequence needs at least one valid (unpadded) step in its mask")


class BuiltFromOptions:
    """What the models built from :class:`ModelOptions` share: ``options`` (frozen), and
    :attr:`implementation`, fixed at construction."""

    options: ModelOptions

    @property
    def implementation(self) -> str:
        """The code path this model was built with: ``"reference"`` or ``"fast"``."""
        return self.options.implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        raise AttributeError(
            "a model's implementation is fixed when it is built; build one with "
            f"implementation={value!r} and load this one's state dict "
            "(mladlib.models.with_implementation(model, ...) does both)"
        )


class MLAD(BuiltFromOptions, nn.Module):
    """The MLAD network: class features (eq. 1), L MLAD layers, classifiers (eq. 7).

    ``forward(x (B, T, F), mask (B, T) or None)`` returns :class:`ModelOutput` with the
    final logits and the initial logits (classifiers on the class features, trained with
    their own loss as in the paper). The layers are :class:`.reference.MLADLayer`: eq. 6
    ``g = a f' + (1 - a) f''`` merging a co-occurrence and a temporal attention branch.

    Options: a :class:`ModelOptions`, or its fields as keywords (``MLAD(C, F,
    hidden_dim=32, num_layers=2)``), or both (keywords override). ``num_layers=0`` is
    the paper's CF baseline (one classifier, no initial head); ``branches=("cb",)`` /
    ``("tb",)`` the one-branch ablations; ``alpha=0.5`` the fixed-merge ablation of
    table S2. The public release's quirks are options: ``attention_out_relu``,
    ``input_dropout`` (dropout on the features after the positional encoding),
    ``pe_max_len`` (a stored table), ``positional_scale=1.0``; its alpha, which weights
    the temporal branch, loads as ``alpha_logit = -alpha`` (``sigmoid(-a) = 1 -
    sigmoid(a)``).

    ``positional_scale``: ``"auto"`` (default) scales the sinusoidal table to the
    running RMS ``r`` of the input features and divides the sum by ``r`` (see
    :class:`.layers.PositionalEncoding`; per stream with ``feature_streams``), so that
    small features (L2-normalised ones) are not drowned by positions of amplitude 1 and
    train as unit-scale ones do; ``1.0`` adds the table as is, as the public release
    does.

    ``implementation``: ``"reference"`` (default) builds the textbook code of
    :mod:`.reference`; ``"fast"`` the CPU speed path of :mod:`.fast`, the same function
    (tested equal), from :data:`.fast.BLOCKS`. It is fixed at construction; the state
    dict loads into either.
    """

    def __init__(
        self, num_classes: int, feature_dim: int, options: ModelOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        sizes = (num_classes, feature_dim)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in sizes) or (
                min(sizes) < 1):
            raise ValueError("need num_classes and feature_dim >= 1, "
                             f"got {num_classes!r} and {feature_dim!r}")
        self.options = options = make_options(options, overrides)
        blocks = BLOCKS[options.implementation]
        C, F, H, L = num_classes, feature_dim, options.hidden_dim, options.num_layers
        self.num_classes, self.feature_dim, self.hidden_dim = C, F, H
        self.positional_encoding = None
        if options.positional_encoding:
            self.positional_encoding = PositionalEncoding(
                F, options.pe_max_len, options.positional_scale,
                options.feature_streams)
        self.input_dropout = blocks.dropout(options.input_dropout)
        self.class_features = blocks.class_features(C, F, H)
        self.layers = nn.ModuleList(blocks.mlad_layer(options) for _ in range(L))
        self.initial_classifier = ClassClassifiers(C, H) if L else None
        self.classifier = ClassClassifiers(C, H)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> ModelOutput:
        check_input(x, mask, self.feature_dim, self.classifier.weight.dtype)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x, mask)  # (B, T, F)
        x = self.input_dropout(x)
        f = self.class_features(x)  # (B, T, C, H)
        head = self.initial_classifier
        initial = head(f) if head is not None else None
        maps = []
        for layer in self.layers:
            f, layer_maps = layer(f, mask, return_attention)
            maps.append(layer_maps)
        maps = maps if return_attention else None
        return ModelOutput(self.classifier(f), initial, maps)
