"""Per-frame average precision per class and its mean, f-mAP (paper section 5.1; tables 1, 3, 4).

**Convention.** A class's AP is computed over all frames of all videos concatenated
(videos pooled, not averaged), non-interpolated, exactly as scikit-learn's
``average_precision_score``: ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score
values in decreasing order, tied scores forming a single threshold. A class without a
positive frame has no AP (NaN here; scikit-learn would warn and return 0).

**The mean.** The literature differs; both readings are offered:

* ``average="present"`` (default): mean over the classes with at least one positive
  frame among the evaluated frames.
* ``average="nonzero"``: mean over the classes whose AP is non-zero, absent classes
  counting as AP 0: the super-events / TGM / PDAN family's
  ``sum(ap) / count_nonzero(ap)`` over its ``APMeter``. With an exact AP the two
  coincide: a class with a positive frame has AP >= 1/N > 0. (That ``APMeter`` also
  ranks tied scores one by one instead of as one threshold; on continuous scores ties
  are rare and the difference vanishes.)

**Which frames.** ``sample="all"`` (default) scores every frame. ``sample="charades25"``
scores 25 frames per video as the official Charades localization evaluation
(``Charades_v1_localize.m``) does: it labels the time points ``(j / 25) * duration``,
``j = 0..24``, and averages over all classes (on the Charades test set every class has a
positive among those frames, so this equals ``"present"``; its per-class AP ranks tied
scores one by one, as above). Our reading for frame arrays: with frame ``f`` of a
``T_k``-frame video at time ``f * duration / T_k``, time point ``j`` maps to frame
``floor(j * T_k / 25)``, the last frame at or before it; videos shorter than 25 frames
repeat frames, as the official evaluation repeats labels. (Code of the PDAN / MS-TCT
family has a ``sampled_25`` that takes ``p[1::int(T_k / 25)][:25]`` of videos longer than
25 frames, a different approximation that we do not reproduce.)

**Which protocol the paper used.** To our knowledge MLAD's published f-mAP (51.5 on
MultiTHUMOS, 23.7 on Charades, table 1) are per-frame APs over *all* frames of the
test videos, averaged over the classes present (``sample="all"``, either ``average``):
the paper describes "the standard evaluation protocol of computing per-frame mAP" and
mentions no frame sampling, and the metrics file published with the action-conditional
metrics (``standard_metric``) calls ``average_precision_score(..., average=None)`` on the
concatenated frames of all videos. We have not run the authors' code on their
predictions, so the Charades number may or may not follow the 25-frame protocol.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._inputs import FrameSet, frames_from_videos
from ._ranking import pair_counts

AVERAGES = ("present", "nonzero")
SAMPLES = ("all", "charades25")
CHARADES_FRAMES_PER_VIDEO = 25


def charades25_frames(lengths: Sequence[int]) -> np.ndarray:
    """Indices into the concatenated frames of the 25 frames scored per video, ``(25 K,)`` int64.

    Video ``k`` (``T_k`` frames, starting at ``offset_k``) contributes
    ``offset_k + floor(j * T_k / 25)`` for ``j = 0..24``; a video with no frame contributes none.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    j = np.arange(CHARADES_FRAMES_PER_VIDEO, dtype=np.int64)
    frames = offsets[:, None] + (j[None, :] * lengths[:, None]) // CHARADES_FRAMES_PER_VIDEO  # (K, 25)
    return frames[lengths > 0].reshape(-1)


def _sampled(frames: FrameSet, sample: str) -> FrameSet:
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {SAMPLES}, got {sample!r}")
    if sample == "all":
        return frames
    chosen = charades25_frames(frames.lengths)
    kept = [CHARADES_FRAMES_PER_VIDEO] * int(np.count_nonzero(np.asarray(frames.lengths) > 0))
    return frames.select(torch.as_tensor(chosen), kept)


def _per_class_ap(frames: FrameSet, backend: str) -> np.ndarray:
    # one condition column that holds every frame
    everything = torch.ones(
        frames.num_frames, 1, dtype=torch.bool, device=frames.device
    )
    counts = pair_counts(frames.scores, frames.labels, [everything], None, backend)
    return counts[0].ap[:, 0]


def per_class_ap(
    scores: Sequence,
    labels: Sequence,
    *,
    sample: str = "all",
    video_ids: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """AP of each class over the frames of all videos, ``(C,)`` float64 in [0, 1], NaN for a
    class without a positive frame. Equal to ``sklearn.metrics.average_precision_score``
    on the concatenated frames (see the module docstring for ``sample``)."""
    frames = _sampled(frames_from_videos(scores, labels, video_ids, device), sample)
    return _per_class_ap(frames, backend)


def frame_map(
    scores: Sequence,
    labels: Sequence,
    *,
    average: str = "present",
    sample: str = "all",
    return_per_class: bool = False,
    video_ids: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> float | tuple[float, np.ndarray]:
    """Per-frame mAP (f-mAP) in [0, 1] (the paper prints x100).

    Args:
        scores, labels: one ``(T_k, C)`` array or tensor per video.
        average: ``"present"`` (mean over classes with a positive frame) or
            ``"nonzero"`` (mean over classes with non-zero AP); equal for exact APs.
        sample: ``"all"`` frames or ``"charades25"`` (25 per video, official Charades).
        return_per_class: also return the ``(C,)`` per-class APs (NaN where absent).

    Returns NaN when no class has a positive frame.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    ap = per_class_ap(scores, labels, sample=sample, video_ids=video_ids, device=device, backend=backend)
    kept = ~np.isnan(ap) if average == "present" else np.nan_to_num(ap, nan=0.0) > 0
    value = float(ap[kept].mean()) if kept.any() else float("nan")
    return (value, ap) if return_per_class else value
