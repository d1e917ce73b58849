"""The MLAD network (paper fig. 2): class features, L MLAD layers (:mod:`.reference`), classifiers."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from .fast import SwitchableImplementation
from .layers import ClassClassifiers, ClassFeatures, PositionalEncoding
from .reference import BRANCHES, MLADLayer


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


def check_input(x: Tensor, mask: Tensor | None, feature_dim: int) -> None:
    """Raise ``ValueError`` naming the expected shape when ``x``/``mask`` are malformed."""
    if x.ndim != 3 or x.shape[-1] != feature_dim:
        raise ValueError(f"expected features of shape (B, T, {feature_dim}), got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"expected features of shape (B, T, F) with B, T >= 1, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):  # the weights' dtypes; x.float() casts
        raise ValueError(f"expected float32 (or float16/bfloat16) features, got {x.dtype}")
    if mask is not None and (mask.shape != x.shape[:2] or mask.dtype != torch.bool):
        raise ValueError(f"expected a bool mask of shape {tuple(x.shape[:2])} (B, T), got {mask.dtype} {tuple(mask.shape)}")
    if not torch.compiler.is_compiling():  # a data-dependent check would break the graph
        # one reduction pass (min and max propagate NaN, and any inf is an extreme); an
        # isfinite() mask would write a bool per element and read it back
        if not torch.isfinite(torch.stack(torch.aminmax(x))).all():
            raise ValueError(f"features of shape {tuple(x.shape)} contain NaN or infinite values")
        if mask is not None and not mask.any(dim=1).all():
            raise ValueError("every sequence needs at least one valid (unpadded) step in its mask")


class MLAD(SwitchableImplementation, nn.Module):
    """The MLAD network: class features (eq. 1), L MLAD layers, classifiers (eq. 7).

    ``forward(x (B, T, F), mask (B, T) or None)`` returns :class:`ModelOutput` with the
    final logits and the initial logits (classifiers on the class features, trained with
    their own loss as in the paper). The layers are :class:`.reference.MLADLayer`: eq. 6
    ``g = a f' + (1 - a) f''`` merging a co-occurrence and a temporal attention branch.

    ``num_layers=0`` is the paper's CF baseline (one classifier, no initial head);
    ``branches=("cb",)`` / ``("tb",)`` the one-branch ablations; ``alpha=0.5`` the
    fixed-merge ablation of table S2. The public release's quirks are options:
    ``attention_out_relu``, ``alpha_branch="tb"``, ``input_dropout`` (dropout on the
    features after the positional encoding), ``pe_max_len`` (a stored table).

    ``positional_scale``: ``"auto"`` (default) scales the sinusoidal table to the running
    RMS ``r`` of the input features and divides the sum by ``r`` (see
    :class:`.layers.PositionalEncoding`), so that small features (L2-normalised ones) are
    not drowned by positions of amplitude 1 and train as unit-scale ones do; ``1.0`` adds
    the table as is, as the public release does.

    ``implementation``: ``"reference"`` (default) runs the textbook code of
    :mod:`.reference`; ``"fast"`` the CPU speed path of :mod:`.fast`, the same function
    (tested equal). :attr:`implementation` can be changed on a built model.
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 5,
        branches: Sequence[str] = BRANCHES,
        alpha: str | float = "learned",
        num_heads: int = 1,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        positional_encoding: bool = True,
        pe_max_len: int | None = None,
        attention_out_relu: bool = False,
        alpha_branch: str = "cb",
        *,
        input_dropout: float = 0.0,
        positional_scale: str | float = "auto",
        implementation: str = "reference",
    ) -> None:
        super().__init__()
        if num_classes < 1 or feature_dim < 1 or hidden_dim < 1 or num_layers < 0:
            raise ValueError(
                f"need num_classes, feature_dim, hidden_dim >= 1 and num_layers >= 0; got "
                f"{num_classes}, {feature_dim}, {hidden_dim}, {num_layers}"
            )
        if not 0.0 <= input_dropout < 1.0:
            raise ValueError(f"input_dropout must be in [0, 1), got {input_dropout}")
        self.num_classes, self.feature_dim, self.hidden_dim = num_classes, feature_dim, hidden_dim
        self.positional_encoding = (
            PositionalEncoding(feature_dim, pe_max_len, positional_scale) if positional_encoding else None
        )
        self.input_dropout = nn.Dropout(input_dropout)
        self.class_features = ClassFeatures(num_classes, feature_dim, hidden_dim)
        self.layers = nn.ModuleList(
            MLADLayer(hidden_dim, branches, alpha, num_heads, ff_dim, dropout, attention_dropout,
                      attention_out_relu, alpha_branch)
            for _ in range(num_layers)
        )
        self.initial_classifier = ClassClassifiers(num_classes, hidden_dim) if num_layers > 0 else None
        self.classifier = ClassClassifiers(num_classes, hidden_dim)
        self.implementation = implementation

    def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False) -> ModelOutput:
        check_input(x, mask, self.feature_dim)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x, mask)  # (B, T, F)
        x = self.input_dropout(x)
        f = self.class_features(x)  # (B, T, C, H)
        initial = self.initial_classifier(f) if self.initial_classifier is not None else None
        maps = []
        for layer in self.layers:
            f, layer_maps = layer(f, mask, return_attention)
            maps.append(layer_maps)
        return ModelOutput(self.classifier(f), initial, maps if return_attention else None)
