"""Every number the paper reports, exact and fast (section 4-5; tables 1-4, S5-S8).

Inputs everywhere: ``scores`` and ``labels``, lists with one ``(T_k, C)`` array per video
(NumPy arrays or torch tensors on any device), scores in [0, 1], labels 0/1.

* :func:`per_class_ap`, :func:`frame_map`: per-frame AP per class and f-mAP
  (:mod:`~mladlib.metrics.frame`).
* :func:`standard_metrics`: HL, ZL, RL, CE, JS, LRAP of table 2
  (:mod:`~mladlib.metrics.standard`).
* :func:`action_conditional`, :func:`action_conditional_sweep`: P_AC, R_AC, F1_AC and
  mAP_AC with their per-pair matrices, eq. 9-12 (:mod:`~mladlib.metrics.conditional`).

All of them equal a direct computation from the equations with scikit-learn to 1e-9
(``tests/test_metrics.py`` checks it against ``tests/reference_metrics.py``).
"""

from .conditional import ActionConditionalResult, action_conditional, action_conditional_sweep, condition_mask
from .frame import charades25_frames, frame_map, per_class_ap
from .standard import HIGHER_IS_BETTER, LOWER_IS_BETTER, StandardMetrics, standard_metrics
from ._inputs import FrameSet, frames_from_videos

__all__ = [
    "per_class_ap", "frame_map", "charades25_frames",
    "standard_metrics", "StandardMetrics", "LOWER_IS_BETTER", "HIGHER_IS_BETTER",
    "action_conditional", "action_conditional_sweep", "ActionConditionalResult", "condition_mask",
    "frames_from_videos", "FrameSet",
]
