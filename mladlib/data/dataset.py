"""A split of a dataset: the videos, their features and their frame labels."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .annotations import VideoRecord, read_annotations, read_split, videos_in_subset
from .features import FeatureStore, open_feature_store
from .labels import frame_labels
from .spec import DatasetSpec, read_class_names
from ..validate import check_finite as _check_finite

#: ``from_folder``'s split names -> (split list file, annotation ``subset`` value).
SPLITS = {"train": ("train_list.txt", "training"), "test": ("test_list.txt", "testing")}
SPLITS["training"], SPLITS["testing"] = SPLITS["train"], SPLITS["test"]


class VideoDataset:
    """Videos of one split with features ``(T_k, D)`` float32 and labels ``(T_k, C)`` uint8.

    ``dataset[i] -> (features, labels)`` of the i-th listed video. Construction checks
    that every video is both annotated and in the feature store, with features of the
    store's size, and builds every video's frame labels (cheap: kilobytes per video).
    ``in_memory=True`` also reads every video's features once, so later reads cost no I/O.
    ``strict`` picks the label bounds (see :func:`~mladlib.data.frame_labels`).
    ``check_finite`` (default) reads every video once at construction and refuses NaN or
    infinite features with a ``ValueError`` naming the video and the store (one pass over
    the features; with ``in_memory`` it is free): a bad value is then found before
    training, not when a training window happens to cover it.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        annotations: Mapping[str, VideoRecord] | str | os.PathLike,
        features: FeatureStore | str | os.PathLike | Sequence[str | os.PathLike],
        video_ids: Sequence[str],
        strict: bool = False,
        in_memory: bool = False,
        check_finite: bool = True,
    ) -> None:
        if not isinstance(annotations, Mapping):
            annotations = read_annotations(annotations, spec)
        self.spec, self.strict = spec, strict
        self.store = open_feature_store(features)
        if isinstance(video_ids, (str, os.PathLike)):
            raise ValueError("video_ids must be a list of ids; read a split file with read_split(path)")
        self.video_ids: list[str] = list(video_ids)
        if not self.video_ids:
            raise ValueError("a VideoDataset needs at least one video")
        if len(set(self.video_ids)) != len(self.video_ids):
            twice = sorted(v for v, n in Counter(self.video_ids).items() if n > 1)
            raise ValueError(f"video ids listed more than once: {twice[:5]}")
        _require_all(self.video_ids, annotations, "the annotations")
        _require_all(self.video_ids, self.store, f"the feature store {self.store.location}")
        self.records = [annotations[v] for v in self.video_ids]

        self.feature_dim = self.store.feature_dim
        shapes = [self.store.shape(v) for v in self.video_ids]
        wrong = [(v, d) for v, (_, d) in zip(self.video_ids, shapes) if d != self.feature_dim]
        if wrong:
            raise ValueError(
                f"the feature store {self.store.location} holds {self.feature_dim}-d features but video "
                f"{wrong[0][0]!r} has {wrong[0][1]}-d ones ({len(wrong)} such videos)"
            )
        #: ``(N,)`` int64 number of feature steps of each video
        self.frame_counts = np.array([t for t, _ in shapes], dtype=np.int64)
        self._labels = [frame_labels(r, int(t), spec, strict) for r, t in zip(self.records, self.frame_counts)]
        self._features: list[np.ndarray] | None = None
        if in_memory or check_finite:
            loaded = []
            for v in self.video_ids:
                x = self.store.read(v)
                if check_finite:
                    _check_finite(x, f"video {v!r} in the feature store {self.store.location}")
                if in_memory:
                    loaded.append(x)
            self._features = loaded if in_memory else None
        # DataLoader workers fork from this process: leave no open file for them to inherit
        self.store.close()

    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike,
        split: str,
        spec: DatasetSpec,
        features: FeatureStore | str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        strict: bool = False,
        in_memory: bool = False,
    ) -> VideoDataset:
        """The ``split`` (``"train"``/``"test"``) of a dataset laid out in one folder::

            <root>/annotations.json    the shared MultiTHUMOS/Charades JSON layout
            <root>/features.h5         one dataset per video id (or <root>/features/*.npy)
            <root>/train_list.txt      optional: else the annotations' "subset" field
            <root>/test_list.txt
            <root>/classes.txt         optional: class names, when ``spec`` has none

        ``features`` overrides the feature location (e.g. ``["rgb_test.h5", "flow_test.h5"]``).
        """
        root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        list_name, subset = SPLITS[split]
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder {root} does not exist")
        classes = root / "classes.txt"
        if spec.class_names is None and classes.is_file():
            spec = spec.with_class_names(read_class_names(classes, spec))
        annotations = read_annotations(root / "annotations.json", spec)
        video_ids = read_split(root / list_name) if (root / list_name).is_file() else videos_in_subset(annotations, subset)
        if features is None:
            features = root / "features.h5" if (root / "features.h5").exists() else root / "features"
        return cls(spec, annotations, features, video_ids, strict=strict, in_memory=in_memory)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(features (T_k, D) float32, labels (T_k, C) uint8)`` of video ``index``."""
        return self.features(index), self._labels[index]

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def num_frames(self, index: int) -> int:
        return int(self.frame_counts[index])

    def labels(self, index: int) -> np.ndarray:
        """``(T_k, C)`` uint8 frame labels of video ``index``."""
        return self._labels[index]

    def features(self, index: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps ``[start, stop)`` of video ``index`` as ``(stop - start, D)`` float32."""
        if self._features is not None:
            stop = self.num_frames(index) if stop is None else stop
            return self._features[index][start:stop]
        return self.store.read(self.video_ids[index], start, stop)

    def label_dict(self) -> dict[str, np.ndarray]:
        """``video_id -> (T_k, C)`` uint8 labels of every video (what ``mladlib.metrics`` takes)."""
        return dict(zip(self.video_ids, self._labels))

    def __repr__(self) -> str:
        return (
            f"VideoDataset({self.spec.name}, {len(self)} videos, {int(self.frame_counts.sum())} steps, "
            f"D={self.feature_dim}, C={self.num_classes}, store={self.store.location!r})"
        )


def _require_all(video_ids: Sequence[str], container, where: str) -> None:
    missing = [v for v in video_ids if v not in container]
    if missing:
        shown = ", ".join(repr(v) for v in missing[:5])
        raise ValueError(
            f"{len(missing)} of {len(video_ids)} listed videos are missing from {where}: {shown}"
            f"{', ...' if len(missing) > 5 else ''}"
        )
