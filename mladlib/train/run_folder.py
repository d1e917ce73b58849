"""The run folder: which files a training run keeps, and how they are written.

A run folder holds (the key in :data:`RUN_FILES`, the file, what it holds, when it is written)::

    config       config.json          the TrainConfig; when training starts (again on a resume)
    last         last.pt              training checkpoint; after every epoch (also before its
                                      validation) and on a stop
    best         best.pt              weights of the best validation epoch; when an epoch improves
                                      (the last epoch's, at the end, without a validation split)
    history      history.json         one entry per epoch: losses, validation metrics, throughput,
                                      time; rewritten after every epoch
    log          train.log            the lines printed during training, appended as printed
    predictions  test_predictions.h5  per-video test scores of best.pt; at the end
                                      (read them with ``mladlib.data.load_predictions``)
    results      results.json         test metrics of best.pt; at the end, after the predictions

Every file but ``train.log`` is written atomically (:func:`mladlib.utils.atomic_path`: a
temporary ``.<name>.*`` beside it, then a rename), so a reader, or a run killed mid-write,
never sees half a file. One run at a time holds a folder: :meth:`RunFolder.claim` takes
its :class:`~mladlib.train.runlock.RunFolderLock` (``<run folder>/.lock``), and only then
deletes the temporaries a killed write left behind (no live run can be writing them).
Only rank 0 of a distributed job claims the folder and writes into it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..data import save_predictions
from ..utils import atomic_path, default_mode
from ..validate import WriteError
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .runlock import RunFolderLock, remove_stale_temporaries

RUN_FILES = {"config": "config.json", "last": "last.pt", "best": "best.pt", "history": "history.json",
             "log": "train.log", "results": "results.json", "predictions": "test_predictions.h5"}

# the checkpoint kind (mladlib.train.checkpoint.KINDS) each checkpoint file holds
_CHECKPOINT_KINDS = {"last": "training", "best": "best"}


def run_paths(run_dir: Path) -> dict[str, Path]:
    """The files a run folder holds, by role (keys of :data:`RUN_FILES`)."""
    return {key: run_dir / name for key, name in RUN_FILES.items() if (run_dir / name).exists()}


def write_json(path: Path, content: Any) -> None:
    """Write ``content`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(content, indent=1))


class RunFolder:
    """The files of one run in ``run_dir``: claimed with :meth:`claim`, written with the
    ``write_*``/``save_*`` methods, unlocked with :meth:`release`.

    A folder that is not claimed (on ranks other than 0) still names its files
    (:meth:`path`, :meth:`paths`); the trainer writes only from rank 0.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.lock: RunFolderLock | None = None
        self.stale_removed: list[Path] = []

    def path(self, key: str) -> Path:
        """The path of the file ``key`` (of :data:`RUN_FILES`), whether or not it exists."""
        return self.run_dir / RUN_FILES[key]

    def paths(self) -> dict[str, Path]:
        """The files the folder holds now; see :func:`run_paths`."""
        return run_paths(self.run_dir)

    def claim(self, resume: bool) -> list[Path]:
        """Lock the folder for this run (creating it if missing) and remove stale temporaries;
        the temporaries removed.

        ``ValueError`` naming the folder when another run holds the lock, when its lock
        file or ``train.log`` is a symbolic link, or, for a new run (``resume`` False),
        when the folder already holds a run's ``last.pt`` or ``best.pt``.
        The lock is kept (in :attr:`lock`) also when this raises: :meth:`release` it.
        """
        self.lock = RunFolderLock(self.run_dir)
        log = self.path("log")
        if log.is_symlink():
            raise ValueError(f"run folder {self.run_dir}: its {log.name} is a symbolic "
                             "link; refusing to write the run's log through it (remove "
                             "the link or choose another folder)")
        if not resume:
            last, best = self.path("last"), self.path("best")
            if last.exists():
                raise ValueError(f"run folder {self.run_dir} already holds a run; continue it with --resume "
                                 f"{last} or choose another run folder")
            if best.exists():
                raise ValueError(f"run folder {self.run_dir} holds the best.pt of an earlier run but no last.pt "
                                 "to resume; choose another run folder (or move that best.pt away)")
        # train.log is appended, never written atomically: no temporary of it exists
        atomic = [name for key, name in RUN_FILES.items() if key != "log"]
        self.stale_removed = remove_stale_temporaries(self.run_dir, atomic)
        return self.stale_removed

    def release(self, remove_if_created: bool = False) -> None:
        """Unlock (a no-op when not claimed); see :meth:`RunFolderLock.release`."""
        if self.lock is not None:
            self.lock.release(remove_if_created=remove_if_created)
            self.lock = None

    def write_json(self, key: str, content: Any) -> Path:
        """Write the JSON file ``key`` (``config``, ``history`` or ``results``) atomically."""
        path = self.path(key)
        write_json(path, content)
        return path

    def write_config(self, config: TrainConfig) -> Path:
        """Write ``config.json`` (creating the folder if a user removed it since the claim)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.write_json("config", config.to_dict())

    def save_checkpoint(self, key: str, config: TrainConfig, model_state: dict, **extra: Any) -> Path:
        """Write the checkpoint ``key`` (``last``: a training checkpoint, ``best``: best weights)
        atomically; ``extra`` as for :func:`mladlib.train.save_checkpoint`."""
        return save_checkpoint(self.path(key), _CHECKPOINT_KINDS[key], config, model_state, **extra)

    def save_predictions(self, predictions: Any) -> Path:
        """Write ``test_predictions.h5`` (see :func:`mladlib.data.save_predictions`)."""
        path = self.path("predictions")
        save_predictions(path, predictions)
        return path

    def append_log(self, line: str) -> None:
        """Append ``line`` to ``train.log`` (not atomic: a log may end mid-run).

        ``ValueError`` when ``train.log`` is a symbolic link: the log is never written
        through one (it could lead to any file of the user's, a shell start-up file).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.path("log")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, default_mode())
        except OSError as error:
            if path.is_symlink():
                raise ValueError(f"{path} is a symbolic link; refusing to write the "
                                 "run's log through it (remove the link)") from None
            reason = error.strerror or error
            raise WriteError(f"cannot write {path}: {reason}") from error
        with open(fd, "a", encoding="utf-8") as f:
            f.write(line + "\n")
