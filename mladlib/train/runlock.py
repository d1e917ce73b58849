"""One run at a time in a run folder: an advisory lock, and the cleanup a lock makes safe.

The lock is ``fcntl.flock`` on ``<run folder>/.lock``: the operating system releases it
when the process ends, however it ends (even SIGKILL), so a stale lock file left by a
dead process never blocks the next run. Holding the lock, a run may delete the
temporary files a killed checkpoint write left behind (no other run can be writing them).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

LOCK_NAME = ".lock"


class RunFolderLock:
    """An exclusive, non-blocking lock on a run folder (created if missing).

    ``ValueError`` naming the folder when another live process holds it.
    :meth:`release` unlocks; the lock file stays (deleting it could let two processes
    lock two different files of the same name).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        import fcntl

        self.run_dir = Path(run_dir)
        self.created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ValueError(f"run folder {self.run_dir} is in use by another run (it holds the lock "
                             f"{self.path}); wait for that run to end or choose another run folder") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious user

    def release(self, remove_if_created: bool = False) -> None:
        """Unlock; with ``remove_if_created``, also delete the folder if this lock created it
        and nothing else was written into it (a run that failed during setup)."""
        if self._fd is None:
            return
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None
        if remove_if_created and self.created:
            with contextlib.suppress(OSError):
                self.path.unlink()
                self.run_dir.rmdir()  # only if empty

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def remove_stale_temporaries(run_dir: str | os.PathLike, names: list[str]) -> list[Path]:
    """Delete ``.<name>.*`` temporaries of the files ``names`` in ``run_dir`` (what
    :func:`mladlib.utils.atomic_path` writes before its rename); the paths removed.

    Call it only while holding the folder's :class:`RunFolderLock`.
    """
    removed = []
    for name in names:
        for stale in Path(run_dir).glob(f".{name}.*"):
            if stale.is_file():
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
                    removed.append(stale)
    return removed
