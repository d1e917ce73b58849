"""mladlib: MLAD (CVPR 2021) for multi-label temporal action localization, its baselines,
data loaders for MultiTHUMOS/Charades features, an embedded synthetic dataset, a trainer,
and the paper's metrics."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["data", "metrics", "models", "train", "MLAD", "MLADLayer", "build_model", "seed_everything", "__version__"]

# Imported on first use (PEP 562): ``python -m mladlib`` then imports torch inside the
# command line's own code, where a Ctrl-C ends in one line instead of a traceback.
_SUBMODULES = ("data", "metrics", "models", "train", "synth", "utils", "interpret", "viz", "validate")
_NAMES = {"MLAD": "models", "MLADLayer": "models", "build_model": "models",
          "seed_everything": "utils"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
