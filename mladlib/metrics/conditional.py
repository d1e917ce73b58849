r"""Action-conditional precision, recall, F1 and mAP (paper section 4, eq. 9-12; tables 2, S5-S8).

Notation (the paper's): video :math:`k`, time-step :math:`t`, ground truth
:math:`y^{(k)}_{t,c} \in \{0, 1\}`, prediction :math:`\tilde y^{(k)}_{t,c} =
\mathbb 1[\text{score} \ge \text{threshold}]`. For an *evaluated* class :math:`c_i` and a
*conditioning* class :math:`c_j` the condition :math:`\chi_{t,j}` selects time-steps:

* :math:`\tau = 0` (eq. 9-10, co-occurrence): :math:`y_{t,c_j} = 1`.
* :math:`\tau > 0` (eq. 11-12, "c_i follows c_j"): :math:`y_{t,c_j} = 0 \wedge \exists
  t^* \in [t - \tau, t] : y_{t^*,c_j} = 1`, with :math:`t^*` in the same video (windows
  never cross videos; at the start of a video the window is cut). As :math:`y_{t,c_j} = 0`
  the steps that can satisfy it are :math:`t - \tau, \dots, t - 1`: the :math:`\tau`
  previous steps.
* :math:`\tau < 0` (our extension, "c_i precedes c_j"): the mirror image,
  :math:`y_{t,c_j} = 0 \wedge \exists t^* \in [t, t + |\tau|]`.

``window="official"`` reproduces the public MLAD code, whose window (a cumulative sum
minus the same sum rolled by :math:`\tau`) covers :math:`(t - \tau, t]`: the
:math:`\tau - 1` previous steps, one step less than eq. 11 (``tau=1`` selects nothing).
The public code's :math:`\tau < 0` branch rolls the flipped cumulative sum the wrong way
and selects frames unrelated to any window, so ``window="official"`` refuses
:math:`\tau < 0`.

Per pair (eq. 10, 12), summing over all videos and time-steps::

    N_correct(i|j) = #{t : y_{t,i} = 1, pred_{t,i} = 1, chi_{t,j}}
    N_predict(i|j) = #{t : pred_{t,i} = 1, chi_{t,j}}
    N_gt(i|j)      = #{t : y_{t,i} = 1, chi_{t,j}}          (the "support")

    Precision(i|j) = N_correct / N_predict   (0 when N_predict = 0)
    Recall(i|j)    = N_correct / N_gt
    F1(i|j)        = 2 P R / (P + R)          (0 when P + R = 0)
    AP(i|j)        = scikit-learn's average_precision_score on the frames with chi_{t,j}

A pair *counts* when :math:`i \ne j` and :math:`N_{gt}(i|j) > 0` (section 4). The
reported P_AC, R_AC, F1_AC and mAP_AC are plain means over the counted pairs; F1_AC is
the mean of the per-pair F1, not the harmonic mean of P_AC and R_AC (table 2's F1_AC
values are below that harmonic mean, e.g. 18.65 < 20.97 for the I3D row at tau = 0, as a
mean of per-pair F1 must be; the public code's ``get_f1`` returns the harmonic mean,
available here as :attr:`ActionConditionalResult.f1_of_means`). When no pair counts the
means are NaN.

Matrices are ``(C, C)`` with **row i = evaluated class, column j = conditioning class**,
matching the paper's AP(i = Action1 | j = Action2) of tables S7/S8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ._inputs import FrameSet, check_threshold, frames_from_videos
from ._ranking import pair_counts, positives_by_class

WINDOWS = ("paper", "official")


def condition_mask(frames: FrameSet, tau: int, window: str = "paper") -> torch.Tensor:
    """The condition :math:`\\chi_{t,j}` as ``(N, C)`` bool.

    Eq. 9 for ``tau == 0``, eq. 11 for ``tau != 0``. For ``tau > 0`` a negative
    frame ``t`` of class ``j`` qualifies when the last positive frame ``e`` of ``j``
    before it, in the same video, is at most ``reach`` steps back
    (``reach = tau`` for eq. 11, ``tau - 1`` for the official window): so every run of
    positive frames ending at ``e`` opens the window ``e + 1 .. e + reach``, cut at the
    video's end and at the next positive frame. Built from the runs (mirrored for
    ``tau < 0``), with no pass over the dense ``(N, C)`` grid but the final scatter, on
    the frames' device. See the module docstring for the windows.
    """
    tau = _check_tau(tau, window)
    y = frames.labels  # (N, C) bool
    if tau == 0:
        return y
    device = y.device
    lengths = torch.as_tensor(frames.lengths, device=device)
    offsets = torch.as_tensor(frames.offsets, device=device)
    # (N,) first and last frame of each frame's video
    video_start = torch.repeat_interleave(offsets[:-1], lengths)
    video_last = torch.repeat_interleave(offsets[1:], lengths) - 1
    cls, t = positives_by_class(y)  # positive frames, sorted by class then frame
    if cls.numel() == 0:
        # no positive frame: no window opens (and no pair counts, as at tau = 0)
        return torch.zeros_like(y)
    same_class_next = torch.cat(
        [cls[1:] == cls[:-1], cls.new_zeros(1, dtype=torch.bool)]
    )
    big = y.shape[0] + abs(tau) + 1
    if tau > 0:
        # eq. 11: t* in [t - tau, t]; official: (t - tau, t]
        reach = tau if window == "paper" else tau - 1
        next_t = torch.where(same_class_next, torch.cat([t[1:], t.new_zeros(1)]), big)
        run_end = (next_t != t + 1) | (t == video_last[t])
        e, j, nxt = t[run_end], cls[run_end], next_t[run_end]
        lo = e + 1
        hi = torch.minimum(torch.minimum(e + reach, video_last[e]), nxt - 1)
    else:
        reach = -tau  # t* in [t, t + |tau|]: the runs' starts open windows backwards
        same_class_prev = torch.cat(
            [cls.new_zeros(1, dtype=torch.bool), cls[1:] == cls[:-1]]
        )
        prev_t = torch.where(same_class_prev, torch.cat([t.new_zeros(1), t[:-1]]), -big)
        run_start = (prev_t != t - 1) | (t == video_start[t])
        s, j, prv = t[run_start], cls[run_start], prev_t[run_start]
        lo = torch.maximum(torch.maximum(s - reach, video_start[s]), prv + 1)
        hi = s - 1
    size = (hi - lo + 1).clamp(min=0)  # windows of different runs never overlap
    first = size.cumsum(0) - size
    frame = torch.repeat_interleave(lo - first, size)
    frame = frame + torch.arange(int(size.sum()), device=device)
    chi = torch.zeros_like(y)
    chi[frame, torch.repeat_interleave(j, size)] = True
    return chi


def _check_tau(tau, window: str) -> int:
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)):
        raise ValueError(f"tau must be an integer number of time-steps, got {tau!r}")
    tau = int(tau)
    if tau < 0 and window == "official":
        raise ValueError(
            "window='official' reproduces the public MLAD code, whose tau < 0 branch does not compute a "
            "window; use window='paper' for 'precedes' (tau < 0)"
        )
    return tau


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ActionConditionalResult:
    """Action-conditional metrics at one ``tau`` (eq. 9-12), aggregates and per-pair matrices.

    Aggregates are floats in [0, 1] (the paper prints them x100), NaN when no pair counts.
    Per-pair matrices are ``(C, C)``, row ``i`` = evaluated class, column ``j`` =
    conditioning class; the float ones are NaN where the pair does not count (``i == j``
    or ``support == 0``). ``support`` = :math:`N_{gt}(i|j, \\tau)`, ``n_predict`` and
    ``n_correct`` the other counts of eq. 10/12, all int64 and defined for every pair.
    """

    tau: int
    window: str
    threshold: float
    precision: float
    recall: float
    f1: float
    map: float
    n_pairs: int
    pair_precision: np.ndarray = field(repr=False)
    pair_recall: np.ndarray = field(repr=False)
    pair_f1: np.ndarray = field(repr=False)
    pair_ap: np.ndarray = field(repr=False)
    support: np.ndarray = field(repr=False)
    n_predict: np.ndarray = field(repr=False)
    n_correct: np.ndarray = field(repr=False)

    @property
    def counted(self) -> np.ndarray:
        """``(C, C)`` bool: the pairs that enter the means (``i != j`` and ``support > 0``)."""
        return ~np.isnan(self.pair_ap)

    @property
    def f1_of_means(self) -> float:
        """Harmonic mean of :attr:`precision` and :attr:`recall`.

        The public code's ``get_f1`` without its ``+1e-9``; *not* the F1_AC of table 2,
        which is :attr:`f1`.
        """
        p, r = self.precision, self.recall
        if np.isnan(p):
            return float("nan")
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def as_dict(self) -> dict[str, float]:
        """The four aggregates, keyed as table 2's columns."""
        return {"P_AC": self.precision, "R_AC": self.recall, "F1_AC": self.f1, "mAP_AC": self.map}

    def pair(self, evaluated: str | int, given: str | int, class_names: Sequence[str] | None = None) -> dict:
        """One pair's numbers, e.g. ``result.pair("Fall", "Jump", names)`` = AP(Fall | Jump, tau) of table S8.

        ``evaluated`` is class ``i`` (Action1), ``given`` the conditioning class ``j``
        (Action2), each a name in ``class_names`` or an index. Floats are NaN when the
        pair does not count.
        """
        C = self.support.shape[0]
        if class_names is not None:
            class_names = [str(c) for c in class_names]
            if len(class_names) != C:
                raise ValueError(f"class_names has {len(class_names)} names but the result has {C} classes")

        def index(c, role: str) -> int:
            if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
                if not 0 <= int(c) < C:
                    raise ValueError(f"{role} class index {c} is outside [0, {C})")
                return int(c)
            if class_names is None:
                raise ValueError(f"{role} class {c!r} is a name: pass class_names to look it up")
            if str(c) not in class_names:
                raise ValueError(f"{role} class {c!r} is not among the {C} class names")
            return class_names.index(str(c))

        i, j = index(evaluated, "evaluated"), index(given, "conditioning")
        return {
            "evaluated": class_names[i] if class_names else i,
            "given": class_names[j] if class_names else j,
            "tau": self.tau,
            "counted": bool(self.counted[i, j]),
            "precision": float(self.pair_precision[i, j]),
            "recall": float(self.pair_recall[i, j]),
            "f1": float(self.pair_f1[i, j]),
            "ap": float(self.pair_ap[i, j]),
            "support": int(self.support[i, j]),
            "n_predict": int(self.n_predict[i, j]),
            "n_correct": int(self.n_correct[i, j]),
        }


def _result(counts, tau: int, window: str, threshold: float) -> ActionConditionalResult:
    support, n_predict, n_correct = counts.support, counts.n_predict, counts.n_correct
    C = support.shape[0]
    counted = (support > 0) & ~np.eye(C, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_predict > 0, n_correct / np.maximum(n_predict, 1), 0.0)
        recall = n_correct / np.maximum(support, 1)
        f1 = np.where(
            precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
        )
    masked = [np.where(counted, a, np.nan) for a in (precision, recall, f1, counts.ap)]
    n_pairs = int(counted.sum())
    means = [float(a[counted].mean()) if n_pairs else float("nan") for a in masked]
    return ActionConditionalResult(
        tau, window, threshold, *means, n_pairs,
        *(_readonly(a) for a in masked),
        _readonly(support), _readonly(n_predict), _readonly(n_correct),
    )


def action_conditional_sweep(
    scores: Sequence,
    labels: Sequence,
    taus: Sequence[int] = (0, 20),
    threshold: float = 0.5,
    *,
    window: str = "paper",
    video_ids: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> dict[int, ActionConditionalResult]:
    """:func:`action_conditional` at several ``taus`` at once (tables 2, S5, S6 use 0, 5, 10, 20, 40).

    Each class's scores are ranked once and reused for every tau and every conditioning
    class, so a sweep costs little more than one tau. Returns ``{tau: result}``.
    """
    threshold = check_threshold(threshold)
    taus = [_check_tau(t, window) for t in taus]
    if len(taus) == 0:
        raise ValueError("taus is empty")
    frames = frames_from_videos(scores, labels, video_ids, device)
    conditions = [condition_mask(frames, tau, window) for tau in taus]
    counts = pair_counts(frames.scores, frames.labels, conditions, threshold, backend)
    return {tau: _result(c, tau, window, threshold) for tau, c in zip(taus, counts)}


def action_conditional(
    scores: Sequence,
    labels: Sequence,
    tau: int = 0,
    threshold: float = 0.5,
    *,
    window: str = "paper",
    video_ids: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> ActionConditionalResult:
    """Action-conditional precision, recall, F1 and mAP at one ``tau`` (eq. 9-12).

    Args:
        scores: one ``(T_k, C)`` array or tensor per video, probabilities in [0, 1].
        labels: one ``(T_k, C)`` binary array or tensor per video.
        tau: 0 for co-occurrence within a time-step (eq. 9-10); ``tau > 0`` for "c_i
            follows c_j within tau steps" (eq. 11-12); ``tau < 0`` for "precedes".
        threshold: predictions are ``score >= threshold``.
        window: ``"paper"`` (eq. 11, ``[t - tau, t]``) or ``"official"`` (the public
            code's ``(t - tau, t]``); see the module docstring.
        video_ids: names for the videos in error messages.
        device: where to compute; default the inputs' device (CPU for NumPy).
        backend: ``"auto"``, ``"numpy"`` (CPU) or ``"torch"``; all give the same numbers.

    Returns:
        An :class:`ActionConditionalResult`; ``result.precision`` etc. are P_AC, R_AC,
        F1_AC (mean per-pair F1) and mAP_AC, means over pairs ``i != j`` with
        ``N_gt(i|j, tau) > 0``. Exact: the per-pair AP equals scikit-learn's
        ``average_precision_score`` on the conditioned frames (ties grouped the same way).
    """
    return action_conditional_sweep(
        scores, labels, (tau,), threshold, window=window, video_ids=video_ids, device=device, backend=backend
    )[_check_tau(tau, window)]
