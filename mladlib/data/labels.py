"""Per-frame 0/1 labels at the feature rate."""

from __future__ import annotations

import numpy as np

from .annotations import VideoRecord
from .spec import DatasetSpec


def frame_times(num_frames: int, duration: float) -> np.ndarray:
    """``(num_frames,)`` float64 time in seconds of each feature: ``f / fps``.

    ``fps = num_frames / duration``, both exactly as the MLAD and super-events code do
    (``fr / fps`` in float64), so frames on a segment boundary get the same label.
    """
    fps = num_frames / duration
    return np.arange(num_frames, dtype=np.float64) / fps


def frame_labels(
    record: VideoRecord, num_frames: int, spec: DatasetSpec, strict: bool = False
) -> np.ndarray:
    """``(num_frames, C)`` uint8 labels of one video.

    Frame f carries class c when a segment of c covers ``f / fps``. Inclusive bounds
    ``start <= t <= end`` by default (the MLAD code); ``strict=True`` uses
    ``start < t < end`` (the super-events, PDAN and MS-TCT code).
    Segments reaching past the video's end simply stop at the last frame; a video
    without actions gives all zeros.
    """
    if (
        isinstance(num_frames, bool)
        or not isinstance(num_frames, (int, np.integer))
        or num_frames < 1
    ):
        raise ValueError(
            f"video {record.video_id!r}: num_frames must be an integer >= 1, "
            f"got {num_frames!r}"
        )
    num_frames = int(num_frames)
    labels = np.zeros((num_frames, spec.num_classes), dtype=np.uint8)
    if len(record.actions) == 0:
        return labels
    classes = record.class_indices
    if classes.max() >= spec.num_classes:
        raise ValueError(
            f"video {record.video_id!r}: class index {classes.max()} is outside "
            f"{spec.name}'s {spec.num_classes} classes"
        )
    times = frame_times(num_frames, record.duration)  # (T,) increasing
    starts, ends = record.actions[:, 1], record.actions[:, 2]
    # times is sorted, so each segment covers one contiguous range [first, stop)
    # of frames
    first = np.searchsorted(times, starts, side="right" if strict else "left")
    stop = np.searchsorted(times, ends, side="left" if strict else "right")
    keep = stop > first
    # mark +1 at each range's first frame and -1 after its last; a running sum over
    # time then gives the labels
    change = np.zeros((num_frames + 1, spec.num_classes), dtype=np.int32)
    np.add.at(change, (first[keep], classes[keep]), 1)
    np.add.at(change, (stop[keep], classes[keep]), -1)
    labels[:] = np.cumsum(change[:-1], axis=0) > 0
    return labels
