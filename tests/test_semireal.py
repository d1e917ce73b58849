"""mladlib.semireal: real labels with simulated features, in the real layout.

A small hand-made annotation file runs everywhere; the checks against the real MultiTHUMOS
and Charades labels run when ../shared/data is present (CI) and skip otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from mladlib import cli, semireal
from mladlib.data import CHARADES, MULTITHUMOS, VideoDataset, frame_labels, read_annotations, read_split

SHARED = Path(os.environ.get("MLADLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
needs_shared = pytest.mark.skipif(not (SHARED / "multithumos").is_dir(),
                                  reason=f"the real annotation files are not at {SHARED}")
OBS = semireal.ObservationModel(visibility=2.0, feature_dim=16, seed=3)


@pytest.fixture()
def tiny_source(tmp_path: Path) -> Path:
    """A MultiTHUMOS-style folder: 3 training and 2 test videos, 1-based class ids."""
    folder = tmp_path / "src"
    folder.mkdir()
    videos = {
        "v_a": {"subset": "training", "duration": 10.0, "actions": [[1, 0.0, 4.0], [2, 3.0, 6.5]]},
        "v_b": {"subset": "training", "duration": 7.3, "actions": [[65, 1.0, 9.0]]},
        "v_c": {"subset": "training", "duration": 5.0, "actions": [[3, 2.0, 1.0]]},  # reversed: dropped
        "v_d": {"subset": "testing", "duration": 12.0, "actions": [[1, 0.5, 2.0], [4, 2.0, 11.0]]},
        "v_e": {"subset": "testing", "duration": 3.0, "actions": []},
    }
    (folder / "multithumos.json").write_text(json.dumps(videos))
    (folder / "train_list.txt").write_text("v_a\nv_b\nv_c\n")
    (folder / "test_list.txt").write_text("v_d\nv_e\n")
    (folder / "classes.txt").write_text("".join(f"Class{k}\n" for k in range(1, 66)))
    return folder


def test_layout_round_trips_with_the_real_frame_labels(tiny_source: Path, tmp_path: Path):
    with pytest.warns(UserWarning, match="end before they start"):
        root = semireal.build("multithumos", tiny_source, tmp_path / "out", OBS)
    with pytest.warns(UserWarning):
        source = read_annotations(tiny_source / "multithumos.json", MULTITHUMOS)
    train = VideoDataset.from_folder(root, "train", MULTITHUMOS)
    test = VideoDataset.from_folder(root, "test", MULTITHUMOS)
    assert train.video_ids == ["v_a", "v_b", "v_c"] and test.video_ids == ["v_d", "v_e"]
    assert train.spec.class_names[0] == "Class1" and train.feature_dim == 16
    for dataset in (train, test):
        for i, video_id in enumerate(dataset.video_ids):
            features, labels = dataset[i]
            T = semireal.num_steps(source[video_id].duration)
            assert features.shape == (T, 16) and features.dtype == np.float32
            # the folder's labels are the real file's frame labels (inclusive rule, 3 per second)
            assert np.array_equal(labels, frame_labels(source[video_id], T, MULTITHUMOS))
    assert train.labels(0)[:, 0].sum() == 13  # class 1 on [0, 4] s: steps 0..12 at 3 per second
    meta = json.loads((root / "semireal.json").read_text())
    assert meta["observation_model"]["visibility"] == 2.0 and len(meta["class_visibility"]) == 65


def test_builder_is_deterministic_per_seed(tiny_source: Path, tmp_path: Path):
    with pytest.warns(UserWarning):
        a = semireal.build("multithumos", tiny_source, tmp_path / "a", OBS)
        b = semireal.build("multithumos", tiny_source, tmp_path / "b", OBS)
        c = semireal.build("multithumos", tiny_source, tmp_path / "c", semireal.ObservationModel(
            visibility=2.0, feature_dim=16, seed=4))
    with h5py.File(a / "features.h5") as fa, h5py.File(b / "features.h5") as fb, h5py.File(c / "features.h5") as fc:
        assert all(np.array_equal(fa[v][()], fb[v][()]) for v in fa)
        assert not np.allclose(fa["v_a"][()], fc["v_a"][()])


def test_max_videos_keeps_each_video_s_noise(tiny_source: Path, tmp_path: Path):
    with pytest.warns(UserWarning):
        full = semireal.build("multithumos", tiny_source, tmp_path / "full", OBS)
        cut = semireal.build("multithumos", tiny_source, tmp_path / "cut", OBS, max_videos=1)
    assert read_split(cut / "train_list.txt") == ["v_a"] and read_split(cut / "test_list.txt") == ["v_d"]
    with h5py.File(full / "features.h5") as f, h5py.File(cut / "features.h5") as g:
        assert sorted(g) == ["v_a", "v_d"] and np.array_equal(f["v_a"][()], g["v_a"][()])


def test_observation_model_ignores_order_and_co_occurrence():
    rng = np.random.default_rng(0)
    evidence = semireal.class_evidence(OBS, 65)
    labels = (rng.random((50, 65)) < 0.1).astype(np.uint8)
    noise = semireal.video_noise(OBS, "v", 50)
    perm = rng.permutation(50)
    shuffled = semireal.simulate_features(labels[perm], evidence, noise)
    original = semireal.simulate_features(labels, evidence, noise)
    # with the same noise, shuffling the steps of the labels shuffles the signal identically
    np.testing.assert_allclose(shuffled - noise, (original - noise)[perm], atol=1e-5)
    # the signal is additive over classes: no term depends on which classes come together
    both = semireal.simulate_features(np.eye(65, dtype=np.uint8)[[0]] + np.eye(65, dtype=np.uint8)[[1]],
                                      evidence, np.zeros((1, 16)))
    alone = semireal.simulate_features(np.eye(65, dtype=np.uint8)[:2], evidence, np.zeros((2, 16)))
    np.testing.assert_allclose(both[0], alone.sum(0), atol=1e-5)


def test_visibility_is_the_single_class_signal_to_noise_ratio():
    obs = semireal.ObservationModel(visibility=1.5, spread=3.0, rho=0.5, feature_dim=32, seed=1)
    evidence = semireal.class_evidence(obs, 65)
    assert np.allclose(np.linalg.norm(evidence.directions, axis=1), 1.0)
    assert (evidence.visibility >= 0.5 - 1e-9).all() and (evidence.visibility <= 4.5 + 1e-9).all()
    assert np.median(evidence.visibility) == pytest.approx(1.5, rel=0.3)
    noise = semireal.video_noise(obs, "long", 4000)
    assert noise.std() == pytest.approx(1.0, abs=0.03)  # unit scale per dimension
    lag1 = np.mean([np.corrcoef(noise[1:, d], noise[:-1, d])[0, 1] for d in range(32)])
    assert lag1 == pytest.approx(0.5, abs=0.05)


def test_bad_arguments_name_what_is_wrong(tmp_path: Path):
    with pytest.raises(ValueError, match="visibility"):
        semireal.ObservationModel(visibility=-1)
    with pytest.raises(ValueError, match="rho"):
        semireal.ObservationModel(rho=1.0)
    with pytest.raises(ValueError, match="dataset must be one of"):
        semireal.find_source("thumos", tmp_path)
    with pytest.raises(FileNotFoundError, match="neither annotations.json nor multithumos.json"):
        semireal.find_source("multithumos", tmp_path)


def test_cli_writes_a_folder(tiny_source: Path, tmp_path: Path, capsys):
    code = cli.main(["semireal", "--dataset", "multithumos", "--annotations", str(tiny_source),
                     "--out", str(tmp_path / "cli"), "--visibility", "1", "--feature-dim", "8",
                     "--max-videos", "2"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "2 train + 2 test videos" in out
    assert err.startswith("warning: ")  # the CLI shows the reader's warning as one line
    assert VideoDataset.from_folder(tmp_path / "cli", "train", MULTITHUMOS).feature_dim == 8
    assert cli.main(["semireal", "--dataset", "multithumos", "--annotations", str(tmp_path / "nope"),
                     "--out", str(tmp_path / "x")]) == 2


@needs_shared
@pytest.mark.parametrize("name, spec", [("multithumos", MULTITHUMOS), ("charades", CHARADES)])
def test_real_labels_are_kept(name, spec, tmp_path: Path):
    with pytest.warns() if name == "charades" else _nothing():
        root = semireal.build(name, SHARED / name, tmp_path / name,
                              semireal.ObservationModel(feature_dim=4), max_videos=15)
        real = read_annotations(SHARED / name / f"{name}.json", spec)
    test = VideoDataset.from_folder(root, "test", spec)
    assert test.video_ids == read_split(SHARED / name / "test_list.txt")[:15]
    assert test.spec.class_names == VideoDataset.from_folder(root, "train", spec).spec.class_names
    for i, video_id in enumerate(test.video_ids):
        T = semireal.num_steps(real[video_id].duration)
        assert np.array_equal(test.labels(i), frame_labels(real[video_id], T, spec))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_build_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a semireal dataset folder"):
        semireal.build("multithumos", tmp_path / "missing.json", precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_annotation_folder_reads_the_environment(tmp_path: Path, monkeypatch):
    from mladlib import data

    (tmp_path / "multithumos").mkdir()
    monkeypatch.setenv("MLADLIB_ANNOTATIONS", str(tmp_path))
    if not hasattr(data, "fetch_annotations"):
        assert semireal.annotation_folder("multithumos") == tmp_path / "multithumos"
        monkeypatch.delenv("MLADLIB_ANNOTATIONS")
        with pytest.raises(FileNotFoundError, match="MLADLIB_ANNOTATIONS"):
            semireal.annotation_folder("multithumos")
    with pytest.raises(ValueError, match="dataset must be one of"):
        semireal.annotation_folder("thumos")


# --- hostile --out and arguments (issue 28, items 1, 2 and 10) ------------------------


def _semireal(source: Path, out, *extra) -> list[str]:
    return ["semireal", "--dataset", "multithumos", "--annotations", str(source),
            "--out", str(out), "--feature-dim", "4", *map(str, extra)]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _seed_of(folder: Path) -> int:
    meta = json.loads((folder / "semireal.json").read_text())
    return meta["observation_model"]["seed"]


def test_out_dot_inside_a_semireal_folder_removes_nothing(tiny_source: Path,
                                                          tmp_path: Path, capsys,
                                                          monkeypatch):
    built = tmp_path / "built"
    assert cli.main(_semireal(tiny_source, built)) == 0
    capsys.readouterr()
    before = _tree(built)
    monkeypatch.chdir(built)
    for out in (".", "../built", str(tmp_path)):
        assert cli.main(_semireal(tiny_source, out)) == 2
        err = capsys.readouterr().err
        assert "working directory" in err and err.count("\n") == 1, err
        assert _tree(built) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "src"]  # no build


def test_rebuilding_keeps_what_the_user_added(tiny_source: Path, tmp_path: Path,
                                              capsys):
    built = tmp_path / "built"
    assert cli.main(_semireal(tiny_source, built)) == 0
    # only the builder's files there: replaced
    assert cli.main(_semireal(tiny_source, built, "--seed", "1")) == 0
    assert _seed_of(built) == 1
    (built / "notes.txt").write_text("my notes")
    (built / "runs").mkdir()
    (built / "runs" / "best.pt").write_bytes(b"weights")
    capsys.readouterr()
    assert cli.main(_semireal(tiny_source, built, "--seed", "2")) == 2
    err = capsys.readouterr().err
    assert "2 files the builder did not write ('notes.txt', 'runs')" in err, err
    assert (built / "notes.txt").read_text() == "my notes"
    assert (built / "runs" / "best.pt").read_bytes() == b"weights"
    assert _seed_of(built) == 1


@pytest.mark.parametrize("extra, phrase", [
    (["--visibility", "1e300"],
     "--visibility: visibility must be a number in [0, 1000]"),
    (["--spread", "1e300"], "--spread: spread must be a number in [1, 1000]"),
    (["--visibility", "nan"], "--visibility"),
    (["--feature-dim", "100000000"],
     "--feature-dim: feature_dim must be an integer in [1, 16384]"),
    (["--seed", "-1"], "argument --seed: must be an integer in [0, 2**63)"),
])
def test_absurd_settings_are_refused_before_the_annotations_are_read(extra, phrase,
                                                                     tmp_path, capsys):
    argv = _semireal(tmp_path / "missing", tmp_path / "out", *extra)
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and phrase in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case, phrase", [
    ("long",
     "video 'v_b': 1e+07 s at 3 features per second with 4 dimensions is 0.9 GiB"),
    ("empty id", "video id '' cannot name a features entry"),
    ("slash id", "video id 'a/b' cannot name a features entry"),
    ("overlap", "1 videos are in both the training and the test split"),
])
def test_videos_the_builder_cannot_write_are_named(case, phrase, tiny_source: Path,
                                                   tmp_path: Path, capsys, monkeypatch):
    videos = json.loads((tiny_source / "multithumos.json").read_text())
    if case == "long":
        videos["v_b"]["duration"] = 1e7
        # 1e7 s x 3 x 4 dimensions x 8 bytes is 0.9 GiB, under the limit: lower it
        monkeypatch.setattr(semireal, "MAX_VIDEO_BYTES", 2**29)
    elif case == "empty id":
        videos[""] = videos.pop("v_b")
        (tiny_source / "train_list.txt").unlink()  # the subset field lists the empty id
    elif case == "slash id":
        videos["a/b"] = videos.pop("v_b")
        (tiny_source / "train_list.txt").write_text("v_a\na/b\nv_c\n")
    else:
        (tiny_source / "test_list.txt").write_text("v_d\nv_a\n")
    (tiny_source / "multithumos.json").write_text(json.dumps(videos))
    code = cli.main(_semireal(tiny_source, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2 and phrase in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_a_file_size_limit_is_exit_3_and_one_line(tiny_source: Path, tmp_path: Path):
    import subprocess
    import sys

    argv = _semireal(tiny_source, tmp_path / "out", "--feature-dim", "64")
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        "from mladlib.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=120)
    lines = [x for x in process.stderr.splitlines() if not x.startswith("warning:")]
    assert process.returncode == 3 and len(lines) == 1, process.stderr
    assert lines[0].startswith("error: cannot write "), process.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no build left
