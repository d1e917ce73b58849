"""The splits a run trains, validates and tests on, from a :class:`TrainConfig`.

The validation split is a held-out part of the *training* split
(:func:`mladlib.data.split_validation`, seeded by the run's seed); the test split is
touched only for the final numbers. (The public MLAD code keeps the epoch that scores
best on the test split, which flatters its test numbers.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import data, synth
from ..data import DatasetSpec, VideoDataset
from ..data.spec import DATASET_SPEC_FILE, read_dataset_spec
from .config import TrainConfig

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class DataSplits:
    """The datasets of a run; ``val`` is None when ``val_fraction`` is 0."""

    spec: DatasetSpec
    train: VideoDataset | None
    val: VideoDataset | None
    test: VideoDataset | None

    def __getitem__(self, name: str) -> VideoDataset:
        if name not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {name!r}")
        split = getattr(self, name)
        if split is None:
            raise ValueError(f"this run has no {name} split (val_fraction is 0)" if name == "val" else
                             f"the {name} split was not loaded")
        return split


@dataclass(frozen=True)
class _Sources:
    spec: DatasetSpec
    annotations: Path
    train_features: list[Path]
    test_features: list[Path]
    train_list: Path | None
    test_list: Path | None
    classes: Path | None


def _folder_features(root: Path) -> list[Path]:
    return [root / "features.h5"] if (root / "features.h5").exists() else [root / "features"]


def _sources(config: TrainConfig) -> _Sources:
    """Where each file of the run's dataset is (nothing is read yet)."""
    if config.dataset == "synthetic":
        spec = synth.synthetic_spec(config.synthetic_size)
        root = Path(config.root) if config.root else synth.dataset_root(config.synthetic_size, config.synthetic_seed)
    else:
        spec = data.MULTITHUMOS if config.dataset == "multithumos" else data.CHARADES
        root = Path(config.root) if config.root else None
    if root is not None and not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if config.dataset == "custom":  # classes, id base and rate from its dataset.json
        if root is None and config.annotations is None:
            raise ValueError("dataset custom needs a dataset folder (root) or "
                             f"annotations, with {DATASET_SPEC_FILE} there or beside "
                             "them")
        home = root if root is not None else Path(config.annotations).parent
        spec = read_dataset_spec(home / DATASET_SPEC_FILE)

    def pick(given: str | None, name: str) -> Path | None:
        if given is not None:
            return Path(given)
        if root is not None and (root / name).exists():
            return root / name
        return None

    annotations = pick(config.annotations, "annotations.json")
    if annotations is None:
        raise FileNotFoundError(f"dataset folder {root} has no annotations.json (pass annotations)")
    train_features = [Path(p) for p in config.features] if config.features else _folder_features(root)
    test_features = [Path(p) for p in config.test_features] if config.test_features else train_features
    return _Sources(spec, annotations, train_features, test_features,
                    pick(config.train_list, "train_list.txt"), pick(config.test_list, "test_list.txt"),
                    pick(config.classes, "classes.txt"))


def input_paths(config: TrainConfig) -> list[Path]:
    """Every file or folder the run's dataset is read from (outputs must name none of them)."""
    sources = _sources(config)
    paths = [sources.annotations, *sources.train_features, *sources.test_features, sources.train_list,
             sources.test_list, sources.classes]
    return [p for p in paths if p is not None]


def dataset_spec(config: TrainConfig) -> DatasetSpec:
    """The run's :class:`~mladlib.data.DatasetSpec`, with class names when a class file is known.

    An explicit ``classes`` file is honoured on every dataset, the embedded one included
    (its names replace the generator's; the count must match).
    """
    sources = _sources(config)
    spec = sources.spec
    if sources.classes is not None and (spec.class_names is None or config.classes is not None):
        spec = spec.with_class_names(data.read_class_names(sources.classes, spec))
    if config.window is not None:
        spec = spec.replace(default_window=config.window)
    return spec


def _check_disjoint(sources: _Sources, ids, splits: tuple[str, ...]) -> None:
    """``ValueError`` naming the lists when a test video is also a training video (the test
    numbers would then be measured on training data)."""
    try:
        train_ids, test_ids = ids(sources.train_list, "training"), ids(sources.test_list, "testing")
    except (ValueError, OSError):
        if "test" in splits and ("train" in splits or "val" in splits):
            raise  # both are needed: the error is the user's
        return  # a one-split evaluation of annotations without the other subset
    both = [v for v in test_ids if v in set(train_ids)]
    if both:
        def where(path: Path | None, subset: str) -> str:
            return str(path) if path is not None else f"the annotations' {subset!r} subset"

        raise ValueError(
            f"{len(both)} test video(s) are also training videos, e.g. {both[:3]}: the test list "
            f"({where(sources.test_list, 'testing')}) must not overlap the training list "
            f"({where(sources.train_list, 'training')})")


def load_splits(config: TrainConfig, splits: tuple[str, ...] = SPLIT_NAMES) -> DataSplits:
    """Load the ``splits`` (any of ``"train"``, ``"val"``, ``"test"``) of the run's dataset.

    ``ValueError``/``FileNotFoundError`` naming the file or video at fault.
    """
    for name in splits:
        if name not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {name!r}")
    sources = _sources(config)
    spec = dataset_spec(config)
    annotations = data.read_annotations(sources.annotations, spec)
    in_memory = config.dataset == "synthetic" if config.in_memory is None else config.in_memory

    def ids(list_path: Path | None, subset: str) -> list[str]:
        return data.read_split(list_path) if list_path is not None else data.videos_in_subset(annotations, subset)

    def build(video_ids: list[str], features: list[Path]) -> VideoDataset:
        return VideoDataset(spec, annotations, [str(p) for p in features], video_ids, in_memory=in_memory)

    train = val = test = None
    _check_disjoint(sources, ids, splits)
    if "train" in splits or "val" in splits:
        train_ids = ids(sources.train_list, "training")
        val_ids: list[str] = []
        if config.val_fraction > 0:
            train_ids, val_ids = data.split_validation(train_ids, config.val_fraction, seed=config.seed)
        if "train" in splits:
            train = build(train_ids, sources.train_features)
        if "val" in splits:
            if not val_ids:
                raise ValueError("this run has no validation split (val_fraction is 0)")
            val = build(val_ids, sources.train_features)
    if "test" in splits:
        test = build(ids(sources.test_list, "testing"), sources.test_features)
    fitted = train if train is not None else val
    both = fitted is not None and test is not None
    if both and test.feature_dim != fitted.feature_dim:
        # found here, not after a whole training run, when the test split is scored
        raise ValueError(
            f"the test features ({', '.join(map(str, sources.test_features))}) are "
            f"{test.feature_dim}-d but the training features "
            f"({', '.join(map(str, sources.train_features))}) are "
            f"{fitted.feature_dim}-d")
    return DataSplits(spec, train, val, test)


def data_fingerprint(splits: DataSplits) -> str:
    """A short hash of what a run trains and is scored on: each loaded split's video
    ids, lengths (feature steps), frame labels, feature size and class count. Feature
    values are not read (too slow for large stores); moving the files keeps it."""
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        split = getattr(splits, name)
        if split is None:
            continue
        sizes = [int(split.feature_dim), int(split.num_classes)]
        record = [name, split.video_ids, split.frame_counts.tolist(), sizes]
        digest.update(json.dumps(record).encode())
        for i in range(len(split)):
            labels = np.ascontiguousarray(split.labels(i), dtype=np.uint8)
            digest.update(labels.tobytes())
    return digest.hexdigest()[:16]
