"""The baselines the paper compares MLAD with (tables 1, 5, S2, S4), same interface as MLAD,
and :func:`build_model`, which names every variant."""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn

from .fast import SwitchableImplementation
from .layers import ClassClassifiers, ClassFeatures, PositionalEncoding
from .mlad import MLAD, ModelOutput, check_input
from .reference import AttentionBlock


class LinearBaseline(nn.Module):
    """The paper's "I3D baseline": one linear layer ``(F -> C)`` applied to each step."""

    def __init__(
        self, num_classes: int, feature_dim: int, positional_encoding: bool = False, *,
        positional_scale: str | float = "auto",
    ) -> None:
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.positional_encoding = (
            PositionalEncoding(feature_dim, scale=positional_scale) if positional_encoding else None
        )
        self.linear = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False) -> ModelOutput:
        check_input(x, mask, self.feature_dim)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x, mask)
        return ModelOutput(self.linear(x), None, [] if return_attention else None)


class FullAttentionBaseline(SwitchableImplementation, nn.Module):
    """The supplement's CT x CT baseline (section 5, table S4).

    Class features as in MLAD, then L attention blocks over all C*T class-time tokens of a
    window at once (time-major order: token ``t*C + c``), then the classifiers. Memory
    grows with ``(C*T)^2`` per layer without fused attention kernels.
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 1,
        num_heads: int = 1,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        positional_encoding: bool = True,
        *,
        positional_scale: str | float = "auto",
        implementation: str = "reference",
    ) -> None:
        super().__init__()
        self.num_classes, self.feature_dim, self.hidden_dim = num_classes, feature_dim, hidden_dim
        self.positional_encoding = (
            PositionalEncoding(feature_dim, scale=positional_scale) if positional_encoding else None
        )
        self.class_features = ClassFeatures(num_classes, feature_dim, hidden_dim)
        self.layers = nn.ModuleList(
            AttentionBlock(hidden_dim, num_heads, ff_dim, dropout, attention_dropout) for _ in range(num_layers)
        )
        self.initial_classifier = ClassClassifiers(num_classes, hidden_dim) if num_layers > 0 else None
        self.classifier = ClassClassifiers(num_classes, hidden_dim)
        self.implementation = implementation

    def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False) -> ModelOutput:
        check_input(x, mask, self.feature_dim)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x, mask)
        f = self.class_features(x)  # (B, T, C, H)
        B, T, C, H = f.shape
        initial = self.initial_classifier(f) if self.initial_classifier is not None else None
        key_valid = None if mask is None else mask[:, :, None].expand(B, T, C).reshape(B, T * C)
        tokens = f.reshape(B, T * C, H)
        maps = []
        for layer in self.layers:
            tokens, w = layer(tokens, key_valid, return_attention)
            if return_attention:
                maps.append({"full": w})
        logits = self.classifier(tokens.view(B, T, C, H))
        return ModelOutput(logits, initial, maps if return_attention else None)


#: name -> (class, fixed keyword arguments). Every name accepts the shared options below.
MODEL_VARIANTS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "linear": (LinearBaseline, {}),
    "cf": (MLAD, {"num_layers": 0}),
    "cb": (MLAD, {"branches": ("cb",)}),
    "tb": (MLAD, {"branches": ("tb",)}),
    "mlad": (MLAD, {}),
    "mlad-fixed-alpha": (MLAD, {"alpha": 0.5}),
    "full": (FullAttentionBaseline, {}),
}

#: The readable names the book and the CLI print for each variant.
MODEL_LABELS = {
    "linear": "Linear (I3D) baseline",
    "cf": "CF baseline",
    "cb": "CB only",
    "tb": "TB only",
    "mlad": "MLAD",
    "mlad-fixed-alpha": "MLAD, alpha = 0.5",
    "full": "CT x CT attention",
}


def _options(cls: type) -> set[str]:
    """The keyword options of ``cls``'s constructor (sizes excluded)."""
    names = set(inspect.signature(cls.__init__).parameters) - {"self", "num_classes", "feature_dim"}
    return names


def model_options() -> set[str]:
    """Every option that at least one variant of :data:`MODEL_VARIANTS` takes."""
    return set().union(*(_options(cls) for cls, _ in MODEL_VARIANTS.values()))


def build_model(name: str, num_classes: int, feature_dim: int, **options: Any) -> nn.Module:
    """Build a model variant by name (see :data:`MODEL_VARIANTS`).

    ``options`` are passed to the constructor (e.g. ``hidden_dim``, ``num_layers``,
    ``dropout``). An option that some variant takes but this one does not
    (``hidden_dim`` for ``linear``), or that the variant fixes (``num_layers`` for
    ``cf``), is ignored, so one configuration can build every variant; an option that
    no variant takes (a misspelling such as ``hiden_dim``) is a ``ValueError`` naming it.
    """
    if name not in MODEL_VARIANTS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODEL_VARIANTS)}")
    unknown = sorted(set(options) - model_options())
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; the options are {sorted(model_options())}")
    cls, fixed = MODEL_VARIANTS[name]
    accepted = _options(cls)
    kwargs = {k: v for k, v in options.items() if k in accepted and k not in fixed}
    return cls(num_classes=num_classes, feature_dim=feature_dim, **fixed, **kwargs)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

