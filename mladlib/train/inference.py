"""Inference: a trained model's per-step scores over whole videos, with one verb,
:func:`predict`, and the helpers every model run shares (eval mode, device, autocast).

A video of T steps is cut into windows starting at ``0, stride, 2 stride, ...`` with
the last window ending exactly at the video's end (:func:`mladlib.data.window_starts`);
each step's score is the mean of the sigmoid probabilities of the windows that cover
it. Every step thus appears once in the output, and padding (for videos shorter than a
window, batched with longer ones) is masked in the model and never scored. The public
MLAD code instead stacks every window's scores (so interior steps count about 8 times
in the metrics) and scores padding as negatives.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Mapping, Sequence, overload

import numpy as np
import torch
from torch import Tensor, nn

from ..data.dataset import VideoDataset
from ..data.windows import window_starts
from .distributed import DistributedContext

#: The collections of videos :func:`predict` scores (besides one video's features):
#: a dataset, or ``video_id -> features (T_k, D)``.
Videos = VideoDataset | Mapping[str, "np.ndarray | Tensor"]


class NonFiniteScoresError(ValueError):
    """The model gave NaN or infinite scores (its weights, or features it overflows on).

    ``video``: the first video with such scores (None for features passed alone);
    ``count``: how many of its ``(T, C)`` scores are not finite, of ``total``.
    """

    def __init__(self, video: str | None, count: int, total: int) -> None:
        where = "" if video is None else f" on video {video!r}"
        super().__init__(f"the model gives NaN or infinite scores{where} ({count:,} of "
                         f"{total:,} values)")
        self.video, self.count, self.total = video, count, total


def check_model_fits(model: nn.Module, feature_dim: int,
                     num_classes: int | None = None) -> None:
    """``ValueError`` naming both sizes when the model's ``feature_dim``/``num_classes``
    differ from the data's."""
    model_dim = getattr(model, "feature_dim", None)
    if model_dim is not None and model_dim != feature_dim:
        raise ValueError(f"the model takes {model_dim}-d features but the data has "
                         f"{feature_dim}-d features")
    model_classes = getattr(model, "num_classes", None)
    if None not in (num_classes, model_classes) and model_classes != num_classes:
        raise ValueError(f"the model predicts {model_classes} classes but the data has "
                         f"{num_classes}")


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the ``amp`` option on ``device``: ``"bf16"`` everywhere,
    ``"auto"`` on CUDA only, ``"off"`` never (None: fp32)."""
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast_context(device: torch.device | str, dtype: torch.dtype | None
                     ) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` with ``dtype``; a no-op for ``dtype=None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode without gradients; its training mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def shard_indices(frame_counts: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s videos: every ``world_size``-th of them by decreasing length.

    Each rank thus gets about the same number of steps (with more ranks than videos,
    the extra ranks get none).
    """
    order = np.argsort(-np.asarray(frame_counts), kind="stable")
    return sorted(order[rank::world_size].tolist())


Device = torch.device | str | None


@overload
def predict(model: nn.Module, videos: np.ndarray | Tensor, *, window: int,
            stride: int | None = None, batch_size: int = 32, device: Device = None,
            autocast: torch.dtype | None = None, progress: bool = False,
            context: None = None) -> np.ndarray: ...


@overload
def predict(model: nn.Module, videos: Videos, *, window: int | None = None,
            stride: int | None = None, batch_size: int = 32, device: Device = None,
            autocast: torch.dtype | None = None, progress: bool = False,
            context: DistributedContext | None = None
            ) -> dict[str, np.ndarray] | None: ...


def predict(model, videos, *, window=None, stride=None, batch_size=32, device=None,
            autocast=None, progress=False, context=None):
    """Sigmoid scores of every step of ``videos``, float32: ``(T, C)`` for one video's
    features ``(T, D)``; ``video_id -> (T_k, C)`` in input order for a
    :class:`~mladlib.data.VideoDataset` or a mapping ``video_id -> (T_k, D)``.

    Windows of ``window`` steps (default: the dataset's T; needed for other input) every
    ``stride`` steps (default ``window // 2``), the last one aligned to the video's end;
    each step gets the mean over the windows covering it. Windows of consecutive videos
    share batches of ``batch_size``. The model runs in eval mode without gradients (its
    mode is restored after) on ``device`` (default: where its parameters are), under
    ``torch.autocast`` with dtype ``autocast`` when given (e.g. ``torch.bfloat16``).
    ``progress``: a progress bar over videos.

    With a distributed ``context`` every rank must call it; each scores its
    :func:`shard_indices` and rank 0 gets every score, the other ranks None.

    ``ValueError`` for sizes that do not fit the model; :class:`NonFiniteScoresError`
    (a ``ValueError``) naming the first video whose scores are NaN or infinite.
    """
    if isinstance(videos, (np.ndarray, Tensor)):
        if window is None:
            raise ValueError("predict needs window= for features without a dataset")
        if context is not None and context.enabled:
            raise ValueError("one video's features cannot be shared out between ranks")
        x = _as_features(videos)
        if x.ndim != 2:
            raise ValueError(f"expected features of shape (T, D), got {x.shape}")
        check_model_fits(model, x.shape[1])
        one = _score(model, [(None, x)], window, stride, batch_size, device, autocast)
        return one[None]
    if isinstance(videos, VideoDataset):
        check_model_fits(model, videos.feature_dim, videos.num_classes)
        window = videos.spec.default_window if window is None else window
        ids, lengths, read = videos.video_ids, videos.frame_counts, videos.features
    elif isinstance(videos, Mapping):
        if window is None:
            raise ValueError("predict needs window= for features without a dataset")
        ids = list(videos)
        arrays = [_as_features(videos[v]) for v in ids]
        for v, x in zip(ids, arrays):
            if x.ndim != 2:
                raise ValueError(f"video {v!r}: expected features (T, D), "
                                 f"got {x.shape}")
            check_model_fits(model, x.shape[1])
        lengths, read = [len(x) for x in arrays], arrays.__getitem__
    else:
        raise TypeError("predict takes features (T, D), a VideoDataset or a mapping "
                        f"video_id -> features, not {type(videos).__name__}")
    indices = list(range(len(ids)))
    if context is not None and context.enabled:
        indices = shard_indices(lengths, context.rank, context.world_size)
    scores = _score(model, _read_each(ids, indices, read, progress), window, stride,
                    batch_size, device, autocast)
    if context is None or not context.enabled:
        return scores
    parts = context.gather_to_main(scores)
    if parts is None:
        return None
    merged = {video_id: s for part in parts for video_id, s in part.items()}
    return {video_id: merged[video_id] for video_id in ids}


def _as_features(features: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(features, Tensor):
        features = features.detach().cpu().numpy()
    return np.asarray(features, dtype=np.float32)


def _read_each(ids: Sequence[str], indices: Sequence[int],
               read: Callable[[int], np.ndarray],
               progress: bool) -> Iterator[tuple[str, np.ndarray]]:
    """``(video_id, features (T, D))`` of the videos ``indices``, read one at a time."""
    chosen = indices
    if progress:
        from tqdm.auto import tqdm

        chosen = tqdm(indices, desc="predict", unit="video")
    for i in chosen:
        yield ids[i], read(i)


def _score(
    model: nn.Module,
    videos: Iterable[tuple[str | None, np.ndarray]],
    window: int,
    stride: int | None,
    batch_size: int,
    device: torch.device | str | None,
    autocast: torch.dtype | None,
) -> dict[str | None, np.ndarray]:
    """``key -> scores (T, C) float32`` for each ``(key, features (T, D))``, in order.

    Windows of consecutive videos share batches; a batch is padded to its longest window
    with a mask.
    """
    stride = max(1, window // 2) if stride is None else stride
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else model_device(model)
    sums: dict = {}  # key -> (T, C) float64 sum of window scores
    counts: dict = {}  # key -> (T, 1) number of windows covering each step
    remaining: dict = {}
    # (key, start, features (n, D)) of the windows not yet run
    pending: list[tuple[str | None, int, np.ndarray]] = []
    scores: dict = {}

    def run(batch: list[tuple[str | None, int, np.ndarray]]) -> None:
        T = max(len(x) for _, _, x in batch)
        x = np.zeros((len(batch), T, batch[0][2].shape[1]), dtype=np.float32)
        mask = np.zeros((len(batch), T), dtype=bool)
        for b, (_, _, xb) in enumerate(batch):
            x[b, : len(xb)], mask[b, : len(xb)] = xb, True
        x_t = torch.from_numpy(x).to(device)
        mask_t = None if mask.all() else torch.from_numpy(mask).to(device)
        with autocast_context(device, autocast):
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
                done = (sums.pop(key) / counts.pop(key)).astype(np.float32)
                finite = np.isfinite(done)
                if not finite.all():
                    bad = int(done.size - finite.sum())
                    raise NonFiniteScoresError(key, bad, done.size)
                scores[key] = done

    with eval_mode(model):
        for key, features in videos:
            if key in remaining or key in scores:
                raise ValueError(f"video {key!r} is listed twice")
            if features.ndim != 2 or len(features) == 0:
                what = "" if key is None else f"video {key!r}: "
                raise ValueError(f"{what}expected features of shape (T, D) with "
                                 f"T >= 1, got {features.shape}")
            starts = window_starts(len(features), window, stride)
            sums[key], counts[key] = None, np.zeros((len(features), 1))
            remaining[key] = len(starts)
            pending.extend((key, int(s), features[s : s + window]) for s in starts)
            while len(pending) >= batch_size:
                batch, pending[:] = pending[:batch_size], pending[batch_size:]
                run(batch)
        if pending:
            run(pending)
    return scores
