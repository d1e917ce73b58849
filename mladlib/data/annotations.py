"""Annotation files in the shared MultiTHUMOS/Charades JSON layout, and split lists.

Layout::

    {"video_id": {"subset": "training" | "testing",
                  "duration": 226.77,
                  "actions": [[class_id, start_seconds, end_seconds], ...]}}
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .spec import DatasetSpec


@dataclass(frozen=True, eq=False)
class VideoRecord:
    """One annotated video.

    ``duration``: seconds. ``actions (n, 3)`` float64, read-only: rows
    ``[class_index, start_s, end_s]`` with ``class_index`` already 0-based (the file's id
    minus the spec's ``class_id_base``). Times are as in the file: a segment may end after
    ``duration`` (frame labels clip it). ``subset``: ``"training"``, ``"testing"`` or None
    when the file has no such field.
    """

    video_id: str
    subset: str | None
    duration: float
    actions: np.ndarray

    def __post_init__(self) -> None:
        duration = self.duration
        if isinstance(duration, bool) or not isinstance(duration, numbers.Real) or not math.isfinite(duration) or duration <= 0:
            raise ValueError(f"video {self.video_id!r}: duration must be a number > 0 seconds, got {duration!r}")
        object.__setattr__(self, "duration", float(duration))
        actions = np.array(self.actions, dtype=np.float64)
        if actions.size == 0:
            actions = np.zeros((0, 3))
        if actions.ndim != 2 or actions.shape[1] != 3:
            raise ValueError(f"video {self.video_id!r}: actions must have shape (n, 3), got {actions.shape}")
        if not np.isfinite(actions).all():
            raise ValueError(f"video {self.video_id!r}: action times and classes must be finite numbers")
        if (actions[:, 0] < 0).any() or (actions[:, 0] != np.round(actions[:, 0])).any():
            raise ValueError(f"video {self.video_id!r}: class indices must be integers >= 0, got {actions[:, 0].tolist()}")
        actions.flags.writeable = False
        object.__setattr__(self, "actions", actions)

    @property
    def class_indices(self) -> np.ndarray:
        """``(n,)`` int64 label column of each action."""
        return self.actions[:, 0].astype(np.int64)


def read_annotations(path: str | os.PathLike, spec: DatasetSpec) -> dict[str, VideoRecord]:
    """Every video of an annotation file, in file order.

    Class ids are shifted by ``spec.class_id_base`` into 0-based label columns. Segments
    that end before they start are dropped, with one warning giving their count; segments
    wholly outside their video (starting at or after its duration, or ending before 0)
    are kept but label no frame, with one warning naming the videos. Raises ``ValueError``
    naming the file (unreadable or ill-formed JSON, a video id or field listed twice, most
    segments past their video's end: times in frames, not seconds) or the video (class id
    outside the spec, with a hint when the ids look 1-based or 0-based against the spec;
    duration missing or <= 0; malformed action).
    """
    path = Path(path)
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json keeps the last of two equal keys without a word; a video listed twice is a mistake
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                duplicates.append(key)
            obj[key] = value
        return obj

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f, object_pairs_hook=no_duplicates)
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file {path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"annotation file {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read annotation file {path}: {error}") from error
    if not isinstance(data, dict) or not data:
        raise ValueError(f"annotation file {path} must hold a non-empty JSON object of videos")
    if duplicates:
        key = duplicates[0]
        what = f"video {key!r} is listed" if key in data else f"field {key!r} appears"
        raise ValueError(f"annotation file {path}: {what} twice in one object (JSON would keep only the last)")

    records: dict[str, VideoRecord] = {}
    reversed_segments: list[str] = []
    # every class id of the file, for the hint when an id is out of range (0- vs 1-based)
    file_ids = {a[0] for e in data.values() if isinstance(e, dict) and isinstance(e.get("actions"), list)
                for a in e["actions"]
                if isinstance(a, (list, tuple)) and a and isinstance(a[0], (int, float))}
    for video_id, entry in data.items():
        records[video_id] = _parse_video(path, video_id, entry, spec, reversed_segments, file_ids)
    _warn_id_base(path, spec, file_ids)
    _check_segments_inside(path, records)
    if reversed_segments:
        videos = sorted(set(reversed_segments))
        warnings.warn(
            f"{path}: dropped {len(reversed_segments)} segment(s) that end before they start "
            f"(videos {', '.join(videos[:5])}{', ...' if len(videos) > 5 else ''})",
            stacklevel=2,
        )
    return records


def _check_segments_inside(path: Path, records: Mapping[str, VideoRecord]) -> None:
    """Warn about segments wholly outside their video; refuse a file where most segments
    start past their video's end (its times are frame numbers, not seconds)."""
    outside: list[str] = []
    past_end = total = 0
    for video_id, record in records.items():
        starts, ends = record.actions[:, 1], record.actions[:, 2]
        after = starts >= record.duration
        total += len(starts)
        past_end += int(after.sum())
        outside.extend([video_id] * int((after | (ends < 0)).sum()))
    if total and past_end > total / 2:
        raise ValueError(
            f"annotation file {path}: {past_end} of {total} segments start after their video's end; the times "
            "look like frame numbers, but the layout wants seconds (divide by the video's frame rate)")
    if outside:
        videos = list(dict.fromkeys(outside))
        warnings.warn(
            f"{path}: {len(outside)} segment(s) lie wholly outside their video and label no frame "
            f"(videos {', '.join(videos[:5])}{', ...' if len(videos) > 5 else ''})",
            stacklevel=3,
        )


def _warn_id_base(path: Path, spec: DatasetSpec, ids: set) -> None:
    """Warn when every id fits the spec but the file looks counted from the other base:
    ids 1..k with no 0 under a 0-based spec (each class would land one column to the
    right, the last column left empty), or ids up to C - 1 with no C under a 1-based one
    (one column to the left). A file that uses every id of its own base never warns."""
    ids = {int(i) for i in ids if i == int(i)}
    if not ids:
        return
    low, high, last = min(ids), max(ids), spec.class_ids.stop - 1
    if spec.class_id_base == 0 and low == 1:
        warnings.warn(
            f"{path}: class ids run from 1 to {high} and 0 never occurs, but {spec.name} "
            f"counts from 0: if the file counts from 1 every class lands one column off "
            f"(give class id base 1)", stacklevel=3)
    elif spec.class_id_base == 1 and high == last - 1 and low > 0:
        warnings.warn(
            f"{path}: class ids stop at {high} and {last} never occurs, but {spec.name} "
            f"counts from 1 up to {last}: if the file counts from 0 (with no class 0 "
            f"used) every class lands one column off (give class id base 0)", stacklevel=3)


def _id_hint(class_id: float, spec: DatasetSpec, ids: Any) -> str:
    """Why a class id may be out of range: the file counts classes from the other base."""
    if spec.class_id_base == 0 and class_id == spec.num_classes:
        zero = "" if 0 in ids else ", and no id 0 is used"
        return (f"; the ids look 1-based (id {spec.num_classes} = C{zero}) but {spec.name} counts from 0: "
                "shift them by -1 or use a 1-based dataset")
    if spec.class_id_base == 1 and class_id == 0:
        return f"; the ids look 0-based but {spec.name} counts from 1: shift them by +1"
    return ""


def _parse_video(path: Path, video_id: str, entry: Any, spec: DatasetSpec, reversed_segments: list[str],
                 file_ids: Any = ()) -> VideoRecord:
    where = f"annotation file {path}, video {video_id!r}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object with 'duration' and 'actions', got {type(entry).__name__}")
    duration = entry.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"{where}: duration must be a number > 0 seconds, got {duration!r}")
    subset = entry.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise ValueError(f"{where}: subset must be a string, got {subset!r}")
    actions = entry.get("actions", [])
    if not isinstance(actions, list):
        raise ValueError(f"{where}: actions must be a list of [class_id, start, end]")
    rows = []
    for action in actions:
        if (
            not isinstance(action, (list, tuple))
            or len(action) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in action)
            or not all(math.isfinite(v) for v in action)
        ):
            raise ValueError(f"{where}: malformed action {action!r}; expected [class_id, start_s, end_s]")
        class_id, start, end = action
        if class_id != int(class_id) or int(class_id) not in spec.class_ids:
            raise ValueError(
                f"{where}: class id {class_id} is outside {spec.name}'s ids "
                f"{spec.class_ids.start}..{spec.class_ids.stop - 1}"
                + _id_hint(class_id, spec, file_ids)
            )
        if end < start:
            reversed_segments.append(video_id)
            continue
        rows.append((int(class_id) - spec.class_id_base, float(start), float(end)))
    return VideoRecord(video_id, subset, float(duration), np.array(rows, dtype=np.float64).reshape(-1, 3))


def read_split(path: str | os.PathLike) -> list[str]:
    """Video ids of a split list (``train_list.txt``/``test_list.txt``: one id a line)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"split file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read split file {path}: {error}") from error
    ids = [line.strip() for line in lines if line.strip()]
    if not ids:
        raise ValueError(f"split file {path} lists no videos")
    seen: set[str] = set()
    for video_id in ids:
        if video_id in seen:
            raise ValueError(f"split file {path} lists video {video_id!r} twice")
        seen.add(video_id)
    return ids


def videos_in_subset(annotations: Mapping[str, VideoRecord], subset: str) -> list[str]:
    """Ids of the videos whose ``subset`` field is ``subset`` (e.g. ``"testing"``), in file order."""
    ids = [video_id for video_id, record in annotations.items() if record.subset == subset]
    if not ids:
        found = sorted({str(r.subset) for r in annotations.values()})
        raise ValueError(f"no video has subset {subset!r}; the annotations have subsets {found}")
    return ids


def split_validation(video_ids: Sequence[str], fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Hold out ``round(fraction * n)`` (at least one) of ``video_ids`` for validation.

    The choice depends only on ``(video_ids, fraction, seed)``; both parts keep the input
    order. Validate on a held-out part of the training split, never on the test split.
    """
    video_ids = list(video_ids)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if len(video_ids) < 2:
        raise ValueError(f"need at least 2 videos to hold some out, got {len(video_ids)}")
    num_val = min(max(1, round(fraction * len(video_ids))), len(video_ids) - 1)
    chosen = set(np.random.default_rng(seed).permutation(len(video_ids))[:num_val].tolist())
    train = [v for i, v in enumerate(video_ids) if i not in chosen]
    val = [v for i, v in enumerate(video_ids) if i in chosen]
    return train, val
