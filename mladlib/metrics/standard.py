"""The standard multi-label metrics of table 2: HL, ZL, RL, CE, JS, LRAP (via scikit-learn).

Every frame of every video is one sample (videos concatenated); its label set is
``{c : y[t, c] = 1}``, its predicted set ``{c : score[t, c] >= threshold}`` and its
ranking the scores. For ``N`` frames and ``C`` classes:

* **HL**, Hamming loss (lower is better): ``hamming_loss``, the fraction of the ``N x C``
  (frame, class) decisions that are wrong.
* **ZL**, zero-one loss (lower is better): ``zero_one_loss``, the fraction of frames whose
  predicted set differs from the label set in any class (subset accuracy's complement).
* **RL**, ranking loss (lower is better): ``label_ranking_loss``, per frame the fraction of
  (positive, negative) class pairs ranked in the wrong order (ties count as wrong), then
  averaged over frames; a frame with no positive (or no negative) class scores 0.
* **CE**, coverage error (lower is better; "CL" in the paper's text, "CE" in table 2):
  ``coverage_error``, per frame how far down the ranking one must go to cover every
  positive class (ties counted pessimistically), averaged over frames; a frame with no
  positive class scores 0 (scikit-learn's convention).
* **JS**, Jaccard score (higher is better): ``jaccard_score(average="samples")``, per frame
  ``|pred & true| / |pred | true|``, averaged over frames. A frame with neither a label nor
  a prediction is ``0 / 0``; it scores ``jaccard_zero_division`` (default 0, what
  scikit-learn returns by default, with a warning). Table 2 agrees with 0 and not with 1:
  with 1, every exactly-predicted frame scores 1, so JS >= 1 - ZL; table 2 has
  JS = 0.260 < 1 - ZL = 0.327 for I3D (0.315 < 0.354 for CF, 0.297 < 0.358 for TGM), and
  about 20 % of the MultiTHUMOS test frames carry no label. The "samples" average is our
  reading of table 2's JS.
* **LRAP**, label ranking average precision (higher is better):
  ``label_ranking_average_precision_score``, per frame the mean over its positive classes
  of the fraction of classes ranked at or above it that are positive; a frame with no
  positive class (or all positive) scores 1 (scikit-learn's convention).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from sklearn.metrics import (
    coverage_error,
    hamming_loss,
    jaccard_score,
    label_ranking_average_precision_score,
    label_ranking_loss,
    zero_one_loss,
)

from ._inputs import check_threshold, frames_from_videos

LOWER_IS_BETTER = ("HL", "ZL", "RL", "CE")
HIGHER_IS_BETTER = ("JS", "LRAP")


@dataclass(frozen=True)
class StandardMetrics:
    """Table 2's "existing metrics" (floats). HL, ZL, RL, CE: lower is better; JS, LRAP: higher."""

    HL: float
    ZL: float
    RL: float
    CE: float
    JS: float
    LRAP: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def standard_metrics(
    scores: Sequence,
    labels: Sequence,
    threshold: float = 0.5,
    *,
    jaccard_zero_division: float = 0.0,
    video_ids: Sequence[str] | None = None,
) -> StandardMetrics:
    """Hamming, zero-one and ranking loss, coverage error, Jaccard score and LRAP (table 2).

    ``scores``/``labels``: one ``(T_k, C)`` array or tensor per video; predictions are
    ``score >= threshold``. See the module docstring for each metric's convention.
    Computed by scikit-learn on the CPU.
    """
    threshold = check_threshold(threshold)
    if jaccard_zero_division not in (0, 1, 0.0, 1.0):
        raise ValueError(f"jaccard_zero_division must be 0 or 1, got {jaccard_zero_division!r}")
    frames = frames_from_videos(scores, labels, video_ids, device="cpu")
    S = frames.scores.numpy()  # (N, C)
    Y = frames.labels.numpy().astype(np.int8)
    pred = (S >= threshold).astype(np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # 0/0 rows, handled by zero_division
        js = jaccard_score(Y, pred, average="samples", zero_division=float(jaccard_zero_division))
    return StandardMetrics(
        HL=float(hamming_loss(Y, pred)),
        ZL=float(zero_one_loss(Y, pred)),
        RL=float(label_ranking_loss(Y, S)),
        CE=float(coverage_error(Y, S)),
        JS=float(js),
        LRAP=float(label_ranking_average_precision_score(Y, S)),
    )
