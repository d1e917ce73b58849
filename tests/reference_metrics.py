"""Slow reference metrics, written straight from the paper's equations; deliberately no cleverness.

Loops over videos, frames and class pairs; every AP is one call of
``sklearn.metrics.average_precision_score`` on the pair's frames, every count a plain
count. ``tests/test_metrics.py`` compares :mod:`mladlib.metrics` with these to 1e-9 and
``benchmarks/bench_metrics.py`` times against them. Inputs: lists of per-video NumPy
arrays ``(T_k, C)``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score


def reference_condition(labels: list[np.ndarray], tau: int, window: str = "paper") -> list[np.ndarray]:
    """chi[t, j] per video (eq. 9 for tau = 0, eq. 11 for tau > 0, mirrored for tau < 0), a loop over frames."""
    out = []
    for y in labels:
        y = np.asarray(y).astype(bool)
        T = y.shape[0]
        if tau == 0:
            out.append(y.copy())
            continue
        chi = np.zeros_like(y)
        for t in range(T):
            if tau > 0 and window == "paper":
                first, last = t - tau, t  # t* in [t - tau, t]
            elif tau > 0:
                first, last = t - tau + 1, t  # t* in (t - tau, t]
            else:
                first, last = t, t - tau  # t* in [t, t + |tau|]
            seen = y[max(first, 0):min(last, T - 1) + 1].any(axis=0)  # (C,): present at some t* in the video
            chi[t] = ~y[t] & seen
        out.append(chi)
    return out


def reference_action_conditional(scores, labels, tau: int = 0, threshold: float = 0.5, window: str = "paper") -> dict:
    """Per-pair matrices (row i = evaluated, column j = conditioning; NaN where not counted) and means."""
    S = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores])
    Y = np.concatenate([np.asarray(y) for y in labels]).astype(bool)
    chi = np.concatenate(reference_condition(labels, tau, window))
    C = S.shape[1]
    keys = ("precision", "recall", "f1", "ap")
    pair = {k: np.full((C, C), np.nan) for k in keys}
    counts = {k: np.zeros((C, C), dtype=np.int64) for k in ("support", "n_predict", "n_correct")}
    for j in range(C):
        frames = chi[:, j]
        for i in range(C):
            y, s = Y[frames, i], S[frames, i]
            pred = s >= threshold
            n_gt, n_predict, n_correct = int(y.sum()), int(pred.sum()), int((pred & y).sum())
            counts["support"][i, j], counts["n_predict"][i, j], counts["n_correct"][i, j] = n_gt, n_predict, n_correct
            if i == j or n_gt == 0:
                continue
            p = n_correct / n_predict if n_predict > 0 else 0.0
            r = n_correct / n_gt
            pair["precision"][i, j] = p
            pair["recall"][i, j] = r
            pair["f1"][i, j] = 2 * p * r / (p + r) if p + r > 0 else 0.0
            pair["ap"][i, j] = average_precision_score(y, s)
    counted = ~np.isnan(pair["ap"])
    means = {k: float(pair[k][counted].mean()) if counted.any() else float("nan") for k in keys}
    return {**means, "n_pairs": int(counted.sum()), **{f"pair_{k}": v for k, v in pair.items()}, **counts}


def reference_per_class_ap(scores, labels) -> np.ndarray:
    """sklearn AP of each class over the concatenated frames; NaN without a positive frame."""
    S = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores])
    Y = np.concatenate([np.asarray(y) for y in labels]).astype(bool)
    ap = np.full(S.shape[1], np.nan)
    for c in range(S.shape[1]):
        if Y[:, c].any():
            ap[c] = average_precision_score(Y[:, c], S[:, c])
    return ap


def reference_standard_metrics(scores, labels, threshold: float = 0.5, jaccard_zero_division: float = 0.0) -> dict:
    """HL, ZL, RL, CE, JS, LRAP from their textbook definitions, one frame at a time.

    Ranking conventions (scikit-learn's documentation): rank of class c in a frame =
    #{classes scoring >= its score}; a frame with no positive (or no negative) class has
    ranking loss 0, coverage 0 when it has no positive, LRAP 1 when it has no positive or
    no negative class.
    """
    S = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores])
    Y = np.concatenate([np.asarray(y) for y in labels]).astype(bool)
    N, C = S.shape
    hl = zl = rl = ce = js = lrap = 0.0
    for t in range(N):
        s, y = S[t], Y[t]
        pred = s >= threshold
        hl += np.sum(pred != y) / C
        zl += float(np.any(pred != y))
        union = np.sum(pred | y)
        js += np.sum(pred & y) / union if union else jaccard_zero_division
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        if len(pos) and len(neg):
            wrong = sum(1 for a in pos for b in neg if s[a] <= s[b])
            rl += wrong / (len(pos) * len(neg))
        if len(pos):
            ce += max(np.sum(s >= s[a]) for a in pos)
        if len(pos) == 0 or len(neg) == 0:
            lrap += 1.0
        else:
            lrap += np.mean([np.sum(y & (s >= s[a])) / np.sum(s >= s[a]) for a in pos])
    return {"HL": hl / N, "ZL": zl / N, "RL": rl / N, "CE": ce / N, "JS": js / N, "LRAP": lrap / N}


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with scikit-learn's warnings silenced (the reference hits none we care about)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def frame_labels_of_test_split(path: str | Path, num_classes: int, first_id: int) -> tuple[list[str], list[np.ndarray]]:
    """Ids and ``(n, C)`` uint8 frame labels of the *testing* videos of an annotation file,
    built independently of ``mladlib.data``: n = round(3 * duration) features per video,
    frame f at time f * duration / n, labelled when start <= time <= end."""
    videos = json.loads(Path(path).read_text())
    ids, labels = [], []
    for vid in sorted(videos):
        v = videos[vid]
        if v["subset"] != "testing":
            continue
        n = max(1, int(round(3 * v["duration"])))
        time_s = np.arange(n) * v["duration"] / n
        y = np.zeros((n, num_classes), dtype=np.uint8)
        for c, start, end in v["actions"]:
            y[(time_s >= start) & (time_s <= end), int(c) - first_id] = 1
        ids.append(vid)
        labels.append(y)
    return ids, labels

