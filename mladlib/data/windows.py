"""Training windows: random T-step windows of videos, batched with padding masks.

:class:`WindowSampler` decides every window of an epoch in the main process (so the
windows depend only on ``(seed, epoch)``, not on the number of workers), one window
length per batch; :class:`WindowDataset` reads each window (a slice of the feature
store, never the whole video); :func:`collate_windows` pads and stacks them.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .dataset import VideoDataset

#: A window: (video index, first step, requested length). Fewer steps are read only when
#: the video is shorter than the length; collate pads them back to it.
Window = tuple[int, int, int]


class WindowSampler(Sampler[list[Window]]):
    """Batch sampler of random windows over videos of ``frame_counts`` steps.

    Each batch holds ``batch_size`` windows of one length: ``max_length``, or with
    ``variable_length=True`` one drawn per batch from ``{s, 2s, ..., max_length}``
    (``s = length_step``; the paper's table 4 uses ``{16, 32, ..., 128}``). A window's
    video is drawn with probability proportional to its length and its start uniformly,
    so frames are sampled about evenly. An epoch holds ``windows_per_epoch`` windows
    (default ``ceil(total_steps / max_length)``: about the data once), rounded up to whole
    batches and to a multiple of ``num_replicas``; rank ``rank`` gets every
    ``num_replicas``-th batch, so the ranks' shares are disjoint and equal in size.
    The windows depend only on ``(seed, epoch)``; call :meth:`set_epoch` before each epoch.
    """

    def __init__(
        self,
        frame_counts: Sequence[int] | np.ndarray,
        batch_size: int,
        max_length: int,
        variable_length: bool = False,
        length_step: int = 16,
        windows_per_epoch: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        counts = np.asarray(frame_counts, dtype=np.int64)
        if counts.ndim != 1 or len(counts) == 0 or (counts < 1).any():
            raise ValueError("frame_counts must list at least one video, each with >= 1 step")
        if batch_size < 1 or max_length < 1:
            raise ValueError(f"batch_size and max_length must be >= 1, got {batch_size} and {max_length}")
        if variable_length and (length_step < 1 or max_length % length_step):
            raise ValueError(f"max_length {max_length} must be a multiple of length_step {length_step}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        self.frame_counts, self.batch_size, self.max_length = counts, batch_size, max_length
        self.lengths = tuple(range(length_step, max_length + 1, length_step)) if variable_length else (max_length,)
        self.seed, self.num_replicas, self.rank, self.epoch = seed, num_replicas, rank, 0
        if windows_per_epoch is None:
            windows_per_epoch = math.ceil(int(counts.sum()) / max_length)
        if windows_per_epoch < 1:
            raise ValueError(f"windows_per_epoch must be >= 1, got {windows_per_epoch}")
        self.batches_per_rank = math.ceil(math.ceil(windows_per_epoch / batch_size) / num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Pick the epoch whose windows the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_rank

    def epoch_batches(self, epoch: int | None = None) -> list[list[Window]]:
        """This rank's batches of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch])
        # every rank draws all the batches and keeps its share
        num_batches = self.batches_per_rank * self.num_replicas
        num_windows = num_batches * self.batch_size
        weights = self.frame_counts / self.frame_counts.sum()
        videos = rng.choice(len(self.frame_counts), size=num_windows, p=weights)
        lengths = np.repeat(rng.choice(self.lengths, size=num_batches), self.batch_size)
        num_starts = np.maximum(self.frame_counts[videos] - lengths, 0) + 1
        starts = rng.integers(0, num_starts)
        windows = list(zip(videos.tolist(), starts.tolist(), lengths.tolist()))
        size = self.batch_size
        batches = [windows[b * size : (b + 1) * size] for b in range(num_batches)]
        return batches[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[Window]]:
        return iter(self.epoch_batches())


class WindowBatch(NamedTuple):
    """A batch of windows. ``mask`` is True on real steps, False on padding."""

    features: Tensor  # (B, T, D) float32
    labels: Tensor  # (B, T, C) float32
    mask: Tensor  # (B, T) bool
    video_indices: Tensor  # (B,) int64
    starts: Tensor  # (B,) int64

    def to(self, device: torch.device | str, non_blocking: bool = False) -> WindowBatch:
        return WindowBatch(*(t.to(device, non_blocking=non_blocking) for t in self))


class WindowDataset(Dataset):
    """Reads the windows a :class:`WindowSampler` names from a :class:`VideoDataset`.

    ``dataset[(video_index, start, length)] -> (features (n, D), labels (n, C), window)``
    with ``n = min(length, T_k - start)`` steps.
    """

    def __init__(self, videos: VideoDataset) -> None:
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, window: Window) -> tuple[np.ndarray, np.ndarray, Window]:
        index, start, length = window
        stop = min(start + length, self.videos.num_frames(index))
        return self.videos.features(index, start, stop), self.videos.labels(index)[start:stop], window


def window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """``(n,)`` int64 first steps of the windows covering ``num_frames`` steps.

    ``0, stride, 2 stride, ...`` and a last window ending at the video's end; a video no
    longer than ``window`` is one window starting at 0 (of the video's own length).
    """
    if num_frames < 1 or window < 1 or not 1 <= stride <= window:
        raise ValueError("need num_frames >= 1, window >= 1, 1 <= stride <= window; "
                         f"got {num_frames}, {window}, {stride}")
    if num_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, num_frames - window + 1, stride, dtype=np.int64)
    if starts[-1] != num_frames - window:
        starts = np.append(starts, num_frames - window)
    return starts


def collate_windows(items: Sequence[tuple[np.ndarray, np.ndarray, Window]]) -> WindowBatch:
    """Stack windows into a :class:`WindowBatch`, padding each to the batch's requested length."""
    T = max(window[2] for _, _, window in items)
    B, D, C = len(items), items[0][0].shape[1], items[0][1].shape[1]
    features = torch.zeros(B, T, D, dtype=torch.float32)
    labels = torch.zeros(B, T, C, dtype=torch.float32)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, (x, y, _) in enumerate(items):
        n = len(x)
        features[b, :n] = torch.from_numpy(x)
        labels[b, :n] = torch.from_numpy(y)
        mask[b, :n] = True
    video_indices = torch.tensor([w[0] for _, _, w in items], dtype=torch.int64)
    starts = torch.tensor([w[1] for _, _, w in items], dtype=torch.int64)
    return WindowBatch(features, labels, mask, video_indices, starts)


def window_loader(
    videos: VideoDataset,
    batch_size: int,
    max_length: int | None = None,
    variable_length: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    windows_per_epoch: int | None = None,
    **loader_options: Any,
) -> DataLoader:
    """A DataLoader of :class:`WindowBatch` es over ``videos`` (``max_length`` defaults to the spec's T).

    Options as :class:`WindowSampler`'s. Call ``loader.batch_sampler.set_epoch(epoch)``
    before each epoch. ``loader_options``
    go to :class:`~torch.utils.data.DataLoader` (e.g. ``pin_memory=True``).
    """
    sampler = WindowSampler(
        videos.frame_counts, batch_size, max_length or videos.spec.default_window, variable_length,
        windows_per_epoch=windows_per_epoch, seed=seed, num_replicas=num_replicas, rank=rank,
    )
    return DataLoader(
        WindowDataset(videos), batch_sampler=sampler, collate_fn=collate_windows, num_workers=num_workers,
        **loader_options,
    )
