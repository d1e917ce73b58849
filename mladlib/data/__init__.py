"""Real data: MultiTHUMOS/Charades annotations, I3D feature stores, frame labels,
training windows, the windows that cover a whole video, and prediction files.

Typical use::

    from mladlib import data
    spec = data.MULTITHUMOS.with_class_names(data.read_class_names("classes.txt", data.MULTITHUMOS))
    annotations = data.read_annotations("multithumos.json", spec)
    test = data.VideoDataset(spec, annotations, ["rgb_test.h5", "flow_test.h5"], data.read_split("test_list.txt"))
    scores = train.predict(model, test)                 # mladlib.train: runs the model
    labels = test.label_dict()                          # video_id -> (T_k, C)
"""

from .annotations import VideoRecord, read_annotations, read_split, split_validation, videos_in_subset
from .dataset import VideoDataset
from .fetch import ANNOTATIONS_ENV, ChecksumError, fetch_annotations
from .features import (
    ConcatFeatureStore,
    FeatureStore,
    HDF5FeatureStore,
    NpyFolderStore,
    VideoNotFoundError,
    open_feature_store,
)
from .predictions import load_predictions, save_predictions
from .labels import frame_labels, frame_times
from .spec import CHARADES, MULTITHUMOS, DatasetSpec, read_class_names
from .windows import WindowBatch, WindowDataset, WindowSampler, collate_windows, window_loader, window_starts

__all__ = [
    "DatasetSpec", "MULTITHUMOS", "CHARADES", "read_class_names",
    "VideoRecord", "read_annotations", "read_split", "videos_in_subset", "split_validation",
    "frame_labels", "frame_times",
    "FeatureStore", "HDF5FeatureStore", "NpyFolderStore", "ConcatFeatureStore", "VideoNotFoundError",
    "open_feature_store",
    "VideoDataset",
    "WindowSampler", "WindowDataset", "WindowBatch", "collate_windows", "window_loader",
    "window_starts", "save_predictions", "load_predictions",
    "fetch_annotations", "ANNOTATIONS_ENV", "ChecksumError",
]
