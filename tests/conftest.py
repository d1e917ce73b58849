"""Fixtures shared by the tests: the training/CLI environment, and closing figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: before any test imports pyplot

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mladlib.utils import seed_everything  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test leaves no open matplotlib figure behind."""
    yield
    plt.close("all")


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
