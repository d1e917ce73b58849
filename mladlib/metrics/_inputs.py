"""Checked, concatenated metric inputs: lists of per-video ``(T_k, C)`` arrays -> ``(N, C)``.

Every metric in :mod:`mladlib.metrics` takes ``scores`` and ``labels`` as lists with one
entry per video, each a NumPy array or a torch tensor (any device) of shape ``(T_k, C)``.
This module checks them once, names the video at fault, and concatenates them over
frames, keeping the video boundaries (temporal windows never cross videos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class FrameSet:
    """All videos' frames, concatenated in the given video order.

    ``scores (N, C)`` float64 and ``labels (N, C)`` bool live on ``scores.device``;
    ``lengths[k]`` is ``T_k``; frames ``offsets[k]:offsets[k + 1]`` belong to video ``k``.
    """

    scores: torch.Tensor
    labels: torch.Tensor
    lengths: tuple[int, ...]

    @property
    def num_frames(self) -> int:
        return int(self.scores.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.scores.shape[1])

    @property
    def device(self) -> torch.device:
        return self.scores.device

    @property
    def offsets(self) -> np.ndarray:
        """``(K + 1,)`` int64: start of each video's frames, then ``N``."""
        return np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])

    def select(self, frames: torch.Tensor, lengths: Sequence[int]) -> FrameSet:
        """The frames at indices ``frames (N',)``, regrouped into videos of ``lengths``."""
        frames = frames.to(self.device)
        return FrameSet(self.scores[frames], self.labels[frames], tuple(int(n) for n in lengths))


def _name(k: int, video_ids: Sequence[str] | None) -> str:
    return f"video {k} ({video_ids[k]!r})" if video_ids is not None else f"video {k}"


def _as_array(x, what: str, k: int, video_ids):
    """A torch tensor as given (detached), anything else as a numeric NumPy array."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{what} of {_name(k, video_ids)} must be real, got dtype {x.dtype}")
        return x.detach()
    try:
        array = np.asarray(x)
    except Exception as err:  # ragged nested lists and the like
        raise ValueError(f"{what} of {_name(k, video_ids)} is not an array: {err}") from err
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} of {_name(k, video_ids)} must be real numbers, got dtype {array.dtype}")
    return array


def _cpu_numpy(x) -> np.ndarray:
    """A NumPy view (or copy) of a CPU or device tensor; bfloat16, which NumPy lacks, as float32."""
    if not isinstance(x, torch.Tensor):
        return np.asarray(x)
    x = x.detach().cpu()
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy()


def _check_list(x, what: str) -> list:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        raise ValueError(
            f"{what} must be a list with one (T_k, C) array per video, got a single "
            f"{type(x).__name__} of shape {tuple(x.shape)}; wrap one video as [{what}]"
        )
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise ValueError(f"{what} must be a list with one (T_k, C) array per video, got {type(x).__name__}")
    return list(x)


def frames_from_videos(
    scores: Sequence,
    labels: Sequence,
    video_ids: Sequence[str] | None = None,
    device: str | torch.device | None = None,
) -> FrameSet:
    """Check per-video ``scores`` and ``labels`` and concatenate them over frames.

    Raises ``ValueError`` naming the argument and the video (by index, and by id when
    ``video_ids`` is given) for: an empty list, lists of different lengths, an array
    that is not 2-D, a score/label shape mismatch, a class count differing between
    videos, labels other than exactly 0/1, and NaN, infinite or out-of-[0, 1] scores.
    The result lives on ``device``, by default the device of the first torch tensor
    given (CPU for NumPy input).
    """
    scores, labels = _check_list(scores, "scores"), _check_list(labels, "labels")
    if len(scores) == 0:
        raise ValueError("scores and labels are empty: give at least one video")
    if len(scores) != len(labels):
        raise ValueError(f"scores has {len(scores)} videos but labels has {len(labels)}")
    if video_ids is not None:
        video_ids = [str(v) for v in video_ids]
        if len(video_ids) != len(scores):
            raise ValueError(f"video_ids has {len(video_ids)} entries but there are {len(scores)} videos")

    score_list = [_as_array(s, "scores", k, video_ids) for k, s in enumerate(scores)]
    label_list = [_as_array(y, "labels", k, video_ids) for k, y in enumerate(labels)]
    if device is None:
        device = next((t.device for t in score_list + label_list
                       if isinstance(t, torch.Tensor) and t.device.type != "cpu"), torch.device("cpu"))
    device = torch.device(device)

    num_classes = None
    for k, (s, y) in enumerate(zip(score_list, label_list)):
        if s.ndim != 2:
            raise ValueError(f"scores of {_name(k, video_ids)} must be 2-D (T_k, C), got shape {tuple(s.shape)}")
        if y.ndim != 2:
            raise ValueError(f"labels of {_name(k, video_ids)} must be 2-D (T_k, C), got shape {tuple(y.shape)}")
        if s.shape != y.shape:
            raise ValueError(
                f"{_name(k, video_ids)}: scores have shape {tuple(s.shape)} but labels have shape {tuple(y.shape)}"
            )
        if num_classes is None:
            num_classes = int(s.shape[1])
        elif s.shape[1] != num_classes:
            raise ValueError(
                f"{_name(k, video_ids)} has {s.shape[1]} classes but video 0 has {num_classes}"
            )
    if num_classes == 0:
        raise ValueError("scores and labels have 0 classes")
    lengths = tuple(int(s.shape[0]) for s in score_list)
    if sum(lengths) == 0:
        raise ValueError("every video has 0 frames: there is nothing to evaluate")

    # float64 holds every float16/32/64 score exactly, so ties stay ties and order is kept.
    # On the CPU NumPy concatenates and checks (single-threaded: torch's thread pool
    # stalls when a shared machine is busy); elsewhere torch does, on the device. The
    # checks below use only syntax the two share.
    if device.type == "cpu":
        S = np.concatenate([_cpu_numpy(s) for s in score_list], dtype=np.float64)  # (N, C)
        Yraw = np.concatenate([_cpu_numpy(y) for y in label_list])
    else:
        S = torch.cat([torch.as_tensor(s).to(device=device, dtype=torch.float64) for s in score_list])
        Yraw = torch.cat([torch.as_tensor(y).to(device=device) for y in label_list])
    offsets = np.concatenate([[0], np.cumsum(lengths)])

    def first_bad_video(bad_rows) -> int:
        row = int(np.flatnonzero(_cpu_numpy(bad_rows))[0])
        return int(np.searchsorted(offsets, row, side="right") - 1)

    # Fast path: min and max (NaN propagates through both); locate the fault only on failure.
    if Yraw.dtype in (torch.bool, np.bool_):
        Y = Yraw
    else:
        float_labels = Yraw.dtype.is_floating_point if isinstance(Yraw, torch.Tensor) else Yraw.dtype.kind == "f"
        if float_labels or not (0 <= Yraw.min().item() and Yraw.max().item() <= 1):
            not_binary = ((Yraw != 0) & (Yraw != 1)).any(1)  # NaN counts as not binary
            if bool(not_binary.any()):
                k = first_bad_video(not_binary)
                y = _cpu_numpy(label_list[k])
                bad = y[(y != 0) & (y != 1)][0].item()
                raise ValueError(f"labels of {_name(k, video_ids)} must be exactly 0 or 1, found {bad!r}")
        Y = Yraw != 0
    if not (0 <= S.min().item() and S.max().item() <= 1):
        finite = np.isfinite(S) if isinstance(S, np.ndarray) else torch.isfinite(S)
        nonfinite = ~finite.all(1)
        if bool(nonfinite.any()):
            raise ValueError(f"scores of {_name(first_bad_video(nonfinite), video_ids)} contain NaN or infinite values")
        k = first_bad_video(((S < 0) | (S > 1)).any(1))
        s = S[offsets[k]:offsets[k + 1]]
        raise ValueError(
            f"scores of {_name(k, video_ids)} must lie in [0, 1] (probabilities, e.g. sigmoid of the logits), "
            f"found values in [{s.min().item():.6g}, {s.max().item():.6g}]"
        )
    if isinstance(S, np.ndarray):
        S, Y = torch.from_numpy(S), torch.from_numpy(np.ascontiguousarray(Y))
    return FrameSet(S, Y.contiguous(), lengths)


def check_threshold(threshold) -> float:
    """``threshold`` as a float in [0, 1] (predictions are ``score >= threshold``;
    scores are probabilities: one outside [0, 1] predicts every frame or none)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    threshold = float(threshold)
    if not 0 <= threshold <= 1:  # NaN fails this too
        raise ValueError(f"threshold must be a finite number in [0, 1], got {threshold}")
    return threshold
