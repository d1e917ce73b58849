"""Checkpoints: written atomically, read with ``weights_only=True``, checked before use.

Two kinds, one format (a dict of tensors and plain Python values)::

    {"format": "mladlib-checkpoint", "version": 1, "kind": "training" | "best",
     "config": TrainConfig.to_dict(), "model": state_dict, "epoch": int, ...}

``training`` (``last.pt``) also holds the optimizer, the scheduler, every rank's RNG
states, the step, the position inside the epoch and the history, so a run resumes where
it stopped; ``best`` (``best.pt``) holds the weights of the best validation epoch and its
metrics.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models import build_model
from ..utils import atomic_path, check_torch_archive
from ..validate import WriteError, input_file
from .config import TrainConfig, resolve_implementation

FORMAT = "mladlib-checkpoint"
VERSION = 1
KINDS = ("training", "best")


def save_checkpoint(path: str | os.PathLike, kind: str, config: TrainConfig, model_state: dict, **extra: Any) -> Path:
    """Write a checkpoint of ``kind`` to ``path``: a temporary file beside it, then a rename,
    so a reader (or a crash) never sees half of one."""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "config": config.to_dict(), "model": model_state,
               **extra}
    with atomic_path(path, suffix=".pt") as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as error:  # torch's stream writer: "file write failed" (disk full, ulimit -f)
            reason = (str(error).strip().splitlines() or ["write failed"])[0]
            raise WriteError(f"cannot write checkpoint {path} ({reason}): is the disk full, or a file "
                             "size limit (ulimit -f) reached?") from None
    return Path(path)


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``kind`` None accepts both kinds).

    ``FileNotFoundError`` when absent; ``ValueError`` naming the file when it is corrupt,
    truncated, not a mladlib checkpoint (e.g. one of the public MLAD release: read those
    with :func:`mladlib.models.load_official_checkpoint`) or of another kind.
    """
    path = Path(path)
    input_file(path, "checkpoint")
    # what torch.save has written since PyTorch 1.6; members checked before torch.load
    # inflates any (a zip bomb)
    check_torch_archive(path, "checkpoint")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"checkpoint {path} holds objects other than tensors and plain values; "
                         "refusing to load it (a checkpoint could run code)") from None
    except Exception as error:  # truncated or damaged archive
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"checkpoint {path} is corrupted ({reason})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        hint = ""
        if isinstance(checkpoint, dict) and ("state_dict" in checkpoint or "alpha" in checkpoint):
            hint = " (it looks like a checkpoint of the public MLAD release: evaluate it with --official)"
        raise ValueError(f"{path} is not a mladlib checkpoint{hint}")
    if checkpoint.get("version") != VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {checkpoint.get('version')!r}; this mladlib reads {VERSION}")
    missing = [key for key in ("kind", "config", "model", "epoch") if key not in checkpoint]
    if missing or checkpoint["kind"] not in KINDS or not isinstance(checkpoint["model"], dict):
        raise ValueError(f"checkpoint {path} is incomplete or damaged (missing {missing or 'a valid kind/model'})")
    if kind is not None and checkpoint["kind"] != kind:
        if kind == "training":
            raise ValueError(f"{path} holds only the best model's weights; resume from the run's last.pt")
        raise ValueError(f"{path} is a {checkpoint['kind']} checkpoint, expected a {kind} one")
    config = checkpoint["config"]
    alpha_on_tb = isinstance(config, dict) and _upgrade_config(config)
    try:
        checkpoint["config"] = TrainConfig.from_dict(checkpoint["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {path} holds an invalid configuration: {error}") from None
    if alpha_on_tb:
        _negate_alpha_logits(checkpoint)
    return checkpoint


def _upgrade_config(config: dict[str, Any]) -> bool:
    """Rewrite, in place, a configuration written by an earlier mladlib into one that
    builds the same model today. True when its alpha weighted the temporal branch (the
    removed ``alpha_branch="tb"``): its weights then need ``alpha_logit -> -alpha_logit``."""
    if "positional_scale" not in config:  # older: positions at amplitude 1
        config["positional_scale"] = 1.0
    if "positional_encoding" not in config:  # older: positions unless linear
        config["positional_encoding"] = config.get("model") != "linear"
    return config.pop("alpha_branch", "cb") == "tb"


def _negate_alpha_logits(checkpoint: dict[str, Any]) -> None:
    """``alpha_logit -> -alpha_logit`` in the weights (and in Adam's first moment of a
    training checkpoint): ``sigmoid(-a) = 1 - sigmoid(a)`` moves alpha from the TB to
    the CB."""
    state = checkpoint["model"]
    for key in [k for k in state if k.endswith("alpha_logit")]:
        state[key] = -state[key]
    optimizer = checkpoint.get("optimizer")
    sizes = checkpoint.get("model_sizes")
    if not isinstance(optimizer, dict) or not isinstance(sizes, dict):
        return
    # the trainer's Adam holds model.parameters() in order: the alpha logits' indices
    C, F = int(sizes["num_classes"]), int(sizes["feature_dim"])
    names = [name for name, _ in build_from_config(checkpoint["config"], C, F).named_parameters()]
    for group in optimizer.get("param_groups", []):
        for index in group.get("params", []):
            moments = optimizer.get("state", {}).get(index) or {}
            alpha = index < len(names) and names[index].endswith("alpha_logit")
            if alpha and "exp_avg" in moments:
                moments["exp_avg"] = -moments["exp_avg"]


def build_from_config(
    config: TrainConfig, num_classes: int, feature_dim: int, device: str | torch.device | None = None
) -> nn.Module:
    """The model ``config`` describes (fresh weights); ``implementation="auto"`` resolved
    for ``device`` (None: the CPU)."""
    options = config.model_options
    if "implementation" in options:  # the linear baseline has one code path
        options["implementation"] = resolve_implementation(
            config.implementation, device)
    return build_model(config.model, num_classes, feature_dim, **options)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig]:
    """The model of a checkpoint (either kind) in ``eval()`` mode, and its run's config."""
    checkpoint = load_checkpoint(path, map_location=map_location)
    config: TrainConfig = checkpoint["config"]
    state = checkpoint["model"]
    sizes = checkpoint.get("model_sizes")
    if not isinstance(sizes, dict) or not {"num_classes", "feature_dim"} <= set(sizes):
        raise ValueError(f"checkpoint {path} does not record the model's sizes")
    model = build_from_config(config, int(sizes["num_classes"]), int(sizes["feature_dim"]), map_location)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"checkpoint {path}: the weights do not fit a {config.model!r} model ({first})") from None
    return model.to(map_location).eval(), config


# --- RNG states ------------------------------------------------------------------------
# Plain lists and tensors only: a weights_only load refuses NumPy arrays.


def capture_rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and every CUDA device) generator states."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                  "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                  "gauss": float(numpy_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
