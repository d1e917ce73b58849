"""Real data: MultiTHUMOS/Charades annotations, I3D feature stores, frame labels,
training windows and full-video sliding-window inference.

Typical use::

    from mladlib import data
    spec = data.MULTITHUMOS.with_class_names(data.read_class_names("classes.txt", data.MULTITHUMOS))
    annotations = data.read_annotations("multithumos.json", spec)
    test = data.VideoDataset(spec, annotations, ["rgb_test.h5", "flow_test.h5"], data.read_split("test_list.txt"))
    scores = data.predict_dataset(model, test)          # video_id -> (T_k, C)
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
from .inference import (
    check_model_fits,
    load_predictions,
    predict_dataset,
    save_predictions,
    sliding_window_scores,
    window_starts,
)
from .labels import frame_labels, frame_times
from .spec import CHARADES, MULTITHUMOS, DatasetSpec, read_class_names
from .windows import WindowBatch, WindowDataset, WindowSampler, collate_windows, window_loader

__all__ = [
    "DatasetSpec", "MULTITHUMOS", "CHARADES", "read_class_names",
    "VideoRecord", "read_annotations", "read_split", "videos_in_subset", "split_validation",
    "frame_labels", "frame_times",
    "FeatureStore", "HDF5FeatureStore", "NpyFolderStore", "ConcatFeatureStore", "VideoNotFoundError",
    "open_feature_store",
    "VideoDataset",
    "WindowSampler", "WindowDataset", "WindowBatch", "collate_windows", "window_loader",
    "sliding_window_scores", "predict_dataset", "window_starts", "check_model_fits",
    "save_predictions", "load_predictions",
    "fetch_annotations", "ANNOTATIONS_ENV", "ChecksumError",
]
