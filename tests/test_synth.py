"""mladlib.synth: the embedded dataset is deterministic, written in the real layout, and its
planted dependencies are exactly what its labels show."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest

from mladlib import synth
from mladlib.data import VideoDataset

NAMES = synth.CLASS_NAMES
IDX = {name: i for i, name in enumerate(NAMES)}
FOREGROUND = [i for i, name in enumerate(NAMES) if name not in synth.BACKGROUND_ACTIONS]


@pytest.fixture(scope="module")
def many_videos() -> dict[str, dict]:
    """Enough short, low-dimensional videos for every planted pair to show up."""
    return synth.generate(synth.SynthConfig(num_train=80, num_test=0, feature_dim=8, seed=3))


def test_generation_is_deterministic_per_seed():
    cfg = synth.sized_config("tiny")
    first, again, other = synth.generate(cfg), synth.generate(cfg), synth.generate(dataclasses.replace(cfg, seed=1))
    assert list(first) == list(again)
    for vid in first:
        assert np.array_equal(first[vid]["features"], again[vid]["features"])
        assert np.array_equal(first[vid]["labels"], again[vid]["labels"])
        assert first[vid]["segments"] == again[vid]["segments"]
    assert any(first[v]["features"].shape != other[v]["features"].shape
               or not np.array_equal(first[v]["features"], other[v]["features"]) for v in first)


def test_sizes_and_fingerprints():
    default, mt = synth.sized_config("default"), synth.sized_config("multithumos")
    assert (mt.num_train, mt.num_test, mt.feature_dim) == (200, 213, 2048)
    assert (default.num_train, default.num_test) == (320, 80)
    prints = {synth.fingerprint(synth.sized_config(size, seed)) for size in synth.SIZES for seed in (0, 1)}
    assert len(prints) == 2 * len(synth.SIZES)  # size and seed both name the data
    assert synth.fingerprint(default) == synth.fingerprint(synth.sized_config("default"))
    with pytest.raises(ValueError, match="'huge'"):
        synth.sized_config("huge")
    with pytest.raises(ValueError, match="'huge'"):
        synth.synthetic_spec("huge")


def test_fingerprint_changes_with_the_vocabulary_and_its_order(monkeypatch):
    cfg = synth.sized_config("tiny")
    before = synth.fingerprint(cfg)
    monkeypatch.setattr(synth, "ACTIONS", dict(synth.ACTIONS, Run=dataclasses.replace(synth.ACTIONS["Run"], visibility=0.5)))
    assert synth.fingerprint(cfg) != before
    monkeypatch.undo()
    # same actions and scenes in another order: other class ids, other scenes per video
    monkeypatch.setattr(synth, "CLASS_NAMES", tuple(reversed(synth.CLASS_NAMES)))
    assert synth.fingerprint(cfg) != before
    monkeypatch.undo()
    monkeypatch.setattr(synth, "SCENES", dict(reversed(synth.SCENES.items())))
    assert synth.fingerprint(cfg) != before


@pytest.mark.parametrize("strict", [False, True])
def test_layout_gives_back_every_label_and_feature(tmp_path, strict):
    cfg = synth.sized_config("tiny")
    videos = synth.generate(cfg)
    root = synth.write_layout(videos, tmp_path / "data", cfg)
    spec = synth.synthetic_spec("tiny")
    for split, subset in (("train", "training"), ("test", "testing")):
        data = VideoDataset.from_folder(root, split, spec, strict=strict)
        assert data.video_ids == [v for v, video in videos.items() if video["subset"] == subset]
        for k, vid in enumerate(data.video_ids):
            assert np.array_equal(data.labels(k), videos[vid]["labels"]), vid
            assert np.array_equal(data.features(k), videos[vid]["features"]), vid
    assert (root / "classes.txt").read_text().split() == list(NAMES)
    assert synth.read_dependencies(root) == synth.planted_dependencies()
    assert json.loads((root / "config.json").read_text())["seed"] == cfg.seed
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary folder left


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    cfg = synth.sized_config("tiny")
    videos = synth.generate(cfg)
    calls = []

    def failing(self, name, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, name, **kwargs)

    original = h5py.Group.create_dataset
    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="disk full"):
        synth.write_layout(videos, tmp_path / "data", cfg)
    assert list(tmp_path.iterdir()) == []


def test_dataset_root_generates_once_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path))
    root = synth.dataset_root("tiny", seed=2)
    assert root.parent == tmp_path and synth.fingerprint(synth.sized_config("tiny", 2)) in root.name
    stamp = (root / "features.h5").stat().st_mtime_ns
    assert synth.dataset_root("tiny", seed=2) == root
    assert (root / "features.h5").stat().st_mtime_ns == stamp
    assert len(synth.load_split("test", "tiny", seed=2)) == synth.SIZES["tiny"].num_test
    (root / "dependencies.json").write_text('{"follows": "written by an older mladlib"}')
    assert synth.dataset_root("tiny", seed=2) == root
    assert synth.read_dependencies(root) == synth.planted_dependencies()  # refreshed, data untouched
    assert (root / "features.h5").stat().st_mtime_ns == stamp


def _observed_graphs(videos: dict[str, dict]) -> tuple[np.ndarray, np.ndarray]:
    """(C, C) 0/1: classes active on one step; class i starting right after j was active."""
    C = len(NAMES)
    together, after = np.zeros((C, C), bool), np.zeros((C, C), bool)
    for video in videos.values():
        y = video["labels"].astype(np.int64)  # (T, C)
        starts = (y[1:] == 1) & (y[:-1] == 0)  # (T - 1, C): i starts at t + 1
        together |= y.T @ y > 0
        after |= starts.T.astype(np.int64) @ y[:-1] > 0
    np.fill_diagonal(together, False)
    np.fill_diagonal(after, False)
    return together, after


def test_planted_graphs_are_what_the_labels_show(many_videos):
    planted = synth.planted_dependencies()
    together, after = _observed_graphs(many_videos)
    fg = np.ix_(FOREGROUND, FOREGROUND)  # background actors overlap anything, by design
    assert np.array_equal(together[fg], np.array(planted["cooccurrence"], bool)[fg])
    assert np.array_equal(after[fg], np.array(planted["follows"], bool)[fg])
    # the optional dribble before a shot is sometimes skipped: the shot then follows the pass
    assert planted["follows"][IDX["BasketballShot"]][IDX["BasketballPass"]] == 1
    background = [IDX[name] for name in synth.BACKGROUND_ACTIONS]
    assert not np.array(planted["cooccurrence"])[background].any()


@pytest.mark.parametrize("action, partner, other_partner", [
    ("BasketballPass", "Run", "Jump"), ("BasketballShot", "Jump", "Run"),
    ("BasketballGuard", "BasketballDribble", "Jump"), ("BasketballBlock", "Jump", "BasketballDribble"),
    ("VolleyballBump", "Squat", "Stand"), ("VolleyballSet", "Stand", "Squat"),
])
def test_look_alikes_are_told_apart_by_what_co_occurs(many_videos, action, partner, other_partner):
    assert synth.ACTIONS[action].prototype in {
        synth.ACTIONS[n].prototype for n in NAMES if n != action}  # it has a look-alike
    steps = np.concatenate([v["labels"][v["labels"][:, IDX[action]] == 1] for v in many_videos.values()])
    assert len(steps) > 0
    assert steps[:, IDX[partner]].all() and not steps[:, IDX[other_partner]].any()


@pytest.mark.parametrize("activity, parts", [
    ("HighJump", ("Run", "Jump", "Fall")), ("LongJump", ("Run", "Jump", "Fall")), ("PoleVault", ("Run", "Jump", "Fall")),
    ("ThrowDiscus", ("DiscusWindUp", "DiscusRelease")),
    ("CleanAndJerk", ("Squat", "Stand")),
])
def test_whole_activities_are_present_exactly_while_their_parts_are(many_videos, activity, parts):
    assert synth.ACTIONS[activity].visibility == 0  # no look of its own
    shown = 0
    for video in many_videos.values():
        y = video["labels"]
        if y[:, IDX[activity]].any():
            assert np.array_equal(y[:, IDX[activity]], y[:, [IDX[p] for p in parts]].max(axis=1))
            shown += 1
    assert shown > 0


def test_the_nearly_invisible_serve_comes_right_after_the_toss(many_videos):
    assert synth.planted_dependencies()["low_visibility"] == ["VolleyballServe"]
    assert 0 < synth.ACTIONS["VolleyballServe"].visibility < 0.5
    serves = 0
    for video in many_videos.values():
        y = video["labels"]
        for cls, first, last in video["segments"]:
            if NAMES[cls] == "VolleyballServe":
                assert y[first - 1, IDX["Throw"]] == 1 and y[first, IDX["Throw"]] == 0
                serves += 1
    assert serves > 0


def test_look_alikes_have_identical_features_without_noise():
    # With noise, drift, context and amplitude jitter off, a step showing only a fall is the
    # very vector of a step showing only a sit: nothing but their history tells them apart.
    cfg = synth.SynthConfig(num_train=40, num_test=0, feature_dim=16, amplitude_jitter=0.0, context_strength=0.0,
                            noise_std=0.0, drift_std=0.0, seed=5)
    alone = {"Fall": [], "Sit": []}
    for video in synth.generate(cfg).values():
        y = video["labels"]
        for name in alone:
            only = (y[:, IDX[name]] == 1) & (y.sum(axis=1) == 1)
            alone[name].extend(video["features"][only])
    fall, sit = np.array(alone["Fall"]), np.array(alone["Sit"])
    assert len(fall) and len(sit)
    assert np.allclose(fall, fall[0], atol=1e-5) and np.allclose(sit, fall[0], atol=1e-5)
    assert np.isclose(np.linalg.norm(fall[0]), cfg.amplitude * synth.ACTIONS["Fall"].visibility, rtol=1e-5)


def test_background_actors_ignore_the_foreground():
    videos = synth.generate(synth.SynthConfig(num_train=200, num_test=0, feature_dim=4, seed=7))
    busy, idle = [], []
    for video in videos.values():
        y = video["labels"]
        foreground = y[:, FOREGROUND].any(axis=1)
        walk = y[:, IDX["Walk"]]
        busy.append(walk[foreground])
        idle.append(walk[~foreground])
    rate_busy, rate_idle = np.concatenate(busy).mean(), np.concatenate(idle).mean()
    assert rate_busy > 0.05 and abs(rate_busy - rate_idle) < 0.25 * rate_idle
