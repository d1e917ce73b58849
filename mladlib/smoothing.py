"""Persistence without attention: a model's scores averaged over neighbouring steps.

Protocol v2 of the semi-real experiment (``benchmarks/SEMIREAL_PROTOCOL_V2.md``) sets
this beside the temporal branch: if plain smoothing of the CF baseline's scores buys as
much as TB, the temporal branch's gain is persistence, not dependency. The window is
chosen on the validation videos, never on the test split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .metrics import frame_map

#: The windows tried (odd, in feature steps; 1 leaves the scores as they are).
WINDOWS = (1, 3, 5, 9, 17, 33, 65)


def smooth_scores(scores: np.ndarray, window: int) -> np.ndarray:
    """``(T, C)`` float64: each step's scores averaged over the centred ``window`` steps
    (an odd count), over the steps that exist at a video's ends (no padding)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (T, C), got {scores.shape}")
    if int(window) != window or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window}")
    if window == 1 or not scores.size:  # nothing to average (or no step at all)
        return scores.copy()
    T, half = len(scores), window // 2
    cumulative = np.concatenate(
        [np.zeros((1, scores.shape[1])), np.cumsum(scores, axis=0)]
    )
    lo = np.clip(np.arange(T) - half, 0, T)
    hi = np.clip(np.arange(T) + half + 1, 0, T)
    mean = (cumulative[hi] - cumulative[lo]) / (hi - lo)[:, None]
    # a mean lies within its inputs' range; differences of running sums can miss it by
    # a rounding (1 + 2e-16 after a run of ones), which the metrics rightly refuse
    return np.clip(mean, scores.min(), scores.max())


def smooth_all(
    predictions: Mapping[str, np.ndarray], window: int
) -> dict[str, np.ndarray]:
    """:func:`smooth_scores` of every video (``video_id -> (T_k, C)``)."""
    return {v: smooth_scores(p, window) for v, p in predictions.items()}


def choose_window(
    predictions: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    windows: Sequence[int] = WINDOWS,
) -> tuple[int, dict[int, float]]:
    """``(best window, {window: f-mAP})`` of the smoothed ``predictions`` on ``labels``
    (both ``video_id -> (T_k, C)``; meant for the validation videos). Ties go to the
    smaller window."""
    ids = list(labels)
    missing = [v for v in ids if v not in predictions]
    if missing:
        raise ValueError(
            f"{len(missing)} videos have no predictions, e.g. {missing[:3]}"
        )
    truth = [np.asarray(labels[v]) for v in ids]
    scores = {}
    for w in sorted(windows):
        smoothed = [smooth_scores(predictions[v], w) for v in ids]
        scores[w] = float(frame_map(smoothed, truth, video_ids=ids))
    best = max(scores, key=lambda w: (scores[w], -w))
    return best, scores
