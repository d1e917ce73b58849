"""What a training run is: :class:`TrainConfig` and the presets.

The dataclass defaults are the paper's recipe (section 5.1): Adam at learning rate 1e-4,
batch 32, H = 128, L = 5, variable-length windows up to the dataset's T, binary
cross-entropy on both the initial and the final logits. :data:`PRESETS` adjusts them per
dataset; :func:`make_config` applies a preset and then the caller's overrides.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..models import IMPLEMENTATIONS, MODEL_VARIANTS

DATASETS = ("synthetic", "multithumos", "charades", "custom")  # custom: dataset.json
AMP_MODES = ("auto", "bf16", "off")
SCHEDULERS = ("none", "cosine")


@dataclass
class TrainConfig:
    """Every setting of a run; JSON-serializable (saved in each checkpoint and run folder).

    Data: ``dataset`` picks the preset and the class conventions. The embedded dataset is
    generated on first use (``synthetic_size``, ``synthetic_seed``) unless ``root`` points
    at a written copy. Real datasets come either from a folder ``root`` (the layout of
    :meth:`mladlib.data.VideoDataset.from_folder`) or from ``annotations`` plus
    ``features`` (one path, or several streams joined along D, e.g. RGB then flow); the
    test split reads ``test_features`` when the release ships one file per split.
    ``train_list``/``test_list`` default to the annotations' ``subset`` field.
    ``val_fraction`` of the training videos is held out for model selection (never the
    test split; 0 keeps the last epoch).

    Lengths are in feature steps; ``window`` defaults to the dataset's T (128 MultiTHUMOS,
    64 Charades and the embedded dataset). ``batch_size`` is per process: the effective
    batch is ``batch_size * world_size * grad_accumulation``. ``windows_per_epoch``
    defaults to about one pass over the training frames.
    """

    # data
    dataset: str = "synthetic"
    synthetic_size: str = "default"
    synthetic_seed: int = 0
    root: str | None = None
    annotations: str | None = None
    features: list[str] | None = None
    test_features: list[str] | None = None
    classes: str | None = None
    train_list: str | None = None
    test_list: str | None = None
    in_memory: bool | None = None  # None: True for the embedded dataset, else False
    # model
    model: str = "mlad"
    hidden_dim: int = 128
    num_layers: int = 5
    num_heads: int = 1
    dropout: float = 0.1
    attention_dropout: float | None = None  # None: same as dropout
    input_dropout: float = 0.0  # on the features after the positional encoding (public code: 0.2)
    ff_dim: int | None = None  # None: hidden_dim
    alpha: str | float = "learned"  # eq. 6's a (on the CB): "learned" or a float in [0, 1]
    branches: tuple[str, ...] | None = None  # None: the variant's (both for "mlad")
    # None: the variant's own default, as in the paper: no positions for the linear baseline
    # (the I3D classifier), sinusoidal positions for every class-feature model
    positional_encoding: bool | None = None
    positional_scale: str | float = "auto"  # "auto": the features' running RMS; 1.0: public code
    # widths of the feature streams joined along D (e.g. [1024, 1024] for RGB + flow):
    # under "auto" each stream is scaled by its own running RMS; None: one RMS for all D
    feature_streams: list[int] | None = None
    attention_out_relu: bool = False  # ReLU after the attention's output projection (public code)
    implementation: str = "auto"  # "reference", "fast", or "auto" (= "fast")
    # training windows
    window: int | None = None
    variable_length: bool = True
    length_step: int = 16
    windows_per_epoch: int | None = None
    # optimization
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    scheduler: str = "none"
    epochs: int = 50
    grad_accumulation: int = 1
    grad_clip: float | None = None
    initial_loss_weight: float = 1.0
    final_loss_weight: float = 1.0
    prior_bias: bool = True  # classifier biases start at the classes' training log-odds
    # evaluation
    eval_every: int = 1
    # stop after this many validations in a row without a new best validation f-mAP
    # (None: train all ``epochs``, which stays the cap either way)
    patience: int | None = None
    eval_stride: int | None = None  # None: window // 2
    eval_batch_size: int = 32
    val_fraction: float = 0.1
    threshold: float = 0.5
    taus: tuple[int, ...] = (0, 20)
    # run
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False
    num_workers: int = 0
    num_threads: int | None = None
    run_dir: str | None = None  # None: write nothing; "auto": runs/<dataset>-<model>[-N]
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.features, (str, os.PathLike)):
            self.features = [self.features]
        if isinstance(self.test_features, (str, os.PathLike)):
            self.test_features = [self.test_features]
        for name in ("root", "annotations", "classes", "train_list", "test_list", "run_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, str(value))
        self.features = None if self.features is None else [str(p) for p in self.features]
        self.test_features = None if self.test_features is None else [str(p) for p in self.test_features]
        # whole numbers only (2.5 is refused by validate, not truncated)
        self.taus = tuple(int(t) if _is_int(t) else t for t in self.taus)
        if self.branches is not None and not isinstance(self.branches, str):
            self.branches = tuple(self.branches)
        self.validate()

    def validate(self) -> None:
        """``ValueError`` naming the first setting that cannot work."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        need(self.dataset in DATASETS, f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        need(self.model in MODEL_VARIANTS, f"unknown model {self.model!r}; choose one of {sorted(MODEL_VARIANTS)}")
        need(self.amp in AMP_MODES, f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        need(self.implementation in ("auto", *IMPLEMENTATIONS),
             f"implementation must be one of {('auto', *IMPLEMENTATIONS)}, got {self.implementation!r}")
        need(self.alpha == "learned" or (isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool)
                                         and 0 <= self.alpha <= 1),
             f"alpha must be 'learned' or a number in [0, 1], got {self.alpha!r}")
        need(self.positional_scale == "auto" or (
            isinstance(self.positional_scale, (int, float)) and not isinstance(self.positional_scale, bool)
            and math.isfinite(self.positional_scale) and self.positional_scale > 0),
             "positional_scale must be 'auto' or a finite positive number, got "
             f"{self.positional_scale!r}")
        # integers first: 8.5 layers or epochs='1' would otherwise fail far into a run
        for name in (*_REQUIRED_INTS, "window", "windows_per_epoch", "eval_stride",
                     "num_threads", "stop_after_steps", "patience", "ff_dim"):
            value = getattr(self, name)
            need(value is None and name not in _REQUIRED_INTS or _is_int(value),
                 f"{name} must be an integer, got {value!r}")
        need(all(_is_int(tau) and tau >= 0 for tau in self.taus),
             f"taus must be integers >= 0, got {list(self.taus)}")
        for name in ("lr", "weight_decay", "grad_clip", "dropout", "attention_dropout",
                     "input_dropout", "initial_loss_weight", "final_loss_weight",
                     "val_fraction", "threshold"):
            value = getattr(self, name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            need(value is None or is_number, f"{name} must be a number, got {value!r}")
        need(self.branches is None or (not isinstance(self.branches, str) and len(self.branches) > 0
                                       and set(self.branches) <= {"cb", "tb"}),
             f"branches must be a non-empty subset of ('cb', 'tb'), got {self.branches!r}")
        need(self.ff_dim is None or self.ff_dim >= 1, f"ff_dim must be >= 1 (or unset), got {self.ff_dim}")
        need(self.scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        for name in ("hidden_dim", "num_heads", "length_step", "batch_size", "epochs", "grad_accumulation",
                     "eval_every", "eval_batch_size"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("window", "windows_per_epoch", "eval_stride", "num_threads", "stop_after_steps", "patience"):
            value = getattr(self, name)
            need(value is None or value >= 1, f"{name} must be >= 1 (or unset), got {value}")
        for name in ("lr", "weight_decay", "grad_clip", "dropout", "attention_dropout", "initial_loss_weight",
                     "final_loss_weight", "val_fraction", "threshold"):
            value = getattr(self, name)
            need(value is None or (isinstance(value, (int, float)) and math.isfinite(value)),
                 f"{name} must be a finite number, got {value}")
        need(isinstance(self.seed, int) and 0 <= self.seed < 2**63,
             f"seed must be an integer in [0, 2**63), got {self.seed}")
        need(isinstance(self.synthetic_seed, int) and 0 <= self.synthetic_seed < 2**63,
             f"synthetic_seed must be an integer in [0, 2**63), got {self.synthetic_seed}")
        need(self.num_layers >= 0, f"num_layers must be >= 0, got {self.num_layers}")
        need(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 (or unset), got {self.grad_clip}")
        for name in ("dropout", "attention_dropout", "input_dropout"):
            value = getattr(self, name)
            need(value is None or 0 <= value < 1, f"{name} must be in [0, 1), got {value}")
        need(self.initial_loss_weight >= 0 and self.final_loss_weight >= 0,
             f"loss weights must be >= 0, got {self.initial_loss_weight} and {self.final_loss_weight}")
        need(self.initial_loss_weight + self.final_loss_weight > 0, "at least one loss weight must be > 0")
        need(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        need(0 < self.threshold < 1, f"threshold must be in (0, 1), got {self.threshold}")
        need(len(self.taus) > 0, "taus must list at least one tau")
        if self.variable_length and self.window is not None:
            need(self.window % self.length_step == 0,
                 f"window {self.window} must be a multiple of length_step {self.length_step} with variable_length")
        if self.eval_stride is not None and self.window is not None:
            need(self.eval_stride <= self.window, f"eval_stride {self.eval_stride} exceeds window {self.window}")
        if self.dataset != "synthetic" and self.root is None:
            need(self.annotations is not None and self.features is not None,
                 f"dataset {self.dataset!r} needs either root (a dataset folder) or both annotations and features")
        if self.features is not None:
            need(len(self.features) > 0, "features lists no path")

    @property
    def model_options(self) -> dict[str, Any]:
        """The options that :data:`mladlib.models.MODEL_VARIANTS` ``[model]`` takes, as
        keyword arguments for :func:`mladlib.models.build_model` (``implementation=
        "auto"`` resolved: :func:`resolve_implementation`). Settings the variant fixes
        or has no use for (``num_layers`` of ``cf``, ``alpha`` of ``cb``) are left out;
        ``ValueError`` when one that defaults to "the variant's own" (``branches``,
        ``positional_encoding``) is set for a variant that does not take it."""
        takes = MODEL_VARIANTS[self.model].takes
        options = {
            "hidden_dim": self.hidden_dim, "num_layers": self.num_layers, "num_heads": self.num_heads,
            "dropout": self.dropout,
            "attention_dropout": self.dropout if self.attention_dropout is None else self.attention_dropout,
            "input_dropout": self.input_dropout, "ff_dim": self.ff_dim, "alpha": self.alpha,
            "positional_scale": self.positional_scale, "attention_out_relu": self.attention_out_relu,
            "implementation": resolve_implementation(self.implementation, None),
        }
        if self.feature_streams is not None:
            options["feature_streams"] = tuple(self.feature_streams)
        for name in ("branches", "positional_encoding"):  # None: the variant's own
            value = getattr(self, name)
            if value is None:
                continue
            if name not in takes:
                raise ValueError(
                    f"model {self.model!r} does not take {name} (got {value!r})")
            options[name] = tuple(value) if name == "branches" else value
        return {name: value for name, value in options.items() if name in takes}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["taus"] = list(self.taus)
        if self.branches is not None:
            out["branches"] = list(self.branches)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; ``ValueError`` on unknown keys (a newer or foreign config)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


#: Integer settings that may not be None.
_REQUIRED_INTS = ("hidden_dim", "num_heads", "length_step", "batch_size", "epochs",
                  "grad_accumulation", "eval_every", "eval_batch_size", "num_layers",
                  "num_workers")


def _is_int(value: Any) -> bool:
    """A whole number given as an integer (not a bool, a float or a string)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


#: Per-dataset settings on top of the dataclass defaults (ONE place to tune them).
#:
#: * ``synthetic``: a small model (H 32, L 3) that trains on the embedded dataset (320
#:   training videos, 13 epochs of about one pass over their frames) in about 75 s on 2
#:   idle CPU cores. Two torch threads, fixed: the numbers then do not depend on the
#:   machine's core count (a different count changes the order of floating-point sums).
#:   On a busy machine two threads can wait for each other; pass ``num_threads=1`` there
#:   (the numbers then change slightly).
#: * ``multithumos``/``charades``: the paper (H 128, L 5, Adam 1e-4, batch 32, T from the
#:   dataset, variable length). The public release adds weight decay 1e-6 and trains
#:   MultiTHUMOS for 2500 of its epochs of one window per video (about 500,000 windows);
#:   our epoch is about one pass over the frames (about 1,000 windows on MultiTHUMOS), so
#:   500 epochs see as many windows. It validates every 50 epochs, then every 10.
PRESETS: dict[str, dict[str, Any]] = {
    "synthetic": dict(
        hidden_dim=32, num_layers=3, window=64, batch_size=32, lr=1e-3, dropout=0.1, epochs=13, eval_every=1,
        num_threads=2,
    ),
    "multithumos": dict(
        hidden_dim=128, num_layers=5, batch_size=32, lr=1e-4, weight_decay=1e-6, variable_length=True,
        epochs=500, eval_every=10,
    ),
    "charades": dict(
        hidden_dim=128, num_layers=5, batch_size=32, lr=1e-4, weight_decay=1e-6, variable_length=True,
        epochs=50, eval_every=1,
    ),
    # a dataset of one's own: Charades' settings; its dataset.json gives classes and T
    "custom": dict(
        hidden_dim=128, num_layers=5, batch_size=32, lr=1e-4, weight_decay=1e-6, variable_length=True,
        epochs=50, eval_every=1,
    ),
}

#: Settings a resumed run may change: they do not alter the numbers it computes
#: (``epochs`` only extends or shortens a run with a constant learning rate).
RESUMABLE = ("device", "num_workers", "num_threads", "stop_after_steps", "epochs", "eval_batch_size", "patience")


def resolve_implementation(implementation: str, device: str | Any | None) -> str:
    """The model implementation to run: ``"auto"`` is ``"fast"``, measured faster on the
    CPU (its tricks) and on an H200 (fused attention: 53 vs 70 ms per bf16 step at batch
    32, and the only path that ``torch.compile`` compiled with torch 2.11;
    ``benchmarks/README.md``). Both compute the same function (``tests/test_reference.py``);
    ``"reference"`` is the textbook code the book teaches from."""
    del device  # kept in the signature: the choice has been device-dependent and may be again
    return "fast" if implementation == "auto" else implementation


#: The public release's training settings (``--recipe public``; github.com/ptirupat/MLAD,
#: src/parameters.py and src/models/v1.py): dropout 0.2 everywhere, the input included
#: (after the positional encoding), a ReLU after the attention's output projection,
#: positions at amplitude 1, feed-forward width H, Adam at learning rate 1e-3 with weight
#: decay 1e-6, batches of 16 accumulated over 4 steps. (The release learns alpha as the
#: TB's weight; ours is the CB's, ``sigmoid(-a) = 1 - sigmoid(a)``: from a = 0.5 at the
#: start, Adam moves the one logit exactly as it moves the negated other.)
RECIPES: dict[str, dict[str, Any]] = {
    "public": dict(
        dropout=0.2, attention_dropout=0.2, input_dropout=0.2, attention_out_relu=True,
        positional_scale=1.0, ff_dim=None, lr=1e-3, weight_decay=1e-6, batch_size=16, grad_accumulation=4,
    ),
}


def make_config(dataset: str = "synthetic", **overrides: Any) -> TrainConfig:
    """``TrainConfig`` for ``dataset`` with its preset, then ``recipe`` (a key of
    :data:`RECIPES`, e.g. ``recipe="public"``), then ``overrides`` applied.

    >>> make_config("synthetic", epochs=3).hidden_dim
    32
    """
    if dataset not in PRESETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    recipe = overrides.pop("recipe", None)
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    return TrainConfig(dataset=dataset, **{**PRESETS[dataset], **RECIPES.get(recipe, {}), **overrides})


def resolve_run_dir(config: TrainConfig, base: str | os.PathLike = "runs") -> Path | None:
    """The run folder: None when ``run_dir`` is None; for ``"auto"`` the first free one of
    ``runs/<dataset>-<model>``, ``runs/<dataset>-<model>-2``, ..."""
    if config.run_dir is None:
        return None
    if config.run_dir != "auto":
        return Path(config.run_dir)
    stem = Path(base) / f"{config.dataset}-{config.model}"
    candidate, n = stem, 1
    while candidate.exists():
        n += 1
        candidate = stem.with_name(f"{stem.name}-{n}")
    return candidate
