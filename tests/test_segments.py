"""frame_segments on hand-made scores whose segments are known."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from mladlib.segments import Segment, frame_segments, write_segments


def _scores(*columns: str) -> np.ndarray:
    """(T, C) scores from strings of digits: '9' is 0.9, '0' is 0.0."""
    return np.array([[int(ch) / 10 for ch in col] for col in columns]).T


def test_runs_become_segments_in_seconds():
    scores = _scores("0099900077", "5500000000")  # rate 2: a step is 0.5 s
    found = frame_segments(scores, rate=2.0, threshold=0.5, names=["jump", "run"])
    assert found == [
        Segment(1, 0.0, 1.0, 0.5, "run"),
        Segment(0, 1.0, 2.5, pytest.approx(0.9), "jump"),
        Segment(0, 4.0, 5.0, pytest.approx(0.7), "jump"),
    ]


def test_small_gaps_merge_and_the_gap_counts_in_the_score():
    scores = _scores("9909900009")
    assert [(s.start, s.end) for s in frame_segments(scores, 1.0)] == [
        (0, 2), (3, 5), (9, 10)]
    merged = frame_segments(scores, 1.0, merge_gap=1.0)
    assert [(s.start, s.end) for s in merged] == [(0, 5), (9, 10)]
    assert merged[0].score == pytest.approx(0.9 * 4 / 5)
    # a gap of four steps is longer than 1 s: not merged
    assert len(frame_segments(scores, 1.0, merge_gap=3.9)) == 2


def test_minimum_length_and_top_k():
    scores = _scores("9900600000888", "0000000000000")
    found = frame_segments(scores, 1.0, min_length=2.0)
    assert [(s.start, s.end) for s in found] == [(0, 2), (10, 13)]
    best = frame_segments(scores, 1.0, top_k=1)
    assert [(s.start, s.end, round(s.score, 3)) for s in best] == [(0, 2, 0.9)]
    assert frame_segments(scores, 1.0, threshold=0.95) == []


def test_a_segment_to_the_last_step_and_threshold_edges():
    scores = _scores("0005")
    assert frame_segments(scores, 4.0) == [Segment(0, 0.75, 1.0, 0.5)]
    assert frame_segments(scores, 4.0, threshold=0.51) == []
    assert len(frame_segments(scores, 4.0, threshold=0.0)) == 1  # every step reaches 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(rate=0.0), "rate"), (dict(rate=float("nan")), "rate"),
    (dict(rate=1.0, threshold=1.5), "threshold"), (dict(rate=1.0, top_k=0), "top_k"),
    (dict(rate=1.0, top_k=1.5), "top_k"), (dict(rate=1.0, min_length=-1), "min_length"),
    (dict(rate=1.0, names=["a", "b"]), "2 class names for 1 classes"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        frame_segments(_scores("09"), **kwargs)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        frame_segments(np.array([[np.nan]]), 1.0)
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        frame_segments(np.zeros(3), 1.0)


def test_write_segments(tmp_path):
    path = tmp_path / "segments.csv"
    write_segments(path, "v1", [Segment(2, 1.0, 2.5, 0.875, "jump")])
    rows = list(csv.reader(path.open()))
    assert rows == [["video", "class", "name", "start_s", "end_s", "score"],
                    ["v1", "2", "jump", "1.000", "2.500", "0.8750"]]
    assert [p.name for p in tmp_path.iterdir()] == ["segments.csv"]
