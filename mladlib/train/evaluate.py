"""Evaluation: full-video sliding-window scores, then every metric the paper reports.

:func:`evaluate` = :func:`~mladlib.train.inference.predict` (each step scored once,
the mean of the windows covering it) + :func:`metrics_from_predictions` (frame mAP,
table 2's standard metrics, the action-conditional metrics at each tau), returned as one
:class:`Evaluation`. Under ``torchrun`` every rank scores a disjoint share of the videos
and rank 0 computes the metrics on the whole set. :func:`format_results` prints them as
the paper does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..data import VideoDataset
from ..metrics import action_conditional_sweep, frame_map, standard_metrics
from .distributed import DistributedContext
from .inference import predict


@dataclass(frozen=True)
class Evaluation:
    """Every metric of one set of scores, fractions in [0, 1] (the paper prints x100).

    ``per_class_ap``: ``(C,)`` AP of each class (nan for a class without positives);
    ``standard``: table 2's ``HL, ZL, RL, CE, JS, LRAP`` (None when not computed);
    ``action_conditional``: ``tau -> {"P_AC", "R_AC", "F1_AC", "mAP_AC", "pairs"}``;
    ``frame_map_charades25``: the official Charades protocol's f-mAP over 25 frames per
    video (None unless asked for); ``predictions``: the scores, ``video_id -> (T_k, C)``
    (None where they were not kept: on ranks other than 0, and in a record read back).
    :meth:`to_dict` gives the JSON record that runs store (``results.json``).
    """

    videos: int
    frames: int
    frame_map: float
    per_class_ap: tuple[float, ...]
    action_conditional: Mapping[int, Mapping[str, float]]
    standard: Mapping[str, float] | None = None
    frame_map_charades25: float | None = None
    predictions: Mapping[str, np.ndarray] | None = field(default=None, repr=False,
                                                          compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain Python values (without the predictions); the keys of an
        absent ``standard`` or ``frame_map_charades25`` are left out."""
        record: dict[str, Any] = {
            "videos": self.videos, "frames": self.frames, "frame_map": self.frame_map,
            "per_class_ap": list(self.per_class_ap),
        }
        if self.frame_map_charades25 is not None:
            record["frame_map_charades25"] = self.frame_map_charades25
        if self.standard is not None:
            record["standard"] = dict(self.standard)
        record["action_conditional"] = {tau: dict(row)
                                        for tau, row in self.action_conditional.items()}
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Evaluation:
        """The inverse of :meth:`to_dict` (tau keys read back from JSON as integers)."""
        return cls(
            videos=int(record["videos"]), frames=int(record["frames"]),
            frame_map=float(record["frame_map"]),
            per_class_ap=tuple(float(ap) for ap in record["per_class_ap"]),
            action_conditional={int(tau): dict(row)
                                for tau, row in record["action_conditional"].items()},
            standard=dict(record["standard"]) if record.get("standard") else None,
            frame_map_charades25=record.get("frame_map_charades25"),
        )


def metrics_from_predictions(
    predictions: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    *,
    taus: Sequence[int] = (0, 20),
    threshold: float = 0.5,
    standard: bool = True,
    charades25: bool = False,
) -> Evaluation:
    """Every metric of ``predictions`` against ``labels``, both
    ``video_id -> (T_k, C)``.

    ``frame_map`` scores every frame; ``charades25`` adds the official Charades
    protocol's f-mAP over 25 frames per video (:func:`mladlib.metrics.frame_map`,
    ``sample="charades25"``); ``standard``: table 2's metrics too (slow on large
    splits). The result holds no predictions.

    ``ValueError`` naming a video without predictions, or one whose scores are NaN,
    infinite or outside [0, 1].
    """
    video_ids = list(labels)
    missing = [v for v in video_ids if v not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} videos have no predictions, "
                         f"e.g. {missing[:3]}")
    scores = [np.asarray(predictions[v]) for v in video_ids]
    truth = [np.asarray(labels[v]) for v in video_ids]
    ids = {"video_ids": video_ids}
    fmap, per_class = frame_map(scores, truth, return_per_class=True, **ids)
    sampled = None
    if charades25:
        sampled = float(frame_map(scores, truth, sample="charades25", **ids))
    table2 = None
    if standard:
        table2 = standard_metrics(scores, truth, threshold, **ids).as_dict()
    sweep = action_conditional_sweep(scores, truth, tuple(taus), threshold, **ids)
    conditional = {int(tau): {**{k: float(v) for k, v in r.as_dict().items()},
                              "pairs": int(r.n_pairs)}
                   for tau, r in sweep.items()}
    return Evaluation(
        videos=len(video_ids), frames=int(sum(len(y) for y in truth)),
        frame_map=float(fmap), per_class_ap=tuple(float(ap) for ap in per_class),
        action_conditional=conditional, standard=table2, frame_map_charades25=sampled,
    )


def evaluate(
    model: nn.Module,
    dataset: VideoDataset,
    *,
    window: int | None = None,
    stride: int | None = None,
    taus: Sequence[int] = (0, 20),
    threshold: float = 0.5,
    standard: bool = True,
    device: torch.device | str | None = None,
    autocast: torch.dtype | None = None,
    batch_size: int = 32,
    progress: bool = False,
    context: DistributedContext | None = None,
) -> Evaluation:
    """Score every video of ``dataset`` with ``model`` and compute every metric.

    ``window`` (default: the dataset's T), ``stride`` (default ``window // 2``),
    ``device``, ``autocast``, ``batch_size``, ``progress`` and ``context``: as
    :func:`~mladlib.train.inference.predict`; ``taus``, ``threshold`` and
    ``standard``: as :func:`metrics_from_predictions`, with the 25-frames-per-video
    f-mAP of the official Charades evaluation when the dataset's spec is Charades. The
    result keeps the predictions. Under a distributed ``context`` every rank must call
    it; all of them get the metrics, only rank 0 the predictions.
    """
    predictions = predict(model, dataset, window=window, stride=stride,
                          batch_size=batch_size, device=device, autocast=autocast,
                          progress=progress, context=context)
    result = None
    if predictions is not None:
        result = metrics_from_predictions(
            predictions, dataset.label_dict(), taus=taus, threshold=threshold,
            standard=standard, charades25=dataset.spec.name == "charades")
    if context is not None:
        result = context.broadcast(result)  # metrics only: the scores stay on rank 0
    return dataclasses.replace(result, predictions=predictions)


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def format_results(metrics: Evaluation | Mapping[str, Any],
                   title: str | None = None) -> str:
    """``metrics`` (an :class:`Evaluation`, or its :meth:`~Evaluation.to_dict` record)
    as the paper's tables print them: f-mAP and the action-conditional metrics x100
    with 2 decimals, table 2's standard metrics as fractions (CE in labels) with 3
    decimals."""
    if not isinstance(metrics, Evaluation):
        metrics = Evaluation.from_dict(metrics)
    lines = [title] if title else []
    lines.append(f"{metrics.videos:,} videos, {metrics.frames:,} frames")
    standard = metrics.standard or {}
    sampled = metrics.frame_map_charades25 is not None
    names = (["f-mAP"] + (["f-mAP (25/video)"] if sampled else []) + list(standard))
    values = ([_pct(metrics.frame_map)]
              + ([_pct(metrics.frame_map_charades25)] if sampled else [])
              + [f"{v:.3f}" for v in standard.values()])
    widths = [max(len(n), len(v)) + 2 for n, v in zip(names, values)]
    lines.append("".join(n.rjust(w) for n, w in zip(names, widths)))
    lines.append("".join(v.rjust(w) for v, w in zip(values, widths)))
    columns = ("P_AC", "R_AC", "F1_AC", "mAP_AC", "pairs")
    lines.append("")
    lines.append("action-conditional" + "".join(c.rjust(9) for c in columns))
    for tau, row in metrics.action_conditional.items():
        cells = [_pct(row[c]) for c in columns[:4]] + [str(row["pairs"])]
        lines.append(f"tau = {tau}".ljust(18) + "".join(c.rjust(9) for c in cells))
    return "\n".join(lines)
