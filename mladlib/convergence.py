"""Reading the converged re-runs of the embedded-dataset comparisons against the fixed
budget, by the rules of ``benchmarks/CONVERGENCE_PROTOCOL.md`` (fixed before any run).

The records are the JSON files of ``bench_synth.py --converge`` (``results``: model ->
per-seed lists) and ``bench_ablations.py --converge`` (``runs``: run name -> per-seed
lists); scores are x100, one entry per seed, in the order of the file's ``seeds``. Each
converged run also has a ``stopping`` entry: how it ended (``plateau``: the rule;
``cap``: the epoch cap), its steps, the epoch it kept and its validation curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .intervals import Interval

HOLDS = "holds"
REVERSED = "reversed"
NOT_SEPARATED = "not separated"
SMALLER = "smaller at convergence"
#: more than this share of runs at the cap means the cap is too small (the protocol)
CAP_SHARE_LIMIT = 0.2


def seeds_verdict(above: Sequence[float], below: Sequence[float]) -> str:
    """The protocol's reading of "X above Y" over several seeds (paired by seed).

    ``holds``: X's mean is above Y's and X is above Y on more than half of the
    seeds (2 of 3); ``reversed``: the same with X and Y exchanged; otherwise
    ``not separated``.
    """
    x, y = np.asarray(above, dtype=float), np.asarray(below, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(
            f"need two paired per-seed lists of 2 or more, got {x.shape}, {y.shape}")
    d = x - y
    if d.mean() > 0 and 2 * int((d > 0).sum()) > len(d):
        return HOLDS
    if d.mean() < 0 and 2 * int((d < 0).sum()) > len(d):
        return REVERSED
    return NOT_SEPARATED


def one_seed_verdict(fixed_difference: float, converged_difference: float) -> str:
    """The protocol's reading of an ablation checked on one seed: the converged
    difference (X - Y, points) against the fixed-budget one the book states.

    ``holds``: same sign and at least half the fixed size; ``reversed``: the sign flips;
    otherwise ``smaller at convergence``.
    """
    if fixed_difference == 0:
        raise ValueError("a fixed-budget difference of exactly 0 states no ordering")
    same_sign = np.sign(converged_difference) == np.sign(fixed_difference)
    if converged_difference != 0 and not same_sign:
        return REVERSED
    if same_sign and abs(converged_difference) >= abs(fixed_difference) / 2:
        return HOLDS
    return SMALLER


@dataclass(frozen=True)
class Paired:
    """Per-seed differences X - Y (points) with their mean and sample SD (ddof 1)."""

    differences: tuple[float, ...]

    @property
    def over_seeds(self) -> Interval:
        """The differences as a quantity over seeds (keyed by position), with its t
        interval."""
        return Interval(dict(enumerate(self.differences)))

    @property
    def mean(self) -> float:
        return self.over_seeds.mean

    @property
    def sd(self) -> float:
        return self.over_seeds.sd

    def __str__(self) -> str:
        values = ", ".join(f"{d:+.2f}" for d in self.differences)
        return f"{values}  (mean {self.mean:+.2f}, sample SD {self.sd:.2f})"


def paired(above: Sequence[float], below: Sequence[float]) -> Paired:
    """X - Y seed by seed."""
    if len(above) != len(below):
        raise ValueError(f"{len(above)} seeds against {len(below)}")
    return Paired(tuple(float(a) - float(b) for a, b in zip(above, below)))


@dataclass(frozen=True)
class StoppingSummary:
    """How a set of converged runs ended."""

    plateau: int
    cap: int
    last_epochs: tuple[int, ...]  # the epoch each run trained to
    best_epochs: tuple[int, ...]  # the epoch each run kept

    @property
    def runs(self) -> int:
        return self.plateau + self.cap

    @property
    def cap_too_often(self) -> bool:
        """More than 1 in 5 runs at the cap: the protocol then doubles the cap."""
        return self.cap > CAP_SHARE_LIMIT * self.runs


def stopping_summary(stops: Iterable[Mapping[str, Any]]) -> StoppingSummary:
    """Count the ``stopping`` entries of converged runs (each ``ended_by``,
    ``best_epoch`` and ``val_curve`` rows ``[epoch, step, f-mAP]``)."""
    stops = list(stops)
    unknown = {s["ended_by"] for s in stops} - {"plateau", "cap"}
    if unknown:
        raise ValueError(
            f"runs ended by {sorted(unknown)}: not a completed converged run")
    return StoppingSummary(
        plateau=sum(s["ended_by"] == "plateau" for s in stops),
        cap=sum(s["ended_by"] == "cap" for s in stops),
        last_epochs=tuple(int(s["val_curve"][-1][0]) for s in stops),
        best_epochs=tuple(int(s["best_epoch"]) for s in stops),
    )


def all_stops(runs: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every run's ``stopping`` entry of a record's ``results`` or ``runs`` mapping."""
    return [stop for run in runs.values() for stop in run.get("stopping", [])]
