"""One epoch of training: batches in, optimizer steps out.

One optimizer *step* = ``grad_accumulation`` batches: each batch's loss is scaled by
``1 / group size`` before its backward pass, so the gradients summed over the group are
those of its mean; under DDP the gradient exchange waits for the group's last batch.
After every step the epoch may stop (a signal on any rank, or ``stop_after_steps``);
:class:`~mladlib.train.run_state.RunState` then holds the position inside the epoch,
and a resumed run trains the remaining batches.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from ..data import WindowBatch
from .config import TrainConfig
from .distributed import DistributedContext
from .inference import autocast_context
from .loss import LossParts, mlad_loss
from .run_log import epoch_progress_bar
from .run_parts import RunParts
from .run_state import RunState
from .signals import GracefulStop

STOP_AFTER_STEPS = "stop_after_steps"


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is left as
    it was."""


def accumulation_group(
    index: int, accumulation: int, num_batches: int
) -> tuple[int, bool]:
    """The size of the accumulation group that batch ``index`` (0-based, of an epoch's
    ``num_batches``) belongs to, and whether it is the group's last batch (the one
    after which the optimizer steps). The epoch's last group may be short."""
    group_start = index - index % accumulation
    group_size = min(accumulation, num_batches - group_start)
    return group_size, index - group_start == group_size - 1


def backward_batch(
    parts: RunParts, batch: WindowBatch, config: TrainConfig,
    autocast: torch.dtype | None, group_size: int, steps_now: bool,
) -> LossParts:
    """Forward ``batch`` (on the model's device) under ``autocast`` (a dtype, or None
    for fp32), compute its loss, add its gradients scaled by ``1 / group_size``.
    ``steps_now``: the accumulation group's last batch, whose backward pass DDP
    synchronises."""
    mask = None if bool(batch.mask.all()) else batch.mask
    no_sync = (parts.ddp.no_sync() if parts.ddp is not None and not steps_now
               else contextlib.nullcontext())
    with no_sync:
        with autocast_context(batch.features.device, autocast):
            out = parts.forward(batch.features, mask)
        loss = mlad_loss(
            out.logits, out.initial_logits, batch.labels, mask,
            config.initial_loss_weight, config.final_loss_weight,
        )
        (loss.total / group_size).backward()
    return loss


def optimizer_step(parts: RunParts, config: TrainConfig) -> None:
    """Clip the summed gradients (``config.grad_clip``), step, clear them, advance the
    schedule."""
    if config.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), config.grad_clip)
    parts.optimizer.step()
    parts.optimizer.zero_grad(set_to_none=True)
    if parts.scheduler is not None:
        parts.scheduler.step()


def synced_flags(
    context: DistributedContext, device: torch.device, stop: GracefulStop,
    *values: torch.Tensor,
) -> torch.Tensor:
    """On the CPU: scalar tensors ``values`` summed over ranks, then the SIGINT and
    SIGTERM flags (> 0 when any rank got one). One transfer and one all-reduce per
    batch."""
    flags = torch.tensor([stop.requested == "SIGINT", stop.requested == "SIGTERM"],
                         dtype=torch.float64)
    stats = (torch.cat([torch.stack(values).double(), flags.to(device)]) if values
             else flags.to(device))
    return context.all_reduce_sum(stats).cpu()


def stop_reason(flags: torch.Tensor) -> str | None:
    """``"SIGINT"`` or ``"SIGTERM"`` when a rank got one (see :func:`synced_flags`)."""
    return "SIGINT" if flags[-2] > 0 else "SIGTERM" if flags[-1] > 0 else None


def train_epoch(
    parts: RunParts, state: RunState, config: TrainConfig, context: DistributedContext,
    device: torch.device, autocast: torch.dtype | None, stop: GracefulStop,
    show_progress: bool = False, kept: str = "",
) -> str | None:
    """Train the rest of ``state.epoch`` from ``state.batch_in_epoch``, counting into
    ``state``; the reason it stopped early, or None. ``kept``: what a
    :class:`NonFiniteLossError` says is left of the run."""
    num_batches, world = len(parts.sampler), context.world_size
    stats = state.epoch_stats
    parts.sampler.set_epoch(state.epoch)
    parts.batches.start = state.batch_in_epoch
    # worker seeds: (seed, epoch)
    parts.loader_generator.manual_seed(config.seed * 1_000_003 + state.epoch)
    parts.model.train()
    progress = None
    if show_progress:
        progress = epoch_progress_bar(num_batches, state.batch_in_epoch,
                                      state.epoch + 1, config.epochs)
    started = time.perf_counter()
    seconds_before = stats["seconds"]
    try:
        for batch in parts.loader:
            index = state.batch_in_epoch
            group_size, steps_now = accumulation_group(index, config.grad_accumulation,
                                                       num_batches)
            batch = batch.to(device, non_blocking=True)
            loss = backward_batch(parts, batch, config, autocast, group_size, steps_now)
            initial = (loss.initial if loss.initial is not None
                       else torch.zeros((), device=device))
            flags = synced_flags(context, device, stop, loss.total.detach(),
                                 initial.detach(), loss.final.detach())
            total, initial_mean, final_mean = (flags[:3] / world).tolist()
            if not math.isfinite(total):
                raise NonFiniteLossError(
                    f"training loss is {total} at epoch {state.epoch + 1}, step "
                    f"{state.step + 1} (batch {index + 1} of {num_batches}); stopping: "
                    f"{kept}. Try a lower learning rate or gradient clipping.")
            state.count_batch(total, initial_mean, final_mean,
                              batch.features.shape[0] * world)
            if progress is not None:
                seconds = seconds_before + time.perf_counter() - started
                rate = stats["windows"] / max(seconds, 1e-9)
                progress.set_postfix(loss=f"{stats['loss'] / stats['batches']:.4f}",
                                     windows_s=f"{rate:.0f}", refresh=False)
                progress.update()
            if not steps_now:
                continue
            optimizer_step(parts, config)
            state.step += 1
            reason = stop_reason(flags)
            stop_after = config.stop_after_steps
            if reason is None and stop_after is not None and state.step >= stop_after:
                reason = STOP_AFTER_STEPS
            if reason is not None:
                return reason
        return None
    finally:
        stats["seconds"] = seconds_before + time.perf_counter() - started
        if progress is not None:
            progress.close()
