"""What a training run reports: the lines it prints and appends to ``train.log``
(rank 0 only), and a progress bar per epoch on a terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from ..models import MODEL_LABELS, count_parameters
from .config import TrainConfig
from .run_folder import RunFolder
from .run_parts import RunParts
from .run_state import RunState


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: never when ``MLADLIB_PROGRESS=0``; else
    ``progress``, or (None) only when stderr is a terminal."""
    setting = os.environ.get("MLADLIB_PROGRESS", "1").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty() if progress is None else bool(progress)


def epoch_progress_bar(total: int, done: int, epoch: int, epochs: int):
    """A ``tqdm`` bar on stderr over an epoch's ``total`` batches, ``done`` of them
    trained (``epoch``: 1-based)."""
    from tqdm import tqdm  # plain text bars: no notebook widgets needed

    return tqdm(total=total, initial=done, unit="batch", leave=False,
                desc=f"epoch {epoch}/{epochs}", dynamic_ncols=True, file=sys.stderr)


class RunLog:
    """Sends each line to ``log`` (the caller's, e.g. ``print``) and to ``folder``'s
    ``train.log``; either may be None. Give neither on ranks other than 0."""

    def __init__(self, log: Callable[[str], None] | None,
                 folder: RunFolder | None) -> None:
        self.log, self.folder = log, folder

    def __call__(self, line: str) -> None:
        if self.log is not None:
            self.log(line)
        if self.folder is not None:
            self.folder.append_log(line)


def start_lines(
    config: TrainConfig, parts: RunParts, state: RunState, device: torch.device,
    world_size: int, autocast: torch.dtype | None, run_dir: Path | None,
) -> list[str]:
    """The lines a run starts with: model, data, batches and schedule, run folder."""
    c, s = config, parts.splits
    label = MODEL_LABELS.get(c.model, c.model)
    n_val = len(s.val) if s.val is not None else 0
    world = f" x {world_size} processes" if world_size > 1 else ""
    amp = ", bf16 autocast" if autocast is not None else ""
    start = "resuming" if state.step or state.epoch else "training"
    accumulated = (f" x {c.grad_accumulation} accumulated"
                   if c.grad_accumulation > 1 else "")
    variable = " (variable length)" if c.variable_length else ""
    parameters = count_parameters(parts.model)
    lines = [
        f"{start} {label} ({parameters:,} parameters) on {c.dataset}: "
        f"{len(s.train)} train / {n_val} val / {len(s.test)} test videos",
        f"window {parts.window}{variable}, batch {c.batch_size}{world}{accumulated}, "
        f"{parts.steps_per_epoch} steps per epoch, {c.epochs} epochs, lr {c.lr:g}, "
        f"device {device}{amp}",
    ]
    if run_dir is not None:
        lines.append(f"run folder: {run_dir}")
    return lines


def stopped_line(reason: str, state: RunState, last_saved: str | None,
                 last: Path | None) -> str:
    """The line of a run stopped early by ``reason``; ``last_saved``: its newest
    ``last.pt`` and where the run stood in it; ``last``: the path to resume from."""
    where = last_saved or "nowhere (this run writes no files)"
    if last is not None:
        where += f"; resume with: python -m mladlib train --resume {last}"
    return (f"stopped ({reason}) at epoch {state.epoch + 1}, step {state.step}; "
            f"checkpoint: {where}")


def finished_line(state: RunState, ended_by: str, patience: int | None) -> str:
    """The last line of a completed run (``ended_by``: see
    :class:`~mladlib.train.RunResult`)."""
    how = (f"no new best in {patience} validations" if ended_by == "plateau"
           else "epoch cap")
    return (f"finished: {state.step} steps in {state.elapsed():.1f} s ({how}; "
            f"best epoch {state.best_epoch})")


def epoch_line(entry: dict[str, Any], epochs: int, improved: bool) -> str:
    """An epoch's line: its history ``entry``; ``*`` marks a new best validation."""
    line = f"epoch {entry['epoch']:>3}/{epochs}  loss {entry['loss']:.4f}"
    if entry["loss_initial"] is not None:
        line += (f" (initial {entry['loss_initial']:.4f}, "
                 f"final {entry['loss_final']:.4f})")
    if entry["val_frame_map"] is not None:
        mark = " *" if improved else "  "
        line += f"  val f-mAP {100 * entry['val_frame_map']:.2f}{mark}"
    line += f"  {entry['windows_per_s']:,.0f} windows/s  {entry['elapsed_s']:.1f} s"
    return line
