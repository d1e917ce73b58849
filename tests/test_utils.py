"""mladlib.utils: files renamed into place get the mode of a newly created file."""

from __future__ import annotations

import os
import platform
import sys
import stat

import pytest

from mladlib import synth
from mladlib.utils import atomic_path, default_mode


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_path_gives_a_new_files_mode(tmp_path, umask_022):
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        assert mode(tmp) == 0o600  # private while half-written
        tmp.write_text("{}")
    assert target.read_text() == "{}" and mode(target) == 0o644 == default_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_generated_dataset_folder_is_readable_by_others(tmp_path, umask_022):
    root = synth.write_layout(synth.generate(synth.sized_config("tiny")), tmp_path / "data", synth.sized_config("tiny"))
    assert mode(root) == 0o755 == default_mode(directory=True)
    assert mode(root / "features.h5") == 0o644


def test_keep_freed_memory_is_idempotent_and_reported():
    from mladlib.utils import freed_memory_kept, keep_freed_memory

    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() == first == freed_memory_kept()
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert first  # glibc's mallopt accepts both settings
