"""Prediction files: ``video_id -> scores (T_k, C)`` in one HDF5 file, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from ..utils import atomic_path


def save_predictions(path: str | os.PathLike, predictions: Mapping[str, np.ndarray]) -> None:
    """Write ``video_id -> scores (T_k, C)`` to an HDF5 file, one float32 dataset per video.

    The file appears only once complete (written beside it, then renamed).
    """
    if not predictions:
        raise ValueError("no predictions to save")
    arrays = {}
    for video_id, scores in predictions.items():
        if not isinstance(video_id, str) or not video_id or "/" in video_id:
            raise ValueError(f"video id {video_id!r} cannot name an HDF5 dataset")
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim != 2:
            raise ValueError(f"video {video_id!r}: expected scores of shape (T, C), got {scores.shape}")
        arrays[video_id] = scores
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            for video_id, scores in arrays.items():
                f.create_dataset(video_id, data=scores)


def load_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_predictions`: ``video_id -> (T_k, C)`` float32."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            predictions = {}
            for video_id, item in f.items():
                if not isinstance(item, h5py.Dataset) or item.ndim != 2:
                    raise ValueError(f"prediction file {path}: {video_id!r} is not a (T, C) array")
                predictions[video_id] = np.asarray(item, dtype=np.float32)
            return predictions
    except (OSError, RuntimeError, KeyError, UnicodeDecodeError) as error:  # h5py on a damaged file
        raise ValueError(f"cannot read prediction file {path}: {error}") from error
