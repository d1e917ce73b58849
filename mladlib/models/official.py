"""The public MLAD release's network layout, and loading its checkpoints into :class:`MLAD`.

:class:`PublicLayoutMLAD` restates, naively, the module layout of the authors' public code:
one ``nn.Linear`` per class in Python loops and hand-written softmax attention. It is the
speed baseline of ``benchmarks/bench_model.py`` and produces state dicts in the release's
format for tests. :func:`load_official_checkpoint` reads such a checkpoint into
:class:`MLAD`, whose options express the release's quirks:

* a ReLU after the attention's output projection (``attention_out_relu=True``);
* dropout on the attention weights (``attention_dropout``; inactive in ``eval()``);
* a stored positional table as long as the training window (``pe_max_len``), added at
  amplitude 1 (``positional_scale=1.0``) and followed by dropout (``input_dropout``);
* ``sigmoid(alpha)`` weighting the *temporal* branch, where the paper's eq. 6 (and
  :class:`MLAD`) writes alpha on the co-occurrence branch: the loader stores
  ``alpha_logit = -alpha``, since ``sigmoid(-a) = 1 - sigmoid(a)``.
"""

from __future__ import annotations

import math
import pickle
import re
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils import check_torch_archive
from ..validate import input_file
from .layers import sinusoidal_table
from .mlad import MLAD


class _PublicAttention(nn.Module):
    def __init__(self, hidden_dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = nn.Linear(hidden_dim, hidden_dim)
        self.k_linear = nn.Linear(hidden_dim, hidden_dim)
        self.v_linear = nn.Linear(hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        N, S, H = x.shape
        d = H // self.num_heads

        def split(t: Tensor) -> Tensor:
            return t.view(N, S, self.num_heads, d).transpose(1, 2)

        q, k, v = split(self.q_linear(x)), split(self.k_linear(x)), split(self.v_linear(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
        context = (self.dropout(weights) @ v).transpose(1, 2).reshape(N, S, H)
        return F.relu(self.out(context))


class _PublicEncoderLayer(nn.Module):
    def __init__(self, hidden_dim: int, num_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = _PublicAttention(hidden_dim, num_heads, dropout)
        self.linear1 = nn.Linear(hidden_dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, hidden_dim)
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class _PublicPositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoidal_table(max_len, dim)[None])  # (1, max_len, F)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(x + self.pe[:, : x.shape[1]])


class PublicLayoutMLAD(nn.Module):
    """MLAD written the way the public release writes it (slow, loop over classes).

    Same mathematics as :class:`MLAD` with ``attention_out_relu=True`` and
    ``alpha_logit = -alpha`` (:func:`load_official_checkpoint`);
    ``forward(x (B, T, F)) -> (final_logits, initial_logits)``, both ``(B, T, C)``, no mask.
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 5,
        num_heads: int = 1,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        max_len: int = 128,
    ) -> None:
        super().__init__()
        ff_dim = hidden_dim if ff_dim is None else ff_dim
        self.positional_encoding = _PublicPositionalEncoding(feature_dim, max_len, dropout)
        self.feature_expansion = nn.ModuleList(
            nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.ReLU()) for _ in range(num_classes)
        )
        self.initial_classifiers = nn.ModuleList(nn.Linear(hidden_dim, 1) for _ in range(num_classes))
        self.encoder_layers1 = nn.ModuleList(  # attention over time, per class
            _PublicEncoderLayer(hidden_dim, num_heads, ff_dim, dropout) for _ in range(num_layers)
        )
        self.encoder_layers2 = nn.ModuleList(  # attention over classes, per step
            _PublicEncoderLayer(hidden_dim, num_heads, ff_dim, dropout) for _ in range(num_layers)
        )
        self.final_classifiers = nn.ModuleList(nn.Linear(hidden_dim, 1) for _ in range(num_classes))
        self.alpha = nn.Parameter(torch.zeros(num_layers))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.positional_encoding(x)
        f = torch.stack([expand(x) for expand in self.feature_expansion], dim=2)  # (B, T, C, H)
        B, T, C, H = f.shape
        initial = torch.cat([clf(f[:, :, c]) for c, clf in enumerate(self.initial_classifiers)], dim=-1)
        for l, (temporal, cooccur) in enumerate(zip(self.encoder_layers1, self.encoder_layers2)):
            f_t = temporal(f.permute(0, 2, 1, 3).reshape(B * C, T, H)).view(B, C, T, H).permute(0, 2, 1, 3)
            f_c = cooccur(f.reshape(B * T, C, H)).view(B, T, C, H)
            a = torch.sigmoid(self.alpha[l])
            f = a * f_t + (1 - a) * f_c
        final = torch.cat([clf(f[:, :, c]) for c, clf in enumerate(self.final_classifiers)], dim=-1)
        return final, initial


def _indices(state: dict[str, Tensor], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for key in state if (m := pattern.match(key))})


def load_official_checkpoint(
    path: str | Path, num_heads: int = 1, map_location: str | torch.device = "cpu", *,
    implementation: str = "reference", dropout: float = 0.2,
) -> MLAD:
    """Read a checkpoint of the public MLAD release into an equivalent :class:`MLAD`.

    The file is ``{'epoch', 'state_dict', 'optimizer'}`` (a bare state dict is accepted
    too; a ``module.`` prefix from DataParallel is stripped). Sizes C, F, H, L, the
    feed-forward width and the positional table's length are read from the tensors; the
    number of heads cannot be, so pass ``num_heads`` if the release used more than one.
    Loaded with ``weights_only=True``: a checkpoint cannot run code. The model is
    returned in ``eval()`` mode, with the release's positional amplitude (1.0) and its
    training dropout (0.2 everywhere, the input included) for fine-tuning;
    ``implementation`` as in :class:`MLAD`.
    """
    path = Path(path)
    input_file(path, "checkpoint")
    if zipfile.is_zipfile(path):
        check_torch_archive(path)  # before torch.load inflates a member (a zip bomb)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # torch's text suggests weights_only=False: never
        raise ValueError(f"checkpoint {path} holds objects other than tensors and "
                         "plain values, which a weights-only load refuses (a "
                         "checkpoint could run code)") from None
    except Exception as error:  # truncated, damaged, or not a checkpoint at all
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if isinstance(error, OSError) and error.strerror:
            reason = error.strerror
        raise ValueError(f"checkpoint {path} is corrupted or not a PyTorch checkpoint "
                         f"({reason})") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}

    def take(key: str) -> Tensor:
        if key not in state:
            raise ValueError(f"{path} is not in the public MLAD layout: key {key!r} is missing")
        return state.pop(key)

    classes = _indices(state, "feature_expansion")
    layers = _indices(state, "encoder_layers1")
    if not classes or not layers:
        raise ValueError(f"{path} is not in the public MLAD layout: no feature_expansion.<c> or encoder_layers1.<l> keys")
    hidden_dim, feature_dim = state["feature_expansion.0.0.weight"].shape
    ff_dim = state["encoder_layers1.0.linear1.weight"].shape[0]
    pe = state.get("positional_encoding.pe")
    pe_len = pe.reshape(-1, feature_dim).shape[0] if pe is not None else None
    model = MLAD(
        len(classes), feature_dim, hidden_dim=hidden_dim, num_layers=len(layers),
        num_heads=num_heads, ff_dim=ff_dim, positional_encoding=pe is not None,
        pe_max_len=pe_len, attention_out_relu=True, dropout=dropout,
        attention_dropout=dropout, input_dropout=dropout, positional_scale=1.0,
        implementation=implementation,
    )
    new: dict[str, Tensor] = {}
    if pe is not None:
        new["positional_encoding.pe"] = take("positional_encoding.pe").reshape(pe_len, feature_dim)
    new["class_features.weight"] = torch.cat([take(f"feature_expansion.{c}.0.weight") for c in classes])
    new["class_features.bias"] = torch.cat([take(f"feature_expansion.{c}.0.bias") for c in classes])
    for ours, theirs in (("initial_classifier", "initial_classifiers"), ("classifier", "final_classifiers")):
        new[f"{ours}.weight"] = torch.cat([take(f"{theirs}.{c}.weight") for c in classes])  # (C, H)
        new[f"{ours}.bias"] = torch.cat([take(f"{theirs}.{c}.bias") for c in classes])
    for l in layers:
        for branch, theirs in (("tb", f"encoder_layers1.{l}"), ("cb", f"encoder_layers2.{l}")):
            ours = f"layers.{l}.{branch}"
            for kind in ("weight", "bias"):
                new[f"{ours}.qkv.{kind}"] = torch.cat(
                    [take(f"{theirs}.self_attn.{n}_linear.{kind}") for n in "qkv"]
                )
                for name, their_name in (("out", "self_attn.out"), ("linear1", "linear1"), ("linear2", "linear2"),
                                         ("norm1", "norm1"), ("norm2", "norm2")):
                    new[f"{ours}.{name}.{kind}"] = take(f"{theirs}.{their_name}.{kind}")
    alpha = take("alpha").reshape(-1)
    if alpha.numel() != len(layers):
        raise ValueError(f"{path}: alpha has {alpha.numel()} values for {len(layers)} layers")
    for l in layers:  # the release puts sigmoid(alpha) on the TB, the CB: sigmoid(-alpha)
        new[f"layers.{l}.alpha_logit"] = -alpha[l]
    if state:
        raise ValueError(f"{path} has keys the public MLAD layout does not: {sorted(state)[:5]}")
    model.load_state_dict(new, strict=True)
    return model.eval()
