"""What the book's chapters run on: the embedded dataset by default, real features on request.

Two environment variables switch every chapter to real I3D features:

* ``MLADLIB_BOOK_DATASET``: ``synthetic`` (default), ``multithumos`` or ``charades``;
* ``MLADLIB_BOOK_ROOT``: a folder in the standard layout (``annotations.json``,
  ``features.h5`` or ``features/<video_id>.npy``, ``train_list.txt``, ``test_list.txt``,
  ``classes.txt``; see :meth:`mladlib.data.VideoDataset.from_folder`).

On the embedded dataset the chapters use the small ``synthetic`` preset (trains in about a
minute on 2 CPU cores); on real features, the paper's recipe (hours on a GPU).
``MLADLIB_BOOK_QUICK=1`` cuts every run to 2 epochs and, on real features, to a small model
(``H = 16``, one MLAD layer) unless the caller sets them: for drafting chapters and for
testing that they run, never for the stored outputs.
"""

from __future__ import annotations

import os
from typing import Any

from .data import VideoDataset
from .train import RunResult, TrainConfig, cached_train, dataset_spec, load_splits, make_config

DATASET_ENV = "MLADLIB_BOOK_DATASET"
ROOT_ENV = "MLADLIB_BOOK_ROOT"
QUICK_ENV = "MLADLIB_BOOK_QUICK"


def dataset_name() -> str:
    """The dataset the chapters run on (``$MLADLIB_BOOK_DATASET``, default ``synthetic``)."""
    name = os.environ.get(DATASET_ENV, "synthetic").strip().lower() or "synthetic"
    if name not in ("synthetic", "multithumos", "charades"):
        raise ValueError(f"{DATASET_ENV}={name!r}: choose synthetic, multithumos or charades")
    if name != "synthetic" and not os.environ.get(ROOT_ENV):
        raise ValueError(f"{DATASET_ENV}={name} needs {ROOT_ENV} set to the dataset folder")
    return name


def config(model: str = "mlad", **overrides: Any) -> TrainConfig:
    """The training configuration of ``model`` for the book's dataset, with ``overrides``."""
    name = dataset_name()
    if name != "synthetic":
        overrides.setdefault("root", os.environ[ROOT_ENV])
    if os.environ.get(QUICK_ENV, "0") not in ("", "0"):
        overrides["epochs"] = min(int(overrides.get("epochs", 2)), 2)
        if name != "synthetic":  # the paper's H = 128, L = 5 takes minutes per epoch on a CPU
            overrides.setdefault("hidden_dim", 16)
            overrides.setdefault("num_layers", 1)
    return make_config(name, model=model, **overrides)


def run(model: str = "mlad", **overrides: Any) -> RunResult:
    """Train ``model`` (or load its cached run) on the book's dataset; see :func:`config`."""
    return cached_train(config(model, **overrides))


def splits(**overrides: Any) -> tuple[VideoDataset, VideoDataset]:
    """The book dataset's (train, test) splits, whole (no validation hold-out)."""
    cfg = config(val_fraction=0.0, **overrides)
    data = load_splits(cfg, ("train", "test"))
    return data.train, data.test


def spec(**overrides: Any):
    """The :class:`~mladlib.data.DatasetSpec` of the book's dataset (class names included)."""
    return dataset_spec(config(**overrides))
