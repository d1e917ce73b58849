"""The MLAD layer (paper section 3.1, fig. 3) and the MLAD network (fig. 2)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from .layers import AttentionBlock, ClassClassifiers, ClassFeatures, PositionalEncoding

BRANCHES = ("cb", "tb")


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


class MLADLayer(nn.Module):
    """One MLAD layer: ``(B, T, C, H) -> (B, T, C, H)``.

    * co-occurrence branch (CB, eq. 2-3): attention over the C classes within each step;
    * temporal branch (TB, eq. 4-5): attention over the T steps within each class;
    * merge (eq. 6): ``g = a f' + (1 - a) f''``, ``a = sigmoid(alpha_logit)`` when
      ``alpha="learned"``, else the fixed float. ``alpha_branch="tb"`` puts ``a`` on the
      temporal branch instead, as the public code does.

    Weights of each branch are shared across steps (CB) and across classes (TB), so the
    layer's size does not depend on C or T: about 200K parameters at H = 128.
    """

    def __init__(
        self,
        hidden_dim: int,
        branches: Sequence[str] = BRANCHES,
        alpha: str | float = "learned",
        num_heads: int = 1,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        attention_out_relu: bool = False,
        alpha_branch: str = "cb",
    ) -> None:
        super().__init__()
        branches = tuple(branches)
        if not branches or set(branches) - set(BRANCHES) or len(set(branches)) != len(branches):
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {branches}")
        if alpha_branch not in BRANCHES:
            raise ValueError(f"alpha_branch must be 'cb' or 'tb', got {alpha_branch!r}")
        self.branches, self.alpha_branch = branches, alpha_branch
        block = dict(
            hidden_dim=hidden_dim, num_heads=num_heads, ff_dim=ff_dim, dropout=dropout,
            attention_dropout=attention_dropout, out_relu=attention_out_relu,
        )
        self.cb = AttentionBlock(**block) if "cb" in branches else None
        self.tb = AttentionBlock(**block) if "tb" in branches else None
        self.alpha_logit: nn.Parameter | None = None
        if len(branches) == 2:
            if alpha == "learned":
                self.alpha_logit = nn.Parameter(torch.zeros(()))  # a = 0.5 at start
            elif isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0:
                self.register_buffer("fixed_alpha", torch.tensor(float(alpha)))
            else:
                raise ValueError(f"alpha must be 'learned' or a float in [0, 1], got {alpha!r}")

    @property
    def alpha(self) -> Tensor | None:
        """The weight ``a`` of eq. 6 on ``alpha_branch`` (None with a single branch)."""
        if len(self.branches) < 2:
            return None
        return torch.sigmoid(self.alpha_logit) if self.alpha_logit is not None else self.fixed_alpha

    def forward(
        self, f: Tensor, mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``f (B, T, C, H)``, ``mask (B, T)`` True on valid steps -> ``g (B, T, C, H)``, maps."""
        B, T, C, H = f.shape
        maps: dict[str, Tensor] = {}
        # eq. 6's weights a and 1 - a, folded into each branch's last LayerNorm (H numbers,
        # not a pass over (B, T, C, H)); None with a single branch
        branch_weight: dict[str, Tensor | None] = {"cb": None, "tb": None}
        if len(self.branches) == 2:
            a = self.alpha
            other = "tb" if self.alpha_branch == "cb" else "cb"
            branch_weight[self.alpha_branch], branch_weight[other] = a, 1 - a
        merged = None
        if self.cb is not None:
            # every step is its own sequence of C class tokens: (B*T, C, H)
            f_cb, w = self.cb(f.reshape(B * T, C, H), None, need_weights, branch_weight["cb"])
            merged = f_cb.view(B, T, C, H)
            if w is not None:
                maps["cb"] = w.view(B, T, C, C)
        if self.tb is not None:
            # every class is its own sequence of T step tokens: (B*C, T, H), one transposing copy
            key_valid = None if mask is None else mask[:, None, :].expand(B, C, T).reshape(B * C, T)
            f_tb, w = self.tb(f.transpose(1, 2).reshape(B * C, T, H), key_valid, need_weights, branch_weight["tb"])
            f_tb = f_tb.view(B, C, T, H).transpose(1, 2)
            merged = f_tb if merged is None else merged + f_tb
            if w is not None:
                maps["tb"] = w.view(B, C, T, T)
        return merged, maps


class MLAD(nn.Module):
    """The MLAD network: class features (eq. 1), L MLAD layers, classifiers (eq. 7).

    ``forward(x (B, T, F), mask (B, T) or None)`` returns :class:`ModelOutput` with the
    final logits and the initial logits (classifiers on the class features, trained with
    their own loss as in the paper). ``num_layers=0`` is the paper's CF baseline (one
    classifier, no initial head); ``branches=("cb",)`` / ``("tb",)`` the one-branch
    ablations; ``alpha=0.5`` the fixed-merge ablation of table S2.
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
    ) -> None:
        super().__init__()
        if num_classes < 1 or feature_dim < 1 or hidden_dim < 1 or num_layers < 0:
            raise ValueError(
                f"need num_classes, feature_dim, hidden_dim >= 1 and num_layers >= 0; got "
                f"{num_classes}, {feature_dim}, {hidden_dim}, {num_layers}"
            )
        self.num_classes, self.feature_dim, self.hidden_dim = num_classes, feature_dim, hidden_dim
        self.positional_encoding = PositionalEncoding(feature_dim, pe_max_len) if positional_encoding else None
        self.class_features = ClassFeatures(num_classes, feature_dim, hidden_dim)
        self.layers = nn.ModuleList(
            MLADLayer(hidden_dim, branches, alpha, num_heads, ff_dim, dropout, attention_dropout,
                      attention_out_relu, alpha_branch)
            for _ in range(num_layers)
        )
        self.initial_classifier = ClassClassifiers(num_classes, hidden_dim) if num_layers > 0 else None
        self.classifier = ClassClassifiers(num_classes, hidden_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False) -> ModelOutput:
        check_input(x, mask, self.feature_dim)
        if self.positional_encoding is not None:
            x = self.positional_encoding(x)
        f = self.class_features(x)  # (B, T, C, H)
        initial = self.initial_classifier(f) if self.initial_classifier is not None else None
        maps = []
        for layer in self.layers:
            f, layer_maps = layer(f, mask, return_attention)
            maps.append(layer_maps)
        return ModelOutput(self.classifier(f), initial, maps if return_attention else None)
