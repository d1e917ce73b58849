"""Exact average precision of every (class i, conditioning column j) pair, with one ranking per class.

The engine behind :func:`~mladlib.metrics.per_class_ap` (one all-frames column) and
:func:`~mladlib.metrics.action_conditional` (one column per conditioning class).

**What it computes.** Frames ``t = 1..N`` carry a score ``s[t, i]``, a label ``y[t, i]``
and, per column ``j``, a condition ``m[t, j]``. For each pair ``(i, j)``, restricted to
the frames ``F_j = {t : m[t, j]}``:

* ``support[i, j] = #{t in F_j : y[t, i]}`` (the paper's ``N_gt(i | j)``),
* ``n_predict[i, j] = #{t in F_j : s[t, i] >= threshold}`` and
  ``n_correct[i, j] = #{t in F_j : y[t, i] and s[t, i] >= threshold}``,
* ``ap[i, j]``: scikit-learn's ``average_precision_score(y[F_j, i], s[F_j, i])``, NaN when
  ``support[i, j] == 0``.

**Why it is exact.** scikit-learn's AP is ``sum_n (R_n - R_{n-1}) P_n`` over the distinct
score values ``v_1 > v_2 > ...`` of the frames, tied frames forming one threshold. Only
thresholds at which recall grows, i.e. those equal to the score of some positive frame,
contribute, so with ``TP(v)`` and ``CNT(v)`` the number of positive and of all frames in
``F_j`` scoring ``>= v``::

    AP(i | j) = 1 / support * sum over positive t in F_j of TP(s[t, i]) / CNT(s[t, i])

(every positive of a tie group adds the precision at the end of its group, exactly as
the group's recall step times its precision). So for class ``i`` it is enough to know,
for every frame, how many *distinct positive scores of class i* lie strictly above its
own score: its bin ``k[t]`` (``0`` = at or above the highest positive score). Frames in
bins ``<= k`` are exactly those scoring ``>= v_k``, the ``k``-th highest positive score,
whatever ``j`` is. One ranking per class (a sort of its N scores, read against the sorted
distinct positive scores) thus serves every conditioning column: ``CNT`` is a cumulative
histogram of the pairs ``(j, k[t])`` over ``m[t, j]``, ``TP`` the same over the positive
frames, both integer counts (no float drift); the final sums are float64. The
threshold joins the bin edges, so ``n_predict`` and ``n_correct`` are read off the same
histograms.

Cost per class: one ``O(N log N)`` ranking, then ``O(nnz(m) + J * bins)`` counting, with
``nnz(m)`` the number of conditioned (frame, column) pairs, instead of one sort per pair.

Two back ends compute the same numbers: NumPy (CPU; AVX-512 sorts) and torch (any
device, used for CUDA tensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class PairCounts:
    """Per-pair counts and AP for one condition; arrays ``(C, J)``: row = evaluated class i,
    column = conditioning column j."""

    support: np.ndarray  # int64, N_gt(i | j)
    n_predict: np.ndarray | None  # int64, None without a threshold
    n_correct: np.ndarray | None  # int64
    ap: np.ndarray  # float64, NaN where support == 0


def positives_by_class(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The positive entries of ``y (N, C)`` bool as ``(class, frame)`` int64, sorted by class then frame."""
    if y.device.type != "cpu":
        return torch.nonzero(y.T.contiguous(), as_tuple=True)
    cls, frame = _positives_by_class_numpy(y.numpy())
    return torch.from_numpy(cls), torch.from_numpy(frame)


def _positives_by_class_numpy(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frame, cls = np.nonzero(y)  # row-major: sorted by frame (a column-major scan is slower)
    key = cls.astype(np.int16) if y.shape[1] < 2**15 else cls
    order = np.argsort(key, kind="stable")  # radix sort on 16-bit keys; keeps frames sorted per class
    return cls[order].astype(np.int64), frame[order].astype(np.int64)


# --------------------------------------------------------------------------------------
# NumPy back end


def _bin_index_numpy(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``k[t] = #{edges > x[t]}`` for ascending distinct ``edges (m,)``; ``x (N,)`` -> ``(N,) int64``.

    One (AVX-512) argsort of ``x`` and a binary search of the few edges into it: several
    times faster than a binary search per frame, whose random probes miss the branch
    predictor.
    """
    order = np.argsort(x)  # (N,) ascending; order inside ties is irrelevant
    first_at_or_above = np.searchsorted(x[order], edges, side="left")  # (m,)
    # edges <= x[order[p]]  <=>  first_at_or_above[edge] <= p
    edges_at_or_below = np.cumsum(np.bincount(first_at_or_above, minlength=x.size + 1)[: x.size])
    k = np.empty(x.size, dtype=np.int64)
    k[order] = edges.size - edges_at_or_below
    return k


@dataclass(frozen=True)
class _ConditionPairs:
    """A condition ``m (N, J)`` as flat int64 pair lists (NumPy or torch), prepared once for every class."""

    num_columns: int
    frame: np.ndarray | torch.Tensor  # (nnz,) frame t of each pair with m[t, j]
    column: np.ndarray | torch.Tensor  # (nnz,) its column j
    pos_frame: np.ndarray | torch.Tensor  # (P,) pairs (t, j) with m[t, j] and y[t, i], grouped by class i
    pos_column: np.ndarray | torch.Tensor  # (P,)
    pos_start: np.ndarray | list[int]  # (C + 1,) class i's pairs are pos_*[pos_start[i]:pos_start[i + 1]]


def _prepare_numpy(m: np.ndarray, label_frame: np.ndarray, label_start: np.ndarray) -> _ConditionPairs:
    """Pairs of ``m (N, J)``, and every label ``(i, t)`` (``label_frame`` grouped by class,
    class ``i`` at ``label_start[i]:label_start[i + 1]``) expanded into the pairs of row ``t``."""
    frame, column = np.nonzero(m)  # row-major: sorted by frame
    row_start = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(m, axis=1), out=row_start[1:])
    # Expand every label (i, t) into the pairs of row t: a CSR row gather.
    degree = row_start[label_frame + 1] - row_start[label_frame]  # (L,)
    total = int(degree.sum())
    first = np.cumsum(degree) - degree
    pair = np.repeat(row_start[label_frame] - first, degree) + np.arange(total)
    pos_start = np.concatenate([[0], np.cumsum(degree)])[label_start]  # labels are grouped by class
    return _ConditionPairs(
        m.shape[1], frame.astype(np.int64), column.astype(np.int64),
        np.repeat(label_frame, degree), column[pair].astype(np.int64), pos_start,
    )


def _class_counts_numpy(
    k: np.ndarray, num_bins: int, k_threshold: int | None, pairs: _ConditionPairs, i: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Support, n_predict, n_correct and AP numerator of class ``i`` against every column."""
    J = pairs.num_columns
    keys = pairs.column * num_bins
    keys += k[pairs.frame]
    count = np.bincount(keys, minlength=J * num_bins).reshape(J, num_bins)  # (J, bins)
    np.cumsum(count, axis=1, out=count)  # count[j, b] = CNT: frames of F_j in bins <= b

    lo, hi = pairs.pos_start[i], pairs.pos_start[i + 1]
    pos_column, pos_bin = pairs.pos_column[lo:hi], k[pairs.pos_frame[lo:hi]]
    support = np.bincount(pos_column, minlength=J)
    pos_keys, multiplicity = np.unique(pos_column * num_bins + pos_bin, return_counts=True)  # sorted by (j, bin)
    key_column = pos_keys // num_bins
    running = np.cumsum(multiplicity)
    before_column = np.concatenate([[0], np.cumsum(support)])[key_column]
    true_positives = running - before_column  # TP at each (j, bin) holding positives
    precision = true_positives / count.reshape(-1)[pos_keys]
    ap_sum = np.bincount(key_column, weights=multiplicity * precision, minlength=J)
    if k_threshold is None:
        return support, None, None, ap_sum
    n_predict = count[:, k_threshold].copy()
    n_correct = np.bincount(pos_column[pos_bin <= k_threshold], minlength=J)
    return support, n_predict, n_correct, ap_sum


def _pair_counts_numpy(
    S: np.ndarray, Y: np.ndarray, conditions: Sequence[np.ndarray], threshold: float | None
) -> list[PairCounts]:
    N, C = S.shape
    St = np.ascontiguousarray(S.T)  # (C, N): one contiguous row per class
    label_class, label_frame = _positives_by_class_numpy(Y)
    label_start = np.concatenate([[0], np.cumsum(np.bincount(label_class, minlength=C))])
    prepared = [_prepare_numpy(m, label_frame, label_start) for m in conditions]
    out = [
        {name: np.zeros((C, p.num_columns), dtype) for name, dtype in
         (("support", np.int64), ("n_predict", np.int64), ("n_correct", np.int64), ("ap_sum", np.float64))}
        for p in prepared
    ]
    for i in range(C):  # one class at a time: threads were 5x slower on a busy 2-core machine
        x = St[i]
        positives = x[label_frame[label_start[i]:label_start[i + 1]]]
        if threshold is None and positives.size == 0:
            continue  # no AP, no counts needed
        edges = np.unique(positives if threshold is None else np.append(positives, threshold))  # ascending
        k = _bin_index_numpy(x, edges)
        k_threshold = None if threshold is None else int(np.count_nonzero(edges > threshold))
        for pairs, acc in zip(prepared, out):
            support, n_predict, n_correct, ap_sum = _class_counts_numpy(k, edges.size + 1, k_threshold, pairs, i)
            acc["support"][i], acc["ap_sum"][i] = support, ap_sum
            if n_predict is not None:
                acc["n_predict"][i], acc["n_correct"][i] = n_predict, n_correct
    return [_finish(acc, threshold) for acc in out]


def _finish(acc: dict, threshold: float | None) -> PairCounts:
    support = acc["support"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(support > 0, acc["ap_sum"] / support, np.nan)
    if threshold is None:
        return PairCounts(support, None, None, ap)
    return PairCounts(support, acc["n_predict"], acc["n_correct"], ap)


# --------------------------------------------------------------------------------------
# torch back end (same algorithm; every step stays on the tensors' device)


def _prepare_torch(m: torch.Tensor, label_frame: torch.Tensor, label_start: torch.Tensor) -> _ConditionPairs:
    """:func:`_prepare_numpy` in torch, on ``m``'s device (``pos_start`` as a list)."""
    frame, column = torch.nonzero(m, as_tuple=True)  # row-major: sorted by frame
    row_start = torch.zeros(m.shape[0] + 1, dtype=torch.int64, device=m.device)
    row_start[1:] = m.sum(dim=1).cumsum(0)
    degree = row_start[label_frame + 1] - row_start[label_frame]
    first = degree.cumsum(0) - degree
    pair = torch.repeat_interleave(row_start[label_frame] - first, degree)
    pair += torch.arange(pair.numel(), device=m.device)
    pos_start = torch.cat([degree.new_zeros(1), degree.cumsum(0)])[label_start].tolist()  # labels grouped by class
    pos_frame = torch.repeat_interleave(label_frame, degree)
    return _ConditionPairs(m.shape[1], frame, column, pos_frame, column[pair], pos_start)


def _pair_counts_torch(
    S: torch.Tensor, Y: torch.Tensor, conditions: Sequence[torch.Tensor], threshold: float | None
) -> list[PairCounts]:
    N, C = S.shape
    device = S.device
    St = S.T.contiguous()  # (C, N)
    label_class, label_frame = positives_by_class(Y)
    label_start = torch.cat([label_class.new_zeros(1), torch.bincount(label_class, minlength=C).cumsum(0)])
    prepared = [_prepare_torch(m, label_frame, label_start) for m in conditions]
    out = [
        {name: torch.zeros((C, p.num_columns), dtype=dtype, device=device) for name, dtype in
         (("support", torch.int64), ("n_predict", torch.int64), ("n_correct", torch.int64), ("ap_sum", torch.float64))}
        for p in prepared
    ]
    thr = None if threshold is None else torch.tensor([threshold], dtype=torch.float64, device=device)
    label_start = label_start.tolist()
    for i in range(C):
        x = St[i]
        positives = x[label_frame[label_start[i]:label_start[i + 1]]]
        if thr is None and positives.numel() == 0:
            continue
        edges = torch.unique(positives if thr is None else torch.cat([positives, thr]))  # ascending
        num_bins = edges.numel() + 1
        k = edges.numel() - torch.searchsorted(edges, x, right=True)  # (N,) int64
        k_threshold = None if thr is None else int((edges > threshold).sum())
        for pairs, acc in zip(prepared, out):
            J, lo, hi = pairs.num_columns, pairs.pos_start[i], pairs.pos_start[i + 1]
            count = torch.bincount(pairs.column * num_bins + k[pairs.frame], minlength=J * num_bins)
            count = count.view(J, num_bins).cumsum(1)  # (J, bins) CNT
            pos_column, pos_bin = pairs.pos_column[lo:hi], k[pairs.pos_frame[lo:hi]]
            support = torch.bincount(pos_column, minlength=J)
            pos_keys, multiplicity = torch.unique(pos_column * num_bins + pos_bin, return_counts=True)
            key_column = torch.div(pos_keys, num_bins, rounding_mode="floor")
            before_column = torch.cat([support.new_zeros(1), support.cumsum(0)])[key_column]
            true_positives = multiplicity.cumsum(0) - before_column
            # Keys are unique, so a plain scatter then a row sum adds each column's terms
            # deterministically (a float index_add_ on CUDA would not be).
            contribution = torch.zeros(J * num_bins, dtype=torch.float64, device=device)
            contribution[pos_keys] = multiplicity * (true_positives.double() / count.view(-1)[pos_keys].double())
            acc["ap_sum"][i] = contribution.view(J, num_bins).sum(1)
            acc["support"][i] = support
            if k_threshold is not None:
                acc["n_predict"][i] = count[:, k_threshold]
                acc["n_correct"][i] = torch.bincount(pos_column[pos_bin <= k_threshold], minlength=J)
    return [_finish({name: t.cpu().numpy() for name, t in acc.items()}, threshold) for acc in out]


# --------------------------------------------------------------------------------------


def pair_counts(
    scores: torch.Tensor,
    labels: torch.Tensor,
    conditions: Sequence[torch.Tensor],
    threshold: float | None,
    backend: str = "auto",
) -> list[PairCounts]:
    """Per-pair support, threshold counts and exact AP, one :class:`PairCounts` per condition.

    ``scores (N, C)`` float64, ``labels (N, C)`` bool and each condition ``(N, J)`` bool,
    all on one device. ``backend``: ``"numpy"`` (CPU), ``"torch"`` (the tensors' device)
    or ``"auto"`` (NumPy for CPU tensors, torch otherwise). Both give the same numbers.
    """
    if backend == "auto":
        backend = "numpy" if scores.device.type == "cpu" else "torch"
    if backend == "numpy":
        return _pair_counts_numpy(
            scores.cpu().numpy(), labels.cpu().numpy(), [m.cpu().numpy() for m in conditions], threshold
        )
    if backend == "torch":
        return _pair_counts_torch(scores, labels, [m.to(scores.device) for m in conditions], threshold)
    raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
