"""A dataset of one's own through the command line (train -> evaluate -> predict ->
segments), its dataset.json, and the class-id base warnings (issue 28, item 9)."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from mladlib.cli import main
from mladlib.data import CHARADES, DatasetSpec, read_annotations
from mladlib.data.spec import read_dataset_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")

NAMES = ["pour", "stir", "chop"]
RATE = 2.0  # features per second


def make_dataset(root: Path, seed: int = 0) -> Path:
    """Ten short videos, three 1-based classes, 8-d features that show the labels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    annotations, train, test = {}, [], []
    with h5py.File(root / "features.h5", "w") as store:
        for k in range(10):
            video, steps = f"clip{k:02d}", 40
            x = rng.normal(0, 0.3, (steps, 8)).astype(np.float32)
            actions = []
            for c in range(3):
                start = int(rng.integers(0, 30))
                stop = start + int(rng.integers(4, 10))
                x[start:stop, c] += 2.0  # class c is seen in dimension c
                actions.append([c + 1, start / RATE, stop / RATE])
            store.create_dataset(video, data=x)
            subset = "training" if k < 7 else "testing"
            (train if k < 7 else test).append(video)
            annotations[video] = {"subset": subset, "duration": steps / RATE,
                                  "actions": actions}
    (root / "annotations.json").write_text(json.dumps(annotations))
    (root / "train_list.txt").write_text("\n".join(train) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    (root / "classes.txt").write_text("\n".join(NAMES) + "\n")
    (root / "dataset.json").write_text(json.dumps(
        {"name": "kitchen", "num_classes": 3, "class_id_base": 1,
         "features_per_second": RATE, "default_window": 16, "feature_dim": 8}))
    return root


@pytest.mark.usefixtures("mladlib_environment")
def test_train_evaluate_predict_segments(tmp_path, capsys):
    root = make_dataset(tmp_path / "kitchen")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "custom", "--root", str(root), "--model", "mlad",
                 "--hidden-dim", "8", "--num-layers", "1", "--batch-size", "4",
                 "--windows-per-epoch", "16", "--epochs", "3", "--val-fraction", "0",
                 "--lr", "1e-2", "--threads", "1", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "pour" in out or "f-mAP" in out.lower() or "mAP" in out
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"),
                 "--json", str(tmp_path / "metrics.json")]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics  # the metrics of the custom test split were written
    segments = tmp_path / "clip08.csv"
    assert main(["predict", "--checkpoint", str(run / "best.pt"),
                 "--features", str(root / "features.h5"), "--video", "clip08",
                 "--segments", str(segments), "--segment-threshold", "0.3",
                 "--merge-gap", "1", "--min-length", "1"]) == 0
    out = capsys.readouterr().out
    assert "at 2 features per second" in out
    assert "(window 16)" in out  # the dataset's T, from its dataset.json
    rows = list(csv.DictReader(segments.open()))
    assert rows, "no segment found"
    for row in rows:
        assert row["video"] == "clip08" and row["name"] in NAMES
        start, end = float(row["start_s"]), float(row["end_s"])
        assert 0 <= start < end <= 40 / RATE and end - start >= 1
        assert NAMES[int(row["class"])] == row["name"]


def test_dataset_json_is_required_and_checked(tmp_path, capsys):
    root = make_dataset(tmp_path / "kitchen")
    spec = read_dataset_spec(root / "dataset.json")
    assert (spec.name, spec.num_classes, spec.class_id_base) == ("kitchen", 3, 1)
    assert spec.features_per_second == 2.0
    assert (spec.default_window, spec.feature_dim) == (16, 8)
    (root / "dataset.json").write_text(json.dumps({"num_classes": 3}))
    with pytest.raises(ValueError,
                       match=r"missing \['class_id_base'\] \(never guessed\)"):
        read_dataset_spec(root / "dataset.json")
    (root / "dataset.json").write_text(
        json.dumps({"num_classes": 3, "class_id_base": 2}))
    with pytest.raises(ValueError,
                       match="dataset.json: .*class_id_base must be 0 or 1"):
        read_dataset_spec(root / "dataset.json")
    (root / "dataset.json").unlink()
    argv = ["train", "--dataset", "custom", "--root", str(root), "--epochs", "1"]
    assert main(argv) == 2
    assert "dataset.json does not exist" in capsys.readouterr().err


def _ids_file(path: Path, ids: list[int]) -> Path:
    path.write_text(json.dumps({"v": {"duration": 10.0, "actions": [
        [i, 0.0, 1.0] for i in ids]}}))
    return path


def test_one_based_ids_under_a_zero_based_spec_warn(tmp_path):
    zero = DatasetSpec("zero", num_classes=5, class_id_base=0, default_window=8)
    with pytest.warns(UserWarning, match="ids run from 1 to 4 and 0 never occurs"):
        read_annotations(_ids_file(tmp_path / "a.json", [1, 2, 4]), zero)
    one = DatasetSpec("one", num_classes=5, class_id_base=1, default_window=8)
    with pytest.warns(UserWarning, match="ids stop at 4 and 5 never occurs"):
        read_annotations(_ids_file(tmp_path / "b.json", [1, 3, 4]), one)
    with warnings.catch_warnings():  # a file that uses every id of its base is quiet
        warnings.simplefilter("error")
        read_annotations(_ids_file(tmp_path / "c.json", [0, 4]), zero)
        read_annotations(_ids_file(tmp_path / "d.json", [1, 5]), one)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the real annotation files are absent")
def test_real_multithumos_read_as_charades_warns():
    with pytest.warns(UserWarning, match="ids run from 1 to 65 and 0 never occurs, but "
                      "charades counts from 0"):
        read_annotations(SHARED / "multithumos" / "multithumos.json", CHARADES)
