"""Evaluation: full-video sliding-window scores, then every metric the paper reports.

:func:`evaluate` = :func:`predict` (each step scored once, the mean of the windows
covering it; see :mod:`mladlib.train.inference`) + :func:`metrics_from_predictions`
(frame mAP, table 2's standard metrics, the action-conditional metrics at each tau).
Under ``torchrun`` every rank scores a disjoint share of the videos and rank 0 computes
the metrics on the whole set. :func:`format_results` prints them as the paper does.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..data import VideoDataset
from ..metrics import action_conditional_sweep, frame_map, standard_metrics
from .distributed import DistributedContext
from .inference import predict_dataset


class _Shard:
    """The videos ``indices`` of a dataset, with what :func:`predict_dataset` reads of one."""

    def __init__(self, dataset: VideoDataset, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)
        self.spec, self.feature_dim, self.num_classes = dataset.spec, dataset.feature_dim, dataset.num_classes
        self.video_ids = [dataset.video_ids[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def features(self, index: int) -> np.ndarray:
        return self.dataset.features(self.indices[index])


def shard_indices(frame_counts: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s videos: every ``world_size``-th of them by decreasing length.

    Each rank thus gets about the same number of steps (with more ranks than videos,
    the extra ranks get none).
    """
    order = np.argsort(-np.asarray(frame_counts), kind="stable")
    return sorted(order[rank::world_size].tolist())


def predict(
    model: nn.Module,
    dataset: VideoDataset,
    window: int | None = None,
    stride: int | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
    context: DistributedContext | None = None,
) -> dict[str, np.ndarray] | None:
    """``video_id -> scores (T_k, C)`` float32 in the dataset's order.

    See :func:`predict_dataset`.

    With a distributed ``context`` each rank scores its :func:`shard_indices` and rank 0
    receives every score; the other ranks get None.
    """
    if context is None or not context.enabled:
        return predict_dataset(model, dataset, window, stride, batch_size, device,
                               autocast, progress)
    indices = shard_indices(dataset.frame_counts, context.rank, context.world_size)
    local = {}
    if indices:
        local = predict_dataset(model, _Shard(dataset, indices), window, stride,
                                batch_size, device, autocast, progress)
    parts = context.gather_to_main(local)
    if parts is None:
        return None
    merged = {video_id: scores for part in parts for video_id, scores in part.items()}
    return {video_id: merged[video_id] for video_id in dataset.video_ids}


def metrics_from_predictions(
    predictions: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    taus: Sequence[int] = (0, 20),
    threshold: float = 0.5,
    standard: bool = True,
    charades25: bool = False,
) -> dict:
    """Every metric of ``predictions`` against ``labels`` (both ``video_id -> (T_k, C)``).

    Returns plain Python values, fractions in [0, 1] (the paper prints x100)::

        {"videos": int, "frames": int, "frame_map": float, "per_class_ap": [float or nan] * C,
         "frame_map_charades25": float,                           # if charades25
         "standard": {"HL", "ZL", "RL", "CE", "JS", "LRAP"},      # if standard
         "action_conditional": {tau: {"P_AC", "R_AC", "F1_AC", "mAP_AC", "pairs"}}}

    ``frame_map`` scores every frame; ``charades25`` adds the official Charades protocol's
    f-mAP over 25 frames per video (:func:`mladlib.metrics.frame_map`, ``sample="charades25"``).

    ``ValueError`` naming a video without predictions.
    """
    video_ids = list(labels)
    missing = [v for v in video_ids if v not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} videos have no predictions, e.g. {missing[:3]}")
    scores = [np.asarray(predictions[v]) for v in video_ids]
    truth = [np.asarray(labels[v]) for v in video_ids]
    fmap, per_class = frame_map(scores, truth, return_per_class=True, video_ids=video_ids)
    result: dict = {
        "videos": len(video_ids),
        "frames": int(sum(len(y) for y in truth)),
        "frame_map": float(fmap),
        "per_class_ap": [float(ap) for ap in per_class],
    }
    if charades25:
        result["frame_map_charades25"] = float(frame_map(scores, truth, sample="charades25", video_ids=video_ids))
    if standard:
        result["standard"] = standard_metrics(scores, truth, threshold, video_ids=video_ids).as_dict()
    sweep = action_conditional_sweep(scores, truth, tuple(taus), threshold, video_ids=video_ids)
    result["action_conditional"] = {
        int(tau): {**{k: float(v) for k, v in r.as_dict().items()}, "pairs": int(r.n_pairs)} for tau, r in sweep.items()
    }
    return result


def evaluate(
    model: nn.Module,
    dataset: VideoDataset,
    window: int | None = None,
    stride: int | None = None,
    taus: Sequence[int] = (0, 20),
    threshold: float = 0.5,
    device: torch.device | str | None = None,
    autocast: torch.dtype | None = None,
    batch_size: int = 32,
    standard: bool = True,
    progress: bool = False,
    context: DistributedContext | None = None,
    return_predictions: bool = False,
) -> dict | tuple[dict, dict[str, np.ndarray] | None]:
    """Score every video of ``dataset`` with ``model`` and compute every metric.

    ``window`` defaults to the dataset's T, ``stride`` to ``window // 2``. Returns the dict
    of :func:`metrics_from_predictions`, with the 25-frames-per-video f-mAP of the official
    Charades evaluation when the dataset's spec is Charades (and the predictions, with
    ``return_predictions=True``). Under a distributed ``context`` every rank must call
    it; all of them get the metrics, only rank 0 the predictions.
    """
    predictions = predict(model, dataset, window, stride, batch_size, device, autocast, progress, context)
    metrics = None
    if predictions is not None:
        metrics = metrics_from_predictions(predictions, dataset.label_dict(), taus, threshold, standard,
                                           charades25=dataset.spec.name == "charades")
    if context is not None:
        metrics = context.broadcast(metrics)
    return (metrics, predictions) if return_predictions else metrics


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def format_results(metrics: Mapping, title: str | None = None) -> str:
    """``metrics`` (from :func:`evaluate`) as the paper's tables print them: f-mAP and the
    action-conditional metrics x100 with 2 decimals, table 2's standard metrics as
    fractions (CE in labels) with 3 decimals."""
    lines = [title] if title else []
    lines.append(f"{metrics['videos']:,} videos, {metrics['frames']:,} frames")
    standard = metrics.get("standard")
    sampled = "frame_map_charades25" in metrics
    names = ["f-mAP"] + (["f-mAP (25/video)"] if sampled else []) + (list(standard) if standard else [])
    values = ([_pct(metrics["frame_map"])] + ([_pct(metrics["frame_map_charades25"])] if sampled else [])
              + ([f"{v:.3f}" for v in standard.values()] if standard else []))
    widths = [max(len(n), len(v)) + 2 for n, v in zip(names, values)]
    lines.append("".join(n.rjust(w) for n, w in zip(names, widths)))
    lines.append("".join(v.rjust(w) for v, w in zip(values, widths)))
    columns = ("P_AC", "R_AC", "F1_AC", "mAP_AC", "pairs")
    lines.append("")
    lines.append("action-conditional" + "".join(c.rjust(9) for c in columns))
    for tau, row in metrics["action_conditional"].items():
        cells = [_pct(row[c]) for c in columns[:4]] + [str(row["pairs"])]
        lines.append(f"tau = {tau}".ljust(18) + "".join(c.rjust(9) for c in cells))
    return "\n".join(lines)
