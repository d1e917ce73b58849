"""Fixtures shared by the tests that train or run the command line."""

from __future__ import annotations

import pytest
import torch

from mladlib.utils import seed_everything


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One embedded-dataset cache for the session: the tiny dataset is generated once."""
    return tmp_path_factory.mktemp("mladlib-cache")


@pytest.fixture
def mladlib_environment(cache_dir, monkeypatch):
    """The cache above, no progress bars, seeded, one torch thread (restored after):
    tiny models on a busy 2-core machine wait at OpenMP barriers otherwise."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("MLADLIB_CACHE", str(cache_dir))
    monkeypatch.setenv("MLADLIB_PROGRESS", "0")
    seed_everything(0, num_threads=1)
    yield
    torch.set_num_threads(threads)
