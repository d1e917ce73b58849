"""The training loop: windows in, best-on-validation model and test metrics out.

:class:`Trainer` builds a run (:mod:`~mladlib.train.run_parts`), or resumes one from its
``last.pt`` (:mod:`~mladlib.train.run_state`), trains it epoch by epoch
(:mod:`~mladlib.train.epoch`), validates and keeps the best epoch until the epoch cap
or a plateau, then scores the best model on the test split. A run stopped after any
optimizer step (a signal, or ``stop_after_steps``) resumes bit for bit on CPU.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..utils import capture_global_state, restore_global_state, seed_everything
from .checkpoint import build_from_config, load_checkpoint
from .config import TrainConfig, make_config, resolve_run_dir
from .distributed import setup_distributed
from .epoch import stop_reason, synced_flags, train_epoch
from .evaluate import Evaluation, evaluate
from .inference import autocast_dtype
# RUN_FILES, run_paths, train_positive_rate: still importable from here, where they
# were defined before their modules existed (the book imports train_positive_rate)
from .run_folder import RUN_FILES, RunFolder, run_paths  # noqa: F401
from .run_log import (RunLog, epoch_line, finished_line, progress_enabled, start_lines,
                      stopped_line)
from .run_parts import build_run_parts, train_positive_rate  # noqa: F401
from .run_result import RunResult
from .run_state import RunCheckpoints, RunState, cpu_state, resumed_config
from .runlock import RunFolderLock
from .signals import GracefulStop


class Trainer:
    """Sets up a run from a :class:`TrainConfig` (or resumes one); :meth:`fit` runs it.

    ``resume``: path of a run's ``last.pt``; the run continues in that folder with the
    checkpoint's configuration (``config``, if given, may differ only in
    :data:`~mladlib.train.config.RESUMABLE` settings). ``progress``: see
    :func:`progress_enabled`. ``log``: called with each line of progress text (rank 0).
    :attr:`parts`: what the run trains with; :attr:`state`: where it stands. After
    :meth:`fit`, :attr:`model` holds the last step's weights.

    No side effects: the settings a run needs (seeds, deterministic mode, the thread
    count ``config.num_threads``) hold inside :meth:`fit` only. Construction and
    :meth:`fit` each leave the process's global torch/NumPy/Python settings and random
    streams as they found them (:func:`mladlib.utils.capture_global_state`), also when
    they fail.
    """

    def __init__(self, config: TrainConfig | None = None, *,
                 resume: str | os.PathLike | None = None, progress: bool | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self._caller_state = capture_global_state()
        self.folder: RunFolder | None = None  # the run's files; claimed on rank 0 only
        device = config.device if config is not None else "auto"
        self.context, self.device = setup_distributed(device)
        try:
            self._setup(config, resume, progress, log)
        except BaseException:
            self._release(setup_failed=True)
            raise
        # the run's seeded streams and settings wait for fit(); the caller's come back
        self._run_state = capture_global_state()
        restore_global_state(self._caller_state)

    def _release(self, setup_failed: bool = False) -> None:
        """Leave the process as it was: the caller's settings and random streams, no
        process group of ours, the run folder unlocked (and removed if this run created
        it and wrote nothing)."""
        try:
            restore_global_state(self._caller_state)
            if self.folder is not None:
                self.folder.release(remove_if_created=setup_failed)
        finally:
            self.context.shutdown()

    @property
    def run_lock(self) -> RunFolderLock | None:
        """The run folder's lock while this run holds it (rank 0), else None."""
        return self.folder.lock if self.folder is not None else None

    def _setup(self, config: TrainConfig | None, resume, progress: bool | None,
               log: Callable[[str], None] | None) -> None:
        """Claim the run folder, settle the config, build (resuming: restore) parts."""
        context, checkpoint = self.context, None
        if resume is not None:
            # through a link (~/latest.pt -> runs/x/last.pt): the run's own folder,
            # claimed before last.pt is read (a run still writing it: no stale copy)
            resume = Path(resume).resolve()
            self._claim(resume.parent, resume=True)
            checkpoint = context.from_main(
                lambda: load_checkpoint(resume, kind="training"))
            config = resumed_config(checkpoint["config"], config, resume)
        if config is None:
            raise ValueError("train needs a config or a checkpoint to resume")
        self.show_progress = context.is_main and progress_enabled(progress)
        self.autocast = autocast_dtype(config.amp, self.device)
        seed_everything(config.seed, num_threads=config.num_threads)
        if resume is None:
            run_dir = context.from_main(lambda: resolve_run_dir(config))
            self._claim(run_dir, resume=False)
        self.run_dir = self.folder.run_dir if self.folder is not None else None
        if self.run_dir is not None:
            config = config.replace(run_dir=str(self.run_dir))
        self.config = config
        main = context.is_main
        self.log = RunLog(log if main else None, self.folder if main else None)
        # stop_after_steps belongs to one session: a resumed run goes on to the end
        self.saved_config = config.replace(stop_after_steps=None)  # as files record it
        self.checkpoints = RunCheckpoints(self.folder, context, self.saved_config)
        self.parts = parts = build_run_parts(config, context, self.device)
        self.model, self.splits, self.window = parts.model, parts.splits, parts.window
        self.state = RunState()
        for path in self.folder.stale_removed if self.folder is not None else []:
            self.log(f"removed {path.name}, a temporary file an interrupted checkpoint "
                     "write left behind")
        if checkpoint is not None:
            self.state = self.checkpoints.restore(checkpoint, self.parts, self.log)

    def _claim(self, run_dir: Path | None, resume: bool) -> None:
        """Claim ``run_dir`` for this run on rank 0 (see :meth:`RunFolder.claim`)."""
        if run_dir is not None:
            # kept before claiming: a refused claim holds the lock, which _release frees
            self.folder = RunFolder(run_dir)
            self.context.from_main(lambda: self.folder.claim(resume=resume))

    def fit(self) -> RunResult:
        """Train until ``config.epochs`` or a plateau, then score the best model on the
        test split; a stop (signal, ``stop_after_steps``) saves last.pt and returns."""
        config, context, state = self.config, self.context, self.state
        self._caller_state = capture_global_state()
        restore_global_state(self._run_state)
        state.started = time.perf_counter()
        try:
            with GracefulStop(announce=context.is_main) as stop:
                if context.is_main and self.folder is not None:
                    self.folder.write_config(self.saved_config)
                for line in start_lines(config, self.parts, state, self.device,
                                        context.world_size, self.autocast,
                                        self.run_dir):
                    self.log(line)
                while state.ended_by(config.epochs, config.patience) is None:
                    reason = self._train_epoch(stop)
                    if reason is not None:
                        self.checkpoints.save_last(self.parts, state, state.elapsed())
                        return self._stopped(reason)
                    self._end_epoch()
                    reason = stop_reason(synced_flags(context, self.device, stop))
                    if reason is not None:  # came during validation: last.pt is current
                        return self._stopped(reason)
                return self._finish()
        finally:
            self._release()

    def _train_epoch(self, stop: GracefulStop) -> str | None:
        """Train the rest of the current epoch; the reason it stopped early, or None."""
        return train_epoch(self.parts, self.state, self.config, self.context,
                           self.device, self.autocast, stop, self.show_progress,
                           kept=self.checkpoints.kept())

    def _evaluate(self, model: nn.Module, split: str, standard: bool) -> Evaluation:
        c = self.config
        return evaluate(
            model, self.splits[split], window=self.window, stride=c.eval_stride,
            taus=c.taus, threshold=c.threshold, standard=standard, device=self.device,
            autocast=self.autocast, batch_size=c.eval_batch_size, context=self.context,
        )

    def _end_epoch(self) -> None:
        """Validate (when due) and keep a new best; write last.pt and the history."""
        config, state = self.config, self.state
        entry = state.epoch_entry(self.parts)
        epoch, improved = entry["epoch"], False
        due = epoch % config.eval_every == 0 or epoch == config.epochs
        if self.splits.val is not None and due:
            # the epoch's training is saved before validation: a failure there loses no
            # training (a resumed run finds the epoch's batches done and validates)
            self.checkpoints.save_last(self.parts, state, state.elapsed())
            metrics = self._evaluate(self.model, "val", standard=False)
            value = metrics.frame_map
            entry["val_frame_map"] = value
            entry["val_action_conditional"] = metrics.action_conditional
            improved = state.record_validation(epoch, value, self.model)
            if improved:
                self.checkpoints.save_best(self.parts, state, metrics.to_dict())
        entry["elapsed_s"] = state.elapsed()
        state.close_epoch(entry)
        self.checkpoints.save_last(self.parts, state, state.elapsed())
        if self.context.is_main and self.folder is not None:
            self.folder.write_json("history", state.history)
        self.log(epoch_line(entry, config.epochs, improved))

    def _result(self, model: nn.Module, test_metrics: dict | None,
                **outcome: str) -> RunResult:
        s, paths = self.state, self.folder.paths() if self.folder is not None else {}
        return RunResult(self.config, model, s.history, test_metrics, s.best_epoch,
                         s.best_val, s.step, run_dir=self.run_dir, paths=paths,
                         **outcome)

    def _stopped(self, reason: str) -> RunResult:
        last = self.folder.path("last") if self.folder is not None else None
        self.log(stopped_line(reason, self.state, self.checkpoints.last_saved, last))
        return self._result(copy.deepcopy(self.model).eval(), None, stopped=reason)

    def _finish(self) -> RunResult:
        state = self.state
        ended_by = state.ended_by(self.config.epochs, self.config.patience)
        if state.best_state is None:  # no validation split: the last epoch is the model
            state.best_epoch, state.best_state = state.epoch, cpu_state(self.model)
            self.checkpoints.save_best(self.parts, state, None)
        best = build_from_config(self.config, **self.parts.model_sizes,
                                 device=self.device)
        best.load_state_dict(state.best_state)
        best = best.to(self.device).eval()
        evaluation = self._evaluate(best, "test", standard=True)
        metrics, predictions = evaluation.to_dict(), evaluation.predictions
        if self.context.is_main and self.folder is not None:
            self.folder.save_predictions(predictions)
            self.folder.write_json("results", {
                "test": metrics, "best_epoch": state.best_epoch,
                "best_val_frame_map": state.best_val, "steps": state.step,
                "ended_by": ended_by, "config": self.saved_config.to_dict(),
            })
        result = self._result(best, metrics, ended_by=ended_by)
        self.log(finished_line(state, ended_by, self.config.patience))
        return result


def train(config: TrainConfig | None = None, *, resume: str | os.PathLike | None = None,
          progress: bool | None = None, log: Callable[[str], None] | None = None,
          **overrides: Any) -> RunResult:
    """Train a model and evaluate it on the test split; see :class:`Trainer`.

    ``train()`` trains MLAD on the embedded dataset with the ``synthetic`` preset;
    ``train(epochs=3, model="cf")`` overrides preset settings; ``train(config)`` runs a
    given :class:`TrainConfig`; ``train(resume="runs/x/last.pt")`` continues a run.
    Quiet unless ``log`` (e.g. ``print``) or ``progress`` say otherwise.
    """
    if config is None and resume is None:
        config = make_config("synthetic", **overrides)
    elif overrides:
        base = (config if config is not None
                else load_checkpoint(resume, kind="training")["config"])
        config = base.replace(**overrides)
    return Trainer(config, resume=resume, progress=progress, log=log).fit()
