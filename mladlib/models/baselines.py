"""The baselines the paper compares MLAD with (tables 1, 5, S2, S4), same interface as
MLAD, and :func:`build_model`, which names every variant and the options each takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .fast import BLOCKS
from .layers import ClassClassifiers, PositionalEncoding
from .mlad import MLAD, BuiltFromOptions, ModelOutput, check_input
from .options import ModelOptions, make_options, option_names


def _positions(feature_dim: int, options: ModelOptions) -> PositionalEncoding | None:
    """The positional encoding ``options`` ask for (no stored table), or None."""
    if not options.positional_encoding:
        return None
    return PositionalEncoding(feature_dim, scale=options.positional_scale,
                              streams=options.feature_streams)


class LinearBaseline(BuiltFromOptions, nn.Module):
    """The paper's "I3D baseline": one linear layer ``(F -> C)`` applied to each step.

    Options: ``positional_encoding`` (default False here: the paper's classifier sees
    the features alone), ``positional_scale``, ``feature_streams``.
    """

    def __init__(
        self, num_classes: int, feature_dim: int, options: ModelOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        options = make_options(options, overrides, positional_encoding=False)
        self.options = options
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.positional_encoding = _positions(feature_dim, options)
        self.linear = nn.Linear(feature_dim, num_classes)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> ModelOutput:
        check_input(x, mask, self.feature_dim, self.linear.weight.dtype)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x, mask)
        return ModelOutput(self.linear(x), None, [] if return_attention else None)


class FullAttentionBaseline(BuiltFromOptions, nn.Module):
    """The supplement's CT x CT baseline (section 5, table S4).

    Class features as in MLAD, then L attention blocks over all C*T class-time tokens of
    a window at once (time-major order: token ``t*C + c``), then the classifiers. Memory
    grows with ``(C*T)^2`` per layer without fused attention kernels. Options as
    :class:`MLAD` (``num_layers`` defaults to 1 here); ``branches`` and ``alpha`` do not
    apply.
    """

    def __init__(
        self, num_classes: int, feature_dim: int, options: ModelOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.options = options = make_options(options, overrides, num_layers=1)
        blocks = BLOCKS[options.implementation]
        H, L = options.hidden_dim, options.num_layers
        C, F = num_classes, feature_dim
        self.num_classes, self.feature_dim, self.hidden_dim = C, F, H
        self.positional_encoding = _positions(F, options)
        self.class_features = blocks.class_features(C, F, H)
        self.layers = nn.ModuleList(blocks.attention_block(options) for _ in range(L))
        self.initial_classifier = ClassClassifiers(C, H) if L > 0 else None
        self.classifier = ClassClassifiers(C, H)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> ModelOutput:
        check_input(x, mask, self.feature_dim, self.classifier.weight.dtype)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x, mask)
        f = self.class_features(x)  # (B, T, C, H)
        B, T, C, H = f.shape
        head = self.initial_classifier
        initial = head(f) if head is not None else None
        key_valid = None
        if mask is not None:  # token t*C + c is valid where step t is
            key_valid = mask[:, :, None].expand(B, T, C).reshape(B, T * C)
        tokens = f.reshape(B, T * C, H)
        maps = []
        for layer in self.layers:
            tokens, w = layer(tokens, key_valid, return_attention)
            if return_attention:
                maps.append({"full": w})
        logits = self.classifier(tokens.view(B, T, C, H))
        return ModelOutput(logits, initial, maps if return_attention else None)


@dataclass(frozen=True)
class Variant:
    """A named model: its class, the options it fixes, the options a caller may set."""

    cls: type[nn.Module]
    fixed: Mapping[str, Any]
    takes: frozenset[str]


_POSITIONS = frozenset({"positional_encoding", "positional_scale", "feature_streams"})
_CLASS_FEATURES = _POSITIONS | {"hidden_dim", "implementation"}
_BLOCK = frozenset(
    {"num_heads", "ff_dim", "dropout", "attention_dropout", "attention_out_relu"})
_CF = _CLASS_FEATURES | {"pe_max_len", "input_dropout"}
_ONE_BRANCH = _CF | _BLOCK | {"num_layers"}

#: name -> :class:`Variant`: every model the library names, what it fixes and takes.
MODEL_VARIANTS: dict[str, Variant] = {
    "linear": Variant(LinearBaseline, {}, _POSITIONS),
    "cf": Variant(MLAD, {"num_layers": 0}, _CF),
    "cb": Variant(MLAD, {"branches": ("cb",)}, _ONE_BRANCH),
    "tb": Variant(MLAD, {"branches": ("tb",)}, _ONE_BRANCH),
    "mlad": Variant(MLAD, {}, _ONE_BRANCH | {"branches", "alpha"}),
    "mlad-fixed-alpha": Variant(MLAD, {"alpha": 0.5}, _ONE_BRANCH),
    "full": Variant(
        FullAttentionBaseline, {}, _CLASS_FEATURES | _BLOCK | {"num_layers"}),
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


def model_options() -> frozenset[str]:
    """Every option that at least one variant of :data:`MODEL_VARIANTS` takes."""
    return frozenset().union(*(variant.takes for variant in MODEL_VARIANTS.values()))


def build_model(
    name: str, num_classes: int, feature_dim: int, **options: Any
) -> nn.Module:
    """Build a model variant by name (see :data:`MODEL_VARIANTS`).

    ``options`` are fields of :class:`ModelOptions` (``hidden_dim``, ``num_layers``,
    ``dropout``, ...). ``ValueError`` naming them for an option that is not one (a
    misspelling such as ``hiden_dim``), that the variant fixes (``num_layers`` for
    ``cf``) or that it does not take (``hidden_dim`` for ``linear``, ``alpha`` for
    ``cb``).
    """
    if name not in MODEL_VARIANTS:
        raise ValueError(
            f"unknown model {name!r}; choose one of {sorted(MODEL_VARIANTS)}")
    variant = MODEL_VARIANTS[name]
    unknown = sorted(set(options) - option_names())
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; "
                         f"the options are {sorted(model_options())}")
    fixed = sorted(set(options) & set(variant.fixed))
    if fixed:
        values = ", ".join(f"{k}={variant.fixed[k]!r}" for k in fixed)
        raise ValueError(f"model {name!r} fixes {values}; do not pass {fixed}")
    foreign = sorted(set(options) - variant.takes)
    if foreign:
        raise ValueError(f"model {name!r} does not take option(s) {foreign}; "
                         f"it takes {sorted(variant.takes)}")
    return variant.cls(num_classes, feature_dim, **variant.fixed, **options)


def with_implementation(model: nn.Module, implementation: str) -> nn.Module:
    """The same network as ``model`` on the other code path: a new model of the same
    class and options but ``implementation``, holding a copy of ``model``'s state dict,
    on its device and in its train/eval mode. Building it leaves the global random
    stream as found."""
    options = getattr(model, "options", None)
    if not isinstance(options, ModelOptions):
        raise ValueError(f"{type(model).__name__} is not built from ModelOptions")
    options = options.replace(implementation=implementation)
    with torch.random.fork_rng(devices=[]):
        other = type(model)(model.num_classes, model.feature_dim, options)
    parameter = next(model.parameters(), None)
    if parameter is not None:
        other = other.to(parameter.device)
    other.load_state_dict(model.state_dict())
    return other.train(model.training)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
