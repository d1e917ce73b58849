"""Train once, reuse everywhere: finished runs kept in the cache folder, keyed by config.

The book's chapters ask for the same few models (MLAD and its baselines on the embedded
dataset); :func:`cached_train` trains a configuration the first time and afterwards loads
the finished run, so the whole book trains each model once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from .. import synth
from ..synth import cache_dir
from .checkpoint import load_model
from .config import TrainConfig
from .run_folder import run_paths
from .run_result import RunResult
from .trainer import train

#: Part of every cache key; raised whenever training computes different numbers for the
#: same configuration, so runs cached by an older version are not reused. 2: merged
#: attention projections and NumPy-drawn dropout masks on CPU.
NUMERICS_VERSION = 2

#: Settings that do not change what a run computes, left out of the cache key.
_NOT_IN_KEY = ("run_dir", "device", "num_workers", "eval_batch_size", "stop_after_steps")

#: Settings added after the key was introduced, left out of it at the value that trains
#: what the library trained before they existed, so a run's key changes only when what it
#: computes changes.
_ADDED_LATER = {"patience": None, "feature_streams": None}

#: Settings removed since, put back at the only value the library now trains with.
_REMOVED_SINCE = {"alpha_branch": "cb"}


def config_key(config: TrainConfig) -> str:
    """A short hash of everything in ``config`` that changes the trained model, of
    :data:`NUMERICS_VERSION`, and of the embedded dataset's recipe
    (:func:`mladlib.synth.fingerprint`) when it trains on it."""
    values = {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_KEY}
    for name, neutral in _ADDED_LATER.items():
        if values.get(name, neutral) == neutral:
            values.pop(name, None)
    for name, value in _REMOVED_SINCE.items():
        values.setdefault(name, value)
    # None means the variant's own default: key the value the model is built with
    if values.get("positional_encoding") is None:
        values["positional_encoding"] = config.model != "linear"
    values["numerics_version"] = NUMERICS_VERSION
    if config.dataset == "synthetic" and config.root is None:
        values["synthetic_fingerprint"] = synth.fingerprint(synth.sized_config(config.synthetic_size, config.synthetic_seed))
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def cached_run_dir(config: TrainConfig) -> Path:
    """Where the finished run of ``config`` is (or will be) kept."""
    return cache_dir() / "runs" / f"{config.dataset}-{config.model}-{config_key(config)}"


def load_run(run_dir: str | Path) -> RunResult:
    """A finished run folder (``best.pt``, ``history.json``, ``results.json``) as a :class:`RunResult`."""
    run_dir = Path(run_dir)
    for name in ("best.pt", "history.json", "results.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} holds no finished run: {name} is missing")
    model, config = load_model(run_dir / "best.pt")
    history = json.loads((run_dir / "history.json").read_text())
    results = json.loads((run_dir / "results.json").read_text())
    results["test"]["action_conditional"] = {int(k): v for k, v in results["test"]["action_conditional"].items()}
    return RunResult(config, model, history, results["test"], results["best_epoch"],
                     results["best_val_frame_map"], results["steps"], run_dir=run_dir, paths=run_paths(run_dir))


def cached_train(config: TrainConfig, log=None) -> RunResult:
    """Train ``config`` unless a finished run of it is cached; return the run either way.

    The run is trained into a temporary folder that is renamed into place when it has
    finished, so an interrupted run is never mistaken for a finished one.
    """
    final = cached_run_dir(config)
    if (final / "results.json").is_file():
        return load_run(final)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = train(config.replace(run_dir=str(partial)), log=log)
    if not result.completed:
        raise RuntimeError(f"training of {config.model!r} stopped early ({result.stopped}); nothing cached")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return load_run(final)
