"""The training loop: windows in, best-on-validation model and test metrics out.

One optimizer *step* = ``grad_accumulation`` batches. After every step the run may stop
(a signal, or ``stop_after_steps``): it writes ``last.pt`` holding everything needed to
carry on, including the position inside the epoch, so a resumed run computes exactly
what an uninterrupted one would (bit for bit on CPU). What the run folder holds, and how
its files are written, is :mod:`mladlib.train.run_folder`'s.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from .. import synth
from ..data import WindowDataset, WindowSampler, collate_windows
from ..models import MODEL_LABELS, count_parameters
from ..utils import capture_global_state, restore_global_state, seed_everything
from ..models.prior import init_prior_bias
from .checkpoint import build_from_config, capture_rng_state, load_checkpoint, restore_rng_state
from .config import RESUMABLE, TrainConfig, make_config, resolve_run_dir
from .datasets import DataSplits, data_fingerprint, load_splits
from .distributed import setup_distributed, synchronize_running_scales
from .evaluate import Evaluation, evaluate, format_results
from .inference import autocast_dtype
from .loss import mlad_loss
# RUN_FILES and run_paths: re-exported, as they were defined here before run_folder.py existed
from .run_folder import RUN_FILES, RunFolder, run_paths  # noqa: F401
from .runlock import RunFolderLock
from .signals import GracefulStop

STOP_AFTER_STEPS = "stop_after_steps"
_DDP_OPTIONS = inspect.signature(DistributedDataParallel.__init__).parameters


def train_positive_rate(dataset) -> torch.Tensor:
    """``(C,)`` fraction of the dataset's steps on which each class is present."""
    counts = sum(torch.from_numpy(dataset.labels(i).sum(0, dtype=np.int64)) for i in range(len(dataset)))
    return counts.double() / max(sum(dataset.frame_counts), 1)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class RunResult:
    """What :func:`train` returns.

    ``model``: the best validation epoch's weights (the last epoch's without a validation
    split), in eval mode. ``history``: one dict per epoch. ``test_metrics``: the test
    split's :class:`~mladlib.train.Evaluation` as the record ``results.json`` stores
    (:meth:`~mladlib.train.Evaluation.to_dict`; None when the run stopped early).
    ``stopped``: None when the run completed, else ``"SIGINT"``, ``"SIGTERM"`` or
    ``"stop_after_steps"``. ``ended_by``: for a completed run, ``"plateau"`` when
    ``config.patience`` validations in a row brought no new best, else ``"cap"`` (all
    ``config.epochs`` trained).
    """

    config: TrainConfig
    model: nn.Module
    history: list[dict]
    test_metrics: dict | None
    best_epoch: int | None
    best_val_frame_map: float | None
    steps: int
    stopped: str | None = None
    run_dir: Path | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    ended_by: str | None = None

    @property
    def completed(self) -> bool:
        return self.stopped is None

    def table(self) -> str:
        """The test results as plain aligned text (see :func:`mladlib.train.format_results`)."""
        if self.test_metrics is None:
            return f"run stopped ({self.stopped}) after {self.steps} steps: no test results"
        title = f"{MODEL_LABELS.get(self.config.model, self.config.model)} on {self.config.dataset}, test split"
        if self.best_epoch is not None:
            title += f" (best epoch {self.best_epoch}"
            title += f", val f-mAP {100 * self.best_val_frame_map:.2f})" if self.best_val_frame_map is not None else ")"
        return format_results(self.test_metrics, title)


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: never when ``MLADLIB_PROGRESS=0``; else ``progress``,
    or (None) only when stderr is a terminal."""
    if os.environ.get("MLADLIB_PROGRESS", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty() if progress is None else bool(progress)


class _ResumableBatches(Sampler):
    """The window sampler's batches of the current epoch from batch ``start`` on (the
    batches before it were consumed before an interruption)."""

    def __init__(self, sampler: WindowSampler) -> None:
        self.sampler, self.start = sampler, 0

    def __iter__(self):
        return iter(self.sampler.epoch_batches()[self.start:])

    def __len__(self) -> int:
        return len(self.sampler) - self.start


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class Trainer:
    """Sets up a run from a :class:`TrainConfig` (or resumes one) and trains it with :meth:`fit`.

    ``resume``: path of a run's ``last.pt``; the run continues in that folder with the
    checkpoint's configuration (``config``, if given, may differ only in
    :data:`~mladlib.train.config.RESUMABLE` settings). ``progress``: see
    :func:`progress_enabled`. ``log``: called with each line of progress text (rank 0).
    After :meth:`fit`, :attr:`model` holds the last step's weights.

    No side effects: the settings a run needs (seeds, deterministic mode, the thread count
    ``config.num_threads``) hold inside :meth:`fit` only. Construction and :meth:`fit` each
    leave the process's global torch/NumPy/Python settings and random streams as they found
    them (:func:`mladlib.utils.capture_global_state`), also when they fail.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        resume: str | os.PathLike | None = None,
        progress: bool | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._caller_state = capture_global_state()
        self.folder: RunFolder | None = None  # the run folder's files; claimed (locked) on rank 0 only
        self.context, self.device = setup_distributed(config.device if config is not None else "auto")
        try:
            self._setup(config, resume, progress, log)
        except BaseException:
            self._release(setup_failed=True)
            raise
        # the run's seeded streams and settings wait for fit(); the caller gets theirs back
        self._run_state = capture_global_state()
        restore_global_state(self._caller_state)

    def _release(self, setup_failed: bool = False) -> None:
        """Leave the process as it was: the caller's settings and random streams, no process
        group of ours, the run folder unlocked (and removed if this run created it and wrote
        nothing)."""
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

    # --- setup ---------------------------------------------------------------------------

    def _setup(self, config: TrainConfig | None, resume, progress: bool | None, log) -> None:
        context = self.context
        checkpoint = None
        if resume is not None:
            # through a link (~/latest.pt -> runs/x/last.pt): the run's own folder,
            # claimed before last.pt is read (a run still writing it: no stale copy)
            resume = Path(resume).resolve()
            self.run_dir = context.from_main(lambda: self._claim_run_dir(resume))
            checkpoint = context.from_main(lambda: load_checkpoint(resume, kind="training"))
            config = self._resumed_config(checkpoint["config"], config, resume)
        if config is None:
            raise ValueError("train needs a config or a checkpoint to resume")
        self.config = config
        self.log_fn = log if context.is_main else None
        self.show_progress = context.is_main and progress_enabled(progress)
        self.autocast = autocast_dtype(config.amp, self.device)
        seed_everything(config.seed, num_threads=config.num_threads)

        if resume is None:
            self.run_dir = context.from_main(lambda: self._claim_run_dir(resume))
        if self.run_dir is not None:
            self.config = config = config.replace(run_dir=str(self.run_dir))
            if self.folder is None:  # ranks other than 0 name the files but write none
                self.folder = RunFolder(self.run_dir)

        if config.dataset == "synthetic" and config.root is None:
            # generated on first use: one process per machine writes it, the others wait
            if context.local_rank == 0:
                synth.dataset_root(config.synthetic_size, config.synthetic_seed)
            context.barrier()
        wanted = ("train", "val", "test") if config.val_fraction > 0 else ("train", "test")
        self.splits: DataSplits = load_splits(config, wanted)
        self.data_fingerprint = data_fingerprint(self.splits)  # kept in last.pt
        train_set = self.splits.train
        self.window = config.window or self.splits.spec.default_window
        if config.variable_length and self.window % config.length_step:
            raise ValueError(f"window {self.window} must be a multiple of length_step {config.length_step} "
                             "with variable-length training (or turn variable_length off)")
        self.num_classes, self.feature_dim = train_set.num_classes, train_set.feature_dim

        self.model = build_from_config(config, self.num_classes, self.feature_dim, self.device)
        if config.prior_bias:
            init_prior_bias(self.model, train_positive_rate(train_set))
        self.model = self.model.to(self.device)
        # every rank draws its own dropout masks (the weights above are equal on all ranks)
        stream = np.random.SeedSequence([config.seed, context.rank]).generate_state(2)
        torch.manual_seed(int(stream[0]))
        np.random.seed(int(stream[1]))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

        self.sampler = WindowSampler(
            train_set.frame_counts, config.batch_size, self.window, config.variable_length, config.length_step,
            config.windows_per_epoch, seed=config.seed, num_replicas=context.world_size, rank=context.rank,
        )
        self.batches = _ResumableBatches(self.sampler)
        # The loader's own generator: iterating it must not draw from the global RNG,
        # or a resumed epoch would shift the dropout masks.
        self.loader_generator = torch.Generator()
        self.loader = DataLoader(
            WindowDataset(train_set), batch_sampler=self.batches, collate_fn=collate_windows,
            num_workers=config.num_workers, pin_memory=self.device.type == "cuda", generator=self.loader_generator,
        )
        self.steps_per_epoch = math.ceil(len(self.sampler) / config.grad_accumulation)
        self.scheduler = None
        if config.scheduler == "cosine":
            total_steps = config.epochs * self.steps_per_epoch
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total_steps)

        self.ddp: DistributedDataParallel | None = None
        forward: nn.Module = self.model
        if context.enabled:
            # no buffer broadcast from rank 0: the running feature scale all-reduces its
            # statistics itself (every rank holds the same), and the rest are constants
            synchronize_running_scales(self.model)
            if "forward_sync_buffers" in _DDP_OPTIONS:
                no_buffer_sync = {"forward_sync_buffers": False}
            else:  # the option's name in torch releases before it was renamed
                no_buffer_sync = {"broadcast_buffers": False}
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(
                self.model, device_ids=device_ids, **no_buffer_sync
            )
            forward = self.ddp
        self.forward = torch.compile(forward) if config.compile else forward

        # progress of the run
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_val: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.elapsed_before = 0.0
        self._reset_epoch_stats()
        self.last_saved: str | None = None
        for path in self.folder.stale_removed if self.folder is not None else []:
            self._log(f"removed {path.name}, a temporary file an interrupted checkpoint write left behind")
        if checkpoint is not None:
            self._restore(checkpoint)

    def _resumed_config(self, saved: TrainConfig, given: TrainConfig | None, path: Path) -> TrainConfig:
        if given is None:
            return saved
        before, after = saved.to_dict(), given.to_dict()
        changed = [f for f, v in after.items() if v != before[f] and f not in (*RESUMABLE, "run_dir")]
        if changed:
            shown = ", ".join(f"{f} (checkpoint: {before[f]!r})" for f in changed[:4])
            raise ValueError(f"cannot change {shown} when resuming {path}; only {', '.join(RESUMABLE)} may change")
        if given.epochs != saved.epochs and saved.scheduler != "none":
            raise ValueError(
                f"cannot change epochs when resuming {path}: its {saved.scheduler} schedule depends on them")
        return given

    def _claim_run_dir(self, resume) -> Path | None:
        """The run folder (rank 0), claimed for this run (see :meth:`RunFolder.claim`)."""
        run_dir = resume.parent if resume is not None else resolve_run_dir(self.config)
        if run_dir is None:
            return None
        # kept before claiming: a refused claim still holds the lock, which _release frees
        self.folder = RunFolder(run_dir)
        self.folder.claim(resume=resume is not None)
        return run_dir

    def _restore(self, checkpoint: dict) -> None:
        saved = checkpoint.get("data_fingerprint")  # absent from older checkpoints
        if saved is not None and saved != self.data_fingerprint:
            raise ValueError(
                f"the dataset changed since {self.folder.path('last')} was written "
                "(its videos, lengths, labels or feature size differ): resuming would "
                "mix two datasets in one run; restore the data or start a new run")
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.epoch, self.batch_in_epoch, self.step = checkpoint["epoch"], checkpoint["batch"], checkpoint["step"]
        self.history = list(checkpoint["history"])
        self.best_epoch, self.best_val = checkpoint["best_epoch"], checkpoint["best_val_frame_map"]
        self.elapsed_before = checkpoint["elapsed_s"]
        self.epoch_stats = dict(checkpoint["epoch_stats"])
        if len(self.sampler) != checkpoint["batches_per_epoch"]:
            raise ValueError(f"the checkpoint was written with {checkpoint['batches_per_epoch']} batches per epoch and "
                             f"this job has {len(self.sampler)}: resume with the same number of processes")
        rng = checkpoint["rng"]
        if len(rng) == self.context.world_size:
            restore_rng_state(rng[self.context.rank])
        else:
            self._log(f"warning: the checkpoint holds RNG states of {len(rng)} processes, this job has "
                      f"{self.context.world_size}: dropout masks will differ from an uninterrupted run")
        if self.best_epoch is not None and self.config.val_fraction > 0:
            best_path = self.folder.path("best")
            best = self.context.from_main(lambda: load_checkpoint(best_path, kind="best"))
            self.best_state = best["model"]
        self.last_saved = f"{self.folder.path('last')} (epoch {self.epoch}, step {self.step})"

    # --- helpers -------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        if not self.context.is_main:
            return
        if self.log_fn is not None:
            self.log_fn(line)
        if self.folder is not None:
            self.folder.append_log(line)

    @property
    def _saved_config(self) -> TrainConfig:
        """The config as files record it: ``stop_after_steps`` belongs to one session only,
        so a resumed run goes on to the end unless told otherwise."""
        return self.config.replace(stop_after_steps=None)

    def _reset_epoch_stats(self) -> None:
        self.epoch_stats = {"loss": 0.0, "initial": 0.0, "final": 0.0, "batches": 0, "windows": 0, "seconds": 0.0}

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.session_start

    def _save_training_checkpoint(self) -> None:
        """Write ``last.pt`` (rank 0), with every rank's RNG states; every rank must call it."""
        rng = self.context.all_gather(capture_rng_state())
        if self.folder is None or not self.context.is_main:
            return
        path = self.folder.save_checkpoint(
            "last", self._saved_config, _cpu_state(self.model),
            model_sizes={"num_classes": self.num_classes, "feature_dim": self.feature_dim},
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            rng=rng, epoch=self.epoch, batch=self.batch_in_epoch, step=self.step,
            batches_per_epoch=len(self.sampler), history=self.history, best_epoch=self.best_epoch,
            best_val_frame_map=self.best_val, elapsed_s=self._elapsed(), epoch_stats=dict(self.epoch_stats),
            data_fingerprint=self.data_fingerprint,
        )
        self.last_saved = f"{path} (epoch {self.epoch}, step {self.step})"

    def _save_best(self, state: dict[str, torch.Tensor], metrics: dict | None) -> None:
        if self.folder is None or not self.context.is_main:
            return
        self.folder.save_checkpoint(
            "best", self._saved_config, state,
            model_sizes={"num_classes": self.num_classes, "feature_dim": self.feature_dim},
            epoch=self.best_epoch, step=self.step, val_metrics=metrics,
        )

    def _synced_flags(self, stop: GracefulStop, *values: torch.Tensor) -> torch.Tensor:
        """On the CPU: scalar tensors ``values`` summed over ranks, then the SIGINT and SIGTERM
        flags (> 0 when any rank got one). One transfer and one all-reduce per batch."""
        flags = torch.tensor([stop.requested == "SIGINT", stop.requested == "SIGTERM"], dtype=torch.float64)
        stats = torch.cat([torch.stack(values).double(), flags.to(self.device)]) if values else flags.to(self.device)
        return self.context.all_reduce_sum(stats).cpu()

    @staticmethod
    def _stop_reason(flags: torch.Tensor) -> str | None:
        return "SIGINT" if flags[-2] > 0 else "SIGTERM" if flags[-1] > 0 else None

    # --- training ------------------------------------------------------------------------

    def fit(self) -> RunResult:
        """Train until ``config.epochs`` (or a stop), then evaluate the best model on the test split."""
        config, context = self.config, self.context
        self._caller_state = capture_global_state()
        restore_global_state(self._run_state)
        self.session_start = time.perf_counter()
        try:
            with GracefulStop(announce=context.is_main) as stop:
                if context.is_main and self.folder is not None:
                    self.folder.write_config(self._saved_config)
                self._announce()
                while self.epoch < config.epochs and not self.plateaued:
                    reason = self._train_epoch(stop)
                    if reason is not None:
                        self._save_training_checkpoint()
                        return self._stopped(reason)
                    self._end_epoch()
                    reason = self._stop_reason(self._synced_flags(stop))
                    if reason is not None:  # arrived during validation: last.pt is already current
                        return self._stopped(reason)
                return self._finish()
        finally:
            self._release()

    def _announce(self) -> None:
        c, s = self.config, self.splits
        label = MODEL_LABELS.get(c.model, c.model)
        n_val = len(s.val) if s.val is not None else 0
        world = f" x {self.context.world_size} processes" if self.context.enabled else ""
        amp = ", bf16 autocast" if self.autocast is not None else ""
        start = "resuming" if self.step or self.epoch else "training"
        self._log(f"{start} {label} ({count_parameters(self.model):,} parameters) on {c.dataset}: "
                  f"{len(s.train)} train / {n_val} val / {len(s.test)} test videos")
        variable = " (variable length)" if c.variable_length else ""
        self._log(f"window {self.window}{variable}, batch {c.batch_size}{world}"
                  f"{f' x {c.grad_accumulation} accumulated' if c.grad_accumulation > 1 else ''}, "
                  f"{self.steps_per_epoch} steps per epoch, {c.epochs} epochs, lr {c.lr:g}, device {self.device}{amp}")
        if self.run_dir is not None:
            self._log(f"run folder: {self.run_dir}")

    def _train_epoch(self, stop: GracefulStop) -> str | None:
        """Train the rest of the current epoch; the reason it stopped early, or None."""
        config, stats = self.config, self.epoch_stats
        accumulation = config.grad_accumulation
        num_batches = len(self.sampler)
        self.sampler.set_epoch(self.epoch)
        self.batches.start = self.batch_in_epoch
        self.loader_generator.manual_seed(config.seed * 1_000_003 + self.epoch)  # worker seeds: (seed, epoch)
        self.model.train()
        progress = None
        if self.show_progress:
            from tqdm import tqdm  # plain text bars: no notebook widgets needed

            progress = tqdm(total=num_batches, initial=self.batch_in_epoch, unit="batch", leave=False,
                            desc=f"epoch {self.epoch + 1}/{config.epochs}", dynamic_ncols=True, file=sys.stderr)
        started = time.perf_counter()
        seconds_before = stats["seconds"]
        amp = (torch.autocast(self.device.type, dtype=self.autocast)
               if self.autocast is not None else contextlib.nullcontext())
        try:
            for batch in self.loader:
                index = self.batch_in_epoch
                group_start = index - index % accumulation
                group_size = min(accumulation, num_batches - group_start)
                steps_now = index - group_start == group_size - 1
                batch = batch.to(self.device, non_blocking=True)
                mask = None if bool(batch.mask.all()) else batch.mask
                no_sync = (self.ddp.no_sync() if self.ddp is not None and not steps_now
                           else contextlib.nullcontext())
                with no_sync:
                    with amp:
                        out = self.forward(batch.features, mask)
                    loss = mlad_loss(
                        out.logits, out.initial_logits, batch.labels, mask,
                        config.initial_loss_weight, config.final_loss_weight,
                    )
                    (loss.total / group_size).backward()
                initial = loss.initial if loss.initial is not None else torch.zeros((), device=self.device)
                flags = self._synced_flags(stop, loss.total.detach(), initial.detach(), loss.final.detach())
                total, initial_mean, final_mean = (flags[:3] / self.context.world_size).tolist()
                if not math.isfinite(total):
                    kept = (f"the last good checkpoint, {self.last_saved}, is kept" if self.last_saved else
                            "no checkpoint had been written yet" if self.run_dir is not None else
                            "this run writes no checkpoints (run_dir is None)")
                    raise NonFiniteLossError(
                        f"training loss is {total} at epoch {self.epoch + 1}, step {self.step + 1} "
                        f"(batch {index + 1} of {num_batches}); stopping: {kept}. Try a lower learning rate "
                        "or gradient clipping.")
                stats["loss"] += total
                stats["initial"] += initial_mean
                stats["final"] += final_mean
                stats["batches"] += 1
                stats["windows"] += batch.features.shape[0] * self.context.world_size
                self.batch_in_epoch += 1
                if progress is not None:
                    rate = (stats["windows"]) / max(seconds_before + time.perf_counter() - started, 1e-9)
                    progress.set_postfix(loss=f"{stats['loss'] / stats['batches']:.4f}", windows_s=f"{rate:.0f}",
                                         refresh=False)
                    progress.update()
                if not steps_now:
                    continue
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.scheduler is not None:
                    self.scheduler.step()
                self.step += 1
                reason = self._stop_reason(flags)
                if reason is None and config.stop_after_steps is not None and self.step >= config.stop_after_steps:
                    reason = STOP_AFTER_STEPS
                if reason is not None:
                    return reason
            return None
        finally:
            stats["seconds"] = seconds_before + time.perf_counter() - started
            if progress is not None:
                progress.close()

    def _evaluate(self, model: nn.Module, split: str, standard: bool) -> Evaluation:
        c = self.config
        return evaluate(
            model, self.splits[split], window=self.window, stride=c.eval_stride,
            taus=c.taus, threshold=c.threshold, standard=standard, device=self.device,
            autocast=self.autocast, batch_size=c.eval_batch_size, context=self.context,
        )

    def _end_epoch(self) -> None:
        config, stats = self.config, self.epoch_stats
        epoch = self.epoch + 1
        batches = max(stats["batches"], 1)
        entry: dict[str, Any] = {
            "epoch": epoch, "step": self.step,
            "loss": stats["loss"] / batches,
            "loss_initial": stats["initial"] / batches if self.model_has_initial else None,
            "loss_final": stats["final"] / batches,
            "lr": self.optimizer.param_groups[0]["lr"],
            "windows": stats["windows"],
            "windows_per_s": stats["windows"] / max(stats["seconds"], 1e-9),
            "train_seconds": stats["seconds"],
            "val_frame_map": None,
        }
        improved = False
        if self.splits.val is not None and (epoch % config.eval_every == 0 or epoch == config.epochs):
            # the epoch's training is saved before validation: a failure there loses no training
            # (a resumed run finds the epoch's batches done and validates)
            self._save_training_checkpoint()
            metrics = self._evaluate(self.model, "val", standard=False)
            value = metrics.frame_map
            entry["val_frame_map"] = value
            entry["val_action_conditional"] = metrics.action_conditional
            if not math.isnan(value) and (self.best_val is None or value > self.best_val):
                improved = True
                self.best_epoch, self.best_val = epoch, value
                self.best_state = _cpu_state(self.model)
                self._save_best(self.best_state, metrics.to_dict())
        self.epoch += 1
        self.batch_in_epoch = 0
        entry["elapsed_s"] = self._elapsed()
        self.history.append(entry)
        self._reset_epoch_stats()
        self._save_training_checkpoint()
        if self.context.is_main and self.folder is not None:
            self.folder.write_json("history", self.history)
        line = f"epoch {epoch:>3}/{config.epochs}  loss {entry['loss']:.4f}"
        if entry["loss_initial"] is not None:
            line += f" (initial {entry['loss_initial']:.4f}, final {entry['loss_final']:.4f})"
        if entry["val_frame_map"] is not None:
            line += f"  val f-mAP {100 * entry['val_frame_map']:.2f}{' *' if improved else '  '}"
        line += f"  {entry['windows_per_s']:,.0f} windows/s  {entry['elapsed_s']:.1f} s"
        self._log(line)

    @property
    def validations_since_best(self) -> int:
        """Validations after the best one (all of them while none has a finite f-mAP)."""
        return sum(1 for entry in self.history
                   if entry["val_frame_map"] is not None and entry["epoch"] > (self.best_epoch or 0))

    @property
    def plateaued(self) -> bool:
        """The stopping rule: ``config.patience`` validations in a row without a new best."""
        patience = self.config.patience
        return patience is not None and self.validations_since_best >= patience

    @property
    def model_has_initial(self) -> bool:
        return getattr(self.model, "initial_classifier", None) is not None

    def _stopped(self, reason: str) -> RunResult:
        where = self.last_saved or "nowhere (this run writes no files)"
        resume = (f"; resume with: python -m mladlib train --resume {self.folder.path('last')}"
                  if self.folder is not None else "")
        self._log(f"stopped ({reason}) at epoch {self.epoch + 1}, step {self.step}; checkpoint: {where}{resume}")
        model = copy.deepcopy(self.model).eval()
        return RunResult(self.config, model, self.history, None, self.best_epoch, self.best_val, self.step,
                         stopped=reason, run_dir=self.run_dir, paths=self._paths())

    def _paths(self) -> dict[str, Path]:
        return {} if self.folder is None else self.folder.paths()

    def _finish(self) -> RunResult:
        ended_by = "plateau" if self.plateaued else "cap"
        if self.best_state is None:  # no validation split: the last epoch is the model
            self.best_epoch, self.best_state = self.epoch, _cpu_state(self.model)
            self._save_best(self.best_state, None)
        best = build_from_config(self.config, self.num_classes, self.feature_dim, self.device)
        best.load_state_dict(self.best_state)
        best = best.to(self.device).eval()
        evaluation = self._evaluate(best, "test", standard=True)
        metrics, predictions = evaluation.to_dict(), evaluation.predictions
        if self.context.is_main and self.folder is not None:
            self.folder.save_predictions(predictions)
            self.folder.write_json("results", {
                "test": metrics, "best_epoch": self.best_epoch, "best_val_frame_map": self.best_val,
                "steps": self.step, "ended_by": ended_by, "config": self._saved_config.to_dict(),
            })
        result = RunResult(self.config, best, self.history, metrics, self.best_epoch, self.best_val, self.step,
                           run_dir=self.run_dir, paths=self._paths(), ended_by=ended_by)
        how = f"no new best in {self.config.patience} validations" if ended_by == "plateau" else "epoch cap"
        self._log(f"finished: {self.step} steps in {self._elapsed():.1f} s ({how}; best epoch {self.best_epoch})")
        return result


def train(
    config: TrainConfig | None = None,
    *,
    resume: str | os.PathLike | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    **overrides: Any,
) -> RunResult:
    """Train a model and evaluate it on the test split; see :class:`Trainer`.

    ``train()`` trains MLAD on the embedded dataset with the ``synthetic`` preset;
    ``train(epochs=3, model="cf")`` overrides preset settings; ``train(config)`` runs a
    given :class:`TrainConfig`; ``train(resume="runs/x/last.pt")`` continues a run.
    Quiet unless ``log`` (e.g. ``print``) or ``progress`` say otherwise.
    """
    if config is None and resume is None:
        config = make_config("synthetic", **overrides)
    elif overrides:
        base = config if config is not None else load_checkpoint(resume, kind="training")["config"]
        config = base.replace(**overrides)
    return Trainer(config, resume=resume, progress=progress, log=log).fit()
