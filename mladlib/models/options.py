"""The options of a model built from MLAD's blocks: one frozen object, checked once.

A model builds one :class:`ModelOptions` from its keyword arguments and hands the same
object to every layer and attention block it holds; each reads the fields it needs.
Which options a named variant takes is :data:`mladlib.models.MODEL_VARIANTS`' business.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

#: The branches of an MLAD layer: co-occurrence (over classes), temporal (over time).
BRANCHES = ("cb", "tb")

#: The two code paths of the same network: the textbook code and its CPU speed path.
IMPLEMENTATIONS = ("reference", "fast")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    real = isinstance(value, (int, float)) and not isinstance(value, bool)
    return real and math.isfinite(value)


@dataclass(frozen=True)
class ModelOptions:
    """Every option of MLAD, its ablations and the CT x CT baseline, checked when made.

    Layers: ``hidden_dim`` H, ``num_layers`` L (0: the CF baseline), ``branches`` (a
    non-empty subset of :data:`BRANCHES`), ``alpha`` (eq. 6's ``a``: ``"learned"`` as
    ``sigmoid(alpha_logit)``, or a fixed float in [0, 1]).
    Attention blocks: ``num_heads`` (dividing H), ``ff_dim`` (feed-forward width; None:
    H), ``dropout``, ``attention_dropout`` (on the attention weights),
    ``attention_out_relu`` (the public release's ReLU after the output projection).
    Input: ``positional_encoding``, ``positional_scale`` (``"auto"`` or a positive
    number: :class:`~mladlib.models.PositionalEncoding`), ``feature_streams`` (the
    widths of concatenated feature streams, each scaled on its own under ``"auto"``;
    None: one stream), ``pe_max_len`` (a stored table of that length, as the public
    release keeps), ``input_dropout`` (on the features after the positions).
    ``implementation``: ``"reference"`` (the textbook code) or ``"fast"`` (its CPU speed
    path, the same function); see :data:`mladlib.models.fast.BLOCKS`.
    """

    hidden_dim: int = 128
    num_layers: int = 5
    branches: tuple[str, ...] = BRANCHES
    alpha: str | float = "learned"
    num_heads: int = 1
    ff_dim: int | None = None
    dropout: float = 0.1
    attention_dropout: float = 0.1
    attention_out_relu: bool = False
    positional_encoding: bool = True
    positional_scale: str | float = "auto"
    feature_streams: tuple[int, ...] | None = None
    pe_max_len: int | None = None
    input_dropout: float = 0.0
    implementation: str = "reference"

    def __post_init__(self) -> None:
        # normalise sequences to tuples (a JSON round trip gives lists)
        object.__setattr__(self, "branches", tuple(self.branches))
        if self.feature_streams is not None:
            object.__setattr__(self, "feature_streams", tuple(self.feature_streams))
        for name in ("hidden_dim", "num_heads"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not _is_int(self.num_layers) or self.num_layers < 0:
            raise ValueError(
                f"num_layers must be an integer >= 0, got {self.num_layers!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim={self.hidden_dim} is not divisible by "
                             f"num_heads={self.num_heads}")
        if self.ff_dim is not None and (not _is_int(self.ff_dim) or self.ff_dim < 1):
            raise ValueError("ff_dim must be an integer >= 1 (or None for hidden_dim), "
                             f"got {self.ff_dim!r}")
        branches = self.branches
        unique = len(set(branches)) == len(branches)
        if not branches or set(branches) - set(BRANCHES) or not unique:
            raise ValueError(
                f"branches must be a non-empty subset of {BRANCHES}, got {branches}")
        alpha = self.alpha
        if alpha != "learned" and not (_is_number(alpha) and 0.0 <= alpha <= 1.0):
            raise ValueError(
                f"alpha must be 'learned' or a float in [0, 1], got {alpha!r}")
        for name in ("dropout", "attention_dropout", "input_dropout"):
            value = getattr(self, name)
            if not (_is_number(value) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        scale = self.positional_scale
        if scale != "auto" and not (_is_number(scale) and scale > 0):
            raise ValueError(
                f"positional_scale must be 'auto' or a positive number, got {scale!r}")
        streams = self.feature_streams
        widths_ok = streams and all(_is_int(w) and w >= 1 for w in streams)
        if streams is not None and not widths_ok:
            raise ValueError(
                f"feature_streams must list stream widths >= 1, got {streams!r}")
        length = self.pe_max_len
        if length is not None and (not _is_int(length) or length < 1):
            raise ValueError(
                f"pe_max_len must be an integer >= 1 (or None), got {length!r}")
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, "
                             f"got {self.implementation!r}")

    @property
    def ff_width(self) -> int:
        """The feed-forward width: ``ff_dim``, or H when unset."""
        return self.hidden_dim if self.ff_dim is None else self.ff_dim

    def replace(self, **changes: Any) -> ModelOptions:
        """A copy with ``changes`` applied (and checked); ``ValueError`` names unknown
        ones."""
        unknown = sorted(set(changes) - option_names())
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown}; "
                             f"the options are {sorted(option_names())}")
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def option_names() -> frozenset[str]:
    """The names of every field of :class:`ModelOptions`."""
    return frozenset(f.name for f in dataclasses.fields(ModelOptions))


def make_options(
    options: ModelOptions | None, overrides: dict[str, Any], **defaults: Any
) -> ModelOptions:
    """``options`` (or the defaults of :class:`ModelOptions` updated by ``defaults``)
    with ``overrides`` applied: what every model constructor does with its arguments."""
    if options is not None and not isinstance(options, ModelOptions):
        raise TypeError(f"options must be a ModelOptions, got {type(options).__name__}")
    base = options if options is not None else ModelOptions().replace(**defaults)
    return base.replace(**overrides)
