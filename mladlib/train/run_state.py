"""Where a run stands, and how its checkpoints carry it over an interruption.

:class:`RunState` counts a run's progress (epochs, the position inside the epoch,
optimizer steps), keeps its history and its best validation epoch, and holds the
stopping rule. :class:`RunCheckpoints` writes it into ``last.pt`` beside the weights,
the optimizer's and schedule's states and every rank's RNG states, and restores all of
them into a run's freshly built parts, so a resumed run computes what an uninterrupted
one would (bit for bit on CPU); ``best.pt`` holds the best epoch's weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state
from .config import RESUMABLE, TrainConfig
from .distributed import DistributedContext
from .run_folder import RunFolder
from .run_parts import RunParts


def new_epoch_stats() -> dict[str, float]:
    """An epoch's running sums: batch-mean losses, batches, windows, training seconds."""
    return {"loss": 0.0, "initial": 0.0, "final": 0.0, "batches": 0, "windows": 0,
            "seconds": 0.0}


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s weights and buffers on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class RunState:
    """A run's progress. ``epoch``: epochs finished; ``batch_in_epoch``: batches of the
    next one already trained; ``step``: optimizer steps taken. ``history``: one dict per
    finished epoch. ``best_epoch``/``best_val``: the epoch (1-based) with the highest
    validation f-mAP so far and that f-mAP (without a validation split: the last epoch
    and None, set when the run finishes); ``best_state``: its weights on the CPU (kept
    in ``best.pt``, not in ``last.pt``). ``elapsed_before``: seconds earlier processes
    ran the run; ``started``: when this one began (:func:`time.perf_counter` at the
    start of :meth:`~mladlib.train.Trainer.fit`)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_val: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    elapsed_before: float = 0.0
    epoch_stats: dict[str, float] = field(default_factory=new_epoch_stats)
    started: float = 0.0

    def elapsed(self) -> float:
        """Wall-clock seconds the run has been running (training, validating, writing
        checkpoints), this process's and earlier ones'."""
        return self.elapsed_before + time.perf_counter() - self.started

    def record_validation(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Whether validation f-mAP ``value`` of ``epoch`` is a new best (NaN never is);
        if so, keep it with a copy of ``model``'s weights."""
        if math.isnan(value) or (self.best_val is not None and value <= self.best_val):
            return False
        self.best_epoch, self.best_val = epoch, value
        self.best_state = cpu_state(model)
        return True

    @property
    def validations_since_best(self) -> int:
        """Validations after the best one (all of them while none has a finite
        f-mAP)."""
        return sum(1 for entry in self.history if entry["val_frame_map"] is not None
                   and entry["epoch"] > (self.best_epoch or 0))

    def plateaued(self, patience: int | None) -> bool:
        """``patience`` validations in a row without a new best."""
        return patience is not None and self.validations_since_best >= patience

    def ended_by(self, epochs: int, patience: int | None) -> str | None:
        """The stopping rule: ``"plateau"`` (see :meth:`plateaued`), else ``"cap"`` once
        ``epochs`` are trained, else None (training goes on)."""
        if self.plateaued(patience):
            return "plateau"
        return "cap" if self.epoch >= epochs else None

    def count_batch(self, loss: float, initial: float, final: float,
                    windows: int) -> None:
        """Count a trained batch: its mean losses (averaged over ranks) into the epoch's
        sums, ``windows`` (over all ranks) into its throughput."""
        stats = self.epoch_stats
        stats["loss"] += loss
        stats["initial"] += initial
        stats["final"] += final
        stats["batches"] += 1
        stats["windows"] += windows
        self.batch_in_epoch += 1

    def epoch_entry(self, parts: RunParts) -> dict[str, Any]:
        """The history entry of the epoch being finished, before its validation: mean
        losses per batch (``loss_initial`` None for a model without an initial head),
        the learning rate it ended with, and its throughput."""
        has_initial = getattr(parts.model, "initial_classifier", None) is not None
        lr = parts.optimizer.param_groups[0]["lr"]
        stats = self.epoch_stats
        batches = max(stats["batches"], 1)
        return {
            "epoch": self.epoch + 1, "step": self.step,
            "loss": stats["loss"] / batches,
            "loss_initial": stats["initial"] / batches if has_initial else None,
            "loss_final": stats["final"] / batches,
            "lr": lr,
            "windows": stats["windows"],
            "windows_per_s": stats["windows"] / max(stats["seconds"], 1e-9),
            "train_seconds": stats["seconds"],
            "val_frame_map": None,
        }

    def close_epoch(self, entry: dict[str, Any]) -> None:
        """Count the epoch finished, with ``entry`` its line of the history."""
        self.epoch += 1
        self.batch_in_epoch = 0
        self.history.append(entry)
        self.epoch_stats = new_epoch_stats()


class RunCheckpoints:
    """A run's ``last.pt`` and ``best.pt`` in ``folder`` (None: the run writes none),
    written by rank 0 of ``context`` with ``config`` (the config as the files record
    it). :attr:`last_saved`: the newest ``last.pt`` and where the run stood in it."""

    def __init__(self, folder: RunFolder | None, context: DistributedContext,
                 config: TrainConfig) -> None:
        self.folder, self.context, self.config = folder, context, config
        self.last_saved: str | None = None

    @property
    def writes(self) -> bool:
        """Whether this process writes the files (rank 0, with a run folder)."""
        return self.folder is not None and self.context.is_main

    def save_last(self, parts: RunParts, state: RunState, elapsed: float) -> None:
        """Write ``last.pt``: everything the run needs to go on from ``state``, with
        every rank's RNG states (so every rank calls this). ``elapsed``: seconds the
        run has been running (:meth:`RunState.elapsed`)."""
        rng = self.context.all_gather(capture_rng_state())
        if not self.writes:
            return
        scheduler = parts.scheduler
        path = self.folder.save_checkpoint(
            "last", self.config, cpu_state(parts.model),
            model_sizes=parts.model_sizes,
            optimizer=parts.optimizer.state_dict(),
            scheduler=scheduler.state_dict() if scheduler is not None else None,
            rng=rng, epoch=state.epoch, batch=state.batch_in_epoch, step=state.step,
            batches_per_epoch=len(parts.sampler), history=state.history,
            best_epoch=state.best_epoch, best_val_frame_map=state.best_val,
            elapsed_s=elapsed, epoch_stats=dict(state.epoch_stats),
            data_fingerprint=parts.data_fingerprint,
        )
        self.last_saved = f"{path} (epoch {state.epoch}, step {state.step})"

    def save_best(self, parts: RunParts, state: RunState, metrics: dict | None) -> None:
        """Write ``best.pt``: ``state.best_state``, the weights of ``state.best_epoch``,
        with its validation ``metrics`` (None without a validation split)."""
        if self.writes:
            self.folder.save_checkpoint(
                "best", self.config, state.best_state, model_sizes=parts.model_sizes,
                epoch=state.best_epoch, step=state.step, val_metrics=metrics,
            )

    def kept(self) -> str:
        """What a run that fails now leaves to resume from, in words."""
        if self.last_saved:
            return f"the last good checkpoint, {self.last_saved}, is kept"
        if self.folder is not None:
            return "no checkpoint had been written yet"
        return "this run writes no checkpoints (run_dir is None)"

    def restore(self, checkpoint: dict, parts: RunParts,
                log: Callable[[str], None]) -> RunState:
        """Load ``checkpoint`` (the folder's ``last.pt``) into ``parts`` and this rank's
        RNG streams; the state the run stopped in, with the best epoch's weights from
        ``best.pt``. ``ValueError`` when the data or the number of processes changed."""
        last, context = self.folder.path("last"), self.context
        saved = checkpoint.get("data_fingerprint")  # absent from older checkpoints
        if saved is not None and saved != parts.data_fingerprint:
            raise ValueError(
                f"the dataset changed since {last} was written "
                "(its videos, lengths, labels or feature size differ): resuming would "
                "mix two datasets in one run; restore the data or start a new run")
        parts.model.load_state_dict(checkpoint["model"])
        parts.optimizer.load_state_dict(checkpoint["optimizer"])
        if parts.scheduler is not None and checkpoint.get("scheduler") is not None:
            parts.scheduler.load_state_dict(checkpoint["scheduler"])
        state = RunState(
            epoch=checkpoint["epoch"], batch_in_epoch=checkpoint["batch"],
            step=checkpoint["step"], history=list(checkpoint["history"]),
            best_epoch=checkpoint["best_epoch"],
            best_val=checkpoint["best_val_frame_map"],
            elapsed_before=checkpoint["elapsed_s"],
            epoch_stats=dict(checkpoint["epoch_stats"]),
        )
        written_with = checkpoint["batches_per_epoch"]
        if len(parts.sampler) != written_with:
            raise ValueError(
                f"the checkpoint was written with {written_with} batches per epoch and "
                f"this job has {len(parts.sampler)}: resume with the same number of "
                "processes")
        rng = checkpoint["rng"]
        if len(rng) == context.world_size:
            restore_rng_state(rng[context.rank])
        else:
            log(f"warning: the checkpoint holds RNG states of {len(rng)} processes, "
                f"this job has {context.world_size}: dropout masks will differ from an "
                "uninterrupted run")
        if state.best_epoch is not None and self.config.val_fraction > 0:
            best_path = self.folder.path("best")
            best = context.from_main(lambda: load_checkpoint(best_path, kind="best"))
            state.best_state = best["model"]
        self.last_saved = f"{last} (epoch {state.epoch}, step {state.step})"
        return state


def resumed_config(
    saved: TrainConfig, given: TrainConfig | None, path: Path
) -> TrainConfig:
    """The config a run resumed from ``path`` goes on with: ``saved`` (the
    checkpoint's), or ``given`` when it differs only in
    :data:`~mladlib.train.config.RESUMABLE` settings (and not in ``epochs`` under a
    learning-rate schedule); ``ValueError`` otherwise."""
    if given is None:
        return saved
    before, after = saved.to_dict(), given.to_dict()
    changed = [f for f, v in after.items()
               if v != before[f] and f not in (*RESUMABLE, "run_dir")]
    if changed:
        shown = ", ".join(f"{f} (checkpoint: {before[f]!r})" for f in changed[:4])
        raise ValueError(f"cannot change {shown} when resuming {path}; only "
                         f"{', '.join(RESUMABLE)} may change")
    if given.epochs != saved.epochs and saved.scheduler != "none":
        raise ValueError(f"cannot change epochs when resuming {path}: its "
                         f"{saved.scheduler} schedule depends on them")
    return given
