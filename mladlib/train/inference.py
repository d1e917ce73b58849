"""Full-video inference: a trained model run over whole videos with overlapping windows.

A video of T steps is cut into windows starting at ``0, stride, 2 stride, ...`` with the
last window ending exactly at the video's end (:func:`mladlib.data.window_starts`); each
step's score is the mean of the sigmoid probabilities of the windows that cover it. Every
step thus appears once in the output, and padding (for videos shorter than a window,
batched with longer ones) is masked in the model and never scored. The public MLAD code
instead stacks every window's scores (so interior steps count about 8 times in the
metrics) and scores padding as negatives.
"""

from __future__ import annotations

import contextlib
from typing import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..data.dataset import VideoDataset
from ..data.windows import window_starts


def check_model_fits(model: nn.Module, feature_dim: int, num_classes: int | None = None) -> None:
    """``ValueError`` naming both sizes when the model's ``feature_dim``/``num_classes`` differ from the data's."""
    model_dim = getattr(model, "feature_dim", None)
    if model_dim is not None and model_dim != feature_dim:
        raise ValueError(f"the model takes {model_dim}-d features but the data has {feature_dim}-d features")
    model_classes = getattr(model, "num_classes", None)
    if num_classes is not None and model_classes is not None and model_classes != num_classes:
        raise ValueError(f"the model predicts {model_classes} classes but the data has {num_classes}")


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _score_videos(
    model: nn.Module,
    videos: Iterable[tuple[str, np.ndarray]],
    window: int,
    stride: int | None,
    batch_size: int,
    device: torch.device | str | None,
    autocast: torch.dtype | None,
) -> dict[str, np.ndarray]:
    """``key -> scores (T, C) float32`` for each ``(key, features (T, D))``, in input order.

    Windows of consecutive videos share batches; a batch is padded to its longest window
    with a mask.
    """
    stride = max(1, window // 2) if stride is None else stride
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else _model_device(model)
    sums: dict[str, np.ndarray | None] = {}  # key -> (T, C) float64 sum of window scores
    counts: dict[str, np.ndarray] = {}  # key -> (T, 1) number of windows covering each step
    remaining: dict[str, int] = {}
    pending: list[tuple[str, int, np.ndarray]] = []  # (key, start, features (n, D))
    scores: dict[str, np.ndarray] = {}

    def run(batch: list[tuple[str, int, np.ndarray]]) -> None:
        T = max(len(x) for _, _, x in batch)
        x = np.zeros((len(batch), T, batch[0][2].shape[1]), dtype=np.float32)
        mask = np.zeros((len(batch), T), dtype=bool)
        for b, (_, _, xb) in enumerate(batch):
            x[b, : len(xb)], mask[b, : len(xb)] = xb, True
        x_t = torch.from_numpy(x).to(device)
        mask_t = None if mask.all() else torch.from_numpy(mask).to(device)
        amp = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
        with amp:
            out = model(x_t, mask_t)
        logits: Tensor = out.logits if hasattr(out, "logits") else out
        probs = torch.sigmoid(logits.float()).cpu().numpy()  # (B, T, C)
        for b, (key, start, xb) in enumerate(batch):
            if sums[key] is None:  # C is known once the model has answered
                sums[key] = np.zeros((len(counts[key]), probs.shape[2]))
            sums[key][start : start + len(xb)] += probs[b, : len(xb)]
            counts[key][start : start + len(xb)] += 1
            remaining[key] -= 1
            if remaining[key] == 0:
                scores[key] = (sums.pop(key) / counts.pop(key)).astype(np.float32)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for key, features in videos:
                if key in remaining or key in scores:
                    raise ValueError(f"video {key!r} is listed twice")
                if features.ndim != 2 or len(features) == 0:
                    raise ValueError(f"video {key!r}: expected features of shape (T, D) with T >= 1, got {features.shape}")
                starts = window_starts(len(features), window, stride)
                sums[key], counts[key], remaining[key] = None, np.zeros((len(features), 1)), len(starts)
                pending.extend((key, int(s), features[s : s + window]) for s in starts)
                while len(pending) >= batch_size:
                    batch, pending[:] = pending[:batch_size], pending[batch_size:]
                    run(batch)
            if pending:
                run(pending)
    finally:
        model.train(was_training)
    return scores


def _as_features(features: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(features, Tensor):
        features = features.detach().cpu().numpy()
    return np.asarray(features, dtype=np.float32)


def sliding_window_scores(
    model: nn.Module,
    features: np.ndarray | Tensor,
    window: int,
    stride: int | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    autocast: torch.dtype | None = None,
) -> np.ndarray:
    """Sigmoid scores ``(T, C)`` float32 of one video's ``features (T, D)``.

    Windows of ``window`` steps every ``stride`` steps (default ``window // 2``), the last
    one aligned to the video's end; each step gets the mean over the windows covering it.
    The model runs in eval mode without gradients (its mode is restored after) on
    ``device`` (default: where its parameters are), under ``torch.autocast`` with dtype
    ``autocast`` when given (e.g. ``torch.bfloat16``).
    """
    x = _as_features(features)
    if x.ndim != 2:
        raise ValueError(f"expected features of shape (T, D), got {x.shape}")
    check_model_fits(model, x.shape[1])
    return _score_videos(model, [("video", x)], window, stride, batch_size, device, autocast)["video"]


def predict_dataset(
    model: nn.Module,
    dataset: VideoDataset,
    window: int | None = None,
    stride: int | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """``video_id -> scores (T_k, C)`` float32 for every video of ``dataset``, in its order.

    As :func:`sliding_window_scores` (``window`` defaults to the spec's T), with windows of
    consecutive videos batched together. The result and ``dataset.label_dict()`` are
    what ``mladlib.metrics`` takes.
    """
    check_model_fits(model, dataset.feature_dim, dataset.num_classes)
    window = dataset.spec.default_window if window is None else window
    videos = ((video_id, dataset.features(i)) for i, video_id in enumerate(dataset.video_ids))
    if progress:
        from tqdm.auto import tqdm

        videos = tqdm(videos, total=len(dataset), desc="predict", unit="video")
    return _score_videos(model, videos, window, stride, batch_size, device, autocast)
