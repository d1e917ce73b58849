"""What a training run is built from: its config turned into data, model, optimizer,
schedule and batches (:func:`build_run_parts`, the trainer's build step).

Building draws the model's initial weights from the global random streams, so the
caller seeds them first (:func:`mladlib.utils.seed_everything`), then seeds them again
for this rank's dropout masks; a run resumed from ``last.pt`` builds the same parts,
then loads their states (:mod:`mladlib.train.run_state`).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from .. import synth
from ..data import WindowDataset, WindowSampler, collate_windows
from ..models.prior import init_prior_bias
from .checkpoint import build_from_config
from .config import TrainConfig
from .datasets import DataSplits, data_fingerprint, load_splits
from .distributed import DistributedContext, synchronize_running_scales

_DDP_OPTIONS = inspect.signature(DistributedDataParallel.__init__).parameters


def train_positive_rate(dataset) -> torch.Tensor:
    """``(C,)`` fraction of the dataset's steps on which each class is present."""
    counts = sum(torch.from_numpy(dataset.labels(i).sum(0, dtype=np.int64))
                 for i in range(len(dataset)))
    return counts.double() / max(sum(dataset.frame_counts), 1)


class ResumableBatches(Sampler):
    """The window sampler's batches of the current epoch from batch ``start`` on (the
    batches before it were consumed before an interruption)."""

    def __init__(self, sampler: WindowSampler) -> None:
        self.sampler, self.start = sampler, 0

    def __iter__(self):
        return iter(self.sampler.epoch_batches()[self.start:])

    def __len__(self) -> int:
        return len(self.sampler) - self.start


@dataclass
class RunParts:
    """The objects a run trains with. ``model`` holds the weights; ``forward`` calls it
    (through DDP and ``torch.compile`` when those are on); ``ddp`` is the DDP wrapper
    under ``torchrun``, else None. ``batches`` feeds ``loader`` the sampler's batches
    from a position inside the epoch; ``loader_generator`` seeds the loader's
    workers."""

    splits: DataSplits
    data_fingerprint: str  # kept in last.pt: a resume on changed data is refused
    window: int  # feature steps per training window (the longest, with variable length)
    model: nn.Module
    forward: Callable
    ddp: DistributedDataParallel | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    sampler: WindowSampler
    batches: ResumableBatches
    loader: DataLoader
    loader_generator: torch.Generator
    steps_per_epoch: int  # optimizer steps: batches / grad_accumulation, rounded up

    @property
    def model_sizes(self) -> dict[str, int]:
        """What a checkpoint records to build the model again."""
        train = self.splits.train
        return {"num_classes": train.num_classes, "feature_dim": train.feature_dim}


def build_run_parts(
    config: TrainConfig, context: DistributedContext, device: torch.device
) -> RunParts:
    """The parts of a run of ``config`` on ``device``, for this process's rank of
    ``context``."""
    if config.dataset == "synthetic" and config.root is None:
        # generated on first use: one process per machine writes it, the others wait
        if context.local_rank == 0:
            synth.dataset_root(config.synthetic_size, config.synthetic_seed)
        context.barrier()
    wanted = ("train", "val", "test") if config.val_fraction > 0 else ("train", "test")
    splits = load_splits(config, wanted)
    fingerprint = data_fingerprint(splits)
    train_set = splits.train
    window = config.window or splits.spec.default_window
    if config.variable_length and window % config.length_step:
        raise ValueError(f"window {window} must be a multiple of length_step "
                         f"{config.length_step} with variable-length training (or turn "
                         "variable_length off)")

    sizes = train_set.num_classes, train_set.feature_dim
    model = build_from_config(config, *sizes, device)
    if config.prior_bias:
        init_prior_bias(model, train_positive_rate(train_set))
    model = model.to(device)
    # every rank draws its own dropout masks (the weights above are equal on all ranks)
    stream = np.random.SeedSequence([config.seed, context.rank]).generate_state(2)
    torch.manual_seed(int(stream[0]))
    np.random.seed(int(stream[1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)

    sampler = WindowSampler(
        train_set.frame_counts, config.batch_size, window, config.variable_length,
        config.length_step, config.windows_per_epoch, seed=config.seed,
        num_replicas=context.world_size, rank=context.rank,
    )
    batches = ResumableBatches(sampler)
    # The loader's own generator: iterating it must not draw from the global RNG,
    # or a resumed epoch would shift the dropout masks.
    loader_generator = torch.Generator()
    loader = DataLoader(
        WindowDataset(train_set), batch_sampler=batches, collate_fn=collate_windows,
        num_workers=config.num_workers, pin_memory=device.type == "cuda",
        generator=loader_generator,
    )
    steps_per_epoch = math.ceil(len(sampler) / config.grad_accumulation)
    scheduler = None
    if config.scheduler == "cosine":
        total_steps = config.epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
    ddp, forward = wrap_for_training(model, config, context, device)
    return RunParts(splits, fingerprint, window, model, forward, ddp,
                    optimizer, scheduler, sampler, batches, loader, loader_generator,
                    steps_per_epoch)


def wrap_for_training(
    model: nn.Module, config: TrainConfig, context: DistributedContext,
    device: torch.device,
) -> tuple[DistributedDataParallel | None, Callable]:
    """The DDP wrapper of ``model`` (None on one process) and what the training step
    calls: that wrapper, or the model itself, compiled when ``config.compile``."""
    ddp: DistributedDataParallel | None = None
    forward: nn.Module = model
    if context.enabled:
        # no buffer broadcast from rank 0: the running feature scale all-reduces its
        # statistics itself (every rank holds the same), and the rest are constants
        synchronize_running_scales(model)
        if "forward_sync_buffers" in _DDP_OPTIONS:
            no_buffer_sync = {"forward_sync_buffers": False}
        else:  # the option's name in torch releases before it was renamed
            no_buffer_sync = {"broadcast_buffers": False}
        device_ids = [device.index] if device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=device_ids, **no_buffer_sync)
        forward = ddp
    return ddp, torch.compile(forward) if config.compile else forward
