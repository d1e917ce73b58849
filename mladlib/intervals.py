"""A quantity over seeds and its Student t interval: the semi-real readings
(:mod:`mladlib.semireal_analysis`) and the converged re-runs' paired differences
(:mod:`mladlib.convergence`) both rest on it.

Intervals are two-sided Student t intervals of the mean over seeds, with the sample
standard deviation (ddof 1) and ``n - 1`` degrees of freedom: ``mean +- t(0.975, n - 1)
* sd / sqrt(n)`` at 95 per cent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: what a printed interval is, said once wherever intervals are printed
INTERVAL_KIND = "95% Student t interval of the mean over seeds (sample SD, ddof 1)"


@dataclass(frozen=True)
class Interval:
    """A quantity over seeds: the per-seed values and their t interval (``None`` ends
    when fewer than two seeds are present)."""

    values: dict[int, float]
    level: float = 0.95

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values()))) if self.values else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation over seeds (ddof 1); NaN under two seeds."""
        if self.n < 2:
            return math.nan
        return float(np.std(list(self.values.values()), ddof=1))

    @property
    def ready(self) -> bool:
        return self.n >= 2

    @property
    def bounds(self) -> tuple[float, float] | None:
        if not self.ready:
            return None
        t = stats.t.ppf(0.5 + self.level / 2, self.n - 1)
        half = t * self.sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    def above(self, x: float = 0.0) -> bool:
        """The whole interval lies above ``x`` (False when not ready)."""
        return self.ready and self.bounds[0] > x

    def below(self, x: float = 0.0) -> bool:
        return self.ready and self.bounds[1] < x

    def contains(self, x: float = 0.0) -> bool:
        return self.ready and self.bounds[0] <= x <= self.bounds[1]

    def format(self, signed: bool = True, digits: int = 1) -> str:
        """``+4.1 [+2.0, +6.2] (n=3)``, or ``+4.1 (n=1), interval not yet``; without
        signs for levels (``signed=False``); ``digits`` after the point."""
        f = f"+.{digits}f" if signed else f".{digits}f"
        if not self.n:
            return "not yet (no seed)"
        if not self.ready:
            return f"{self.mean:{f}} (n=1), interval not yet"
        low, high = self.bounds
        return f"{self.mean:{f}} [{low:{f}}, {high:{f}}] (n={self.n})"
