"""Dataset statistics against slow, obvious references on a hand-made annotation file,
and the paper's figures on the real MultiTHUMOS files (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mladlib.data import DatasetSpec, MULTITHUMOS, fetch_annotations
from mladlib.data import stats
from mladlib.metrics import condition_mask, frames_from_videos

SPEC = DatasetSpec("hand", num_classes=4, class_id_base=1, default_window=8)
VIDEOS = {  # class ids 1-based; durations give 3 features per second
    "a": {"subset": "training", "duration": 4.0,
          "actions": [[1, 0.0, 2.0], [2, 1.0, 1.5], [1, 3.0, 3.5], [3, 2.4, 2.9]]},
    "b": {"subset": "testing", "duration": 3.0, "actions": [[4, 0.5, 1.0], [1, 0.2, 0.9]]},
    "c": {"subset": "testing", "duration": 2.0, "actions": []},
    "d": {"subset": "training", "duration": 5.0,
          "actions": [[2, 0.0, 1.0], [3, 1.2, 2.0], [2, 3.0, 4.0], [2, 3.5, 6.0], [3, 2.0, 1.0]]},
}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "annotations.json").write_text(json.dumps(VIDEOS))
    (tmp_path / "train_list.txt").write_text("a\nd\n")
    (tmp_path / "test_list.txt").write_text("b\nc\n")
    (tmp_path / "classes.txt").write_text("Run\nJump\nFall\nSit\n")
    return tmp_path


def reference_labels(entry: dict, fps: float = 3.0) -> np.ndarray:
    """Frame by frame, segment by segment: frame f at f * duration / n, inclusive bounds."""
    n = max(1, round(entry["duration"] * fps))
    y = np.zeros((n, SPEC.num_classes), dtype=np.uint8)
    for f in range(n):
        time = f / (n / entry["duration"])
        for c, s, e in entry["actions"]:
            if s <= time <= e:
                y[f, c - 1] = 1
    return y


def reference_follows(ys, tau):
    C = SPEC.num_classes
    hits, support = np.zeros((C, C)), np.zeros(C)
    for y in ys:
        for t in range(len(y)):
            for j in range(C):
                if y[t, j] == 0 and any(y[s, j] for s in range(max(0, t - tau), t)):
                    support[j] += 1
                    for i in range(C):
                        hits[i, j] += y[t, i]
    return hits, support


def test_statistics_match_a_slow_reference(folder):
    data = stats.read_annotation_folder(folder, SPEC)
    assert data.spec.class_names == ("Run", "Jump", "Fall", "Sit")
    assert data.dropped_segments == 1  # video d's reversed segment
    assert data.splits == {"train": ["a", "d"], "test": ["b", "c"]}
    labels = data.labels()
    kept = {v: {**e, "actions": [a for a in e["actions"] if a[2] >= a[1]]}
            for v, e in VIDEOS.items()}
    ref = [reference_labels(kept[v]) for v in VIDEOS]
    for y, r in zip(labels, ref):
        np.testing.assert_array_equal(y, r)

    s = stats.split_statistics(data.records(), labels)
    per_frame = np.concatenate([r.sum(1) for r in ref])
    assert s.videos == 4 and s.segments == 10 and s.segments_per_video == 2.5
    # distinct classes per video: a {1,2,3}, b {1,4}, c {}, d {2,3}
    assert s.classes_per_video == (3 + 2 + 0 + 2) / 4 and s.max_classes_per_video == 3
    assert s.classes_present == 4
    assert s.frames == 12 + 9 + 6 + 15
    assert s.labels_per_frame == pytest.approx(per_frame.mean())
    assert s.labels_per_labelled_frame == pytest.approx(per_frame[per_frame > 0].mean())
    assert s.max_labels_per_frame == per_frame.max() == 2
    assert s.unlabelled_frame_share == pytest.approx((per_frame == 0).mean())

    both = sum(r.T.astype(int) @ r.astype(int) for r in ref)
    np.testing.assert_array_equal(stats.pair_counts(labels), both)
    pairs = {(i, j) for r in ref for t in range(len(r)) for i in range(4) for j in range(4)
             if i != j and r[t, i] and r[t, j]}
    assert stats.cooccurring_pairs(labels) == len(pairs) == 4  # Run-Jump, Run-Sit, both ways
    co = stats.cooccurrence(labels)
    for i, j in np.ndindex(4, 4):
        if i == j or both[j, j] == 0:
            assert np.isnan(co[i, j])
        else:
            assert co[i, j] == pytest.approx(both[i, j] / both[j, j])

    for tau in (1, 3, 20):
        matrix, support = stats.follows(labels, tau)
        hits, ref_support = reference_follows(ref, tau)
        np.testing.assert_array_equal(support, ref_support)
        for i, j in np.ndindex(4, 4):
            if i == j or ref_support[j] == 0:
                assert np.isnan(matrix[i, j])
            else:
                assert matrix[i, j] == pytest.approx(hits[i, j] / ref_support[j])
    rate = stats.base_rate(labels)
    np.testing.assert_allclose(rate, np.concatenate(ref).mean(0))
    lifted = stats.lift(matrix, rate)
    assert lifted[0, 1] == pytest.approx(matrix[0, 1] / rate[0])


def test_follows_condition_is_the_metrics_condition(folder):
    labels = stats.read_annotation_folder(folder, SPEC).labels()
    frames = frames_from_videos([y.astype(np.float32) for y in labels], labels)
    chi = np.concatenate([stats.follows_condition(y, 4) for y in labels])
    assert np.array_equal(chi, condition_mask(frames, 4).cpu().numpy())
    with pytest.raises(ValueError, match="tau"):
        stats.follows_condition(labels[0], 0)


def test_bad_folders_are_named(folder):
    (folder / "test_list.txt").write_text("b\nzz\n")
    with pytest.raises(ValueError, match=r"test_list\.txt lists videos .* lacks: \['zz'\]"):
        stats.read_annotation_folder(folder, SPEC)
    with pytest.raises(KeyError, match="zz"):
        stats.label_videos({}, SPEC, ["zz"])
    with pytest.raises(ValueError, match="no videos"):
        stats.pair_counts([])


SHARED = Path("/work/shared/data")
if not SHARED.is_dir():
    SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not SHARED.is_dir(), reason="the real annotation files (../shared/data) "
                    "are absent: a fresh clone has no copy")
def test_real_multithumos_figures(tmp_path, monkeypatch):
    """The paper's section 5.1 figures, computed: 413 videos (200/213), 65 classes, 10.5
    classes per video (not segments: 93.7), up to 25 per video, 1.5 labels per frame."""
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path))
    data = stats.read_annotation_folder(fetch_annotations("multithumos", root=SHARED), MULTITHUMOS)
    assert (len(data.splits["train"]), len(data.splits["test"])) == (200, 213)
    s = stats.split_statistics(data.records(), data.labels())
    assert (s.videos, s.classes_present, s.max_classes_per_video) == (413, 65, 25)
    assert round(s.classes_per_video, 1) == 10.5 and s.segments_per_video > 90
    assert round(s.labels_per_frame, 1) == 1.5
    pairs = stats.cooccurring_pairs(data.labels("test"))
    assert abs(pairs - 1322) <= 20  # the paper's 1,322, with the real feature counts
