"""The protocol's readings of the converged re-runs (CONVERGENCE_PROTOCOL.md),
on hand-made numbers."""

import math

import pytest

from mladlib.convergence import (
    HOLDS,
    NOT_SEPARATED,
    REVERSED,
    SMALLER,
    all_stops,
    one_seed_verdict,
    paired,
    seeds_verdict,
    stopping_summary,
)


def test_seeds_verdict_needs_the_mean_and_two_of_three_seeds():
    assert seeds_verdict([3, 3, 3], [1, 1, 1]) == HOLDS
    assert seeds_verdict([3, 3, 0], [1, 1, 1]) == HOLDS  # mean +1.33, 2 of 3
    assert seeds_verdict([1, 1, 1], [3, 3, 0]) == REVERSED
    # above on 2 of 3 seeds, but the third drags the mean below: not separated
    assert seeds_verdict([2, 2, -10], [1, 1, 1]) == NOT_SEPARATED
    # mean above, but on only 1 of 3 seeds
    assert seeds_verdict([10, 0, 0], [1, 1, 1]) == NOT_SEPARATED
    assert seeds_verdict([1, 1, 1], [1, 1, 1]) == NOT_SEPARATED
    with pytest.raises(ValueError):
        seeds_verdict([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        seeds_verdict([1], [0])


def test_one_seed_verdict_keeps_half_the_fixed_size():
    assert one_seed_verdict(4.0, 2.0) == HOLDS  # exactly half holds
    assert one_seed_verdict(4.0, 1.9) == SMALLER
    assert one_seed_verdict(4.0, 0.0) == SMALLER
    assert one_seed_verdict(4.0, -0.1) == REVERSED
    assert one_seed_verdict(-1.0, -3.0) == HOLDS
    assert one_seed_verdict(-1.0, 0.2) == REVERSED
    with pytest.raises(ValueError):
        one_seed_verdict(0.0, 1.0)


def test_paired_differences_use_the_sample_sd():
    p = paired([3.0, 5.0, 10.0], [1.0, 1.0, 1.0])
    assert p.differences == (2.0, 4.0, 9.0)
    assert p.mean == pytest.approx(5.0)
    assert p.sd == pytest.approx(math.sqrt(((-3) ** 2 + 1 + 16) / 2))
    assert "+2.00, +4.00, +9.00" in str(p)
    # its t interval is the semi-real readings' (one Interval class): 4.303 = t(0.975, 2)
    half = 4.302652729911275 * p.sd / math.sqrt(3)
    assert p.over_seeds.bounds == pytest.approx((5.0 - half, 5.0 + half))
    assert math.isnan(paired([1.0], [0.0]).sd)
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0])


def _stop(ended_by, last, best):
    return {"ended_by": ended_by, "best_epoch": best, "steps": 10 * last,
            "val_curve": [[e, 10 * e, 50.0] for e in range(1, last + 1)]}


def test_stopping_summary_counts_and_reads_the_cap_rule():
    runs = {"cf": {"stopping": [_stop("plateau", 20, 12), _stop("plateau", 30, 22)]},
            "mlad": {"stopping": [_stop("cap", 150, 149), _stop("plateau", 40, 32),
                                  _stop("plateau", 25, 17)]}}
    s = stopping_summary(all_stops(runs))
    assert (s.plateau, s.cap, s.runs) == (4, 1, 5)
    assert s.last_epochs == (20, 30, 150, 40, 25)
    assert s.best_epochs == (12, 22, 149, 32, 17)
    assert not s.cap_too_often  # 1 in 5 is the limit, not over it
    runs["cb"] = {"stopping": [_stop("cap", 150, 150)]}
    assert stopping_summary(all_stops(runs)).cap_too_often  # 2 in 6
    with pytest.raises(ValueError, match="SIGTERM"):
        stopping_summary([_stop("SIGTERM", 3, 3)])
