"""Reading MLAD's attention (paper section 6, supplement section 7) and comparing it with
known action dependencies.

* :func:`collect_attention` runs an MLAD model over every step of a dataset (windows of
  the training length, each step counted once) and accumulates, per layer, the
  co-occurrence-branch (CB) maps averaged over the steps where each class is present
  (the paper's figure 5) and summaries of the temporal-branch (TB) maps: how much
  attention the steps where a class is present give to the steps where another (or the
  same) class is present, against what uniform attention would give.
* :func:`window_attention` returns every layer's maps on one window (figures 6, S3);
  :func:`class_time_attention` and :func:`present_mass` summarise them.
* :func:`ranking_quality` scores a ``(C, C)`` matrix as a ranking of each class's partners
  against a known graph (per-row ROC AUC and precision at k); :func:`label_cooccurrence`
  and :func:`label_precedence` are the same kind of matrix computed from labels alone.

Shape letters: L layers, B windows, T steps, C classes, F features. Steps are the
dataset's feature steps (1/3 s on the embedded dataset and MultiTHUMOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .data import VideoDataset
from .data.windows import window_starts
from .train.inference import check_model_fits, eval_mode, model_device


def _forward_maps(model: nn.Module, x: Tensor, mask: Tensor | None) -> list[dict[str, Tensor]]:
    """The model's per-layer attention maps on ``x (B, T, F)``; ``ValueError`` for a model without MLAD maps."""
    try:
        out = model(x, mask, return_attention=True)
    except TypeError as error:  # e.g. the linear baseline takes no return_attention
        raise ValueError(f"{type(model).__name__} does not return attention maps") from error
    maps = getattr(out, "attention", None)
    if not maps:
        raise ValueError(f"{type(model).__name__} returned no attention maps: it has no MLAD layers")
    branches = set(maps[0])
    if not branches or branches - {"cb", "tb"}:
        raise ValueError(f"expected MLAD maps 'cb' and/or 'tb' per layer, got {sorted(branches)}")
    return maps


# --- one window ---------------------------------------------------------------------------
class WindowAttention(NamedTuple):
    """Every layer's maps on one window, float32 NumPy arrays (None for an absent branch).

    ``cb (L, T, C, C)``: at step t, row i holds the weights class i gives to each class j.
    ``tb (L, C, T, T)``: for class c, row t holds the weights step t gives to each step s.
    """

    cb: np.ndarray | None
    tb: np.ndarray | None


def window_attention(model: nn.Module, features: np.ndarray | Tensor) -> WindowAttention:
    """Run ``model`` (eval mode, no gradients) on one window ``features (T, F)``; return its maps."""
    x = features.float() if isinstance(features, Tensor) else torch.from_numpy(np.asarray(features, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"expected one window of features (T, F) with T >= 1, got shape {tuple(x.shape)}")
    check_model_fits(model, x.shape[1])
    with eval_mode(model):
        maps = _forward_maps(model, x[None].to(model_device(model)), None)
    stacked = {}
    for branch in ("cb", "tb"):
        if branch in maps[0]:
            stacked[branch] = torch.stack([layer[branch][0] for layer in maps]).float().cpu().numpy()
    return WindowAttention(stacked.get("cb"), stacked.get("tb"))


def class_time_attention(cb: np.ndarray | Tensor) -> np.ndarray:
    """The attention each class *receives*, per step: ``cb (..., T, C, C) -> (..., C, T)``.

    The mean over the query rows i of ``cb[t, i, j]`` (the supplement's figure S3, which
    averages each ``C x C`` map over its rows): how much, on average, the classes look at
    class j at step t. Each column of the result sums to 1 over classes.
    """
    cb = np.asarray(cb.detach().cpu() if isinstance(cb, Tensor) else cb, dtype=np.float64)
    if cb.ndim < 3 or cb.shape[-1] != cb.shape[-2]:
        raise ValueError(f"expected CB maps of shape (..., T, C, C), got {cb.shape}")
    return np.swapaxes(cb.mean(axis=-2), -1, -2)


def present_mass(tb: np.ndarray | Tensor, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The checkerboard of figure 6 in two numbers per map.

    ``tb (..., T, T)``: rows are queries; ``present (T,)`` bool, where the class is present.
    Returns ``(from_present, from_absent)``, each ``(...)``: the mean attention mass that a
    present step (an absent step) puts on the present steps. Uniform attention gives both
    the fraction of present steps; a checkerboard gives ``from_present`` above it and
    ``from_absent`` below. NaN where there is no present (absent) query step.
    """
    tb = np.asarray(tb.detach().cpu() if isinstance(tb, Tensor) else tb, dtype=np.float64)
    present = np.asarray(present, dtype=bool)
    if tb.ndim < 2 or tb.shape[-1] != tb.shape[-2] or present.shape != tb.shape[-1:]:
        raise ValueError(f"expected TB maps (..., T, T) and present (T,), got {tb.shape} and {present.shape}")
    onto_present = tb[..., present].sum(axis=-1)  # (..., T): mass each query puts on present steps
    with np.errstate(invalid="ignore"):
        from_present = onto_present[..., present].mean(axis=-1) if present.any() else np.full(tb.shape[:-2], np.nan)
        from_absent = onto_present[..., ~present].mean(axis=-1) if (~present).any() else np.full(tb.shape[:-2], np.nan)
    return from_present, from_absent


# --- a whole dataset ----------------------------------------------------------------------
@dataclass
class AttentionStats:
    """Attention of an MLAD model summed over every step of a dataset (see :func:`collect_attention`).

    Sums, not means, so that statistics of several datasets add; the properties divide.
    Arrays are float64 NumPy; ``None`` for a branch the model lacks.

    * ``steps``: number of steps counted; ``present_steps (C,)``: steps where each class is present.
    * ``cb_sum (L, C, C)``: CB maps summed over all steps.
    * ``cb_given_sum (L, K, C, C)``, ``K = C``: ``[l, k, i, j]`` CB weight from class i to
      class j, summed over the steps where class k is present.
    * ``tb_sum (L, C, C)``: ``[l, i, j]`` the attention mass that class i's TB row puts on
      the steps where class j is present, summed over the query steps where i is present;
      ``tb_chance_sum (C, C)`` the same with uniform attention over the window's steps.
    * ``tb_absent_sum (L, C)``: ``[l, c]`` mass that steps where c is *absent* put on the
      steps where c is present (class c's map), over windows where c is present at all;
      ``tb_absent_chance_sum (C,)`` its uniform value; ``absent_queries (C,)`` the number
      of such query steps.
    * ``tb_before_sum (L, C, C)``: as ``tb_sum``, counting only keys *before* the query step
      where j is present and i is not (what a predecessor of i looks like);
      ``tb_before_chance_sum (C, C)`` its uniform value.
    """

    class_names: tuple[str, ...]
    window: int
    steps: int
    present_steps: np.ndarray
    cb_sum: np.ndarray | None
    cb_given_sum: np.ndarray | None
    tb_sum: np.ndarray | None
    tb_chance_sum: np.ndarray | None
    tb_absent_sum: np.ndarray | None
    tb_absent_chance_sum: np.ndarray | None
    tb_before_sum: np.ndarray | None
    tb_before_chance_sum: np.ndarray | None
    absent_queries: np.ndarray

    @property
    def num_layers(self) -> int:
        return len(self.cb_sum if self.cb_sum is not None else self.tb_sum)

    @property
    def num_classes(self) -> int:
        return len(self.present_steps)

    def _need(self, value: np.ndarray | None, branch: str) -> np.ndarray:
        if value is None:
            raise ValueError(f"the model has no {branch.upper()} branch: no {branch} statistics were collected")
        return value

    @property
    def cb_mean(self) -> np.ndarray:
        """``(L, C, C)``: the CB map averaged over every step."""
        return self._need(self.cb_sum, "cb") / max(self.steps, 1)

    @property
    def cb_given_present(self) -> np.ndarray:
        """``(L, K, C, C)``: ``[l, k]`` is layer l's CB map averaged over the steps where
        class k is present (the paper's figure 5); NaN for a class never present."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._need(self.cb_given_sum, "cb") / self.present_steps[None, :, None, None]

    def cb_given(self, class_index: int) -> np.ndarray:
        """``(L, C, C)``: every layer's CB map averaged over the steps where ``class_index`` is present."""
        if not 0 <= int(class_index) < self.num_classes:
            raise ValueError(f"class_index {class_index} is outside the {self.num_classes} classes")
        if self.present_steps[class_index] == 0:
            raise ValueError(f"class {self.class_names[class_index]!r} is never present: no map to average")
        return self._need(self.cb_given_sum, "cb")[:, class_index] / self.present_steps[class_index]

    @property
    def cb_from_present(self) -> np.ndarray:
        """``(L, C, C)``: ``[l, i, j]`` the CB weight class i gives class j, averaged over the
        steps where i is present (row i of ``cb_given(i)``); NaN rows for absent classes."""
        given = self.cb_given_present  # (L, C, C, C)
        C = self.num_classes
        return given[:, np.arange(C), np.arange(C), :]

    @staticmethod
    def _ratio(mass: np.ndarray, chance: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(chance > 0, mass / np.where(chance > 0, chance, 1.0), np.nan)

    @property
    def tb_lift(self) -> np.ndarray:
        """``(L, C, C)``: ``tb_sum / tb_chance_sum``; 1 = as much as uniform attention, NaN without support."""
        return self._ratio(self._need(self.tb_sum, "tb"), self.tb_chance_sum)

    @property
    def tb_before_lift(self) -> np.ndarray:
        """``(L, C, C)``: ``tb_before_sum / tb_before_chance_sum`` (``[i, j]``: attention from
        steps of i onto earlier steps of j, over uniform); NaN where j never precedes i."""
        return self._ratio(self._need(self.tb_before_sum, "tb"), self.tb_before_chance_sum)

    @property
    def checkerboard(self) -> dict[str, np.ndarray]:
        """Per layer and class, the mean attention mass onto the class's present steps
        (``(L, C)`` each): ``"from_present"``, ``"from_absent"``, and ``"chance_present"``,
        ``"chance_absent"`` (``(C,)``) that uniform attention would give. Averages are over
        query steps of windows where the class is present at least once."""
        tb_sum = self._need(self.tb_sum, "tb")
        C = self.num_classes
        diagonal = np.arange(C)
        present_queries = self.present_steps.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            absent_queries = self.absent_queries
            return {
                "from_present": tb_sum[:, diagonal, diagonal] / present_queries,
                "from_absent": self.tb_absent_sum / absent_queries,
                "chance_present": self.tb_chance_sum[diagonal, diagonal] / present_queries,
                "chance_absent": self.tb_absent_chance_sum / absent_queries,
            }


def collect_attention(
    model: nn.Module,
    dataset: VideoDataset,
    window: int | None = None,
    batch_size: int = 32,
) -> AttentionStats:
    """Run ``model`` over every step of ``dataset`` and accumulate its attention (see :class:`AttentionStats`).

    Each video is cut into consecutive windows of ``window`` steps (default: the dataset's
    T, the training length), the last one aligned to the video's end; every step is
    counted once (in the last window only the steps not already counted are), with the
    whole window as context. Windows of several videos share a batch, padded with a mask.
    The model runs where its parameters are, in eval mode without gradients (its mode is
    restored after). Per batch the cost is a few
    batched GEMMs over ``(B, T, C, C)`` and ``(B, C, T, T)``: no loop over classes.
    """
    check_model_fits(model, dataset.feature_dim, dataset.num_classes)
    window = dataset.spec.default_window if window is None else int(window)
    if window < 1 or batch_size < 1:
        raise ValueError(f"window and batch_size must be >= 1, got {window} and {batch_size}")
    device = model_device(model)
    C = dataset.num_classes
    # (video index, first step, first counted step): consecutive windows, each step counted once
    pieces: list[tuple[int, int, int]] = []
    for v in range(len(dataset)):
        counted_to = 0
        for start in window_starts(dataset.num_frames(v), window, window):
            pieces.append((v, int(start), max(int(start), counted_to)))
            counted_to = int(start) + min(window, dataset.num_frames(v))
    acc = _Accumulator(C)
    with eval_mode(model):
        for first in range(0, len(pieces), batch_size):
            batch = pieces[first:first + batch_size]
            T = max(min(window, dataset.num_frames(v)) for v, _, _ in batch)
            x = torch.zeros(len(batch), T, dataset.feature_dim)
            y = torch.zeros(len(batch), T, C)
            valid = torch.zeros(len(batch), T, dtype=torch.bool)
            counted = torch.zeros(len(batch), T, dtype=torch.bool)
            for b, (v, start, count_from) in enumerate(batch):
                stop = min(start + window, dataset.num_frames(v))
                n = stop - start
                x[b, :n] = torch.from_numpy(np.ascontiguousarray(dataset.features(v, start, stop)))
                y[b, :n] = torch.from_numpy(dataset.labels(v)[start:stop].astype(np.float32))
                valid[b, :n] = True
                counted[b, count_from - start:n] = True
            mask = None if bool(valid.all()) else valid.to(device)
            maps = _forward_maps(model, x.to(device), mask)
            acc.add(maps, y, valid, counted)
    names = tuple(dataset.spec.class_names or (str(c) for c in range(C)))
    return acc.result(names, window)


class _Accumulator:
    """Running sums of :class:`AttentionStats`, in float64 on the CPU."""

    def __init__(self, num_classes: int) -> None:
        self.C = num_classes
        self.steps = 0
        self.present = torch.zeros(num_classes, dtype=torch.float64)
        self.absent_queries = torch.zeros(num_classes, dtype=torch.float64)
        self.sums: dict[str, Tensor] = {}

    def _add(self, name: str, value: Tensor) -> None:
        value = value.double().cpu()
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def add(
        self, maps: list[dict[str, Tensor]], y: Tensor, valid: Tensor, counted: Tensor
    ) -> None:
        """One batch: per-layer ``maps``, labels ``y (B, T, C)`` 0/1 (0 on padding),
        ``valid (B, T)`` real steps, ``counted (B, T)`` steps counted as queries."""
        B, T, C = y.shape
        query = counted.float()  # (B, T)
        # (B, T, C): counted steps where each class is present
        y_query = y * query[..., None]
        # (B, C): the class is present somewhere in the window
        has_class = (y.sum(dim=1) > 0).float()
        absent_query = (1 - y) * query[..., None] * has_class[:, None, :]  # (B, T, C)
        self.steps += int(counted.sum())
        self.present += y_query.sum(dim=(0, 1)).double()
        self.absent_queries += absent_query.sum(dim=(0, 1)).double()
        device = next(iter(maps[0].values())).device
        y, y_query, absent_query, query = (
            t.to(device) for t in (y, y_query, absent_query, query)
        )
        # uniform attention over the window's real steps: (B, T) weights of the keys
        uniform = valid.float().to(device)
        uniform = uniform / uniform.sum(dim=1, keepdim=True)
        # [t, s] = 1 where key s precedes query t
        before = torch.ones(T, T, device=device).tril(-1)
        # (B, C, T): keys where the query's class is absent
        not_self = (1 - y).transpose(1, 2)
        y_query_ct = y_query.transpose(1, 2)  # (B, C, T)
        cb_layers, given_layers, tb_layers = [], [], []
        absent_layers, before_layers = [], []
        # L is a handful; everything inside is batched over B, T and C
        for layer in maps:
            if "cb" in layer:
                cb = layer["cb"].float()  # (B, T, C, C)
                cb_layers.append(torch.einsum("bt,btij->ij", query, cb))
                # [k, i, j] = sum over steps where k is present of cb[., i, j]:
                # one GEMM (C, BT) x (BT, C*C)
                given = y_query.reshape(B * T, C).T @ cb.reshape(B * T, C * C)
                given_layers.append(given.view(C, C, C))
            if "tb" in layer:
                tb = layer["tb"].float()  # (B, C, T, T)
                # key weights: attention that class c's present query steps give to
                # each key s
                onto = torch.einsum("bct,bcts->bcs", y_query_ct, tb)  # (B, C, T)
                tb_layers.append(torch.einsum("bcs,bsj->cj", onto, y))
                absent_onto = torch.einsum(
                    "bct,bcts->bcs", absent_query.transpose(1, 2), tb
                )
                absent_layers.append(torch.einsum("bcs,bsc->c", absent_onto, y))
                onto_before = torch.einsum("bct,bcts->bcs", y_query_ct, tb * before)
                onto_before = onto_before * not_self
                before_layers.append(torch.einsum("bcs,bsj->cj", onto_before, y))
        if cb_layers:
            self._add("cb", torch.stack(cb_layers))
            self._add("cb_given", torch.stack(given_layers))
        if tb_layers:
            self._add("tb", torch.stack(tb_layers))
            self._add("tb_absent", torch.stack(absent_layers))
            self._add("tb_before", torch.stack(before_layers))
            # the same three statistics under uniform attention, computed in closed form
            queries = y_query_ct.sum(dim=2)  # (B, C)
            self._add("tb_chance", torch.einsum("bc,bs,bsj->cj", queries, uniform, y))
            absent_queries = absent_query.sum(dim=1)  # (B, C)
            self._add(
                "tb_absent_chance",
                torch.einsum("bc,bs,bsc->c", absent_queries, uniform, y),
            )
            # queries after key s: total minus the inclusive running count
            later = queries[:, :, None] - y_query_ct.cumsum(dim=2)  # (B, C, T)
            self._add(
                "tb_before_chance",
                torch.einsum("bcs,bs,bsj->cj", later * not_self, uniform, y),
            )

    def result(self, class_names: tuple[str, ...], window: int) -> AttentionStats:
        get = lambda name: self.sums[name].numpy() if name in self.sums else None  # noqa: E731
        return AttentionStats(
            class_names, window, self.steps, self.present.numpy(), get("cb"), get("cb_given"), get("tb"),
            get("tb_chance"), get("tb_absent"), get("tb_absent_chance"), get("tb_before"), get("tb_before_chance"),
            self.absent_queries.numpy(),
        )


def mean_cb_attention(
    model: nn.Module, dataset: VideoDataset, class_index: int, window: int | None = None
) -> np.ndarray:
    """``(L, C, C)``: every layer's CB map averaged over the steps of ``dataset`` where
    ``class_index`` is present (the paper's figure 5). For several classes, call
    :func:`collect_attention` once and use :meth:`AttentionStats.cb_given`."""
    if not 0 <= int(class_index) < dataset.num_classes:
        raise ValueError(f"class_index {class_index} is outside the {dataset.num_classes} classes")
    return collect_attention(model, dataset, window).cb_given(int(class_index))


# --- comparing with a known graph ---------------------------------------------------------
class RankingQuality(NamedTuple):
    """How well each row of a score matrix ranks that class's true partners first; ``(C,)`` each.

    ``auc``: probability that a true partner scores above a non-partner (ties count half);
    ``precision``: fraction of true partners among the top k; ``chance_precision``: its
    expected value for a random ranking (positives / candidates); ``k``: the k used per row.
    NaN (``k`` 0) for a row without a true partner or without a non-partner among its candidates.
    """

    auc: np.ndarray
    precision: np.ndarray
    chance_precision: np.ndarray
    k: np.ndarray


def ranking_quality(
    scores, truth, k: int | None = None, candidates=None
) -> RankingQuality:
    """Score ``scores (C, C)`` row by row as a ranking of class i's partners j.

    The partners are checked against ``truth (C, C)`` 0/1.

    ``candidates (C, C)`` bool: which j are ranked in row i (default: every ``j != i``
    with a finite score). ``k``: precision at k; default (None) the row's number of true
    partners among its candidates (R-precision). Vectorised over rows and pairs.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or t.shape != s.shape:
        raise ValueError(
            f"scores and truth must both be (C, C); got {s.shape} and {t.shape}"
        )
    C = s.shape[0]
    cand = ~np.eye(C, dtype=bool) & np.isfinite(s)
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=bool)
        if candidates.shape != s.shape:
            raise ValueError(f"candidates must be ({C}, {C}), got {candidates.shape}")
        cand &= candidates
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1 (or None for R-precision), got {k}")
    positive = cand & (t > 0)
    negative = cand & (t <= 0)
    n_pos, n_neg = positive.sum(1), negative.sum(1)
    usable = (n_pos > 0) & (n_neg > 0)
    # AUC: over every (true partner p, non-partner n) pair of a row,
    # [s_p > s_n] + 0.5 [s_p = s_n]
    filled = np.where(cand, s, 0.0)
    # (C, P, N) over all j pairs
    wins = 0.5 * (np.sign(filled[:, :, None] - filled[:, None, :]) + 1)
    pairs = positive[:, :, None] & negative[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(usable, (wins * pairs).sum((1, 2)) / (n_pos * n_neg), np.nan)
    # precision at k: rank candidates by score, high first (ties: lower index first)
    order = np.argsort(np.where(cand, -s, np.inf), axis=1, kind="stable")  # (C, C)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(C)[None, :].repeat(C, 0), axis=1)
    k_row = np.minimum(n_pos if k is None else np.full(C, k), n_pos + n_neg)
    k_row = np.where(usable, k_row, 0)
    hits = (positive & (rank < k_row[:, None])).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(usable, hits / np.maximum(k_row, 1), np.nan)
        chance = np.where(usable, n_pos / (n_pos + n_neg), np.nan)
    return RankingQuality(auc, precision, chance, k_row)


def _label_list(labels) -> list[np.ndarray]:
    if isinstance(labels, VideoDataset):
        return [labels.labels(i) for i in range(len(labels))]
    items = list(labels.values()) if isinstance(labels, dict) else list(labels)
    if not items:
        raise ValueError("labels is empty: give at least one video's (T, C) labels")
    out = []
    for n, y in enumerate(items):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != np.asarray(items[0]).shape[1]:
            raise ValueError(f"labels of video {n} must be (T, C) with the same C as the first, got {y.shape}")
        out.append(y > 0)
    return out


def label_cooccurrence(labels) -> np.ndarray:
    """``(C, C)``: ``[i, j]`` = P(j present | i present) over every step.

    ``labels``: a :class:`~mladlib.data.VideoDataset`, a list of ``(T, C)`` 0/1 arrays or a
    dict of them. NaN rows for classes never present.
    """
    Y = np.concatenate(_label_list(labels)).astype(np.float64)  # (N, C)
    counts = Y.T @ Y  # (C, C) steps where both are present
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / np.diag(counts)[:, None]


def label_precedence(labels, horizon: int) -> np.ndarray:
    """``(C, C)``: ``[i, j]`` = the fraction of onsets of class i that class j was present
    in the ``horizon`` steps before (the label-statistics view of "i follows j").

    An onset is a step where i is present and was not at the previous step (or the video
    starts with i). NaN rows for classes without an onset.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 step, got {horizon}")
    videos = _label_list(labels)
    C = videos[0].shape[1]
    counts = np.zeros((C, C))
    onsets = np.zeros(C)
    for y in videos:  # a loop over videos; classes and steps are vectorised
        y = y.astype(np.int64)
        previous = np.vstack([np.zeros((1, C), np.int64), y[:-1]])
        onset = (y == 1) & (previous == 0)  # (T, C)
        running = np.vstack([np.zeros((1, C), np.int64), np.cumsum(y, axis=0)])  # (T + 1, C) exclusive sums
        t = np.arange(len(y))
        seen = (running[t] - running[np.maximum(t - horizon, 0)]) > 0  # (T, C): present in [t - h, t - 1]
        counts += onset.T.astype(np.float64) @ seen.astype(np.float64)
        onsets += onset.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / onsets[:, None]
