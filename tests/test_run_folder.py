"""The run folder (``mladlib.train.run_folder``): which files it lists, who may claim it,
and atomic JSON writes. No training: these run in milliseconds."""

from __future__ import annotations

import json
import re

import pytest

from mladlib.train import trainer
from mladlib.train.run_folder import RUN_FILES, RunFolder, run_paths, write_json
from mladlib.train.runlock import RunFolderLock


def leftovers(folder) -> list[str]:
    """Hidden files other than the lock: temporaries a write left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".lock")


def test_run_paths_lists_only_existing_files(tmp_path):
    assert run_paths(tmp_path) == {}
    for name in ("config.json", "last.pt", "unrelated.txt", ".last.pt.abc.pt"):
        (tmp_path / name).write_text("x")
    assert run_paths(tmp_path) == {"config": tmp_path / "config.json", "last": tmp_path / "last.pt"}
    assert RunFolder(tmp_path).paths() == run_paths(tmp_path)
    assert RunFolder(tmp_path).path("best") == tmp_path / "best.pt"  # named, whether or not it exists
    assert trainer.run_paths is run_paths and trainer.RUN_FILES is RUN_FILES  # the old import still works


def test_claim_refuses_a_folder_another_run_holds(tmp_path):
    run = tmp_path / "run"
    holder = RunFolderLock(run)
    try:
        with pytest.raises(ValueError, match=re.escape(f"run folder {run} is in use by another run")):
            RunFolder(run).claim(resume=False)
    finally:
        holder.release()
    folder = RunFolder(run)
    folder.claim(resume=False)  # the lock file stays behind; nobody holds it: no obstacle
    try:
        assert folder.lock is not None
    finally:
        folder.release()
    assert folder.lock is None


@pytest.mark.parametrize("existing, message", [
    ("last.pt", "already holds a run; continue it with --resume"),
    ("best.pt", "holds the best.pt of an earlier run but no last.pt"),
])
def test_a_new_run_is_refused_a_folder_holding_a_run(tmp_path, existing, message):
    (tmp_path / existing).write_text("x")
    folder = RunFolder(tmp_path)
    with pytest.raises(ValueError, match=f"run folder {re.escape(str(tmp_path))} .*{re.escape(message)}"):
        folder.claim(resume=False)
    assert folder.lock is not None  # still held after a refusal: the caller releases it
    folder.release()
    resumed = RunFolder(tmp_path)
    resumed.claim(resume=True)
    resumed.release()


def test_claim_removes_stale_temporaries_only(tmp_path):
    stale = [tmp_path / ".last.pt.k1ll3d_0.pt",
             tmp_path / ".history.json.x0000000.json"]
    for path in [*stale, tmp_path / ".other.txt.x", tmp_path / "last.pt"]:
        path.write_text("x")
    folder = RunFolder(tmp_path)
    assert sorted(folder.claim(resume=True)) == sorted(stale) == sorted(folder.stale_removed)
    folder.release()
    assert leftovers(tmp_path) == [".other.txt.x"] and (tmp_path / "last.pt").exists()


def test_release_removes_a_folder_the_claim_created_and_nothing_was_written_to(tmp_path):
    folder = RunFolder(tmp_path / "new")
    folder.claim(resume=False)
    folder.release(remove_if_created=True)
    assert not (tmp_path / "new").exists()
    folder.release()  # twice: a no-op


def test_json_writes_are_atomic_and_round_trip(tmp_path):
    folder = RunFolder(tmp_path)
    content = [{"epoch": 1, "loss": 0.5, "val_frame_map": None}]
    path = folder.write_json("history", content)
    assert path == tmp_path / "history.json" and json.loads(path.read_text()) == content
    assert leftovers(tmp_path) == []
    # a write that fails half-way leaves the old file as it was, and no temporary
    with pytest.raises(TypeError):
        folder.write_json("history", [{"epoch": 2, "loss": object()}])
    assert json.loads(path.read_text()) == content and leftovers(tmp_path) == []
    write_json(tmp_path / "other.json", {"a": 1})
    assert json.loads((tmp_path / "other.json").read_text()) == {"a": 1} and leftovers(tmp_path) == []


# --- hostile folders: links and look-alike names (issue 28, items 3-5) -------------


def test_a_linked_lock_file_is_refused_and_no_lock_file_is_truncated(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(outside)
    with pytest.raises(ValueError, match=r"lock file .*\.lock is a symbolic link"):
        RunFolder(run).claim(resume=False)
    assert outside.read_text() == "precious\n"
    # a lock file that is a plain file is locked as it is, never emptied or rewritten
    (run / ".lock").unlink()
    (run / ".lock").write_text("someone's text\n")
    folder = RunFolder(run)
    folder.claim(resume=False)
    folder.release()
    assert (run / ".lock").read_text() == "someone's text\n"


def test_the_log_is_never_written_through_a_link(tmp_path):
    rc = tmp_path / "bashrc"
    rc.write_text("export A=1\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").symlink_to(rc)
    folder = RunFolder(run)
    with pytest.raises(ValueError, match="train.log is a symbolic link"):
        folder.claim(resume=False)
    folder.release()
    with pytest.raises(ValueError, match="train.log is a symbolic link"):
        RunFolder(run).append_log("removed .config.json.$(touch X)")
    assert rc.read_text() == "export A=1\n"


def test_a_run_folder_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(ValueError, match=r"run folder .*run is a file, not a folder"):
        RunFolder(tmp_path / "run").claim(resume=False)


def test_stale_cleanup_matches_exactly_the_writers_temporaries(tmp_path):
    import tempfile

    made = [tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=tmp_path)[1]
            for name, suffix in (("last.pt", ".pt"), ("history.json", ".json"),
                                 ("test_predictions.h5", ".h5"))]
    users = [".config.json.bak", ".best.pt.keep", ".train.log.old",
             ".train.log.abcdefgh.log", ".config.json.$(touch X)", ".last.pt.k1ll3d.pt",
             ".last.pt.abcdefgh.pt.keep"]
    for name in users:
        (tmp_path / name).write_text("mine")
    (tmp_path / ".best.pt.abcdefgh.pt").symlink_to(tmp_path / ".best.pt.keep")
    folder = RunFolder(tmp_path)
    removed = folder.claim(resume=True)
    folder.release()
    assert sorted(map(str, removed)) == sorted(made)
    assert leftovers(tmp_path) == sorted([*users, ".best.pt.abcdefgh.pt"])


def test_a_run_folder_below_a_file_or_a_file_as_cache_is_one_clear_error(tmp_path,
                                                                          monkeypatch):
    from mladlib import synth

    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cannot create the run folder .*file/run: a"):
        RunFolder(tmp_path / "file" / "run").claim(resume=False)
    monkeypatch.setenv("MLADLIB_CACHE", str(tmp_path / "file"))
    with pytest.raises(ValueError, match=r"MLADLIB_CACHE .*file is a file, not a fold"):
        synth.dataset_root("tiny", 0)
