"""What a training run returns: :class:`RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..models import MODEL_LABELS
from .config import TrainConfig
from .evaluate import format_results


@dataclass
class RunResult:
    """What :func:`~mladlib.train.train` returns.

    ``model``: the best validation epoch's weights (the last epoch's without a
    validation split), in eval mode. ``history``: one dict per epoch.
    ``test_metrics``: the test split's :class:`~mladlib.train.Evaluation` as the record
    ``results.json`` stores it (:meth:`~mladlib.train.Evaluation.to_dict`; None when
    the run stopped early). ``stopped``: None when the run completed, else ``"SIGINT"``, ``"SIGTERM"``
    or ``"stop_after_steps"``. ``ended_by``: for a completed run, ``"plateau"`` when
    ``config.patience`` validations in a row brought no new best, else ``"cap"`` (all
    ``config.epochs`` trained).
    """

    config: TrainConfig
    model: nn.Module
    history: list[dict]
    test_metrics: dict | None
    best_epoch: int | None
    best_val_frame_map: float | None
    steps: int
    stopped: str | None = None
    run_dir: Path | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    ended_by: str | None = None

    @property
    def completed(self) -> bool:
        return self.stopped is None

    def table(self) -> str:
        """The test results as plain aligned text (see
        :func:`mladlib.train.format_results`)."""
        if self.test_metrics is None:
            return (f"run stopped ({self.stopped}) after {self.steps} steps: "
                    "no test results")
        label = MODEL_LABELS.get(self.config.model, self.config.model)
        title = f"{label} on {self.config.dataset}, test split"
        if self.best_epoch is not None:
            title += f" (best epoch {self.best_epoch}"
            best = self.best_val_frame_map
            title += f", val f-mAP {100 * best:.2f})" if best is not None else ")"
        return format_results(self.test_metrics, title)
