"""Action segments from frame scores: ``(class, start s, end s, score)`` lists.

A model scores every feature step of a video, ``(T, C)`` probabilities. Temporal action
localization reports segments instead. :func:`frame_segments` turns one video's scores
into segments, class by class:

1. steps whose score reaches ``threshold`` are kept, and runs of kept steps form
   segments (step ``t`` covers ``[t / rate, (t + 1) / rate)`` seconds, ``rate`` the
   features per second);
2. two segments of a class separated by at most ``merge_gap`` seconds become one;
3. segments shorter than ``min_length`` seconds are dropped;
4. a segment's score is the mean score of its steps (gaps included);
5. with ``top_k``, only each class's ``top_k`` highest-scoring segments are kept.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .utils import atomic_path


@dataclass(frozen=True)
class Segment:
    """One detected action: label column ``label``, ``[start, end)`` in seconds."""

    label: int
    start: float
    end: float
    score: float
    name: str | None = None


def frame_segments(
    scores: np.ndarray, rate: float, *, threshold: float = 0.5,
    top_k: int | None = None, min_length: float = 0.0, merge_gap: float = 0.0,
    names: Sequence[str] | None = None,
) -> list[Segment]:
    """Segments of one video from its ``(T, C)`` frame scores, sorted by start then
    class.

    ``rate``: feature steps per second (e.g. ``n_features / duration``, or a preset's
    ``features_per_second``). ``threshold`` in [0, 1]; ``min_length`` and ``merge_gap``
    in seconds (>= 0); ``top_k`` >= 1 or None; ``names``: one per class, copied into the
    segments. ``ValueError`` on a bad argument or non-finite scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (T, C), got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or infinite values")
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of steps per second, "
                         f"got {rate}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    if not (min_length >= 0 and merge_gap >= 0):
        raise ValueError(f"min_length and merge_gap must be >= 0 s, got {min_length}, "
                         f"{merge_gap}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k
                              or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1, got {top_k}")
    T, C = scores.shape
    if names is not None and len(names) != C:
        raise ValueError(f"{len(names)} class names for {C} classes")
    found: list[Segment] = []
    for c in range(C):
        runs = _runs(scores[:, c] >= threshold)
        merged: list[list[int]] = []
        for start, stop in runs:  # stop exclusive, in steps
            if merged and (start - merged[-1][1]) / rate <= merge_gap:
                merged[-1][1] = stop
            else:
                merged.append([start, stop])
        name = None if names is None else str(names[c])
        kept = [Segment(c, start / rate, stop / rate,
                        float(scores[start:stop, c].mean()), name)
                for start, stop in merged if (stop - start) / rate >= min_length]
        if top_k is not None:
            kept = sorted(kept, key=lambda s: -s.score)[: int(top_k)]
        found.extend(kept)
    return sorted(found, key=lambda s: (s.start, s.label))


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist()))


def write_segments(path: str | os.PathLike, video: str,
                   segments: Sequence[Segment]) -> None:
    """Write ``segments`` of ``video`` as CSV
    (``video,class,name,start_s,end_s,score``), atomically (a failed write leaves no
    file behind)."""
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "class", "name", "start_s", "end_s", "score"])
        for s in segments:
            writer.writerow([video, s.label, s.name or "", f"{s.start:.3f}",
                             f"{s.end:.3f}", f"{s.score:.4f}"])
