"""mladlib.data: specs, annotations, frame labels, feature stores, windows, inference."""

from __future__ import annotations

import json
import math
import os
import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from mladlib import data, train
from mladlib.data import (
    CHARADES,
    MULTITHUMOS,
    ConcatFeatureStore,
    DatasetSpec,
    HDF5FeatureStore,
    NpyFolderStore,
    VideoDataset,
    VideoRecord,
    WindowSampler,
    frame_labels,
    open_feature_store,
    read_annotations,
)
from mladlib.models import LinearBaseline, ModelOutput, build_model
from mladlib.utils import seed_everything

SHARED = Path(os.environ.get("MLADLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TINY = DatasetSpec("tiny", num_classes=4, class_id_base=1, default_window=8, feature_dim=6)


@pytest.fixture(autouse=True)
def _seed():
    # one thread: the models here are tiny, and on a busy 2-core machine two OpenMP threads
    # make each small op wait milliseconds at a barrier
    threads = torch.get_num_threads()
    seed_everything(0, num_threads=1)
    yield
    torch.set_num_threads(threads)


def write_json(path: Path, content) -> Path:
    path.write_text(json.dumps(content))
    return path


def record(actions, duration=10.0, video_id="v") -> VideoRecord:
    return VideoRecord(video_id, "training", duration, np.array(actions, dtype=float).reshape(-1, 3))


def reference_labels(rec: VideoRecord, n: int, num_classes: int, strict: bool) -> np.ndarray:
    """The public code's double loop over segments and frames."""
    labels = np.zeros((n, num_classes), np.uint8)
    fps = n / rec.duration
    for c, start, end in rec.actions:
        for fr in range(n):
            t = fr / fps
            if (start < t < end) if strict else (start <= t <= end):
                labels[fr, int(c)] = 1
    return labels


# ---------------------------------------------------------------- specs and class names


def test_presets_are_the_papers_datasets_without_shipped_names():
    assert (MULTITHUMOS.num_classes, MULTITHUMOS.class_id_base, MULTITHUMOS.default_window) == (65, 1, 128)
    assert (CHARADES.num_classes, CHARADES.class_id_base, CHARADES.default_window) == (157, 0, 64)
    assert MULTITHUMOS.class_names is None and CHARADES.class_names is None
    assert MULTITHUMOS.feature_dim == CHARADES.feature_dim == 2048
    assert CHARADES.class_ids == range(0, 157) and MULTITHUMOS.class_ids == range(1, 66)
    with pytest.raises(ValueError, match="class_id_base"):
        DatasetSpec("x", 3, 2, 8)


def test_class_names_in_both_formats(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("Run\nJump\n\nSit\nStand\n")
    assert data.read_class_names(plain, TINY) == ("Run", "Jump", "Sit", "Stand")
    coded = tmp_path / "coded.txt"
    coded.write_text("c002 Sit down\nc000 Run fast\nc001 Jump\nc003 Stand up\n")
    spec0 = DatasetSpec("zero", 4, 0, 8)
    names = data.read_class_names(coded, spec0)
    assert names == ("Run fast", "Jump", "Sit down", "Stand up")
    assert spec0.with_class_names(names).class_names[2] == "Sit down"
    short = tmp_path / "short.txt"
    short.write_text("Run\nJump\n")
    with pytest.raises(ValueError, match="short.txt names 2 classes but tiny has 4"):
        data.read_class_names(short, TINY)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        data.read_class_names(tmp_path / "nope.txt", TINY)


# ---------------------------------------------------------------- frame labels by hand


def test_inclusive_and_strict_bounds():
    rec = record([[1, 2.0, 4.0]])  # 10 frames over 10 s: frame f at f seconds
    inclusive = frame_labels(rec, 10, TINY)
    assert inclusive.dtype == np.uint8 and inclusive.shape == (10, 4)
    assert np.flatnonzero(inclusive[:, 1]).tolist() == [2, 3, 4]
    assert np.flatnonzero(frame_labels(rec, 10, TINY, strict=True)[:, 1]).tolist() == [3]
    assert inclusive[:, [0, 2, 3]].sum() == 0


def test_feature_rate_comes_from_the_video():
    # 20 features over 10 s: 2 per second, frame f at f / 2 seconds
    rec = record([[0, 1.0, 2.0], [3, 0.0, 0.0]])
    labels = frame_labels(rec, 20, TINY)
    assert np.flatnonzero(labels[:, 0]).tolist() == [2, 3, 4]
    assert np.flatnonzero(labels[:, 3]).tolist() == [0]  # a zero-length segment on a frame
    assert frame_labels(rec, 20, TINY, strict=True)[:, 3].sum() == 0


def test_segment_past_the_end_is_clipped_and_empty_video_is_all_zero():
    labels = frame_labels(record([[2, 8.0, 15.0], [0, 12.0, 14.0]]), 10, TINY)
    assert labels.shape == (10, 4)
    assert np.flatnonzero(labels[:, 2]).tolist() == [8, 9]
    assert labels[:, 0].sum() == 0
    empty = frame_labels(record([]), 7, TINY)
    assert empty.shape == (7, 4) and empty.sum() == 0


def test_overlapping_segments_of_one_class_and_random_cases_match_the_public_loop():
    rng = np.random.default_rng(0)
    for _ in range(30):
        duration = float(rng.uniform(3, 60))
        n = int(rng.integers(1, 200))
        starts = rng.uniform(-2, duration + 2, 12).round(1)
        actions = np.stack([rng.integers(0, 4, 12), starts, starts + rng.uniform(0, 15, 12).round(1)], 1)
        rec = record(actions, duration)
        for strict in (False, True):
            np.testing.assert_array_equal(frame_labels(rec, n, TINY, strict), reference_labels(rec, n, 4, strict))


def test_frame_label_errors_name_the_video():
    with pytest.raises(ValueError, match="'v'.*class index 4"):
        frame_labels(record([[4, 0, 1]]), 5, TINY)
    with pytest.raises(ValueError, match="num_frames"):
        frame_labels(record([]), 0, TINY)
    with pytest.raises(ValueError, match="'w'.*duration"):
        record([], duration=0.0, video_id="w")


# ---------------------------------------------------------------- annotation files


def test_class_ids_are_shifted_by_the_base(tmp_path):
    thumos_like = write_json(tmp_path / "a.json", {"v": {"subset": "training", "duration": 4.0,
                                                          "actions": [[1, 0, 1], [65, 2, 3]]}})
    rec = read_annotations(thumos_like, MULTITHUMOS)["v"]
    assert rec.class_indices.tolist() == [0, 64]
    charades_like = write_json(tmp_path / "b.json", {"v": {"subset": "testing", "duration": 4.0,
                                                           "actions": [[0, 0, 1], [156, 2, 3]]}})
    rec = read_annotations(charades_like, CHARADES)["v"]
    assert rec.class_indices.tolist() == [0, 156]
    labels = frame_labels(rec, 4, CHARADES)  # class 0 in column 0, not in the last column
    assert labels[:2, 0].tolist() == [1, 1] and labels[2:, 156].tolist() == [1, 1]
    assert labels[:, 155].sum() == 0


def test_reversed_segments_are_dropped_with_one_warning(tmp_path):
    path = write_json(tmp_path / "rev.json", {
        "a": {"subset": "training", "duration": 5.0, "actions": [[1, 3.0, 1.0], [2, 0.0, 1.0]]},
        "b": {"subset": "testing", "duration": 5.0, "actions": [[1, 4.0, 2.0]]},
        "c": {"subset": "testing", "duration": 5.0, "actions": []},
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_annotations(path, TINY)
    assert len(caught) == 1 and "dropped 2 segment" in str(caught[0].message) and "rev.json" in str(caught[0].message)
    assert records["a"].actions.tolist() == [[1.0, 0.0, 1.0]]
    assert len(records["b"].actions) == 0 and len(records["c"].actions) == 0
    assert list(records) == ["a", "b", "c"] and records["b"].subset == "testing"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"duration": 5.0, "actions": [[0, 1, 2]]}, r"'bad'.*class id 0 is outside tiny's ids 1\.\.4"),
        ({"duration": 5.0, "actions": [[5, 1, 2]]}, r"'bad'.*class id 5"),
        ({"duration": 0.0, "actions": []}, r"'bad'.*duration"),
        ({"duration": -3, "actions": []}, r"'bad'.*duration"),
        ({"actions": []}, r"'bad'.*duration"),
        ({"duration": 5.0, "actions": [[1, 2]]}, r"'bad'.*malformed action"),
        ({"duration": 5.0, "actions": [[1.5, 0, 1]]}, r"'bad'.*class id 1.5"),
    ],
)
def test_bad_annotations_name_the_video(tmp_path, entry, message):
    path = write_json(tmp_path / "ann.json", {"good": {"duration": 5.0, "actions": []}, "bad": entry})
    with pytest.raises(ValueError, match=message):
        read_annotations(path, TINY)


def test_unreadable_annotation_file_names_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"v": {"duration": 3.0, "actions": [')
    with pytest.raises(ValueError, match="corrupt.json"):
        read_annotations(corrupt, TINY)
    with pytest.raises(ValueError, match="list.json"):
        read_annotations(write_json(tmp_path / "list.json", [1, 2]), TINY)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        read_annotations(tmp_path / "absent.json", TINY)


def test_split_lists_and_validation_split(tmp_path):
    split = tmp_path / "train_list.txt"
    split.write_text("a\nb\n\nc\n")
    assert data.read_split(split) == ["a", "b", "c"]
    split.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match="'a' twice"):
        data.read_split(split)
    ids = [f"v{i}" for i in range(20)]
    train, val = data.split_validation(ids, 0.2, seed=3)
    assert len(val) == 4 and sorted(train + val) == sorted(ids) and not set(train) & set(val)
    assert data.split_validation(ids, 0.2, seed=3) == (train, val)
    assert data.split_validation(ids, 0.2, seed=4) != (train, val)
    with pytest.raises(ValueError, match="fraction"):
        data.split_validation(ids, 1.0)


# ---------------------------------------------------------------- feature stores


def make_features(num_frames: dict[str, int], dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {v: rng.standard_normal((t, dim)).astype(np.float32) for v, t in num_frames.items()}


def write_h5(path: Path, features: dict[str, np.ndarray], four_d: bool = False) -> Path:
    with h5py.File(path, "w") as f:
        for v, x in features.items():
            f.create_dataset(v, data=x[:, None, None, :] if four_d else x)
    return path


def write_npy(folder: Path, features: dict[str, np.ndarray], four_d: bool = False) -> Path:
    folder.mkdir()
    for v, x in features.items():
        np.save(folder / f"{v}.npy", x[:, None, None, :] if four_d else x)
    return folder


LENGTHS = {"a": 30, "b": 5, "c": 17}


@pytest.mark.parametrize("layout", ["h5", "h5-4d", "npy", "npy-4d"])
def test_each_store_layout_round_trips(tmp_path, layout):
    features = make_features(LENGTHS, 6)
    four_d = layout.endswith("4d")
    source = write_h5(tmp_path / "f.h5", features, four_d) if layout.startswith("h5") else write_npy(tmp_path / "f", features, four_d)
    store = open_feature_store(source)
    assert isinstance(store, HDF5FeatureStore if layout.startswith("h5") else NpyFolderStore)
    assert sorted(store.video_ids()) == ["a", "b", "c"] and len(store) == 3
    assert store.feature_dim == 6 and store.num_frames("c") == 17 and "a" in store and "z" not in store
    for v, x in features.items():
        got = store[v]
        assert got.dtype == np.float32 and got.shape == x.shape
        np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(store.read("a", 4, 9), features["a"][4:9])
    with pytest.raises(ValueError, match=r"'b'.*\[3, 9\)"):
        store.read("b", 3, 9)
    with pytest.raises(KeyError, match=r"'zz' is not in the feature store .*f"):
        store["zz"]
    clone = pickle.loads(pickle.dumps(store))  # after a read: no open handle may travel
    np.testing.assert_array_equal(clone["c"], features["c"])


def test_rgb_and_flow_concatenate_and_off_by_one_lengths_are_cut(tmp_path):
    rgb = make_features(LENGTHS, 4, seed=1)
    flow = make_features({"a": 31, "b": 5, "c": 16, "d": 9}, 3, seed=2)  # the streams differ by a step
    store = open_feature_store([write_h5(tmp_path / "rgb.h5", rgb), write_npy(tmp_path / "flow", flow)])
    assert isinstance(store, ConcatFeatureStore)
    assert store.feature_dim == 7 and store.video_ids() == ["a", "b", "c"] and "d" not in store
    assert store.num_frames("a") == 30 and store.num_frames("c") == 16
    np.testing.assert_array_equal(store["c"], np.concatenate([rgb["c"][:16], flow["c"]], 1))
    np.testing.assert_array_equal(store.read("a", 10, 20), np.concatenate([rgb["a"][10:20], flow["a"][10:20]], 1))
    with pytest.raises(KeyError, match="'d'.*rgb.h5"):
        store["d"]
    far = ConcatFeatureStore(HDF5FeatureStore(tmp_path / "rgb.h5"), NpyFolderStore(tmp_path / "flow"), max_length_difference=0)
    with pytest.raises(ValueError, match=r"video 'a'.*\[30, 31\] steps"):
        far.num_frames("a")


def test_unreadable_feature_files_are_named(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match="junk.h5"):
        open_feature_store(junk)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        open_feature_store(tmp_path / "missing.h5")
    folder = tmp_path / "npy"
    folder.mkdir()
    (folder / "v.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="v.npy"):
        NpyFolderStore(folder)["v"]
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f.create_dataset("v", data=np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match=r"'v' in .*odd.h5.*\(4, 2, 3\)"):
        HDF5FeatureStore(tmp_path / "odd.h5").num_frames("v")


# ---------------------------------------------------------------- datasets


def make_root(tmp_path: Path, lengths: dict[str, int], dim: int = 6, subsets: dict[str, str] | None = None) -> Path:
    """A dataset folder in the standard layout, with TINY's 1-based ids."""
    root = tmp_path / "root"
    root.mkdir()
    rng = np.random.default_rng(1)
    annotations = {}
    for v, t in lengths.items():
        duration = t / 3.0
        actions = [[int(rng.integers(1, 5)), float(s), float(s + rng.uniform(0.5, 4))] for s in rng.uniform(0, duration, 3)]
        annotations[v] = {"subset": (subsets or {}).get(v, "training"), "duration": duration, "actions": actions}
    write_json(root / "annotations.json", annotations)
    write_h5(root / "features.h5", make_features(lengths, dim))
    (root / "classes.txt").write_text("A\nB\nC\nD\n")
    return root


def test_dataset_gives_features_and_labels_of_each_video(tmp_path):
    lengths = {"a": 40, "b": 5, "c": 23, "t": 12}
    root = make_root(tmp_path, lengths, subsets={"t": "testing"})
    (root / "train_list.txt").write_text("c\na\nb\n")
    train = VideoDataset.from_folder(root, "train", TINY)
    assert train.video_ids == ["c", "a", "b"] and train.frame_counts.tolist() == [23, 40, 5]
    assert train.spec.class_names == ("A", "B", "C", "D") and train.feature_dim == 6 and train.num_classes == 4
    test = VideoDataset.from_folder(root, "test", TINY)  # no test_list.txt: the subset field
    assert test.video_ids == ["t"]
    features = make_features(lengths, 6)
    annotations = read_annotations(root / "annotations.json", TINY)
    for i, v in enumerate(train.video_ids):
        x, y = train[i]
        np.testing.assert_array_equal(x, features[v])
        np.testing.assert_array_equal(y, frame_labels(annotations[v], lengths[v], TINY))
    assert train.labels(0).sum() > 0
    cached = VideoDataset(TINY, annotations, root / "features.h5", ["c", "a", "b"], in_memory=True)
    for i in range(3):
        np.testing.assert_array_equal(cached[i][0], train[i][0])
        np.testing.assert_array_equal(cached.features(i, 2, 4), train.features(i, 2, 4))
    strict = VideoDataset(TINY, annotations, root / "features.h5", ["a"], strict=True)
    assert strict.labels(0).sum() <= train.labels(1).sum()


def test_videos_missing_from_the_store_or_annotations_are_listed(tmp_path):
    root = make_root(tmp_path, {"a": 10, "b": 12})
    annotations = read_annotations(root / "annotations.json", TINY)
    with pytest.raises(ValueError, match=r"1 of 3 listed videos are missing from the feature store .*features.h5: 'x'"):
        VideoDataset(TINY, {**annotations, "x": annotations["a"]}, root / "features.h5", ["a", "x", "b"])
    with pytest.raises(ValueError, match=r"missing from the annotations: 'y'"):
        VideoDataset(TINY, annotations, root / "features.h5", ["a", "y"])
    with pytest.raises(ValueError, match="more than once"):
        VideoDataset(TINY, annotations, root / "features.h5", ["a", "a"])


# ---------------------------------------------------------------- training windows


def test_windows_have_one_length_per_batch_drawn_from_the_set():
    counts = [300, 40, 7, 128]
    sampler = WindowSampler(counts, batch_size=4, max_length=128, variable_length=True, seed=0)
    assert len(sampler) == math.ceil(math.ceil(sum(counts) / 128) / 4)
    seen = set()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for batch in sampler:
            assert len(batch) == 4
            lengths = {length for _, _, length in batch}
            assert len(lengths) == 1
            seen |= lengths
            for video, start, length in batch:
                assert 0 <= start and (start + length <= counts[video] or start == 0)
    assert seen == {16, 32, 48, 64, 80, 96, 112, 128}
    fixed = WindowSampler(counts, batch_size=2, max_length=64)
    assert {w[2] for b in fixed for w in b} == {64}


def test_windows_are_deterministic_per_seed_and_epoch_and_shard_disjointly():
    counts = np.arange(10, 400, 7)
    a = WindowSampler(counts, 3, 32, variable_length=True, seed=5)
    b = WindowSampler(counts, 3, 32, variable_length=True, seed=5)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(a) != list(WindowSampler(counts, 3, 32, variable_length=True, seed=6))
    shards = [WindowSampler(counts, 3, 32, seed=5, num_replicas=3, rank=r) for r in range(3)]
    total = len(shards[0]) * 3
    whole = WindowSampler(counts, 3, 32, seed=5, windows_per_epoch=total * 3).epoch_batches()
    assert len({len(s) for s in shards}) == 1 and len(whole) == total
    for r, shard in enumerate(shards):
        assert list(shard) == whole[r::3]  # rank r keeps every 3rd batch of the one shared draw
    with pytest.raises(ValueError, match="rank"):
        WindowSampler(counts, 3, 32, num_replicas=2, rank=2)


def test_longer_videos_are_drawn_more_often():
    sampler = WindowSampler([1000, 100], batch_size=10, max_length=10, seed=0, windows_per_epoch=5000)
    videos = np.array([w[0] for batch in sampler for w in batch])
    assert len(videos) == 5000 and 0.89 < (videos == 0).mean() < 0.93  # 10/11 = 0.909, sd 0.004


def test_window_batches_slice_the_videos_and_mask_padding(tmp_path):
    root = make_root(tmp_path, {"long": 50, "short": 6, "mid": 20})
    videos = VideoDataset.from_folder(root, "train", TINY)
    assert len(data.window_loader(videos, batch_size=4, max_length=16)) == math.ceil(math.ceil(76 / 16) / 4)
    loader = data.window_loader(videos, batch_size=4, max_length=16, seed=1, windows_per_epoch=40)
    assert len(loader) == 10
    found_short = False
    for batch in loader:
        assert batch.features.shape == (4, 16, 6) and batch.labels.shape == (4, 16, 4) and batch.mask.shape == (4, 16)
        assert batch.features.dtype == torch.float32 and batch.labels.dtype == torch.float32 and batch.mask.dtype == torch.bool
        for b in range(4):
            i, start = int(batch.video_indices[b]), int(batch.starts[b])
            n = int(batch.mask[b].sum())
            assert n == min(16, videos.num_frames(i))
            assert batch.mask[b, :n].all() and not batch.mask[b, n:].any()
            np.testing.assert_array_equal(batch.features[b, :n].numpy(), videos.features(i, start, start + n))
            np.testing.assert_array_equal(batch.labels[b, :n].numpy(), videos.labels(i)[start : start + n])
            assert not batch.features[b, n:].any() and not batch.labels[b, n:].any()
            found_short |= n < 16
    assert found_short


@pytest.mark.parametrize("layout", ["h5", "npy-concat"])
def test_dataloader_workers_read_the_same_windows(tmp_path, layout):
    lengths = {f"v{i}": 20 + 9 * i for i in range(8)}
    root = make_root(tmp_path, lengths)
    features = None
    if layout == "npy-concat":
        full = make_features(lengths, 6)
        features = [write_npy(tmp_path / "rgb", {v: x[:, :4] for v, x in full.items()}),
                    write_h5(tmp_path / "flow.h5", {v: x[:, 4:] for v, x in full.items()})]
    videos = VideoDataset.from_folder(root, "train", TINY, features=features)
    videos.features(0)  # the parent has read (and may hold a handle) before the workers fork
    serial = list(data.window_loader(videos, batch_size=3, max_length=16, variable_length=True, seed=2))
    parallel = list(data.window_loader(videos, batch_size=3, max_length=16, variable_length=True, seed=2, num_workers=2))
    assert len(serial) == len(parallel) > 0
    for s, p in zip(serial, parallel):
        for a, b in zip(s, p):
            assert torch.equal(a, b)


# ---------------------------------------------------------------- full-video inference


class WindowPosition(nn.Module):
    """Logit of every class at step t of a window = t: reveals which windows scored a frame."""

    feature_dim, num_classes = 3, 2

    def forward(self, x, mask=None):
        B, T, _ = x.shape
        return ModelOutput(torch.arange(T, dtype=torch.float32).view(1, T, 1).expand(B, T, 2))


def test_window_starts_cover_every_frame():
    assert data.window_starts(10, 4, 2).tolist() == [0, 2, 4, 6]
    assert data.window_starts(11, 4, 3).tolist() == [0, 3, 6, 7]  # the last window ends at the end
    assert data.window_starts(3, 8, 4).tolist() == [0]
    with pytest.raises(ValueError, match="stride"):
        data.window_starts(10, 4, 5)


def test_each_frame_is_scored_once_as_the_mean_of_its_windows():
    T, window, stride = 23, 8, 3
    scores = train.predict(WindowPosition(), np.zeros((T, 3), np.float32), window=window, stride=stride,
                           batch_size=2)
    assert scores.shape == (T, 2) and scores.dtype == np.float32
    expected = np.zeros(T)
    for f in range(T):
        covering = [s for s in data.window_starts(T, window, stride) if s <= f < s + window]
        expected[f] = np.mean([1 / (1 + np.exp(-(f - s))) for s in covering])
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("T, window, stride", [(50, 16, None), (50, 16, 5), (37, 12, 12), (6, 16, None), (16, 16, 4)])
def test_sliding_windows_equal_one_full_pass_for_a_per_step_model(T, window, stride):
    model = LinearBaseline(num_classes=5, feature_dim=7)
    x = torch.randn(T, 7)
    scores = train.predict(model, x, window=window, stride=stride, batch_size=3)
    with torch.no_grad():
        full = torch.sigmoid(model(x[None]).logits[0]).numpy()
    assert scores.shape == (T, 5)
    np.testing.assert_allclose(scores, full, rtol=1e-5, atol=1e-6)


def test_predict_batches_videos_without_letting_padding_leak(tmp_path):
    root = make_root(tmp_path, {"a": 41, "b": 5, "c": 17, "d": 3, "e": 26})
    videos = VideoDataset.from_folder(root, "train", TINY)
    model = build_model("mlad", 4, 6, hidden_dim=8, num_layers=2, dropout=0.0, attention_dropout=0.0)
    model.train()
    predictions = train.predict(model, videos, window=8, stride=3, batch_size=5)
    assert model.training  # mode restored
    assert list(predictions) == videos.video_ids
    for i, v in enumerate(videos.video_ids):
        alone = train.predict(model, videos[i][0], window=8, stride=3, batch_size=1)
        assert predictions[v].shape == (videos.num_frames(i), 4)
        np.testing.assert_allclose(predictions[v], alone, rtol=1e-4, atol=1e-5)
    path = tmp_path / "out" / "pred.h5"
    data.save_predictions(path, predictions)
    loaded = data.load_predictions(path)
    assert list(loaded) == list(predictions) and os.listdir(path.parent) == ["pred.h5"]
    for v in predictions:
        np.testing.assert_array_equal(loaded[v], predictions[v])


def test_model_and_data_sizes_must_agree(tmp_path):
    videos = VideoDataset.from_folder(make_root(tmp_path, {"a": 9}), "train", TINY)
    with pytest.raises(ValueError, match="the model takes 8-d features but the data has 6-d"):
        train.predict(LinearBaseline(4, 8), videos)
    with pytest.raises(ValueError, match="predicts 3 classes but the data has 4"):
        train.predict(LinearBaseline(3, 6), videos)
    with pytest.raises(ValueError, match="cannot name"):
        data.save_predictions(tmp_path / "p.h5", {"a/b": np.zeros((2, 2))})
    assert not (tmp_path / "p.h5").exists()


def test_bf16_autocast_stays_close_to_fp32():
    model = build_model("mlad", 4, 6, hidden_dim=8, num_layers=1, dropout=0.0, attention_dropout=0.0)
    x = np.random.default_rng(0).standard_normal((30, 6)).astype(np.float32)
    fp32 = train.predict(model, x, window=8)
    bf16 = train.predict(model, x, window=8, autocast=torch.bfloat16)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=3e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_predictions_and_pinned_batches_match_cpu(tmp_path):
    root = make_root(tmp_path, {"a": 70, "b": 9, "c": 33})
    videos = VideoDataset.from_folder(root, "train", TINY)
    model = build_model("mlad", 4, 6, hidden_dim=16, num_layers=2, dropout=0.0, attention_dropout=0.0)
    cpu = train.predict(model, videos, window=16, batch_size=4)
    model.cuda()
    cuda = train.predict(model, videos, window=16, batch_size=4)
    bf16 = train.predict(model, videos, window=16, batch_size=4, autocast=torch.bfloat16)
    for v in cpu:
        np.testing.assert_allclose(cuda[v], cpu[v], atol=1e-4)
        np.testing.assert_allclose(bf16[v], cpu[v], atol=3e-2)
    loader = data.window_loader(videos, batch_size=3, max_length=16, pin_memory=True, num_workers=2)
    for batch in loader:
        assert batch.features.is_pinned()
        on_gpu = batch.to("cuda", non_blocking=True)
        assert on_gpu.mask.device.type == "cuda" and torch.equal(on_gpu.labels.cpu(), batch.labels)


# ---------------------------------------------------------------- the real annotation files


def shared(name: str) -> Path:
    folder = SHARED / name
    if not (folder / f"{name}.json").is_file():
        pytest.skip(f"real annotation files not found at {folder} (set MLADLIB_SHARED_DATA)")
    return folder


@pytest.fixture(scope="module")
def multithumos():
    folder = shared("multithumos")
    spec = MULTITHUMOS.with_class_names(data.read_class_names(folder / "classes.txt", MULTITHUMOS))
    return folder, spec, read_annotations(folder / "multithumos.json", spec)


@pytest.fixture(scope="module")
def charades():
    folder = shared("charades")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        annotations = read_annotations(folder / "charades.json", CHARADES)
    return folder, annotations, [str(w.message) for w in caught]


def nominal_frames(rec: VideoRecord) -> int:
    return max(1, round(rec.duration * 3))


def test_real_multithumos(multithumos):
    folder, spec, annotations = multithumos
    assert len(annotations) == 413 and len(spec.class_names) == 65
    train, test = data.read_split(folder / "train_list.txt"), data.read_split(folder / "test_list.txt")
    assert (len(train), len(test)) == (200, 213)
    assert set(train) == set(data.videos_in_subset(annotations, "training"))
    assert set(test) == set(data.videos_in_subset(annotations, "testing"))
    classes = np.concatenate([r.class_indices for r in annotations.values()])
    assert classes.min() == 0 and classes.max() == 64
    cliff, diving = spec.class_names.index("CliffDiving"), spec.class_names.index("Diving")
    cliff_frames = 0
    for rec in annotations.values():
        labels = frame_labels(rec, nominal_frames(rec), spec)
        assert (labels[:, diving] >= labels[:, cliff]).all(), rec.video_id
        cliff_frames += int(labels[:, cliff].sum())
    assert cliff_frames > 0


def test_real_labels_match_the_public_loop(multithumos, charades):
    _, spec, annotations = multithumos
    for rec in list(annotations.values())[:: 40]:
        n = nominal_frames(rec)
        for strict in (False, True):
            np.testing.assert_array_equal(frame_labels(rec, n, spec, strict), reference_labels(rec, n, 65, strict))
    for rec in list(charades[1].values())[:: 700]:
        n = nominal_frames(rec)
        np.testing.assert_array_equal(frame_labels(rec, n, CHARADES), reference_labels(rec, n, 157, False))


def test_real_charades(charades):
    folder, annotations, messages = charades
    assert len(annotations) == 9848
    assert len(data.read_class_names(folder / "classes.txt", CHARADES)) == 157
    assert len(data.read_split(folder / "train_list.txt")) == 7985 and len(data.read_split(folder / "test_list.txt")) == 1863
    assert len(messages) == 1 and "dropped 7 segment" in messages[0]
    assert all((r.actions[:, 2] >= r.actions[:, 1]).all() for r in annotations.values())
    empty = [r for r in annotations.values() if len(r.actions) == 0]
    assert sum(r.subset == "training" for r in empty) == 174 and sum(r.subset == "testing" for r in empty) == 49
    for rec in empty:
        assert frame_labels(rec, nominal_frames(rec), CHARADES).sum() == 0
    with_class_0 = next(r for r in annotations.values() if 0 in r.class_indices)
    start, end = with_class_0.actions[with_class_0.class_indices == 0][0, 1:]
    labels = frame_labels(with_class_0, nominal_frames(with_class_0), CHARADES)
    times = data.frame_times(len(labels), with_class_0.duration)
    inside = (times >= start) & (times <= end)
    assert inside.any() and labels[inside, 0].all()
    past_end = sum(int((r.actions[:, 2] > r.duration).sum()) for r in annotations.values())
    assert past_end == 19623 - 5  # 5 of the file's 19,623 segments past the end are also reversed
