"""Feature stores: the published I3D feature layouts behind one interface.

* :class:`HDF5FeatureStore`: one HDF5 file, one dataset per video id (MLAD's
  ``rgb_*.h5``, ``flow_*.h5``, ``combined_*.h5``).
* :class:`NpyFolderStore`: a folder of ``<video_id>.npy`` (the super-events/TGM layout).
* :class:`ConcatFeatureStore`: several stores joined along the feature axis (RGB + flow
  early fusion: 1024 + 1024 = 2048).

Every store gives ``store[video_id] -> (T, D) float32``, ``store.read(video_id, start,
stop)`` (reads only those steps), ``video_id in store``, ``store.num_frames(video_id)``
(from metadata), ``store.feature_dim`` and ``store.video_ids()``. Arrays may be stored as
``(T, D)`` or ``(T, 1, 1, D)``. Files open lazily, once per process, so a store can be
handed to DataLoader workers (forked or spawned); pickling never carries an open handle.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from ..validate import check_real_dtype

#: What h5py raises on a damaged file: OSError mostly, RuntimeError for some damaged
#: metadata (object headers, B-trees), KeyError for a damaged link table, ValueError
#: (UnicodeDecodeError included) for a damaged name or datatype message.
_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError)


class VideoNotFoundError(KeyError, ValueError):
    """A video asked of a feature store that does not hold it (both a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class FeatureStore(ABC):
    """Per-video feature arrays ``(T, D)`` float32, read whole or by step range."""

    location: str  # the file or folder, for error messages

    @abstractmethod
    def video_ids(self) -> list[str]:
        """Every video the store holds."""

    @abstractmethod
    def shape(self, video_id: str) -> tuple[int, int]:
        """``(T, D)`` of ``video_id``, from metadata (no feature read)."""

    def num_frames(self, video_id: str) -> int:
        """T of ``video_id``, from metadata."""
        return self.shape(video_id)[0]

    @property
    def feature_dim(self) -> int:
        """D, the size of one feature vector (that of the store's first video)."""
        ids = self.video_ids()
        if not ids:
            raise ValueError(f"the feature store {self.location} holds no video")
        return self.shape(ids[0])[1]

    @abstractmethod
    def read(self, video_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps ``[start, stop)`` of ``video_id`` as ``(stop - start, D)`` float32."""

    def __getitem__(self, video_id: str) -> np.ndarray:
        return self.read(video_id)

    def close(self) -> None:
        """Release open files (a later read reopens them)."""

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._id_set()

    def __len__(self) -> int:
        return len(self.video_ids())

    def _id_set(self) -> set[str]:
        if getattr(self, "_ids_cache", None) is None:
            self._ids_cache = set(self.video_ids())
        return self._ids_cache

    def _missing(self, video_id: str) -> VideoNotFoundError:
        return VideoNotFoundError(f"video {video_id!r} is not in the feature store {self.location}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


def _frames_of(shape: tuple[int, ...], video_id: str, location: str) -> tuple[int, int]:
    """``(T, D)`` of a stored array of shape ``(T, D)`` or ``(T, 1, 1, D)``."""
    if len(shape) == 2 or (len(shape) == 4 and shape[1:3] == (1, 1)):
        return int(shape[0]), int(shape[-1])
    raise ValueError(f"video {video_id!r} in {location}: expected features of shape (T, D) or (T, 1, 1, D), got {shape}")


def _check_range(video_id: str, num_frames: int, start: int, stop: int | None) -> int:
    stop = num_frames if stop is None else stop
    if not 0 <= start < stop <= num_frames:
        raise ValueError(f"video {video_id!r} has {num_frames} steps; cannot read steps [{start}, {stop})")
    return stop


class HDF5FeatureStore(FeatureStore):
    """One HDF5 file with a dataset ``(T, D)`` or ``(T, 1, 1, D)`` per video id."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"feature file {self.path} does not exist")
        if not h5py.is_hdf5(self.path):
            raise ValueError(f"feature file {self.path} is not an HDF5 file")
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._ids: list[str] | None = None
        self._shapes: dict[str, tuple[int, int]] = {}

    def _file(self) -> h5py.File:
        # An HDF5 handle must not cross a fork: each process opens its own.
        if self._handle is None or self._pid != os.getpid():
            try:
                self._handle = h5py.File(self.path, "r")
            except _H5_ERRORS as error:
                raise ValueError(f"cannot open feature file {self.path}: {error}") from error
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        """Close this process's handle (it reopens on the next read)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle, self._pid = None, None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"], state["_pid"] = None, None
        return state

    def video_ids(self) -> list[str]:
        if self._ids is None:
            f = self._file()
            try:
                self._ids = [key for key in f.keys() if isinstance(f.get(key), h5py.Dataset)]
            except _H5_ERRORS as error:
                raise ValueError(f"cannot list the videos of feature file {self.path} (damaged?): {error}") from None
        return list(self._ids)

    def shape(self, video_id: str) -> tuple[int, int]:
        if video_id not in self._shapes:
            f = self._file()
            try:
                dataset = f.get(video_id) if isinstance(video_id, str) and "/" not in video_id else None
                stored = dataset.shape if isinstance(dataset, h5py.Dataset) else None
                dtype = dataset.dtype if stored is not None else None
            except _H5_ERRORS as error:
                raise ValueError(f"cannot read video {video_id!r} of feature file {self.path} (damaged?): "
                                 f"{error}") from None
            if stored is None:
                raise self._missing(video_id)
            check_real_dtype(dtype, f"video {video_id!r} in {self.location}")
            self._shapes[video_id] = _frames_of(stored, video_id, self.location)
        return self._shapes[video_id]

    def read(self, video_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        num_frames, dim = self.shape(video_id)
        stop = _check_range(video_id, num_frames, start, stop)
        f = self._file()
        try:
            block = f[video_id][start:stop]  # reads only these steps
        except _H5_ERRORS as error:
            raise ValueError(f"cannot read video {video_id!r} from {self.path}: {error}") from error
        return np.ascontiguousarray(block.reshape(stop - start, dim), dtype=np.float32)


class NpyFolderStore(FeatureStore):
    """A folder of ``<video_id>.npy`` arrays ``(T, D)`` or ``(T, 1, 1, D)``, memory-mapped on read."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.location = str(self.folder)
        if not self.folder.exists():
            raise FileNotFoundError(f"feature folder {self.folder} does not exist")
        if not self.folder.is_dir():
            raise ValueError(f"feature folder {self.folder} is not a folder")
        self._ids: list[str] | None = None
        self._shapes: dict[str, tuple[int, int]] = {}

    def _load(self, video_id: str) -> np.ndarray:
        path = self.folder / f"{video_id}.npy"
        if not isinstance(video_id, str) or "/" in video_id or not path.is_file():
            raise self._missing(video_id)
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read feature file {path}: {error}") from error

    def video_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = sorted(p.stem for p in self.folder.glob("*.npy"))
        return list(self._ids)

    def shape(self, video_id: str) -> tuple[int, int]:
        if video_id not in self._shapes:
            array = self._load(video_id)
            check_real_dtype(array.dtype, f"feature file {self.folder / (video_id + '.npy')}")
            self._shapes[video_id] = _frames_of(array.shape, video_id, self.location)
        return self._shapes[video_id]

    def read(self, video_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        array = self._load(video_id)
        check_real_dtype(array.dtype, f"feature file {self.folder / (video_id + '.npy')}")
        num_frames, dim = _frames_of(array.shape, video_id, self.location)
        stop = _check_range(video_id, num_frames, start, stop)
        return np.ascontiguousarray(array[start:stop].reshape(stop - start, dim), dtype=np.float32)


class ConcatFeatureStore(FeatureStore):
    """Several streams of the same videos joined along D (early fusion: RGB then flow).

    The published RGB and flow I3D features of a video sometimes differ in length by a
    step or two; such a video is cut to its shortest stream. A larger difference
    (more than ``max_length_difference`` steps) is a ``ValueError`` naming the video.
    """

    def __init__(self, *stores: FeatureStore, max_length_difference: int = 2) -> None:
        if len(stores) < 2:
            raise ValueError(f"ConcatFeatureStore joins at least 2 stores, got {len(stores)}")
        self.stores = stores
        self.max_length_difference = max_length_difference
        self.location = " + ".join(store.location for store in stores)

    def video_ids(self) -> list[str]:
        common = set.intersection(*(store._id_set() for store in self.stores[1:]))
        return [video_id for video_id in self.stores[0].video_ids() if video_id in common]

    def shape(self, video_id: str) -> tuple[int, int]:
        shapes = []
        for store in self.stores:
            if video_id not in store:
                raise store._missing(video_id)
            shapes.append(store.shape(video_id))
        lengths = [t for t, _ in shapes]
        if max(lengths) - min(lengths) > self.max_length_difference:
            raise ValueError(
                f"video {video_id!r}: the streams {self.location} have {lengths} steps, more than "
                f"{self.max_length_difference} apart"
            )
        return min(lengths), sum(d for _, d in shapes)

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def read(self, video_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = _check_range(video_id, self.num_frames(video_id), start, stop)
        return np.concatenate([store.read(video_id, start, stop) for store in self.stores], axis=1)


def open_feature_store(
    source: str | os.PathLike | Sequence[str | os.PathLike] | FeatureStore, max_length_difference: int = 2
) -> FeatureStore:
    """A store for an HDF5 file, a folder of ``.npy`` files, or a list of those (concatenated in order).

    ``open_feature_store(["rgb_test.h5", "flow_test.h5"])`` gives the 2048-d RGB + flow
    features; a store passed in is returned as is.
    """
    if isinstance(source, FeatureStore):
        return source
    if isinstance(source, (list, tuple)):
        if len(source) == 1:
            return open_feature_store(source[0])
        return ConcatFeatureStore(*(open_feature_store(s) for s in source), max_length_difference=max_length_difference)
    path = Path(source)
    if path.is_dir():
        return NpyFolderStore(path)
    if not path.exists():
        raise FileNotFoundError(f"feature file or folder {path} does not exist")
    if h5py.is_hdf5(path):
        return HDF5FeatureStore(path)
    raise ValueError(f"feature source {path} is neither an HDF5 file nor a folder of .npy files")
