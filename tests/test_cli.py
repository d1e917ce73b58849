"""The command line, end to end on the tiny embedded dataset: synth -> train -> evaluate -> predict."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mladlib.cli import build_parser, main
from mladlib.data import load_predictions
from mladlib.models import PublicLayoutMLAD
from mladlib.train import dataset_spec, load_checkpoint, make_config

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--size", "tiny", "--hidden-dim", "16", "--num-layers", "1", "--window", "16", "--batch-size", "4",
         "--windows-per-epoch", "48", "--threads", "1"]  # 12 batches per epoch


pytestmark = pytest.mark.usefixtures("mladlib_environment")  # tests/conftest.py


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``python -m mladlib *args``, in this process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit:  # argparse: --help, usage errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, cache_dir):
    """synth, then train, through the command line; shared by the tests below."""
    os.environ["MLADLIB_CACHE"] = str(cache_dir)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "data", root / "run"
    assert main(["synth", "--size", "tiny", "--out", str(data)]) == 0
    assert main(["train", *SMALL, "--root", str(data), "--epochs", "2", "--run-dir", str(run)]) == 0
    return root, data, run


def test_synth_train_evaluate_predict(pipeline, capsys, tmp_path):
    root, data, run = pipeline
    for name in ("annotations.json", "features.h5", "train_list.txt", "test_list.txt", "classes.txt"):
        assert (data / name).is_file()
    results = json.loads((run / "results.json").read_text())

    code, out, err = run_cli(["evaluate", "--checkpoint", run / "best.pt", "--out", tmp_path / "p.h5",
                              "--json", tmp_path / "m.json"], capsys)
    assert code == 0, err
    assert f"{100 * results['test']['frame_map']:.2f}" in out
    for word in ("f-mAP", "HL", "LRAP", "P_AC", "mAP_AC", "tau = 0", "tau = 20", "6 videos"):
        assert word in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["frame_map"] == results["test"]["frame_map"]
    predictions = load_predictions(tmp_path / "p.h5")
    assert list(predictions) == (data / "test_list.txt").read_text().split()
    assert all(np.array_equal(predictions[v], s) for v, s in load_predictions(run / "test_predictions.h5").items())

    video = next(iter(predictions))
    code, out, err = run_cli(["predict", "--checkpoint", run / "best.pt", "--features", data / "features.h5",
                              "--video", video, "--out", tmp_path / "s.npy", "--top", "3"], capsys)
    assert code == 0, err
    scores = np.load(tmp_path / "s.npy")
    assert np.allclose(scores, predictions[video], atol=1e-6)
    names = (data / "classes.txt").read_text().split()
    top = names[int(np.argmax(scores.max(axis=0)))]
    assert out.splitlines()[2].startswith(top[:27])  # named classes, highest peak first

    with h5py.File(data / "features.h5") as f:
        np.save(tmp_path / "one.npy", np.asarray(f[video])[:, None, None, :])  # the (T, 1, 1, D) layout
    code, out, err = run_cli(["predict", "--checkpoint", run / "last.pt", "--features", tmp_path / "one.npy"],
                             capsys)
    assert code == 0 and "one:" in out, err


def test_evaluate_other_splits(pipeline, capsys):
    _, _, run = pipeline
    config = load_checkpoint(run / "best.pt")["config"]
    for split, videos in (("val", 1), ("train", 11)):
        code, out, err = run_cli(["evaluate", "--checkpoint", run / "best.pt", "--split", split, "--taus", "0", "5"],
                                 capsys)
        assert code == 0, err
        assert f"{videos} videos" in out and "tau = 5" in out and "tau = 20" not in out
    assert config.val_fraction > 0


def test_evaluate_an_official_checkpoint(pipeline, capsys, tmp_path):
    _, data, _ = pipeline
    torch.manual_seed(0)
    public = PublicLayoutMLAD(num_classes=65, feature_dim=32, hidden_dim=8, num_layers=1, max_len=16)
    path = tmp_path / "multithumos_release.pth"
    torch.save({"epoch": 7, "state_dict": public.state_dict(), "optimizer": {}}, path)
    options = ["--annotations", data / "annotations.json", "--features", data / "features.h5",
               "--test-list", data / "test_list.txt"]
    code, out, err = run_cli(["evaluate", "--checkpoint", path, "--official", "--dataset", "multithumos", *options],
                             capsys)
    assert code == 0, err
    assert "public MLAD release on multithumos" in out and "window 16" in out
    # without --official the file is refused with a hint
    code, out, err = run_cli(["evaluate", "--checkpoint", path, *options], capsys)
    assert code == 2 and "--official" in err


def test_resume_through_the_command_line(pipeline, capsys, tmp_path):
    _, data, _ = pipeline
    run = tmp_path / "run"
    code, out, err = run_cli(["train", *SMALL, "--root", data, "--epochs", "2", "--run-dir", run,
                              "--stop-after-steps", "5"], capsys)
    assert code == 0 and "stopped (stop_after_steps)" in out and "resume with" in out, err
    assert "f-mAP" not in out  # no results for an unfinished run
    code, out, err = run_cli(["train", "--resume", run / "last.pt", "--lr", "0.1"], capsys)
    assert code == 2 and err.strip() == "error: --lr cannot change when resuming; the checkpoint's settings apply"
    code, out, err = run_cli(["train", "--resume", run / "last.pt"], capsys)
    assert code == 0 and out.startswith("resuming") and "tau = 20" in out, err


@pytest.mark.slow
def test_sigint_writes_a_checkpoint_and_exits_130(pipeline, capsys, tmp_path):
    _, data, _ = pipeline
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mladlib", "train", *SMALL, "--root", str(data), "--epochs", "1000",
               "--run-dir", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path)
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:  # wait until training is under way
            lines.append(line)
            if line.startswith("epoch   1/1000"):
                break
        assert lines and lines[-1].startswith("epoch"), "".join(lines) + process.stderr.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate()
    finally:
        watchdog.cancel()
    assert process.returncode == 130, err
    assert "SIGINT received" in err and "Traceback" not in err
    assert "stopped (SIGINT)" in out and f"--resume {run / 'last.pt'}" in out
    saved = load_checkpoint(run / "last.pt", kind="training")
    assert saved["step"] >= 12  # at least the first epoch
    finish = saved["epoch"] + 1  # end the interrupted epoch and stop there
    code, out, err = run_cli(["train", "--resume", run / "last.pt", "--epochs", finish], capsys)
    assert code == 0, err
    assert json.loads((run / "results.json").read_text())["steps"] == finish * 12


SHARED = Path(os.environ.get("MLADLIB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*end before they start")  # a known quirk of charades.json
@pytest.mark.parametrize("dataset, first_class",
                         [("multithumos", "BaseballPitch"), ("charades", "Holding some clothes")])
def test_real_annotations_with_stand_in_features(dataset, first_class, tmp_path, capsys):
    """The real-data path (annotations, class names, split lists, RGB + flow files) with
    random features for a few videos: the published I3D features are not here."""
    folder = SHARED / dataset
    if not folder.is_dir():
        pytest.skip(f"the shared annotation files are not at {SHARED} (set MLADLIB_SHARED_DATA)")
    train_ids = (folder / "train_list.txt").read_text().split()[:6]
    test_ids = (folder / "test_list.txt").read_text().split()[:3]
    rng = np.random.default_rng(0)
    for stream in ("rgb", "flow"):
        with h5py.File(tmp_path / f"{stream}.h5", "w") as f:
            for video in train_ids + test_ids:
                f.create_dataset(video, data=rng.standard_normal((48, 4)).astype(np.float32))
    (tmp_path / "train.txt").write_text("\n".join(train_ids))
    (tmp_path / "test.txt").write_text("\n".join(test_ids))
    annotations = folder / f"{dataset}.json"
    code, out, err = run_cli(
        ["train", "--dataset", dataset, "--annotations", annotations, "--classes", folder / "classes.txt",
         "--features", tmp_path / "rgb.h5", tmp_path / "flow.h5", "--train-list", tmp_path / "train.txt",
         "--test-list", tmp_path / "test.txt", "--hidden-dim", "4", "--num-layers", "1", "--window", "32",
         "--epochs", "1", "--val-fraction", "0.2", "--threads", "1", "--run-dir", tmp_path / "run"], capsys)
    assert code == 0, err
    assert "5 train / 1 val / 3 test videos" in out and "3 videos" in out
    config = load_checkpoint(tmp_path / "run" / "best.pt")["config"]
    assert config.dataset == dataset and config.features == [str(tmp_path / "rgb.h5"), str(tmp_path / "flow.h5")]
    assert dataset_spec(config).class_names[0] == first_class
    model = load_checkpoint(tmp_path / "run" / "best.pt")["model"]
    assert model["class_features.weight"].shape[1] == 8  # RGB + flow joined along D
    code, out, err = run_cli(["predict", "--checkpoint", tmp_path / "run" / "best.pt", "--features",
                              tmp_path / "rgb.h5", "--video", test_ids[0]], capsys)
    assert code == 2 and "4-d features" in err  # one stream alone does not fit the model


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--checkpoint", "missing.pt"], "checkpoint missing.pt does not exist"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
        (["train", "--epochs", "many"], "invalid int value: 'many'"),
        (["train", "--epochs", "0"], "epochs must be >= 1"),
        (["train", "--dataset", "multithumos"], "needs either root"),
        (["train", "--dataset", "charades", "--annotations", "nope.json", "--features", "nope.h5", "--run-dir", "r"],
         "does not exist"),
        (["train", "--dataset", "synthetic", "--root", "no_such_folder"], "no_such_folder does not exist"),
        (["evaluate"], "the following arguments are required: --checkpoint"),
        (["predict", "--checkpoint", "x.pt"], "the following arguments are required: --features"),
        (["synth", "--size", "huge"], "invalid choice: 'huge'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_mistakes_end_in_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and message in err, err


def test_mistakes_with_a_checkpoint(pipeline, capsys, tmp_path):
    _, data, run = pipeline
    (tmp_path / "bad.pt").write_text("junk")
    cases = [
        (["predict", "--checkpoint", run / "best.pt", "--features", tmp_path / "none.npy"], "does not exist"),
        (["predict", "--checkpoint", run / "best.pt", "--features", data / "features.h5"], "name one with --video"),
        (["predict", "--checkpoint", run / "best.pt", "--features", data / "features.h5", "--video", "nope"],
         "'nope' is not in the feature store"),
        (["predict", "--checkpoint", run / "best.pt", "--features", data / "annotations.json"], "neither"),
        (["evaluate", "--checkpoint", tmp_path / "bad.pt"], "corrupted"),
        (["evaluate", "--checkpoint", run / "best.pt", "--official", "--dataset", "synthetic", "--root", data],
         "not in the public MLAD layout"),
        (["train", "--root", data, "--run-dir", run], "already holds a run"),
        (["synth", "--out", run], "not an embedded dataset"),
    ]
    for args, message in cases:
        code, out, err = run_cli(args, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)


def test_every_option_is_explained(capsys):
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"synth", "train", "evaluate", "predict", "smoke", "fetch"} <= set(commands.choices)
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
        code, out, _ = run_cli([name, "--help"], capsys)
        assert code == 0 and out.startswith(f"usage: python -m mladlib {name}")
    code, out, _ = run_cli(["train", "--help"], capsys)
    for option in ("--dataset", "--features", "--annotations", "--resume", "--initial-loss-weight", "--compile",
                   "--grad-accumulation", "--val-fraction", "--taus"):
        assert option in out


def test_train_without_options_is_mlad_on_the_embedded_dataset(monkeypatch, capsys):
    import mladlib.train as train_package

    seen = {}

    def record(config, **kwargs):
        seen["config"] = config
        raise ValueError("recorded")  # stop before training

    monkeypatch.setattr(train_package, "train", record)
    code, _, err = run_cli(["train"], capsys)
    assert code == 2 and "recorded" in err
    assert seen["config"] == make_config("synthetic", run_dir="auto")
    assert seen["config"].model == "mlad" and seen["config"].dataset == "synthetic"


def test_model_options_and_the_public_recipe_reach_the_config(monkeypatch, capsys):
    import mladlib.train as train_package

    seen = {}

    def record(config, **kwargs):
        seen["config"] = config
        raise ValueError("recorded")

    monkeypatch.setattr(train_package, "train", record)
    code, _, err = run_cli(["train", "--ff-dim", "64", "--alpha", "0.25", "--branches", "tb",
                            "--positional-encoding", "--attention-out-relu", "--feature-streams", "2", "2",
                            "--positional-scale", "0.5", "--implementation", "reference",
                            "--input-dropout", "0.1"], capsys)
    assert code == 2 and "recorded" in err
    c = seen["config"]
    assert (c.ff_dim, c.alpha, c.branches, c.positional_encoding, c.attention_out_relu, c.feature_streams,
            c.positional_scale, c.implementation, c.input_dropout) == (
        64, 0.25, ("tb",), True, True, [2, 2], 0.5, "reference", 0.1)
    run_cli(["train", "--recipe", "public", "--lr", "0.002"], capsys)
    c = seen["config"]
    assert c.input_dropout == 0.2 and c.attention_out_relu and c.positional_scale == 1.0 and c.lr == 0.002
    code, _, err = run_cli(["train", "--alpha", "often"], capsys)
    assert code == 2 and "expected 'learned' or a number" in err


def test_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        main(["--debug", "evaluate", "--checkpoint", "missing.pt"])
