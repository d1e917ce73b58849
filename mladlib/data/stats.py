"""Dataset statistics from annotation files: sizes, density, co-occurrence, "follows".

Everything here is computed from labels alone (no features). Frame labels need a
feature count per video; without the features it is ``round(duration * fps)`` (at least
1) at the nominal I3D rate ``fps = 3``, and frame ``f`` sits at ``f * duration / n``
seconds with the inclusive rule of :func:`~mladlib.data.frame_labels` (the MLAD code).
Statistics of segments (segments and distinct classes per video) need no frame rule.

Matrices are ``(C, C)`` with row ``i`` the class asked about and column ``j`` the class
conditioned on, as in :mod:`mladlib.metrics.conditional`:

* co-occurrence ``P(i | j)``: share of the frames with ``j`` that also carry ``i``;
* "follows" ``P(i | chi_j)``: share of the frames where ``j`` has just ended (eq. 11 of
  the paper: ``j`` absent at ``t`` but present at one of the ``tau`` frames before, in the
  same video) that carry ``i``; :func:`lift` divides by the base rate ``P(i)``.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import sparse

from .annotations import VideoRecord, read_annotations, read_split
from .labels import frame_labels
from .spec import DatasetSpec, read_class_names

#: Nominal feature rate of I3D features (one per 8 frames of 24 fps video).
FEATURES_PER_SECOND = 3.0


def num_features(duration: float, fps: float = FEATURES_PER_SECOND) -> int:
    """Feature count of a video of ``duration`` seconds at ``fps``: ``max(1, round(d * fps))``."""
    return max(1, int(round(duration * fps)))


def label_videos(
    annotations: Mapping[str, VideoRecord], spec: DatasetSpec,
    video_ids: Sequence[str] | None = None,
    fps: float = FEATURES_PER_SECOND, strict: bool = False,
) -> dict[str, np.ndarray]:
    """``video_id -> (n_k, C)`` uint8 frame labels of ``video_ids`` (default: all), with
    ``n_k = num_features(duration, fps)``. Raises ``KeyError`` naming a missing video."""
    ids = list(annotations) if video_ids is None else list(video_ids)
    missing = [v for v in ids if v not in annotations]
    if missing:
        raise KeyError(f"videos not in the annotations: {missing[:5]}")
    return {v: frame_labels(annotations[v], num_features(annotations[v].duration, fps), spec,
                            strict) for v in ids}


@dataclass(frozen=True)
class SplitStats:
    """Size and density of a set of videos.

    Segment statistics come from the annotations (``segments_per_video``: annotated
    ``[class, start, end]`` rows; ``classes_per_video``: distinct classes among them);
    frame statistics from frame labels (``labels_per_frame``: mean number of classes
    present at a frame, all frames counted; ``labels_per_labelled_frame``: the same over
    frames with at least one label).
    """

    videos: int
    segments: int
    segments_per_video: float
    classes_per_video: float
    max_classes_per_video: int
    classes_present: int
    frames: int
    labels_per_frame: float
    labels_per_labelled_frame: float
    max_labels_per_frame: int
    unlabelled_frame_share: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def split_statistics(records: Sequence[VideoRecord], labels: Sequence[np.ndarray]) -> SplitStats:
    """:class:`SplitStats` of ``records`` and their frame labels (one ``(n_k, C)`` each)."""
    if len(records) != len(labels) or not records:
        raise ValueError(f"need one label array per video and at least one video, got "
                         f"{len(records)} videos and {len(labels)} label arrays")
    distinct = np.array([np.unique(r.class_indices).size for r in records])
    segments = np.array([len(r.actions) for r in records])
    per_frame = np.concatenate([np.asarray(y).sum(1) for y in labels])  # (N,)
    present = np.unique(np.concatenate([r.class_indices for r in records]))
    labelled = per_frame[per_frame > 0]
    return SplitStats(
        videos=len(records),
        segments=int(segments.sum()),
        segments_per_video=float(segments.mean()),
        classes_per_video=float(distinct.mean()),
        max_classes_per_video=int(distinct.max()),
        classes_present=int(present.size),
        frames=int(per_frame.size),
        labels_per_frame=float(per_frame.mean()),
        labels_per_labelled_frame=float(labelled.mean()) if labelled.size else 0.0,
        max_labels_per_frame=int(per_frame.max()),
        unlabelled_frame_share=float((per_frame == 0).mean()),
    )


def _stacked(arrays: Sequence[np.ndarray]) -> sparse.csr_matrix:
    """Per-video ``(T_k, C)`` 0/1 arrays stacked over frames as a sparse ``(N, C)`` matrix:
    labels are sparse (1.5 to 3 of 65 to 157 classes per frame), and a dense float GEMM
    over every frame of Charades costs minutes on a busy CPU where this costs a second."""
    rows, cols, offset = [], [], 0
    for a in arrays:
        r, c = np.nonzero(np.asarray(a))
        rows.append(r + offset)
        cols.append(c)
        offset += len(a)
    if not arrays:
        raise ValueError("no videos given")
    r, c = np.concatenate(rows), np.concatenate(cols)
    shape = (offset, np.asarray(arrays[0]).shape[1])
    return sparse.csr_matrix((np.ones(r.size, dtype=np.int64), (r, c)), shape=shape)


def pair_counts(labels: Sequence[np.ndarray]) -> np.ndarray:
    """``(C, C)`` int64: frames with both ``i`` and ``j`` (diagonal: frames with ``i``)."""
    Y = _stacked(labels)
    return np.asarray((Y.T @ Y).todense(), dtype=np.int64)


def cooccurring_pairs(labels: Sequence[np.ndarray]) -> int:
    """Ordered pairs ``(i, j)``, ``i != j``, present together at some frame: the pairs the
    action-conditional metrics count at ``tau = 0`` (``N_gt(i | j) > 0``)."""
    both = pair_counts(labels)
    np.fill_diagonal(both, 0)
    return int((both > 0).sum())


def cooccurrence(labels: Sequence[np.ndarray]) -> np.ndarray:
    """``(C, C)`` float64 ``P(i | j)``; NaN on the diagonal and in columns of absent ``j``."""
    both = pair_counts(labels).astype(np.float64)
    count = np.diag(both).copy()
    matrix = np.divide(both, count[None, :], out=np.full(both.shape, np.nan),
                       where=count[None, :] > 0)
    np.fill_diagonal(matrix, np.nan)
    return matrix


def follows_condition(y: np.ndarray, tau: int) -> np.ndarray:
    """``chi (T, C)`` bool of eq. 11 for one video's labels ``y (T, C)``: class ``j`` absent
    at ``t`` but present at one of the frames ``t - tau .. t - 1`` (``tau >= 1``)."""
    if tau < 1:
        raise ValueError(f"tau must be >= 1 frame, got {tau}")
    y = np.asarray(y).astype(bool)
    seen = np.concatenate([np.zeros((1, y.shape[1]), np.int64), np.cumsum(y, axis=0)])
    t = np.arange(len(y))
    recently = seen[t] - seen[np.maximum(t - tau, 0)] > 0  # a positive in [t - tau, t - 1]
    return recently & ~y


def follows(labels: Sequence[np.ndarray], tau: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P(i | chi_j) (C, C) float64, support (C,) int64)``: how often ``i`` is present at
    the frames where ``j`` ended within the last ``tau`` frames; ``support[j]`` counts those
    frames. NaN on the diagonal and where ``support[j] = 0``."""
    Y = _stacked(labels)
    chi = _stacked([follows_condition(y, tau) for y in labels])
    num = np.asarray((Y.T @ chi).todense(), dtype=np.float64)  # (C, C) exact counts
    support = np.asarray(chi.sum(0)).ravel().astype(np.int64)
    matrix = np.divide(num, support[None, :], out=np.full(num.shape, np.nan),
                       where=support[None, :] > 0)
    np.fill_diagonal(matrix, np.nan)
    return matrix, support


def base_rate(labels: Sequence[np.ndarray]) -> np.ndarray:
    """``(C,)`` share of frames on which each class is present."""
    counts = sum(np.asarray(y, dtype=np.int64).sum(0) for y in labels)
    return counts / sum(len(y) for y in labels)


def lift(matrix: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``matrix[i, j] / rate[i]`` (NaN where ``rate[i] = 0``): 1 means no dependency."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rate[:, None] > 0, matrix / np.where(rate > 0, rate, 1)[:, None], np.nan)


@dataclass
class AnnotationSet:
    """A dataset folder's labels: spec (with class names when the folder has them), every
    video's record, the split lists (``"train"``, ``"test"``) and the number of segments
    dropped because they end before they start."""

    spec: DatasetSpec
    annotations: dict[str, VideoRecord]
    splits: dict[str, list[str]]
    dropped_segments: int = 0

    def records(self, split: str | None = None) -> list[VideoRecord]:
        ids = self.annotations if split is None else self.splits[split]
        return [self.annotations[v] for v in ids]

    def labels(self, split: str | None = None, fps: float = FEATURES_PER_SECOND,
               strict: bool = False) -> list[np.ndarray]:
        """Frame labels of a split (default: every video), one ``(n_k, C)`` uint8 each."""
        ids = None if split is None else self.splits[split]
        return list(label_videos(self.annotations, self.spec, ids, fps, strict).values())


def read_annotation_folder(root: str | os.PathLike, spec: DatasetSpec) -> AnnotationSet:
    """The labels of a dataset folder (``annotations.json``, ``train_list.txt``,
    ``test_list.txt``, optional ``classes.txt``), e.g. what :func:`fetch_annotations` returns.
    Segments that end before they start are dropped and counted (no warning). A split
    list naming a video that the annotations lack is an error naming both files."""
    root = Path(root)
    if (root / "classes.txt").is_file() and spec.class_names is None:
        spec = spec.with_class_names(read_class_names(root / "classes.txt", spec))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        annotations = read_annotations(root / "annotations.json", spec)
    dropped = 0
    for warning in caught:  # counted in the result instead (the message holds a path)
        match = re.search(r"dropped (\d+) segment", str(warning.message))
        if match is None:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
        else:
            dropped += int(match.group(1))
    splits = {}
    for split in ("train", "test"):
        ids = read_split(root / f"{split}_list.txt")
        missing = [v for v in ids if v not in annotations]
        if missing:
            raise ValueError(f"{root / f'{split}_list.txt'} lists videos that "
                             f"{root / 'annotations.json'} lacks: {missing[:5]}")
        splits[split] = ids
    return AnnotationSet(spec, annotations, splits, dropped)
