"""Hostile but fair input (issue 17): every bad input ends in one line naming the file, video
or option at fault with exit status 2 (3: a file that cannot be written), no traceback, and
no input file changed. The table below runs each case through ``mladlib.cli.main``; the API
cases and the fault injections (locks, a file size limit, Ctrl-C) follow it."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mladlib import data, synth
from mladlib.cli import build_parser, main
from mladlib.metrics import action_conditional, action_conditional_sweep
from mladlib.models import build_model
from mladlib.train import (dataset_spec, load_checkpoint, make_config, save_checkpoint,
                           train)
from mladlib.train.runlock import RunFolderLock

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--size", "tiny", "--hidden-dim", "16", "--num-layers", "1", "--window", "16", "--batch-size", "4",
         "--windows-per-epoch", "48", "--threads", "1"]  # 12 batches per epoch

pytestmark = pytest.mark.usefixtures("mladlib_environment")  # tests/conftest.py


def run_cli(args: list, capsys) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``python -m mladlib *args``, in this process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def digests(*folders: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folders`` (the inputs a case must leave alone)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory, cache_dir):
    """The tiny embedded dataset, a 2-epoch run on it, and a folder of crafted bad inputs."""
    os.environ["MLADLIB_CACHE"] = str(cache_dir)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hostile")
    data_dir, run, bad = root / "data", root / "run", root / "bad"
    assert main(["synth", "--size", "tiny", "--out", str(data_dir)]) == 0
    assert main(["train", *SMALL, "--root", str(data_dir), "--epochs", "2", "--run-dir", str(run)]) == 0
    bad.mkdir()
    with h5py.File(data_dir / "features.h5") as f:
        video = sorted(f)[0]
        x = np.asarray(f[video])
    np.save(bad / "v.npy", x)
    np.save(bad / "complex.npy", x.astype(np.complex128) + 1j)
    nan = x.copy()
    nan[3, 1] = np.nan
    np.save(bad / "nan.npy", nan)
    (bad / "folder").mkdir()
    annotations = json.loads((data_dir / "annotations.json").read_text())
    first = next(iter(annotations))
    # the same video twice: json.load would keep only the second entry
    text = json.dumps(annotations)
    (bad / "dup.json").write_text(text[:-1] + f', "{first}": ' + json.dumps(annotations[first]) + "}")
    # 1-based ids read as Charades (ids 0..156): the 25 classes plus one with id 157 = C
    one_based = {v: {**e, "actions": [[157, 0.0, 1.0]] if i == 0 else e["actions"]}
                 for i, (v, e) in enumerate(annotations.items())}
    (bad / "one_based.json").write_text(json.dumps(one_based))
    # NaN in one test video's features (a copy of the dataset folder)
    nan_root = root / "nan_data"
    shutil.copytree(data_dir, nan_root)
    test_video = (data_dir / "test_list.txt").read_text().split()[-1]
    with h5py.File(nan_root / "features.h5", "r+") as f:
        f[test_video][-1, 0] = np.inf
    # a test split whose videos have no action at all (no positive frame)
    empty_root = root / "empty_data"
    shutil.copytree(data_dir, empty_root)
    tests = set((data_dir / "test_list.txt").read_text().split())
    (empty_root / "annotations.json").write_text(json.dumps(
        {v: {**e, "actions": []} if v in tests else e for v, e in annotations.items()}))
    return {"root": root, "data": data_dir, "run": run, "bad": bad, "video": video, "first": first,
            "test_video": test_video, "nan": nan_root, "empty": empty_root}


# (case id, arguments with {placeholders} from ``world``, exit status, phrase the one line holds)
CASES = [
    # 1: an output that is one of the command's inputs
    ("out-is-features", ["evaluate", "--checkpoint", "{run}/best.pt", "--out", "{data}/features.h5"], 2,
     "is one of this command's inputs"),
    ("json-is-annotations", ["evaluate", "--checkpoint", "{run}/best.pt", "--json", "{data}/annotations.json"], 2,
     "is one of this command's inputs"),
    ("out-is-checkpoint", ["evaluate", "--checkpoint", "{run}/best.pt", "--out", "{run}/best.pt"], 2,
     "is one of this command's inputs"),
    ("predict-out-is-features", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy",
                                 "--out", "{bad}/v.npy"], 2, "is one of this command's inputs"),
    ("out-and-json-same", ["evaluate", "--checkpoint", "{run}/best.pt", "--out", "{root}/x.h5",
                           "--json", "{root}/x.h5"], 2, "name the same file"),
    # 5: one device check for every command
    ("predict-device-foo", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy",
                            "--device", "foo"], 2, "unknown device 'foo'"),
    ("evaluate-device-foo", ["evaluate", "--checkpoint", "{run}/best.pt", "--device", "foo"], 2,
     "unknown device 'foo'"),
    ("predict-device-meta", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy",
                             "--device", "meta"], 2, "is not supported"),
    # 10, 12: annotations
    ("duplicate-video", ["evaluate", "--checkpoint", "{run}/best.pt", "--annotations", "{bad}/dup.json"], 2,
     "video '{first}' is listed twice"),
    ("one-based-charades", ["train", "--dataset", "charades", "--annotations", "{bad}/one_based.json",
                            "--features", "{data}/features.h5", "--run-dir", "{root}/r1"], 2, "look 1-based"),
    ("test-overlaps-train", ["evaluate", "--checkpoint", "{run}/best.pt", "--test-list", "{data}/train_list.txt"],
     2, "also training videos"),
    # 13: NaN/Inf in features, found when the data load
    ("nan-in-dataset", ["train", *SMALL, "--root", "{nan}", "--epochs", "1", "--run-dir", "{root}/r2"], 2,
     "video '{test_video}' in the feature store {nan}/features.h5 has NaN or infinite"),
    ("nan-in-evaluate", ["evaluate", "--checkpoint", "{run}/best.pt", "--root", "{nan}"], 2,
     "has NaN or infinite features"),
    ("nan-npy", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/nan.npy"], 2,
     "feature file {bad}/nan.npy has NaN or infinite features (first at step 3)"),
    # 14: options out of range, complex features
    ("evaluate-window-0", ["evaluate", "--checkpoint", "{run}/best.pt", "--window", "0"], 2,
     "argument --window: must be >= 1, got 0"),
    ("predict-window-0", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy", "--window", "0"],
     2, "argument --window: must be >= 1"),
    ("evaluate-threshold-2", ["evaluate", "--checkpoint", "{run}/best.pt", "--threshold", "2"], 2,
     "argument --threshold: must be in (0, 1), got 2.0"),
    ("predict-top-negative", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy",
                              "--top", "-1"], 2, "argument --top: must be >= 1, got -1"),
    ("predict-stride-0", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy", "--stride", "0"],
     2, "argument --stride"),
    ("complex-npy", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/complex.npy"], 2,
     "holds complex128 values"),
    # 15: vague messages made precise
    ("checkpoint-is-folder", ["evaluate", "--checkpoint", "{bad}/folder"], 2, "checkpoint {bad}/folder is a directory"),
    ("official-checkpoint-is-folder", ["evaluate", "--checkpoint", "{bad}/folder", "--official", "--dataset",
                                       "synthetic"], 2, "is a directory"),
    ("features-is-folder", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/folder"], 2,
     "feature file {bad}/folder is a directory"),
    ("seed-negative", ["train", "--seed", "-1"], 2, "argument --seed: must be an integer in [0, 2**63)"),
    ("seed-huge", ["train", "--seed", str(2**64)], 2, "argument --seed"),
    ("synth-seed-negative", ["synth", "--seed", "-1"], 2, "argument --seed"),
    ("final-loss-weight-inf", ["train", "--final-loss-weight", "inf"], 2, "final_loss_weight must be a finite number"),
    ("lr-inf", ["train", "--lr", "inf"], 2, "lr must be a finite number"),
    # 16: outputs checked before the work
    ("out-folder-missing", ["evaluate", "--checkpoint", "{run}/best.pt", "--out", "{root}/nowhere/p.h5"], 2,
     "--out {root}/nowhere/p.h5: the folder {root}/nowhere does not exist"),
    ("json-is-folder", ["evaluate", "--checkpoint", "{run}/best.pt", "--json", "{bad}/folder"], 2,
     "--json {bad}/folder is a directory"),
    ("predict-out-not-npy", ["predict", "--checkpoint", "{run}/best.pt", "--features", "{bad}/v.npy",
                             "--out", "{root}/s.txt"], 2, "--out must name a .npy file"),
]


@pytest.mark.parametrize("case, args, status, phrase", CASES, ids=[c[0] for c in CASES])
def test_bad_input_table(world, case, args, status, phrase, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an 'auto' run folder would go here
    fill = {k: str(v) for k, v in world.items()}
    before = digests(world["data"], world["run"], world["bad"], world["nan"])
    code, out, err = run_cli([a.format(**fill) for a in args], capsys)
    assert code == status, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert phrase.format(**fill) in err, err
    assert "f-mAP" not in out  # the error came before the work
    assert digests(world["data"], world["run"], world["bad"], world["nan"]) == before
    assert not any(tmp_path.iterdir())  # and left nothing behind (no run folder, no temporary)


def test_nan_scores_are_refused_by_predict_as_by_evaluate(world, capsys, tmp_path):
    """Issue 28, item 11: a checkpoint whose scores are NaN (here its last bias) ends
    predict with one line naming the checkpoint and the video, exit 2, and nothing
    written; evaluate refuses it the same way."""
    saved = load_checkpoint(world["run"] / "best.pt")
    state = saved["model"]
    bias = [key for key in state if key.endswith("bias")][-1]
    state[bias] = torch.full_like(state[bias], float("nan"))
    extra = {k: v for k, v in saved.items()
             if k not in ("format", "version", "kind", "config", "model")}
    checkpoint = save_checkpoint(tmp_path / "nan.pt", "best", saved["config"], state,
                                 **extra)
    out, scores = tmp_path / "s.npy", tmp_path / "s.h5"
    code, stdout, err = run_cli(["predict", "--checkpoint", checkpoint, "--features",
                                 world["bad"] / "v.npy", "--out", out], capsys)
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert f"checkpoint {checkpoint} gives NaN or infinite scores on video 'v'" in err
    assert stdout == ""
    code, stdout, err = run_cli(["evaluate", "--checkpoint", checkpoint, "--out",
                                 scores], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"checkpoint {checkpoint}: the model gives NaN or infinite scores" in err
    assert "f-mAP" not in stdout
    assert sorted(tmp_path.iterdir()) == [checkpoint]  # no output, no temporary


def test_unwritable_output_folder_is_refused_before_the_work(world, capsys, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write into any folder")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, out, err = run_cli(["evaluate", "--checkpoint", world["run"] / "best.pt", "--json", locked / "m.json"],
                             capsys)
    assert code == 2 and f"the folder {locked} is not writable" in err and "f-mAP" not in out, err


def test_cuda_device_without_cuda_is_one_line(world, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    for command in (["predict", "--features", world["bad"] / "v.npy"], ["evaluate"]):
        code, _, err = run_cli([*command, "--checkpoint", world["run"] / "best.pt", "--device", "cuda"], capsys)
        assert code == 2 and err.strip() == "error: device 'cuda' requested but CUDA is not available here", err


# --- 1, 2: nothing a user gave is replaced --------------------------------------------------


def test_dataset_root_never_deletes_a_foreign_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="is not an embedded dataset"):
        synth.dataset_root("tiny", 0, root=mine)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not an embedded dataset"):
        synth.dataset_root("tiny", 0, root=tmp_path / "file")
    assert synth.dataset_root("tiny", 0, root=tmp_path / "new").joinpath("config.json").is_file()


# --- 3, 6, 17: the run folder ---------------------------------------------------------------


def test_a_run_folder_in_use_is_refused_and_a_stale_lock_is_not(world, capsys, tmp_path):
    run = tmp_path / "run"
    holder = RunFolderLock(run)  # another run holds the folder (a separate open file: flock conflicts)
    try:
        code, out, err = run_cli(["train", *SMALL, "--root", world["data"], "--epochs", "1", "--run-dir", run],
                                 capsys)
        assert code == 2 and f"run folder {run} is in use by another run" in err, err
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # the other run's files untouched
    finally:
        holder.release()
    # the lock file is still there, as after a SIGKILL; nobody holds it: no obstacle
    code, out, err = run_cli(["train", *SMALL, "--root", world["data"], "--epochs", "1", "--run-dir", run,
                              "--stop-after-steps", "2"], capsys)
    assert code == 0 and "stopped (stop_after_steps)" in out, err


def test_resume_while_the_run_goes_on_is_refused(world, capsys, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", *SMALL, "--root", world["data"], "--epochs", "1", "--run-dir", run,
                            "--stop-after-steps", "2"], capsys)
    assert code == 0, err
    before = digests(run)
    holder = RunFolderLock(run)
    try:
        code, _, err = run_cli(["train", "--resume", run / "last.pt"], capsys)
    finally:
        holder.release()
    assert code == 2 and "is in use by another run" in err, err
    assert {k: v for k, v in digests(run).items() if not k.endswith(".lock")} == \
        {k: v for k, v in before.items() if not k.endswith(".lock")}


def _lock_held(run: Path) -> bool:
    """Whether some open file holds the flock of ``run/.lock`` (flock conflicts between
    two opens in one process too)."""
    import fcntl

    fd = os.open(run / ".lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_resume_claims_the_run_folder_before_reading_last_pt_and_follows_a_link(
        world, capsys, tmp_path, monkeypatch):
    """Issue 28, items 8 and 5: last.pt is read only once the folder is ours (a run
    still writing it cannot hand over a stale one), and --resume through a link claims
    the run's own folder, not the link's."""
    import mladlib.train.trainer as trainer

    run = tmp_path / "run"
    code, _, err = run_cli(["train", *SMALL, "--root", world["data"], "--epochs", "1",
                            "--run-dir", run, "--stop-after-steps", "2"], capsys)
    assert code == 0, err
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    (elsewhere / "latest.pt").symlink_to(run / "last.pt")
    held_when_read = []
    real_load = trainer.load_checkpoint

    def spy(path, *args, **kwargs):
        if Path(path).name in ("last.pt", "latest.pt"):
            held_when_read.append(_lock_held(run))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(trainer, "load_checkpoint", spy)
    code, out, err = run_cli(["train", "--resume", elsewhere / "latest.pt"], capsys)
    assert code == 0, err
    assert held_when_read == [True]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["latest.pt"]  # no .lock
    assert (run / "results.json").is_file()
    assert "finished" in (run / "train.log").read_text()


def test_a_failing_checkpoint_write_is_exit_3_and_the_rerun_works(world, capsys, tmp_path):
    """``ulimit -f``: a file size limit makes the write of last.pt fail (Python ignores SIGXFSZ)."""
    run = tmp_path / "run"
    command = ["train", *SMALL, "--root", str(world["data"]), "--epochs", "1", "--run-dir", str(run)]
    limit = 16 * 1024  # config.json, train.log fit; a checkpoint does not

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = {**os.environ, "PYTHONPATH": str(REPO), "MLADLIB_PROGRESS": "0"}
    process = subprocess.run([sys.executable, "-m", "mladlib", *command], capture_output=True, text=True,
                             env=env, cwd=tmp_path, preexec_fn=limit_file_size, timeout=300)
    assert process.returncode == 3, process.stderr
    assert process.stderr.startswith("error: cannot write checkpoint") and "Traceback" not in process.stderr
    assert "learning rate" not in process.stderr and len(process.stderr.strip().splitlines()) == 1
    assert not (run / "best.pt").exists() or (run / "last.pt").exists()  # never best.pt alone
    assert not list(run.glob(".*.pt"))  # no temporary left
    _, help_text, _ = run_cli(["--help"], capsys)
    assert "3 a file could not be written" in help_text
    code, out, err = run_cli(command, capsys)  # the same command again: not refused
    assert code == 0 and "tau = 20" in out, err


def test_best_pt_without_last_pt_is_not_sent_to_resume(world, capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(world["run"] / "best.pt", run / "best.pt")
    code, _, err = run_cli(["train", *SMALL, "--root", world["data"], "--run-dir", run], capsys)
    assert code == 2 and "no last.pt to resume" in err and "--resume" not in err, err


def test_checkpoint_before_validation_and_stale_temporaries(world, capsys, tmp_path, monkeypatch):
    """A failure in the first validation loses no training: last.pt holds the finished
    epoch, and resuming gives the uninterrupted run's numbers bit for bit. A temporary
    that a killed checkpoint write left behind is removed at the next start."""
    import mladlib.train.trainer as trainer

    run = tmp_path / "run"
    command = ["train", *SMALL, "--root", world["data"], "--epochs", "2", "--run-dir", run]
    real_evaluate = trainer.Trainer._evaluate

    def failing(self, model, split, *args, **kwargs):
        if split == "val":
            raise ValueError("validation failed")
        return real_evaluate(self, model, split, *args, **kwargs)

    monkeypatch.setattr(trainer.Trainer, "_evaluate", failing)
    code, _, err = run_cli(command, capsys)
    assert code == 2 and "validation failed" in err
    saved = load_checkpoint(run / "last.pt", kind="training")
    assert (saved["epoch"], saved["batch"], saved["step"]) == (0, 12, 12)  # epoch 1 trained, not validated
    monkeypatch.setattr(trainer.Trainer, "_evaluate", real_evaluate)
    stale = run / ".last.pt.k1ll3d_0.pt"
    stale.write_bytes(b"half a checkpoint")
    code, out, err = run_cli(["train", "--resume", run / "last.pt"], capsys)
    assert code == 0, err
    assert not stale.exists() and "removed .last.pt.k1ll3d_0.pt" in out
    resumed = json.loads((run / "results.json").read_text())
    uninterrupted = json.loads((world["run"] / "results.json").read_text())
    assert resumed["test"] == uninterrupted["test"] and resumed["steps"] == uninterrupted["steps"] == 24


# --- 4: metrics on a condition that never holds ---------------------------------------------


@pytest.mark.parametrize("tau", [0, 5, 20, -3])
def test_action_conditional_without_positive_frames_is_nan(tau):
    rng = np.random.default_rng(0)
    scores = [rng.random((30, 4)), rng.random((10, 4))]
    labels = [np.zeros((30, 4), np.uint8), np.zeros((10, 4), np.uint8)]
    result = action_conditional(scores, labels, tau=tau)
    assert result.n_pairs == 0 and all(np.isnan(v) for v in result.as_dict().values())
    sweep = action_conditional_sweep(scores, labels, (0, tau))
    assert sweep[tau].n_pairs == 0


def test_evaluate_a_split_without_positives(world, capsys):
    code, out, err = run_cli(["evaluate", "--checkpoint", world["run"] / "best.pt", "--root", world["empty"]],
                             capsys)
    assert code == 0, err
    assert "tau = 20" in out and "n/a" in out


# --- 7: a damaged HDF5 file -----------------------------------------------------------------


def test_damaged_hdf5_is_a_value_error_naming_the_file(tmp_path):
    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as f:
        for i in range(3):
            f.create_dataset(f"v{i}", data=np.ones((20, 4), np.float32))
    raw = good.read_bytes()
    bad = tmp_path / "bad.h5"
    seen = set()
    for offset in range(0, len(raw), 8):  # 0xff over every 8 bytes, one place at a time
        damaged = bytearray(raw)
        damaged[offset : offset + 8] = b"\xff" * 8
        bad.write_bytes(bytes(damaged))
        try:
            store = data.open_feature_store(bad)
            for video in store.video_ids():
                store.shape(video)
                store.read(video, 0, 5)
            store.close()
        except ValueError as error:  # VideoNotFoundError is one too
            assert str(bad) in str(error), (offset, error)
            seen.add(offset)
    assert seen  # some damage is detected (the rest hits the features' bytes only)


def test_damaged_hdf5_metadata_on_the_command_line(world, capsys, tmp_path):
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(world["video"], data=np.ones((20, 32), np.float32))
    raw = bytearray(path.read_bytes())
    raw[120:128] = b"\xff" * 8  # the root group's symbol table: h5py raises RuntimeError
    path.write_bytes(bytes(raw))
    code, _, err = run_cli(["predict", "--checkpoint", world["run"] / "best.pt", "--features", path], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err


# --- 8: the model's own ValueError ----------------------------------------------------------


@pytest.mark.parametrize("name", ["mlad", "cf", "linear"])
def test_model_input_dtype_and_empty_batch(name):
    sizes = {"mlad": {"hidden_dim": 8, "num_layers": 1}, "cf": {"hidden_dim": 8}, "linear": {}}
    model = build_model(name, 5, 8, **sizes[name])
    for x, phrase in ((torch.randn(2, 6, 8, dtype=torch.float64), "torch.float64"),
                      (torch.ones(2, 6, 8, dtype=torch.int64), "torch.int64"),
                      (torch.zeros(0, 6, 8), "B, T >= 1")):
        with pytest.raises(ValueError, match=phrase.replace(".", r"\.")):
            model(x)
    assert model(torch.randn(2, 6, 8)).logits.shape == (2, 6, 5)


# --- 9: Ctrl-C at the edges of a run --------------------------------------------------------


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)


def test_ctrl_c_while_importing_is_one_line(tmp_path):
    # a Ctrl-C that lands while torch is imported (deterministic: an import hook raises it)
    code = (
        "import sys, runpy\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['mladlib', 'smoke']\n"
        "runpy.run_module('mladlib', run_name='__main__', alter_sys=True)\n"
    )
    process = _python(code, tmp_path)
    assert process.returncode == 130 and process.stderr.strip() == "aborted", process.stderr


def test_second_ctrl_c_while_exiting_is_no_traceback(tmp_path):
    # the Ctrl-C arrives in an atexit handler (the last to run), after the command ended
    code = (
        "import atexit, os, signal, sys, runpy, time\n"
        "def late_ctrl_c():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "atexit.register(late_ctrl_c)\n"
        "sys.argv = ['mladlib', 'evaluate', '--checkpoint', 'missing.pt']\n"
        "runpy.run_module('mladlib', run_name='__main__', alter_sys=True)\n"
    )
    process = _python(code, tmp_path)
    assert process.returncode == 130 and "Traceback" not in process.stderr, process.stderr
    assert process.stderr.strip() == "error: checkpoint missing.pt does not exist"


# --- 11, 12, 10: annotation files -----------------------------------------------------------


def _write(path: Path, videos: dict) -> Path:
    path.write_text(json.dumps(videos))
    return path


def test_segments_outside_the_video_warn_and_frames_are_refused(tmp_path):
    spec = data.MULTITHUMOS
    videos = {"a": {"duration": 10.0, "actions": [[1, 1.0, 2.0], [2, 12.0, 14.0]]},
              "b": {"duration": 10.0, "actions": [[3, 2.0, 4.0]]}}
    with pytest.warns(UserWarning, match=r"1 segment\(s\) lie wholly outside their video .*videos a\)"):
        data.read_annotations(_write(tmp_path / "a.json", videos), spec)
    frames = {"a": {"duration": 10.0, "actions": [[1, 30.0, 60.0], [2, 120.0, 240.0]]},
              "b": {"duration": 10.0, "actions": [[3, 2.0, 4.0]]}}
    with pytest.raises(ValueError, match="2 of 3 segments start after their video's end.*frame numbers"):
        data.read_annotations(_write(tmp_path / "f.json", frames), spec)


def test_segments_outside_the_video_on_the_command_line(world, capsys, tmp_path):
    annotations = json.loads((world["data"] / "annotations.json").read_text())
    video = world["test_video"]
    entry = annotations[video]
    entry["actions"] = entry["actions"] + [[1, entry["duration"] + 5.0, entry["duration"] + 9.0]]
    path = _write(tmp_path / "outside.json", annotations)
    code, out, err = run_cli(["evaluate", "--checkpoint", world["run"] / "best.pt", "--annotations", path], capsys)
    assert code == 0, err
    assert err.strip() == f"warning: {path}: 1 segment(s) lie wholly outside their video and label no frame " \
                          f"(videos {video})", err


def test_class_id_base_hints(tmp_path):
    one_based = {"a": {"duration": 10.0, "actions": [[157, 1.0, 2.0], [3, 2.0, 3.0]]}}
    with pytest.raises(ValueError, match="look 1-based .*no id 0 is used"):
        data.read_annotations(_write(tmp_path / "c.json", one_based), data.CHARADES)
    zero_based = {"a": {"duration": 10.0, "actions": [[0, 1.0, 2.0]]}}
    with pytest.raises(ValueError, match="look 0-based"):
        data.read_annotations(_write(tmp_path / "m.json", zero_based), data.MULTITHUMOS)


def test_duplicate_keys_in_annotations(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"a": {"duration": 5, "actions": []}, "a": {"duration": 6, "actions": []}}')
    with pytest.raises(ValueError, match=f"{path}: video 'a' is listed twice"):
        data.read_annotations(path, data.MULTITHUMOS)
    path.write_text('{"a": {"duration": 5, "duration": 6, "actions": []}}')
    with pytest.raises(ValueError, match="field 'duration' appears twice"):
        data.read_annotations(path, data.MULTITHUMOS)


# --- 13, 14: features and class names -------------------------------------------------------


def test_nan_features_are_found_when_the_dataset_loads(world):
    spec = synth.synthetic_spec("tiny")
    with pytest.raises(ValueError, match=f"video '{world['test_video']}' in the feature store .*has NaN"):
        data.VideoDataset.from_folder(world["nan"], "test", spec)  # not in memory: still scanned
    data.VideoDataset.from_folder(world["nan"], "train", spec)  # the training videos are fine


def test_complex_features_in_a_store_are_refused(tmp_path):
    (tmp_path / "f").mkdir()
    np.save(tmp_path / "f" / "v.npy", np.ones((4, 3), np.complex64))
    with pytest.raises(ValueError, match="v.npy holds complex64 values"):
        data.open_feature_store(tmp_path / "f").shape("v")
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.create_dataset("v", data=np.ones((4, 3), np.complex64))
    with pytest.raises(ValueError, match="video 'v' in .*c.h5 holds complex64 values"):
        data.open_feature_store(tmp_path / "c.h5").shape("v")


def test_explicit_classes_are_honoured_on_the_embedded_dataset(world, tmp_path):
    from mladlib.cli import _class_names

    names = [f"my class {i}" for i in range(len(synth.CLASS_NAMES))]
    (tmp_path / "classes.txt").write_text("\n".join(names))
    config = make_config("synthetic", synthetic_size="tiny", classes=str(tmp_path / "classes.txt"))
    assert list(dataset_spec(config).class_names) == names
    assert _class_names(config, len(names)) == names
    (tmp_path / "few.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="names 2 classes"):
        dataset_spec(config.replace(classes=str(tmp_path / "few.txt")))


def test_options_are_checked_where_they_are_parsed():
    parser = build_parser()
    assert parser.parse_args(["predict", "--checkpoint", "c", "--features", "f", "--top", "3"]).top == 3
    with pytest.raises(ValueError, match="seed must be an integer"):
        make_config("synthetic", seed=-1)
    with pytest.raises(ValueError, match="initial_loss_weight must be a finite number"):
        make_config("synthetic", initial_loss_weight=float("nan"))


# --- issue 28, item 7 and the smaller list: crafted checkpoint files ---------------


def _recompressed(source: Path, target: Path) -> Path:
    """``source`` (a torch.save archive), every member deflated: a zip bomb's shape."""
    import zipfile

    deflated = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(source) as src, deflated as dst:
        for member in src.infolist():
            dst.writestr(member.filename, src.read(member))
    return target


@pytest.mark.parametrize("official", [False, True])
def test_a_zip_bomb_checkpoint_is_refused_before_it_is_inflated(official, tmp_path,
                                                                capsys, monkeypatch):
    big = tmp_path / "big.pt"
    torch.save({"state_dict": {"w": torch.zeros(4_000_000)}}, big)  # 16 MB of zeros
    bomb = _recompressed(big, tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 100_000
    inflated = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load",
                        lambda *a, **k: inflated.append(1) or real_load(*a, **k))
    argv = ["evaluate", "--checkpoint", bomb]
    if official:
        argv += ["--official", "--dataset", "synthetic"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "member" in err and "is compressed" in err, err
    assert str(bomb) in err
    assert inflated == []


def test_official_checkpoint_messages_name_the_file_not_an_unsafe_load(tmp_path):
    from mladlib.models import load_official_checkpoint

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {"x": Evil()}}, tmp_path / "evil.pt")
    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"x": torch.zeros(1000)}}, good)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:700])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(3000))
    for name in ("evil.pt", "truncated.pt", "random.pt"):
        with pytest.raises(ValueError) as info:
            load_official_checkpoint(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"checkpoint {tmp_path / name} ")
        assert "weights_only=False" not in message and "Errno" not in message
        assert "\n" not in message


# --- issue 28, item 6: outputs that would replace a run's own files ---------------


@pytest.mark.parametrize("flag, name", [
    ("--out", "best.pt"), ("--json", "results.json"), ("--out", "test_predictions.h5"),
    ("--json", "config.json")])
def test_evaluate_refuses_to_overwrite_a_run_s_files(world, capsys, tmp_path, flag,
                                                     name):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    before = digests(run)
    command = ["evaluate", "--checkpoint", run / "last.pt", flag, run / name]
    code, _, err = run_cli(command, capsys)
    assert code == 2 and f"{flag} {run / name} is " in err and "--overwrite" in err, err
    assert digests(run) == before


def test_evaluate_refuses_to_overwrite_any_checkpoint_unless_asked(world, capsys,
                                                                   tmp_path):
    other = tmp_path / "weights.pt"
    shutil.copy(world["run"] / "best.pt", other)
    (tmp_path / "scores.json").write_text("{}")
    command = ["evaluate", "--checkpoint", world["run"] / "best.pt", "--json", other]
    code, _, err = run_cli(command, capsys)
    assert code == 2 and "is a checkpoint" in err, err
    code, _, err = run_cli([*command, "--overwrite"], capsys)
    assert code == 0, err
    assert "frame_map" in json.loads(other.read_text())


# --- issue 28, smaller list: Ctrl-C anywhere is one line and status 130 -----------


def test_ctrl_c_while_the_parser_is_built_is_one_line(tmp_path):
    code = (
        "import runpy, sys\n"
        "import mladlib.cli as cli\n"
        "def interrupted():\n"
        "    raise KeyboardInterrupt\n"
        "cli.build_parser = interrupted\n"
        "sys.argv = ['mladlib', 'smoke']\n"
        "runpy.run_module('mladlib', run_name='__main__', alter_sys=True)\n"
    )
    process = _python(code, tmp_path)
    assert process.returncode == 130, process.stderr
    assert process.stderr.strip() == "aborted", process.stderr


def test_a_cleanup_failing_after_ctrl_c_is_still_the_ctrl_c(capsys, monkeypatch):
    """A Ctrl-C during an import leaves a module half-initialised; a cleanup that then
    trips over it (an AttributeError) must not turn the Ctrl-C into a traceback."""
    import mladlib.cli as cli

    def command(args):
        try:
            raise KeyboardInterrupt
        finally:
            raise AttributeError("partially initialized module 'sympy' has no "
                                 "attribute 'core'")

    monkeypatch.setattr(cli, "cmd_smoke", command)
    code, _, err = run_cli(["smoke"], capsys)
    assert code == 130 and err.strip() == "aborted", err


# --- issue 28, smaller list: the data a run trains on -----------------------------


def test_resume_after_the_dataset_changed_is_refused(world, capsys, tmp_path):
    data_dir, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(world["data"], data_dir)
    code, _, err = run_cli(["train", *SMALL, "--root", data_dir, "--epochs", "1",
                            "--run-dir", run, "--stop-after-steps", "2"], capsys)
    assert code == 0, err
    annotations = json.loads((data_dir / "annotations.json").read_text())
    video = (data_dir / "train_list.txt").read_text().split()[0]
    annotations[video]["actions"] = annotations[video]["actions"][1:]  # one fewer
    (data_dir / "annotations.json").write_text(json.dumps(annotations))
    before = digests(run)
    code, _, err = run_cli(["train", "--resume", run / "last.pt"], capsys)
    assert code == 2 and "the dataset changed since" in err, err
    def kept(files: dict) -> dict:
        return {k: v for k, v in files.items()
                if not k.endswith(("train.log", ".lock"))}

    assert kept(digests(run)) == kept(before)


def test_test_features_of_another_size_are_found_before_training(world, tmp_path):
    from mladlib.train import load_splits

    narrow = tmp_path / "narrow.h5"
    with h5py.File(world["data"] / "features.h5") as src, h5py.File(narrow, "w") as dst:
        for video in src:
            dst[video] = np.asarray(src[video])[:, :5]
    config = make_config("synthetic", synthetic_size="tiny", root=str(world["data"]),
                         test_features=[str(narrow)])
    with pytest.raises(ValueError, match=r"test features \(.*narrow.h5\) are 5-d but"):
        load_splits(config, ("train", "test"))
